// purge from the command line: --dryrun prints what would go (one name per
// line, oldest first), --now sets the clock, --json, and the errors. The
// snapshots are the reference's worked example (section 2.7): pattern
// 2h:6h:1d over 28 hourly snapshots aged 0h50 .. 27h50 deletes 21.
import { readdirSync } from 'node:fs';
import t, { type Test } from 'tap';

import { cliFixture, type CliFixture } from './fixtures/cli.js';

const HOUR = 3600_000;
const NOW = new Date(2024, 0, 10, 12, 0, 0); // local time, like snapshot names
// Ages (in hours, plus 50 minutes) the reference keeps.
const KEPT = [0, 1, 3, 5, 11, 17, 23];

/** 28 hourly snapshots of `db`, aged 0h50 .. 27h50 at NOW; oldest first. */
async function hourly(t: Test): Promise<{ f: CliFixture; byAge: string[] }> {
  let clock = NOW;
  const f = await cliFixture(t, { now: () => clock });
  await f.volume('db');
  const byAge: string[] = [];
  for (let h = 27; h >= 0; h--) {
    clock = new Date(NOW.getTime() - h * HOUR - 50 * 60_000);
    byAge[h] = await f.store.snapshot('db');
  }
  return { f, byAge };
}

// A local ISO time without a zone, as a user types it.
const localIso = (d: Date) =>
  `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}T${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:00`;

t.test('purge --dryrun prints what would be deleted, oldest first, and deletes nothing', async (t) => {
  const { f, byAge } = await hourly(t);
  const doomed = byAge.filter((_, h) => !KEPT.includes(h)).sort();
  t.equal(doomed.length, 21);
  const before = readdirSync(f.config.snapshotsPath).sort();

  let r = await f.bv(['purge', '--dryrun', '--now', localIso(NOW), '2h:6h:1d', 'db']);
  t.same([r.code, r.stdout, r.stderr], [0, `${doomed.join('\n')}\n`, '']);
  t.same(readdirSync(f.config.snapshotsPath).sort(), before, 'nothing deleted');

  r = await f.bv(['purge', '--now', NOW.toISOString(), '--dryrun', '2h:6h:1d', 'db']);
  t.same([r.code, r.stdout], [0, `${doomed.join('\n')}\n`], 'the same instant given in UTC with Z; options in any order');

  r = await f.bv(['purge', '--dryrun', '--json', '--now', localIso(NOW), '2h:6h:1d', 'db']);
  t.same(JSON.parse(r.stdout), { volume: 'db', pattern: '2h:6h:1d', now: NOW.toISOString(), dryRun: true, snapshots: doomed });

  r = await f.bv(['purge', '--dryrun', '--now', localIso(new Date(NOW.getTime() - 100 * 24 * HOUR)), '2h:6h:1d', 'db']);
  t.same([r.code, r.stdout], [0, ''], 'a clock before every snapshot: nothing to purge');
});

t.test('purge deletes, prints nothing; a second run deletes nothing', async (t) => {
  const { f, byAge } = await hourly(t);
  let r = await f.bv(['purge', '--now', localIso(NOW), '2h:6h:1d', 'db']);
  t.same([r.code, r.stdout, r.stderr], [0, '', '']);
  t.same(readdirSync(f.config.snapshotsPath).sort(), KEPT.map((h) => byAge[h]!).sort(), 'the reference keeps exactly these');
  r = await f.bv(['purge', '--json', '--now', localIso(NOW), '2h:6h:1d', 'db']);
  t.same(JSON.parse(r.stdout), { volume: 'db', pattern: '2h:6h:1d', now: NOW.toISOString(), dryRun: false, snapshots: [] });
});

t.test('purge errors', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await f.store.snapshot('db');
  const cases: Array<[string[], string]> = [
    [['purge', '60m:plop:3000m', 'db'], 'buttervolume: purge: invalid purge pattern "60m:plop:3000m": "plop" is not <number><m|h|d|w|y>\n'],
    [['purge', '2h', 'db'], 'buttervolume: purge: invalid purge pattern "2h": needs at least two durations\n'],
    [['purge', '0h:1d', 'db'], 'buttervolume: purge: invalid purge pattern "0h:1d": "0h" must be greater than zero\n'],
    [['purge', '--dryrun', '2h:1d', 'db@x'], 'buttervolume: purge: volume name "db@x" contains "@", which separates a volume from its snapshot date\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = await f.bv(args);
    t.same([r.code, r.stdout, r.stderr], [1, '', stderr], args.join(' '));
  }
  t.equal(readdirSync(f.config.snapshotsPath).length, 1, 'nothing deleted');
  const r = await f.bv(['purge', '2h:1d', 'gone']);
  t.same([r.code, r.stdout, r.stderr], [0, '', ''], 'a volume without snapshots: nothing to do, as the original');
});
