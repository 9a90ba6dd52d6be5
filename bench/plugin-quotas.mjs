// bench/plugin section 5 (--quotas simple|qgroup): a daemon with QUOTAS=<kind>
// against one with QUOTAS=off, alike otherwise, each on a fresh filesystem of
// its own, doing the same work, every row of one next to the other's in the
// same rounds (order alternating):
//   s. VolumeDriver.Snapshot + Snapshot.Remove cycles of a volume of 1,000
//      files (with a 10G limit on the quota side);
//   a. VolumeDriver.Get (what `docker volume inspect` asks) of a volume with
//      1,000 snapshots, and of one with none; with quotas on, Get commits the
//      filesystem first (Used counts what was written): also Get right after
//      16 MiB were written, which that commit must flush;
//   b. Mount latency while 4 clients snapshot other volumes;
//   c. Create (with -o size= on the quota side) + Remove cycles;
//   d. writing 256 MiB into a volume (with a limit on the quota side) + fsync.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import * as btrfs from '../dist/btrfs/index.js';
import { fillSmallFiles, fmt, interleavedRounds, median, perRoundRatio } from './common.mjs';

const MiB = 1024 * 1024;
const pct = (list, p) => [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor((p / 100) * list.length))];
const ms = (v) => fmt(v, 2);

/** Elapsed ms of each call of @fn, @n times. */
async function timed(n, fn) {
  const list = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    list.push(performance.now() - t0);
  }
  return list;
}

