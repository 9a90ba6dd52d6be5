#!/usr/bin/env node
// bench/receive: our receive() against `btrfs receive` on the same stream
// files (issue 12), side by side in one run:
//   full         20,000 small files (100 B - 8 KB, 200 dirs) + one 300 MiB file
//   incremental  10% of it changed (bench/dataset.mjs), parent received beforehand
// each as a v2 and a v1 stream, made once with `btrfs send --proto N`.
//
// Rows, interleaved round by round (order alternating):
//   ours   receive(dest, createReadStream(file)) in a fresh Node process per
//          round, started and with the module loaded before the clock starts
//          (a daemon pays its start-up once, not per receive; a fresh process
//          per round gives a clean peak RSS); timed inside it from the call to
//          the promise resolving: complete, synced (syncfs), marked received,
//          read-only, renamed into place.
//   btrfs  `btrfs receive -f <file> <dest>`: the process, from spawn to exit.
//          It does not sync the data it wrote (the subvolume is marked
//          received and read-only while its data is still dirty in the page
//          cache): the `syncfs` right after it is timed too and shown as
//          "btrfs+sync", the durable equivalent of ours.
//   floor  `dd bs=1M` of the stream file into a file on the same btrfs, and
//          the syncfs after it: what writing that many bytes costs here.
// Fairness: the stream files are in /dev/shm (always in memory, for every
// row); before each row the received subvolumes of the previous one are
// deleted, the filesystem is synced and the btrfs cleaner waited for
// (waitForCleaner); no drop_caches (a shared machine; and it would evict the
// parent's metadata for both rows alike anyway).
//   alt    (with --alt <dir>) ours again, but loading <dir>/dist/btrfs/index.js:
//          another build of the package (e.g. the addon without a change),
//          measured the same way, interleaved with the others; ratio alt/ours.
// Where the time goes (with --split, after the timed rounds; needs strace):
//   one more receive per receiver and case under `strace -f --seccomp-bpf
//   -T -e trace=syncfs,ioctl` (only those calls stop the process), summing
//   the calls that commit a transaction or wait for the data to be written:
//   the snapshot/subvolume creation, SET_RECEIVED_SUBVOL, SUBVOL_SETFLAGS and
//   (ours) syncfs. btrfs receive writes its data out inside SET_RECEIVED_SUBVOL's
//   commit, ours in its syncfs before it: the same work at another place.
//   The rest is applying the commands; its ratio shows the receivers apart
//   from the commits both wait for.
// --cases full|incremental limits the cases timed (more rounds of one kind in the same time).
// usage: node bench/receive.mjs [--rounds N] [--protos 2,1] [--cases full,incremental] [--alt <package dir>] [--split]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { makeSnapshotPair } from './dataset.mjs';
import { caseKinds, fmt, median, scratchBtrfs } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, protos: { type: 'string', default: '2,1' }, alt: { type: 'string' }, split: { type: 'boolean', default: false }, cases: { type: 'string', default: 'full,incremental' } },
});
const rounds = Number(values.rounds);
const protos = values.protos.split(',').map(Number);
const started = Date.now();
const hrs = () => process.hrtime.bigint();
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

const { mnt, cleanup } = scratchBtrfs(10);
const streams = mkdtempSync('/dev/shm/bv-bench-streams-');
process.once('exit', () => rmSync(streams, { recursive: true, force: true }));

