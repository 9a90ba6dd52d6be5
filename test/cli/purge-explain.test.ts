// purge --explain from the command line, on real btrfs: every snapshot with
// KEEP or DELETE and why, and what purge then does is exactly that (the
// remaining snapshots are the KEEP set); --at decides as a later purge with
// the clock at that date does; replication and the cluster volume's newest
// state say why they keep a snapshot; hostile --at values are refused
// before anything is touched. Snapshots get chosen dates by their names
// (read-only btrfs snapshots named <volume>@<date>).
import { mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t, { type Test } from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import type { PurgeDecision } from '../../src/store/volume-store.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { cliFixture, type CliFixture } from './fixtures/cli.js';

const H = 3600e3;
const M = 60e3;
const NOW = new Date(2024, 0, 10, 12, 0, 0); // local time, like snapshot names

const pad = (n: number) => String(n).padStart(2, '0');
/** A local ISO time without a zone, as a user types it. */
const localIso = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

/** A read-only snapshot of `volume` named as if taken at `date`, `@host` for a send marker. */
async function snapshotAt(f: CliFixture, volume: string, date: Date, host?: string): Promise<string> {
  const name = `${volume}@${formatTimestamp(date, f.config.dtFormat)}${host ? `@${host}` : ''}`;
  await btrfs.snapshot(join(f.config.volumesPath, volume), join(f.config.snapshotsPath, name), { readonly: true });
  return name;
}

const snapshotsOf = (f: CliFixture, volume: string) => readdirSync(f.config.snapshotsPath).filter((n) => n.startsWith(`${volume}@`)).sort();

interface Line {
  decision: string;
  name: string;
  reason: string;
}

/** The --explain text: `KEEP|DELETE<tab><snapshot><tab><why>` per line. */
function parseExplain(t: Test, stdout: string): Line[] {
  const lines = stdout.split('\n');
  t.equal(lines.pop(), '', 'ends with a newline');
  return lines.map((l) => {
    const [decision = '', name = '', reason = '', ...rest] = l.split('\t');
    t.same(rest, [], `three tab-separated fields: ${l}`);
    return { decision, name, reason };
  });
}

const kept = (lines: Line[]) => lines.filter((l) => l.decision === 'KEEP').map((l) => l.name).sort();

t.test("the reference's worked example: the explanation, and purge leaves exactly its KEEP set", async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await f.volume('web');
  // 28 hourly snapshots aged 0h50 .. 27h50 at NOW, of two volumes.
  const byAge: string[] = [];
  const webByAge: string[] = [];
  for (let h = 27; h >= 0; h--) {
    byAge[h] = await snapshotAt(f, 'db', new Date(NOW.getTime() - h * H - 50 * M));
    webByAge[h] = await snapshotAt(f, 'web', new Date(NOW.getTime() - h * H - 50 * M));
  }
  const reference = [0, 1, 3, 5, 11, 17, 23];

  let r = await f.bv(['purge', '--dryrun', '--explain', '--at', localIso(NOW), '2h:6h:1d', 'db']);
  t.same([r.code, r.stderr], [0, '']);
  const lines = parseExplain(t, r.stdout);
  t.same(lines.map((l) => l.name), [...byAge].sort(), 'every snapshot, oldest first');
  t.same(kept(lines), reference.map((h) => byAge[h]!).sort(), 'KEEP: the reference keeps exactly these');
  t.equal(lines.filter((l) => l.decision === 'DELETE').length, 21);
  const line = (h: number) => lines.find((l) => l.name === byAge[h]);
  t.same(line(0), { decision: 'KEEP', name: byAge[0], reason: 'younger than 2h' });
  t.same(line(23), { decision: 'KEEP', name: byAge[23], reason: 'kept for its 6h slot 2024-01-09T12:00:00 to 2024-01-09T18:00:00 (one per 6h between 6h and 1d old)' });
  t.same(line(22), {
    decision: 'DELETE',
    name: byAge[22],
    reason: `${byAge[23]} is kept for the same 6h slot 2024-01-09T12:00:00 to 2024-01-09T18:00:00 (one per 6h between 6h and 1d old)`,
  });
  t.same(line(27), { decision: 'DELETE', name: byAge[27], reason: "older than 1d, the pattern's last step" });
  t.equal(snapshotsOf(f, 'db').length, 28, 'a dry run deletes nothing');

  r = await f.bv(['purge', '--dryrun', '--explain', '--json', '--at', localIso(NOW), '2h:6h:1d', 'db']);
  const doc = JSON.parse(r.stdout) as { volume: string; pattern: string; now: string; dryRun: boolean; snapshots: string[]; decisions: PurgeDecision[] };
  t.same([doc.volume, doc.pattern, doc.now, doc.dryRun], ['db', '2h:6h:1d', NOW.toISOString(), true]);
  t.same(doc.decisions.map(({ decision, name, reason }) => ({ decision, name, reason })), lines, '--json: the same decisions as the text');
  t.same(doc.snapshots, lines.filter((l) => l.decision === 'DELETE').map((l) => l.name), 'snapshots: the DELETE ones, oldest first');
  t.same(doc.decisions.find((d) => d.name === byAge[22])!.rule, {
    kind: 'same-slot', every: '6h', upTo: '1d', kept: byAge[23], slot: { from: '2024-01-09T12:00:00', to: '2024-01-09T18:00:00' },
  });
  t.same(doc.decisions.find((d) => d.name === byAge[1])!.rule, { kind: 'younger', than: '2h' });

  // The original's purge (no --explain) then leaves exactly the KEEP set.
  r = await f.bv(['purge', '--now', localIso(NOW), '2h:6h:1d', 'db']);
  t.same([r.code, r.stdout, r.stderr], [0, '', ''], 'purge prints nothing, as the original');
  t.same(snapshotsOf(f, 'db'), kept(lines), 'what purge leaves is the KEEP set');

  // --explain without --dryrun purges, and prints what it did: the same plan.
  const dry = await f.bv(['purge', '--dryrun', '--explain', '--at', localIso(NOW), '2h:6h:1d', 'web']);
  r = await f.bv(['purge', '--explain', '--at', localIso(NOW), '2h:6h:1d', 'web']);
  t.same([r.code, r.stderr], [0, '']);
  t.equal(r.stdout, dry.stdout, 'the explanation of what it did is the one of the dry run');
  t.same(snapshotsOf(f, 'web'), reference.map((h) => webByAge[h]!).sort(), 'and it did it');
  r = await f.bv(['purge', '--explain', '--json', '--at', localIso(NOW), '2h:6h:1d', 'web']);
  const again = JSON.parse(r.stdout) as { dryRun: boolean; snapshots: string[]; decisions: PurgeDecision[] };
  t.same([again.dryRun, again.snapshots, again.decisions.map((d) => d.decision)], [false, [], reference.map(() => 'KEEP')], 'a second run keeps them all');
});

