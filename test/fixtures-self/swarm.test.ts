// Proves test/fixtures/swarm.ts on this machine: a real Docker Swarm of 2 and
// of 3 nodes (each a dockerd in its own network, mount and UTS namespaces, with
// our daemon as the legacy volume plugin "btrfs") forms, moves a service with a
// `local` volume from node to node, runs a service whose volume is on our
// plugin, reschedules a task when its node dies, and leaves nothing behind:
// after a normal teardown, and after the test process was SIGKILLed (the next
// createHosts sweeps). Prints (t.comment) what a later bench compares against:
// the time to form a swarm, Swarm's own move time for a `local` volume, the
// memory and CPU of the nodes.
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSync } from 'esbuild';

import { createHosts, listNetns } from '../fixtures/hosts.js';
import { createSwarm, type Swarm, type SwarmNode, type SwarmTask } from '../fixtures/swarm.js';

const NODE = process.execPath;
const CRASH = fileURLToPath(new URL('./swarm-crash.ts', import.meta.url));

/** What a swarm made that must not outlive it. */
interface Made {
  netnses: string[];
  cgroups: string[];
  dirs: string[];
  mounts: string[];
  images: string[];
  pids: number[];
}

function made(swarm: Swarm, extraPids: number[] = []): Made {
  return {
    netnses: [swarm.hosts.switchNetns, ...swarm.nodes.map((n) => n.host.netns)],
    cgroups: swarm.nodes.map((n) => n.host.netns),
    dirs: swarm.nodes.map((n) => n.host.dir),
    mounts: swarm.nodes.map((n) => n.host.btrfs!.mnt),
    images: swarm.nodes.map((n) => n.host.btrfs!.image),
    pids: [...swarm.nodes.flatMap((n) => [n.dockerdPid, n.daemon.pid]), ...extraPids].filter(Boolean),
  };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** What of `m` still exists: namespaces, cgroups, processes (also any naming its directories), mounts, loop devices, files. */
function leftovers(m: Made): string[] {
  const left: string[] = [];
  const netnses = listNetns();
  for (const n of m.netnses) if (netnses.includes(n)) left.push(`netns ${n}`);
  for (const root of readdirSync('/sys/fs/cgroup')) {
    for (const cg of m.cgroups) if (existsSync(join('/sys/fs/cgroup', root, cg))) left.push(`cgroup ${root}/${cg}`);
  }
  for (const pid of m.pids) if (alive(pid)) left.push(`process ${pid}`);
  for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (m.dirs.some((d) => cmd.includes(`${d}/`)) && alive(Number(p))) left.push(`process ${p} ${cmd.replaceAll('\0', ' ').slice(0, 120)}`);
  }
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const d of m.dirs) if (mountinfo.split('\n').some((l) => (l.split(' ')[4] ?? '').startsWith(`${d}/`))) left.push(`mount under ${d}`);
  for (const image of m.images) if (execFileSync('losetup', ['-j', image], { encoding: 'utf8' }).trim()) left.push(`loop device on ${image}`);
  for (const d of m.dirs) if (existsSync(d)) left.push(`directory ${d}`);
  return left;
}

async function usage(t: Test, swarm: Swarm, label: string): Promise<void> {
  const before = swarm.nodes.map((n) => n.usage());
  const ms = 5000;
  await sleep(ms);
  const after = swarm.nodes.map((n) => n.usage());
  const rows = swarm.nodes.map((n, i) => {
    const u = after[i]!;
    const cpu = ((u.cpuSeconds - before[i]!.cpuSeconds) / (ms / 1000)) * 100;
    const top = Object.entries(u.byCommand)
      .sort((a, b) => b[1] - a[1])
      .map(([c, mib]) => `${c} ${mib}`)
      .join(', ');
    return { line: `${n.name}: ${u.rssMiB} MiB RSS (${top}), idle CPU ${cpu.toFixed(1)}% of one core`, rss: u.rssMiB, cpu };
  });
  const rss = rows.reduce((s, r) => s + r.rss, 0);
  const cpu = rows.reduce((s, r) => s + r.cpu, 0);
  t.comment(`${label}: ${rss.toFixed(0)} MiB RSS in all, idle CPU ${cpu.toFixed(1)}% of one core in all`);
  for (const r of rows) t.comment(`  ${r.line}`);
}

