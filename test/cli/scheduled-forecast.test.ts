// `buttervolume scheduled` shows, per active purge job of a volume with
// snapshots, how many snapshots its next run deletes (the plan at its next
// run time), as a trailing shell comment after the original's columns and
// in --json; the count is what that run then deletes. Paused jobs, other
// jobs and volumes without snapshots keep the original's line byte for byte.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { BIN, cliFixture, type CliFixture } from './fixtures/cli.js';

const M = 60e3;
const H = 3600e3;

async function snapshotAt(f: CliFixture, volume: string, date: Date): Promise<string> {
  const name = `${volume}@${formatTimestamp(date, f.config.dtFormat)}`;
  await btrfs.snapshot(join(f.config.volumesPath, volume), join(f.config.snapshotsPath, name), { readonly: true });
  return name;
}

const count = (f: CliFixture, volume: string) => readdirSync(f.config.snapshotsPath).filter((n) => n.startsWith(`${volume}@`)).length;

interface Job {
  name: string;
  action: string;
  timer: number;
  active: boolean;
  nextRun?: string;
  toDelete?: number;
  snapshots?: number;
}

t.test('scheduled: what each purge job deletes at its next run, and its next run deletes that', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await f.volume('web');
  // T: a little before the real time, so that a job run at T is not due again now.
  const T = new Date(Math.floor((Date.now() - 10 * M) / 1000) * 1000);
  // Ages at T: 20 and 40 minutes (younger than 1h), 3h and 3h30 (one 1h slot: one goes), 30h (older than 1d: goes).
  for (const age of [30 * H, 3.5 * H, 3 * H, 40 * M, 20 * M]) await snapshotAt(f, 'db', new Date(T.getTime() - age));
  await snapshotAt(f, 'web', new Date(T.getTime() - 50 * H));
  for (const args of [['snapshot', '60', 'db'], ['purge:1h:1d', '60', 'db'], ['purge:1h:1d', '60', 'web'], ['purge:1h:1d', '60', 'empty']]) {
    t.equal((await f.bv(['schedule', ...args])).code, 0);
  }
  t.equal((await f.bv(['schedule', 'purge:1h:1d', 'pause', 'web'])).code, 0);
  t.equal((await f.bv(['schedule', 'snapshot', 'pause', 'db'])).code, 0, 'no snapshot taken in the passes below');

  // Never run: due now; now is some 10 minutes after T (the same decisions: 3h10 and 3h40 share a slot, 30h10 is too old).
  let before = Date.now();
  let r = await f.bv(['scheduled', '--json']);
  t.same([r.code, r.stderr], [0, '']);
  let jobs = (JSON.parse(r.stdout) as { jobs: Job[] }).jobs;
  const due = jobs[1]!;
  t.match(due, { name: 'db', action: 'purge:1h:1d', timer: 60, active: true, toDelete: 2, snapshots: 5 });
  t.ok(Date.parse(due.nextRun!) >= before && Date.parse(due.nextRun!) <= Date.now(), 'a job that never ran runs next now');
  t.same(jobs[0], { name: 'db', action: 'snapshot', timer: 60, active: false }, 'not a purge job: nothing more');
  t.same(jobs[2], { name: 'web', action: 'purge:1h:1d', timer: 60, active: false }, 'a paused job does not run');
  t.same(jobs[3], { name: 'empty', action: 'purge:1h:1d', timer: 60, active: true }, 'no snapshots: nothing to tell');
  r = await f.bv(['scheduled']);
  const lines = r.stdout.split('\n');
  t.same(lines[0], 'snapshot 60 db (paused)');
  t.match(lines[1], /^purge:1h:1d 60 db # deletes 2 of 5 snapshots at its next run, \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.same(lines.slice(2), ['purge:1h:1d 60 web (paused)', 'purge:1h:1d 60 empty ', ''], "the original's lines otherwise");

  // The line pastes back in a shell: the count is a comment there.
  const csv = readFileSync(f.config.schedulePath, 'utf8');
  const sh = await promisify(execFile)('sh', ['-c', `"${process.execPath}" "${BIN}" schedule ${lines[1]!}`], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...f.env } });
  t.same([sh.stdout, sh.stderr], ['', ''], 'pasted after buttervolume schedule in sh');
  t.equal(readFileSync(f.config.schedulePath, 'utf8'), csv, 'and changes nothing');

  // Run the pass at T: it deletes what was foreseen; the job runs next at T + 60 min.
  r = await f.bv(['scheduled', 'run', '--now', T.toISOString()]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^ok purge:1h:1d db: deleted 2 snapshots$/m);
  t.equal(count(f, 'db'), 3);

  // At T + 60 min, 20m and 40m are 1h20 and 1h40 old: one 1h slot, one goes; 3h30 (now 4h30) stays.
  before = Date.now();
  r = await f.bv(['scheduled', '--json']);
  jobs = (JSON.parse(r.stdout) as { jobs: Job[] }).jobs;
  const next = new Date(T.getTime() + 60 * M).toISOString();
  t.match(jobs[1], { name: 'db', action: 'purge:1h:1d', nextRun: next, toDelete: 1, snapshots: 3 });
  r = await f.bv(['scheduled']);
  t.equal(r.stdout.split('\n')[1], `purge:1h:1d 60 db # deletes 1 of 3 snapshots at its next run, ${next}`);
  r = await f.bv(['purge', '--dryrun', '--explain', '--json', '--at', next, '1h:1d', 'db']);
  t.equal((JSON.parse(r.stdout) as { snapshots: string[] }).snapshots.length, 1, 'purge --explain --at the next run says the same');

  r = await f.bv(['scheduled', 'run', '--now', next]);
  t.match(r.stdout, /^ok purge:1h:1d db: deleted 1 snapshot$/m, 'the next run deletes what scheduled said');
  t.equal(count(f, 'db'), 2);
  t.ok(Date.now() - before < 60 * M);
});

t.test('scheduled: without a usable store it still lists the jobs, as the original, and says why there is no count', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await snapshotAt(f, 'db', new Date(Date.now() - 50 * H));
  await f.bv(['schedule', 'purge:1h:1d', '60', 'db']);
  t.match((await f.bv(['scheduled'])).stdout, /^purge:1h:1d 60 db # deletes 1 of 1 snapshots at its next run, /, 'with the store: the count');
  // SNAPSHOTS_PATH on a filesystem that is not btrfs: the store does not open.
  const r = await f.bv(['scheduled'], { BUTTERVOLUME_SNAPSHOTS_PATH: '/dev/shm' });
  t.same([r.code, r.stdout], [0, 'purge:1h:1d 60 db \n']);
  t.match(r.stderr, /^buttervolume: scheduled: cannot tell what the purge jobs delete at their next runs: .*btrfs.*\n$/);
});
