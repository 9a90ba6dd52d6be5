// The original's scheduler tests (test.py, reference section 2.12), each
// expressed as one or two passes of runSchedulerPass with an explicit `now`
// (what `buttervolume scheduled run --now` does), on real btrfs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { runSchedulerPass } from '../../src/scheduler/pass.js';
import { FakeReplicator, installation, ls, twentyHourly, volumeWithFoobar } from './fixtures/installation.js';

process.env.TZ = 'UTC';
const DAY = 24 * 3600e3;

t.test('test_schedule_snapshot', async (t) => {
  const bv = await installation(t);
  const [vol1, vol2] = ['buttervolume-test-1', 'buttervolume-test-2'];
  await volumeWithFoobar(bv.store, vol1);
  await volumeWithFoobar(bv.store, vol2);
  t.same((await bv.schedule.read()).entries, [], 'empty schedule');
  await bv.schedule.update({ name: vol1, action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: vol2, action: 'snapshot', timer: 60 });
  const { entries } = await bv.schedule.read();
  t.same(entries.map((e) => [e.action, String(e.timer)]), [['snapshot', '60'], ['snapshot', '60']]);
  t.equal(readFileSync(bv.config.schedulePath, 'utf8').split('\n')[1], `${vol2},snapshot,60,True`);

  const now = new Date();
  const first = await runSchedulerPass(bv.ctx(), { now });
  t.same(first.jobs.map((j) => [j.name, j.ran, j.ok]), [[vol1, true, true], [vol2, true, true]]);
  t.equal((await bv.store.snapshots()).length, 2, 'one pass: 2 snapshots');

  await bv.schedule.update({ name: vol1, action: 'snapshot', timer: 0 });
  t.equal(readFileSync(bv.config.schedulePath, 'utf8').trim().split('\n').length, 1, 'timer 0 removes the line');
  // test.py injects "vol2 last ran a day ago"; here the pass runs a day later.
  const later = await runSchedulerPass(bv.ctx(), { now: new Date(now.getTime() + DAY) });
  t.same(later.jobs.map((j) => [j.name, j.ran]), [[vol2, true]]);
  t.equal((await bv.store.snapshots()).length, 3);
  await bv.schedule.update({ name: vol2, action: 'snapshot', timer: 'delete' });
  t.same((await bv.schedule.read()).entries, []);
});

t.test('test_schedule_purge: purge:2h:2h every 60 min deletes 18 in one pass', async (t) => {
  const bv = await installation(t);
  const vol = 'buttervolume-test-purge';
  await volumeWithFoobar(bv.store, vol);
  const now = new Date();
  const names = await twentyHourly(bv.config, vol, now);
  t.equal((await bv.store.snapshots(vol)).length, 22);
  await bv.schedule.update({ name: vol, action: 'purge:2h:2h', timer: '60' });
  const pass = await runSchedulerPass(bv.ctx(), { now });
  t.same(pass.jobs, [{ name: vol, action: 'purge:2h:2h', ran: true, ok: true, detail: 'deleted 18 snapshots' }]);
  t.same(await bv.store.snapshots(vol), [names[0], names[20], names[1], `${vol}@invalid`].sort(), 'kept: 0 h, 1 h, marker, invalid');
  const again = await runSchedulerPass(bv.ctx(), { now: new Date(now.getTime() + 3600e3) });
  t.equal(again.jobs[0]!.detail, 'deleted 0 snapshots', 'an hour later: nothing more');
});

