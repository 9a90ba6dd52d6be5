// Docker's volume plugin protocol over the real unix socket, on real btrfs:
// the original's `test`, `test_enabled_cow` and `test_capabilities`, then
// what the issue adds (Opts, Status, CreatedAt, mount reference counts).
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { lsattr, propertyGet } from '../fixtures/oracle.js';
import { startTestDaemon } from '../fixtures/daemon.js';

t.test('the original `test`: the basic scenario', async (t) => {
  const d = await startTestDaemon(t);
  const volumes = d.config.volumesPath;
  t.same((await d.call('/VolumeDriver.List', {})).body, { Volumes: [], Err: '' });
  const name = 'buttervolume-test-basic';
  let r = await d.call('/VolumeDriver.Create', { Name: name });
  t.equal(r.status, 200);
  t.same(r.body, { Err: '' });
  r = await d.call('/VolumeDriver.Get', { Name: name });
  t.equal(r.body.Volume.Name, name);
  t.equal(r.body.Volume.Mountpoint, join(volumes, name));
  t.equal(r.body.Err, '');
  t.same((await d.call('/VolumeDriver.Create', { Name: name })).body, { Err: '' }, 'create again: idempotent');
  t.same((await d.call('/VolumeDriver.List')).body, { Err: '', Volumes: [{ Name: name, Mountpoint: join(volumes, name) }] }, 'List with no body');
  for (let i = 0; i < 2; i++) {
    r = await d.call('/VolumeDriver.Mount', { Name: name });
    t.same(r.body, { Err: '', Mountpoint: join(volumes, name) }, `mount ${i + 1}`);
  }
  r = await d.call('/VolumeDriver.Mount', { Name: 'buttervolume-test-missing' });
  t.equal(r.status, 500);
  t.match(r.body.Err, /no such volume$/);
  t.same((await d.call('/VolumeDriver.Path', { Name: name })).body, { Err: '', Mountpoint: join(volumes, name) });
  r = await d.call('/VolumeDriver.Path', { Name: 'buttervolume-test-missing' });
  t.equal(r.status, 500);
  t.match(r.body.Err, /no such volume$/);
  t.same((await d.call('/VolumeDriver.Unmount', { Name: name })).body, { Err: '' });
  t.same((await d.call('/VolumeDriver.Unmount', { Name: 'buttervolume-test-missing' })).body, { Err: '' }, 'unmount of an unknown volume succeeds');
  r = await d.call('/VolumeDriver.Remove', { Name: name });
  t.same([r.status, r.body], [200, { Err: '' }], 'mounts without an ID are not counted: remove succeeds');
  r = await d.call('/VolumeDriver.Remove', { Name: name });
  t.same([r.status, r.body], [500, { Err: `${name}: no such volume` }]);
  r = await d.call('/VolumeDriver.Get', { Name: name });
  t.same([r.status, r.body], [500, { Err: `${name}: no such volume` }]);
  t.same((await d.call('/VolumeDriver.List', {})).body.Volumes, []);
});

t.test('handshake and capabilities (the original test_capabilities)', async (t) => {
  const d = await startTestDaemon(t);
  const activate = await d.call('/Plugin.Activate'); // dockerd sends an empty body
  t.same([activate.status, activate.body], [200, { Err: '', Implements: ['VolumeDriver'] }]);
  t.match(activate.text, /^\{.*\}$/, 'a JSON answer');
  const caps = await d.call('/VolumeDriver.Capabilities', {});
  t.same(caps.body, { Err: '', Capabilities: { Scope: 'local' } });
  t.same((await d.call('/VolumeDriver.Capabilities')).body.Capabilities, { Scope: 'local' }, 'empty body too');
  t.same((await d.call('/VolumeDriver.Capabilities', ' \n')).body.Capabilities, { Scope: 'local' }, 'blank body is {}');
});

