// The SSH material in SSH_PATH (/var/lib/buttervolume/ssh, the directory the
// original's plugin mounted as /root/.ssh): this host's server key
// (ssh_host_ed25519_key, made at first start), its client key (id_ed25519,
// or id_rsa when that is what a user of the original has; made when
// neither exists) and the peers' host keys (known_hosts: a new peer is recorded on
// first use, a changed key is refused naming the file and line).
import { createHmac } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type ssh2 from 'ssh2';

import { CodedError } from '../util/coded-error.js';
import { nameErrorClass } from '../util/error-name.js';
import type { Peer } from './peer.js';
import { loadSsh2 } from './ssh2-lazy.js';
import { isMissing } from '../util/err-code.js';

/** ssh2's key utilities (ssh2 is loaded on first use: see ensureKeyFiles). */
const sshUtils = (): typeof ssh2.utils => loadSsh2().utils;

/** A refusal of the SSH material: a changed host key, an unreadable key file. */
export class SshKeyError extends CodedError<'ERR_HOST_KEY_CHANGED' | 'ERR_HOST_KEY_UNKNOWN' | 'ERR_SSH_KEY'> {}

nameErrorClass(SshKeyError, 'SshKeyError');

export const HOST_KEY_FILE = 'ssh_host_ed25519_key';
export const KNOWN_HOSTS_FILE = 'known_hosts';


async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/**
 * A new ed25519 pair in OpenSSH format. ssh2's generator drops a leading
 * zero byte of the public key (about 1 key in 250), and its own parser then
 * refuses the private key ("Malformed OpenSSH private key"): a daemon made
 * such a key at its first start and had no SSH server. Each pair is parsed
 * back before it is used.
 */
function generateEd25519(): { private: string; public: string } {
  const utils = sshUtils();
  for (let attempt = 0; attempt < 32; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519');
    const priv = utils.parseKey(pair.private);
    const pub = utils.parseKey(pair.public);
    if (!(priv instanceof Error) && !(pub instanceof Error) && priv.getPublicSSH().equals(pub.getPublicSSH())) return pair;
  }
  throw new SshKeyError('ERR_SSH_KEY', 'ssh2 made no valid ed25519 key in 32 attempts');
}

/** Writes a new key pair without ever showing a half-written or world-readable private key. */
async function createKeyPair(dir: string, name: string): Promise<{ private: string; public: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pair = generateEd25519();
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  await writeFile(tmp, pair.private, { mode: 0o600 });
  await writeFile(join(dir, `${name}.pub`), `${pair.public} buttervolume\n`, { mode: 0o644 });
  await rename(tmp, join(dir, name));
  return pair;
}

function parsePrivate(text: string, path: string): ssh2.ParsedKey {
  const key = sshUtils().parseKey(text);
  if (key instanceof Error || !key.isPrivateKey()) {
    throw new SshKeyError('ERR_SSH_KEY', `${path} is not an unencrypted private key${key instanceof Error ? ` (${key.message})` : ''}`);
  }
  return key;
}

/** This host's server key, made (ed25519) on first use. */
export async function hostKey(dir: string): Promise<string> {
  const path = join(dir, HOST_KEY_FILE);
  const text = (await readOptional(path)) ?? (await createKeyPair(dir, HOST_KEY_FILE)).private;
  parsePrivate(text, path);
  return text;
}

/**
 * Makes the host key and the client key when they do not exist yet (the
 * daemon's start: so `buttervolume ssh-key` has one to show), and checks that
 * existing ones look like OpenSSH private keys, without loading ssh2: the
 * keys are parsed when first used.
 * @throws SshKeyError `ERR_SSH_KEY` for a file that is not a private key.
 */
