// The original's extension endpoints over the unix socket, on real btrfs:
// test_snapshot, test_snapshots, test_restore, test_clone, test_purge, and
// the Send/Sync placeholders of this version.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { listTree, startTestDaemon, volumeEntries, type TestDaemon } from '../fixtures/daemon.js';

async function volumeWithFile(d: TestDaemon, name: string, content = 'foobar'): Promise<string> {
  const r = await d.call('/VolumeDriver.Create', { Name: name });
  if (r.body.Err !== '') throw new Error(r.body.Err);
  const path = join(d.config.volumesPath, name);
  writeFileSync(join(path, 'foobar'), content);
  return path;
}

const read = (...parts: string[]) => readFileSync(join(...parts, 'foobar'), 'utf8');

t.test('test_snapshot and test_snapshots', async (t) => {
  const d = await startTestDaemon(t);
  const { snapshotsPath } = d.config;
  const path = await volumeWithFile(d, 'vol1');
  await volumeWithFile(d, 'vol2');
  const r = await d.call('/VolumeDriver.Snapshot', { Name: 'vol1' });
  t.equal(r.status, 200);
  t.match(r.body, { Err: '', Snapshot: /^vol1@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/ });
  t.equal(read(snapshotsPath, r.body.Snapshot), read(path), 'the snapshot has the content of the volume');
  t.equal(await btrfs.getReadonly(join(snapshotsPath, r.body.Snapshot)), true, 'read-only');

  const snap = async (n: string) => (await d.call('/VolumeDriver.Snapshot', { Name: n })).body.Snapshot as string;
  const mine = [r.body.Snapshot, await snap('vol1')];
  const theirs = [await snap('vol2'), await snap('vol2')];
  const all = [...mine, ...theirs].sort();
  t.same((await d.call('/VolumeDriver.Snapshot.List', undefined, 'GET')).body, { Err: '', Snapshots: all }, 'GET without a name: every snapshot');
  t.same((await d.call('/VolumeDriver.Snapshot.List', {})).body.Snapshots, all, 'POST {} as the 3.10 client');
  t.same((await d.call('/VolumeDriver.Snapshot.List/vol2', undefined, 'GET')).body.Snapshots, theirs.sort());
  t.same((await d.call('/VolumeDriver.Snapshot.List', { Name: 'vol2' })).body.Snapshots, theirs.sort(), 'POST {Name} as the 3.10 client');
  t.same((await d.call('/VolumeDriver.Snapshot.List/vol', undefined, 'GET')).body.Snapshots, [], 'a prefix of a name is not the volume');

  t.same((await d.call('/VolumeDriver.Snapshot.Remove', { Name: mine[0] })).body, { Err: '' });
  t.notOk(readdirSync(snapshotsPath).includes(mine[0]!));
  const again = await d.call('/VolumeDriver.Snapshot.Remove', { Name: mine[0] });
  t.same([again.status, again.body], [500, { Err: 'No such snapshot' }]);
  const missing = await d.call('/VolumeDriver.Snapshot', { Name: 'nope' });
  t.same([missing.status, missing.body], [500, { Err: 'No such volume: nope' }]);
});

