#!/usr/bin/env node
// bench/snapshot: read-only snapshot + delete cycles of a volume holding
// 1,000 small files, side by side in one run:
//   (a) buttervolume/btrfs, sequential awaits
//   (b) one `btrfs subvolume snapshot -r` / `btrfs subvolume delete` process
//       per operation (what the original buttervolume does)
//   (c) a C loop of the bare ioctls (the physical limit)
// The machine is noisy and a filesystem slows down as it ages, so rows are
// interleaved in short rounds (order alternating), the filesystem settles
// (commit + wait for the cleaner) before each row, and ratios are taken
// within each round; the medians of rates and of per-round ratios are printed.
// With --quotas simple (or qgroup), every row runs a second time, side by
// side in the same rounds, on a second filesystem with that kind of quotas
// on (the volume with a size limit, as -o size= makes it; both filesystems
// see the same work): the cost of quotas.
// usage: node bench/snapshot.mjs [--cycles N] [--rounds R] [--quotas simple|qgroup]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { compileC, fillSmallFiles, fmt, interleavedRounds, median, perRoundRatio, scratchBtrfs, spawnedCycles } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { cycles: { type: 'string', default: '100' }, rounds: { type: 'string', default: '12' }, quotas: { type: 'string', default: '' } } });
const cycles = Number(values.cycles);
const rounds = Number(values.rounds);
const quotas = values.quotas;
if (!['', 'simple', 'qgroup'].includes(quotas)) throw new Error(`--quotas: simple or qgroup, got ${quotas}`);

const { mnt, cleanup } = scratchBtrfs();
const vol = join(mnt, 'vol');
await btrfs.createSubvolume(vol);
fillSmallFiles(vol, 1000);
await btrfs.syncFilesystem(mnt);

// The same volume on a filesystem with quotas on, limited to 10 GiB.
const quota = quotas ? scratchBtrfs() : null;
const qvol = quota ? join(quota.mnt, 'vol') : null;
if (quota) {
  await btrfs.enableQuotas(quota.mnt, quotas);
  await btrfs.createSubvolume(qvol, { qgroupLimit: 10 * 1024 ** 3 });
  fillSmallFiles(qvol, 1000);
  await btrfs.syncFilesystem(quota.mnt);
}

const cdir = mkdtempSync(join(tmpdir(), 'bv-bench-c-'));
const raw = compileC('raw-snapshot', cdir);

const libCycles = (source, dir) => async () => {
  for (let i = 0; i < cycles; i++) {
    const snap = join(dir, `ts@${i}`);
    await btrfs.snapshot(source, snap, { readonly: true });
    await btrfs.deleteSubvolume(snap);
  }
};
const rows = {
  'a: buttervolume/btrfs': libCycles(vol, mnt),
  'b: spawn btrfs per op': () => spawnedCycles(vol, mnt, cycles),
  'c: raw ioctl loop (C)': async () => {
    await run(raw, [vol, mnt, String(cycles)]);
  },
  ...(quota
    ? {
        [`aq: a, QUOTAS=${quotas}`]: libCycles(qvol, quota.mnt),
        [`bq: b, QUOTAS=${quotas}`]: () => spawnedCycles(qvol, quota.mnt, cycles),
        [`cq: c, QUOTAS=${quotas}`]: async () => {
          await run(raw, [qvol, quota.mnt, String(cycles)]);
        },
      }
    : {}),
};

let rates;
try {
  const seconds = await interleavedRounds(rows, rounds, async (name) => {
    const s0 = Date.now();
    await btrfs.waitForCleaner(mnt); // settle: commit, and let the cleaner finish
    if (quota) await btrfs.waitForCleaner(quota.mnt);
    if (process.env.BENCH_DEBUG) console.error(name, 'settled in', Date.now() - s0, 'ms');
  });
  rates = Object.fromEntries(Object.entries(seconds).map(([k, list]) => [k, list.map((secs) => cycles / secs)]));
} finally {
  rmSync(cdir, { recursive: true, force: true });
  cleanup();
  quota?.cleanup();
}

console.log(`snapshot+delete cycles/s, ${cycles} cycles x ${rounds} rounds, volume of 1,000 files (median; min..max)`);
for (const [name, list] of Object.entries(rates)) {
  console.log(`${name.padEnd(24)} ${fmt(median(list))}   (${Math.min(...list).toFixed(0)}..${Math.max(...list).toFixed(0)})`);
}
const [ra, rb, rc, raq, rbq, rcq] = Object.values(rates);
console.log(`ratio a/b: ${perRoundRatio(ra, rb).toFixed(2)}x   (median of per-round ratios; target >= 3x)`);
console.log(`ratio a/c: ${perRoundRatio(ra, rc).toFixed(2)}x   (median of per-round ratios; target >= 0.85x)`);
if (quota) {
  console.log(`QUOTAS=${quotas} against off (median of per-round ratios; 1.00x: no cost): aq/a ${perRoundRatio(raq, ra).toFixed(2)}x, bq/b ${perRoundRatio(rbq, rb).toFixed(2)}x, cq/c ${perRoundRatio(rcq, rc).toFixed(2)}x`);
}