t.test('Create options (the original test_enabled_cow, copyonwrite, compression)', async (t) => {
  const d = await startTestDaemon(t);
  const path = (n: string) => join(d.config.volumesPath, n);
  t.same((await d.call('/VolumeDriver.Create', { Name: 'cow', Opts: null })).body, { Err: '' }, 'Opts null (issue #45)');
  t.notOk(lsattr(path('cow')).includes('C'), 'copy-on-write by default: no C attribute');
  await d.call('/VolumeDriver.Create', { Name: 'nocow', Opts: { copyonwrite: 'false' } });
  t.ok(lsattr(path('nocow')).includes('C'), 'copyonwrite=false sets NOCOW');
  await d.call('/VolumeDriver.Create', { Name: 'yaml', Opts: { copyonwrite: 'True' } });
  t.notOk(lsattr(path('yaml')).includes('C'), 'compose YAML "True" is read case-insensitively');
  await d.call('/VolumeDriver.Create', { Name: 'zst', Opts: { compression: 'zstd' } });
  t.equal(propertyGet(path('zst'), 'compression'), 'zstd');
  const get = await d.call('/VolumeDriver.Get', { Name: 'zst' });
  t.equal(get.body.Volume.Status.Compression, 'zstd');
  t.equal((await d.call('/VolumeDriver.Get', { Name: 'nocow' })).body.Volume.Status.CopyOnWrite, false);

  let r = await d.call('/VolumeDriver.Create', { Name: 'bad', Opts: { copyonwrite: 'maybe' } });
  t.same([r.status, r.body], [500, { Err: 'Invalid option for copyonwrite: maybe. Set to "true" or "false".' }]);
  r = await d.call('/VolumeDriver.Create', { Name: 'bad', Opts: { sise: '10G' } });
  t.equal(r.status, 500);
  t.match(r.body.Err, /^Unknown option: sise/, 'an unknown option is named');
  r = await d.call('/VolumeDriver.Create', { Name: 'bad', Opts: { size: '10G' } });
  t.match(r.body.Err, /the option size= needs quotas, and QUOTAS is off/, 'size= with QUOTAS off names the setting');
  r = await d.call('/VolumeDriver.Create', { Name: 'bad', Opts: { compression: 'gzip' } });
  t.match(r.body.Err, /Invalid option for compression: gzip/);
  r = await d.call('/VolumeDriver.Create', { Name: 'bad', Opts: 'copyonwrite=false' });
  t.match(r.body.Err, /Opts must be an object/);
  t.notOk((await d.call('/VolumeDriver.List')).body.Volumes.some((v: { Name: string }) => v.Name === 'bad'), 'nothing created');
});

t.test('Get: CreatedAt in RFC 3339 and a Status map', async (t) => {
  const d = await startTestDaemon(t);
  const before = Date.now();
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  writeFileSync(join(d.config.volumesPath, 'v', 'f'), 'x');
  const s1 = (await d.call('/VolumeDriver.Snapshot', { Name: 'v' })).body.Snapshot;
  const s2 = (await d.call('/VolumeDriver.Snapshot', { Name: 'v' })).body.Snapshot;
  await d.call('/VolumeDriver.Mount', { Name: 'v', ID: 'c1' });
  const { Volume: volume, Err } = (await d.call('/VolumeDriver.Get', { Name: 'v' })).body;
  t.equal(Err, '');
  t.match(volume.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'RFC 3339');
  t.ok(Math.abs(Date.parse(volume.CreatedAt) - before) < 60_000, 'the creation time');
  t.not(s1, s2);
  t.same(volume.Status, { Snapshots: 2, LastSnapshot: s2, Mounts: 1, CopyOnWrite: true, Compression: null });
});

t.test('Mount/Unmount count per (volume, ID); Remove and Restore refused while mounted', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  await d.call('/VolumeDriver.Snapshot', { Name: 'v' });
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  for (const id of [a, a, b]) t.equal((await d.call('/VolumeDriver.Mount', { Name: 'v', ID: id })).status, 200);
  const mounts = async () => (await d.call('/VolumeDriver.Get', { Name: 'v' })).body.Volume.Status.Mounts;
  t.equal(await mounts(), 3, 'the same ID twice (docker cp on a running container) counts twice');
  let r = await d.call('/VolumeDriver.Remove', { Name: 'v' });
  t.same([r.status, r.body], [500, { Err: 'v: cannot remove a volume in use (mounted 3 times); stop its containers first' }]);
  r = await d.call('/VolumeDriver.Snapshot.Restore', { Name: 'v' });
  t.equal(r.status, 500);
  t.match(r.body.Err, /cannot restore a volume in use/);
  t.ok(statSync(join(d.config.volumesPath, 'v')).isDirectory(), 'still there');
  await d.call('/VolumeDriver.Unmount', { Name: 'v', ID: a });
  await d.call('/VolumeDriver.Unmount', { Name: 'v', ID: 'never-mounted' });
  t.equal(await mounts(), 2);
  await d.call('/VolumeDriver.Unmount', { Name: 'v', ID: a });
  await d.call('/VolumeDriver.Unmount', { Name: 'v', ID: b });
  t.equal(await mounts(), 0);
  t.same((await d.call('/VolumeDriver.Remove', { Name: 'v' })).body, { Err: '' });
  r = await d.call('/VolumeDriver.Mount', { Name: 'v', ID: 'x'.repeat(300) });
  t.equal(r.status, 500, 'an over-long ID is refused');
});

t.test('mount counts survive a daemon restart', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  await d.call('/VolumeDriver.Mount', { Name: 'v', ID: 'c1' });
  await d.daemon.close();
  const { runDaemon } = await import('../../src/server/daemon.js');
  const { silentLogger } = await import('../../src/log.js');
  const again = await runDaemon(d.config, { logger: silentLogger });
  t.teardown(() => again.close());
  const r = await d.call('/VolumeDriver.Remove', { Name: 'v' });
  t.match(r.body.Err, /in use \(mounted 1 time\)/, 'the restarted daemon still knows the volume is in use');
  await d.call('/VolumeDriver.Unmount', { Name: 'v', ID: 'c1' });
  t.same((await d.call('/VolumeDriver.Remove', { Name: 'v' })).body, { Err: '' });
});
