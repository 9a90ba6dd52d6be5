// `buttervolume run`: the daemon in the foreground with its scheduler; a
// signal closes it cleanly (socket removed) and it exits 0; a start that
// cannot work fails with one line and exit status 1.
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { cliFixture, hasStack, startRun } from './fixtures/cli.js';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`run serves the plugin API and exits 0 on ${signal}`, async (t) => {
    const f = await cliFixture(t);
    const daemon = await startRun(t, f.env);
    const r = await daemon.call('/Plugin.Activate');
    t.equal(r.status, 200);
    t.same(r.body.Implements, ['VolumeDriver']);
    // The socket answers as the line is written: the pipe may bring it a moment later.
    for (let i = 0; i < 40 && !/Starting scheduler job/.test(daemon.stderr()); i++) await sleep(50);
    t.match(daemon.stderr(), /Listening to requests on .*bv\.sock/);
    t.match(daemon.stderr(), /Starting scheduler job every 60s/);
    process.kill(daemon.pid, signal);
    t.same(await daemon.exited, { code: 0, signal: null });
    t.notOk(existsSync(f.env.BUTTERVOLUME_SOCKET!), 'socket removed');
    t.match(daemon.stderr(), new RegExp(`${signal} received: closing`));
    t.notOk(hasStack(daemon.stderr()));
  });
}

t.test('run starts the scheduler: a due job runs at start', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  t.equal((await f.bv(['schedule', 'snapshot', '60', 'db'])).code, 0);
  const daemon = await startRun(t, f.env);
  const deadline = Date.now() + 15_000;
  while (readdirSync(f.config.snapshotsPath).length === 0 && Date.now() < deadline) await sleep(50);
  t.equal(readdirSync(f.config.snapshotsPath).length, 1, 'the first pass took the snapshot');
  process.kill(daemon.pid, 'SIGTERM');
  t.same(await daemon.exited, { code: 0, signal: null });
});

t.test('run fails with one line when it cannot start', async (t) => {
  const f = await cliFixture(t);
  const daemon = await startRun(t, f.env);
  let r = await f.bv(['run']);
  t.equal(r.code, 1, 'a second daemon on the same socket');
  t.match(r.stderr, /^buttervolume: run: .*bv\.sock/m);
  t.notOk(hasStack(r.stderr));
  t.same(await daemon.call('/Plugin.Activate').then((a) => a.status), 200, 'the first one still serves');

  const plain = mkdtempSync(join(tmpdir(), 'bv-cli-run-'));
  t.teardown(() => rmSync(plain, { recursive: true, force: true }));
  r = await f.bv(['run'], {
    BUTTERVOLUME_VOLUMES_PATH: join(plain, 'volumes'),
    BUTTERVOLUME_SOCKET: join(plain, 'other.sock'),
  });
  t.equal(r.code, 1, 'not on btrfs');
  t.match(r.stderr, /^buttervolume: run: VOLUMES_PATH .* is not on a btrfs filesystem/m);
  t.equal(r.stderr.split('\n').filter((l) => l.startsWith('buttervolume: ')).length, 1);
  t.notOk(hasStack(r.stderr));
  t.notOk(existsSync(join(plain, 'other.sock')));
});

t.test('a second signal while a request holds the close up: exit 1 at once', async (t) => {
  const f = await cliFixture(t);
  const daemon = await startRun(t, f.env);
  // A request whose body never ends: the close waits for it (up to 60 s).
  const socket = connect(f.env.BUTTERVOLUME_SOCKET!);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  socket.write('POST /VolumeDriver.List HTTP/1.1\r\nHost: plugin\r\nContent-Length: 100\r\n\r\n{"Na');
  await sleep(100);
  process.kill(daemon.pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (!daemon.stderr().includes('SIGTERM received: closing') && Date.now() < deadline) await sleep(20);
  await sleep(200);
  t.equal(daemon.stderr().includes('Stopped'), false, 'still closing');
  process.kill(daemon.pid, 'SIGINT');
  t.same(await daemon.exited, { code: 1, signal: null });
  t.match(daemon.stderr(), /ERROR SIGINT again while closing: exiting now/);
});
