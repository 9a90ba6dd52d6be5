#!/usr/bin/env node
// bench/sync: `buttervolume sync` (the original's `rsync -avz --update` over
// ssh, replaced) against `rsync -a --update` over OpenSSH, on localhost
// (issue 25). Filesystem A holds the live volume the peer serves, B pulls.
// The data set (bench/dataset.mjs): 20,000 files of 1 KB in 200 directories
// and one 50 MB file; its 10% change: 1,000 files rewritten, 500 added, 400
// renamed (half to another directory), a directory of 100 renamed.
// Cases, each row in its own destination on B:
//   first        B's copy empty, A the data set
//   incremental  A changed (its writable snapshot of the changed state)
//   no-op        again, nothing to do
// Rows, interleaved round by round (order alternating):
//   ours    `node bin/buttervolume.cjs sync sv 127.0.0.1:<port>` on B (its
//           own config), from a `buttervolume run` daemon on A (its
//           embedded SSH server; B's key in its authorized_keys): the
//           process, from spawn to exit.
//   rsync   `rsync -a --update -e 'ssh -p <port2> -i <key> ...'
//           root@127.0.0.1:<A's volume>/ <B's copy>/` against an OpenSSH sshd
//           the bench starts (bench/openssh.mjs): from spawn to exit.
// Neither syncs what it wrote; the syncfs of B after each is timed apart.
// CPU per row: the client (what this script spawned and waited for: the CLI;
// rsync and ssh) and the server (the daemon's own time; what sshd reaped: the
// session, the remote rsync). Bytes on the wire: one more untimed pass of
// each case through a counting TCP relay (both directions).
// Before each row B is synced and its cleaner waited for. Ratios are
// rsync/ours per round, median reported; >1 means ours is faster.
// usage: node bench/sync.mjs [--rounds N] [--rows ours,rsync] [--skip-wire]   (root; rsync and OpenSSH installed)
import { execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { median, scratchBtrfs } from './common.mjs';
import { makeSyncChange, makeSyncSet } from './dataset.mjs';
import { cpu, freePort, hostEnv, shellQuote, startSshd, waitForPort } from './openssh.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, rows: { type: 'string', default: 'ours,rsync' }, 'skip-wire': { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);
const started = Date.now();
const BIN = new URL('../bin/buttervolume.cjs', import.meta.url).pathname;
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
// BENCH_PROF=<dir>: our daemon and CLI run with --cpu-prof into <dir> (profiling, not timing).
const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
if (!existsSync('/usr/bin/rsync')) throw new Error('bench/sync needs rsync (apt-get install rsync)');

const A = scratchBtrfs(3);
const B = scratchBtrfs(3);
const work = mkdtempSync('/tmp/bv-bench-sync-');
const procs = [];
process.once('exit', () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
for (const d of ['a', 'b']) mkdirSync(join(work, d), { mode: 0o700 });
for (const m of [A.mnt, B.mnt]) for (const d of ['volumes', 'snapshots']) mkdirSync(join(m, d));
const ourPort = await freePort();
const envA = hostEnv(A.mnt, join(work, 'a'), { BUTTERVOLUME_SSH_PORT: String(ourPort) });
const envB = hostEnv(B.mnt, join(work, 'b'), { BUTTERVOLUME_SSH_PORT: String(ourPort) });

// ---- the two states of A's volume, as read-only snapshots ----------------------
const base = join(A.mnt, 'snapshots', 'base');
const changed = join(A.mnt, 'snapshots', 'changed');
{
  const w = join(A.mnt, 'build');
  await btrfs.createSubvolume(w);
  makeSyncSet(w);
  await btrfs.snapshot(w, base, { readonly: true });
  const counts = makeSyncChange(w);
  await btrfs.snapshot(w, changed, { readonly: true });
  await btrfs.deleteSubvolume(w);
  await btrfs.syncFilesystem(A.mnt);
  console.error(`data set ready in ${elapsed()}: ${JSON.stringify(counts)}`);
}
const liveA = join(A.mnt, 'volumes', 'sv');
/** A's live volume becomes a writable snapshot of @state (times kept: what --update compares). */
async function setA(state) {
  if (existsSync(liveA)) await btrfs.deleteSubvolume(liveA);
  await btrfs.snapshot(state, liveA);
  await btrfs.syncFilesystem(A.mnt);
}

// ---- our daemon on A, B's key authorized; OpenSSH ------------------------------
const daemon = spawn(process.execPath, [...prof, BIN, 'run'], { env: envA, stdio: ['ignore', 'ignore', 'pipe'] });
procs.push(daemon);
let daemonLog = '';
daemon.stderr.on('data', (d) => (daemonLog = (daemonLog + d).slice(-20_000)));
await waitForPort(ourPort, daemon, 'buttervolume run');
const keyLine = execFileSync(process.execPath, [BIN, 'ssh-key'], { env: envB }).toString().trim();
appendFileSync(join(work, 'a', 'ssh', 'authorized_keys'), `${keyLine}\n`, { mode: 0o600 });
const { proc: sshd, port: sshPort, sshArgs, log: sshdLog } = await startSshd(join(work, 'openssh'), procs);

const dest = { ours: join(B.mnt, 'volumes', 'sv'), rsync: join(B.mnt, 'volumes', 'rs') };

async function ours(port = ourPort) {
  const r = await run(process.execPath, [...prof, BIN, 'sync', '--json', 'sv', `127.0.0.1:${port}`], { env: envB, maxBuffer: 64 << 20 }).catch((err) => {
    throw new Error(`buttervolume sync failed: ${err.stderr}\n--- daemon:\n${daemonLog.slice(-3000)}`);
  });
  const host = JSON.parse(r.stdout).hosts?.[0];
  if (!host?.ok) throw new Error(`sync did not succeed: ${r.stdout.slice(0, 2000)}`);
  return host;
}

async function rsync(port = sshPort) {
  const e = ['ssh', ...sshArgs.map((a, i) => (sshArgs[i - 1] === '-p' ? String(port) : a))].map(shellQuote).join(' ');
  await run('rsync', ['-a', '--update', '-e', e, `root@127.0.0.1:${liveA}/`, `${dest.rsync}/`], { maxBuffer: 64 << 20 }).catch((err) => {
    throw new Error(`rsync failed: ${err.stderr}\n--- sshd:\n${sshdLog().slice(-3000)}`);
  });
}

async function settle() {
  await btrfs.syncFilesystem(B.mnt);
  await btrfs.waitForCleaner(B.mnt);
  // The loop images' own dirty pages (on the host's filesystem) too: else
  // the host writes back the rows before during the next one, which then
  // pays for it (rows late in a round were up to 1.6x slower).
  execFileSync('sync');
}

async function emptyDest(row) {
  if (existsSync(dest[row])) await btrfs.deleteSubvolume(dest[row]);
  await btrfs.createSubvolume(dest[row]);
  await settle();
}

const cpuSnapshot = () => ({ client: cpu().children, daemon: cpu(daemon.pid).own, sshd: cpu(sshd.pid).children });

async function measure(row) {
  await settle();
  const c0 = cpuSnapshot();
  const t0 = process.hrtime.bigint();
  const detail = row === 'ours' ? await ours() : await rsync();
  const seconds = secs(t0);
  const t1 = process.hrtime.bigint();
  await btrfs.syncFilesystem(B.mnt);
  const syncfs = secs(t1);
  // sshd reaps its session process right after the client's exit: give it a moment.
  if (row === 'rsync') await sleep(200);
  const c1 = cpuSnapshot();
  return { seconds, syncfs, client: c1.client - c0.client, server: row === 'ours' ? c1.daemon - c0.daemon : c1.sshd - c0.sshd, detail };
}

/** The three cases for @row, each measured with @step. */
async function casesOf(row, step) {
  const out = {};
  await emptyDest(row);
  await setA(base);
  out.first = await step(row);
  await setA(changed);
  out.incremental = await step(row);
  out.noop = await step(row);
  return out;
}

// ---- a TCP relay that counts the bytes both ways (the untimed pass) ------------
async function countingRelay(target) {
  const port = await freePort();
  const counted = { up: 0, down: 0 };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    client.on('data', (d) => (counted.up += d.length));
    upstream.on('data', (d) => (counted.down += d.length));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, counted, close: () => new Promise((resolve) => server.close(resolve)) };
}

const rows = values.rows.split(',').filter((r) => r === 'ours' || r === 'rsync');
const caseNames = ['first', 'incremental', 'noop'];
const results = Object.fromEntries(caseNames.map((c) => [c, { ours: [], rsync: [] }]));
const wire = {};
try {
  // Warm-up, and the check that both copies are A's changed state.
  for (const row of rows) await casesOf(row, async (r) => (r === 'ours' ? ours() : rsync()));
  for (const row of rows) {
    const diff = await run('diff', ['-r', '--no-dereference', changed, dest[row]], { maxBuffer: 64 << 20 }).then(
      () => 'same',
      (e) => e.stdout || e.stderr,
    );
    // The renamed files' old names stay (no deletion, either tool): only "Only in <dest>" lines may differ.
    const real = diff === 'same' ? [] : diff.split('\n').filter((l) => l && !l.startsWith(`Only in ${dest[row]}`));
    if (real.length) throw new Error(`${row}'s copy differs from A:\n${real.slice(0, 10).join('\n')}`);
  }
  console.error(`warm-up done, both copies hold A's data (${elapsed()})`);

  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...rows].reverse() : rows;
    for (const row of order) {
      const got = await casesOf(row, measure);
      for (const c of caseNames) results[c][row].push(got[c]);
    }
    console.error(`round ${r + 1}/${rounds} done (${elapsed()})`);
  }

  // Bytes on the wire: each row once more through the relay.
  for (const row of values['skip-wire'] ? [] : rows) {
    const relay = await countingRelay(row === 'ours' ? ourPort : sshPort);
    wire[row] = {};
    await casesOf(row, async (rw) => {
      const before = { ...relay.counted };
      if (rw === 'ours') await ours(relay.port);
      else await rsync(relay.port);
      return { up: relay.counted.up - before.up, down: relay.counted.down - before.down };
    }).then((got) => Object.assign(wire[row], got));
    await relay.close();
  }
} finally {
  daemon.kill('SIGTERM');
  sshd.kill('SIGTERM');
  await Promise.all([daemon, sshd].map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((resolve) => p.once('exit', resolve)) : null)));
  A.cleanup();
  B.cleanup();
}

