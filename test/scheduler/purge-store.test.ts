// Purge through the store on real snapshots (issue 5, Purge 2-4): the
// original's numbers, dry run, evaluation at another time (`purge --now`),
// and the protection of the replication chain. Snapshots are made with names
// in the past: a volume, then read-only btrfs snapshots of it named
// SNAPSHOTS_PATH/<vol>@<past date>.
import t from 'tap';

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import * as btrfs from '../../src/btrfs/index.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { FakeReplicator, installation, snapshotAt, twentyHourly, volumeWithFoobar } from './fixtures/installation.js';
import { runSchedulerPass } from '../../src/scheduler/pass.js';

process.env.TZ = 'UTC';
const H = 3600e3;
const DAY = 24 * H;

t.test('the numbers of Purge 2 on real snapshots', async (t) => {
  const bv = await installation(t);
  const vol = 'vol';
  await volumeWithFoobar(bv.store, vol);
  t.same(await bv.store.purge(vol, '2h:2h'), [], 'no snapshots: harmless');
  const now = new Date();
  const names = await twentyHourly(bv.config, vol, now);
  const kept = (deleted: string[]) => names.filter((n) => !deleted.includes(n)).sort();

  for (const [pattern, count] of [['2h:2h', 18], ['2h:4h:8h:16h', 15], ['60m:120m:300m:240m:180m', 18]] as const) {
    const dry = await bv.store.purge(vol, pattern, { now, dryRun: true });
    t.equal(dry.length, count, `${pattern} would delete ${count}`);
    t.equal((await bv.store.snapshots(vol)).length, 22, 'dry run deletes nothing');
  }
  const deleted = await bv.store.purge(vol, '2h:2h', { now });
  t.equal(deleted.length, 18);
  t.same(await bv.store.snapshots(vol), kept(deleted));
  t.same(await bv.store.purge(vol, '2h:2h', { now }), [], 'a second run deletes 0');
  await t.rejects(bv.store.purge(vol, '60m:plop:3000m'), {
    code: 'ERR_INVALID_PURGE_PATTERN',
    message: 'invalid purge pattern "60m:plop:3000m": "plop" is not <number><m|h|d|w|y>',
  });
});

t.test('2h:4h:8h:16h deletes 15; the unsorted pattern 18 (fresh snapshots each)', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'a');
  await volumeWithFoobar(bv.store, 'b');
  const now = new Date();
  await twentyHourly(bv.config, 'a', now);
  await twentyHourly(bv.config, 'b', now);
  t.equal((await bv.store.purge('a', '2h:4h:8h:16h', { now })).length, 15);
  t.equal((await bv.store.snapshots('a')).length, 7);
  t.equal((await bv.store.purge('b', '60m:120m:300m:240m:180m', { now })).length, 18);
  t.equal((await bv.store.snapshots('b')).length, 4);
});

t.test('purge --now: the pattern evaluated at another time', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'vol');
  const now = new Date();
  const names = await twentyHourly(bv.config, 'vol', now);
  // What will be kept next month: everything dated is older than 2 h then,
  // except the replication chain (the newest marker and its snapshot).
  const nextMonth = new Date(now.getTime() + 30 * DAY);
  const dry = await bv.store.purge('vol', '2h:1d', { now: nextMonth, dryRun: true });
  t.same(dry.sort(), names.slice(1, 20).sort(), 'all but the chain and @invalid');
  t.equal((await bv.store.snapshots('vol')).length, 22);
  // In the past, the snapshots are "in the future": negative ages, all kept.
  t.same(await bv.store.purge('vol', '2h:1d', { now: new Date(now.getTime() - 30 * DAY) }), []);
});

t.test('the replication chain survives: newest marker per host and its snapshot', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  const now = new Date();
  const at = (hoursAgo: number, host?: string) => snapshotAt(bv.config, 'db', new Date(now.getTime() - hoursAgo * H), host);
  const s100 = await at(100);
  const s90 = await at(90);
  const s80 = await at(80);
  const m100 = await at(100, 'node2');
  const m90 = await at(90, 'node2'); // newest for node2
  const m80 = await at(80, 'node3'); // newest for node3
  const plain = await at(70);
  const deleted = await bv.store.purge('db', '1h:1d', { now });
  t.same(deleted.sort(), [s100, m100, plain].sort(), 'older marker of node2 and unprotected snapshots go');
  t.same(await bv.store.snapshots('db'), [s80, m80, s90, m90].sort(), 'newest marker per host and its parent stay');
});

t.test('on the receiving host, the newest received snapshot (the next incremental\'s parent) survives', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  const now = new Date();
  // Snapshots as a peer took them, sent and received into SNAPSHOTS_PATH.
  const peer = join(dirname(bv.config.snapshotsPath), 'peer-snapshots');
  mkdirSync(peer);
  const received: string[] = [];
  for (const hoursAgo of [100, 90, 80]) {
    const name = `db@${formatTimestamp(new Date(now.getTime() - hoursAgo * H), bv.config.dtFormat)}`;
    await btrfs.snapshot(join(bv.config.volumesPath, 'db'), join(peer, name), { readonly: true });
    const result = await btrfs.receive(bv.config.snapshotsPath, btrfs.send(join(peer, name)));
    received.push(result.name);
  }
  const local = await snapshotAt(bv.config, 'db', new Date(now.getTime() - 70 * H));
  const deleted = await bv.store.purge('db', '1h:1d', { now });
  t.same(deleted.sort(), [received[0], received[1], local].sort(), 'older received and local snapshots go');
  t.same(await bv.store.snapshots('db'), [received[2]], 'the newest received one stays');
});

t.test('a scheduled purge keeps what the next incremental send needs', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  const replicator = new FakeReplicator(bv.config);
  await bv.schedule.update({ name: 'db', action: 'replicate:localhost', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'purge:1h:2h', timer: '60' });
  const now = new Date();
  const first = await runSchedulerPass(bv.ctx({ replicator }), { now });
  t.same(first.jobs.map((j) => j.ok), [true, true]);
  const [sent, marker] = await bv.store.snapshots('db');
  t.equal(marker, `${sent}@localhost`);
  // A day later the purge alone would delete both; the next send still has its parent.
  const later = new Date(now.getTime() + DAY);
  t.same(await bv.store.purge('db', '1h:2h', { now: later, dryRun: true }), []);
  const second = await runSchedulerPass(bv.ctx({ replicator }), { now: later });
  t.same(second.jobs.map((j) => j.ok), [true, true]);
  const s2 = /^took and sent (\S+) to localhost$/.exec(second.jobs[0]!.detail ?? '')?.[1];
  t.same(await bv.store.snapshots('db'), [s2, `${s2}@localhost`], 'the older link goes, the newest stays');
});
