#!/usr/bin/env node
// bench/send: our send() against `btrfs send` on the same snapshots (issue
// 12), side by side in one run, on the data set of bench/dataset.mjs:
//   full         20,000 small files (100 B - 8 KB, 200 dirs) + one 300 MiB file
//   incremental  10% of it changed, from the snapshot before (-p / parent)
// each as a v2 and a v1 stream (--proto N / protocol).
//
// Rows, interleaved round by round (order alternating):
//   ours null   send(snap, { parent, protocol }) read to its end in this
//               process, chunks dropped (what a consumer that does not
//               block costs); from the call to the 'end' event.
//   btrfs null  `btrfs -q send [-p parent] --proto N -f /dev/null snap`:
//               the process, from spawn to exit (btrfs-progs also reads the
//               ioctl's pipe in a thread and writes it out).
//   ours shm    the same Readable piped (stream.pipeline) into a file in
//               /dev/shm: the bytes really written somewhere.
//   btrfs shm   `btrfs send ... -f /dev/shm/<file>`.
// Ratios btrfs/ours are taken per round (null with null, shm with shm) and
// their median reported; >1 means ours is faster. Before the timed rounds an
// untimed pass of every case checks that our stream and btrfs-progs' are the
// same bytes (cmp), or else the same commands (`btrfs receive --dump`).
// The snapshots' data is in the page cache for every row (no drop_caches: a
// shared machine), so this measures the send path, not the disk.
// --cases full|incremental limits the cases (more rounds of one kind in the same time).
// usage: node bench/send.mjs [--rounds N] [--protos 2,1] [--cases full,incremental]
import { execFile, execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { makeSnapshotPair } from './dataset.mjs';
import { caseKinds, fmt, median, scratchBtrfs } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, protos: { type: 'string', default: '2,1' }, cases: { type: 'string', default: 'full,incremental' } } });
const rounds = Number(values.rounds);
const protos = values.protos.split(',').map(Number);
const started = Date.now();
const hrs = () => process.hrtime.bigint();
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

const { mnt, cleanup } = scratchBtrfs(10);
const shm = mkdtempSync('/dev/shm/bv-bench-send-');
process.once('exit', () => rmSync(shm, { recursive: true, force: true }));

const { snaps, change } = await makeSnapshotPair(btrfs, mnt);
console.error(`data set ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(change)}`);

const cases = {};
const kinds = caseKinds(values.cases);
for (const p of protos) {
  if (kinds.includes('full')) cases[`full v${p}`] = { snap: join(snaps, 's1'), protocol: p };
  if (kinds.includes('incremental')) cases[`incremental v${p}`] = { snap: join(snaps, 's2'), parent: join(snaps, 's1'), protocol: p };
}
const progsArgs = (c, out) => ['-q', 'send', ...(c.parent ? ['-p', c.parent] : []), '--proto', String(c.protocol), '-f', out, c.snap];
const oursStream = (c) => btrfs.send(c.snap, { protocol: c.protocol, ...(c.parent ? { parent: c.parent } : {}) });

// ---- rows -------------------------------------------------------------------
async function oursNull(c) {
  const t0 = hrs();
  let bytes = 0;
  for await (const chunk of oursStream(c)) bytes += chunk.length;
  return { seconds: secs(t0), bytes };
}
async function oursShm(c, out = join(shm, 'ours')) {
  const t0 = hrs();
  await pipeline(oursStream(c), createWriteStream(out));
  return { seconds: secs(t0), bytes: statSync(out).size };
}
async function progsNull(c) {
  const t0 = hrs();
  await run('btrfs', progsArgs(c, '/dev/null'));
  return { seconds: secs(t0) };
}
async function progsShm(c, out = join(shm, 'progs')) {
  const t0 = hrs();
  await run('btrfs', progsArgs(c, out));
  return { seconds: secs(t0), bytes: statSync(out).size };
}
const rows = { 'ours null': oursNull, 'btrfs null': progsNull, 'ours shm': oursShm, 'btrfs shm': progsShm };
const names = Object.keys(rows);

const results = {};
const checks = {};
try {
  // Untimed: every case once by each, and the check that both streams are the same.
  for (const [name, c] of Object.entries(cases)) {
    const a = join(shm, 'check-ours');
    const b = join(shm, 'check-progs');
    await oursShm(c, a);
    await progsShm(c, b);
    await oursNull(c);
    await progsNull(c);
    const same = await run('cmp', ['-s', a, b]).then(
      () => true,
      () => false,
    );
    if (same) checks[name] = `identical bytes (${statSync(a).size} B)`;
    else {
      // Not the same bytes: the same commands in the same order, then?
      const dump = (f) => execFileSync('btrfs', ['receive', '--dump', '-f', f], { maxBuffer: 1 << 30 }).toString();
      if (dump(a) !== dump(b)) throw new Error(`${name}: our stream and btrfs send's differ (not only in bytes)`);
      checks[name] = `same commands (btrfs receive --dump), bytes differ (${statSync(a).size} vs ${statSync(b).size} B)`;
    }
    rmSync(a);
    rmSync(b);
    console.error(`${name}: ${checks[name]}`);
  }
  for (const name of Object.keys(cases)) results[name] = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, c] of Object.entries(cases)) {
      const order = r % 2 ? [...names].reverse() : names;
      for (const row of order) {
        results[name][row].push(await rows[row](c));
        rmSync(join(shm, 'ours'), { force: true });
        rmSync(join(shm, 'progs'), { force: true });
      }
    }
    console.error(`round ${r + 1}/${rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
} finally {
  cleanup();
}

// ---- report -----------------------------------------------------------------
console.log(`send, ${rounds} rounds; seconds are medians (min..max); ratio = btrfs/ours per round, median (min..max); >1 means ours is faster`);
const range = (l) => `(${Math.min(...l).toFixed(3)}..${Math.max(...l).toFixed(3)})`;
for (const [name, r] of Object.entries(results)) {
  const t = Object.fromEntries(names.map((n) => [n, r[n].map((x) => x.seconds)]));
  const mb = r['ours null'][0].bytes / 1e6;
  console.log(`\n${name}: stream ${mb.toFixed(1)} MB; ${checks[name]}`);
  for (const n of names) console.log(`  ${n.padEnd(11)} ${fmt(median(t[n]), 3)} s ${range(t[n])}  ${(mb / median(t[n])).toFixed(0)} MB/s`);
  for (const sink of ['null', 'shm']) {
    const ratios = t[`btrfs ${sink}`].map((v, i) => v / t[`ours ${sink}`][i]);
    console.log(`  ratio btrfs/ours ${sink.padEnd(4)} ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})   per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
  }
}
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