// ---- the data set, its snapshots and streams (once) -------------------------
const { snaps, change } = await makeSnapshotPair(btrfs, mnt);
const files = {};
for (const p of protos) {
  files[`full v${p}`] = join(streams, `full.v${p}`);
  files[`incremental v${p}`] = join(streams, `inc.v${p}`);
  execFileSync('btrfs', ['-q', 'send', '--proto', String(p), '-f', files[`full v${p}`], join(snaps, 's1')]);
  execFileSync('btrfs', ['-q', 'send', '--proto', String(p), '-p', join(snaps, 's1'), '-f', files[`incremental v${p}`], join(snaps, 's2')]);
}
// The parent of the incrementals, received once (by ours: a parent that
// `btrfs receive` made is refused by ours, see docs/benchmarks.md); both
// receivers find it there.
const base = join(mnt, 'base');
mkdirSync(base);
await btrfs.receive(base, createReadStream(files[`full v${protos[0]}`], { highWaterMark: 1 << 20 }));
const kinds = caseKinds(values.cases);
for (const name of Object.keys(files)) if (!kinds.includes(name.split(' ')[0])) delete files[name];
const destOurs = join(mnt, 'ours');
const destProgs = join(mnt, 'progs');
const floorDir = join(mnt, 'floor');
for (const d of [destOurs, destProgs, floorDir]) mkdirSync(d);
console.error(`data set and streams ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(change)}`);

