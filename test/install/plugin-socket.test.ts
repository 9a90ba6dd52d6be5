// scripts/systemd/plugin-socket.mjs, the service's ExecStartPost (wait) and
// ExecStopPost (clear-stale), against a real daemon process: a socket left by
// a SIGKILLed daemon is removed, a live one never; `wait` returns once the
// daemon answers, and fails when the daemon exits first.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

import { mountBtrfs } from '../fixtures/btrfs.js';
import { call, daemonEnv, startDaemonProcess } from '../fixtures/daemon.js';

const HELPER = fileURLToPath(new URL('../../scripts/systemd/plugin-socket.mjs', import.meta.url));

function helper(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HELPER, ...args], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

t.test('clear-stale removes the socket of a killed daemon, never a live one', async (t) => {
  const env = daemonEnv(mountBtrfs(t).mnt);
  const daemon = await startDaemonProcess(t, env);
  let r = await helper(['clear-stale'], env);
  t.equal(r.code, 0, r.out);
  t.equal(r.out, '', 'nothing said');
  t.equal((await call(daemon.socket, '/Plugin.Activate')).status, 200, 'the live socket is kept');

  daemon.kill('SIGKILL');
  await daemon.exited;
  t.ok(lstatSync(daemon.socket).isSocket(), 'SIGKILL left the socket file');
  r = await helper(['clear-stale'], env);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /removed the stale socket .*bv\.sock/);
  t.notOk(existsSync(daemon.socket), 'removed');
  r = await helper(['clear-stale'], env);
  t.same(r, { code: 0, out: '' }, 'no socket: nothing to do');
});

t.test('wait returns once the daemon answers; fails when it exits first', async (t) => {
  const { mnt } = mountBtrfs(t);
  const env = daemonEnv(mnt);
  const daemon = await startDaemonProcess(t, env, { ready: false });
  const r = await helper(['wait'], { ...env, MAINPID: String(daemon.pid) });
  t.equal(r.code, 0, r.out);
  t.equal((await call(daemon.socket, '/Plugin.Activate')).status, 200, 'answering when wait returned');

  // A daemon that cannot start (a file that is not a socket in its place).
  const notSocket = join(mnt, 'not-a-socket');
  writeFileSync(notSocket, '');
  const bad = { ...env, BUTTERVOLUME_SOCKET: notSocket };
  const failing = await startDaemonProcess(t, bad, { ready: false });
  const started = Date.now();
  const w = await helper(['wait'], { ...bad, MAINPID: String(failing.pid) });
  t.equal(w.code, 1);
  t.match(w.out, new RegExp(`the daemon \\(pid ${failing.pid}\\) exited before listening`));
  t.ok(Date.now() - started < 30_000, 'without waiting for the deadline');
  t.equal((await failing.exited).code, 1);
});

t.test('usage', async (t) => {
  const r = await helper(['restart'], {});
  t.equal(r.code, 2);
  t.match(r.out, /usage: plugin-socket\.mjs wait\|clear-stale/);
});
