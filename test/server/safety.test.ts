// The plugin server under concurrent clients and damaged state: exact mount
// counts with Gets in flight, failed Mounts that count nothing, listings that
// never fail because something vanished, one daemon per store, and bodies or
// schedule files built to hurt.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { stateDirOf } from '../../src/store/open.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess, startTestDaemon } from '../fixtures/daemon.js';

t.test('Mount/Unmount from many clients with Gets around each: counts stay exact', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'shared' });
  const clients = 8;
  const perClient = 25;
  const mounts = async (c: number) => {
    for (let i = 0; i < perClient; i++) {
      const id = `c${c}-${i}`;
      // dockerd sends Get around every Mount.
      const [, m] = await Promise.all([d.call('/VolumeDriver.Get', { Name: 'shared' }), d.call('/VolumeDriver.Mount', { Name: 'shared', ID: id })]);
      t.equal(m.status, 200);
      await d.call('/VolumeDriver.Get', { Name: 'shared' });
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => mounts(c)));
  const count = async () => (await d.call('/VolumeDriver.Get', { Name: 'shared' })).body.Volume.Status.Mounts;
  t.equal(await count(), clients * perClient, 'every Mount counted once');
  // Stop all but one, concurrently, with Gets in flight.
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        if (c === 0 && i === 0) continue;
        await Promise.all([d.call('/VolumeDriver.Get', { Name: 'shared' }), d.call('/VolumeDriver.Unmount', { Name: 'shared', ID: `c${c}-${i}` })]);
      }
    }),
  );
  t.equal(await count(), 1, 'one container still runs');
  const snap = await d.call('/VolumeDriver.Snapshot', { Name: 'shared' });
  const refused = await d.call('/VolumeDriver.Snapshot.Restore', { Name: snap.body.Snapshot });
  t.equal(refused.status, 500);
  t.match(refused.body.Err, /cannot restore a volume in use \(mounted 1 time\)/);
  t.equal((await d.call('/VolumeDriver.Remove', { Name: 'shared' })).status, 500);
  await d.call('/VolumeDriver.Unmount', { Name: 'shared', ID: 'c0-0' });
  t.equal(await count(), 0);
  t.equal((await d.call('/VolumeDriver.Snapshot.Restore', { Name: snap.body.Snapshot })).body.Err, '');
  t.equal((await d.call('/VolumeDriver.Remove', { Name: 'shared' })).body.Err, '');
});

t.test('a Mount answered with an error is not counted', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  await d.call('/VolumeDriver.Mount', { Name: 'v', ID: 'ok' });
  const state = stateDirOf(d.config);
  execFileSync('chattr', ['+i', state]);
  t.teardown(() => execFileSync('chattr', ['-i', state]));
  const failed = await d.call('/VolumeDriver.Mount', { Name: 'v', ID: 'failing' });
  t.equal(failed.status, 500);
  t.match(failed.body.Err, /^EPERM/);
  execFileSync('chattr', ['-i', state]);
  t.equal((await d.call('/VolumeDriver.Get', { Name: 'v' })).body.Volume.Status.Mounts, 1, 'only the answered Mount counts');
});

t.test('List, Get and purge never fail because another request removed something', async (t) => {
  const d = await startTestDaemon(t);
  const names = Array.from({ length: 30 }, (_, i) => `v${i}`);
  for (const n of names) await d.call('/VolumeDriver.Create', { Name: n });
  // Many entries deleted at once widen the window between listing one and asking the kernel about it.
  const snaps = Array.from({ length: 400 }, (_, i) => `v0@2024-01-01T00:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}`);
  for (const s of snaps) await btrfs.createSubvolume(join(d.config.snapshotsPath, s));
  let stop = false;
  const failures: string[] = [];
  let reads = 0;
  const readers = Array.from({ length: 3 }, async () => {
    while (!stop) {
      for (const [path, body] of [['/VolumeDriver.List', {}], ['/VolumeDriver.Get', { Name: 'v0' }], ['/VolumeDriver.Snapshots.Purge', { Name: 'v0', Pattern: '1m:1h', Dryrun: true }]] as const) {
        const r = await d.call(path, body);
        reads++;
        if (r.status !== 200) failures.push(`${path}: ${r.status} ${r.body?.Err}`);
      }
    }
  });
  const queue = [...snaps];
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) await d.call('/VolumeDriver.Snapshot.Remove', { Name: s });
  }));
  for (let round = 0; round < 2; round++) {
    await Promise.all(names.slice(1).map((n) => d.call('/VolumeDriver.Remove', { Name: n })));
    await Promise.all(names.slice(1).map((n) => d.call('/VolumeDriver.Create', { Name: n })));
  }
  stop = true;
  await Promise.all(readers);
  t.ok(reads > 30, `${reads} listings ran during the removals`);
  t.same(failures.slice(0, 5), [], 'no listing failed');
});