/** Polls `cond` every 100 ms for up to `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

const byTask = (swarm: Swarm, service: string) => swarm.tasks(service);

t.test('a 2-node swarm: forms, moves a service with a local volume, serves a btrfs volume', async (t) => {
  let m: Made | undefined;
  await t.test('the swarm', async (t) => {
    const t0 = performance.now();
    const swarm = await createSwarm(t, ['node1', 'node2']);
    const { nodesMs, formMs, warmMs, totalMs } = swarm.timings;
    t.comment(`2-node swarm ready in ${totalMs} ms (nodes: hosts, btrfs, daemons, dockerd, image ${nodesMs} ms; init + join + Ready ${formMs} ms; plugin warmed and reported ${warmMs} ms)`);
    t.ok(performance.now() - t0 < 60_000, 'formed within 60 s');
    const [node1, node2] = swarm.nodes as [SwarmNode, SwarmNode];

    const list = await swarm.nodeList();
    t.same(list.map((l) => `${l.hostname} ${l.status} ${l.availability}`).sort(), ['node1 Ready Active', 'node2 Ready Active'], 'docker node ls: both Ready');
    t.match((await swarm.docker(['node', 'ls'])).stdout, /node2\s+Ready/);
    t.equal(list.find((l) => l.hostname === 'node1')!.managerStatus, 'Leader', 'node1 is the manager');
    t.equal(node2.role, 'worker');

    // each node is its own machine
    const tmp = dirname(node1.host.dir);
    for (const n of swarm.nodes) {
      const mounts = (await n.exec('cat', ['/proc/self/mountinfo'])).stdout.split('\n').map((l) => l.split(' ')[4] ?? '');
      t.same(
        mounts.filter((p) => p.startsWith(`${tmp}/`) && !p.startsWith(`${n.host.dir}/`)),
        [],
        `${n.name}: no copy of another node's or test's mount under ${tmp} in its mount namespace`,
      );
      t.ok(mounts.includes(n.host.btrfs!.mnt), `${n.name}: its own btrfs is there`);
      t.equal((await n.exec('hostname')).stdout.trim(), n.name, `${n.name}: its hostname`);
      t.equal((await n.exec('ls', ['/run/docker/plugins'])).stdout, 'btrfs.sock\n', `${n.name}: its /run/docker/plugins holds our socket only`);
      t.match((await n.exec('getent', ['hosts', 'node1'])).stdout, swarm.get('node1').address, `${n.name}: node names resolve`);
      t.equal((await n.docker(['info', '--format', '{{.Name}} {{.Swarm.NodeAddr}} {{.Swarm.LocalNodeState}}'])).stdout.trim(), `${n.name} ${n.address} active`);
    }
    const ids = await Promise.all(swarm.nodes.map(async (n) => (await n.docker(['info', '--format', '{{.ID}}'])).stdout.trim()));
    t.not(ids[0], ids[1], 'engine IDs differ (each node its own /etc/docker/key.json)');

    // Swarm refuses a one-letter volume name ("too short"): every task is rejected, retried forever.
    await swarm.createService('short', ['--constraint', 'node.hostname==node1', '--mount', 'type=volume,source=v,target=/data']);
    const rejected = await swarm.waitForTask('short', { state: 'rejected', timeoutMs: 20_000 });
    t.match(rejected.err, /volume name is too short/, 'a one-letter volume name is rejected by Swarm');
    await swarm.removeService('short');

    // Swarm's own move of a service with a `local` volume: the floor. Its command ends at once on SIGTERM
    // (a bare `sleep` as PID 1 ignores it: each stop would wait the 10 s grace period, measured below).
    const onTerm = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
    await swarm.createService('s', ['--constraint', 'node.hostname==node1', '--mount', 'type=volume,source=vol,target=/data'], onTerm);
    const first = await swarm.waitForTask('s', { node: 'node1' });
    t.ok(first.containerId, 'the task runs on node1, in a container');
    await swarm.exec('s', ['sh', '-c', 'echo one > /data/f']);
    t.match((await node1.docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'])).stdout, /^local vol$/m, 'node1 made the local volume');
    /** Moves `service` from `from` to `to`; how long until the old task was shut down and the new one ran (ms after the update). */
    const move = async (service: string, from: string, to: string, current: SwarmTask) => {
      const t1 = Date.now();
      await swarm.updateService(service, ['--constraint-rm', `node.hostname==${from}`, '--constraint-add', `node.hostname==${to}`]);
      const next = await swarm.waitForTask(service, { node: to, exclude: [current.id], timeoutMs: 60_000 });
      const old = (await swarm.tasks(service)).find((x) => x.id === current.id)!;
      return { next, text: `${next.stateSince - t1} ms (old task ${old.state} at ${old.stateSince - t1} ms)` };
    };
    const moves: string[] = [];
    let current = first;
    for (const [from, to] of [['node1', 'node2'], ['node2', 'node1'], ['node1', 'node2']] as const) {
      const m = await move('s', from, to, current);
      moves.push(m.text);
      current = m.next;
    }
    t.comment(`Swarm's own move of a service with a local volume (service update -> new task running, from the tasks' timestamps): ${moves.join('; ')}`);
    t.equal(current.node, 'node2', 'the service moved to node2 (and back, and again)');
    const old = (await byTask(swarm, 's')).find((x) => x.id === first.id)!;
    t.equal(old.state, 'shutdown', 'the first task was shut down');
    t.equal((await node1.docker(['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=s'])).stdout, '', 'no container of it left on node1');
    t.equal((await swarm.exec('s', ['sh', '-c', 'cat /data/f 2>/dev/null || echo missing'])).stdout, 'missing\n', 'a local volume does not follow: node2 has a new, empty one');
    await swarm.createService('plain', ['--constraint', 'node.hostname==node1'], ['sleep', '3600']);
    const plain = await move('plain', 'node1', 'node2', await swarm.waitForTask('plain', { node: 'node1' }));
    t.comment(`the same move of a bare \`sleep 3600\` (ignores SIGTERM as PID 1: stopped after the 10 s grace period): ${plain.text}`);
    await swarm.removeService('plain');

    // a service whose volume is on our plugin
    const since = Date.now();
    await swarm.createService('b', ['--constraint', 'node.hostname==node2', '--mount', 'type=volume,source=bv,target=/data,volume-driver=btrfs'], ['sh', '-c', 'echo from-task > /data/f && sleep 3600']);
    const bt = await swarm.waitForTask('b', { node: 'node2' });
    t.comment(`a service with a btrfs volume: running ${bt.stateSince - since} ms after service create`);
    await until('the task to write its file', () => existsSync(join(node2.volumesPath, 'bv', 'f')));
    t.equal(readFileSync(join(node2.volumesPath, 'bv', 'f'), 'utf8'), 'from-task\n', "the task's /data is node2's btrfs subvolume");
    const listed = await node2.daemon.call('/VolumeDriver.List', {});
    t.ok(
      (listed.body.Volumes as { Name: string }[]).some((v) => v.Name === 'bv'),
      'our daemon on node2 lists the volume',
    );
    t.match(node2.daemon.log(), /POST \/VolumeDriver\.Create .*"bv"/, 'node2 daemon logged the Create');
    t.match(node2.daemon.log(), /POST \/VolumeDriver\.Mount .*"bv"/, 'node2 daemon logged the Mount');
    t.notMatch(node1.daemon.log(), /VolumeDriver\.Create .*"bv"/, 'node1 daemon got no Create for it');
    t.equal((await swarm.exec('b', ['cat', '/data/f'])).stdout, 'from-task\n');

    // the daemons are replication peers: node2 sends a snapshot of it to node1 over SSH
    const snap = (await node2.cli(['snapshot', 'bv'])).stdout.trim();
    await node2.cli(['send', `node1:${node1.host.sshPort}`, snap]);
    t.equal(readFileSync(join(node1.snapshotsPath, snap, 'f'), 'utf8'), 'from-task\n', 'node1 received the snapshot from node2 (keys exchanged, names resolve)');
    t.match(readFileSync(join(node2.host.sshPath, 'known_hosts'), 'utf8'), /^\[node1\]:\d+ ssh-ed25519 /, 'first contact recorded the host key');

    await usage(t, swarm, '2 nodes, 2 services running');
    await swarm.removeService('b');
    t.match(node2.daemon.log(), /POST \/VolumeDriver\.Unmount .*"bv"/, 'removing the service unmounted the volume');
    for (const n of swarm.nodes) t.notMatch(n.dockerdLog(100_000), /pulling image|registry-1\.docker\.io/, `${n.name}: dockerd never tried a registry`);
    m = made(swarm, [Number((await node2.docker(['inspect', '--format', '{{.State.Pid}}', current.containerId])).stdout.trim())]);
    const t3 = performance.now();
    await swarm.cleanup();
    t.comment(`teardown (a service left running) took ${Math.round(performance.now() - t3)} ms: ${JSON.stringify(swarm.teardownTimings)}`);
  });
  t.same(leftovers(m!), [], 'after teardown: no namespace, cgroup, process, mount, loop device or directory is left');
});

