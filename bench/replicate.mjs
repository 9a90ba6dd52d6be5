#!/usr/bin/env node
// bench/replicate: the product's replication path between btrfs
// filesystems (issue 13) against btrfs-progs over OpenSSH, on localhost:
// filesystem A holds the volume and its snapshots; each receiving row has a
// filesystem of its own (B for ours), emptied at each round's start.
//   full         20,000 small files (100 B - 8 KB, 200 dirs) + one 300 MiB
//                file (bench/dataset.mjs): snapshot s1, B holds nothing
//   incremental  the 10% change: snapshot s2, B holds s1 (received just
//                before, in the same round, by the same row's full send)
//
// Rows, interleaved round by round (order alternating):
//   ours     `node bin/buttervolume.cjs send 127.0.0.1:<port> <snapshot>`
//            on A (its own config: SNAPSHOTS_PATH on A, SSH_PATH with its
//            client key), to a `node bin/buttervolume.cjs run` daemon on B
//            (SNAPSHOTS_PATH on B; its embedded ssh2 server on <port>, A's
//            key in its authorized_keys): the process, from spawn to exit.
//            It asks B what it holds, chooses the parent, streams with
//            send() into an ssh2 channel; B receives with receive() (checked
//            stream, syncfs, marked received, renamed into place) and
//            answers; A writes its send marker.
//   openssh  `bash -o pipefail -c 'btrfs send -q [-p s1] <snap> | ssh -p <port2> -i <key>
//            root@127.0.0.1 btrfs receive -q <dir on B>'` against an OpenSSH
//            sshd started for the bench (its own sshd_config, port and keys),
//            both sides with OpenSSH's default algorithms: from spawn to
//            exit. `btrfs receive` does not sync what it wrote: the syncfs
//            of B right after it is timed too ("openssh+sync").
// CPU per row: the sending side is what this script spawned (the CLI; or
// bash, btrfs send and ssh), from its children's times; the receiving side
// is the daemon's own time (all its threads), or what sshd reaped (its
// session process, the shell and btrfs receive). Kernel work done in a
// process's context (the send ioctl, the receiving writes) counts as its
// system time; writeback by kernel threads counts nowhere.
// Before each row B is synced and its cleaner waited for; at the start of a
// round every copy on B (and A's send markers) is deleted. Ratios are
// openssh/ours per round, median reported; >1 means ours is faster.
// Floor rows (unless --skip-floor): what the two kernel stages every such
// pipeline runs cost alone, timed in the same rounds:
//   send-alone     `btrfs -q send [-p s1] <snap> -f /dev/null` on A (the
//                  send ioctl making the stream, nothing carried)
//   receive-alone  `btrfs -q receive -f <stream> <dir on B>`, the stream
//                  made once before the rounds into a file on A (in the
//                  page cache): applying it, nothing carried
// No pipeline of the two can take less than the slower of them (receive with
// its syncfs), nor less than the CPU the machine spends on both (kernel
// threads, writeback, included) shared by its CPUs: floor = max(send,
// receive + syncfs, (machine CPU send + machine CPU receive) / CPUs), per round; "openssh/floor" is then the best ratio over openssh any
// implementation can reach on this machine.
// --alt <package dir>: one more row, "alt": the same CLI sending to a second
// daemon on B run from <dir>/bin/buttervolume.cjs (another build: e.g. the
// product without a change), receiving into B/alt-snapshots; ratio alt/ours.
// usage: node bench/replicate.mjs [--rounds N] [--alt <package dir> [--alt-env KEY=VALUE]...] [--skip-floor]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { makeChange, makeFull } from './dataset.mjs';
import { fmt, median, scratchBtrfs } from './common.mjs';
import { cpu, freePort, hostEnv, shellQuote, startSshd, waitForPort } from './openssh.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, alt: { type: 'string' }, 'alt-env': { type: 'string', multiple: true, default: [] }, 'skip-floor': { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);
const started = Date.now();
const hrs = () => process.hrtime.bigint();
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const BIN = new URL('../bin/buttervolume.cjs', import.meta.url).pathname;
// BENCH_PROF=<dir>: our daemon and CLI run with --cpu-prof into <dir> (profiling, not timing).
const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];