t.test("the original's purge cases (test_purge): KEEP/DELETE is what purge then does", async (t) => {
  const f = await cliFixture(t);
  const cases = [['a', '2h:2h', 18], ['b', '2h:4h:8h:16h', 15], ['c', '60m:120m:300m:240m:180m', 18]] as const;
  for (const [volume, pattern, deletes] of cases) {
    await f.volume(volume);
    // test.py create_20_hourly_snapshots: ages 0..19 h, a send marker, an unparsable name.
    for (let h = 19; h >= 0; h--) await snapshotAt(f, volume, new Date(NOW.getTime() - h * H));
    const marker = await snapshotAt(f, volume, NOW, '127.1.2.3');
    await btrfs.snapshot(join(f.config.volumesPath, volume), join(f.config.snapshotsPath, `${volume}@invalid`), { readonly: true });

    let r = await f.bv(['purge', '--dryrun', '--explain', '--at', localIso(NOW), pattern, volume]);
    const lines = parseExplain(t, r.stdout);
    t.equal(lines.length, 22, `${pattern}: every snapshot explained`);
    t.equal(lines.filter((l) => l.decision === 'DELETE').length, deletes, `${pattern}: the original deletes ${deletes}`);
    t.same(lines.find((l) => l.name === `${volume}@invalid`), { decision: 'KEEP', name: `${volume}@invalid`, reason: 'no date in its name as DTFORMAT reads it: never purged' });
    t.same(lines.find((l) => l.name === marker), { decision: 'KEEP', name: marker, reason: "kept for peer 127.1.2.3's next incremental (its newest send marker)" });
    r = await f.bv(['purge', '--now', localIso(NOW), pattern, volume]);
    t.equal(r.code, 0);
    t.same(snapshotsOf(f, volume), kept(lines), `${pattern}: purge leaves the KEEP set`);
  }
});

