// The data set of bench/receive, bench/send and bench/replicate (issues 12
// and 13): a volume of 20,000 small files (100 B - 8 KB, 200 directories of
// 100) and one 300 MiB file, all random (incompressible) bytes from a seeded
// generator, so every run and every row sees the same tree; then "a 10%
// change": 2,000 of the small files touched (1,000 rewritten, 200 partly
// overwritten, 300 renamed - half of them to another directory -, 200
// deleted, 300 new), 2 directories renamed, and 10% of the big file (30
// pieces of 1 MiB) rewritten.
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, openSync, renameSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const DIRS = 200;
export const FILES_PER_DIR = 100;
export const BIG_MIB = 300;

/** xorshift128+: a fast seeded generator (Math.random has no seed). */
export function rng(seed) {
  let s0 = BigInt(seed) | 1n;
  let s1 = 0x9e3779b97f4a7c15n ^ BigInt(seed);
  const mask = (1n << 64n) - 1n;
  const next = () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = (x ^ (x << 23n)) & mask;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number((s1 + y) & 0xffffffffn);
  };
  return {
    int: (n) => next() % n,
    /** @n random bytes: AES-128-CTR of zeros keyed from the generator (fast, reproducible). */
    bytes(n) {
      const key = Buffer.alloc(16);
      const iv = Buffer.alloc(16);
      for (let i = 0; i < 16; i += 4) {
        key.writeUInt32LE(next() >>> 0, i);
        iv.writeUInt32LE(next() >>> 0, i);
      }
      return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(n));
    },
  };
}

const dirName = (d) => `d${String(d).padStart(3, '0')}`;
const fileName = (f) => `f${String(f).padStart(3, '0')}`;
const smallSize = (r) => 100 + r.int(8000 - 100 + 1);

function writeBig(path, r, offsets) {
  const fd = openSync(path, offsets ? 'r+' : 'w');
  try {
    const piece = 1 << 20;
    if (!offsets) {
      for (let i = 0; i < BIG_MIB; i++) writeSync(fd, r.bytes(piece));
    } else {
      for (const o of offsets) writeSync(fd, r.bytes(piece), 0, piece, o * piece);
    }
  } finally {
    closeSync(fd);
  }
}

/** The full tree in @root (an existing empty directory). */
export function makeFull(root, seed = 12) {
  const r = rng(seed);
  for (let d = 0; d < DIRS; d++) {
    const dir = join(root, dirName(d));
    mkdirSync(dir);
    for (let f = 0; f < FILES_PER_DIR; f++) writeFileSync(join(dir, fileName(f)), r.bytes(smallSize(r)));
  }
  writeBig(join(root, 'big.bin'), r);
}

