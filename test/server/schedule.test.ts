// The schedule endpoints over the unix socket: the API half of the original's
// test_schedule_snapshot, pause/resume of one job, the global pause, and
// refusals. The scheduler's passes are tested with the scheduler.
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';

import { startTestDaemon } from '../fixtures/daemon.js';

t.test('schedule, list, unschedule (the original test_schedule_snapshot)', async (t) => {
  const d = await startTestDaemon(t);
  const file = d.config.schedulePath;
  const list = async () => (await d.call('/VolumeDriver.Schedule.List', undefined, 'GET')).body;
  t.same(await list(), { Err: '', Schedule: [] }, 'no schedule file: empty');
  t.same((await d.call('/VolumeDriver.Schedule', { Name: 'vol1', Action: 'snapshot', Timer: 60 })).body, { Err: '' });
  t.same((await d.call('/VolumeDriver.Schedule', { Name: 'vol2', Action: 'snapshot', Timer: '60' })).body, { Err: '' }, 'Timer as a string');
  const { Schedule } = await list();
  t.equal(Schedule.length, 2);
  t.equal(Schedule[0].Action, 'snapshot');
  t.equal(Schedule[1].Timer, '60', 'Timer as the original: a string');
  t.same(Schedule[1], { Name: 'vol2', Action: 'snapshot', Timer: '60', Active: 'True' });
  t.equal(readFileSync(file, 'utf8').split('\n')[1], 'vol2,snapshot,60,True', 'stored as the original writes it');

  await d.call('/VolumeDriver.Schedule', { Name: 'vol1', Action: 'snapshot', Timer: 0 });
  t.equal(readFileSync(file, 'utf8').trim().split('\n').length, 1, 'Timer 0 unschedules');
  t.equal((await list()).Schedule.length, 1);
  await d.call('/VolumeDriver.Schedule', { Name: 'vol2', Action: 'snapshot', Timer: 'delete' });
  t.same((await list()).Schedule, []);
  t.same((await d.call('/VolumeDriver.Schedule', { Name: 'vol2', Action: 'snapshot', Timer: 0 })).body, { Err: '' }, 'unscheduling twice is fine');
});

t.test('pause and resume one job; replace a timer in place', async (t) => {
  const d = await startTestDaemon(t);
  const set = (Name: string, Action: string, Timer: unknown) => d.call('/VolumeDriver.Schedule', { Name, Action, Timer });
  await set('db', 'snapshot', 60);
  await set('db', 'purge:4h:1d:2w:2y', 1440);
  await set('db', 'replicate:node2', 120);
  t.same((await set('db', 'purge:4h:1d:2w:2y', 'pause')).body, { Err: '' });
  await set('db', 'snapshot', 30);
  const { Schedule } = (await d.call('/VolumeDriver.Schedule.List', undefined, 'GET')).body;
  t.same(Schedule, [
    { Name: 'db', Action: 'snapshot', Timer: '30', Active: 'True' },
    { Name: 'db', Action: 'purge:4h:1d:2w:2y', Timer: '1440', Active: 'False' },
    { Name: 'db', Action: 'replicate:node2', Timer: '120', Active: 'True' },
  ]);
  await set('db', 'purge:4h:1d:2w:2y', 'resume');
  t.equal((await d.call('/VolumeDriver.Schedule.List', {})).body.Schedule[1].Active, 'True', 'POST works too');
  const r = await set('db', 'snapshot:x', 'pause');
  t.equal(r.status, 500);
  t.match(r.body.Err, /there is no scheduled job "snapshot:x" for volume "db" to pause/);
});

t.test('global pause: "Schedule is globally paused"', async (t) => {
  const d = await startTestDaemon(t);
  const file = d.config.schedulePath;
  await d.call('/VolumeDriver.Schedule', { Name: 'v', Action: 'snapshot', Timer: 60 });
  t.same((await d.call('/VolumeDriver.Schedule.Pause')).body, { Err: '' });
  t.ok(existsSync(`${file}.disabled`) && !existsSync(file), 'the file is renamed to .disabled');
  let r = await d.call('/VolumeDriver.Schedule.List', undefined, 'GET');
  t.same([r.status, r.body], [500, { Err: 'Schedule is globally paused' }]);
  r = await d.call('/VolumeDriver.Schedule', { Name: 'v', Action: 'snapshot', Timer: 10 });
  t.same([r.status, r.body], [500, { Err: 'Schedule is globally paused' }]);
  t.same((await d.call('/VolumeDriver.Schedule.Pause')).body, { Err: '' }, 'pausing twice is fine');
  t.same((await d.call('/VolumeDriver.Schedule.Resume', {})).body, { Err: '' });
  t.same((await d.call('/VolumeDriver.Schedule.List', undefined, 'GET')).body.Schedule, [{ Name: 'v', Action: 'snapshot', Timer: '60', Active: 'True' }]);
  t.same((await d.call('/VolumeDriver.Schedule.Resume')).body, { Err: '' }, 'resuming twice is fine');
  r = await d.call('/VolumeDriver.Schedule.Pause', undefined, 'GET');
  t.equal(r.status, 405, 'pause changes state: POST only');
});

t.test('refused schedule changes name what is wrong and leave the file alone', async (t) => {
  const d = await startTestDaemon(t);
  const file = d.config.schedulePath;
  await d.call('/VolumeDriver.Schedule', { Name: 'v', Action: 'snapshot', Timer: 60 });
  const before = readFileSync(file, 'utf8');
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ Name: 'v', Action: 'snapshot', Timer: 'demain' }, /invalid timer "demain"/],
    [{ Name: 'v', Action: 'snapshot', Timer: '²' }, /invalid timer "²"/],
    [{ Name: 'v', Action: 'replicat:h', Timer: 60 }, /unknown action "replicat:h"/],
    [{ Name: 'v', Action: 'purge:2h:plop', Timer: 60 }, /invalid purge pattern/],
    [{ Name: '../v', Action: 'snapshot', Timer: 60 }, /volume name "..\/v"/],
    [{ Name: 'v', Action: 'snapshot', Timer: 1.5 }, /^Timer must be a string or a whole number, got 1.5$/],
    [{ Name: 'v', Action: 'snapshot', Timer: true }, /^Timer must be a string or a whole number, got a boolean$/],
    [{ Name: 'v', Action: 'snapshot' }, /^Timer is required$/],
    [{ Name: 'v', Action: ['snapshot'], Timer: 60 }, /^Action must be a string, got an array$/],
    [{ Name: 'v', Action: 'snapshot', Timer: 60, Active: true }, /^unknown field "Active" \(expected Name, Action, Timer\)$/],
  ];
  for (const [body, err] of cases) {
    const r = await d.call('/VolumeDriver.Schedule', body);
    t.equal(r.status, 500);
    t.match(r.body.Err, err, JSON.stringify(body));
  }
  t.equal(readFileSync(file, 'utf8'), before);
});
