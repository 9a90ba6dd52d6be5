#!/usr/bin/env node
// bench/handover: a service moved between the nodes of a real Docker Swarm
// (test/fixtures/swarm.ts: 2 dockerd in namespaces of their own, our daemon as
// the plugin "btrfs" on each), its volume 20,000 small files + 300 MiB
// (bench/dataset.mjs), 10 MiB changed (8 MiB of the big file, 512 small files)
// on the holder right before each move. Rows, interleaved round by round
// (order alternating), each a move node1 -> node2 or back:
//   local   Swarm's own floor: the same service on a plain `local` volume
//           (its data stays behind): `docker service update --constraint-rm
//           node.hostname==A --constraint-add node.hostname==B` -> the new
//           task running on B (the task's timestamp, the manager's clock).
//   ours    the same move of a service whose btrfs volume has
//           `replicas=node1,node2`: A's last Unmount snapshots and pushes the
//           change (incremental), B's first Mount takes it over; B's volume
//           is then checked to hold A's data (SHA-256 of the big file and a
//           changed small file). Bytes: what A's daemon logged for the push.
//   manual  the manual way with the same tools, without waiting for a human:
//           `docker service scale 0`, `buttervolume snapshot` on A,
//           `buttervolume receive A <volume>` and `buttervolume restore
//           <volume>` on B, `docker service update --replicas 1` with the
//           constraint moved -> the task running on B.
// Ratios per round against local (ours/local, manual/local: >1 means slower
// than Swarm's own move), medians reported; the first move of each service
// (ours: a full copy) is reported apart.
// Then the RPO on a hard kill: a service writing the time into its volume
// every 200 ms, its volume `rpo=1m,failover=auto` held by node2; 20 s after
// its rpo push, node2 is SIGKILLed (dockerd, containers, our daemon): the
// task runs on node1 (FAILOVER_AFTER=10 for the bench) on the state of that
// push; the RPO observed is the kill's time minus the time in the volume.
// usage: node bench/handover.mjs [--rounds N] [--skip-rpo]   (root; a few minutes)
import { buildSync } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { median } from './common.mjs';
import { makeFull, makeSmallChange } from './dataset.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'skip-rpo': { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);
if (process.getuid() !== 0) throw new Error('bench/handover needs root (namespaces, loop btrfs, dockerd)');
const started = Date.now();

/** The swarm fixture (TypeScript), bundled for this plain-Node script; its import.meta.url is its own. */
async function loadSwarmFixture() {
  const source = new URL('../test/fixtures/swarm.ts', import.meta.url);
  const dir = mkdtempSync(join(tmpdir(), 'bv-bench-handover-'));
  const outfile = join(dir, 'swarm.mjs');
  buildSync({
    entryPoints: [source.pathname],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    define: { 'import.meta.url': JSON.stringify(source.href) },
  });
  const mod = await import(pathToFileURL(outfile).href);
  rmSync(dir, { recursive: true, force: true });
  return mod;
}

