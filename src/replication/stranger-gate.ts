// Connections that have not authenticated yet, bounded in time and number.
// Before authentication a connection costs the daemon a socket, a handshake
// and some memory and gives nothing, so idle or slow strangers (a port scan,
// a slowloris) must not be able to use up its file descriptors. This sits
// in front of ssh2 at the TCP level: ssh2 tells of a connection only once the
// client has sent its version line, which a silent client never does.
import type { Socket } from 'node:net';

import type { Logger } from '../log.js';

export interface StrangerGateOptions {
  /** A connection not authenticated within this is closed. */
  loginGraceMs: number;
  /** Connections waiting to authenticate beyond this are closed at once. */
  maxWaiting: number;
  logger: Logger;
}

/** The key of a TCP connection: its remote address and port. */
export function connectionKey(address: string | undefined, port: number | undefined): string {
  return `${address ?? '?'}:${port ?? '?'}`;
}

export class StrangerGate {
  private readonly waiting = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();

  constructor(private readonly options: StrangerGateOptions) {}

  /** Takes a new connection: false (and it is closed) when too many are waiting already. */
  admit(socket: Socket): boolean {
    const { loginGraceMs, maxWaiting, logger } = this.options;
    const key = connectionKey(socket.remoteAddress, socket.remotePort);
    if (this.waiting.size >= maxWaiting) {
      logger.warning(`ssh ${key}: more than ${maxWaiting} connections waiting to authenticate: closed`);
      socket.destroy();
      return false;
    }
    const timer = setTimeout(() => {
      logger.warning(`ssh ${key}: not authenticated within ${loginGraceMs / 1000} s: closed`);
      socket.destroy();
    }, loginGraceMs);
    this.waiting.set(key, { socket, timer });
    socket.once('close', () => this.authenticated(key));
    return true;
  }

  /** The connection `key` authenticated (or closed): it no longer counts. */
  authenticated(key: string): void {
    const entry = this.waiting.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.waiting.delete(key);
  }
}
