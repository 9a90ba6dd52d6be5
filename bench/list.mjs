#!/usr/bin/env node
// bench/list: listSubvolumes() on a directory of 10,000 read-only snapshots,
// side by side with one `btrfs subvolume list -o` process (tree search).
// usage: node bench/list.mjs [--count N] [--rounds R]
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { fmt, median, scratchBtrfs } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '7' } } });
const count = Number(values.count);
const rounds = Number(values.rounds);

const { mnt, cleanup } = scratchBtrfs();
try {
  const vol = join(mnt, 'vol');
  await btrfs.createSubvolume(vol);
  const dir = join(mnt, 'snapshots');
  await btrfs.createSubvolume(dir);
  for (let i = 0; i < count; i++) await btrfs.snapshot(vol, join(dir, `vol@${i}`), { readonly: true });
  await btrfs.syncFilesystem(mnt);

  const ours = [];
  const progs = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = process.hrtime.bigint();
    const list = await btrfs.listSubvolumes(dir);
    ours.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (list.length !== count) throw new Error(`listed ${list.length}, expected ${count}`);
    t0 = process.hrtime.bigint();
    const { stdout } = await run('btrfs', ['subvolume', 'list', '-o', dir], { maxBuffer: 1 << 28 });
    progs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (stdout.trim().split('\n').length !== count) throw new Error('btrfs-progs listed another count');
  }
  console.log(`list ${count} snapshots, ms (median of ${rounds})`);
  console.log(`listSubvolumes()            ${fmt(median(ours))}`);
  console.log(`btrfs subvolume list -o     ${fmt(median(progs))}`);
  console.log(`ratio progs/ours: ${(median(progs) / median(ours)).toFixed(2)}x`);
} finally {
  cleanup();
}
