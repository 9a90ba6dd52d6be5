// A restore killed (SIGKILL) at each of its steps leaves the volume holding
// the old data or the new data, never nothing, and the next start cleans up.
// strace's fault injection kills the process on entry to the Nth btrfs ioctl
// or rename touching our directories (-P), so every step is hit for sure.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { openStore } from '../fixtures/store.js';

// The restore runs in its own process, from the built package.
const script = `
const { VolumeStore } = await import(process.env.BV_DIST + '/store/volume-store.js');
const store = await VolumeStore.open(JSON.parse(process.argv[1]));
await store.restore(process.argv[2]);
`;

// [strace injection, data expected in the volume afterwards]
const steps: Array<[string, string, 'old' | 'new']> = [
  ['ioctl', '1', 'old'], // writable snapshot of the snapshot under a work name
  ['ioctl', '2', 'old'], // read-only backup of the current volume
  ['renameat2', '1', 'old'], // RENAME_EXCHANGE of the work name and the volume
  ['ioctl', '3', 'new'], // delete of the work name (now holding the old data)
];

t.test('SIGKILL at each step of a restore', async (t) => {
  const { options, store } = await openStore(t);
  const vol = join(options.volumesPath, 'v');
  await store.create('v', { copyOnWrite: true, compression: null });
  writeFileSync(join(vol, 'data'), 'new');
  const snapshot = await store.snapshot('v');

  for (const [syscall, when, expected] of steps) {
    // The volume diverges from the snapshot before each attempt.
    writeFileSync(join(vol, 'data'), 'old');
    const run = spawnSync(
      'strace',
      [
        '-f', '-qq', '-o', '/dev/null',
        '-P', options.volumesPath, '-P', options.snapshotsPath, '-P', vol,
        '-e', 'trace=ioctl,renameat2',
        '-e', `inject=${syscall}:signal=SIGKILL:when=${when}`,
        process.execPath, '--input-type=module', '-e', script, JSON.stringify(options), snapshot,
      ],
      // One pool thread: strace counts per thread, so the Nth ioctl is well defined.
      { env: { ...process.env, UV_THREADPOOL_SIZE: '1', BV_DIST: join(packageRoot, 'dist') }, encoding: 'utf8' },
    );
    // strace re-raises the tracee's fatal signal on itself.
    t.ok(run.signal === 'SIGKILL' || run.status === 137, `killed at ${syscall} #${when} (${run.signal ?? run.status})`);
    t.equal(readFileSync(join(vol, 'data'), 'utf8'), expected, `the volume holds the ${expected} data right after the kill`);
    const restarted = await VolumeStore.open(options, { recover: true });
    t.same(readdirSync(options.volumesPath), ['v'], 'the restart removed the work subvolume');
    t.equal(readFileSync(join(vol, 'data'), 'utf8'), expected, 'and kept the volume as it was');
    t.equal(await restarted.exists('v'), true);
  }

  // Not killed: the whole restore, for reference.
  writeFileSync(join(vol, 'data'), 'old');
  execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(options), snapshot], {
    env: { ...process.env, BV_DIST: join(packageRoot, 'dist') },
  });
  t.equal(readFileSync(join(vol, 'data'), 'utf8'), 'new');
  t.same(readdirSync(options.volumesPath), ['v']);
});