// The fixture's teardowns (hosts, namespaces, dockerd...), last registered first, also on Ctrl-C.
const teardowns = [];
const host = { teardown: (fn) => teardowns.push(fn), comment: (...a) => console.log('#', ...a) };
async function teardown() {
  while (teardowns.length) {
    try {
      await teardowns.pop()();
    } catch (err) {
      console.error(`teardown: ${err.message}`);
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void teardown().then(() => process.exit(130)));

const fmt = (n, digits = 1) => n.toFixed(digits);
const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const other = (n) => (n === 'node1' ? 'node2' : 'node1');

async function main() {
  const { createSwarm } = await loadSwarmFixture();
  const swarm = await createSwarm(host, ['node1', 'node2'], {
    dispatcherHeartbeat: '1s',
    env: { BUTTERVOLUME_FAILOVER_AFTER: '10' },
    hosts: { btrfs: { size: 4 * 1024 ** 3 } },
  });
  console.log(`swarm of 2 formed in ${swarm.timings.totalMs} ms`);
  const replicas = swarm.nodes.map((n) => `${n.name}:${n.host.sshPort}`).join(',');
  const spec = (name, driverOpts) =>
    `type=volume,source=${name},target=/data${driverOpts === null ? '' : `,volume-driver=btrfs${driverOpts ? `,"volume-opt=${driverOpts}"` : ''}`}`;
  const flags = ['--restart-delay', '1s', '--constraint', 'node.hostname==node1'];
  await swarm.createService('local', [...flags, '--mount', spec('bench-local', null)]);
  await swarm.createService('ours', [...flags, '--mount', spec('bench-ours', `replicas=${replicas}`)]);
  await swarm.createService('manual', [...flags, '--mount', spec('bench-manual', '')]);
  const tasks = {};
  for (const s of ['local', 'ours', 'manual']) tasks[s] = await swarm.waitForTask(s, { node: 'node1' });
  const node = (name) => swarm.get(name);
  const volumePath = (n, v) => join(node(n).volumesPath, v);
  let t0 = Date.now();
  makeFull(volumePath('node1', 'bench-ours'));
  makeFull(volumePath('node1', 'bench-manual'));
  console.log(`data set written in both btrfs volumes on node1 (20,000 files + 300 MiB each) in ${Date.now() - t0} ms`);

  const where = { local: 'node1', ours: 'node1', manual: 'node1' };
  const moveByConstraint = async (service) => {
    const from = where[service];
    const to = other(from);
    const start = Date.now();
    await swarm.updateService(service, ['--constraint-rm', `node.hostname==${from}`, '--constraint-add', `node.hostname==${to}`]);
    const task = await swarm.waitForTask(service, { node: to, exclude: [tasks[service].id], timeoutMs: 180_000 });
    tasks[service] = task;
    where[service] = to;
    return task.stateSince - start;
  };
  let pushes = 0;
  const rows = {
    local: async () => ({ ms: await moveByConstraint('local') }),
    ours: async () => {
      const from = where.ours;
      const before = node(from).daemon.stderr().length;
      const ms = await moveByConstraint('ours');
      const log = node(from).daemon.stderr().slice(before);
      const m = /bench-ours: state \d+ is on \S+ \((\d+) bytes/.exec(log);
      pushes++;
      // Where the time went: the holder's Unmount (snapshot, push, answer) and the new node's Mount (ask, claim).
      const took = (n, what, text) => new RegExp(`POST /VolumeDriver\\.${what} \\{"Name":"bench-ours"[^\\n]*\\(([\\d.]+) ms\\)`).exec(text)?.[1] ?? '?';
      const detail = `Unmount on ${from} ${took(from, 'Unmount', log)} ms, Mount on ${where.ours} ${took(where.ours, 'Mount', node(where.ours).daemon.stderr().split('\n').slice(-40).join('\n'))} ms`;
      return { ms, bytes: m ? Number(m[1]) : NaN, detail };
    },
    manual: async () => {
      const from = where.manual;
      const to = other(from);
      const start = Date.now();
      await swarm.docker(['service', 'scale', '--detach', 'manual=0']);
      for (;;) {
        const running = (await swarm.tasks('manual')).filter((x) => x.state === 'running' || x.desiredState === 'running');
        if (running.length === 0) break;
        await sleep(50);
      }
      const steps = [`stopped ${Date.now() - start}`];
      let t = Date.now();
      const step = (what) => {
        steps.push(`${what} ${Date.now() - t}`);
        t = Date.now();
      };
      await node(from).cli(['snapshot', 'bench-manual']);
      step('snapshot');
      await node(to).cli(['receive', `${from}:${node(from).host.sshPort}`, 'bench-manual'], { timeoutMs: 300_000 });
      step('receive');
      await node(to).cli(['restore', 'bench-manual']);
      step('restore');
      await swarm.updateService('manual', ['--replicas', '1', '--constraint-rm', `node.hostname==${from}`, '--constraint-add', `node.hostname==${to}`]);
      const task = await swarm.waitForTask('manual', { node: to, exclude: [tasks.manual.id], timeoutMs: 180_000 });
      step('started');
      tasks.manual = task;
      where.manual = to;
      return { ms: task.stateSince - start, detail: `ms: ${steps.join(', ')}` };
    },
  };

  // The first move of each: ours and manual copy everything (nothing on node2 yet).
  const first = {};
  for (const name of ['local', 'ours', 'manual']) first[name] = await rows[name]();
  console.log(
    `first move (node2 holds nothing): local ${first.local.ms} ms, ours ${first.ours.ms} ms (${fmt(first.ours.bytes / 2 ** 20)} MiB sent), manual ${first.manual.ms} ms`,
  );

  const results = { local: [], ours: [], manual: [] };
  const bytes = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 ? ['local', 'ours', 'manual'] : ['manual', 'ours', 'local'];
    const line = [];
    for (const name of order) {
      let expect = null;
      if (name !== 'local') {
        const vol = `bench-${name}`;
        makeSmallChange(volumePath(where[name], vol), 100 + round);
        expect = sha(join(volumePath(where[name], vol), 'big.bin'));
      }
      const r = await rows[name]();
      if (expect !== null) {
        const got = sha(join(volumePath(where[name], `bench-${name}`), 'big.bin'));
        if (got !== expect) throw new Error(`${name}: after the move, ${where[name]}'s volume does not hold the data written before it`);
      }
      results[name].push(r.ms);
      if (name === 'ours') bytes.push(r.bytes);
      line.push(`${name} ${r.ms} ms${r.bytes !== undefined ? ` (${fmt(r.bytes / 2 ** 20)} MiB; ${r.detail})` : r.detail ? ` (${r.detail})` : ''}`);
    }
    console.log(`round ${round} (${where.local === 'node2' ? 'node1 -> node2' : 'node2 -> node1'}): ${line.join(', ')}`);
  }
  const ratio = (a, b) => median(results[a].map((v, i) => v / results[b][i]));
  console.log(
    `moves with 10 MiB changed, medians of ${rounds}: local ${median(results.local)} ms, ours ${median(results.ours)} ms, manual ${median(results.manual)} ms; ` +
      `ours/local ${fmt(ratio('ours', 'local'), 2)}x, manual/local ${fmt(ratio('manual', 'local'), 2)}x, manual/ours ${fmt(ratio('manual', 'ours'), 2)}x; ` +
      `bytes pushed by ours: ${bytes.map((b) => fmt(b / 2 ** 20)).join(', ')} MiB (the change: 10 MiB; the volume: ${fmt((20_000 * 4050 + 300 * 2 ** 20) / 2 ** 20, 0)} MiB)`,
  );
  if (pushes !== rounds + 1) throw new Error(`ours pushed ${pushes} times, expected ${rounds + 1}`);

  if (values['skip-rpo']) return;
  // RPO on a hard kill.
  await swarm.docker(['node', 'update', '--label-add', 'rpo=yes', 'node2']);
  const clock = ['sh', '-c', 'trap "exit 0" TERM; while true; do date +%s > /data/clock.tmp && mv /data/clock.tmp /data/clock; sleep 0.2; done & wait'];
  await swarm.createService('clock', ['--restart-delay', '1s', '--constraint', 'node.labels.rpo==yes', '--mount', spec('bench-rpo', `replicas=${replicas}",volume-opt=rpo=1m,"volume-opt=failover=auto`)], clock);
  await swarm.waitForTask('clock', { node: 'node2' });
  const node2 = node('node2');
  t0 = Date.now();
  while (!/bench-rpo: state 1 is on node1/.test(node2.daemon.stderr())) {
    if (Date.now() - t0 > 120_000) throw new Error('no rpo push within 120 s');
    await sleep(200);
  }
  console.log(`rpo push after ${Date.now() - t0} ms in use`);
  await sleep(20_000);
  await swarm.docker(['node', 'update', '--label-add', 'rpo=yes', 'node1']);
  const killedAt = Date.now();
  await node2.crash();
  const task = await swarm.waitForTask('clock', { node: 'node1', createdAfter: killedAt, timeoutMs: 120_000 });
  const inVolume = Number(readFileSync(join(volumePath('node1', 'bench-rpo'), 'clock'), 'utf8'));
  // The task on node1 overwrites the clock at once: the state it started from is the snapshot node1 took over.
  const restored = /bench-rpo: now state \d+ \((\S+)\)/.exec(node('node1').daemon.stderr())?.[1];
  if (!restored) throw new Error('node1 did not log the state it took over');
  const fromState = Number(readFileSync(join(node('node1').snapshotsPath, restored, 'clock'), 'utf8'));
  console.log(
    `hard kill of the holder (rpo=1m, failover=auto, FAILOVER_AFTER=10): the task ran on node1 ${task.stateSince - killedAt} ms later, ` +
      `on the state written ${fmt(killedAt / 1000 - fromState, 1)} s before the kill (RPO observed; the rpo bounds it to 60 s); the clock in its volume now: ${inVolume}`,
  );
}

try {
  await main();
} finally {
  await teardown();
  console.log(`bench/handover done in ${Math.round((Date.now() - started) / 1000)} s`);
}
