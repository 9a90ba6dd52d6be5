// Switching from the original buttervolume: what it left in
// /var/lib/buttervolume (made here the way it made them, with btrfs-progs and
// chattr: subvolumes VOLUMES_PATH/<name>, read-only snapshots
// SNAPSHOTS_PATH/<volume>@<DTFORMAT date>, send markers
// <volume>@<date>@<host>, the legacy metadata.db file, a snapshot whose date
// does not parse, and a schedule.csv written by Python's csv module) is used
// by our daemon and CLI as it is, with no conversion step.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';

import { btrfsProgs, mountBtrfs } from '../fixtures/btrfs.js';
import { BIN, daemonEnv, startDaemonProcess, call } from '../fixtures/daemon.js';
import { runProgram } from '../fixtures/managed-plugin.js';

// The original named snapshots in the process's local time; both sides here run in UTC.
process.env.TZ = 'UTC';
const NOW = new Date('2024-01-10T12:00:00Z');
const HOUR = 3600e3;

/** A date as the original's DTFORMAT %Y-%m-%dT%H:%M:%S.%f printed it (microseconds). */
function dtformat(d: Date, micros: number): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(micros, 6)}`;
}

/** `btrfs subvolume ...` and `chattr`, as the original ran them. */
const sh = {
  create: (path: string) => btrfsProgs('subvolume', 'create', path),
  snapshotRo: (from: string, to: string) => btrfsProgs('subvolume', 'snapshot', '-r', from, to),
  nocow: (path: string) => execFileSync('chattr', ['+C', path]),
};

t.test("an installation of the original, used as it is", async (t) => {
  const { mnt } = mountBtrfs(t);
  const env: Record<string, string> = { ...daemonEnv(mnt), TZ: 'UTC' };
  const volumes = env.BUTTERVOLUME_VOLUMES_PATH!;
  const snapshots = env.BUTTERVOLUME_SNAPSHOTS_PATH!;
  const schedule = env.BUTTERVOLUME_SCHEDULE!;
  mkdirSync(volumes);
  mkdirSync(snapshots);
  mkdirSync(dirname(schedule), { recursive: true });

  // --- what the original made: `docker volume create -d ... -o copyonwrite=false db`, `web`
  sh.create(join(volumes, 'db'));
  sh.nocow(join(volumes, 'db'));
  sh.create(join(volumes, 'web'));
  writeFileSync(join(volumes, 'web', 'index.html'), 'web\n');
  writeFileSync(join(volumes, 'metadata.db'), 'SQLite format 3\0'); // legacy of v1, ignored by List
  // db snapshots at these ages before NOW, each after writing its own content
  const ages: Array<[string, number]> = [['40h', 40], ['30h', 30], ['5h30', 5.5], ['4h30', 4.5], ['3h', 3], ['30m', 0.5]];
  const snap: Record<string, string> = {};
  for (const [label, hours] of ages) {
    writeFileSync(join(volumes, 'db', 'data'), `${label}\n`);
    snap[label] = `db@${dtformat(new Date(NOW.getTime() - hours * HOUR), 123456)}`;
    sh.snapshotRo(join(volumes, 'db'), join(snapshots, snap[label]!));
  }
  writeFileSync(join(volumes, 'db', 'data'), 'current\n');
  // `buttervolume send node2 <30h>` left a marker: a read-only snapshot of the snapshot sent
  const marker = `${snap['30h']}@node2`;
  sh.snapshotRo(join(snapshots, snap['30h']!), join(snapshots, marker));
  sh.snapshotRo(join(volumes, 'web'), join(snapshots, 'web@invalid'));
  // --- ours, started on it (its scheduler's first pass, at start, finds no schedule yet)
  const daemon = await startDaemonProcess(t, { ...env, BUTTERVOLUME_TIMER: '86400' });
  const api = (path: string, body?: unknown) => call(daemon.socket, path, body);
  const cli = (...args: string[]) => runProgram(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env } });
  t.equal(daemon.stderr().match(/WARNING|ERROR/g), null, `started without a warning: ${daemon.stderr()}`);

  const list = await api('/VolumeDriver.List', {});
  t.same(
    list.body.Volumes.map((v: { Name: string; Mountpoint: string }) => [v.Name, v.Mountpoint]),
    [['db', join(volumes, 'db')], ['web', join(volumes, 'web')]],
    'List: the two volumes, not metadata.db',
  );
  t.match((await api('/VolumeDriver.Get', { Name: 'metadata.db' })).body.Err, /./, 'metadata.db is not a volume');
  const get = await api('/VolumeDriver.Get', { Name: 'db' });
  t.same(
    get.body.Volume.Status,
    { Snapshots: 6, LastSnapshot: snap['30m'], Mounts: 0, CopyOnWrite: false, Compression: null },
    'Get: its 6 snapshots (the marker is not one), the newest one, and the NOCOW the original set with chattr +C',
  );
  const all = [...Object.values(snap), marker].sort();
  t.same((await api('/VolumeDriver.Snapshot.List', { Name: 'db' })).body.Snapshots, all, 'Snapshot.List: its snapshots and the send marker');
  t.equal((await cli('snapshots', 'db')).stdout, all.map((s) => `${s}\n`).join(''), 'the CLI lists them the same');
  t.same((await api('/VolumeDriver.Snapshot.List', { Name: 'web' })).body.Snapshots, ['web@invalid']);

  // --- the schedule as the original wrote it
  // Python's csv.writer: CRLF line ends, a quoted field with a comma; a 3-column line of an older version
  const csv = [
    'db,snapshot,60,True',
    'web,snapshot,120',
    'db,"synchronize:node2,node3",60,True',
    'db,purge:2h:2h,1440,False',
    'db,replicate:node2,120,True',
  ];
  writeFileSync(schedule, csv.map((l) => `${l}\r\n`).join(''));

  t.same(
    (await api('/VolumeDriver.Schedule.List', {})).body.Schedule,
    [
      { Name: 'db', Action: 'snapshot', Timer: '60', Active: 'True' },
      { Name: 'web', Action: 'snapshot', Timer: '120', Active: 'True' },
      { Name: 'db', Action: 'synchronize:node2,node3', Timer: '60', Active: 'True' },
      { Name: 'db', Action: 'purge:2h:2h', Timer: '1440', Active: 'False' },
      { Name: 'db', Action: 'replicate:node2', Timer: '120', Active: 'True' },
    ],
    'Schedule.List: every line, the 3-column one active',
  );
  const scheduled = await cli('scheduled', 'list');
  t.equal(scheduled.code, 0, scheduled.stderr);
  t.equal(
    scheduled.stdout,
    ['snapshot 60 db ', 'snapshot 120 web ', 'synchronize:node2,node3 60 db ', 'purge:2h:2h 1440 db (paused)', 'replicate:node2 120 db '].map((l) => `${l}\n`).join(''),
    'scheduled list',
  );
  t.equal(scheduled.stderr, '', 'no line of it is refused');
  // a change through ours keeps the other lines as the original reads them
  t.equal((await cli('schedule', 'snapshot', '30', 'web')).code, 0);
  t.same(
    readFileSync(schedule, 'utf8').split(/\r?\n/).filter(Boolean),
    ['db,snapshot,60,True', 'web,snapshot,30,True', 'db,"synchronize:node2,node3",60,True', 'db,purge:2h:2h,1440,False', 'db,replicate:node2,120,True'],
    'rewritten in the original\'s format, in place',
  );

  // --- purge: the original's algorithm on the original's names; the marked snapshot stays
  const now = NOW.toISOString();
  const dry = await api('/VolumeDriver.Snapshots.Purge', { Name: 'db', Pattern: '2h:1d', Dryrun: true, Now: now });
  t.same(dry.body.Purged, [snap['40h'], snap['4h30']], 'dry run: older than 1 day, and the second of a 2-hour bucket');
  t.same(readdirSync(snapshots).sort(), [...all, 'web@invalid'].sort(), 'a dry run deletes nothing');
  const purged = await api('/VolumeDriver.Snapshots.Purge', { Name: 'db', Pattern: '2h:1d', Now: now });
  t.same(purged.body.Purged, [snap['40h'], snap['4h30']]);
  t.ok(readdirSync(snapshots).includes(snap['30h']!) && readdirSync(snapshots).includes(marker), 'the snapshot last sent to node2 and its marker are kept (next send stays incremental)');
  const webPurge = await cli('purge', '--now', now, '1h:2h', 'web');
  t.equal(webPurge.code, 0, webPurge.stderr);
  t.ok(readdirSync(snapshots).includes('web@invalid'), 'a snapshot whose date does not parse is never purged');

  // --- restore an original snapshot, snapshot and clone, mount
  const restore = await api('/VolumeDriver.Snapshot.Restore', { Name: snap['5h30'] });
  t.equal(restore.body.Err, '');
  t.equal(readFileSync(join(volumes, 'db', 'data'), 'utf8'), '5h30\n', 'the volume holds the original snapshot\'s data');
  const backup = restore.body.VolumeBackup as string;
  t.match(backup, /^db@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/, 'the replaced content kept as a snapshot named as the original would');
  t.equal(readFileSync(join(snapshots, backup, 'data'), 'utf8'), 'current\n');
  t.equal((await api('/VolumeDriver.Get', { Name: 'db' })).body.Volume.Status.CopyOnWrite, false, 'still NOCOW after the restore');
  const taken = await cli('snapshot', 'db');
  t.equal(taken.code, 0, taken.stderr);
  t.ok(taken.stdout.trim() > snap['30m']!, 'a new snapshot sorts after the original\'s');
  t.equal((await api('/VolumeDriver.Clone', { Name: 'web', Target: 'web2' })).body.VolumeCloned, 'web2');
  t.equal(readFileSync(join(volumes, 'web2', 'index.html'), 'utf8'), 'web\n');
  const mount = await api('/VolumeDriver.Mount', { Name: 'db', ID: 'c1' });
  t.equal(mount.body.Mountpoint, join(volumes, 'db'));
  t.equal((await api('/VolumeDriver.Get', { Name: 'db' })).body.Volume.Status.Mounts, 1);
  t.equal((await api('/VolumeDriver.Unmount', { Name: 'db', ID: 'c1' })).body.Err, '');
  t.equal((await api('/VolumeDriver.Remove', { Name: 'web' })).body.Err, '');
  t.same(
    readdirSync(volumes).filter((n) => n !== '.buttervolume').sort(),
    ['db', 'metadata.db', 'web2'],
    'metadata.db was left alone',
  );
});
