#!/usr/bin/env node
// bench/cli-snapshot: `buttervolume snapshot v` end to end (process start to
// exit), side by side in one run with:
//   (b) the original's way, reconstructed without its code: the `python3`
//       on PATH starting with the modules its CLI imports (argparse, json,
//       logging, csv, requests - through requests_unixsocket - socket), then
//       one spawned `btrfs subvolume snapshot -r` (what its daemon runs per
//       request; the HTTP round trip between the two is left out, in its
//       favour)
//   (c) `node -e 0`: Node's own start-up
//   (d) `buttervolume --version`: our CLI without the store (diagnostic)
//   (f) `node` loading the addon, (g) `node` loading the addon and taking the
//       same snapshot with it (the bare ioctl, its transaction commit
//       included): the floor of any Node CLI that takes the snapshot
// Rows are interleaved in short rounds (order alternating); the snapshots a
// round made are deleted and the filesystem settles before the next round.
// Figures: median ms per call, and the median of per-round ratios.
// NODE_EXTRA_CA_CERTS is removed from the environment of every row: it makes
// each Node start-up parse a whole CA bundle (about +50 ms on these machines)
// and buttervolume never uses TLS; when it is set, row (e) shows our command
// with it, for the record.
// usage: node bench/cli-snapshot.mjs [--calls N] [--rounds R]
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

import * as btrfs from '../dist/btrfs/index.js';
import { loadBinding } from '../dist/btrfs/binding.js';
import { fillSmallFiles, fmt, interleavedRounds, median, perRoundRatio, scratchBtrfs } from './common.mjs';

const run = promisify(execFile);
const { values } = parseArgs({ options: { calls: { type: 'string', default: '10' }, rounds: { type: 'string', default: '10' } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const bin = fileURLToPath(new URL('../bin/buttervolume.cjs', import.meta.url));

const { mnt, cleanup } = scratchBtrfs(2);
const volumes = join(mnt, 'volumes');
const snapshots = join(mnt, 'snapshots');
mkdirSync(volumes);
mkdirSync(snapshots);
const vol = join(volumes, 'v');
await btrfs.createSubvolume(vol);
fillSmallFiles(vol, 1000);
await btrfs.syncFilesystem(mnt);

const { NODE_EXTRA_CA_CERTS: extraCa, ...clean } = process.env;
const pyModules = ['argparse', 'json', 'logging', 'csv', 'socket', 'urllib.request'];
try {
  await run('python3', ['-c', 'import requests']);
  pyModules.push('requests');
} catch {
  console.log('note: python3 has no requests module: the original\'s start-up is underestimated');
}
const env = {
  ...clean,
  BUTTERVOLUME_CONFIG: join(mnt, 'no-config.ini'),
  BUTTERVOLUME_VOLUMES_PATH: volumes,
  BUTTERVOLUME_SNAPSHOTS_PATH: snapshots,
  BUTTERVOLUME_RUNPATH: join(mnt, 'run'),
  BUTTERVOLUME_SCHEDULE: join(mnt, 'schedule.csv'),
};
let n = 0;
// The addon file the CLI loads (binding.ts's order), for the floors.
const addonFile = (() => {
  const tried = [new URL('../build/Release/buttervolume.node', import.meta.url), new URL(`../prebuilds/${process.platform}-${process.arch}/buttervolume.node`, import.meta.url)];
  return tried.map((u) => fileURLToPath(u)).find((f) => existsSync(f));
})();
loadBinding(addonFile); // it loads
const floorCode = (dest) =>
  `const b = require(${JSON.stringify(addonFile)}); b.setErrorClasses({ BtrfsError: Error, SendStreamError: Error });` +
  `b.snapshot(${JSON.stringify(vol)}, ${JSON.stringify(dest)}, true).then(() => require('node:fs').writeSync(1, 'ok\\n'))`;
const rows = {
  'a: buttervolume snapshot v': async () => {
    const { stdout } = await run(process.execPath, [bin, 'snapshot', 'v'], { env });
    if (!stdout.startsWith('v@')) throw new Error(`unexpected output ${JSON.stringify(stdout)}`);
  },
  'b: python3 + btrfs snapshot': async () => {
    await run('python3', ['-c', `import ${pyModules.join(', ')}`], { env: clean });
    await run('btrfs', ['subvolume', 'snapshot', '-r', vol, join(snapshots, `v@py-${n++}`)]);
  },
  'c: node -e 0': async () => {
    await run(process.execPath, ['-e', '0'], { env: clean });
  },
  'd: buttervolume --version': async () => {
    await run(process.execPath, [bin, '--version'], { env });
  },
  'f: node loading the addon': async () => {
    await run(process.execPath, ['-e', `require(${JSON.stringify(addonFile)})`], { env: clean });
  },
  'g: node + addon + the ioctl': async () => {
    const { stdout } = await run(process.execPath, ['-e', floorCode(join(snapshots, `v@floor-${n++}`))], { env: clean });
    if (stdout !== 'ok\n') throw new Error(`the floor's snapshot failed: ${stdout}`);
  },
};
if (extraCa !== undefined) {
  rows['e: a, NODE_EXTRA_CA_CERTS set'] = async () => {
    await run(process.execPath, [bin, 'snapshot', 'v'], { env: { ...env, NODE_EXTRA_CA_CERTS: extraCa } });
  };
}

let times;
try {
  const repeated = (call) => async () => {
    for (let i = 0; i < calls; i++) await call();
  };
  const settle = async () => {
    for (const s of readdirSync(snapshots)) await btrfs.deleteSubvolume(join(snapshots, s));
    await btrfs.waitForCleaner(mnt);
  };
  const repeatedRows = Object.fromEntries(Object.entries(rows).map(([k, call]) => [k, repeated(call)]));
  const seconds = await interleavedRounds(repeatedRows, rounds, settle);
  times = Object.fromEntries(Object.entries(seconds).map(([k, list]) => [k, list.map((secs) => (secs * 1000) / calls)]));
} finally {
  cleanup();
}

console.log(`ms per call, ${calls} calls x ${rounds} rounds (median; min..max of round means); python3 imports ${pyModules.join(', ')}`);
for (const [name, list] of Object.entries(times)) {
  console.log(`${name.padEnd(30)} ${fmt(median(list))}   (${Math.min(...list).toFixed(1)}..${Math.max(...list).toFixed(1)})`);
}
const { 'a: buttervolume snapshot v': a, 'b: python3 + btrfs snapshot': b, 'c: node -e 0': c, 'd: buttervolume --version': d, 'f: node loading the addon': f, 'g: node + addon + the ioctl': g } = times;
const perRoundDiff = (x, y) => median(x.map((v, i) => v - y[i]));
console.log(`ratio b/a (original / ours): ${perRoundRatio(b, a).toFixed(2)}x   (median of per-round ratios; target >= 3x)`);
console.log(`a: ${median(a).toFixed(1)} ms (target < 35 ms${median(a) < 35 ? ': met' : `; the floor g: ${median(g).toFixed(1)} ms`})`);
console.log(`above node -e 0 (per round): a-c ${perRoundDiff(a, c).toFixed(1)} ms, d-c ${perRoundDiff(d, c).toFixed(1)} ms (the CLI alone), f-c ${perRoundDiff(f, c).toFixed(1)} ms (the addon), g-c ${perRoundDiff(g, c).toFixed(1)} ms (addon + ioctl)`);
console.log(`ours above the floor of a Node CLI taking the snapshot, a-g: ${perRoundDiff(a, g).toFixed(1)} ms`);
