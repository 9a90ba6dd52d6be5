#!/usr/bin/env node
// bench/list: listing a directory of N read-only snapshots, N = 1,000, 10,000
// and 100,000 (grown in place, one filesystem), side by side in one run with
// the tool giving the same facts (ids, UUIDs, parent and received UUIDs):
//   (a) listSubvolumes(dir): as root, the root tree's ROOT_REFs and ROOT_ITEMs
//   (b) one `btrfs subvolume list -o -u -q -R dir` process (btrfs-progs
//       searches the whole root tree, then one INO_LOOKUP per subvolume)
//   (c) listSubvolumes(dir) the entry-by-entry way (one open + GET_SUBVOL_INFO
//       per entry: what it did before, and still does without CAP_SYS_ADMIN)
//   (d) listSubvolumeNames(dir): names only (ROOT_REFs), what the store's
//       List and purge planning use
// Rows are interleaved in rounds (order alternating), ratios taken within
// each round; medians are printed. Each size is checked first: every row
// lists the N snapshots, and (a) and (b) the same ids and UUIDs.
// The snapshots are made by bench/make-snapshots.c (the bare ioctl in a C
// loop). Each waits for a transaction commit, ~200-400/s here, so 100,000
// take 5-8 minutes (the listings themselves seconds): the image lives on
// /dev/shm when it has room, mounted nobarrier, metadata single, only to
// speed that up (listings read cached metadata either way). `--counts
// 1000,10000` skips the long part.
// usage: node bench/list.mjs [--counts 1000,10000,100000] [--rounds R]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { listSubvolumesBy } from '../dist/btrfs/subvolume.js';
import { compileC, fmt, interleavedRounds, median, perRoundRatio, scratchBtrfs } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { counts: { type: 'string', default: '1000,10000,100000' }, rounds: { type: 'string', default: '7' } } });
const counts = values.counts.split(',').map(Number);
const rounds = Number(values.rounds);
if (counts.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= counts[i - 1]))) throw new Error('--counts: increasing positive integers');

const sizeGiB = Math.max(2, Math.ceil((counts.at(-1) * 24 * 1024) / 1024 ** 3) + 1); // ~16 KiB of metadata per snapshot
const shm = (() => {
  try {
    const s = statfsSync('/dev/shm');
    return s.bavail * s.bsize > 2 * sizeGiB * 1024 ** 3 ? '/dev/shm' : undefined;
  } catch {
    return undefined;
  }
})();
const { mnt, cleanup } = scratchBtrfs(sizeGiB, { imageDir: shm, mkfsArgs: ['-m', 'single'], mountOptions: ['nobarrier'] });
const cdir = mkdtempSync(join(tmpdir(), 'bv-bench-c-'));
const results = [];
try {
  const make = compileC('make-snapshots', cdir);
  const vol = join(mnt, 'vol');
  await btrfs.createSubvolume(vol);
  const dir = join(mnt, 'snapshots'); // a subvolume: `-o` lists what is below it
  await btrfs.createSubvolume(dir);
  console.log(`image on ${shm ?? tmpdir()}, ${sizeGiB} GiB sparse; ${rounds} rounds per size`);

  let made = 0;
  for (const count of counts) {
    const t0 = performance.now();
    const { stdout: rate } = await run(make, [vol, dir, 'vol@', String(made), String(count - made)]);
    console.log(`\nmade ${count - made} snapshots in ${((performance.now() - t0) / 1000).toFixed(0)} s (${rate.trim()}/s)`);
    made = count;
    await btrfs.syncFilesystem(mnt);

    const progs = async () => {
      const { stdout } = await run('btrfs', ['subvolume', 'list', '-o', '-u', '-q', '-R', dir], { maxBuffer: 1 << 30 });
      return stdout;
    };
    // The same facts, once, before timing.
    const ours = await btrfs.listSubvolumes(dir);
    const lines = (await progs()).trim().split('\n');
    const theirs = new Set(lines.map((l) => `${/^ID (\d+) /.exec(l)[1]} ${/ uuid (\S+)/.exec(l)[1]}`));
    if (ours.length !== count || lines.length !== count) throw new Error(`listed ${ours.length} and ${lines.length}, expected ${count}`);
    if (!ours.every((e) => theirs.has(`${e.id} ${e.uuid}`))) throw new Error('btrfs-progs and listSubvolumes disagree on ids or UUIDs');
    if ((await listSubvolumesBy(dir, 2)).length !== count || (await btrfs.listSubvolumeNames(dir)).length !== count) throw new Error('a row listed another count');

    const rows = {
      'a: listSubvolumes (tree)': () => btrfs.listSubvolumes(dir),
      'b: btrfs subvolume list -o -u -q -R': progs,
      'c: listSubvolumes (entry by entry)': () => listSubvolumesBy(dir, 2),
      'd: listSubvolumeNames': () => btrfs.listSubvolumeNames(dir),
    };
    const seconds = await interleavedRounds(rows, rounds, async () => undefined);
    const ms = Object.fromEntries(Object.entries(seconds).map(([k, list]) => [k, list.map((s) => s * 1000)]));
    console.log(`list ${count} snapshots, ms (median; min..max of ${rounds} rounds)`);
    for (const [name, list] of Object.entries(ms)) {
      console.log(`   ${name.padEnd(38)} ${fmt(median(list))}   (${Math.min(...list).toFixed(1)}..${Math.max(...list).toFixed(1)})`);
    }
    const [a, b, c, d] = Object.values(ms);
    const ba = perRoundRatio(b, a);
    console.log(`   ratio b/a (btrfs-progs / ours): ${ba.toFixed(2)}x${count === 10000 ? `   (target >= 1.0x) ${ba >= 1 ? 'PASS' : 'MISS'}` : ''}`);
    console.log(`   ratio c/a (entry by entry / tree): ${perRoundRatio(c, a).toFixed(2)}x; b/d (btrfs-progs / names only): ${perRoundRatio(b, d).toFixed(2)}x`);
    results.push([count, ba]);
  }
  console.log(`\nb/a by size: ${results.map(([n, r]) => `${n}: ${r.toFixed(2)}x`).join(', ')}`);
} finally {
  rmSync(cdir, { recursive: true, force: true });
  cleanup();
}