t.test('a 3-node swarm (3 managers): forms, and reschedules a task when its node dies', async (t) => {
  let m: Made | undefined;
  await t.test('the swarm', async (t) => {
    const swarm = await createSwarm(t, ['node1', 'node2', 'node3'], { managers: 3, dispatcherHeartbeat: '1s' });
    const { nodesMs, formMs, warmMs, totalMs } = swarm.timings;
    t.comment(`3-node swarm (3 managers) ready in ${totalMs} ms (nodes ${nodesMs} ms; init + joins + Ready ${formMs} ms; plugin ${warmMs} ms)`);
    const list = await swarm.nodeList();
    t.same(list.map((l) => `${l.hostname} ${l.status}`).sort(), ['node1 Ready', 'node2 Ready', 'node3 Ready']);
    t.same(list.map((l) => l.managerStatus).sort(), ['Leader', 'Reachable', 'Reachable'], 'three managers');
    await usage(t, swarm, '3 nodes, idle');

    await swarm.createService('r', ['--constraint', 'node.hostname!=node1', '--mount', 'type=volume,source=rv,target=/data,volume-driver=btrfs']);
    const first = await swarm.waitForTask('r');
    const victim = swarm.get(first.node);
    const other = first.node === 'node2' ? 'node3' : 'node2';
    t.comment(`the task runs on ${victim.name}`);
    await usage(t, swarm, '3 nodes, 1 service running');
    const t1 = Date.now();
    await victim.crash();
    await until(`${victim.name} to be Down`, async () => (await swarm.nodeList()).some((l) => l.hostname === victim.name && l.status === 'Down'), 60_000);
    const downMs = Date.now() - t1;
    const next = await swarm.waitForTask('r', { node: other, exclude: [first.id], timeoutMs: 60_000 });
    t.comment(`node loss (everything of ${victim.name} SIGKILLed, dispatcher heartbeat 1 s): Down after ~${downMs} ms, task running on ${other} ${next.stateSince - t1} ms after the crash`);
    t.match(swarm.get(other).daemon.log(), /POST \/VolumeDriver\.Mount .*"rv"/, `${other}'s daemon mounted the volume`);

    const t2 = Date.now();
    await victim.boot();
    await until(`${victim.name} to be Ready again`, async () => (await swarm.nodeList()).some((l) => l.hostname === victim.name && l.status === 'Ready'), 60_000);
    const readyMs = Date.now() - t2;
    await swarm.waitForPlugin([victim.name], 60_000);
    t.comment(`${victim.name} booted: Ready after ${readyMs} ms, the manager sees its btrfs plugin after ${Date.now() - t2} ms`);
    t.pass(`${victim.name} came back (boot: daemon and dockerd started again)`);
    m = made(swarm);
    const t3 = performance.now();
    await swarm.cleanup();
    t.comment(`teardown of 3 nodes took ${Math.round(performance.now() - t3)} ms: ${JSON.stringify(swarm.teardownTimings)}`);
  });
  t.same(leftovers(m!), [], 'after teardown: nothing is left');
});