// ---- rows -------------------------------------------------------------------
async function ours(file, alt, wrap = []) {
  const env = alt ? { ...process.env, BENCH_BTRFS: join(alt, 'dist', 'btrfs', 'index.js') } : process.env;
  const [command, ...args] = [...wrap, process.execPath, new URL('./receive-child.mjs', import.meta.url).pathname, destOurs, file, base];
  const child = spawn(command, args, {
    stdio: ['pipe', 'pipe', 'inherit'],
    env,
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if ((await lines.next()).value !== 'ready') throw new Error('receive-child did not start');
  child.stdin.write('go\n');
  const { value } = await lines.next();
  const code = await exited;
  if (code !== 0 || !value) throw new Error(`receive-child failed (${code})`);
  return JSON.parse(value);
}

async function progs(file, wrap = []) {
  const t0 = hrs();
  const [command, ...args] = [...wrap, 'btrfs', '-q', 'receive', '-f', file, destProgs];
  await run(command, args);
  return { seconds: secs(t0) };
}

async function floor(file) {
  const t0 = hrs();
  await run('dd', [`if=${file}`, `of=${join(floorDir, 'dd.out')}`, 'bs=1M', 'status=none']);
  return { seconds: secs(t0) };
}

async function clear() {
  for (const d of [destOurs, destProgs]) for (const name of readdirSync(d)) await btrfs.deleteSubvolume(join(d, name));
  rmSync(join(floorDir, 'dd.out'), { force: true });
  await btrfs.syncFilesystem(mnt);
  await btrfs.waitForCleaner(mnt);
}

/** Runs @row on @file after settling; adds the syncfs right after it (what was left dirty). */
async function measure(row, file) {
  await clear();
  const r = await row(file);
  const t0 = hrs();
  await btrfs.syncFilesystem(mnt);
  return { ...r, sync: secs(t0) };
}

// The calls that commit a transaction or wait for written data (see --split above).
const WAITING = /^(syncfs|ioctl\(\d+, BTRFS_IOC_(SNAP_CREATE_V2|SUBVOL_CREATE_V2|SUBVOL_CREATE|SET_RECEIVED_SUBVOL|SUBVOL_SETFLAGS)\b)/;
const STRACE = ['strace', '-f', '--seccomp-bpf', '-T', '-qq', '-e', 'trace=syncfs,ioctl', '-o'];
const split = {};
/** One more run under strace (not in the ratios): @row(wrap) runs it; its seconds, and those of the waiting calls. */
async function traced(row) {
  await clear();
  const out = join(streams, 'strace.out');
  const r = await row([...STRACE, out]);
  let waiting = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const call = line.replace(/^\d+\s+/, '');
    const took = /<([\d.]+)>$/.exec(call);
    if (took && WAITING.test(call)) waiting += Number(took[1]);
  }
  rmSync(out);
  return { seconds: r.seconds, waiting };
}

const rows = { ours, btrfs: progs, floor };
if (values.alt) rows.alt = (file) => ours(file, values.alt);
const names = Object.keys(rows);
const results = {};
try {
  // An untimed warm-up of each case, and a check that both receivers built the same tree.
  for (const [name, file] of Object.entries(files)) {
    await clear();
    const o = await ours(file);
    await progs(file);
    const diff = await run('diff', ['-r', '--no-dereference', join(destOurs, o.name), join(destProgs, o.name)]).then(
      () => 'same',
      (e) => e.stdout.slice(0, 500),
    );
    if (diff !== 'same') throw new Error(`${name}: the trees differ:\n${diff}`);
  }
  for (const name of Object.keys(files)) results[name] = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, file] of Object.entries(files)) {
      const order = r % 2 ? [...names].reverse() : names;
      for (const row of order) results[name][row].push(await measure(rows[row], file));
    }
    console.error(`round ${r + 1}/${rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  if (values.split) for (const [name, file] of Object.entries(files)) split[name] = { ours: await traced((wrap) => ours(file, undefined, wrap)), btrfs: await traced((wrap) => progs(file, wrap)) };
  await clear();
} finally {
  cleanup();
}

// ---- report -----------------------------------------------------------------
const mb = (file) => statSync(file).size / 1e6;
console.log(`receive, ${rounds} rounds; seconds are medians (min..max); ratio = btrfs/ours per round, median (min..max); >1 means ours is faster`);
for (const [name, r] of Object.entries(results)) {
  const o = r.ours.map((x) => x.seconds);
  const b = r.btrfs.map((x) => x.seconds);
  const bs = r.btrfs.map((x) => x.seconds + x.sync);
  const f = r.floor.map((x) => x.seconds);
  const fs = r.floor.map((x) => x.seconds + x.sync);
  const ratios = b.map((v, i) => v / o[i]);
  const durable = bs.map((v, i) => v / o[i]);
  const range = (l) => `(${Math.min(...l).toFixed(2)}..${Math.max(...l).toFixed(2)})`;
  const size = mb(files[name]);
  console.log(`\n${name}: stream ${size.toFixed(1)} MB (${name.startsWith('full') ? '20,000 files + 300 MiB' : '10% change'})`);
  console.log(`  ours          ${fmt(median(o), 3)} s ${range(o)}  ${(size / median(o)).toFixed(0)} MB/s  (its own syncfs included; the one after it: ${median(r.ours.map((x) => x.sync)).toFixed(3)} s)`);
  console.log(`  btrfs receive ${fmt(median(b), 3)} s ${range(b)}  ${(size / median(b)).toFixed(0)} MB/s`);
  console.log(`  btrfs+sync    ${fmt(median(bs), 3)} s ${range(bs)}`);
  console.log(`  floor dd      ${fmt(median(f), 3)} s, dd+sync ${median(fs).toFixed(3)} s`);
  console.log(`  ratio btrfs/ours        ${median(ratios).toFixed(2)}x ${range(ratios)}   per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`  ratio (btrfs+sync)/ours ${median(durable).toFixed(2)}x ${range(durable)}`);
  if (r.alt) {
    const a = r.alt.map((x) => x.seconds);
    const altRatios = a.map((v, i) => v / o[i]);
    console.log(`  alt (${values.alt}) ${fmt(median(a), 3)} s ${range(a)}`);
    console.log(`  ratio alt/ours          ${median(altRatios).toFixed(2)}x ${range(altRatios)}   per round: ${altRatios.map((x) => x.toFixed(2)).join(' ')}`);
  }
  if (split[name]) {
    const { ours: so, btrfs: sb } = split[name];
    const rest = (x) => x.seconds - x.waiting;
    console.log(`  split (one traced run each): commits and data write-out: ours ${so.waiting.toFixed(3)} s of ${so.seconds.toFixed(3)}, btrfs ${sb.waiting.toFixed(3)} s of ${sb.seconds.toFixed(3)}`);
    console.log(`    the rest (applying the commands): ours ${rest(so).toFixed(3)} s, btrfs ${rest(sb).toFixed(3)} s: btrfs/ours ${(rest(sb) / rest(so)).toFixed(2)}x`);
  }
  const rss = r.ours.map((x) => x.maxRssKiB / 1024);
  console.log(`  ours peak RSS ${Math.max(...rss).toFixed(1)} MB (max over rounds; ${(r.ours[0].rssBeforeKiB / 1024).toFixed(1)} MB before the receive)`);
}
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