t.test('a failing request with a deeply nested body still gets a JSON Err', async (t) => {
  const d = await startTestDaemon(t);
  const depth = 200_000;
  const body = `{"Name":"x","Opts":${'['.repeat(depth)}${']'.repeat(depth)}}\n`;
  const r = await d.call('/VolumeDriver.Create', body);
  t.equal(r.status, 500);
  t.type(r.body?.Err, 'string', `JSON with Err: ${r.text.slice(0, 120)}`);
  t.match(r.body.Err, /Opts must be an object/);
});

t.test('a 10 MB schedule.csv is refused clearly, without the memory it would take', async (t) => {
  const d = await startTestDaemon(t);
  mkdirSync(join(d.config.schedulePath, '..'), { recursive: true });
  writeFileSync(d.config.schedulePath, 'v,snapshot,60,True\n'.repeat(550_000));
  const before = process.memoryUsage().rss;
  const r = await d.call('/VolumeDriver.Schedule.List', {}, 'GET');
  t.equal(r.status, 500);
  t.match(r.body.Err, /^schedule file .*schedule\.csv is larger than 1048576 bytes/);
  const change = await d.call('/VolumeDriver.Schedule', { Name: 'v', Action: 'snapshot', Timer: '60' });
  t.match(change.body.Err, /larger than 1048576 bytes/, 'nor is it rewritten');
  t.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'memory stays bounded');
});

t.test('two daemons on different sockets cannot share one store', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt);
  await startDaemonProcess(t, env);
  const second = await startDaemonProcess(t, { ...env, BUTTERVOLUME_SOCKET: join(mnt, '..', 'run', 'plugins', 'other.sock') }, { ready: false });
  const { code } = await second.exited;
  t.equal(code, 1);
  t.match(second.stderr(), /buttervolume: run: another buttervolume daemon already serves the volumes in .*\/volumes \(it holds .*owner\.lock\): stop it first/);
  t.notMatch(second.stderr(), /internal error/);
  const answer = await call(env.BUTTERVOLUME_SOCKET!, '/VolumeDriver.List', {});
  t.equal(answer.status, 200, 'the first one still serves');
});

t.test('a damaged mount table at start: logged at ERROR, restore refused, the daemon serves', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt);
  const first = await startDaemonProcess(t, env);
  await call(first.socket, '/VolumeDriver.Create', { Name: 'v' });
  const snap = (await call(first.socket, '/VolumeDriver.Snapshot', { Name: 'v' })).body.Snapshot as string;
  first.kill('SIGTERM');
  await first.exited;
  writeFileSync(join(env.BUTTERVOLUME_VOLUMES_PATH!, '.buttervolume', 'mounts.json'), '{"bootId": "x", "mou');
  const d = await startDaemonProcess(t, env);
  t.match(d.stderr(), /ERROR mount table .*mounts\.json is not valid JSON/);
  const r = await call(d.socket, '/VolumeDriver.Snapshot.Restore', { Name: snap });
  t.equal(r.status, 500);
  t.match(r.body.Err, /^v: cannot restore it: whether it is mounted is unknown/);
  t.equal((await call(d.socket, '/VolumeDriver.Get', { Name: 'v' })).body.Volume.Status.MountsUnknown, true);
});
