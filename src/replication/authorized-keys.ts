// SSH_PATH/authorized_keys: who may connect, from where, and what each key
// may do. OpenSSH's format, one key per line, with options before it:
//   from="10.0.0.0/24,!10.0.0.9"   only from these addresses (OpenSSH's
//                                  pattern-list: CIDR, * and ? wildcards, !
//                                  negation; matched on the address, never
//                                  on a name: no reverse DNS)
//   volumes="db,web-*"             ours: only these volumes (same pattern syntax)
//   push-only                      ours: may send snapshots here (list, status, receive)
//   pull-only                      ours: may read from here (list, status, send, tree, files);
//                                  neither may take a volume over (claim)
//   restrict, no-pty, no-port-forwarding, no-agent-forwarding,
//   no-X11-forwarding, no-user-rc  accepted: they forbid what is never offered
// A line with any other option (command=, environment=, permitopen=...) is
// refused and the reason logged: ignoring a restriction would allow more
// than its author meant.
import { BlockList } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type ssh2 from 'ssh2';

import { isIPv4, isIPv6 } from '../util/ip.js';
import { loadSsh2 } from './ssh2-lazy.js';
import { errCode } from '../util/err-code.js';

export const AUTHORIZED_KEYS_FILE = 'authorized_keys';

/** What a request does, as a grant sees it. */
export type Access = 'push' | 'pull';

/** The requests each access allows (a sender lists what the peer holds to choose its parent). */
export const OPS_OF: Readonly<Record<Access, readonly string[]>> = Object.freeze({
  push: Object.freeze(['list', 'status', 'receive']),
  pull: Object.freeze(['list', 'status', 'send', 'tree', 'files']),
});

/** What a key may do; null fields do not restrict. */
export interface KeyGrant {
  /** from=: the addresses it may connect from. */
  from: PatternList | null;
  /** volumes=: the volumes it may use. */
  volumes: PatternList | null;
  /** push-only or pull-only. */
  access: Access | null;
}

/** One usable line of authorized_keys. */
export interface AuthorizedKey {
  key: ssh2.ParsedKey;
  line: number;
  comment: string;
  grant: KeyGrant;
}

/** An OpenSSH pattern-list: patterns separated by commas, each maybe negated by "!". */
export class PatternList {
  private constructor(
    readonly text: string,
    private readonly patterns: ReadonlyArray<{ negated: boolean; matches: (value: string) => boolean }>,
  ) {}

  /** Names (volumes=): `*` and `?` wildcards. */
  static names(text: string): PatternList {
    return new PatternList(
      text,
      split(text).map(({ negated, pattern }) => {
        const re = wildcard(pattern);
        return { negated, matches: (value: string) => re.test(value) };
      }),
    );
  }

  /**
   * Addresses (from=): CIDR blocks, or addresses with `*` and `?` wildcards.
   * @throws Error for a malformed CIDR block (OpenSSH refuses the key then too).
   */
  static addresses(text: string): PatternList {
    return new PatternList(
      text,
      split(text).map(({ negated, pattern }) => {
        const slash = pattern.indexOf('/');
        if (slash < 0) {
          const re = wildcard(pattern.toLowerCase());
          return { negated, matches: (value: string) => re.test(value) };
        }
        const base = pattern.slice(0, slash);
        const bits = /^[0-9]{1,3}$/.test(pattern.slice(slash + 1)) ? Number(pattern.slice(slash + 1)) : NaN;
        const family = isIPv4(base) ? 'ipv4' : isIPv6(base) ? 'ipv6' : null;
        if (family === null || !(bits >= 0 && bits <= (family === 'ipv4' ? 32 : 128))) throw new Error(`${JSON.stringify(pattern)} is not an address block`);
        const block = new BlockList();
        block.addSubnet(base, bits, family);
        return { negated, matches: (value: string) => (isIPv4(value) ? block.check(value, 'ipv4') : isIPv6(value) && block.check(value, 'ipv6')) };
      }),
    );
  }

  /** OpenSSH's rule: refused when a negated pattern matches, else allowed when any other does. */
  allows(value: string): boolean {
    let allowed = false;
    for (const p of this.patterns) {
      if (!p.matches(value)) continue;
      if (p.negated) return false;
      allowed = true;
    }
    return allowed;
  }
}

