// Our SSH client against a man in the middle: once a host key is recorded
// for a peer, only that key is accepted, whatever type the impostor shows
// (ECDSA, RSA, another ed25519), and the impostor never sees us
// authenticate, let alone a snapshot. First contact prefers ed25519. Real
// ssh2 servers on loopback, our real client.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';

import { createLogger } from '../../src/log.js';
import { PeerConnection } from '../../src/replication/client.js';
import { parsePeer } from '../../src/replication/peer.js';

type KeyType = 'ed25519' | 'ecdsa' | 'rsa';

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

function keyPair(type: KeyType): { private: string; public: string } {
  for (;;) {
    const pair = type === 'rsa' ? ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }) : type === 'ecdsa' ? ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }) : ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair; // ssh2 makes an unreadable ed25519 key now and then
  }
}

/** The known_hosts line `[127.0.0.1]:port type base64` of a public key. */
function knownLine(port: number, publicKey: string): string {
  const parsed = ssh2.utils.parseKey(publicKey) as ssh2.ParsedKey;
  return `[127.0.0.1]:${port} ${parsed.type} ${parsed.getPublicSSH().toString('base64')}`;
}

interface FakePeer {
  port: number;
  /** Authentication attempts it saw (an impostor must see none). */
  attempts: number;
}

/** An ssh2 server with `hostKeys` that accepts any key. */
async function fakePeer(t: TeardownHost, hostKeys: string[]): Promise<FakePeer> {
  const peer = { port: 0, attempts: 0 };
  const server = new ssh2.Server({ hostKeys }, (client) => {
    client.on('authentication', (ctx) => {
      peer.attempts++;
      ctx.accept();
    });
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  peer.port = (server.address() as AddressInfo).port;
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return peer;
}

function sshDir(t: TeardownHost): string {
  const dir = mkdtempSync(join(tmpdir(), 'bv-hostkeys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const logger = createLogger('ERROR', () => undefined);

async function connect(dir: string, port: number): Promise<Error | null> {
  try {
    const conn = await PeerConnection.connect(parsePeer(`127.0.0.1:${port}`, 1122), { sshPath: dir, logger, timeoutMs: 10_000 });
    conn.close();
    return null;
  } catch (err) {
    return err as Error;
  }
}

const ed25519 = keyPair('ed25519');

for (const impostor of ['ecdsa', 'rsa', 'ed25519'] as const) {
  t.test(`a peer recorded with an ed25519 key that shows ${impostor === 'ed25519' ? 'another ed25519' : `an ${impostor.toUpperCase()}`} key is refused before we authenticate`, async (t) => {
    const dir = sshDir(t);
    const mitm = await fakePeer(t, [keyPair(impostor).private]);
    writeFileSync(join(dir, 'known_hosts'), `# the real peer\n${knownLine(mitm.port, ed25519.public)}\n`);
    const err = await connect(dir, mitm.port);
    t.equal((err as { code?: string } | null)?.code, 'ERR_HOST_KEY_CHANGED');
    t.match(err?.message, new RegExp(`${join(dir, 'known_hosts').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} line 2`), 'the message names the file and the line');
    t.equal(mitm.attempts, 0, 'the impostor never saw us authenticate');
    t.equal(readFileSync(join(dir, 'known_hosts'), 'utf8').split('\n').filter(Boolean).length, 2, 'nothing was recorded');
  });
}

t.test('an impostor offering the recorded type with another key and other types too is refused', async (t) => {
  const dir = sshDir(t);
  const mitm = await fakePeer(t, [keyPair('ecdsa').private, keyPair('ed25519').private]);
  writeFileSync(join(dir, 'known_hosts'), `${knownLine(mitm.port, ed25519.public)}\n`);
  const err = await connect(dir, mitm.port);
  t.equal((err as { code?: string } | null)?.code, 'ERR_HOST_KEY_CHANGED');
  t.match(err?.message, /line 1: refused/);
  t.equal(mitm.attempts, 0);
});

t.test('first contact records the ed25519 key of a peer that has several; the recorded key is then the only one asked for', async (t) => {
  const dir = sshDir(t);
  const peer = await fakePeer(t, [keyPair('ecdsa').private, keyPair('rsa').private, ed25519.private]);
  t.equal(await connect(dir, peer.port), null, 'first contact: connected');
  const recorded = readFileSync(join(dir, 'known_hosts'), 'utf8').trim().split('\n');
  t.equal(recorded.length, 1, 'one key recorded');
  t.equal(recorded[0], knownLine(peer.port, ed25519.public), 'its ed25519 key');
  t.equal(await connect(dir, peer.port), null, 'the same peer again: connected');
  t.equal(peer.attempts, 2, 'it saw us authenticate twice');
});

t.test('a peer recorded with an ECDSA key (an older installation) is asked for that type and accepted', async (t) => {
  const dir = sshDir(t);
  const ecdsa = keyPair('ecdsa');
  const peer = await fakePeer(t, [ed25519.private, ecdsa.private]);
  writeFileSync(join(dir, 'known_hosts'), `${knownLine(peer.port, ecdsa.public)}\n`);
  t.equal(await connect(dir, peer.port), null, 'connected: its recorded ECDSA key was asked for and matched');
  t.equal(readFileSync(join(dir, 'known_hosts'), 'utf8').trim().split('\n').length, 1, 'its ed25519 key was not recorded as well');
});
