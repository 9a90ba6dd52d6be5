// Mount reference counts with a real dockerd: containers started and
// stopped at once (as compose does), with dockerd's Gets around each Mount.
import { join } from 'node:path';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess } from '../fixtures/daemon.js';
import { LEGACY_PLUGIN_DIR, startDockerd } from '../fixtures/docker.js';

const driver = `bv-e2e-counts-${process.pid}`;

t.test('6 containers at once on one volume: counted 6, then 1, then 0; restore and rm follow', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt, { BUTTERVOLUME_SOCKET: join(LEGACY_PLUGIN_DIR, `${driver}.sock`) });
  const plugin = await startDaemonProcess(t, env);
  const api = (path: string, body?: unknown) => call(plugin.socket, path, body);
  const e = await startDockerd(t);
  await e.docker(['volume', 'create', '-d', driver, 'shared']);
  await e.docker(['run', '--rm', '--network', 'none', '-v', 'shared:/data', e.image, 'sh', '-c', 'echo before > /data/f']);
  const snap = (await api('/VolumeDriver.Snapshot', { Name: 'shared' })).body.Snapshot as string;
  const mounts = async () => (await api('/VolumeDriver.Get', { Name: 'shared' })).body.Volume.Status.Mounts as number;

  const ids = (
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        e.docker(['run', '-d', '--network', 'none', '--name', `c${i}`, '-v', 'shared:/data', e.image, 'sh', '-c', `echo ${i} > /data/c${i}; sleep 600`]),
      ),
    )
  ).map((r) => r.stdout.trim());
  t.equal(ids.length, 6);
  t.equal(await mounts(), 6, 'six containers started at once: six mounts');

  await Promise.all(ids.slice(1).map((id) => e.docker(['rm', '-f', id])));
  t.equal(await mounts(), 1, 'five stopped at once: one left');
  const refused = await api('/VolumeDriver.Snapshot.Restore', { Name: snap });
  t.equal(refused.status, 500);
  t.match(refused.body.Err, /cannot restore a volume in use \(mounted 1 time\)/);
  const alive = await e.docker(['exec', ids[0]!, 'sh', '-c', 'echo still > /data/alive && cat /data/alive']);
  t.equal(alive.stdout, 'still\n', "the running container's volume is intact");

  await e.docker(['rm', '-f', ids[0]!]);
  t.equal(await mounts(), 0, 'the last one stopped');
  t.equal((await api('/VolumeDriver.Snapshot.Restore', { Name: snap })).body.Err, '', 'restore goes through');
  const read = await e.docker(['run', '--rm', '--network', 'none', '-v', 'shared:/data', e.image, 'cat', '/data/f']);
  t.equal(read.stdout, 'before\n');
  await e.docker(['volume', 'rm', 'shared']);
  t.equal((await api('/VolumeDriver.Get', { Name: 'shared' })).status, 500, 'removed');
});