function split(text: string): Array<{ negated: boolean; pattern: string }> {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '' || p === '!')) throw new Error(`${JSON.stringify(text)} has an empty pattern`);
  return parts.map((p) => (p.startsWith('!') ? { negated: true, pattern: p.slice(1) } : { negated: false, pattern: p }));
}

function wildcard(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${body}$`, 's');
}

/** An address as the patterns see it: an IPv4 client of a dual-stack socket (`::ffff:a.b.c.d`) is a.b.c.d. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:([0-9.]+)$/i.exec(address);
  return mapped && isIPv4(mapped[1]!) ? mapped[1]! : address.toLowerCase();
}

/** Whether a grant lets a connection from `address` in. */
export function grantAllowsAddress(grant: KeyGrant, address: string): boolean {
  return grant.from === null || grant.from.allows(plainAddress(address));
}

/** Why a grant refuses request `op` on `volume`, or null when it allows it. */
export function grantRefusal(grant: KeyGrant, op: string, volume: string): string | null {
  if (grant.access !== null && !OPS_OF[grant.access].includes(op)) return `it is ${grant.access}-only`;
  if (grant.volumes !== null && !grant.volumes.allows(volume)) return `its volumes="${grant.volumes.text}" does not name ${volume}`;
  return null;
}

const HARMLESS = new Set(['restrict', 'no-pty', 'no-port-forwarding', 'no-agent-forwarding', 'no-x11-forwarding', 'no-user-rc']);
const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)$/;

/** The options field at the start of `line` (up to the first blank outside quotes), and the rest. */
function splitOptions(line: string): { options: string; rest: string } | null {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) return { options: line.slice(0, i), rest: line.slice(i).trim() };
  }
  return null;
}

/** `name` or `name="value"` options, comma-separated; quotes may hold commas and `\"`. */
function parseOptions(text: string): Array<{ name: string; value: string | null }> {
  const out: Array<{ name: string; value: string | null }> = [];
  const re = /([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\.)*)")?(,|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw new Error(`cannot read the options at ${JSON.stringify(text.slice(at, at + 40))}`);
    out.push({ name: m[1]!.toLowerCase(), value: m[2] === undefined ? null : m[2].replace(/\\"/g, '"') });
    at = re.lastIndex;
    if (m[3] === '') break;
  }
  return out;
}

function grantOf(options: Array<{ name: string; value: string | null }>): KeyGrant {
  const grant: KeyGrant = { from: null, volumes: null, access: null };
  for (const { name, value } of options) {
    if (HARMLESS.has(name) && value === null) continue;
    if ((name === 'from' || name === 'volumes') && value !== null) {
      if (grant[name] !== null) throw new Error(`${name}= given twice`);
      grant[name] = name === 'from' ? PatternList.addresses(value) : PatternList.names(value);
      continue;
    }
    if ((name === 'push-only' || name === 'pull-only') && value === null) {
      const access = name === 'push-only' ? 'push' : 'pull';
      if (grant.access !== null && grant.access !== access) throw new Error('push-only and pull-only together allow nothing');
      grant.access = access;
      continue;
    }
    throw new Error(`option ${value === null ? name : `${name}=`} is not supported`);
  }
  return grant;
}

/**
 * The keys of authorized_keys (a missing file allows nobody), each with its
 * grant; every line that is not used is a problem, with its reason.
 */
export async function authorizedKeys(dir: string): Promise<{ keys: AuthorizedKey[]; problems: string[] }> {
  const path = join(dir, AUTHORIZED_KEYS_FILE);
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
  const keys: AuthorizedKey[] = [];
  const problems: string[] = [];
  const utils = loadSsh2().utils;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${path} line ${i + 1}`;
    try {
      let keyPart = line;
      let grant: KeyGrant = { from: null, volumes: null, access: null };
      if (!KEY_TYPE.test(line.split(/\s+/)[0]!)) {
        const split = splitOptions(line);
        if (!split) throw new Error('not a key');
        grant = grantOf(parseOptions(split.options));
        keyPart = split.rest;
      }
      const [type, blob, ...comment] = keyPart.split(/\s+/);
      const key = KEY_TYPE.test(type ?? '') ? utils.parseKey(`${type} ${blob}`) : new Error('not a key');
      if (key instanceof Error) throw new Error(`not a key (${key.message})`);
      keys.push({ key, line: i + 1, comment: comment.join(' '), grant });
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}: line ignored`);
    }
  });
  return { keys, problems };
}
