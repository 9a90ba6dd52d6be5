#!/usr/bin/env node
// bench/purge: purge 10,000 snapshots of one volume (issue 5, Purge 5:
// "in under 10 seconds"), side by side in one run with the original's way:
//   (a) VolumeStore.purge: one directory listing, the pure plan, deletions
//       through the native API, 4 at a time
//   (b) the same plan, then one `btrfs subvolume delete` process per doomed
//       snapshot, one after the other (what the original buttervolume does)
// Both start from the same set: hourly snapshots (offset by 30 min) of a
// volume holding 1,000 small files, purged with 1d:1w:4w:1y, which keeps ~40.
// The filesystem settles (commit + wait for the cleaner) before each row;
// the cleaner's later work is in neither figure (`btrfs subvolume delete`
// does not wait for it either).
// usage: node bench/purge.mjs [--count N]   (npm run build first)
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { planPurge } from '../dist/store/purge-plan.js';
import { formatTimestamp } from '../dist/util/timestamp.js';
import { VolumeStore } from '../dist/store/volume-store.js';
import { fillSmallFiles, scratchBtrfs } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' } } });
const count = Number(values.count);
if (!Number.isSafeInteger(count) || count < 1) throw new Error('--count must be a positive integer');
const PATTERN = '1d:1w:4w:1y';
const DTFORMAT = '%Y-%m-%dT%H:%M:%S.%f';

const { mnt, cleanup } = scratchBtrfs(4);
try {
  const options = {
    volumesPath: join(mnt, 'volumes'),
    snapshotsPath: join(mnt, 'snapshots'),
    stateDir: join(mnt, 'run'),
    dtFormat: DTFORMAT,
  };
  mkdirSync(options.stateDir);
  const store = await VolumeStore.open(options);
  await store.create('vol', { copyOnWrite: true, compression: null });
  fillSmallFiles(await store.path('vol'), 1000);
  const now = new Date();

  /** `count` read-only snapshots named hourly in the past; returns their names. */
  const populate = async () => {
    const t0 = process.hrtime.bigint();
    const names = Array.from({ length: count }, (_, i) => `vol@${formatTimestamp(new Date(now.getTime() - (i * 60 + 30) * 60e3), DTFORMAT)}`);
    // Several at once: concurrent snapshot ioctls share transaction commits.
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++];
        await btrfs.snapshot(join(options.volumesPath, 'vol'), join(options.snapshotsPath, name), { readonly: true });
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    await btrfs.waitForCleaner(mnt); // settle
    return { names, secs: Number(process.hrtime.bigint() - t0) / 1e9 };
  };
  const timed = async (fn) => {
    const t0 = process.hrtime.bigint();
    const result = await fn();
    return { result, secs: Number(process.hrtime.bigint() - t0) / 1e9 };
  };

  const setA = await populate();
  const a = await timed(() => store.purge('vol', PATTERN, { now }));
  const leftA = (await store.snapshots('vol')).length;
  for (const name of await store.snapshots('vol')) await btrfs.deleteSubvolume(join(options.snapshotsPath, name));

  const setB = await populate();
  const doomed = planPurge({ names: setB.names, volume: 'vol', pattern: PATTERN, now, dtformat: DTFORMAT });
  const b = await timed(async () => {
    for (const name of doomed) await run('btrfs', ['subvolume', 'delete', join(options.snapshotsPath, name)]);
    return doomed;
  });
  const leftB = (await store.snapshots('vol')).length;

  console.log(`purge of ${count} hourly snapshots with ${PATTERN} (volume of 1,000 files; created in ${setA.secs.toFixed(1)} s and ${setB.secs.toFixed(1)} s)`);
  console.log(`a: VolumeStore.purge            ${a.secs.toFixed(2).padStart(8)} s   deleted ${a.result.length}, kept ${leftA}   (target < 10 s)`);
  console.log(`b: btrfs subvolume delete x N   ${b.secs.toFixed(2).padStart(8)} s   deleted ${b.result.length}, kept ${leftB}`);
  console.log(`ratio b/a: ${(b.secs / a.secs).toFixed(1)}x faster; same plan: ${a.result.length === b.result.length && leftA === leftB}`);
  if (a.secs >= 10) process.exitCode = 1;
} finally {
  cleanup();
}
