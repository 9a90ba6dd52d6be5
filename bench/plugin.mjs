#!/usr/bin/env node
// bench/plugin: the plugin daemon over its unix socket, side by side with the
// original's way of doing the same (one btrfs-progs process per operation),
// in one run, rows interleaved in rounds, ratios taken within each round:
//   1. VolumeDriver.List with 1,000 volumes vs one `btrfs subvolume show`
//      spawned per volume (the original's List);
//   2. sequential VolumeDriver.Snapshot + Snapshot.Remove cycles vs spawning
//      `btrfs subvolume snapshot -r` / `btrfs subvolume delete` per request
//      (b: the bench spawns them itself; b': the original's architecture
//      rebuilt from the standard library - a threaded Python HTTP server on a
//      unix socket running the command through a shell per request), with
//      the raw C ioctl loop (bench/raw-snapshot.c) as the limit; the HTTP
//      rows are driven by one C client (bench/http-client.c), so that they
//      differ by their server alone, and the daemon also by Node clients;
//   3. VolumeDriver.Mount latency while 4 clients snapshot continuously;
//   4. the daemon's RSS idle and after 10,000 and 20,000 requests;
//   5. with --quotas simple (or qgroup): two more daemons, QUOTAS=<kind> and
//      QUOTAS=off, each on a fresh filesystem of its own, doing the same work
//      side by side (bench/plugin-quotas.mjs): Snapshot + Remove cycles, Get
//      on a volume with 1,000 snapshots, Mount latency under snapshot load,
//      Create + Remove, writing data; ratios within each round.
// The daemon runs as its own process (`buttervolume run`, `npm run build`
// first), its state directory on a tmpfs like /run on a real host.
// Before section 2's timed rounds, every HTTP row serves --warmup cycles
// untimed: V8 runs a fresh process's JavaScript in its interpreter until it
// has seen enough calls (~1,500 cycles for the daemon here), and a daemon
// serves for weeks; --warmup 0 measures servers just started.
// usage: node bench/plugin.mjs [--volumes N] [--cycles N] [--rounds R] [--warmup N] [--seconds S] [--only 1,2,3,4,5] [--quotas simple|qgroup]
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { compileC, fillSmallFiles, fmt, interleavedRounds, median, perRoundRatio, scratchBtrfs, spawnedCycles } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    volumes: { type: 'string', default: '1000' },
    cycles: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '1500' },
    seconds: { type: 'string', default: '10' },
    only: { type: 'string', default: '1,2,3,4,5' },
    quotas: { type: 'string', default: '' },
  },
});
/** The integer value of --@flag, refused unless >= @min. */
function intFlag(flag, min) {
  const n = Number(values[flag]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag}: an integer >= ${min}, got ${values[flag]}`);
  return n;
}
const volumeCount = intFlag('volumes', 1);
const cycles = intFlag('cycles', 1);
const rounds = intFlag('rounds', 1);
const warmupCycles = intFlag('warmup', 0);
const loadSeconds = intFlag('seconds', 1);
const sections = new Set(values.only.split(',').map(Number));
if ([...sections].some((n) => ![1, 2, 3, 4, 5].includes(n))) throw new Error(`--only: sections are 1 to 5, got ${values.only}`);
const quotas = values.quotas;
if (!['', 'simple', 'qgroup'].includes(quotas)) throw new Error(`--quotas: simple or qgroup, got ${quotas}`);
if (!quotas) sections.delete(5);

// ---- setup: scratch btrfs, tmpfs state dir, the daemon ------------------------
const { mnt, cleanup: cleanupBtrfs } = scratchBtrfs(8);
const work = mkdtempSync(join(tmpdir(), 'bv-bench-plugin-'));
const runPath = join(work, 'run');
mkdirSync(runPath);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', runPath]);
const volumesPath = join(mnt, 'volumes');
const snapshotsPath = join(mnt, 'snapshots');
const socketPath = join(runPath, 'plugins', 'bench.sock');
const dist = (p) => new URL(`../dist/${p}`, import.meta.url).href;
// The daemon as users run it: `buttervolume run` (which also sizes the libuv pool).
const startDaemon = (volumes, snapshots, sock, env = {}) =>
  spawn(process.execPath, [new URL('../bin/buttervolume.cjs', import.meta.url).pathname, 'run'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: process.env.PATH,
      BUTTERVOLUME_CONFIG: join(work, 'none.ini'),
      BUTTERVOLUME_VOLUMES_PATH: volumes,
      BUTTERVOLUME_SNAPSHOTS_PATH: snapshots,
      BUTTERVOLUME_SCHEDULE: join(work, 'schedule.csv'),
      BUTTERVOLUME_RUNPATH: runPath,
      BUTTERVOLUME_SOCKET: sock,
      BUTTERVOLUME_LOGLEVEL: 'WARNING',
      ...env,
    },
  });
const daemon = startDaemon(volumesPath, snapshotsPath, socketPath);
let cdir;
const children = [daemon];
const cleanups = [];
const cleanup = () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  try {
    execFileSync('umount', [runPath]);
  } catch {
    execFileSync('umount', ['-l', runPath]);
  }
  rmSync(work, { recursive: true, force: true });
  if (cdir) rmSync(cdir, { recursive: true, force: true });
  cleanupBtrfs();
  for (const fn of cleanups) fn();
};
process.once('exit', cleanup);

const agent = new Agent({ keepAlive: true, maxSockets: 16 });
/** One request as dockerd sends it to the daemon at @sock; resolves to the parsed answer, rejects on a non-empty Err. */
const apiAt = (sock) => (path, body = {}) => {
  const payload = `${JSON.stringify(body)}\n`;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path, method: 'POST', agent, headers: { 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (answer.Err) reject(new Error(`${path}: ${answer.Err}`));
        else resolve(answer);
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
};
const api = apiAt(socketPath);

/**
 * A minimal keep-alive HTTP/1.1 client, one request at a time: about as cheap
 * per request as dockerd's Go client, where Node's http client adds ~0.1 ms
 * of its own (client-side, not the daemon's cost). Like any keep-alive
 * client, it opens a new connection when the server closed an idle one
 * (node:http servers do after 5 s).
 */
function leanClient(path = socketPath) {
  let sock;
  let buf = Buffer.alloc(0);
  let pending = null;
  const open = () => {
    buf = Buffer.alloc(0);
    sock = connect(path);
    sock.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const end = buf.indexOf('\r\n\r\n');
      if (!pending || end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/content-length: *(\d+)/i.exec(head)[1]);
      if (buf.length < end + 4 + length) return;
      const answer = JSON.parse(buf.subarray(end + 4, end + 4 + length).toString('utf8'));
      buf = buf.subarray(end + 4 + length);
      const p = pending;
      pending = null;
      if (answer.Err) p.reject(new Error(answer.Err));
      else p.resolve(answer);
    });
    sock.on('error', (err) => pending?.reject(err));
    sock.on('close', () => pending?.reject(new Error('the server closed the connection during a request')));
    return once(sock, 'connect');
  };
  return {
    ready: open(),
    async call(path, body = {}) {
      if (sock.destroyed || sock.readyState !== 'open') await open();
      const payload = `${JSON.stringify(body)}\n`;
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        // One write, as Go's client sends a small request: two would wake the server twice.
        sock.write(`POST ${path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
      });
    },
    close: () => sock.destroy(),
  };
}