// ---- report -----------------------------------------------------------------
console.log(`sync over localhost, ${rounds} rounds; seconds are medians (min..max); ratio = rsync/ours per round, median (min..max); >1 means ours is faster`);
const range = (l) => `(${Math.min(...l).toFixed(2)}..${Math.max(...l).toFixed(2)})`;
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
for (const c of caseNames) {
  const r = results[c];
  const med = (l, k) => median(l.map((x) => x[k])).toFixed(2);
  console.log(`\n${c}:`);
  for (const row of rows) {
    const t = r[row].map((x) => x.seconds);
    console.log(`  ${row.padEnd(6)} ${median(t).toFixed(3)} s ${range(t)}  (+ syncfs ${med(r[row], 'syncfs')} s)  CPU s: client ${med(r[row], 'client')}, server ${med(r[row], 'server')}`);
  }
  if (r.ours.length && r.rsync.length) {
    const ratios = r.rsync.map((x, i) => x.seconds / r.ours[i].seconds);
    console.log(`  ratio rsync/ours ${median(ratios).toFixed(2)}x ${range(ratios)}   per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
  }
  const d = r.ours[0]?.detail;
  if (d) console.log(`  ours copied ${d.copied ?? 0} files (${mb(d.bytes ?? 0)}), kept ${d.kept ?? 0}, skipped ${d.skipped ?? 0}`);
  for (const row of rows) if (wire[row]) console.log(`  on the wire: ${row} ${mb(wire[row][c].down)} down + ${mb(wire[row][c].up)} up`);
}
console.log(`\ntotal ${elapsed()}`);