function writeFile(path, bytes, chunk) {
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs section 5; @off and @on are `{ api, mnt, volumesPath }` of the two
 * daemons. Returns [name, met] pairs for the summary.
 */
export async function quotaSection({ kind, off, on, rounds, seconds }) {
  const sides = { off, [kind]: on };
  const opts = (side, size) => (side === off ? {} : { Opts: { size } });
  const settle = () => Promise.all([btrfs.waitForCleaner(off.mnt), btrfs.waitForCleaner(on.mnt)]);
  console.log(`\n5. QUOTAS=${kind} against QUOTAS=off, two daemons alike otherwise, each on a fresh filesystem of its own`);

  // s. Snapshot + Remove cycles.
  for (const side of [off, on]) {
    await side.api('/VolumeDriver.Create', { Name: 'bench', ...opts(side, '10G') });
    fillSmallFiles(join(side.volumesPath, 'bench'), 1000);
    await btrfs.syncFilesystem(side.mnt);
  }
  const snapCycles = 100;
  const snapRows = Object.fromEntries(
    Object.entries(sides).map(([name, side]) => [
      name,
      async () => {
        for (let i = 0; i < snapCycles; i++) {
          const { Snapshot } = await side.api('/VolumeDriver.Snapshot', { Name: 'bench' });
          await side.api('/VolumeDriver.Snapshot.Remove', { Name: Snapshot });
        }
      },
    ]),
  );
  await snapRows.off(); // warm both daemons up a little
  await snapRows[kind]();
  const snapSecs = await interleavedRounds(snapRows, rounds, settle);
  const snapRates = Object.fromEntries(Object.entries(snapSecs).map(([k, l]) => [k, l.map((s) => snapCycles / s)]));
  console.log(`   s. Snapshot + Remove cycles/s (${snapCycles} x ${rounds} rounds, node:http client; median; min..max)`);
  for (const [name, list] of Object.entries(snapRates)) console.log(`      ${name.padEnd(34)} ${fmt(median(list))}   (${Math.min(...list).toFixed(0)}..${Math.max(...list).toFixed(0)})`);
  const sr = perRoundRatio(snapRates[kind], snapRates.off);
  console.log(`      ${kind}/off ${sr.toFixed(2)}x (median of per-round ratios)`);

  // a. Get, 1,000 snapshots.
  for (const side of [off, on]) {
    await side.api('/VolumeDriver.Create', { Name: 'many', ...opts(side, '10G') });
    await side.api('/VolumeDriver.Create', { Name: 'none', ...opts(side, '10G') });
    fillSmallFiles(join(side.volumesPath, 'many'), 100);
    for (let i = 0; i < 1000; i++) await side.api('/VolumeDriver.Snapshot', { Name: 'many' });
  }
  await settle();
  const get = Object.fromEntries(Object.keys(sides).flatMap((k) => [[`${k} many`, []], [`${k} none`, []]]));
  const getRounds = Math.max(2, rounds);
  for (let r = 0; r < getRounds; r++) {
    const order = r % 2 ? Object.entries(sides).reverse() : Object.entries(sides);
    for (const [name, side] of order) {
      for (const vol of ['many', 'none']) get[`${name} ${vol}`].push(...(await timed(50, () => side.api('/VolumeDriver.Get', { Name: vol }))));
    }
  }
  const status = (await on.api('/VolumeDriver.Get', { Name: 'many' })).Volume.Status;
  if (status.Snapshots !== 1000 || typeof status.Used !== 'number') throw new Error(`unexpected Status ${JSON.stringify(status)}`);
  const chunk = randomBytes(MiB);
  const dirty = {};
  for (const [name, side] of Object.entries(sides)) {
    dirty[name] = [];
    for (let i = 0; i < 10; i++) {
      const fd = openSync(join(side.volumesPath, 'many', `dirty${i}`), 'w'); // 16 MiB left in the page cache
      for (let k = 0; k < 16; k++) writeSync(fd, chunk);
      closeSync(fd);
      dirty[name].push(...(await timed(1, () => side.api('/VolumeDriver.Get', { Name: 'many' }))));
    }
  }
  console.log(`   a. VolumeDriver.Get, ms (${getRounds} rounds of 50 per row, alternating; p50  p99)`);
  for (const [row, list] of Object.entries(get)) console.log(`      ${`${row.replace(' many', ', 1,000 snapshots').replace(' none', ', no snapshot')}`.padEnd(34)} ${ms(pct(list, 50))} ${ms(pct(list, 99))}`);
  for (const [row, list] of Object.entries(dirty)) console.log(`      ${`${row}, right after writing 16 MiB`.padEnd(34)} ${ms(pct(list, 50))} ${ms(pct(list, 99))}   (10 times)`);
  const getRatio = pct(get[`${kind} many`], 50) / pct(get['off many'], 50);
  console.log(`      ${kind}/off, 1,000 snapshots: ${getRatio.toFixed(2)}x (p50); Used shown: ${status.Used} bytes, Size ${status.Size}`);

  // b. Mount latency under snapshot load.
  for (const side of [off, on]) {
    await side.api('/VolumeDriver.Create', { Name: 'mounted', ...opts(side, '1G') });
    for (let c = 0; c < 4; c++) {
      await side.api('/VolumeDriver.Create', { Name: `qload${c}`, ...opts(side, '1G') });
      fillSmallFiles(join(side.volumesPath, `qload${c}`), 200);
    }
  }
  const mount = {};
  const loadRounds = 2;
  for (let r = 0; r < loadRounds; r++) {
    const order = r % 2 ? Object.entries(sides).reverse() : Object.entries(sides);
    for (const [name, side] of order) {
      await settle();
      let stop = false;
      let snapshots = 0;
      const clients = [0, 1, 2, 3].map(async (c) => {
        while (!stop) {
          await side.api('/VolumeDriver.Snapshot', { Name: `qload${c}` });
          snapshots++;
        }
      });
      const list = [];
      const end = performance.now() + seconds * 500;
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now();
        await side.api('/VolumeDriver.Mount', { Name: 'mounted', ID: `m${r}-${i}` });
        list.push(performance.now() - t0);
        await side.api('/VolumeDriver.Unmount', { Name: 'mounted', ID: `m${r}-${i}` });
      }
      stop = true;
      await Promise.all(clients);
      (mount[name] ??= { list: [], snapshots: 0, secs: 0 }).list.push(...list);
      mount[name].snapshots += snapshots;
      mount[name].secs += seconds / 2;
    }
  }
  console.log(`   b. VolumeDriver.Mount while 4 clients snapshot, ms (p50  p99; ${loadRounds} runs of ${seconds / 2} s per row, alternating)`);
  for (const [name, m] of Object.entries(mount)) console.log(`      ${name.padEnd(34)} ${ms(pct(m.list, 50))} ${ms(pct(m.list, 99))}   (${(m.snapshots / m.secs).toFixed(0)} snapshots/s meanwhile)`);

  // c. Create + Remove, d. writing 256 MiB.
  const cycles = 50;
  const createRows = Object.fromEntries(
    Object.entries(sides).map(([name, side]) => [
      name,
      async () => {
        for (let i = 0; i < cycles; i++) {
          await side.api('/VolumeDriver.Create', { Name: `cr${i}`, ...opts(side, '1G') });
          await side.api('/VolumeDriver.Remove', { Name: `cr${i}` });
        }
      },
    ]),
  );
  const createSecs = await interleavedRounds(createRows, rounds, settle);
  const createRates = Object.fromEntries(Object.entries(createSecs).map(([k, l]) => [k, l.map((s) => cycles / s)]));
  for (const side of [off, on]) await side.api('/VolumeDriver.Create', { Name: 'data', ...opts(side, '2G') });
  const writeRows = Object.fromEntries(
    Object.entries(sides).map(([name, side]) => [
      name,
      async () => {
        const file = join(side.volumesPath, 'data', 'f');
        writeFile(file, 256 * MiB, chunk);
        rmSync(file);
      },
    ]),
  );
  const writeSecs = await interleavedRounds(writeRows, rounds, settle);
  const writeRates = Object.fromEntries(Object.entries(writeSecs).map(([k, l]) => [k, l.map((s) => 256 / s)]));
  console.log(`   c. Create + Remove cycles/s (${cycles} x ${rounds} rounds; median; min..max), the quota side with -o size=1G`);
  for (const [name, list] of Object.entries(createRates)) console.log(`      ${name.padEnd(34)} ${fmt(median(list))}   (${Math.min(...list).toFixed(0)}..${Math.max(...list).toFixed(0)})`);
  console.log(`   d. writing 256 MiB + fsync, MiB/s (${rounds} rounds; median; min..max), the quota side in a volume limited to 2G`);
  for (const [name, list] of Object.entries(writeRates)) console.log(`      ${name.padEnd(34)} ${fmt(median(list))}   (${Math.min(...list).toFixed(0)}..${Math.max(...list).toFixed(0)})`);
  const cr = perRoundRatio(createRates[kind], createRates.off);
  const wr = perRoundRatio(writeRates[kind], writeRates.off);
  console.log(`   ${kind}/off (median of per-round ratios; 1.00x: no cost): Snapshot+Remove ${sr.toFixed(2)}x, Create+Remove ${cr.toFixed(2)}x, write ${wr.toFixed(2)}x, Get of 1,000 snapshots ${(1 / getRatio).toFixed(2)}x as fast`);
  const getMs = pct(get[`${kind} many`], 50);
  console.log(`   Get of a volume with 1,000 snapshots, quotas on: ${getMs.toFixed(2)} ms p50 (target < 10 ms) ${getMs < 10 ? 'PASS' : 'MISS'}`);
  return [['Get with 1,000 snapshots, quotas on, < 10 ms', getMs < 10]];
}
