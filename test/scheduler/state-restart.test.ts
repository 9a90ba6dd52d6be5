// Persisted last-run times (issue 5, Scheduler 3 and 5): a restart in the
// middle does not re-run what ran, a job that never ran runs at the first
// tick, `scheduled run` and the daemon share one state, and the state file
// is written atomically and survives being damaged or unwritable.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';

import { lock } from '../../src/btrfs/index.js';
import { runSchedulerPass } from '../../src/scheduler/pass.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { SchedulerState, isDue, jobKey, stateFileOf } from '../../src/scheduler/state.js';
import { eventually, installation, volumeWithFoobar } from './fixtures/installation.js';

process.env.TZ = 'UTC';
const MIN = 60e3;

t.test('isDue', async (t) => {
  const last = new Date(2024, 0, 10, 12, 0);
  const at = (minutes: number) => new Date(last.getTime() + minutes * MIN);
  t.equal(isDue(undefined, 60, last), true, 'never ran: due at once');
  t.equal(isDue(last, 60, at(59)), false);
  t.equal(isDue(last, 60, at(60)), true, 'a period later');
  t.equal(isDue(last, 60, at(-30)), false, 'clock set back less than a period: waits');
  t.equal(isDue(last, 60, at(-60)), true, 'clock set back a period or more: the record is not trusted');
});

t.test('restart in the middle: no burst, new jobs run at the first tick', async (t) => {
  const bv = await installation(t);
  for (const v of ['v1', 'v2']) await volumeWithFoobar(bv.store, v);
  await bv.schedule.update({ name: 'v1', action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: 'v2', action: 'snapshot', timer: '120' });
  const T = Date.now();
  const count = async () => (await bv.store.snapshots()).length;

  const first = new Scheduler({ ...bv.ctx(), clock: () => new Date(T), intervalMs: 3_600_000 });
  first.start();
  t.ok(await eventually(async () => (await count()) === 2), 'first start: every job runs at the first tick');
  await first.stop();
  const file = JSON.parse(readFileSync(stateFileOf(bv.config.schedulePath), 'utf8'));
  t.same(file, {
    version: 1,
    jobs: [
      { name: 'v1', action: 'snapshot', lastRun: new Date(T).toISOString(), ok: true },
      { name: 'v2', action: 'snapshot', lastRun: new Date(T).toISOString(), ok: true },
    ],
  }, 'last runs persisted');
  t.equal(statSync(stateFileOf(bv.config.schedulePath)).mode & 0o777, 0o600);
  t.same(readdirSync(dirname(bv.config.schedulePath)).sort(), ['schedule.csv', 'schedule.csv.lock', 'schedule.csv.state.json'], 'no temporary file left');

  // Restarted 30 minutes later (a new instance, as a new process would be), with a new line.
  await volumeWithFoobar(bv.store, 'v3');
  await bv.schedule.update({ name: 'v3', action: 'snapshot', timer: '60' });
  const second = new Scheduler({ ...bv.ctx(), clock: () => new Date(T + 30 * MIN), intervalMs: 3_600_000 });
  t.teardown(() => second.stop());
  await second.tick();
  await second.stop();
  t.same((await bv.store.snapshots()).map((n) => n.split('@')[0]), ['v1', 'v2', 'v3'], 'only the new job ran');

  // `scheduled run --now`, a separate pass with its own state object, sees the same records.
  const later = await runSchedulerPass(bv.ctx(), { now: new Date(T + 61 * MIN) });
  t.same(later.jobs.map((j) => [j.name, j.ran]), [['v1', true], ['v2', false], ['v3', false]]);
  t.match(later.jobs[1], { detail: `next run at ${new Date(T + 120 * MIN).toISOString()}` });
});

t.test('a damaged state file is reported, then read as empty and rewritten', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  const path = stateFileOf(bv.config.schedulePath);
  writeFileSync(path, '{ not json');
  const now = new Date();
  t.match((await runSchedulerPass(bv.ctx(), { now })).jobs[0], { ran: true, ok: true });
  t.ok(bv.log.some((l) => l.includes(`WARNING scheduler state ${path} is not a version 1 state file`)));
  t.equal(JSON.parse(readFileSync(path, 'utf8')).jobs.length, 1, 'rewritten');

  const good = { name: 'db', action: 'snapshot', lastRun: now.toISOString(), ok: true };
  writeFileSync(path, JSON.stringify({ version: 1, jobs: [good, { name: 'x', action: 'snapshot', lastRun: 'yesterday', ok: true }, 7] }));
  bv.log.length = 0;
  t.match((await runSchedulerPass(bv.ctx(), { now })).jobs[0], { ran: false }, 'the good entry still counts');
  t.equal(bv.log.filter((l) => l.includes('malformed entry')).length, 2);
  writeFileSync(path, JSON.stringify({ version: 2, jobs: [] }));
  t.match((await runSchedulerPass(bv.ctx(), { now })).jobs[0], { ran: true }, 'unknown version: as if never ran');
});

