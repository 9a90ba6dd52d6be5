// schedule and scheduled from the command line: the schedule.csv lines and
// the original's `scheduled` lines byte for byte (trailing space included),
// pause/resume of a job and of the whole schedule, `scheduled run`, and
// the errors.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';

import { cliFixture } from './fixtures/cli.js';

const csv = (path: string) => readFileSync(path, 'utf8');

t.test('schedule writes schedule.csv; scheduled prints the original lines', async (t) => {
  const f = await cliFixture(t);
  const file = f.config.schedulePath;
  for (const args of [['snapshot', '60', 'db'], ['purge:4h:1d:2w:2y', '1440', 'db'], ['synchronize:node2,node3', '60', 'web']]) {
    const r = await f.bv(['schedule', ...args]);
    t.same([r.code, r.stdout, r.stderr], [0, '', ''], args.join(' '));
  }
  t.equal(csv(file), 'db,snapshot,60,True\ndb,purge:4h:1d:2w:2y,1440,True\nweb,"synchronize:node2,node3",60,True\n');

  let r = await f.bv(['schedule', 'snapshot', 'pause', 'db']);
  t.same([r.code, r.stdout], [0, '']);
  t.equal(csv(file).split('\n')[0], 'db,snapshot,60,False');

  const expected = 'snapshot 60 db (paused)\npurge:4h:1d:2w:2y 1440 db \nsynchronize:node2,node3 60 web \n';
  r = await f.bv(['scheduled']);
  t.same([r.code, r.stdout, r.stderr], [0, expected, ''], 'the original format: trailing space after an active job');
  r = await f.bv(['scheduled', 'list']);
  t.equal(r.stdout, expected, 'list is the default');
  r = await f.bv(['scheduled', '--json']);
  t.same(JSON.parse(r.stdout), {
    jobs: [
      { name: 'db', action: 'snapshot', timer: 60, active: false },
      { name: 'db', action: 'purge:4h:1d:2w:2y', timer: 1440, active: true },
      { name: 'web', action: 'synchronize:node2,node3', timer: 60, active: true },
    ],
    problems: [],
  });

  // The lines paste back after `buttervolume schedule`: same word order.
  const before = csv(file);
  const line = expected.split('\n')[1]!.trim().split(' ');
  t.equal((await f.bv(['schedule', ...line])).code, 0);
  t.equal(csv(file), before, 'pasting a line back changes nothing');

  t.equal((await f.bv(['schedule', 'snapshot', 'resume', 'db'])).code, 0);
  t.equal(csv(file).split('\n')[0], 'db,snapshot,60,True');
  t.equal((await f.bv(['schedule', 'snapshot', '120', 'db'])).code, 0);
  t.equal(csv(file).split('\n')[0], 'db,snapshot,120,True', 'replaced in place');
  t.equal((await f.bv(['schedule', 'snapshot', '0', 'db'])).code, 0);
  t.equal((await f.bv(['schedule', 'purge:4h:1d:2w:2y', 'delete', 'db'])).code, 0);
  t.equal(csv(file), 'web,"synchronize:node2,node3",60,True\n', '0 and delete remove the job');
  r = await f.bv(['schedule', 'snapshot', '0', 'db']);
  t.same([r.code, r.stderr], [0, ''], 'deleting what is not there is fine, as in the original');
});