t.test('test_schedule_replicate, with a missing volume boo', async (t) => {
  const bv = await installation(t);
  const vol = 'buttervolume-test-repl';
  await volumeWithFoobar(bv.store, vol);
  await bv.schedule.update({ name: vol, action: 'replicate:localhost', timer: '120' });
  await bv.schedule.update({ name: 'boo', action: 'replicate:localhost', timer: '120' });
  const replicator = new FakeReplicator(bv.config);
  const pass = await runSchedulerPass(bv.ctx({ replicator }), { now: new Date() });
  const [mine, boo] = pass.jobs;
  t.match(mine, { name: vol, ran: true, ok: true, detail: /^took and sent buttervolume-test-repl@\S+ to localhost$/ });
  t.match(boo, { name: 'boo', ran: true, ok: false, error: 'No such volume: boo' }, 'boo fails alone');
  const local = await bv.store.snapshots(vol);
  t.equal(local.length, 2, 'snapshot + marker');
  t.equal(local[1], `${local[0]}@localhost`);
  t.same(ls(bv.config.testRemotePath), [local[0]], '1 in the remote dir');
  t.equal(readFileSync(join(bv.config.testRemotePath, local[0]!, 'foobar'), 'utf8'), 'foobar');
  t.same(replicator.calls, [`send ${local[0]} localhost`], 'boo never reached the replicator');
  t.ok(bv.log.some((l) => / ERROR scheduled replicate:localhost of boo failed: No such volume: boo/.test(l)));
});

t.test('test_schedule_synchronization: one snapshot first, one host unreachable, boo missing', async (t) => {
  const bv = await installation(t);
  const vol = 'buttervolume-test-sync';
  const path = await volumeWithFoobar(bv.store, vol);
  // The "remote" live volume holds foobar = "test sync".
  const remote = join(bv.config.testRemotePath, vol);
  mkdirSync(remote);
  writeFileSync(join(remote, 'foobar'), 'test sync');
  await bv.schedule.update({ name: vol, action: 'synchronize:localhost,wronghost.mlf', timer: '120' });
  await bv.schedule.update({ name: 'boo', action: 'synchronize:localhost', timer: '120' });
  const replicator = new FakeReplicator(bv.config);
  const pass = await runSchedulerPass(bv.ctx({ replicator }), { now: new Date() });
  const snaps = await bv.store.snapshots(vol);
  t.equal(snaps.length, 1, 'exactly one snapshot');
  t.equal(readFileSync(join(bv.config.snapshotsPath, snaps[0]!, 'foobar'), 'utf8'), 'foobar', 'taken before the pull');
  t.equal(readFileSync(join(path, 'foobar'), 'utf8'), 'test sync', 'pulled from the reachable host');
  t.match(pass.jobs[0], { ran: true, ok: false, detail: `took ${snaps[0]}`, error: /wronghost\.mlf/ });
  t.match(pass.jobs[1], { name: 'boo', ran: true, ok: false, error: 'No such volume: boo' });
  t.same(replicator.calls, [`sync ${vol} localhost,wronghost.mlf`], 'no pull into a volume that does not exist');
  // Changed locally, then the next period: pulled again (no --delete, files merged).
  writeFileSync(join(path, 'foobar'), 'local change');
  await runSchedulerPass(bv.ctx({ replicator }), { now: new Date(Date.now() + 121 * 60e3) });
  t.equal(readFileSync(join(path, 'foobar'), 'utf8'), 'test sync');
});

t.test('with the default (SSH) replicator, an unreachable peer fails its jobs clearly; others run', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  // Nothing listens on port 1 of this machine: refused at once.
  await bv.schedule.update({ name: 'db', action: 'replicate:127.0.0.1:1', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'synchronize:127.0.0.1:1,127.0.0.2:1', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  const { jobs } = await runSchedulerPass(bv.ctx(), { now: new Date() });
  t.match(jobs[0], { ran: true, ok: false, error: /^send of db@\S+ to 127\.0\.0\.1:1 failed: cannot reach 127\.0\.0\.1:1 \(127\.0\.0\.1 port 1\): ECONNREFUSED/ });
  t.match(jobs[1], { ran: true, ok: false, error: /^synchronize from 127\.0\.0\.1:1, 127\.0\.0\.2:1 failed: .*127\.0\.0\.1:1.*127\.0\.0\.2:1/ });
  t.match(jobs[2], { ran: true, ok: true, detail: /^took db@/ });
});
