// Issue 5, Scheduler 4 (the original's issue #22): a failed replication does
// not leave one more local snapshot per period. The next run sends the
// newest unsent snapshot again when the volume has not changed since
// (same parent UUID, same ctransid), and a snapshot the job took but never
// sent is deleted once a newer one supersedes it.
// The replicator is a fake peer (see fixtures/installation.ts); these cases will be
// re-expressed against a real SSH peer with the replication issue.
import { closeSync, openSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { runSchedulerPass } from '../../src/scheduler/pass.js';
import { SchedulerState } from '../../src/scheduler/state.js';
import { superseded } from '../../src/scheduler/unsent.js';
import { newestSnapshot } from '../../src/store/names.js';
import { FakeReplicator, installation, volumeWithFoobar } from './fixtures/installation.js';

process.env.TZ = 'UTC';
const MIN = 60e3;

t.test('a host down for several periods: one snapshot, sent again until it goes through', async (t) => {
  const bv = await installation(t);
  const path = await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'replicate:node2', timer: '60' });
  const replicator = new FakeReplicator(bv.config);
  replicator.down.add('node2');
  const t0 = new Date();
  const pass = (minutes: number) => runSchedulerPass(bv.ctx({ replicator }), { now: new Date(t0.getTime() + minutes * MIN) });

  const first = await pass(0);
  const [s1] = await bv.store.snapshots('db');
  t.match(first.jobs[0], { ran: true, ok: false, detail: `took ${s1}`, error: /^send of db@\S+ to node2 failed: ssh: connect to host node2/ });
  for (const minutes of [60, 120, 180]) {
    const retry = await pass(minutes);
    t.match(retry.jobs[0], { ran: true, ok: false, detail: `kept ${s1}` }, `period ${minutes / 60}: no new snapshot`);
  }
  t.same(await bv.store.snapshots('db'), [s1], 'still one snapshot after 4 failed periods');
  t.same(replicator.calls, Array(4).fill(`send ${s1} node2`), 'the same snapshot each time');

  // The volume changes while the host is down: a new snapshot replaces the unsent one.
  writeFileSync(join(path, 'foobar'), 'changed');
  await pass(240);
  const [s2] = await bv.store.snapshots('db');
  t.not(s2, s1);
  t.equal((await bv.store.snapshots('db')).length, 1, 'the superseded unsent snapshot was deleted');
  t.ok(bv.log.some((l) => l.includes(`deleted ${s1}, never sent and superseded by ${s2}`)));

  // The host is back: the pending snapshot is sent, not a new one.
  replicator.down.delete('node2');
  const ok = await pass(300);
  t.match(ok.jobs[0], { ran: true, ok: true, detail: `sent the unsent ${s2} to node2` });
  t.same(await bv.store.snapshots('db'), [s2, `${s2}@node2`]);
  const state = await SchedulerState.of(bv.config).records(bv.logger);
  t.equal([...state.values()][0]!.unsent, undefined, 'nothing pending any more');

  // Sent and unchanged: a new snapshot each period, as the original (an incremental send).
  await pass(360);
  t.equal((await bv.store.snapshots('db')).filter((n) => !n.includes('@node2')).length, 2);
});

t.test('the rule reuses a snapshot it did not take, and never deletes it', async (t) => {
  const bv = await installation(t);
  const path = await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'replicate:node2', timer: '60' });
  const replicator = new FakeReplicator(bv.config);
  replicator.down.add('node2');
  const user = await bv.store.snapshot('db'); // e.g. a `snapshot` job or a user
  const t0 = new Date();
  const first = await runSchedulerPass(bv.ctx({ replicator }), { now: t0 });
  t.match(first.jobs[0], { ok: false, detail: `kept ${user}` }, 'unchanged since: sent instead of a new one');
  t.equal((await SchedulerState.of(bv.config).records(bv.logger)).values().next().value?.unsent, undefined, 'not recorded as its own');
  writeFileSync(join(path, 'foobar'), 'changed');
  await runSchedulerPass(bv.ctx({ replicator }), { now: new Date(t0.getTime() + 60 * MIN) });
  const names = await bv.store.snapshots('db');
  t.equal(names.length, 2, 'the user snapshot is kept, a new one taken');
  t.ok(names.includes(user));
});

