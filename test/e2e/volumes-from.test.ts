// Volumes made from snapshots and volumes (`-o from=`) under a real Docker
// engine: a read-only view used by containers (reads the snapshot, writing
// fails with EROFS), its snapshot kept from `buttervolume rm`, the HTTP
// removal, purge and a scheduled purge (each saying why) until the view is
// removed; clones of a snapshot and of a volume, independent afterwards; an
// ephemeral volume reset at each run but never while another container has
// it mounted; all of it after a restart of the daemon; hostile and
// conflicting options refused with our message, nothing made.
import { join } from 'node:path';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { BIN, call, daemonEnv, startDaemonProcess, volumeEntries } from '../fixtures/daemon.js';
import { LEGACY_PLUGIN_DIR, startDockerd } from '../fixtures/docker.js';
import { runProgram } from '../fixtures/managed-plugin.js';

const driver = `bv-e2e-from-${process.pid}`;

t.test('read-only views, clones and ephemeral volumes through dockerd, across a daemon restart', async (t) => {
  const { mnt } = mountBtrfs(t);
  // No scheduler pass of its own: the scheduled purge below is run on demand.
  const env = daemonEnv(mnt, { BUTTERVOLUME_SOCKET: join(LEGACY_PLUGIN_DIR, `${driver}.sock`), BUTTERVOLUME_TIMER: '86400' });
  // Started before dockerd, so that dockerd (and its containers, which send Unmount) is torn down first.
  const plugin = await startDaemonProcess(t, env);
  const api = (path: string, body?: unknown) => call(env.BUTTERVOLUME_SOCKET!, path, body);
  const cli = (...args: string[]) => runProgram(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env } });
  const e = await startDockerd(t);
  const run = (args: string[]) => e.docker(['run', '--rm', '--network', 'none', ...args], { allowFail: true });
  const read = async (volume: string) => (await run(['-v', `${volume}:/data`, e.image, 'cat', '/data/f'])).stdout;
  const write = async (volume: string, text: string) => t.equal((await run(['-v', `${volume}:/data`, e.image, 'sh', '-c', `echo ${text} > /data/f`])).code, 0, `${text} written in ${volume}`);
  const create = (name: string, ...opts: string[]) => e.docker(['volume', 'create', '-d', driver, ...opts.flatMap((o) => ['-o', o]), name], { allowFail: true });
  const status = async (name: string) => JSON.parse((await e.docker(['volume', 'inspect', name])).stdout)[0].Status;
  const later = new Date(Date.now() + 3600e3).toISOString(); // every snapshot is then older than a 1m:2m pattern keeps

  t.equal((await create('db')).code, 0);
  await write('db', 'original');
  const snap = (await api('/VolumeDriver.Snapshot', { Name: 'db' })).body.Snapshot as string;
  await write('db', 'changed');

  // A read-only view of the snapshot.
  t.equal((await create('view', `from=${snap}`, 'readonly=true')).code, 0);
  t.match(await status('view'), { From: snap, ReadOnly: true, Ephemeral: false, Mounts: 0 });
  t.notOk('From' in (await status('db')), 'a plain volume shows none of it');
  const tried = await run(['-v', 'view:/data', e.image, 'sh', '-c', 'cat /data/f; echo x > /data/f']);
  t.equal(tried.stdout, 'original\n', "a container reads the snapshot's content");
  t.not(tried.code, 0);
  t.match(tried.stderr, /Read-only file system/, 'and writing fails with EROFS');
  const backup = (await e.docker(['run', '-d', '--network', 'none', '-v', 'view:/backup:ro', e.image, 'sleep', '600'])).stdout.trim();
  t.equal((await status('view')).Mounts, 1, 'a backup container mounts it');
  t.equal((await e.docker(['exec', backup, 'cat', '/backup/f'])).stdout, 'original\n');
  await e.docker(['rm', '-f', backup]);
  t.equal((await status('view')).Mounts, 0);

  // Its snapshot is kept, and each way of deleting it says why.
  const rm = await cli('rm', snap);
  t.equal(rm.code, 1);
  t.equal(rm.stderr, `buttervolume: rm: cannot delete ${snap}: in use by volume view (a read-only view of it, or ephemeral from it); remove that volume first\n`);
  const removal = await api('/VolumeDriver.Snapshot.Remove', { Name: snap });
  t.equal(removal.status, 500);
  t.match(removal.body.Err, `cannot delete ${snap}: in use by volume view`);
  const purged = await cli('purge', '--now', later, '1m:2m', 'db');
  t.equal(purged.code, 0, purged.stderr);
  t.equal(purged.stderr, `buttervolume: purge: kept ${snap}: in use by volume view\n`, 'purge says why');
  const dry = await api('/VolumeDriver.Snapshots.Purge', { Name: 'db', Pattern: '1m:2m', Dryrun: true, Now: later });
  t.same(dry.body, { Err: '', Purged: [], Kept: [{ Snapshot: snap, Reason: 'in use by volume view' }] }, 'not counted as deleted');
  t.equal((await cli('schedule', 'purge:1m:2m', '60', 'db')).code, 0);
  const pass = await cli('scheduled', 'run', '--now', later);
  t.match(pass.stdout, `ok purge:1m:2m db: deleted 0 snapshots; kept ${snap} (in use by volume view)`, 'a scheduled purge too');
  t.equal((await cli('schedule', 'purge:1m:2m', '0', 'db')).code, 0);
  t.equal((await cli('snapshots', 'db')).stdout, `${snap}\n`, 'still there');

  // Clones: of the snapshot (last night's database), of the live volume.
  t.equal((await create('testdb', `from=${snap}`)).code, 0);
  t.equal((await create('copy', 'from=db')).code, 0);
  t.equal(await read('testdb'), 'original\n');
  t.equal(await read('copy'), 'changed\n', 'a volume as source: its current content');
  await write('testdb', 'test');
  await write('copy', 'copy');
  t.equal(await read('db'), 'changed\n', 'the source is not touched');
  t.equal(await read('testdb'), 'test\n');
  t.equal(await read('copy'), 'copy\n');
  t.match(await status('testdb'), { From: snap, ReadOnly: false, Ephemeral: false });

  // Ephemeral: reset at each run.
  t.equal((await create('tmp', `from=${snap}`, 'ephemeral=true')).code, 0);
  t.match(await status('tmp'), { From: snap, ReadOnly: false, Ephemeral: true });
  t.equal((await run(['-v', 'tmp:/data', e.image, 'sh', '-c', 'cat /data/f; echo dirty > /data/f; cat /data/f'])).stdout, 'original\ndirty\n');
  t.equal(await read('tmp'), 'original\n', 'the next run starts clean');
  // Never while another container has it mounted (only at mount count 0 -> 1).
  const holder = (await e.docker(['run', '-d', '--network', 'none', '-v', 'tmp:/data', e.image, 'sleep', '600'])).stdout.trim();
  await write('tmp', 'shared');
  t.equal(await read('tmp'), 'shared\n', 'no reset while mounted by another container');
  t.equal((await e.docker(['exec', holder, 'cat', '/data/f'])).stdout, 'shared\n', 'the holder sees the same content');
  await e.docker(['rm', '-f', holder]);
  t.equal(await read('tmp'), 'original\n', 'reset once the last one is gone');
  await write('tmp', 'dirty');
  t.match((await cli('rm', snap)).stderr, `in use by volumes tmp, view`);

  // A restart of the daemon keeps all of it.
  plugin.kill('SIGTERM');
  t.equal((await plugin.exited).code, 0);
  await startDaemonProcess(t, env);
  t.match(await status('view'), { From: snap, ReadOnly: true, Ephemeral: false });
  t.match(await status('tmp'), { From: snap, ReadOnly: false, Ephemeral: true });
  t.match((await cli('rm', snap)).stderr, `in use by volumes tmp, view`);
  t.equal(await read('tmp'), 'original\n', 'reset after the restart');
  t.equal(await read('view'), 'original\n');

  // Hostile or conflicting options: our message, nothing made.
  const refusals: Array<[string[], RegExp]> = [
    [['from=../etc'], /Invalid option for from: volume name "..\/etc" contains "\/"/],
    [['from=db/../../etc'], /Invalid option for from/],
    [[`from=${snap}/..`], /Invalid option for from: snapshot name .* contains "\/"/],
    [['from=db@'], /Invalid option for from: snapshot name "db@" has nothing after "@"/],
    [['from=-rf'], /Invalid option for from: volume name "-rf" must start with a letter or a digit/],
    [[`from=${snap}@node2`], /is a send marker/],
    [['from=db@2001-01-01T00:00:00.000000'], /from=db@2001-01-01T00:00:00.000000: no such snapshot/],
    [['from=nosuch'], /from=nosuch: no such volume/],
    [[`from=${snap}`, 'copyonwrite=false'], /copyonwrite with from=/],
    [['from=db', 'readonly=true'], /readonly=true needs from= a snapshot/],
    [['readonly=true'], /readonly goes with from=/],
  ];
  for (const [opts, message] of refusals) {
    const r = await create('evil', ...opts);
    t.not(r.code, 0, opts.join(' '));
    t.match(r.stderr, message);
  }
  t.same(volumeEntries(env.BUTTERVOLUME_VOLUMES_PATH!), ['copy', 'db', 'testdb', 'tmp', 'view'], 'nothing made');

  // Removing the volumes lets the snapshot go.
  await e.docker(['volume', 'rm', 'view']);
  t.match((await cli('rm', snap)).stderr, /in use by volume tmp \(/, 'still the ephemeral volume');
  await e.docker(['volume', 'rm', 'tmp']);
  const freed = await cli('rm', snap);
  t.equal(freed.code, 0, freed.stderr);
  t.equal((await cli('snapshots', 'db')).stdout, '');
  t.equal(await read('testdb'), 'test\n', 'a writable clone does not need its snapshot');
  for (const name of ['testdb', 'copy', 'db']) await e.docker(['volume', 'rm', name]);
  t.same(volumeEntries(env.BUTTERVOLUME_VOLUMES_PATH!), []);
});
