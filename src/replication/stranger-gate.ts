// Connections that have not authenticated yet, bounded in time and number,
// in all and per source address. Before authentication a connection costs
// the daemon a socket, a handshake and some memory and gives nothing, so
// idle or slow strangers (a port scan, a slowloris) must not be able to use
// up its file descriptors, and one address must not be able to take every
// place and lock the real peers out. This sits in front of ssh2 at the TCP
// level: ssh2 tells of a connection only once the client has sent its
// version line, which a silent client never does.
import type { Socket } from 'node:net';

import type { Logger } from '../log.js';
import { plainAddress } from './authorized-keys.js';

export interface StrangerGateOptions {
  /** A connection not authenticated within this is closed. */
  loginGraceMs: number;
  /** Connections waiting to authenticate beyond this are closed at once. */
  maxWaiting: number;
  /** The same, per source address (an IPv6 client: per /64, what one host usually has). */
  maxWaitingPerAddress: number;
  logger: Logger;
}

/** The key of a TCP connection: its remote address and port. */
export function connectionKey(address: string | undefined, port: number | undefined): string {
  return `${address ?? '?'}:${port ?? '?'}`;
}

/** The source a per-address cap counts: an IPv4 address, or the /64 of an IPv6 one. */
export function sourceOf(address: string | undefined): string {
  const plain = plainAddress(address ?? '?');
  if (!plain.includes(':')) return plain;
  // Expand "::" to count the groups, then keep the first four.
  const [head = '', tail = ''] = plain.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = plain.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export class StrangerGate {
  private readonly waiting = new Map<string, { socket: Socket; timer: NodeJS.Timeout; source: string }>();
  private readonly perSource = new Map<string, number>();
  /** Sources refused since they last had no connection waiting (their refusals after the first are logged at debug level). */
  private readonly refusedSources = new Set<string>();

  constructor(private readonly options: StrangerGateOptions) {}

  /** Takes a new connection: false (and it is closed) when too many are waiting already, in all or from its source. */
  admit(socket: Socket): boolean {
    const { loginGraceMs, maxWaiting, maxWaitingPerAddress, logger } = this.options;
    const key = connectionKey(socket.remoteAddress, socket.remotePort);
    const source = sourceOf(socket.remoteAddress);
    const fromSource = this.perSource.get(source) ?? 0;
    if (fromSource >= maxWaitingPerAddress) {
      // A flood from one source is what this is for: one warning per burst, not one per connection.
      const warn = !this.refusedSources.has(source);
      this.refusedSources.add(source);
      logger[warn ? 'warning' : 'debug'](`ssh ${key}: more than ${maxWaitingPerAddress} connections from ${source} waiting to authenticate: closed`);
      socket.destroy();
      return false;
    }
    if (this.waiting.size >= maxWaiting) {
      logger.warning(`ssh ${key}: more than ${maxWaiting} connections waiting to authenticate: closed`);
      socket.destroy();
      return false;
    }
    const timer = setTimeout(() => {
      logger.warning(`ssh ${key}: not authenticated within ${loginGraceMs / 1000} s: closed`);
      socket.destroy();
    }, loginGraceMs);
    this.waiting.set(key, { socket, timer, source });
    this.perSource.set(source, fromSource + 1);
    socket.once('close', () => this.authenticated(key));
    return true;
  }

  /** The connection `key` authenticated (or closed): it no longer counts. */
  authenticated(key: string): void {
    const entry = this.waiting.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.waiting.delete(key);
    const left = (this.perSource.get(entry.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(entry.source, left);
    else {
      this.perSource.delete(entry.source);
      this.refusedSources.delete(entry.source);
    }
  }
}
