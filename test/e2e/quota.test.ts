// Size limits under a real Docker engine: our daemon (QUOTAS=simple) serves
// a legacy plugin socket, dockerd creates volumes with -o size=, containers
// write past their limit (ENOSPC/EDQUOT: "Disk quota exceeded") while their
// neighbours keep working, docker volume inspect shows Used and Size, and
// the limits survive a daemon restart, clone and restore; resize (CLI and
// HTTP) both ways; snapshots --size. QUOTAS=off refuses size= naming the
// setting; QUOTAS=simple on a filesystem with full qgroups refuses to start.
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess } from '../fixtures/daemon.js';
import { LEGACY_PLUGIN_DIR, startDockerd, uniqueDriverName } from '../fixtures/docker.js';
import { runCli } from '../cli/fixtures/cli.js';
import { qgroupShow } from '../fixtures/quota-oracle.js';

const MiB = 1024 * 1024;
const QUOTA_ERROR = /Disk quota exceeded|No space left on device/;

t.test('QUOTAS=simple under dockerd: limits enforced, Used, resize, restart, clone, restore', async (t) => {
  const { mnt } = mountBtrfs(t, { size: 3 * 1024 ** 3 });
  const driver = uniqueDriverName('bv-e2e-quota');
  const env = daemonEnv(mnt, { BUTTERVOLUME_SOCKET: join(LEGACY_PLUGIN_DIR, `${driver}.sock`), BUTTERVOLUME_QUOTAS: 'simple' });
  let plugin = await startDaemonProcess(t, env);
  t.match(plugin.stderr(), /Quotas: turned btrfs simple quotas on for the filesystem of .*\(QUOTAS=simple\)/, 'the daemon turned simple quotas on, and said so');
  t.equal((await btrfs.quotaStatus(mnt)).mode, 'simple');
  const e = await startDockerd(t);
  const run = (...args: string[]) => e.docker(['run', '--rm', '--network', 'none', ...args], { allowFail: true });
  const inspect = async (name: string) => JSON.parse((await e.docker(['volume', 'inspect', name])).stdout)[0].Status;
  const bv = (...args: string[]) => runCli(args, env);

  await e.docker(['volume', 'create', '-d', driver, '-o', 'size=64M', 'small']);
  await e.docker(['volume', 'create', '-d', driver, 'neighbour']);
  await e.docker(['volume', 'create', '-d', driver, '-o', 'size=1G', 'measured']);
  const small = await inspect('small');
  t.equal(small.Size, 64 * MiB, 'inspect: Size is the limit');
  t.ok(small.Used < MiB, `inspect: Used near 0 (${small.Used})`);
  t.equal((await inspect('neighbour')).Size, null, 'no size=: no limit');

  // Past the limit: the container's write fails; the neighbour keeps working.
  const past = await run('-v', 'small:/data', e.image, 'sh', '-c', 'dd if=/dev/urandom of=/data/big bs=1M count=100 && sync');
  t.not(past.code, 0, 'writing 100 MiB into a 64 MiB volume fails');
  t.match(past.stderr, QUOTA_ERROR, `the container is told why: ${past.stderr.trim().split('\n').pop()}`);
  const usedFull = (await inspect('small')).Used;
  t.ok(usedFull <= 64 * MiB && usedFull > 56 * MiB, `the volume is full to its limit (${usedFull})`);
  const other = await run('-v', 'neighbour:/data', e.image, 'sh', '-c', 'dd if=/dev/urandom of=/data/f bs=1M count=80 2>/dev/null && sync && wc -c < /data/f');
  t.equal(other.code, 0, 'a neighbour volume writes 80 MiB meanwhile');
  t.equal(other.stdout.trim(), String(80 * MiB));
  const host = await run('-v', 'small:/data', e.image, 'sh', '-c', 'rm /data/big && echo ok > /data/after && cat /data/after');
  t.equal(host.stdout, 'ok\n', 'after deleting, the full volume takes writes again');

  // Usage within 1% of what was written (no sync asked: Get commits first).
  const wrote = await run('-v', 'measured:/data', e.image, 'sh', '-c', 'dd if=/dev/urandom of=/data/f bs=1M count=50 2>/dev/null');
  t.equal(wrote.code, 0);
  const measured = (await inspect('measured')).Used;
  t.ok(Math.abs(measured - 50 * MiB) <= 0.01 * 50 * MiB, `Used ${measured} within 1% of the 50 MiB written`);

  // Resize: larger through the CLI, then the container's 100 MiB fits.
  const grow = await bv('resize', 'small', '128M');
  t.same([grow.code, grow.stderr], [0, ''], 'buttervolume resize small 128M');
  t.match(grow.stdout, /^small 128M \(used /);
  t.equal((await inspect('small')).Size, 128 * MiB);
  t.equal((await run('-v', 'small:/data', e.image, 'sh', '-c', 'dd if=/dev/urandom of=/data/big bs=1M count=100 2>/dev/null')).code, 0, 'now 100 MiB fit');
  // Smaller than its usage: refused, then forced; the next write fails; HTTP gives it room again.
  const shrink = await bv('resize', 'small', '32M');
  t.equal(shrink.code, 1);
  t.match(shrink.stderr, /^buttervolume: resize: small: cannot limit it to 32M, it already uses 100\.\d+M .*--force/);
  t.equal((await inspect('small')).Size, 128 * MiB, 'refused: unchanged');
  const forced = await bv('resize', '--force', '--json', 'small', '32M');
  t.equal(forced.code, 0);
  t.match(JSON.parse(forced.stdout), { volume: 'small', size: 32 * MiB });
  t.match((await run('-v', 'small:/data', e.image, 'sh', '-c', 'echo x > /data/new')).stderr, QUOTA_ERROR, 'a container cannot write in it now');
  const http = await call(plugin.socket, '/VolumeDriver.Volume.Resize', { Name: 'small', Size: '256M' });
  t.equal(http.body.Err, '');
  t.equal(http.body.Size, 256 * MiB, 'VolumeDriver.Volume.Resize');
  t.equal((await call(plugin.socket, '/VolumeDriver.Volume.Resize', { Name: 'small', Size: 'lots' })).body.Err, 'Invalid size: lots. Set a size from 1M to 8191T: a number of bytes or with a binary unit K, M, G, T (10G, 512M).');
  await e.docker(['volume', 'create', '-d', driver, '-o', 'size=16M', 'gone']);
  t.equal((await bv('resize', 'gone', 'none')).code, 0, 'resize none');
  t.equal((await inspect('gone')).Size, null, 'no limit any more');

  // A daemon restart: the limits are the kernel's, nothing lost.
  plugin.kill('SIGTERM');
  await plugin.exited;
  plugin = await startDaemonProcess(t, env);
  t.match(plugin.stderr(), /Quotas: btrfs simple quotas are on/, 'on already at the restart');
  t.equal((await inspect('small')).Size, 256 * MiB, 'the limit survived the restart');
  t.equal((await inspect('measured')).Size, 1024 * MiB);

  // Clone: the source's limit, enforced in the clone.
  t.equal((await bv('clone', 'measured', 'measured-copy')).code, 0);
  t.equal((await inspect('measured-copy')).Size, 1024 * MiB, "a clone has its source's limit");
  await bv('resize', 'measured-copy', '60M');
  t.match((await run('-v', 'measured-copy:/data', e.image, 'sh', '-c', 'dd if=/dev/urandom of=/data/g bs=1M count=80')).stderr, QUOTA_ERROR, 'enforced in the clone');

  // Restore: the target keeps its limit.
  const snap = (await bv('snapshot', 'small')).stdout.trim();
  await bv('resize', 'small', '200M');
  const restored = await call(plugin.socket, '/VolumeDriver.Snapshot.Restore', { Name: snap });
  t.equal(restored.body.Err, '');
  t.equal((await inspect('small')).Size, 200 * MiB, 'restore keeps the limit of the volume it restores into');
  t.equal((await bv('restore', snap, 'small-new')).code, 0);
  t.equal((await inspect('small-new')).Size, null, 'restored into a new volume: no limit');
  const ids = qgroupShow(mnt);
  const smallId = (await btrfs.subvolumeInfo(join(env.BUTTERVOLUME_VOLUMES_PATH!, 'small'))).id;
  t.equal(ids.get(smallId)?.maxReferenced, 200 * MiB, 'btrfs qgroup show agrees');

  // snapshots --size: what deleting each snapshot frees (a volume of its own: a clone would share the data).
  await e.docker(['volume', 'create', '-d', driver, 'sized']);
  const write50 = () => run('-v', 'sized:/data', e.image, 'sh', '-c', 'dd if=/dev/urandom of=/data/f bs=1M count=50 2>/dev/null');
  t.equal((await write50()).code, 0);
  const s1 = (await bv('snapshot', 'sized')).stdout.trim();
  t.equal((await write50()).code, 0, 'the volume rewrites its 50 MiB');
  const s2 = (await bv('snapshot', 'sized')).stdout.trim();
  const sizes = await bv('snapshots', '--size', '--json', 'sized');
  t.equal(sizes.code, 0);
  const listed = JSON.parse(sizes.stdout).snapshots as Array<{ name: string; exclusive: number }>;
  t.same(listed.map((s) => s.name), [s1, s2]);
  t.ok(Math.abs(listed[0]!.exclusive - 50 * MiB) <= 0.01 * 50 * MiB, `the older snapshot alone keeps the old 50 MiB (${listed[0]!.exclusive})`);
  t.ok(listed[1]!.exclusive < MiB, 'the newer one shares all with the volume');
  const text = await bv('snapshots', '--size', 'sized');
  t.match(text.stdout, new RegExp(`^${s1} 50(\\.\\d+)?M\\n${s2} \\d`), 'text: <snapshot> <size>');
  const viaHttp = await call(plugin.socket, '/VolumeDriver.Snapshot.Sizes', { Name: 'sized' });
  t.same(viaHttp.body.Snapshots.map((s: { Name: string }) => s.Name), [s1, s2], 'VolumeDriver.Snapshot.Sizes');

  for (const name of ['small', 'neighbour', 'measured', 'gone', 'measured-copy', 'small-new', 'sized']) await e.docker(['volume', 'rm', name]);
});

t.test('QUOTAS=off: -o size= refused naming the setting; inspect shows no Used', async (t) => {
  const { mnt } = mountBtrfs(t);
  const driver = uniqueDriverName('bv-e2e-quota-off');
  const env = daemonEnv(mnt, { BUTTERVOLUME_SOCKET: join(LEGACY_PLUGIN_DIR, `${driver}.sock`) });
  const plugin = await startDaemonProcess(t, env);
  t.notMatch(plugin.stderr(), /Quotas/, 'nothing said of quotas');
  const e = await startDockerd(t);
  const refused = await e.docker(['volume', 'create', '-d', driver, '-o', 'size=10G', 'big'], { allowFail: true });
  t.not(refused.code, 0);
  t.match(refused.stderr, /the option size= needs quotas, and QUOTAS is off: set QUOTAS=simple \(or qgroup\)/, 'the docker CLI shows why, naming QUOTAS');
  t.equal((await e.docker(['volume', 'ls', '-q'])).stdout, '', 'nothing created');
  await e.docker(['volume', 'create', '-d', driver, 'v']);
  const status = JSON.parse((await e.docker(['volume', 'inspect', 'v'])).stdout)[0].Status;
  t.notOk('Used' in status || 'Size' in status, 'no Used, no Size with QUOTAS=off');
  const resize = await runCli(['resize', 'v', '1G'], env);
  t.equal(resize.code, 1);
  t.match(resize.stderr, /^buttervolume: resize: resize needs quotas, and QUOTAS is off/);
  t.equal((await btrfs.quotaStatus(mnt)).mode, 'off', 'the filesystem was not touched');
  await e.docker(['volume', 'rm', 'v']);
});

t.test('QUOTAS=simple on a filesystem with full qgroups: the daemon refuses to start, naming QUOTAS', async (t) => {
  const { mnt } = mountBtrfs(t);
  await btrfs.enableQuotas(mnt, 'qgroup');
  const env = daemonEnv(mnt, { BUTTERVOLUME_QUOTAS: 'simple' });
  const proc = await startDaemonProcess(t, env, { ready: false });
  const exit = await proc.exited;
  t.equal(exit.code, 1);
  t.match(proc.stderr(), /QUOTAS=simple, but the filesystem of VOLUMES_PATH .* has full qgroups on: set QUOTAS=qgroup/);
});
