// The error paths of a pass and of the Scheduler: invalid lines are logged
// once and skipped, the global pause is honoured, one failing line never
// stops the others, a pass that cannot read the schedule does not stop the
// daemon's scheduler, and the small pieces (Limiter) behave.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { Limiter } from '../../src/util/limiter.js';
import { runSchedulerPass } from '../../src/scheduler/pass.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { SchedulerState, jobKey } from '../../src/scheduler/state.js';
import { FakeReplicator, eventually, gate, installation, volumeWithFoobar } from './fixtures/installation.js';

process.env.TZ = 'UTC';

t.test('invalid lines are reported, logged once, and skipped; valid lines run', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  writeFileSync(bv.config.schedulePath, [
    'db,demain,60,True',
    'db,replicat:x,60',
    'db,snapshot,\u00b2,True',
    'db,purge:60m:plop:3000m,60,True',
    'db,snapshot,60,True',
    'db,snapshot,30,True',
    'db,"unterminated',
    'db,replicate:bad host,60,True',
    '',
  ].join('\n'));
  const state = SchedulerState.of(bv.config);
  const { jobs } = await runSchedulerPass(bv.ctx({ state }), { now: new Date() });
  t.same(jobs.map((j) => [j.name, j.action, j.ran, j.ok]), [
    ['db', 'demain', false, false],
    ['db', 'replicat:x', false, false],
    ['db', 'snapshot', false, false],
    ['db', 'purge:60m:plop:3000m', false, false],
    ['db', 'snapshot', true, true],
    ['db', 'snapshot', false, false],
    ['', '', false, false],
    ['db', 'replicate:bad host', false, false],
  ]);
  t.match(jobs[0]!.error, /^schedule line 1 ignored: unknown action "demain"/);
  t.match(jobs[3]!.error, /^schedule line 4 ignored: invalid purge pattern "60m:plop:3000m": "plop" is not <number><m\|h\|d\|w\|y>/);
  t.match(jobs[5]!.error, /^schedule line 6 ignored: same volume and action as line 5/);
  t.match(jobs[6]!.error, /^schedule line 7 ignored: a quoted field is never closed/);
  const warnings = () => bv.log.filter((l) => / WARNING schedule line \d+ ignored/.test(l)).length;
  t.equal(warnings(), 7);
  await runSchedulerPass(bv.ctx({ state }), { now: new Date() });
  t.equal(warnings(), 7, 'not logged again by the same scheduler');
  await runSchedulerPass(bv.ctx(), { now: new Date() });
  t.equal(warnings(), 14, 'a new process logs them again');
});

t.test('global pause: nothing runs; resume: due jobs run', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'purge:1h:1d', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'purge:1h:1d', timer: 'pause' });
  await bv.schedule.pause();
  t.same(await runSchedulerPass(bv.ctx(), { now: new Date() }), { paused: true, jobs: [] });
  t.ok(bv.log.some((l) => l.includes(`INFO schedule globally paused (${bv.config.schedulePath}.disabled exists)`)));
  t.same(await bv.store.snapshots(), []);
  await bv.schedule.resume();
  const { paused, jobs } = await runSchedulerPass(bv.ctx(), { now: new Date() });
  t.equal(paused, false);
  t.same(jobs.map((j) => [j.action, j.ran, j.detail?.replace(/ db@.*/, '')]), [['snapshot', true, 'took'], ['purge:1h:1d', false, 'paused']]);
});

t.test('no schedule file: an empty pass', async (t) => {
  const bv = await installation(t);
  t.same(await runSchedulerPass(bv.ctx()), { paused: false, jobs: [] });
});

t.test('an unreadable schedule: the pass rejects, the scheduler logs and keeps ticking', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  mkdirSync(bv.config.schedulePath);
  await t.rejects(runSchedulerPass(bv.ctx()), { code: 'EISDIR' });
  const scheduler = new Scheduler({ ...bv.ctx(), intervalMs: 3_600_000 });
  t.teardown(() => scheduler.stop());
  t.equal(await scheduler.tick(), true);
  t.ok(bv.log.some((l) => / ERROR scheduler: pass failed: EISDIR/.test(l)));
  rmSync(bv.config.schedulePath, { recursive: true });
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  await scheduler.tick();
  t.ok(await eventually(async () => (await bv.store.snapshots()).length === 1), 'the next tick works');
  await t.rejects(runSchedulerPass(bv.ctx(), { now: new Date('nope') }), { name: 'TypeError', message: 'now must be a valid Date' });
});

