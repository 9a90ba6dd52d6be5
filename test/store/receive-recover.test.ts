// A receive killed with SIGKILL half-way leaves its temporary subvolume; the
// store removes it at its next start (the process is gone), never one of a
// receive still running.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { btrfsProgs } from '../fixtures/btrfs.js';
import { openStore } from '../fixtures/store.js';

// Receives a stream file into a directory, slowly (so it can be killed in the middle).
const script = `
const { receive } = await import(process.env.BV_DIST + '/btrfs/index.js');
const { createReadStream } = await import('node:fs');
const { Transform } = await import('node:stream');
const slow = new Transform({ transform(chunk, _, done) { setTimeout(() => done(null, chunk), 20); } });
console.log('started');
await receive(process.argv[1], createReadStream(process.argv[2], { highWaterMark: 64 * 1024 }).pipe(slow));
`;

t.test('SIGKILL in the middle of a receive: the next start removes the partial subvolume', async (t) => {
  const { options, store, mnt } = await openStore(t);
  const vol = join(mnt, 'source');
  btrfsProgs('subvolume', 'create', vol);
  writeFileSync(join(vol, 'data'), Buffer.alloc(32 * 1024 * 1024, 9));
  btrfsProgs('subvolume', 'snapshot', '-r', vol, join(mnt, 'source@1'));
  const stream = join(mnt, 'stream');
  btrfsProgs('send', '-q', '-f', stream, join(mnt, 'source@1'));
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, options.snapshotsPath, stream], {
    env: { ...process.env, BV_DIST: join(packageRoot, 'dist') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  let partial: string[] = [];
  for (let i = 0; i < 200 && partial.length === 0; i++) {
    await sleep(25);
    partial = readdirSync(options.snapshotsPath).filter((n) => n.startsWith('.bv-receive.'));
  }
  t.same(partial, [`.bv-receive.${child.pid}.1.1`], 'a partial subvolume is there, under its temporary name');
  // A store opened while that receive still runs leaves it alone.
  await VolumeStore.open(options, { recover: true });
  t.same(readdirSync(options.snapshotsPath).filter((n) => n.startsWith('.bv-receive.')), partial, 'not removed while its process runs');
  child.kill('SIGKILL');
  await exited;
  const removed = await store.recover();
  t.same(removed, partial, 'removed once its process is gone');
  t.same(readdirSync(options.snapshotsPath), [], 'nothing left');
  // Also in the other receiving directories (TEST_REMOTE_PATH).
  const received = join(mnt, 'received');
  mkdirSync(received);
  btrfsProgs('subvolume', 'create', join(received, '.bv-receive.999999999.1.1'));
  await VolumeStore.open({ ...options, receivePaths: [received] }, { recover: true });
  t.same(readdirSync(received), []);
});
