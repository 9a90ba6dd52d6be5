// The plugin under a real Docker engine: our daemon (a child process) serves
// a legacy plugin socket in /run/docker/plugins, dockerd creates, mounts,
// inspects and removes volumes through it, containers write and read the
// data, and snapshot + restore go through our own API.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess, volumeEntries } from '../fixtures/daemon.js';
import { LEGACY_PLUGIN_DIR, startDockerd } from '../fixtures/docker.js';

// Legacy plugins are found by a fixed host path: a driver name of our own.
const driver = `bv-e2e-plugin-${process.pid}`;

t.test('docker volume create/run/inspect/rm through the plugin, snapshot and restore through our API', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt, { BUTTERVOLUME_SOCKET: join(LEGACY_PLUGIN_DIR, `${driver}.sock`) });
  // Started before dockerd, so that dockerd (and its containers, which send
  // Unmount) is torn down first.
  const plugin = await startDaemonProcess(t, env);
  const api = (path: string, body?: unknown) => call(plugin.socket, path, body);
  const e = await startDockerd(t);
  // A one-letter name before ":" reads as a Windows drive to the docker CLI: names of 2+ letters.
  const run = (...args: string[]) => e.docker(['run', '--rm', '--network', 'none', ...args]);
  const volumePath = join(env.BUTTERVOLUME_VOLUMES_PATH!, 'vol');

  await e.docker(['volume', 'create', '-d', driver, 'vol']);
  t.ok(existsSync(volumePath), 'dockerd asked us to create the subvolume');
  t.equal((await e.docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'])).stdout, `${driver} vol\n`);

  const wrote = await run('-v', 'vol:/data', e.image, 'sh', '-c', 'echo original > /data/f && cat /data/f');
  t.equal(wrote.stdout, 'original\n', 'a container writes into the volume');

  const inspect = async () => JSON.parse((await e.docker(['volume', 'inspect', 'vol'])).stdout)[0];
  const info = await inspect();
  t.equal(info.Driver, driver);
  t.equal(info.Mountpoint, volumePath);
  t.match(info.CreatedAt, /^\d{4}-\d\d-\d\dT/, 'CreatedAt from our Get');
  t.same(info.Status, { Snapshots: 0, LastSnapshot: null, Mounts: 0, CopyOnWrite: true, Compression: null }, 'docker volume inspect shows our Status');

  const snap = await api('/VolumeDriver.Snapshot', { Name: 'vol' });
  t.equal(snap.body.Err, '');
  t.equal((await inspect()).Status.LastSnapshot, snap.body.Snapshot, 'inspect shows the newest snapshot');
  await run('-v', 'vol:/data', e.image, 'sh', '-c', 'echo changed > /data/f');

  // While a container uses the volume, restore is refused and the data stays.
  const id = (await e.docker(['run', '-d', '--network', 'none', '-v', 'vol:/data', e.image, 'sleep', '600'])).stdout.trim();
  t.equal((await inspect()).Status.Mounts, 1, 'the running container holds one mount');
  const refused = await api('/VolumeDriver.Snapshot.Restore', { Name: snap.body.Snapshot });
  t.equal(refused.status, 500);
  t.match(refused.body.Err, /^vol: cannot restore a volume in use \(mounted 1 time\)/);
  const rm = await e.docker(['volume', 'rm', 'vol'], { allowFail: true });
  t.not(rm.code, 0, 'dockerd itself refuses to remove a volume in use');
  await e.docker(['rm', '-f', id]);
  t.equal((await inspect()).Status.Mounts, 0, 'removing the container unmounted it');

  const restored = await api('/VolumeDriver.Snapshot.Restore', { Name: snap.body.Snapshot });
  t.equal(restored.body.Err, '');
  t.match(restored.body.VolumeBackup, /^vol@/);
  const read = await run('-v', 'vol:/data', e.image, 'cat', '/data/f');
  t.equal(read.stdout, 'original\n', 'a second container reads the restored data');
  const backup = await api('/VolumeDriver.Clone', { Name: 'vol', Target: 'vol-copy' });
  t.equal(backup.body.Err, '');
  t.equal((await e.docker(['volume', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean).sort().join(' '), 'vol vol-copy', 'docker lists a clone made through our API');

  const bad = await e.docker(['volume', 'create', '-d', driver, '-o', 'size=10G', 'w'], { allowFail: true });
  t.not(bad.code, 0);
  t.match(bad.stderr, /the option size= needs quotas, and QUOTAS is off/, 'our Err reaches the docker CLI');
  await e.docker(['volume', 'create', '-d', driver, '-o', 'copyonwrite=false', 'db']);
  t.equal((JSON.parse((await e.docker(['volume', 'inspect', 'db'])).stdout)[0]).Status.CopyOnWrite, false);

  for (const name of ['vol', 'vol-copy', 'db']) await e.docker(['volume', 'rm', name]);
  t.same(volumeEntries(env.BUTTERVOLUME_VOLUMES_PATH!), [], 'docker volume rm removed the subvolumes');
  t.equal((await e.docker(['volume', 'ls', '-q'])).stdout, '');
  t.equal(readdirSync(env.BUTTERVOLUME_SNAPSHOTS_PATH!).length, 2, 'snapshots outlive their volume');
});