t.test('test_restore: the volume gets the snapshot back, the old content is kept', async (t) => {
  const d = await startTestDaemon(t);
  const { snapshotsPath } = d.config;
  const path = await volumeWithFile(d, 'vol');
  const snapshot = (await d.call('/VolumeDriver.Snapshot', { Name: 'vol' })).body.Snapshot;
  writeFileSync(join(path, 'foobar'), 'modified foobar');
  let r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: snapshot });
  t.equal(r.status, 200);
  t.equal(r.body.Err, '');
  t.equal(read(path), 'foobar', 'the volume has the snapshot content');
  t.match(r.body, { Snapshot: snapshot, Volume: 'vol', VolumeBackup: /^vol@/ });
  t.equal(read(snapshotsPath, r.body.VolumeBackup), 'modified foobar', 'VolumeBackup holds what the volume held');

  const path2 = await volumeWithFile(d, 'vol2', 'modified2 foobar');
  r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: snapshot, Target: 'vol2' });
  t.equal(r.body.Err, '');
  t.equal(read(path2), 'foobar', 'restored onto another existing volume (Target)');
  t.match(r.body.VolumeBackup, /^vol2@/);

  r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: snapshot, Target: 'fresh' });
  t.same(r.body, { Err: '', Snapshot: snapshot, Volume: 'fresh' }, 'no VolumeBackup when the target did not exist');

  writeFileSync(join(path, 'foobar'), 'third');
  r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: 'vol', Target: '' });
  t.equal(r.body.Err, '');
  t.not(r.body.Snapshot, snapshot, 'a volume name means its newest snapshot');
  t.equal(read(path), 'modified foobar', "the newest snapshot is the first restore's backup");

  r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: 'fresh' });
  t.same([r.status, r.body], [500, { Err: 'fresh: no snapshot to restore' }], 'an error, not a silent success');
  r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: 'vol@2000-01-01T00:00:00.000000' });
  t.same([r.status, r.body], [500, { Err: 'No such snapshot' }]);
  t.same(volumeEntries(d.config.volumesPath).filter((n) => n.startsWith('.')), [], 'no work subvolumes left');
});

t.test('test_clone', async (t) => {
  const d = await startTestDaemon(t);
  const path = await volumeWithFile(d, 'src');
  let r = await d.call('/VolumeDriver.Clone', { Name: 'src', Target: 'copy' });
  t.same([r.status, r.body], [200, { Err: '', VolumeCloned: 'copy' }]);
  const copy = join(d.config.volumesPath, 'copy');
  t.equal(read(copy), 'foobar');
  writeFileSync(join(copy, 'foobar'), 'changed');
  t.equal(read(path), 'foobar', 'changing the clone leaves the source alone');
  r = await d.call('/VolumeDriver.Clone', { Name: 'src', Target: 'copy' });
  t.same([r.status, r.body], [500, { Err: 'copy: volume already exists' }]);
  t.equal(read(copy), 'changed', 'the existing target is untouched');
  r = await d.call('/VolumeDriver.Clone', { Name: 'src' });
  t.same([r.status, r.body], [500, { Err: 'Target is required' }], 'the original answered an HTML 500 here');
  r = await d.call('/VolumeDriver.Clone', { Name: 'missing', Target: 'x' });
  t.same([r.status, r.body], [500, { Err: 'No such volume' }]);
});

t.test('test_purge through HTTP: 20 hourly snapshots with names in the past', async (t) => {
  const d = await startTestDaemon(t);
  const { snapshotsPath, dtFormat } = d.config;
  const name = 'buttervolume-test-purge';
  const purge = (body: Record<string, unknown>) => d.call('/VolumeDriver.Snapshots.Purge', { Name: name, ...body });

  let r = await purge({ Pattern: '2h:2h' });
  t.same([r.status, r.body], [200, { Err: '', Purged: [] }], 'no volume, no snapshots: harmless');

  const path = await volumeWithFile(d, name);
  const now = new Date();
  const stamp = (hoursAgo: number) => `${name}@${formatTimestamp(new Date(now.getTime() - hoursAgo * 3600e3), dtFormat)}`;
  // test.py create_20_hourly_snapshots: ages 0..19 h, a send marker, an unparsable name.
  const create20 = async () => {
    const names = [...Array.from({ length: 20 }, (_, h) => stamp(h)), `${stamp(0)}@127.1.2.3`, `${name}@invalid`];
    for (const n of names) await btrfs.snapshot(path, join(snapshotsPath, n));
    return names;
  };
  const cleanup = async () => {
    for (const n of readdirSync(snapshotsPath)) await btrfs.deleteSubvolume(join(snapshotsPath, n));
  };
  const count = () => readdirSync(snapshotsPath).length;
  const Now = now.toISOString(); // the clock of test.py's purge: right after creating the names

  const names = await create20();
  r = await purge({ Pattern: '2h:2h', Dryrun: true, Now });
  t.equal(r.body.Purged.length, 18, 'a dry run lists the 18...');
  t.equal(count(), 22, '...and deletes nothing');
  r = await purge({ Pattern: '2h:2h', Now });
  t.same([r.status, r.body.Err, r.body.Purged.length], [200, '', 18], '2h:2h deletes 18');
  t.equal(count(), 22 - 18);
  t.same(readdirSync(snapshotsPath).sort(), [names[0], names[1], names[20], names[21]].sort(), 'kept: 0 h, 1 h, the marker, the invalid name');
  r = await purge({ Pattern: '2h:2h', Now });
  t.same(r.body, { Err: '', Purged: [] }, 'a second run deletes nothing');

  await cleanup();
  await create20();
  r = await purge({ Pattern: '2h:4h:8h:16h', Now });
  t.equal(r.body.Purged.length, 15, '2h:4h:8h:16h deletes 15');
  t.equal(count(), 22 - 15);

  await cleanup();
  await create20();
  r = await purge({ Pattern: '60m:plop:3000m', Now });
  t.equal(r.status, 500);
  t.match(r.body.Err, /^Invalid purge pattern "60m:plop:3000m": "plop" is not <number><m\|h\|d\|w\|y>$/);
  t.equal(count(), 22, 'nothing deleted');
  r = await purge({ Pattern: '60m:120m:300m:240m:180m', Now });
  t.equal(r.body.Purged.length, 18, 'an unsorted pattern deletes 18');
  t.equal(count(), 22 - 18);

  r = await purge({ Pattern: '2h:2h', Now: 'yesterday' });
  t.match(r.body.Err, /^Now must be an RFC 3339 date-time/);
  r = await purge({ Pattern: '2h:2h', DryRun: true });
  t.same([r.status, r.body], [500, { Err: 'unknown field "DryRun"; did you mean "Dryrun"?' }], 'a misspelt Dryrun never purges for real');
  r = await purge({ Pattern: '2h:2h', Dryrun: 'yes' });
  t.same(r.body, { Err: 'Dryrun must be true or false, got a string' });
});