t.test('unsentSnapshot: changed content, restored volume, markers, missing volume', async (t) => {
  const bv = await installation(t);
  const path = await volumeWithFoobar(bv.store, 'db');
  const s1 = await bv.store.snapshot('db');
  t.equal(await bv.store.unsentSnapshot('db', 'h'), s1, 'unchanged');
  await bv.store.markSent(s1, 'h');
  t.equal(await bv.store.unsentSnapshot('db', 'h'), null, 'already sent to that host');
  t.equal(await bv.store.unsentSnapshot('db', 'other'), s1, 'sent elsewhere only');
  writeFileSync(join(path, 'new'), 'x');
  t.equal(await bv.store.unsentSnapshot('db', 'other'), null, 'a new file is seen');
  await bv.store.snapshot('db');
  utimesSync(join(path, 'new'), new Date(0), new Date(0));
  t.equal(await bv.store.unsentSnapshot('db', 'h'), null, 'metadata changes count');
  const s3 = await bv.store.snapshot('db');
  t.equal(await bv.store.unsentSnapshot('db', 'h'), s3);
  // An append through an open descriptor, still in the page cache: without
  // the flush the volume's ctransid would not move (seen on Linux 6.x).
  const fd = openSync(join(path, 'new'), 'a');
  writeSync(fd, 'appended');
  t.equal(await bv.store.unsentSnapshot('db', 'h'), null, 'a buffered append is seen');
  closeSync(fd);
  const s4 = await bv.store.snapshot('db');
  t.equal(await bv.store.unsentSnapshot('db', 'h'), s4);
  // Restore swaps in another subvolume, with the restored snapshot's ctransid.
  await bv.store.restore(s3);
  t.equal(await bv.store.unsentSnapshot('db', 'h'), null, 'not a snapshot of the live volume');
  await bv.store.remove('db');
  t.equal(await bv.store.unsentSnapshot('db', 'h'), null, 'volume gone');
  t.equal(await bv.store.unsentSnapshot('none', 'h'), null, 'no snapshot at all');
});

t.test('newestSnapshot and superseded', async (t) => {
  const F = '%Y-%m-%dT%H:%M:%S.%f';
  const a = 'v@2024-01-01T00:00:00.000000';
  const b = 'v@2024-06-01T00:00:00.000000';
  t.equal(newestSnapshot([b, a, `${b}x`, 'v@invalid', `${b}@h`, 'w@2030-01-01T00:00:00.000000'], 'v', F), b, 'markers and other volumes are not candidates; undated names rank below dated ones');
  t.equal(newestSnapshot(['v@invalid'], 'v', F), 'v@invalid', 'an undated name when there is nothing else (the original picked it too)');
  t.equal(newestSnapshot(['v@invalid', 'v@other'], 'v', F), 'v@other', 'undated ones: the greater name');
  t.equal(newestSnapshot(['w@invalid'], 'v', F), null);
  t.equal(newestSnapshot(['v@2024-01-01T00:00:00.000000', 'v@2024-01-01T00:00:00.0'], 'v', F), 'v@2024-01-01T00:00:00.000000', 'a tie goes to the greater name');
  t.equal(newestSnapshot([b, 'v@2023-01-01T00:00:00.000000'], 'v', F), b, 'by date, not by position');
  t.equal(superseded(undefined, b, [a, b]), false);
  t.equal(superseded(b, b, [a, b]), false, 'the same snapshot');
  t.equal(superseded(a, b, [b]), false, 'already gone');
  t.equal(superseded(a, b, [a, `${a}@other`, b]), false, 'sent to some host: others depend on it');
  t.equal(superseded(a, b, [a, b]), true);
});