export async function ensureKeyFiles(dir: string): Promise<void> {
  const looksPrivate = (text: string, path: string) => {
    if (!/^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new SshKeyError('ERR_SSH_KEY', `${path} is not an unencrypted private key`);
  };
  const host = join(dir, HOST_KEY_FILE);
  const hostText = await readOptional(host);
  if (hostText === undefined) await createKeyPair(dir, HOST_KEY_FILE);
  else looksPrivate(hostText, host);
  for (const name of ['id_ed25519', 'id_rsa']) {
    const path = join(dir, name);
    const text = await readOptional(path);
    if (text !== undefined) return looksPrivate(text, path);
  }
  await createKeyPair(dir, 'id_ed25519');
}

/** This host's client key: id_ed25519, else id_rsa, else a new id_ed25519. */
export async function clientKey(dir: string): Promise<{ path: string; privateKey: string; publicLine: string }> {
  for (const name of ['id_ed25519', 'id_rsa']) {
    const path = join(dir, name);
    const text = await readOptional(path);
    if (text === undefined) continue;
    const key = parsePrivate(text, path);
    return { path, privateKey: text, publicLine: `${key.type} ${key.getPublicSSH().toString('base64')}` };
  }
  const pair = await createKeyPair(dir, 'id_ed25519');
  const key = parsePrivate(pair.private, join(dir, 'id_ed25519'));
  return { path: join(dir, 'id_ed25519'), privateKey: pair.private, publicLine: `${key.type} ${key.getPublicSSH().toString('base64')}` };
}

/** The host pattern known_hosts uses for a peer: `name`, or `[name]:port` when not 22. */
export function knownHostsName(peer: Pick<Peer, 'host' | 'port'>): string {
  return peer.port === 22 ? peer.host : `[${peer.host}]:${peer.port}`;
}

// `|1|salt|hash`: HMAC-SHA1 of the name with the salt (OpenSSH's HashKnownHosts).
function hashedMatches(pattern: string, name: string): boolean {
  const m = /^\|1\|([^|]+)\|([^|]+)$/.exec(pattern);
  if (!m) return false;
  return createHmac('sha1', Buffer.from(m[1]!, 'base64')).update(name).digest('base64') === m[2];
}

function patternMatches(patterns: string, name: string): boolean {
  return patterns.split(',').some((p) => p === name || hashedMatches(p, name));
}

/** What the known_hosts check decided. */
export type HostKeyVerdict = { kind: 'known' } | { kind: 'new' } | { kind: 'changed'; file: string; line: number };

/** A key known_hosts records for a peer. */
export interface RecordedHostKey {
  type: string;
  /** The key, base64 of its SSH wire form. */
  data: string;
  line: number;
}

/** The keys known_hosts records for `peer`, whatever their type, in file order. */
export async function recordedHostKeys(dir: string, peer: Pick<Peer, 'host' | 'port'>): Promise<RecordedHostKey[]> {
  const name = knownHostsName(peer);
  const keys: RecordedHostKey[] = [];
  for (const [i, raw] of ((await readOptional(join(dir, KNOWN_HOSTS_FILE))) ?? '').split('\n').entries()) {
    const line = raw.trim();
    // Markers (@cert-authority, @revoked) never make a key trusted here.
    if (line === '' || line.startsWith('#') || line.startsWith('@')) continue;
    const [patterns, type, data] = line.split(/\s+/);
    if (patterns === undefined || type === undefined || data === undefined || !patternMatches(patterns, name)) continue;
    keys.push({ type, data, line: i + 1 });
  }
  return keys;
}

/**
 * Checks the host key `key` (SSH wire format) of `peer` against known_hosts:
 * once any key is recorded for a host, only a key equal to a recorded one is
 * accepted; a key of another type is as "changed" as a different key of the
 * same type (a man in the middle shows whatever type it has).
 */
export async function checkHostKey(dir: string, peer: Pick<Peer, 'host' | 'port'>, key: Buffer): Promise<HostKeyVerdict> {
  const parsed = sshUtils().parseKey(key);
  if (parsed instanceof Error) throw new SshKeyError('ERR_SSH_KEY', `the host key of ${knownHostsName(peer)} cannot be read: ${parsed.message}`);
  const recorded = await recordedHostKeys(dir, peer);
  const blob = key.toString('base64');
  if (recorded.some((r) => r.type === parsed.type && r.data === blob)) return { kind: 'known' };
  const first = recorded[0];
  return first ? { kind: 'changed', file: join(dir, KNOWN_HOSTS_FILE), line: first.line } : { kind: 'new' };
}

/** Appends the host key of `peer` to known_hosts (first contact). */
export async function recordHostKey(dir: string, peer: Pick<Peer, 'host' | 'port'>, key: Buffer): Promise<void> {
  const parsed = sshUtils().parseKey(key);
  if (parsed instanceof Error) return;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, KNOWN_HOSTS_FILE);
  const handle = await open(path, 'a', 0o644);
  try {
    await handle.write(`${knownHostsName(peer)} ${parsed.type} ${key.toString('base64')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(path, 0o644).catch(() => undefined);
}
