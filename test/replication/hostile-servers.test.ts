// Our client against servers that stall: a pull whose stream stops half-way,
// a send the server stops reading, a sync whose tree never comes. Each is
// given up after REPLICATION_IDLE_TIMEOUT, and holds nothing afterwards (no
// temporary subvolume, no lock). The servers are ssh2 itself speaking our
// protocol; the client is the real one, on a real store.
import { readdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { createLogger } from '../../src/log.js';
import { SshReplicator } from '../../src/replication/replicator.js';
import { requireRoot } from '../fixtures/btrfs.js';
import { daemonConfig } from '../fixtures/daemon.js';
import { scriptedPeer } from '../fixtures/scripted-peer.js';
import { openStore } from '../fixtures/store.js';

requireRoot();

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
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
  const { port } = await scriptedPeer(t, (request, channel) => {
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
  const { port } = await scriptedPeer(t, (request, channel) => {
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
  const { port } = await scriptedPeer(t, (request, channel) => {
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