t.test('a swarm that does not form: a clear error within its bound, nothing left', async (t) => {
  let m: Made | undefined;
  await t.test('the failure', async (t) => {
    const t0 = performance.now();
    const failed = createSwarm(t, ['node1', 'node2'], {
      readyTimeoutMs: 8000,
      beforeJoin: (nodes) => {
        m = {
          netnses: nodes.map((n) => n.host.netns),
          cgroups: nodes.map((n) => n.host.netns),
          dirs: nodes.map((n) => n.host.dir),
          mounts: nodes.map((n) => n.host.btrfs!.mnt),
          images: nodes.map((n) => n.host.btrfs!.image),
          pids: nodes.flatMap((n) => [n.dockerdPid, n.daemon.pid]),
        };
        nodes[1]!.host.linkDown(); // node2 cannot reach the manager
      },
    });
    const err = (await failed.then(
      () => new Error('formed'),
      (e: Error) => e,
    )) as Error;
    const ms = Math.round(performance.now() - t0);
    t.match(err.message, /^the swarm of node1, node2 did not form \(\d+ ms, bound 8000 ms\): docker swarm join .* on node2 did not finish/, 'the error says what did not form, and which step');
    t.match(err.message, /--- node2 dockerd log:\n.*\S/, "it carries the dockerd logs' tail");
    t.match(err.message, /docker node ls on node1:\nID .*\n.* node1 +Ready/, "and what the manager sees (node2 never joined)");
    t.ok(ms < 30_000, `it failed within its bound plus start-up and teardown (${ms} ms)`);
  });
  t.same(leftovers(m!), [], 'the teardown after the failure left nothing');
});

