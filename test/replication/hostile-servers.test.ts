// Our client against servers that stall: a pull whose stream stops half-way,
// a send the server stops reading, a sync whose tree never comes. Each is
// given up after REPLICATION_IDLE_TIMEOUT, and holds nothing afterwards (no
// temporary subvolume, no lock). The servers are ssh2 itself speaking our
// protocol; the client is the real one, on a real store.
import { readdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { createLogger } from '../../src/log.js';
import { SUBSYSTEM } from '../../src/replication/protocol.js';
import { SshReplicator } from '../../src/replication/replicator.js';
import { requireRoot } from '../fixtures/btrfs.js';
import { daemonConfig } from '../fixtures/daemon.js';
import { openStore } from '../fixtures/store.js';

requireRoot();

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

type Behaviour = (request: Record<string, unknown>, channel: ssh2.ServerChannel) => void;

/** An ssh2 server that accepts anyone and answers each request line with `behaviour`. */
async function stallingServer(t: TeardownHost, behaviour: Behaviour): Promise<number> {
  let hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  while (ssh2.utils.parseKey(hostKey) instanceof Error) hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('error', () => undefined);
    client.on('ready', () =>
      client.on('session', (accept) =>
        accept().on('subsystem', (acceptSub, reject, info) => {
          if (info.name !== SUBSYSTEM) return reject();
          const channel = acceptSub();
          let text = '';
          const onData = (c: Buffer) => {
            text += c.toString('latin1');
            const nl = text.indexOf('\n');
            if (nl < 0) return;
            channel.off('data', onData);
            channel.pause();
            behaviour(JSON.parse(text.slice(0, nl)) as Record<string, unknown>, channel);
          };
          channel.on('data', onData);
        }),
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** A replicator on a fresh store whose REPLICATION_IDLE_TIMEOUT is 1 s. */
async function client(t: TeardownHost) {
  const { mnt, store } = await openStore(t);
  const sshPath = mkdtempSync(join(tmpdir(), 'bv-client-ssh-'));
  t.teardown(() => rmSync(sshPath, { recursive: true, force: true }));
  const config = daemonConfig(mnt, { BUTTERVOLUME_REPLICATION_IDLE_TIMEOUT: '1', BUTTERVOLUME_SSH_PATH: sshPath });
  const logs: string[] = [];
  const replicator = new SshReplicator({ config, store, logger: createLogger('DEBUG', (l) => logs.push(l)) });
  return { store, replicator, logs };
}

/** A snapshot of volume `v` holding `bytes` of data, made on a btrfs of its own: its name, identity and send stream. */
async function snapshotStream(t: TeardownHost, bytes: number) {
  const { store } = await openStore(t);
  await store.create('v', { copyOnWrite: true, compression: null });
  writeFileSync(join(store.layout.volume('v'), 'data'), Buffer.alloc(bytes).map((_, i) => (i * 2654435761) >>> 24));
  const name = await store.snapshot('v');
  const info = await btrfs.subvolumeInfo(store.layout.snapshot(name));
  const parts: Buffer[] = [];
  for await (const c of btrfs.send(store.layout.snapshot(name))) parts.push(c as Buffer);
  const listed = { name, uuid: info.uuid, receivedUuid: null, parentUuid: null, ctransid: info.ctransid, stransid: 0, rtransid: 0, readonly: true };
  return { name, listed, stream: Buffer.concat(parts) };
}

async function lockFree(store: Awaited<ReturnType<typeof client>>['store'], volume: string): Promise<boolean> {
  return Promise.race([store.withVolumeLock(volume, 'exclusive', async () => true), sleep(3000).then(() => false)]);
}

t.test('a pull whose stream stops half-way is given up; nothing partial stays, the lock is released', async (t) => {
  const snap = await snapshotStream(t, 6 << 20);
  const port = await stallingServer(t, (request, channel) => {
    if (request.op === 'list') return channel.end(`${JSON.stringify({ ok: true, snapshots: [snap.listed] })}\n`);
    if (request.op === 'send') channel.write(Buffer.concat([Buffer.from('{"ok":true}\n'), snap.stream.subarray(0, snap.stream.length >> 1)]));
    // ...and nothing more, ever.
  });
  const { store, replicator } = await client(t);
  const started = Date.now();
  const err = await replicator.pull(`127.0.0.1:${port}`, 'v').then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  const ms = Date.now() - started;
  t.equal(err?.code, 'ERR_PEER_TIMEOUT', `given up (${ms} ms)`);
  t.match(err?.message, /REPLICATION_IDLE_TIMEOUT/);
  t.ok(ms < 10_000);
  t.same(readdirSync(store.layout.paths.snapshotsPath), [], 'no temporary subvolume, nothing received');
  t.ok(await lockFree(store, 'v'), "the volume's lock is released");
});

t.test('a send the server stops reading is given up', async (t) => {
  const port = await stallingServer(t, (request, channel) => {
    if (request.op === 'list') return channel.end(`${JSON.stringify({ ok: true, snapshots: [] })}\n`);
    if (request.op === 'receive') channel.write(`${JSON.stringify({ ok: true, ready: true })}\n`); // then never reads
  });
  const { store, replicator } = await client(t);
  await store.create('v', { copyOnWrite: true, compression: null });
  writeFileSync(join(store.layout.volume('v'), 'data'), Buffer.alloc(24 << 20).map((_, i) => (i * 2246822519) >>> 24));
  const name = await store.snapshot('v');
  const started = Date.now();
  const err = await replicator.send(name, `127.0.0.1:${port}`).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.equal(err?.code, 'ERR_PEER_TIMEOUT', `given up (${Date.now() - started} ms): ${err?.message}`);
  t.ok(Date.now() - started < 15_000);
  t.notOk(readdirSync(store.layout.paths.snapshotsPath).some((n) => n.includes(`${name}@`)), 'no send marker for what did not arrive');
});

t.test('a sync whose tree never comes is given up, the local volume untouched', async (t) => {
  const port = await stallingServer(t, (request, channel) => {
    if (request.op === 'tree') channel.write(`${JSON.stringify({ ok: true })}\n`); // then nothing
  });
  const { store, replicator } = await client(t);
  await store.create('v', { copyOnWrite: true, compression: null });
  writeFileSync(join(store.layout.volume('v'), 'mine'), 'kept');
  const err = await replicator.sync('v', [`127.0.0.1:${port}`]).then(
    () => null,
    (e: Error & { code?: string; result?: { hosts: Array<{ ok: boolean; error?: string }> } }) => e,
  );
  t.equal(err?.code, 'ERR_SYNC_FAILED');
  t.match(err?.result?.hosts[0]?.error, /sent nothing for 1 s \(REPLICATION_IDLE_TIMEOUT\)/, 'the host failed for its silence');
  t.same(readdirSync(store.layout.volume('v')), ['mine']);
  t.ok(await lockFree(store, 'v'), "the volume's lock is released");
});
