// The daemon's life as a real child process: socket handling at start,
// refusals with one clear line, LOGLEVEL, and a clean stop on SIGTERM/SIGINT
// that finishes the request in flight and removes the socket.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { socketAnswers } from '../../src/server/socket.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess, volumeEntries } from '../fixtures/daemon.js';

const lines = (text: string) => text.split('\n').filter(Boolean);

/** Leaves a socket file nobody listens on, as a daemon killed by SIGKILL does. */
async function staleSocket(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const code = `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
}

t.test('starts: creates what is missing, socket mode 0660, removes a stale socket', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt, { BUTTERVOLUME_SOCKET: join(dirname(mnt), 'deep', 'er', 'plugins', 'btrfs.sock') });
  await staleSocket(env.BUTTERVOLUME_SOCKET!);
  t.ok(statSync(env.BUTTERVOLUME_SOCKET!).isSocket(), 'a stale socket is in the way');
  t.notOk(await socketAnswers(env.BUTTERVOLUME_SOCKET!), 'nobody answers on it');
  const d = await startDaemonProcess(t, env);
  t.equal(statSync(d.socket).mode & 0o777, 0o660, 'socket mode 0660');
  t.ok(statSync(env.BUTTERVOLUME_VOLUMES_PATH!).isDirectory() && statSync(env.BUTTERVOLUME_SNAPSHOTS_PATH!).isDirectory(), 'VOLUMES_PATH and SNAPSHOTS_PATH created');
  t.same((await call(d.socket, '/Plugin.Activate')).body, { Err: '', Implements: ['VolumeDriver'] });
  t.match(d.stderr(), `INFO Removed the stale socket ${d.socket}`);
  t.match(d.stderr(), `INFO Listening to requests on ${d.socket}...`);
});

t.test('a live socket is never taken over; a file that is not a socket is refused', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt);
  const first = await startDaemonProcess(t, env);
  await call(first.socket, '/VolumeDriver.Create', { Name: 'v' });
  const second = await startDaemonProcess(t, env, { ready: false });
  t.same(await second.exited, { code: 1, signal: null }, 'the second daemon exits 1');
  t.same(lines(second.stderr()), [`buttervolume: run: another server is already listening on ${first.socket}: stop it first, or set another SOCKET`]);
  t.same((await call(first.socket, '/VolumeDriver.List', {})).body.Volumes.map((v: { Name: string }) => v.Name), ['v'], 'the first still serves');

  const file = join(dirname(mnt), 'not-a-socket');
  writeFileSync(file, 'precious');
  const third = await startDaemonProcess(t, { ...env, BUTTERVOLUME_SOCKET: file }, { ready: false });
  t.equal((await third.exited).code, 1);
  t.same(lines(third.stderr()), [`buttervolume: run: SOCKET ${file} exists and is not a socket: remove it or set another SOCKET`]);
  t.ok(statSync(file).isFile(), 'the file is left alone');
});

t.test('SIGTERM: stops accepting, finishes the request in flight, removes its socket, exits 0', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt);
  const d = await startDaemonProcess(t, env);
  await call(d.socket, '/VolumeDriver.Create', { Name: 'v' });
  // Hold v's lock as another buttervolume process would: the Snapshot waits for it.
  const lockDir = join(env.BUTTERVOLUME_VOLUMES_PATH!, '.buttervolume', 'locks');
  const lock = await btrfs.lock(join(lockDir, 'v.lock'));
  t.teardown(() => lock.release());
  let settled = false;
  const inFlight = call(d.socket, '/VolumeDriver.Snapshot', { Name: 'v' }).finally(() => (settled = true));
  await sleep(200);
  d.kill('SIGTERM');
  await sleep(300);
  t.notOk(settled, 'the request is still in flight');
  t.notOk(existsSync(d.socket), 'no longer accepting: the socket is gone');
  await t.rejects(call(d.socket, '/Plugin.Activate'), { code: 'ENOENT' }, 'a new connection is refused');
  lock.release();
  const r = await inFlight;
  t.same([r.status, r.body.Err], [200, ''], 'the request in flight is answered');
  t.same(await d.exited, { code: 0, signal: null }, 'exit 0');
  t.same(readdirSync(env.BUTTERVOLUME_SNAPSHOTS_PATH!), [r.body.Snapshot], 'its snapshot is there');
  t.match(d.stderr(), /INFO Stopped\n$/);
});

t.test('SIGINT stops it too; leftovers of an interrupted operation are removed at start', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt);
  mkdirSync(env.BUTTERVOLUME_VOLUMES_PATH!, { recursive: true });
  await btrfs.createSubvolume(join(env.BUTTERVOLUME_VOLUMES_PATH!, 'v'));
  await btrfs.createSubvolume(join(env.BUTTERVOLUME_VOLUMES_PATH!, '.bv-restore.v.0123456789ab'));
  const d = await startDaemonProcess(t, env);
  t.same(volumeEntries(env.BUTTERVOLUME_VOLUMES_PATH!), ['v'], 'the work subvolume is gone, the volume kept');
  t.match(d.stderr(), 'WARNING Removed what interrupted operations left behind: .bv-restore.v.0123456789ab');
  d.kill('SIGINT');
  t.same(await d.exited, { code: 0, signal: null });
  t.notOk(existsSync(d.socket));
});

t.test('paths that are not on btrfs: refused with one clear line', async (t) => {
  const { mnt } = mountBtrfs(t);
  const plain = mkdtempSync(join(tmpdir(), 'bv-plain-'));
  t.teardown(() => rmSync(plain, { recursive: true, force: true }));
  const volumes = join(plain, 'volumes');
  const d = await startDaemonProcess(t, daemonEnv(mnt, { BUTTERVOLUME_VOLUMES_PATH: volumes }), { ready: false });
  t.same(await d.exited, { code: 1, signal: null });
  t.same(lines(d.stderr()), [
    `buttervolume: run: VOLUMES_PATH ${volumes} is not on a btrfs filesystem: buttervolume keeps each volume as a btrfs subvolume`,
  ]);
  t.notOk(existsSync(d.socket), 'no socket left behind');
  const snaps = join(plain, 'snapshots');
  const e = await startDaemonProcess(t, daemonEnv(mnt, { BUTTERVOLUME_SNAPSHOTS_PATH: snaps }), { ready: false });
  t.equal((await e.exited).code, 1);
  t.match(lines(e.stderr()), [/^buttervolume: run: SNAPSHOTS_PATH .* is not on a btrfs filesystem/]);
});

t.test('LOGLEVEL is honoured', async (t) => {
  const { mnt } = mountBtrfs(t);
  const levels = (text: string) => new Set(lines(text).map((l) => l.split(' ')[1]));
  const run = async (level: string) => {
    const d = await startDaemonProcess(t, daemonEnv(mnt, { BUTTERVOLUME_LOGLEVEL: level }));
    await call(d.socket, '/VolumeDriver.List', {});
    await call(d.socket, '/VolumeDriver.Remove', { Name: 'missing' });
    d.kill('SIGTERM');
    await d.exited;
    return d.stderr();
  };
  const debug = await run('debug');
  t.match(debug, / DEBUG POST \/VolumeDriver\.List \{\} -> 200 \{"Err":"","Volumes":\[\]\} \(\d+\.\d ms\)\n/, 'one DEBUG line per request');
  t.match(debug, / ERROR POST \/VolumeDriver\.Remove \{"Name":"missing"\} -> 500 \{"Err":"missing: no such volume"\}/, 'failures at ERROR');
  const info = await run('INFO');
  t.same(levels(info), new Set(['INFO', 'ERROR']), 'INFO: no DEBUG lines');
  t.match(info, / ERROR POST \/VolumeDriver\.Remove /);
  const error = await run('ERROR');
  t.same(levels(error), new Set(['ERROR']), 'ERROR: only the failed request');
  t.equal(lines(error).length, 1);
  const bad = await startDaemonProcess(t, daemonEnv(mnt, { BUTTERVOLUME_LOGLEVEL: 'LOUD' }), { ready: false });
  t.equal((await bad.exited).code, 1);
  t.match(lines(bad.stderr()), [/^buttervolume: run: BUTTERVOLUME_LOGLEVEL="LOUD" \(environment\): must be one of DEBUG/]);
});