t.test('one failing line never stops the others', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'boo', action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: 'db', action: 'snapshot', timer: '60' });
  await bv.schedule.update({ name: 'boo', action: 'purge:1h:1d', timer: '60' });
  // A lock file that cannot be opened: the job fails before it starts.
  const state = SchedulerState.of(bv.config);
  mkdirSync(join(state.lockDir, 'volume-broken.lock'), { recursive: true });
  await bv.schedule.update({ name: 'broken', action: 'snapshot', timer: '60' });
  const { jobs } = await runSchedulerPass(bv.ctx({ state }), { now: new Date() });
  t.match(jobs, [
    { name: 'boo', ran: true, ok: false, error: 'No such volume: boo' },
    { name: 'db', ran: true, ok: true },
    { name: 'boo', action: 'purge:1h:1d', ran: true, ok: true, detail: 'deleted 0 snapshots' },
    { name: 'broken', ran: false, ok: false, error: /EISDIR/ },
  ]);
  t.ok(bv.log.some((l) => / ERROR scheduled snapshot of broken failed: .*EISDIR/.test(l)), 'a job that cannot start is an error');
  // A failed job waits a period like any other (no retry flood at every tick).
  const records = await state.records(bv.logger);
  t.match(records.get(jobKey('boo', 'snapshot')), { ok: false });
  const again = await runSchedulerPass(bv.ctx({ state }), { now: new Date() });
  t.same(again.jobs.map((j) => j.ran), [false, false, false, false]);
  t.match(again.jobs[3], { ok: false, error: /EISDIR/ }, 'a job that could not start is tried again at the next pass');
});

t.test('a superseded snapshot that cannot be deleted is only a warning', async (t) => {
  const bv = await installation(t);
  const path = await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'replicate:node2', timer: '60' });
  // Recorded as this job's unsent snapshot, but not a subvolume: removeSnapshot refuses it.
  const fake = 'db@2020-01-01T00:00:00.000000';
  mkdirSync(join(bv.config.snapshotsPath, fake));
  const state = SchedulerState.of(bv.config);
  await state.update(jobKey('db', 'replicate:node2'), { lastRun: new Date(0), ok: false, unsent: fake }, bv.logger);
  writeFileSync(join(path, 'foobar'), 'changed');
  const replicator = new FakeReplicator(bv.config);
  const { jobs } = await runSchedulerPass(bv.ctx({ state, replicator }), { now: new Date() });
  t.match(jobs[0], { ran: true, ok: true, detail: /^took and sent db@/ });
  t.ok(bv.log.some((l) => l.includes(`WARNING replicate:node2 of db: cannot delete superseded ${fake}: No such snapshot`)));
});

t.test('stop waits for running jobs, up to its grace period', async (t) => {
  const bv = await installation(t);
  await volumeWithFoobar(bv.store, 'db');
  await bv.schedule.update({ name: 'db', action: 'replicate:node2', timer: '60' });
  const replicator = new FakeReplicator(bv.config);
  const peer = gate();
  replicator.hold = peer.promise;
  const scheduler = new Scheduler({ ...bv.ctx({ replicator }), intervalMs: 3_600_000, stopGraceMs: 100 });
  scheduler.start();
  t.ok(await eventually(() => replicator.active === 1));
  await scheduler.stop();
  t.ok(bv.log.some((l) => / WARNING scheduler stopped with jobs still running after 100 ms/.test(l)));
  peer.open();
  t.ok(await eventually(async () => (await bv.store.snapshots()).length === 2), 'the job finishes in the background');

  const quick = new Scheduler({ ...bv.ctx({ replicator }), intervalMs: 3_600_000, stopGraceMs: 60_000, clock: () => new Date(Date.now() + 3_600_000) });
  quick.start();
  const began = Date.now();
  await quick.tick(); // planning done; the job may still run
  await quick.stop();
  t.ok(Date.now() - began < 10_000, 'stop returns as soon as the jobs end');
  t.equal(replicator.active, 0);
});

t.test('Limiter', async (t) => {
  t.throws(() => new Limiter(0), RangeError);
  t.throws(() => new Limiter(1.5), RangeError);
  const limiter = new Limiter(2);
  const order: string[] = [];
  const gates = [gate(), gate(), gate()];
  const runs = gates.map((g, i) => limiter.run(async () => {
    order.push(`start ${i}`);
    await g.promise;
    if (i === 1) throw new Error('boom');
    return i;
  }));
  await new Promise((r) => setImmediate(r));
  t.same(order, ['start 0', 'start 1'], 'the third waits');
  t.equal(limiter.active, 2);
  gates[1]!.open();
  await t.rejects(runs[1]!, { message: 'boom' });
  await new Promise((r) => setImmediate(r));
  t.same(order, ['start 0', 'start 1', 'start 2'], 'a failing task frees its slot');
  gates[0]!.open();
  gates[2]!.open();
  t.same(await Promise.all([runs[0], runs[2]]), [0, 2]);
  t.equal(limiter.active, 0);
  t.equal(limiter.peak, 2);
});