/** Waits until the daemon @child answers on @call. */
async function started(call, child) {
  for (let i = 0; ; i++) {
    try {
      await call('/Plugin.Activate');
      return;
    } catch (err) {
      if (i > 200 || child.exitCode !== null) throw new Error(`the daemon did not start: ${err.message}`, { cause: err });
      await sleep(25);
    }
  }
}
await started(api, daemon);
/** The daemon's CPU time so far (user + system, all threads), ms. */
const daemonCpuMs = () => {
  const fields = readFileSync(`/proc/${daemon.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks (USER_HZ = 100)
};
const pct = (list, p) => [...list].sort((a, b) => a - b)[Math.min(list.length - 1, Math.floor((p / 100) * list.length))];
const results = [];
const verdict = (ok) => (ok ? 'PASS' : 'MISS');

// The floors of section 4: Node serving one request on a unix socket with
// node:http alone, and with what the daemon is built on (Koa, @koa/router,
// the addon), started now so that they settle while the daemon does.
const floorCode = {
  'node:http': `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.end('{"Err":""}')); }).listen(SOCK)`,
  'Koa + @koa/router + addon': `require(ADDON); const Koa = require('koa'); const { Router } = require('@koa/router'); const app = new Koa(); const r = new Router(); r.post('/Plugin.Activate', (ctx) => { ctx.type = 'json'; ctx.body = '{"Err":""}'; }); app.use(r.routes()); require('node:http').createServer(app.callback()).listen(SOCK)`,
};
const floors = [];
if (sections.has(4)) {
  const addonFile = [new URL('../build/Release/buttervolume.node', import.meta.url), new URL(`../prebuilds/${process.platform}-${process.arch}/buttervolume.node`, import.meta.url)]
    .map((u) => u.pathname)
    .find((f) => existsSync(f));
  for (const [name, code] of Object.entries(floorCode)) {
    const sock = join(runPath, `floor-${floors.length}.sock`);
    const child = spawn(process.execPath, ['-e', code.replace('SOCK', JSON.stringify(sock)).replace('ADDON', JSON.stringify(addonFile))], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: 'inherit',
    });
    children.push(child);
    for (let i = 0; ; i++) {
      try {
        await new Promise((resolve, reject) => {
          const req = request({ socketPath: sock, path: '/Plugin.Activate', method: 'POST' }, (res) => res.resume().on('end', resolve));
          req.on('error', reject);
          req.end('{}');
        });
        break;
      } catch (err) {
        if (i > 200) throw new Error(`the floor ${name} did not start: ${err.message}`, { cause: err });
        await sleep(25);
      }
    }
    floors.push([name, child]);
  }
}

// V8's memory reducer runs some 8 s after the last activity, sometimes only
// after 20 s: RSS is read once it settled (unchanged for 6 s, at most 40 s).
const SETTLE_MS = 10_000;
const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
async function settledRss(pid) {
  await sleep(SETTLE_MS);
  const reads = [rssOf(pid)];
  while (reads.length < 16 && !(reads.length >= 4 && reads.slice(-4).every((r) => Math.abs(r - reads.at(-1)) < 0.15))) {
    await sleep(2000);
    reads.push(rssOf(pid));
  }
  return reads.at(-1);
}
const [rssIdle, ...floorValues] = sections.has(4) ? await Promise.all([daemon.pid, ...floors.map(([, c]) => c.pid)].map(settledRss)) : [0];
const floorRss = floors.map(([name, child], i) => {
  child.kill('SIGKILL');
  return [name, floorValues[i]];
});

// ---- 1. List ------------------------------------------------------------------
if (sections.has(1)) {
  for (let i = 0; i < volumeCount; i++) await api('/VolumeDriver.Create', { Name: `vol${String(i).padStart(4, '0')}` });
  await btrfs.syncFilesystem(mnt);
  {
    const ours = [];
    const spawned = [];
    const ratios = [];
    const cpu = [];
    const listRounds = Math.max(2, Math.ceil(rounds / 2));
    // Warm, as a daemon that has served for a while (see --warmup): 200 untimed Lists.
    for (let k = 0; k < (warmupCycles > 0 ? 200 : 0); k++) await api('/VolumeDriver.List');
    for (let r = 0; r < listRounds; r++) {
      const mine = [];
      const cpu0 = daemonCpuMs();
      for (let k = 0; k < 20; k++) {
        const t0 = performance.now();
        const { Volumes } = await api('/VolumeDriver.List');
        mine.push(performance.now() - t0);
        if (Volumes.length !== volumeCount) throw new Error(`List returned ${Volumes.length} volumes`);
      }
      cpu.push((daemonCpuMs() - cpu0) / 20);
      // The original: one `btrfs subvolume show` per entry of VOLUMES_PATH.
      const t0 = performance.now();
      let found = 0;
      for (const name of readdirSync(volumesPath)) {
        if (name === 'metadata.db') continue;
        try {
          await run('btrfs', ['subvolume', 'show', join(volumesPath, name)]);
          found++;
        } catch {
          // not a subvolume
        }
      }
      const theirs = performance.now() - t0;
      if (found !== volumeCount) throw new Error(`btrfs subvolume show found ${found} volumes`);
      ours.push(median(mine));
      spawned.push(theirs);
      ratios.push(theirs / median(mine));
    }
    const ratio = median(ratios);
    const listMs = median(ours);
    console.log(`\n1. VolumeDriver.List, ${volumeCount} volumes, ms (median of ${listRounds} rounds of 20, after ${warmupCycles > 0 ? 200 : 0} untimed)`);
    console.log(`   daemon over its socket     ${fmt(listMs, 2)}   (target < 6 ms) ${verdict(listMs < 6)}; the daemon's CPU: ${median(cpu).toFixed(2)} ms per List`);
    console.log(`   btrfs subvolume show x${volumeCount} ${fmt(median(spawned), 0)}`);
    console.log(`   ratio: ${ratio.toFixed(0)}x   (target >= 100x) ${verdict(ratio >= 100)}`);
    results.push(['List ratio', ratio >= 100], ['List < 6 ms', listMs < 6]);
  }
  for (let i = 0; i < volumeCount; i++) await api('/VolumeDriver.Remove', { Name: `vol${String(i).padStart(4, '0')}` });
}