t.test('--at decides as a later purge with the clock at that date; a date before the newest snapshot is fine', async (t) => {
  let clock = NOW;
  const f = await cliFixture(t, { now: () => clock });
  await f.volume('db');
  // Four days of snapshots, every 50 minutes, up to NOW.
  for (let m = 4 * 24 * 60; m >= 0; m -= 50) await snapshotAt(f, 'db', new Date(NOW.getTime() - m * M));
  const pattern = '4h:1d:2w';
  const dates: Array<[Date, string]> = [
    [new Date(NOW.getTime() - 30 * H), 'ISO, local time'],
    [new Date(NOW.getTime() + 26 * H + 17 * M), 'DTFORMAT'],
    [new Date(NOW.getTime() + 15 * 24 * H), 'ISO with Z'],
  ];
  for (const [at, how] of dates) {
    const text = how === 'DTFORMAT' ? formatTimestamp(at, f.config.dtFormat) : how === 'ISO with Z' ? at.toISOString() : localIso(at);
    const before = snapshotsOf(f, 'db');
    const r = await f.bv(['purge', '--dryrun', '--explain', '--at', text, pattern, 'db']);
    t.same([r.code, r.stderr], [0, ''], `--at ${text}`);
    const lines = parseExplain(t, r.stdout);
    t.same(lines.map((l) => l.name), before, 'every snapshot');
    const deleted = lines.filter((l) => l.decision === 'DELETE').length;
    t.ok(deleted > 0, `${how}: it deletes something (${deleted} of ${before.length})`);
    if (at < NOW) {
      const future = lines.filter((l) => l.reason === 'younger than 4h (dated after the time of the purge)');
      t.ok(future.length > 30, `${how}: the snapshots after it are kept as younger (${future.length})`);
    }
    // The store with its clock at that date, purging without being told the time.
    clock = at;
    await f.store.purge('db', pattern);
    t.same(snapshotsOf(f, 'db'), kept(lines), `${how}: a real purge at ${text} leaves the KEEP set`);
  }
});

t.test("replication and the cluster volume's newest state: kept, and why", async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  const at = (hoursAgo: number, host?: string) => snapshotAt(f, 'db', new Date(NOW.getTime() - hoursAgo * H), host);
  const s120 = await at(120);
  const s100 = await at(100);
  const s90 = await at(90);
  const s80 = await at(80);
  const m100 = await at(100, 'node2');
  const m90 = await at(90, 'node2');
  const m80 = await at(80, 'node3');
  const s70 = await at(70);
  // Snapshots a peer took, sent and received here.
  const peer = join(dirname(f.config.snapshotsPath), 'peer-snapshots');
  mkdirSync(peer);
  const received: string[] = [];
  for (const hoursAgo of [60, 50]) {
    const name = `db@${formatTimestamp(new Date(NOW.getTime() - hoursAgo * H), f.config.dtFormat)}`;
    await btrfs.snapshot(join(f.config.volumesPath, 'db'), join(peer, name), { readonly: true });
    received.push((await btrfs.receive(f.config.snapshotsPath, btrfs.send(join(peer, name)))).name);
  }
  // A volume that follows its service, whose newest state is the oldest snapshot.
  await f.store.updateClusterRecord('db', () => ({
    version: 1,
    options: { replicas: ['node2'], rpo: null, failover: 'manual' },
    state: { epoch: 7, snapshot: s120, identity: 'x' },
    live: { epoch: 7, ctransid: 0 },
    owner: null,
    superseded: [],
  }));

  let r = await f.bv(['purge', '--dryrun', '--explain', '--json', '--at', localIso(NOW), '1h:1d', 'db']);
  t.equal(r.code, 0, r.stderr);
  const { decisions } = JSON.parse(r.stdout) as { decisions: PurgeDecision[] };
  const d = (name: string) => decisions.find((x) => x.name === name)!;
  const older = "the pattern alone would delete it: older than 1d, the pattern's last step";
  t.same(d(m90), {
    name: m90,
    decision: 'KEEP',
    reason: `kept for peer node2's next incremental (its newest send marker) (${older})`,
    rule: { kind: 'replication', role: 'marker', peer: 'node2' },
    pattern: { decision: 'DELETE', reason: "older than 1d, the pattern's last step", rule: { kind: 'older', than: '1d' } },
    protections: [{ reason: "kept for peer node2's next incremental (its newest send marker)", rule: { kind: 'replication', role: 'marker', peer: 'node2' } }],
  });
  t.same([d(s90).decision, d(s90).reason, d(s90).rule], ['KEEP', `kept for peer node2's next incremental (the newest snapshot sent to it) (${older})`, { kind: 'replication', role: 'sent', peer: 'node2' }]);
  t.same([d(m80).decision, d(m80).rule], ['KEEP', { kind: 'replication', role: 'marker', peer: 'node3' }]);
  t.same([d(s80).decision, d(s80).rule], ['KEEP', { kind: 'replication', role: 'sent', peer: 'node3' }]);
  t.same(
    [d(received[1]!).decision, d(received[1]!).reason, d(received[1]!).rule],
    ['KEEP', `kept for the sending peer's next incremental (the newest snapshot received) (${older})`, { kind: 'replication', role: 'received', peer: null }],
  );
  t.same([d(s120).decision, d(s120).reason, d(s120).rule], ['KEEP', `the newest state of the cluster volume (epoch 7) (${older})`, { kind: 'cluster-state', epoch: 7 }]);
  const doomed = [s100, m100, s70, received[0]!].sort();
  t.same(decisions.filter((x) => x.decision === 'DELETE').map((x) => x.name), doomed, 'the rest goes');
  t.same(decisions.find((x) => x.name === m100)!.reason, "older than 1d, the pattern's last step", 'an older marker: the pattern decides');

  r = await f.bv(['purge', '--dryrun', '--explain', '--at', localIso(NOW), '1h:1d', 'db']);
  t.match(r.stdout, `KEEP\t${m90}\tkept for peer node2's next incremental (its newest send marker) (${older})\n`, 'the text says it too');
  r = await f.bv(['purge', '--now', localIso(NOW), '1h:1d', 'db']);
  t.equal(r.code, 0);
  t.same(snapshotsOf(f, 'db'), decisions.filter((x) => x.decision === 'KEEP').map((x) => x.name), 'purge leaves the KEEP set');
});