t.test('schedule errors: refused with the reason, exit status 1, file unchanged', async (t) => {
  const f = await cliFixture(t);
  await f.bv(['schedule', 'snapshot', '60', 'db']);
  const before = csv(f.config.schedulePath);
  const cases: Array<[string[], string]> = [
    [['schedule', 'snapshot', 'soon', 'db'], 'buttervolume: schedule: invalid timer "soon": expected a number of minutes, or 0 (or delete), pause, resume\n'],
    [['schedule', 'backup', '60', 'db'],
      'buttervolume: schedule: unknown action "backup": expected snapshot, replicate:<host>, purge:<pattern> or synchronize:<host>[,<host>...]\n'],
    [['schedule', 'purge:2h', '60', 'db'], 'buttervolume: schedule: invalid purge pattern "2h": needs at least two durations\n'],
    [['schedule', 'snapshot', 'pause', 'web'], 'buttervolume: schedule: there is no scheduled job "snapshot" for volume "web" to pause\n'],
    [['schedule', 'snapshot', '60', 'a@b'], 'buttervolume: schedule: volume name "a@b" contains "@", which separates a volume from its snapshot date\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = await f.bv(args);
    t.same([r.code, r.stdout, r.stderr], [1, '', stderr], args.join(' '));
  }
  t.equal(csv(f.config.schedulePath), before);
});

t.test('scheduled pause/resume: the whole schedule', async (t) => {
  const f = await cliFixture(t);
  const file = f.config.schedulePath;
  await f.bv(['schedule', 'snapshot', '60', 'db']);
  let r = await f.bv(['scheduled', 'pause']);
  t.same([r.code, r.stdout, r.stderr], [0, '', '']);
  t.notOk(existsSync(file));
  t.ok(existsSync(`${file}.disabled`), 'renamed, as the original');
  r = await f.bv(['scheduled']);
  t.same([r.code, r.stdout, r.stderr], [1, '', 'buttervolume: scheduled: Schedule is globally paused (buttervolume scheduled resume)\n']);
  r = await f.bv(['schedule', 'snapshot', '30', 'db']);
  t.same([r.code, r.stderr], [1, 'buttervolume: schedule: Schedule is globally paused\n']);
  r = await f.bv(['scheduled', 'pause', '--json']);
  t.same([r.code, JSON.parse(r.stdout)], [0, { paused: true }], 'pausing twice is fine');
  r = await f.bv(['scheduled', 'resume', '--json']);
  t.same([r.code, JSON.parse(r.stdout)], [0, { paused: false }]);
  r = await f.bv(['scheduled']);
  t.same([r.code, r.stdout], [0, 'snapshot 60 db \n'], 'back, unchanged');
  t.equal((await f.bv(['scheduled', 'resume'])).code, 0, 'resuming twice is fine');
});

t.test('scheduled lists the usable lines and warns about the others', async (t) => {
  const f = await cliFixture(t);
  writeFileSync(f.config.schedulePath, 'db,snapshot,60,True\ndb,snapshot,soon,True\nweb,snapshot,5\n');
  const r = await f.bv(['scheduled']);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'snapshot 60 db \nsnapshot 5 web \n', 'a 3-column line of old versions is active');
  t.equal(
    r.stderr,
    `buttervolume: scheduled: ${f.config.schedulePath} line 2 ignored: invalid timer "soon": expected a whole number of minutes\n`,
  );
});

t.test('scheduled run: one pass now (or at --now), one line per job, exit 1 if one failed', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await f.bv(['schedule', 'snapshot', '60', 'db']);
  let r = await f.bv(['scheduled', 'run', '--now', '2024-01-10T12:00:00']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^ok snapshot db(: .*)?\n$/);
  t.equal(readdirSync(f.config.snapshotsPath).length, 1, 'the job ran');

  r = await f.bv(['scheduled', 'run', '--now', '2024-01-10T12:30:00']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^skipped snapshot db: /, 'not due 30 minutes later');
  t.equal(readdirSync(f.config.snapshotsPath).length, 1);

  await f.bv(['schedule', 'snapshot', '60', 'ghost']);
  r = await f.bv(['scheduled', 'run', '--now', '2024-01-10T13:00:00', '--json']);
  t.equal(r.code, 1);
  const doc = JSON.parse(r.stdout);
  t.equal(doc.now, new Date(2024, 0, 10, 13).toISOString());
  t.equal(doc.paused, false);
  t.match(doc.jobs, [
    { name: 'db', action: 'snapshot', ran: true, ok: true },
    { name: 'ghost', action: 'snapshot', ran: true, ok: false, error: String },
  ]);
  t.equal(r.stderr.split('\n').filter(Boolean).at(-1), 'buttervolume: scheduled: 1 of 2 scheduled jobs failed or invalid');
  t.equal(readdirSync(f.config.snapshotsPath).length, 2, 'the other job ran anyway');

  await f.bv(['scheduled', 'pause']);
  r = await f.bv(['scheduled', 'run']);
  t.same([r.code, r.stdout, r.stderr], [0, '', 'buttervolume: scheduled: the schedule is globally paused: no job ran\n']);
});
