// The embedded SSH server against strangers: a connection that never
// authenticates is closed after the grace period, too many waiting at once
// are closed at once, a client trying key after key is cut off, and through
// all of it an authorized peer still gets in. Real sockets, real ssh2 on
// both sides, a real store behind the service.
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';

import { createLogger } from '../../src/log.js';
import { clientKey } from '../../src/replication/keys.js';
import { startSshServer, type SshServer } from '../../src/replication/server.js';
import { ReplicationService } from '../../src/replication/service.js';
import { requireRoot } from '../fixtures/btrfs.js';
import { daemonConfig } from '../fixtures/daemon.js';
import { openStore } from '../fixtures/store.js';

requireRoot();

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

interface Server {
  server: SshServer;
  logs: string[];
  /** Private key of a client in authorized_keys. */
  authorized: string;
}

async function start(t: TeardownHost, options: { loginGraceMs?: number; maxUnauthenticated?: number }): Promise<Server> {
  const { mnt, store } = await openStore(t);
  const config = daemonConfig(mnt);
  const sshPath = join(mnt, 'ssh');
  mkdirSync(sshPath, { recursive: true });
  const client = await clientKey(join(mnt, 'client-ssh'));
  writeFileSync(join(sshPath, 'authorized_keys'), `${client.publicLine} peer\n`);
  const logs: string[] = [];
  const logger = createLogger('DEBUG', (line) => logs.push(line));
  const server = await startSshServer({ port: 0, host: '127.0.0.1', sshPath, service: new ReplicationService(store, config, logger), logger, ...options });
  t.teardown(() => server.close());
  return { server, logs, authorized: client.privateKey };
}

/** A raw TCP connection that says nothing; resolves `closed` when the server drops it. */
function idle(t: TeardownHost, port: number): { socket: Socket; banner: Promise<string>; closed: Promise<number> } {
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => void socket.destroy());
  const opened = Date.now();
  const banner = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - opened)));
  socket.on('error', () => undefined);
  return { socket, banner, closed };
}

/** Connects with `privateKey` (or, with `keys`, trying each in turn); resolves how it ended. */
function sshConnect(port: number, auth: { privateKey: string } | { keys: string[] }): Promise<'ready' | string> {
  return new Promise((resolve) => {
    const conn = new ssh2.Client();
    let settled = false;
    const done = (how: string) => {
      if (settled) return;
      settled = true;
      conn.end();
      resolve(how);
    };
    conn.on('ready', () => done('ready'));
    conn.on('error', (err) => done(`error: ${err.message}`));
    conn.on('close', () => done('closed'));
    const common = { host: '127.0.0.1', port, username: 'root', hostVerifier: () => true, readyTimeout: 10_000 };
    if ('privateKey' in auth) conn.connect({ ...common, privateKey: auth.privateKey });
    else {
      const left = [...auth.keys];
      conn.connect({
        ...common,
        authHandler: (_methods, _partial, next) => {
          const key = left.shift();
          if (key === undefined) return next(false as never);
          next({ type: 'publickey', username: 'root', key } as never);
        },
      });
    }
  });
}

t.test('a connection that never authenticates is closed after the grace period', async (t) => {
  const { server, logs, authorized } = await start(t, { loginGraceMs: 800 });
  const c = idle(t, server.port);
  t.match(await c.banner, /^SSH-2\.0-buttervolume/, 'the server speaks first');
  const ms = await c.closed;
  t.ok(ms >= 700, `not before the grace period (${ms} ms)`);
  t.ok(ms < 8000, `closed (${ms} ms)`);
  t.ok(logs.some((l) => /not authenticated within 0\.8 s: closed/.test(l)), 'logged');
  t.equal(await sshConnect(server.port, { privateKey: authorized }), 'ready', 'an authorized peer still gets in');
});

t.test('beyond maxUnauthenticated waiting connections, new ones are closed at once; an authorized peer gets in once they go', async (t) => {
  const { server, logs, authorized } = await start(t, { loginGraceMs: 60_000, maxUnauthenticated: 3 });
  const waiting = [0, 1, 2].map(() => idle(t, server.port));
  await Promise.all(waiting.map((w) => w.banner));
  const extra = idle(t, server.port);
  const ms = await extra.closed;
  t.ok(ms < 5000, `the fourth is closed at once (${ms} ms), not after the grace period`);
  t.ok(logs.some((l) => /more than 3 connections waiting to authenticate: closed/.test(l)));
  let stillOpen = true;
  for (const w of waiting) if (w.socket.destroyed) stillOpen = false;
  t.ok(stillOpen, 'the first three are still waiting');
  for (const w of waiting) w.socket.destroy();
  await Promise.all(waiting.map((w) => w.closed));
  // The server sees the closes asynchronously: retry for a moment.
  let how = '';
  for (let i = 0; i < 20 && how !== 'ready'; i++) {
    how = await sshConnect(server.port, { privateKey: authorized });
    if (how !== 'ready') await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(how, 'ready', 'slots are given back when strangers leave');
});

t.test('a client trying key after key is cut off after 6 failures', async (t) => {
  const { server, logs, authorized } = await start(t, {});
  const strangers = Array.from({ length: 10 }, () => ssh2.utils.generateKeyPairSync('ed25519').private);
  const how = await sshConnect(server.port, { keys: strangers });
  t.not(how, 'ready');
  t.ok(logs.some((l) => /6 failed authentications: closed/.test(l)), 'cut off after 6 refusals, not after 10');
  t.equal(logs.filter((l) => /refused a ssh-ed25519 key/.test(l)).length, 6, 'each refusal logged, 6 in all');
  t.equal(await sshConnect(server.port, { keys: [strangers[0]!, authorized] }), 'ready', 'a wrong key then the right one: in');
});

t.test('a host key that looks like one at start but cannot be read: each connection is closed and logged, the next is tried again', async (t) => {
  const { mnt, store } = await openStore(t);
  const config = daemonConfig(mnt);
  const sshPath = join(mnt, 'ssh');
  mkdirSync(sshPath, { recursive: true });
  const hostKeyFile = join(sshPath, 'ssh_host_ed25519_key');
  writeFileSync(hostKeyFile, '-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n', { mode: 0o600 });
  const logs: string[] = [];
  const logger = createLogger('DEBUG', (line) => logs.push(line));
  // The start checks only the header: ssh2 is loaded, and the key parsed, at the first connection.
  const server = await startSshServer({ port: 0, host: '127.0.0.1', sshPath, service: new ReplicationService(store, config, logger), logger });
  t.teardown(() => server.close());
  for (const attempt of [1, 2]) {
    const c = idle(t, server.port);
    await c.closed;
    t.equal(logs.filter((l) => /ERROR ssh server: .*ssh_host_ed25519_key is not an unencrypted private key/.test(l)).length, attempt, `connection ${attempt}: closed, the key error logged`);
  }
});