// Valid requests are exercised against real peers in test/e2e/replication*.
t.test('Snapshot.Send and Volume.Sync: bad fields are refused before anything is touched', async (t) => {
  const d = await startTestDaemon(t);
  await volumeWithFile(d, 'vol');
  const snapshot = (await d.call('/VolumeDriver.Snapshot', { Name: 'vol' })).body.Snapshot;
  const before = listTree(d.mnt);
  let r;
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['/VolumeDriver.Snapshot.Send', { Name: 'vol', Host: 'h' }, /has no "@"/],
    ['/VolumeDriver.Snapshot.Send', { Name: snapshot, Host: 'a@b@h' }, /host "a@b@h": more than one "@"/],
    ['/VolumeDriver.Snapshot.Send', { Name: snapshot, Host: 'h' }, /host "h": no port: give name:port \(SSH_PORT is 0 here/],
    ['/VolumeDriver.Snapshot.Receive', { Name: 'vol', Host: 'h:0' }, /port "0" must be a number from 1 to 65535/],
    ['/VolumeDriver.Volume.Sync', { Volumes: ['vol'], Hosts: ['h:22', 'x y:22'] }, /host "x y:22": "x y" is not a DNS name/],
    ['/VolumeDriver.Snapshot.Send', { Name: snapshot }, /^Host is required$/],
    ['/VolumeDriver.Snapshot.Send', { Name: snapshot, Host: 'h', Test: 1 }, /^Test must be true or false/],
    ['/VolumeDriver.Volume.Sync', { Volumes: 'vol', Hosts: [] }, /^Volumes must be an array of strings, got a string$/],
    ['/VolumeDriver.Volume.Sync', { Volumes: ['../x'], Hosts: [] }, /volume name "..\/x"/],
    ['/VolumeDriver.Volume.Sync', { Volumes: ['vol'], Hosts: [7] }, /^Hosts\[0\] must be a string, got a number$/],
    ['/VolumeDriver.Volume.Sync', { Volumes: ['vol'], Hosts: ['a b'] }, /is not a DNS name/],
  ];
  for (const [path, body, err] of bad) {
    r = await d.call(path, body);
    t.equal(r.status, 500);
    t.match(r.body.Err, err, `${path} ${JSON.stringify(body)}`);
  }
  t.same(listTree(d.mnt), before, 'nothing changed on disk');
});
