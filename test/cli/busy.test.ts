// The one place a "busy" error is right: another process holds the volume's
// lock longer than the store waits (60 s). The CLI then fails with a clear
// line instead of hanging. Takes a minute, so it has a file of its own.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { stateDirOf } from '../../src/store/open.js';
import { cliFixture } from './fixtures/cli.js';

t.test('a volume locked by another process for too long: busy, exit status 1', async (t) => {
  const f = await cliFixture(t);
  await f.volume('db');
  const locks = join(stateDirOf(f.config), 'locks');
  mkdirSync(locks, { recursive: true, mode: 0o700 });
  // flock(1) stands for another buttervolume process in the middle of a restore.
  const holder = spawn('flock', ['--exclusive', join(locks, 'db.lock'), 'sleep', '300'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  t.teardown(async () => {
    if (holder.exitCode === null && holder.signalCode === null) {
      process.kill(holder.pid!, 'SIGKILL');
      await exited;
    }
  });
  await sleep(300);
  const started = Date.now();
  const r = await f.bv(['snapshot', 'db'], {}, 120_000);
  t.same([r.code, r.stdout, r.stderr], [1, '', 'buttervolume: snapshot: db: busy, another buttervolume process is working on it\n']);
  t.ok(Date.now() - started >= 59_000, 'it waited for the lock first');
  t.same(readdirSync(f.config.snapshotsPath), [], 'no snapshot taken');
});