const A = scratchBtrfs(6);
// Each receiving row has a filesystem of its own (B: ours; P: OpenSSH's;
// F: the floor's receive-alone; Balt: --alt's), emptied at each round's
// start: on one shared filesystem a row received after the others' copies
// of the round were 10-20% slower than one received first.
const B = scratchBtrfs(6);
const P = scratchBtrfs(6);
const F = scratchBtrfs(6);
const Balt = values.alt ? scratchBtrfs(6) : null;
const receiving = [B, P, F, ...(Balt ? [Balt] : [])];
const work = mkdtempSync('/tmp/bv-bench-repl-');
const procs = [];
process.once('exit', () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const envOf = hostEnv;
for (const d of ['a', 'b', 'b-alt', 'openssh']) mkdirSync(join(work, d), { mode: 0o700 });
const ourPort = await freePort();
const envA = envOf(A.mnt, join(work, 'a'), { BUTTERVOLUME_SSH_PORT: '0' });
const envB = envOf(B.mnt, join(work, 'b'), { BUTTERVOLUME_SSH_PORT: String(ourPort) });
for (const m of [A.mnt, B.mnt]) for (const d of ['volumes', 'snapshots']) mkdirSync(join(m, d));
const altPort = values.alt ? await freePort() : 0;
// --alt-env KEY=VALUE (repeatable): more environment for the alt row's daemon and CLI (an experiment toggled by a variable, A/B in one run).
const altExtra = Object.fromEntries(values['alt-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const envAlt = Balt ? { ...altExtra, ...envOf(Balt.mnt, join(work, 'b-alt'), { BUTTERVOLUME_SSH_PORT: String(altPort) }) } : null;
if (Balt) for (const d of ['volumes', 'snapshots']) mkdirSync(join(Balt.mnt, d));

// ---- the data set on A ------------------------------------------------------
const volume = join(A.mnt, 'volumes', 'db');
await btrfs.createSubvolume(volume);
makeFull(volume);
const s1 = 'db@2026-01-01T00:00:00.000000';
const s2 = 'db@2026-01-01T01:00:00.000000';
await btrfs.snapshot(volume, join(A.mnt, 'snapshots', s1), { readonly: true });
const change = makeChange(volume);
await btrfs.snapshot(volume, join(A.mnt, 'snapshots', s2), { readonly: true });
await btrfs.syncFilesystem(A.mnt);
console.error(`data set ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(change)}`);

// ---- our daemon on B, A's key authorized ------------------------------------
const daemon = spawn(process.execPath, [...prof, BIN, 'run'], { env: envB, stdio: ['ignore', 'ignore', 'pipe'] });
procs.push(daemon);
let daemonLog = '';
daemon.stderr.on('data', (d) => (daemonLog = (daemonLog + d).slice(-20_000)));
await waitForPort(ourPort, daemon, 'buttervolume run');
const keyLine = execFileSync(process.execPath, [BIN, 'ssh-key'], { env: envA }).toString().trim();
appendFileSync(join(work, 'b', 'ssh', 'authorized_keys'), `${keyLine}\n`, { mode: 0o600 });
let altDaemon = null;
if (values.alt) {
  altDaemon = spawn(process.execPath, [...prof, join(values.alt, 'bin', 'buttervolume.cjs'), 'run'], { env: envAlt, stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(altDaemon);
  await waitForPort(altPort, altDaemon, 'the alt buttervolume run');
  appendFileSync(join(work, 'b-alt', 'ssh', 'authorized_keys'), `${keyLine}\n`, { mode: 0o600 });
}

// ---- OpenSSH: an sshd of our own, with its own configuration -----------------
const { proc: sshd, sshArgs, log: sshdLogOf } = await startSshd(join(work, 'openssh'), procs);
const q = shellQuote;
const progsDir = join(P.mnt, 'progs');
mkdirSync(progsDir);
const floorDir = join(F.mnt, 'floor');
mkdirSync(floorDir);
const streamFile = (snapshot) => join(A.mnt, `${snapshot}.stream`);

// ---- rows -------------------------------------------------------------------
async function ours(snapshot, port = ourPort) {
  const t0 = hrs();
  const r = await run(process.execPath, [...prof, BIN, 'send', '--json', `127.0.0.1:${port}`, snapshot], { env: port === altPort ? { ...envA, ...altExtra } : envA }).catch((err) => {
    throw new Error(`buttervolume send failed: ${err.stderr}\n--- daemon:\n${daemonLog.slice(-3000)}`);
  });
  const seconds = secs(t0);
  const result = JSON.parse(r.stdout);
  if (!result.transferred) throw new Error(`${snapshot} was not sent: ${r.stdout}`);
  return { seconds, parent: result.parent, bytes: result.bytes };
}

async function openssh(snapshot, parent) {
  const snap = join(A.mnt, 'snapshots', snapshot);
  const p = parent ? `-p ${q(join(A.mnt, 'snapshots', parent))} ` : '';
  const cmd = `btrfs -q send ${p}${q(snap)} | ssh ${sshArgs.map(q).join(' ')} root@127.0.0.1 /usr/bin/btrfs -q receive ${q(progsDir)}`;
  const t0 = hrs();
  await run('bash', ['-o', 'pipefail', '-c', cmd]).catch((err) => {
    throw new Error(`openssh row failed: ${err.stderr}\n--- sshd:\n${sshdLogOf().slice(-3000)}`);
  });
  return { seconds: secs(t0) };
}

/** A floor row: one kernel stage alone (see the head of this file). */
async function floorRow(row, snapshot, parent) {
  const snap = join(A.mnt, 'snapshots', snapshot);
  const args = row === 'send-alone' ? ['-q', 'send', ...(parent ? ['-p', join(A.mnt, 'snapshots', parent)] : []), snap, '-f', '/dev/null'] : ['-q', 'receive', '-f', streamFile(snapshot), floorDir];
  const t0 = hrs();
  await run('btrfs', args);
  return { seconds: secs(t0) };
}

/** Seconds of CPU the whole machine spent busy (every process and kernel thread: writeback too; not idle, iowait or steal), from /proc/stat. */
function machineBusy() {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq) / 100;
}

/** CPU of the sending side (what this process spawned and waited for) and of the receiving one. */
function cpuSnapshot() {
  return { machine: machineBusy(), sender: cpu().children, daemon: cpu(daemon.pid).own, alt: altDaemon ? cpu(altDaemon.pid).own : 0, sshd: cpu(sshd.pid).children };
}

async function settle() {
  for (const fs of receiving) {
    await btrfs.syncFilesystem(fs.mnt);
    await btrfs.waitForCleaner(fs.mnt);
  }
  // The loop images' own dirty pages (on the host's filesystem) too: else
  // the host writes back the rows before during the next one, which then
  // pays for it (rows late in a round were up to 1.6x slower).
  execFileSync('sync');
}

/** Every copy on the receiving filesystems and every send marker on A deleted. */
async function clearAll() {
  for (const d of [join(B.mnt, 'snapshots'), progsDir, floorDir, ...(Balt ? [join(Balt.mnt, 'snapshots')] : [])]) for (const name of readdirSync(d)) await btrfs.deleteSubvolume(join(d, name));
  for (const name of readdirSync(join(A.mnt, 'snapshots'))) if (name.split('@').length === 3) await btrfs.deleteSubvolume(join(A.mnt, 'snapshots', name));
  await btrfs.syncFilesystem(A.mnt);
  await settle();
}

async function measure(row, snapshot, parent) {
  await settle();
  const c0 = cpuSnapshot();
  const r =
    row === 'ours' ? await ours(snapshot) : row === 'alt' ? await ours(snapshot, altPort) : row === 'openssh' ? await openssh(snapshot, parent) : await floorRow(row, snapshot, parent);
  const t0 = hrs();
  await btrfs.syncFilesystem(({ ours: B, alt: Balt, openssh: P, 'receive-alone': F, 'send-alone': F })[row].mnt);
  const sync = secs(t0);
  // sshd reaps its session process right after the client's exit: give it a moment.
  if (row === 'openssh') await sleep(200);
  const c1 = cpuSnapshot();
  const sender = c1.sender - c0.sender;
  const receiver = row === 'ours' ? c1.daemon - c0.daemon : row === 'alt' ? c1.alt - c0.alt : row === 'openssh' ? c1.sshd - c0.sshd : 0;
  return { ...r, sync, cpu: { sender, receiver, machine: c1.machine - c0.machine } };
}

const cases = [
  ['full', s1, null],
  ['incremental', s2, s1],
];
const rowNames = ['ours', 'openssh', ...(values.alt ? ['alt'] : []), ...(!values['skip-floor'] ? ['send-alone', 'receive-alone'] : [])];
if (!values['skip-floor']) {
  for (const [, snapshot, parent] of cases) execFileSync('btrfs', ['-q', 'send', ...(parent ? ['-p', join(A.mnt, 'snapshots', parent)] : []), '-f', streamFile(snapshot), join(A.mnt, 'snapshots', snapshot)]);
  await btrfs.syncFilesystem(A.mnt);
}
const results = { full: {}, incremental: {} };
for (const r of Object.values(results)) for (const n of rowNames) r[n] = [];
try {
  // An untimed round, and checks: ours chose s1 as parent, and both copies are the same trees.
  await clearAll();
  for (const [name, snapshot, parent] of cases) {
    const r = await ours(snapshot);
    if (r.parent !== parent) throw new Error(`${name}: ours sent with parent ${r.parent}, expected ${parent}`);
    await openssh(snapshot, parent);
    if (values.alt) await ours(snapshot, altPort);
    if (!values['skip-floor']) await floorRow('receive-alone', snapshot, parent);
  }
  const diff = await run('diff', ['-r', '--no-dereference', join(B.mnt, 'snapshots', s2), join(progsDir, s2)]).then(
    () => 'same',
    (e) => e.stdout.slice(0, 500),
  );
  if (diff !== 'same') throw new Error(`the copies of ${s2} differ:\n${diff}`);
  const info = await btrfs.subvolumeInfo(join(B.mnt, 'snapshots', s2));
  const local = await btrfs.subvolumeInfo(join(A.mnt, 'snapshots', s2));
  if (info.receivedUuid !== local.uuid || !info.readonly) throw new Error('our copy of s2 is not marked as received from A');
  console.error(`warm-up done, the copies are identical (${((Date.now() - started) / 1000).toFixed(0)} s)`);

  for (let r = 0; r < rounds; r++) {
    await clearAll();
    const order = r % 2 ? [...rowNames].reverse() : rowNames;
    for (const [name, snapshot, parent] of cases) for (const row of order) results[name][row].push(await measure(row, snapshot, parent));
    console.error(`round ${r + 1}/${rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  await clearAll();
} finally {
  daemon.kill('SIGTERM');
  altDaemon?.kill('SIGTERM');
  sshd.kill('SIGTERM');
  await Promise.all([daemon, sshd, ...(altDaemon ? [altDaemon] : [])].map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((resolve) => p.once('exit', resolve)) : null)));
  A.cleanup();
  for (const fs of receiving) fs.cleanup();
}

// BENCH_DUMP=<file>: every row's per-round results as JSON (the report shows medians).
if (process.env.BENCH_DUMP) writeFileSync(process.env.BENCH_DUMP, JSON.stringify(results));
// ---- report -----------------------------------------------------------------
console.log(`replicate over localhost, ${rounds} rounds; seconds are medians (min..max); ratio = openssh/ours per round, median (min..max); >1 means ours is faster`);
const range = (l) => `(${Math.min(...l).toFixed(2)}..${Math.max(...l).toFixed(2)})`;
for (const [name, r] of Object.entries(results)) {
  const a = r.ours.map((x) => x.seconds);
  const b = r.openssh.map((x) => x.seconds);
  const bs = r.openssh.map((x) => x.seconds + x.sync);
  const ratios = b.map((v, i) => v / a[i]);
  const durable = bs.map((v, i) => v / a[i]);
  const mb = r.ours[0].bytes / 1e6;
  console.log(`\n${name}: stream ${mb.toFixed(1)} MB`);
  console.log(`  ours          ${fmt(median(a), 3)} s ${range(a)}  ${(mb / median(a)).toFixed(0)} MB/s  (the syncfs of B after it: ${median(r.ours.map((x) => x.sync)).toFixed(3)} s)`);
  console.log(`  openssh       ${fmt(median(b), 3)} s ${range(b)}  ${(mb / median(b)).toFixed(0)} MB/s`);
  console.log(`  openssh+sync  ${fmt(median(bs), 3)} s ${range(bs)}`);
  const cpuOf = (l, side) => median(l.map((x) => x.cpu[side])).toFixed(2);
  console.log(`  CPU s (user+sys, medians): ours sender ${cpuOf(r.ours, 'sender')} + receiver ${cpuOf(r.ours, 'receiver')}; openssh sender ${cpuOf(r.openssh, 'sender')} + receiver ${cpuOf(r.openssh, 'receiver')}`);
  console.log(`  machine CPU s (every process and kernel thread, through the syncfs after the row): ours ${cpuOf(r.ours, 'machine')}, openssh ${cpuOf(r.openssh, 'machine')}`);
  console.log(`  ratio openssh/ours        ${median(ratios).toFixed(2)}x ${range(ratios)}   per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`  ratio (openssh+sync)/ours ${median(durable).toFixed(2)}x ${range(durable)}`);
  if (!values['skip-floor']) {
    const cpus = availableParallelism();
    const floors = r['send-alone'].map((x, i) => {
      const y = r['receive-alone'][i];
      return Math.max(x.seconds, y.seconds + y.sync, (x.cpu.machine + y.cpu.machine) / cpus);
    });
    const best = b.map((v, i) => v / floors[i]);
    const sa = r['send-alone'].map((x) => x.seconds);
    const ra = r['receive-alone'].map((x) => x.seconds);
    console.log(
      `  floor: send alone ${median(sa).toFixed(3)} s ${range(sa)} (machine CPU ${cpuOf(r['send-alone'], 'machine')} s), receive alone ${median(ra).toFixed(3)} s ${range(ra)} + its syncfs ${median(r['receive-alone'].map((x) => x.sync)).toFixed(3)} s (machine CPU ${cpuOf(r['receive-alone'], 'machine')} s, writeback included), ${cpus} CPUs: floor ${median(floors).toFixed(3)} s`,
    );
    console.log(`  ratio openssh/floor       ${median(best).toFixed(2)}x ${range(best)}   (the best any pipeline of the two stages reaches here)   ours/floor ${(median(a) / median(floors)).toFixed(2)}x`);
  }
  if (values.alt) {
    const c = r.alt.map((x) => x.seconds);
    const altRatios = c.map((v, i) => v / a[i]);
    console.log(`  alt (${values.alt}) ${fmt(median(c), 3)} s ${range(c)}; CPU s: sender ${cpuOf(r.alt, 'sender')} + receiver ${cpuOf(r.alt, 'receiver')}`);
    console.log(`  ratio alt/ours            ${median(altRatios).toFixed(2)}x ${range(altRatios)}   per round: ${altRatios.map((x) => x.toFixed(2)).join(' ')}`);
  }
}
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
