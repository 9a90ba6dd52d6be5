// Shared bench plumbing: a scratch btrfs filesystem, settling, statistics.
// Benchmarks may use btrfs-progs and spawn processes; the product never does.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A loop-mounted btrfs of @sizeGiB for the bench; unmounted by cleanup() and on exit. */
export function scratchBtrfs(sizeGiB = 4) {
  if (process.getuid() !== 0) throw new Error('benchmarks need root (loop mount, btrfs ioctls)');
  const dir = mkdtempSync(join(tmpdir(), 'bv-bench-'));
  const image = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  writeFileSync(image, '');
  truncateSync(image, sizeGiB * 1024 ** 3);
  execFileSync('mkfs.btrfs', ['-q', image]);
  execFileSync('mount', ['-o', 'loop', image, mnt]);
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