/** The 10% change of the tree made by makeFull, in place; returns what it did. */
export function makeChange(root, seed = 13) {
  const r = rng(seed);
  // 2,000 distinct (dir, file) pairs out of 20,000, in a seeded order.
  const all = [];
  for (let d = 0; d < DIRS; d++) for (let f = 0; f < FILES_PER_DIR; f++) all.push([d, f]);
  for (let i = all.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const picked = all.slice(0, 2000);
  const path = ([d, f]) => join(root, dirName(d), fileName(f));
  const counts = { rewritten: 0, patched: 0, renamed: 0, moved: 0, deleted: 0, created: 0, dirsRenamed: 0, bigMiB: 0 };
  picked.slice(0, 1000).forEach((p) => {
    writeFileSync(path(p), r.bytes(smallSize(r)));
    counts.rewritten++;
  });
  picked.slice(1000, 1200).forEach((p) => {
    const fd = openSync(path(p), 'r+');
    writeSync(fd, r.bytes(64), 0, 64, 50);
    closeSync(fd);
    counts.patched++;
  });
  picked.slice(1200, 1500).forEach((p, i) => {
    if (i % 2) {
      renameSync(path(p), `${path(p)}.renamed`);
      counts.renamed++;
    } else {
      const to = join(root, dirName((p[0] + 1 + r.int(DIRS - 1)) % DIRS), `moved-${p[0]}-${p[1]}`);
      renameSync(path(p), to);
      counts.moved++;
    }
  });
  picked.slice(1500, 1700).forEach((p) => {
    unlinkSync(path(p));
    counts.deleted++;
  });
  for (let i = 0; i < 300; i++) {
    writeFileSync(join(root, dirName(r.int(DIRS)), `new-${i}`), r.bytes(smallSize(r)));
    counts.created++;
  }
  // Two directories renamed (their files move with them).
  for (const d of [7, 101]) {
    renameSync(join(root, dirName(d)), join(root, `${dirName(d)}-renamed`));
    counts.dirsRenamed++;
  }
  const offsets = new Set();
  while (offsets.size < BIG_MIB / 10) offsets.add(r.int(BIG_MIB));
  writeBig(join(root, 'big.bin'), r, [...offsets]);
  counts.bigMiB = offsets.size;
  return counts;
}

/**
 * On the btrfs mounted at `mnt`: subvolume `src` with the full data set,
 * read-only snapshot `snaps/s1` of it, the 10% change, `snaps/s2`; synced.
 * Returns the change made (makeChange's counts) and the snapshots' directory.
 */
export async function makeSnapshotPair(btrfs, mnt) {
  const src = join(mnt, 'src');
  const snaps = join(mnt, 'snaps');
  mkdirSync(snaps);
  await btrfs.createSubvolume(src);
  makeFull(src);
  await btrfs.snapshot(src, join(snaps, 's1'), { readonly: true });
  const change = makeChange(src);
  await btrfs.snapshot(src, join(snaps, 's2'), { readonly: true });
  await btrfs.syncFilesystem(mnt);
  return { snaps, change };
}

/**
 * A small change of the tree made by makeFull, in place (bench/handover: "10
 * MiB changed since the last push"): 8 pieces of 1 MiB of the big file and 512
 * small files rewritten with 4 KiB each (2 MiB). Seeded by @seed: each round
 * changes other places. Returns the bytes written.
 */
export function makeSmallChange(root, seed) {
  const r = rng(seed);
  for (let i = 0; i < 512; i++) {
    const d = r.int(DIRS);
    const f = r.int(FILES_PER_DIR);
    writeFileSync(join(root, dirName(d), `small-change-${f}`), r.bytes(4096));
  }
  const offsets = new Set();
  while (offsets.size < 8) offsets.add(r.int(BIG_MIB));
  writeBig(join(root, 'big.bin'), r, [...offsets]);
  return 512 * 4096 + 8 * (1 << 20);
}

// ---- bench/sync's data set (issue 25) ---------------------------------------

const SYNC_FILE_BYTES = 1024;
export const SYNC_BIG_MIB = 50;

/** bench/sync's tree in @root (an existing empty directory): 20,000 files of 1 KB in 200 directories, and one 50 MB file. */
export function makeSyncSet(root, seed = 21) {
  const r = rng(seed);
  // An hour old: a change made right after is newer by whole seconds (rsync's quick check may compare seconds only).
  const past = new Date(Date.now() - 3600_000);
  for (let d = 0; d < DIRS; d++) {
    const dir = join(root, dirName(d));
    mkdirSync(dir);
    for (let f = 0; f < FILES_PER_DIR; f++) {
      writeFileSync(join(dir, fileName(f)), r.bytes(SYNC_FILE_BYTES));
      utimesSync(join(dir, fileName(f)), past, past);
    }
  }
  const fd = openSync(join(root, 'big.bin'), 'w');
  try {
    for (let i = 0; i < SYNC_BIG_MIB; i++) writeSync(fd, r.bytes(1 << 20));
  } finally {
    closeSync(fd);
  }
  utimesSync(join(root, 'big.bin'), past, past);
}

/**
 * bench/sync's 10% change of makeSyncSet's tree, in place: 1,000 files
 * rewritten, 500 added, 400 renamed (half to another directory), one
 * directory of 100 renamed; the big file unchanged. Returns the counts.
 */
export function makeSyncChange(root, seed = 22) {
  const r = rng(seed);
  const all = [];
  for (let d = 0; d < DIRS; d++) if (d !== 42) for (let f = 0; f < FILES_PER_DIR; f++) all.push([d, f]);
  for (let i = all.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const path = ([d, f]) => join(root, dirName(d), fileName(f));
  const counts = { rewritten: 0, added: 0, renamed: 0, dirRenamed: 0 };
  for (const p of all.slice(0, 1000)) {
    writeFileSync(path(p), r.bytes(SYNC_FILE_BYTES));
    counts.rewritten++;
  }
  for (let i = 0; i < 500; i++) {
    writeFileSync(join(root, dirName(r.int(DIRS)), `added-${i}`), r.bytes(SYNC_FILE_BYTES));
    counts.added++;
  }
  all.slice(1000, 1400).forEach((p, i) => {
    const to = i % 2 ? `${path(p)}.renamed` : join(root, dirName((p[0] + 1 + r.int(DIRS - 1)) % DIRS), `moved-${p[0]}-${p[1]}`);
    renameSync(path(p), to);
    counts.renamed++;
  });
  renameSync(join(root, dirName(42)), join(root, `${dirName(42)}-renamed`));
  counts.dirRenamed++;
  return counts;
}