t.test('hostile --at values are refused with a clear error, before anything is deleted', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  await snapshotAt(f, 'db', new Date(Date.now() - 1000 * H));
  const usage = 'usage: buttervolume purge [--dryrun] [--explain] [--at <date>] [--now <time>] [--json] <pattern> <volume>\n';
  const expected = (shown: string) =>
    `buttervolume: purge: invalid --at ${shown}: expected a date as in snapshot names (DTFORMAT %Y-%m-%dT%H:%M:%S.%f, e.g. 2024-01-10T12:00:00.000000) ` +
    `or ISO 8601 such as 2024-01-10T12:00:00 (local time) or 2024-01-10T11:00:00Z\n${usage}`;
  const cases: Array<[string[], string]> = [
    [['--at', 'yesterday'], expected('"yesterday"')],
    [['--at', ''], expected('""')],
    [['--at', '2024-02-30'], expected('"2024-02-30"')],
    [['--at', '2024-01-10T24:00:00.000000'], expected('"2024-01-10T24:00:00.000000"')],
    [['--at', '0999-01-01'], expected('"0999-01-01"')],
    [['--at', '2024-01-10T12:00:00\nrm -rf /'], expected('"2024-01-10T12:00:00\\nrm -rf /"')],
    [['--at', '\u001b[31m2024-01-10'], expected('"\\u001b[31m2024-01-10"')],
    [['--at', '../../../etc/passwd'], expected('"../../../etc/passwd"')],
    [['--at', '1e400'], expected('"1e400"')],
    [['--at=0x10'], expected('"0x10"')],
    [['--at', '9'.repeat(100)], expected(`"${'9'.repeat(80)}..."`)],
    [['--at', 'x'.repeat(100_000)], expected(`"${'x'.repeat(80)}..."`)],
    [['--at', '2024-01-10', '--at', '2024-01-11'], `buttervolume: purge: --at is given more than once\n${usage}`],
    [['--at', '2024-01-10', '--now', '2024-01-10'], `buttervolume: purge: --at and --now both set the time of the purge: give one\n${usage}`],
  ];
  for (const [options, stderr] of cases) {
    const r = await f.bv(['purge', '--explain', ...options, '1h:1d', 'db']);
    t.same([r.code, r.stdout, r.stderr], [2, '', stderr], JSON.stringify(options).slice(0, 80));
  }
  let r = await f.bv(['purge', '--explain', '1h:1d', 'db', '--at']);
  t.same([r.code, r.stdout, r.stderr], [2, '', `buttervolume: purge: option --at needs a value\n${usage}`]);
  t.equal(snapshotsOf(f, 'db').length, 1, 'nothing deleted');
  // A DTFORMAT of digits only, starting with a zero: the text as typed, not the number mri reads.
  const format = '%d%m%Y%H%M%S';
  const digits = { BUTTERVOLUME_DTFORMAT: format };
  const at = new Date(2024, 0, 5, 12);
  const old = `db@${formatTimestamp(new Date(at.getTime() - 50 * H), format)}`;
  await btrfs.snapshot(join(f.config.volumesPath, 'db'), join(f.config.snapshotsPath, old), { readonly: true });
  t.equal(formatTimestamp(at, format), '05012024120000');
  r = await f.bv(['purge', '--dryrun', '--explain', '--at', formatTimestamp(at, format), '1h:1d', 'db'], digits);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `DELETE\t${old}\tolder than 1d, the pattern's last step\n`);
  t.match(r.stdout, /^KEEP\tdb@\d{4}-\d\d-\d\dT\S+\tno date in its name as DTFORMAT reads it: never purged$/m, 'the other name has no date in this DTFORMAT');
});
