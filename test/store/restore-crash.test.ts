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

// The steps of a restore, each the Nth match of its pattern in an strace log,
// with the data expected in the volume after a kill there.
const steps: Array<[RegExp, number, 'old' | 'new', string]> = [
  [/BTRFS_IOC_SNAP_CREATE_V2/, 1, 'old', 'writable snapshot of the snapshot under a work name'],
  [/BTRFS_IOC_SNAP_CREATE_V2/, 2, 'old', 'read-only backup of the current volume'],
  [/renameat2\(.*RENAME_EXCHANGE/, 1, 'old', 'RENAME_EXCHANGE of the work name and the volume'],
  [/BTRFS_IOC_SNAP_DESTROY/, 1, 'new', 'delete of the work name (now holding the old data)'],
];

const straceArgs = (dirs: string[]) => ['-f', '-qq', ...dirs.flatMap((d) => ['-P', d]), '-e', 'trace=ioctl,renameat2'];

/** For each step, its ordinal among the calls of its syscall (what strace's `when=` counts). */
function ordinals(log: string): Array<{ syscall: string; when: number }> {
  const calls = log.split('\n').map((l) => l.replace(/^\d+\s+/, '')).filter((l) => /^(ioctl|renameat2)\(/.test(l));
  return steps.map(([pattern, nth, , what]) => {
    let seen = 0;
    for (let i = 0; i < calls.length; i++) {
      if (!pattern.test(calls[i]!) || ++seen < nth) continue;
      const syscall = calls[i]!.startsWith('ioctl') ? 'ioctl' : 'renameat2';
      return { syscall, when: calls.slice(0, i + 1).filter((c) => c.startsWith(syscall)).length };
    }
    throw new Error(`step not found in the trace: ${what}\n${calls.join('\n')}`);
  });
}

t.test('SIGKILL at each step of a restore', async (t) => {
  const { options, store } = await openStore(t);
  const vol = join(options.volumesPath, 'v');
  await store.create('v', { copyOnWrite: true, compression: null });
  writeFileSync(join(vol, 'data'), 'new');
  const snapshot = await store.snapshot('v');

  const env = { ...process.env, UV_THREADPOOL_SIZE: '1', BV_DIST: join(packageRoot, 'dist') };
  const dirs = [options.volumesPath, options.snapshotsPath, vol];
  // A traced run that is not killed tells where each step is.
  writeFileSync(join(vol, 'data'), 'old');
  const log = join(options.stateDir, 'trace.log');
  execFileSync('strace', [...straceArgs(dirs), '-o', log, process.execPath, '--input-type=module', '-e', script, JSON.stringify(options), snapshot], { env });
  const where = ordinals(readFileSync(log, 'utf8'));
  const backup = (await store.snapshots('v')).filter((n) => n !== snapshot);
  for (const name of backup) await store.removeSnapshot(name);

  for (const [i, [, , expected, what]] of steps.entries()) {
    const { syscall, when } = where[i]!;
    // The volume diverges from the snapshot before each attempt.
    writeFileSync(join(vol, 'data'), 'old');
    const run = spawnSync(
      'strace',
      [
        ...straceArgs(dirs), '-o', '/dev/null',
        '-e', `inject=${syscall}:signal=SIGKILL:when=${when}`,
        process.execPath, '--input-type=module', '-e', script, JSON.stringify(options), snapshot,
      ],
      // One pool thread: strace counts per thread, so the Nth ioctl is well defined.
      { env, encoding: 'utf8' },
    );
    // strace re-raises the tracee's fatal signal on itself.
    t.ok(run.signal === 'SIGKILL' || run.status === 137, `killed at the ${what} (${syscall} #${when}; ${run.signal ?? run.status})`);
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