t.test('lines deleted from the schedule are forgotten', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'purge:1h:1d', timer: '60' });
  const now = new Date();
  await runSchedulerPass(bv.ctx(), { now });
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: 'delete' });
  await runSchedulerPass(bv.ctx(), { now });
  const records = await SchedulerState.of(bv.config).records(bv.logger);
  t.same([...records.keys()], [jobKey('db', 'purge:1h:1d')]);
  // Added again: never ran, so it runs at once.
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  t.match((await runSchedulerPass(bv.ctx(), { now })).jobs, [{ ran: false }, { action: 'snapshot', ran: true }]);
});

t.test('an unreadable state file: logged, and this process still does not re-run jobs', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  mkdirSync(stateFileOf(bv.config.schedulePath)); // a directory where the file should be
  const state = SchedulerState.of(bv.config);
  const now = new Date();
  const first = await runSchedulerPass(bv.ctx({ state }), { now });
  t.same(first.jobs.map((j) => [j.ran, j.ok]), [[true, true]], 'the job itself succeeds');
  t.equal(bv.log.filter((l) => / ERROR scheduler state \S+ cannot be read/.test(l)).length, 1, 'logged once');
  t.ok(bv.log.some((l) => / ERROR scheduler state not saved \(snapshot of db may run again after a restart\)/.test(l)));
  const second = await runSchedulerPass(bv.ctx({ state }), { now: new Date(now.getTime() + MIN) });
  t.same(second.jobs.map((j) => j.ran), [false], 'remembered in memory');
  const fresh = await runSchedulerPass(bv.ctx(), { now: new Date(now.getTime() + MIN) });
  t.same(fresh.jobs.map((j) => j.ran), [true], 'a process without that memory runs it');
});

t.test('an unwritable state file: updates and pruning are logged, memory still counts', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'purge:1h:1d', timer: '60' });
  const path = stateFileOf(bv.config.schedulePath);
  const state = SchedulerState.of(bv.config);
  const now = new Date();
  await runSchedulerPass(bv.ctx({ state }), { now });
  execFileSync('chattr', ['+i', path]); // even root cannot replace it now
  t.teardown(() => {
    try {
      execFileSync('chattr', ['-i', path]);
    } catch {
      // already unmounted: nothing left to unlock
    }
  });
  bv.log.length = 0;
  const later = new Date(now.getTime() + 61 * MIN);
  t.same((await runSchedulerPass(bv.ctx({ state }), { now: later })).jobs.map((j) => [j.ran, j.ok]), [[true, true], [true, true]]);
  t.equal(bv.log.filter((l) => / ERROR scheduler state not saved \(.* may run again after a restart\): .*EPERM/.test(l)).length, 2);
  t.same((await runSchedulerPass(bv.ctx({ state }), { now: new Date(later.getTime() + MIN) })).jobs.map((j) => j.ran), [false, false]);
  await bv.schedule.update({ name: 'db', action: 'purge:1h:1d', timer: 'delete' });
  await runSchedulerPass(bv.ctx({ state }), { now: later });
  t.ok(bv.log.some((l) => / ERROR scheduler state not saved: .*EPERM/.test(l)), 'pruning that cannot be saved');
});

t.test('another process: a volume it holds is skipped, then its run is seen', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  const other = SchedulerState.of(bv.config); // stands for the daemon; this test for the CLI
  const lockFile = join(other.lockDir, 'volume-db.lock');
  mkdirSync(other.lockDir, { recursive: true });
  const now = new Date();

  const held = await lock(lockFile);
  const busy = await runSchedulerPass(bv.ctx({ state: SchedulerState.of(bv.config, { volumeWaitMs: 100 }) }), { now });
  t.same(busy.jobs, [{ name: 'db', action: 'snapshot', ran: false, ok: true, detail: 'volume busy with a job of another buttervolume process; tried again at the next pass' }]);
  t.same(await bv.store.snapshots(), []);
  t.equal((await other.records(bv.logger)).size, 0, 'not recorded: due again at the next pass');

  // It finishes the same job while this pass waits for the volume: not run twice.
  const pending = runSchedulerPass(bv.ctx(), { now });
  await new Promise((r) => setTimeout(r, 200));
  await other.update(jobKey('db', 'snapshot'), { lastRun: now, ok: true }, bv.logger);
  held.release();
  t.same((await pending).jobs, [{ name: 'db', action: 'snapshot', ran: false, ok: true, detail: 'already run by another buttervolume process' }]);
  t.same(await bv.store.snapshots(), []);
});
