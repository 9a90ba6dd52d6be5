// Shared bench plumbing: a scratch btrfs filesystem, settling, statistics.
// Benchmarks may use btrfs-progs and spawn processes; the product never does.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A loop-mounted btrfs of @sizeGiB for the bench; unmounted by cleanup() and
 * on exit. Options: `imageDir` (where the sparse image lives, default the
 * tmpdir), `mkfsArgs` and `mountOptions` (extra arguments). Mounted with
 * nodiscard: btrfs turns on discard=async on a loop device, and the discards
 * of what a round deleted then run two minutes later (BTRFS_DISCARD_DELAY),
 * as holes punched in the image, in the middle of a later row.
 */
export function scratchBtrfs(sizeGiB = 4, { imageDir = tmpdir(), mkfsArgs = [], mountOptions = [] } = {}) {
  if (process.getuid() !== 0) throw new Error('benchmarks need root (loop mount, btrfs ioctls)');
  const dir = mkdtempSync(join(imageDir, 'bv-bench-'));
  const image = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  writeFileSync(image, '');
  truncateSync(image, sizeGiB * 1024 ** 3);
  execFileSync('mkfs.btrfs', ['-q', ...mkfsArgs, image]);
  execFileSync('mount', ['-o', ['loop', 'nodiscard', ...mountOptions].join(','), image, mnt]);
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));
  return { mnt, cleanup };
}

/** The case kinds of a `--cases` value (bench/send, bench/receive): full, incremental or both. */
export function caseKinds(value) {
  const kinds = value.split(',');
  if (kinds.some((k) => !['full', 'incremental'].includes(k))) throw new Error(`--cases: full and/or incremental, got ${value}`);
  return kinds;
}

/** Writes @count small files into @dir. */
export function fillSmallFiles(dir, count) {
  for (let i = 0; i < count; i++) writeFileSync(join(dir, `f${i}`), `file ${i}\n`.repeat(8));
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n, digits = 1) {
  return n.toFixed(digits).padStart(9);
}

/**
 * Runs every row once per round, the order alternating between rounds, after
 * `settle()`; returns each row's elapsed seconds per round, by row name.
 */
export async function interleavedRounds(rows, rounds, settle) {
  const seconds = Object.fromEntries(Object.keys(rows).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? Object.keys(rows).reverse() : Object.keys(rows);
    for (const name of order) {
      await settle(name);
      const t0 = process.hrtime.bigint();
      await rows[name]();
      seconds[name].push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return seconds;
}

/** The median of the ratios x[i] / y[i] taken within each round. */
export function perRoundRatio(x, y) {
  return median(x.map((v, i) => v / y[i]));
}

/** Compiles bench/@name.c into @dir; returns the executable's path. */
export function compileC(name, dir) {
  const exe = join(dir, name);
  execFileSync('cc', ['-O2', '-o', exe, new URL(`./${name}.c`, import.meta.url).pathname]);
  return exe;
}

/** The original's way: @cycles of one spawned `btrfs subvolume snapshot -r` and one `delete`. */
export async function spawnedCycles(source, dir, cycles, prefix = 'cli') {
  for (let i = 0; i < cycles; i++) {
    const snap = join(dir, `${prefix}@${i}`);
    await run('btrfs', ['subvolume', 'snapshot', '-r', source, snap]);
    await run('btrfs', ['subvolume', 'delete', snap]);
  }
}