// ---- 2. Snapshot + Remove cycles ------------------------------------------------
if (sections.has(2)) {
  await api('/VolumeDriver.Create', { Name: 'bench' });
  const benchVol = join(volumesPath, 'bench');
  fillSmallFiles(benchVol, 1000);
  await btrfs.syncFilesystem(mnt);
  cdir = mkdtempSync(join(tmpdir(), 'bv-bench-c-'));
  const raw = compileC('raw-snapshot', cdir);
  const client = compileC('http-client', cdir);
  const rawDir = join(mnt, 'raw');
  await btrfs.createSubvolume(rawDir);
  {
    const lean = leanClient();
    await lean.ready;
    const cyclesWith = (call) => async () => {
      for (let i = 0; i < cycles; i++) {
        const { Snapshot } = await call('/VolumeDriver.Snapshot', { Name: 'bench' });
        await call('/VolumeDriver.Snapshot.Remove', { Name: Snapshot });
      }
    };
    /** The same cycles driven by bench/http-client.c, the lightest client, on the server at @sock. */
    const cyclesWithC = (sock) => async () => {
      await run(client, [sock, 'bench', String(cycles)]);
    };
    // The floor of any Node HTTP server here: node:http calling the two ioctls,
    // no Koa, no validation, no lock, no store.
    const bareSocket = join(runPath, 'bare.sock');
    const bareSource = `
const btrfs = await import(${JSON.stringify(dist('btrfs/index.js'))});
const { createServer } = await import('node:http');
let n = 0;
createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c)).on('end', async () => {
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    if (req.url === '/VolumeDriver.Snapshot') {
      const name = 'bare@' + n++;
      await btrfs.snapshot(${JSON.stringify(benchVol)}, ${JSON.stringify(snapshotsPath)} + '/' + name, { readonly: true });
      res.end(JSON.stringify({ Err: '', Snapshot: name }));
    } else {
      await btrfs.deleteSubvolume(${JSON.stringify(snapshotsPath)} + '/' + body.Name);
      res.end('{"Err":""}');
    }
  });
}).listen(${JSON.stringify(bareSocket)}, () => console.log('up'));`;
    const bare = spawn(process.execPath, ['--input-type=module', '-e', bareSource], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(bare);
    await once(bare.stdout, 'data');
    // The original's way, end to end: python3 (the one on PATH, as the
    // original ran in its plugin) serving HTTP on a unix socket with threads
    // (waitress is threaded), one shell-spawned btrfs command per request.
    const pySocket = join(runPath, 'original.sock');
    const pySource = `
import datetime, json, os, socketserver, subprocess, sys
from http.server import BaseHTTPRequestHandler
vol, snaps, sock = sys.argv[1], sys.argv[2], sys.argv[3]
class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def address_string(self): return 'unix'
    def log_message(self, *args): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get('Content-Length') or 0)) or b'{}')
        if self.path == '/VolumeDriver.Snapshot':
            name = body['Name'] + '@' + datetime.datetime.now().strftime('%Y-%m-%dT%H:%M:%S.%f')
            subprocess.run('btrfs subvolume snapshot -r "%s" "%s"' % (vol, os.path.join(snaps, name)), shell=True, check=True, capture_output=True)
            answer = {'Err': '', 'Snapshot': name}
        else:
            subprocess.run('btrfs subvolume delete "%s"' % os.path.join(snaps, body['Name']), shell=True, check=True, capture_output=True)
            answer = {'Err': ''}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
server = Server(sock, Handler)
print('up', flush=True)
server.serve_forever()
`;
    const original = spawn('python3', ['-c', pySource, benchVol, snapshotsPath, pySocket], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(original);
    await once(original.stdout, 'data');
    // Rows a, d and b' use the same C client: what differs between them is the server.
    const rows = {
      'a: daemon, C client': cyclesWithC(socketPath),
      "a': daemon, Node client": cyclesWith(lean.call),
      "a'': daemon, node:http client": cyclesWith(api),
      'd: bare node:http + ioctls': cyclesWithC(bareSocket),
      "b': original's architecture": cyclesWithC(pySocket),
      'b: spawn btrfs per request': () => spawnedCycles(benchVol, snapshotsPath, cycles),
      'c: raw ioctl loop (C)': async () => {
        await run(raw, [benchVol, rawDir, String(cycles)]);
      },
    };
    // The servers' warm-up (see the header), in chunks of --cycles as the rounds run them.
    const served = ['a:', "a':", "a'':", 'd:', "b':"];
    for (const [name, row] of Object.entries(rows).filter(([name]) => served.some((p) => name.startsWith(p)))) {
      for (let done = 0; done < warmupCycles; done += cycles) {
        await btrfs.waitForCleaner(mnt);
        await row();
      }
      if (warmupCycles > 0) console.error(`   warmed up: ${name}`);
    }
    const seconds = await interleavedRounds(rows, rounds, () => btrfs.waitForCleaner(mnt));
    const rates = Object.fromEntries(Object.entries(seconds).map(([k, list]) => [k, list.map((secs) => cycles / secs)]));
    console.log(`\n2. snapshot + remove cycles/s, ${cycles} cycles x ${rounds} rounds after ${warmupCycles} cycles of warm-up per HTTP row, volume of 1,000 files (median; min..max)`);
    for (const [name, list] of Object.entries(rates)) {
      console.log(`   ${name.padEnd(30)} ${fmt(median(list))}   (${Math.min(...list).toFixed(0)}..${Math.max(...list).toFixed(0)})`);
    }
    lean.close();
    bare.kill('SIGTERM');
    original.kill('SIGTERM');
    await Promise.all([once(bare, 'exit'), once(original, 'exit')]);
    const [ra, rl, rn, rd, ro, rb, rc] = Object.values(rates);
    const ab = perRoundRatio(ra, rb);
    const ac = perRoundRatio(ra, rc);
    console.log(`   ratio a/b: ${ab.toFixed(2)}x   (target >= 3x) ${verdict(ab >= 3)}`);
    console.log(`   ratio a/c: ${ac.toFixed(2)}x   (target >= 0.7x) ${verdict(ac >= 0.7)}`);
    const perRound = (x, y) => x.map((v, i) => (v / y[i]).toFixed(2)).join(' ');
    console.log(`   per round (in run order): a/b ${perRound(ra, rb)}; a/c ${perRound(ra, rc)}; d/c ${perRound(rd, rc)}`);
    console.log(`   with a Node client: a'/b ${perRoundRatio(rl, rb).toFixed(2)}x, a'/c ${perRoundRatio(rl, rc).toFixed(2)}x; with node:http's client: a''/b ${perRoundRatio(rn, rb).toFixed(2)}x, a''/c ${perRoundRatio(rn, rc).toFixed(2)}x`);
    console.log(`   against the original's architecture (b'): a/b' ${perRoundRatio(ra, ro).toFixed(2)}x`);
    console.log(`   the floor of a Node HTTP server: d/c ${perRoundRatio(rd, rc).toFixed(2)}x, d/b ${perRoundRatio(rd, rb).toFixed(2)}x; the daemon gets a/d ${perRoundRatio(ra, rd).toFixed(2)}x of it`);
    results.push(['Snapshot+Remove vs spawning', ab >= 3], ['Snapshot+Remove vs raw', ac >= 0.7]);
  }
}

// ---- 3. Mount latency under snapshot load ----------------------------------------
if (sections.has(3)) {
  await api('/VolumeDriver.Create', { Name: 'mounted' });
  for (let c = 0; c < 4; c++) {
    await api('/VolumeDriver.Create', { Name: `load${c}` });
    fillSmallFiles(join(volumesPath, `load${c}`), 200);
  }
  const mountLatencies = async (ms) => {
    const list = [];
    const end = performance.now() + ms;
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      await api('/VolumeDriver.Mount', { Name: 'mounted', ID: `c${i}` });
      list.push(performance.now() - t0);
      await api('/VolumeDriver.Unmount', { Name: 'mounted', ID: `c${i}` });
    }
    return list;
  };
  await btrfs.waitForCleaner(mnt);
  const idle = await mountLatencies(2000);
  let stop = false;
  let snapshots = 0;
  const clients = [0, 1, 2, 3].map(async (c) => {
    while (!stop) {
      await api('/VolumeDriver.Snapshot', { Name: `load${c}` });
      snapshots++;
    }
  });
  const t0 = performance.now();
  const loaded = await mountLatencies(loadSeconds * 1000);
  const secs = (performance.now() - t0) / 1000;
  const snapshotsDuringMounts = snapshots;
  // The floors, under the same load, one after the other: a request that
  // touches no file (the daemon's HTTP path and event loop), and what a
  // Mount must do to the filesystem (write its table to a new file and
  // rename it over the old one), in a process of its own.
  const capabilities = [];
  for (const end = performance.now() + loadSeconds * 1000; performance.now() < end; ) {
    const c0 = performance.now();
    await api('/VolumeDriver.Capabilities', {});
    capabilities.push(performance.now() - c0);
  }
  const renameCode = `
    const { writeFileSync, renameSync, rmSync } = require('node:fs');
    const dir = process.argv[1], end = performance.now() + Number(process.argv[2]), list = [];
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      writeFileSync(dir + '/.floor.tmp', JSON.stringify({ i, mounts: { mounted: { ['c' + i]: 1 } } }));
      renameSync(dir + '/.floor.tmp', dir + '/floor.json');
      list.push(performance.now() - t0);
    }
    rmSync(dir + '/floor.json', { force: true });
    process.stdout.write(JSON.stringify(list));`;
  const { stdout: renames } = await run(process.execPath, ['-e', renameCode, join(volumesPath, '.buttervolume'), String(loadSeconds * 1000)], { maxBuffer: 1 << 26 });
  const renameLatencies = JSON.parse(renames);
  stop = true;
  await Promise.all(clients);
  const p99 = pct(loaded, 99);
  console.log(`\n3. VolumeDriver.Mount latency, ms (${loaded.length} mounts in ${secs.toFixed(1)} s, while 4 clients took ${snapshotsDuringMounts} snapshots = ${(snapshotsDuringMounts / secs).toFixed(0)}/s)`);
  console.log(`   idle      p50 ${fmt(pct(idle, 50), 2)}   p99 ${fmt(pct(idle, 99), 2)}   max ${fmt(Math.max(...idle), 2)}`);
  console.log(`   loaded    p50 ${fmt(pct(loaded, 50), 2)}   p99 ${fmt(p99, 2)}   max ${fmt(Math.max(...loaded), 2)}`);
  console.log(`   floors under the same load, measured after it:`);
  console.log(`     Capabilities (no file touched)     p50 ${fmt(pct(capabilities, 50), 2)}   p99 ${fmt(pct(capabilities, 99), 2)}`);
  console.log(`     write + rename of a small file      p50 ${fmt(pct(renameLatencies, 50), 2)}   p99 ${fmt(pct(renameLatencies, 99), 2)}   (${renameLatencies.length} in a process of their own, on the same btrfs)`);
  console.log(`   p99 under load: ${p99.toFixed(1)} ms (target < 10 ms) ${verdict(p99 < 10)}`);
  results.push(['Mount p99 under load', p99 < 10]);
}

// ---- 4. RSS ------------------------------------------------------------------------
if (sections.has(4)) {
  if (!sections.has(3)) await api('/VolumeDriver.Create', { Name: 'mounted' });
  const mix = async (n) => {
    // What an engine sends most: Get, List, Mount/Unmount, Path, Capabilities.
    const calls = [
      () => api('/VolumeDriver.Get', { Name: 'mounted' }),
      () => api('/VolumeDriver.List', {}),
      () => api('/VolumeDriver.Mount', { Name: 'mounted', ID: 'rss' }),
      () => api('/VolumeDriver.Unmount', { Name: 'mounted', ID: 'rss' }),
      () => api('/VolumeDriver.Path', { Name: 'mounted' }),
      () => api('/VolumeDriver.Capabilities', {}),
    ];
    for (let i = 0; i < n; i++) await calls[i % calls.length]();
  };
  await mix(10_000);
  const after10k = await settledRss(daemon.pid);
  await mix(10_000);
  const after20k = await settledRss(daemon.pid);
  const flat = after20k - after10k < 5;
  console.log(`\n4. daemon RSS, MiB (each read once settled: unchanged for 6 s after ${SETTLE_MS / 1000} s idle)`);
  console.log(`   idle after start       ${fmt(rssIdle)}   (target <= 50) ${verdict(rssIdle <= 50)}`);
  for (const [name, rss] of floorRss) {
    console.log(`   floor, ${`${name}:`.padEnd(27)}${fmt(rss)}   (started like the daemon, one request, settled alike; the daemon ${rssIdle - rss >= 0 ? '+' : ''}${(rssIdle - rss).toFixed(1)})`);
  }
  console.log(`   after 10,000 requests  ${fmt(after10k)}`);
  console.log(`   after 20,000 requests  ${fmt(after20k)}   (flat: +${(after20k - after10k).toFixed(1)} MiB over the second 10,000) ${verdict(flat)}`);
  results.push(['RSS idle', rssIdle <= 50], ['RSS flat', flat]);
}

// ---- 5. QUOTAS=<kind> against off --------------------------------------------------
if (sections.has(5)) {
  const { quotaSection } = await import('./plugin-quotas.mjs');
  // Two daemons alike but for QUOTAS, each on a fresh filesystem; no SSH server (the first daemon has the port).
  const twins = [];
  for (const [name, env] of [['off', {}], [quotas, { BUTTERVOLUME_QUOTAS: quotas }]]) {
    const fs = scratchBtrfs(8);
    cleanups.push(fs.cleanup);
    const side = { name, mnt: fs.mnt, volumesPath: join(fs.mnt, 'volumes'), socket: join(runPath, 'plugins', `bench-${name}.sock`) };
    side.daemon = startDaemon(side.volumesPath, join(fs.mnt, 'snapshots'), side.socket, { SSH_PORT: '0', ...env });
    children.push(side.daemon);
    side.api = apiAt(side.socket);
    await started(side.api, side.daemon);
    twins.push(side);
  }
  results.push(...(await quotaSection({ kind: quotas, off: twins[0], on: twins[1], rounds, seconds: loadSeconds })));
  for (const side of twins) {
    side.daemon.kill('SIGTERM');
    await once(side.daemon, 'exit');
  }
}

daemon.kill('SIGTERM');
const [code] = await once(daemon, 'exit');
agent.destroy();
console.log(`\ndaemon stopped (exit ${code}); ${results.filter(([, ok]) => ok).length}/${results.length} targets met${results.some(([, ok]) => !ok) ? `; missed: ${results.filter(([, ok]) => !ok).map(([n]) => n).join(', ')}` : ''}`);
