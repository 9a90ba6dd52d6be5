// Advisory locks: within one process, and against another process using
// util-linux flock(1) as an independent implementation.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';

const { mnt } = mountBtrfs(t);

t.test('exclusive and shared locks in one process', async (t) => {
  const file = join(mnt, 'vol.lock');
  const a = await btrfs.lock(file);
  t.equal(a.held, true);
  t.equal(a.shared, false);
  await t.rejects(btrfs.lock(file, { wait: false }), { name: 'BtrfsError', code: 'EAGAIN', syscall: 'flock', path: file });
  await t.rejects(btrfs.lock(file, { shared: true, wait: false }), { code: 'EAGAIN' });
  a.release();
  t.equal(a.held, false);
  a.release(); // idempotent
  const s1 = await btrfs.lock(file, { shared: true });
  const s2 = await btrfs.lock(file, { shared: true, wait: false });
  await t.rejects(btrfs.lock(file, { wait: false }), { code: 'EAGAIN' }, 'exclusive waits for shared holders');
  s1.release();
  s2.release();
  const b = await btrfs.lock(file, { wait: false });
  b.release();
});

t.test('a waiter gets the lock when it is released, in order of release', async (t) => {
  const file = join(mnt, 'wait.lock');
  const held = await btrfs.lock(file);
  const events: string[] = [];
  const waiter = btrfs.lock(file).then((l) => {
    events.push('acquired');
    return l;
  });
  await sleep(30);
  t.same(events, [], 'still waiting while held');
  events.push('released');
  held.release();
  const l = await waiter;
  t.same(events, ['released', 'acquired']);
  l.release();
});

t.test('timeout and abort while waiting', async (t) => {
  const file = join(mnt, 'timeout.lock');
  const held = await btrfs.lock(file);
  await t.rejects(btrfs.lock(file, { timeout: 40 }), { code: 'ETIMEDOUT', message: /timed out waiting for the lock/ });
  const ac = new AbortController();
  const waiting = btrfs.lock(file, { signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await t.rejects(waiting, { name: 'AbortError' });
  held.release();
  t.throws(() => btrfs.lock(file, { wiat: true } as never), { name: 'TypeError', message: /unknown option "wiat"/ });
  await t.rejects(btrfs.lock(join(mnt, 'no', 'dir.lock')), { code: 'ENOENT', syscall: 'open' });
});

t.test('another process holding the lock (flock(1)) excludes us, and we exclude it', async (t) => {
  const file = join(mnt, 'cross.lock');
  // Its own process group: flock(1) forks the shell that holds the lock too.
  const holder = spawn('flock', ['-x', file, '-c', 'echo locked; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-holder.pid!, sig);
    } catch {
      // already gone
    }
  };
  t.teardown(() => killGroup('SIGKILL'));
  await once(holder.stdout!, 'data');
  await t.rejects(btrfs.lock(file, { wait: false }), { code: 'EAGAIN' });
  const waiting = btrfs.lock(file, { timeout: 10_000 });
  killGroup('SIGTERM');
  const l = await waiting;
  t.equal(l.held, true, 'acquired once the other process exited');
  t.equal(spawnSync('flock', ['-n', '-x', file, 'true']).status, 1, 'flock(1) is refused while we hold it');
  t.equal(spawnSync('flock', ['-n', '-s', file, 'true']).status, 1, 'also a shared flock(1)');
  l.release();
  t.equal(spawnSync('flock', ['-n', '-x', file, 'true']).status, 0, 'and granted after release');
});