t.test('a killed test process: the next createHosts removes its swarm', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bv-swarm-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(dir, 'node_modules'));
  const bundle = join(dir, 'swarm-crash.mjs');
  // import.meta.url is only read by daemon-client.ts (BIN, relative to it): keep it pointing at the repository.
  const metaUrl = new URL('../fixtures/daemon-client.ts', import.meta.url).href;
  buildSync({
    entryPoints: [CRASH],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    define: { 'import.meta.url': JSON.stringify(metaUrl) },
  });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && k !== 'NODE_OPTIONS'));
  const p = spawn(NODE, [bundle], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise((resolve) => p.once('close', resolve));
  t.teardown(() => {
    if (p.exitCode === null) p.kill('SIGKILL');
  });
  let report: Made | undefined;
  await until('the child to report its swarm', () => {
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (line) report = JSON.parse(line);
    if (!report && p.exitCode !== null) throw new Error(`swarm-crash exited ${p.exitCode}:\n${out}\n${err}`);
    return report !== undefined;
  }, 90_000);
  p.kill('SIGKILL');
  await exited;
  const left = leftovers(report!);
  t.ok(left.some((l) => l.startsWith('process')) && left.some((l) => l.startsWith('cgroup')), 'a SIGKILLed test process leaves its swarm running (dockerd, daemon, container)...');
  createHosts(t, ['sweeper'], { btrfs: false });
  t.same(leftovers(report!), [], '...until the next createHosts, which removes it (container by its cgroup, mounts, directories)');
});
