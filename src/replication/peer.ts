// A peer as users write it: `name`, `name:port`, `user@name` or
// `user@name:port` (IPv6 literals in brackets: `[fd00::2]:2222`). The port
// defaults to SSH_PORT, as the original's ssh -p did. The peer's label, the
// host part of send markers `<snapshot>@<label>`, is the host, with its port
// when that is not the default, and never the user (a marker has exactly
// three "@"-parts).
import { isIPv6 } from '../util/ip.js';
import { StoreError } from '../store/errors.js';
import { validateHostName } from '../store/names.js';

export interface Peer {
  /** The spec as given. */
  spec: string;
  /** SSH user (default root). */
  user: string;
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** SSH port. */
  port: number;
  /** `name`, or `name:port` when not the default port: the host part of send markers. */
  label: string;
}

function invalid(spec: string, why: string): never {
  throw new StoreError('ERR_INVALID_HOST', `host ${JSON.stringify(spec.length > 80 ? `${spec.slice(0, 80)}…` : spec)}: ${why}`);
}

const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}$/i;

/**
 * Checks a peer spec's syntax without a default port: what the CLI can say
 * before the configuration is read.
 * @throws StoreError `ERR_INVALID_HOST` saying what is wrong.
 */
export function checkPeerSpec(spec: unknown): { user: string; host: string; port: number | undefined } {
  if (typeof spec !== 'string' || spec === '') invalid(String(spec), 'expected name, name:port, user@name or user@name:port');
  let rest = spec;
  let user = 'root';
  const at = rest.indexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER_RE.test(user)) invalid(spec, `user ${JSON.stringify(user)} is not a user name`);
    if (rest.includes('@')) invalid(spec, 'more than one "@"');
  }
  let host = rest;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracket) {
    host = bracket[1]!;
    if (!isIPv6(host)) invalid(spec, `${JSON.stringify(host)} in brackets is not an IPv6 address`);
    if (bracket[2] !== undefined) port = portOf(spec, bracket[2]);
  } else if (rest.includes(':') && !isIPv6(rest)) {
    const colon = rest.lastIndexOf(':');
    host = rest.slice(0, colon);
    port = portOf(spec, rest.slice(colon + 1));
  }
  if (host === spec) validateHostName(host); // its own message names the spec already
  else {
    try {
      validateHostName(host);
    } catch (err) {
      invalid(spec, (err as Error).message.replace(/^host /, ''));
    }
  }
  return { user, host, port };
}

/**
 * Reads a peer spec; `defaultPort` (SSH_PORT) when it names none.
 * @throws StoreError `ERR_INVALID_HOST` saying what is wrong.
 */
export function parsePeer(spec: unknown, defaultPort: number): Peer {
  const { user, host, port = defaultPort } = checkPeerSpec(spec);
  if (port === 0) invalid(spec as string, 'no port: give name:port (SSH_PORT is 0 here, so there is no default)');
  const shown = isIPv6(host) ? `[${host}]` : host;
  return { spec: spec as string, user, host, port, label: port === defaultPort ? shown : `${shown}:${port}` };
}

function portOf(spec: string, text: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) invalid(spec, `port ${JSON.stringify(text)} must be a number from 1 to 65535`);
  return port;
}
