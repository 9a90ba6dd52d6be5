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
// usage: node bench/snapshot.mjs [--cycles N] [--rounds R]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { compileC, fillSmallFiles, fmt, interleavedRounds, median, perRoundRatio, scratchBtrfs, spawnedCycles } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { cycles: { type: 'string', default: '100' }, rounds: { type: 'string', default: '12' } } });
const cycles = Number(values.cycles);
const rounds = Number(values.rounds);

const { mnt, cleanup } = scratchBtrfs();
const vol = join(mnt, 'vol');
await btrfs.createSubvolume(vol);
fillSmallFiles(vol, 1000);
await btrfs.syncFilesystem(mnt);

const cdir = mkdtempSync(join(tmpdir(), 'bv-bench-c-'));
const raw = compileC('raw-snapshot', cdir);

const rows = {
  'a: buttervolume/btrfs': async () => {
    for (let i = 0; i < cycles; i++) {
      const snap = join(mnt, `ts@${i}`);
      await btrfs.snapshot(vol, snap, { readonly: true });
      await btrfs.deleteSubvolume(snap);
    }
  },
  'b: spawn btrfs per op': () => spawnedCycles(vol, mnt, cycles),
  'c: raw ioctl loop (C)': async () => {
    await run(raw, [vol, mnt, String(cycles)]);
  },
};

let rates;
try {
  const seconds = await interleavedRounds(rows, rounds, async (name) => {
    const s0 = Date.now();
    await btrfs.waitForCleaner(mnt); // settle: commit, and let the cleaner finish
    if (process.env.BENCH_DEBUG) console.error(name, 'settled in', Date.now() - s0, 'ms');
  });
  rates = Object.fromEntries(Object.entries(seconds).map(([k, list]) => [k, list.map((secs) => cycles / secs)]));
} finally {
  rmSync(cdir, { recursive: true, force: true });
  cleanup();
}

console.log(`snapshot+delete cycles/s, ${cycles} cycles x ${rounds} rounds, volume of 1,000 files (median; min..max)`);
for (const [name, list] of Object.entries(rates)) {
  console.log(`${name.padEnd(24)} ${fmt(median(list))}   (${Math.min(...list).toFixed(0)}..${Math.max(...list).toFixed(0)})`);
}
const [ra, rb, rc] = Object.values(rates);
console.log(`ratio a/b: ${perRoundRatio(ra, rb).toFixed(2)}x   (median of per-round ratios; target >= 3x)`);
console.log(`ratio a/c: ${perRoundRatio(ra, rc).toFixed(2)}x   (median of per-round ratios; target >= 0.85x)`);
