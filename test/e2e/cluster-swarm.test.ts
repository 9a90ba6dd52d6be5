// A volume follows its service in a real Docker Swarm (test/fixtures/swarm.ts:
// each node a dockerd with our daemon as its plugin "btrfs", in namespaces of
// its own). Swarm schedules; the data must be there when the task starts:
// a move by constraint (and back, incrementally), a drained node, three nodes
// with one down, a split brain refused with both copies kept, a holder cut off
// (refused, then `buttervolume failover`), a holder killed outright
// (failover=auto from the state of its last rpo push), and a stack file's
// driver_opts. Data is compared by content, from inside the tasks.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';

import { createSwarm, type Swarm, type SwarmNode, type SwarmTask } from '../fixtures/swarm.js';

/** Peer specs of every node (each has its own SSH port). */
const replicasOf = (swarm: Swarm) => swarm.nodes.map((n) => `${n.name}:${n.host.sshPort}`).join(',');

/** A --mount spec of a btrfs volume with driver options (CSV: the replicas value is quoted, it has commas). */
function mountSpec(swarm: Swarm, name: string, opts: Record<string, string> = {}): string {
  const extra = Object.entries(opts).map(([k, v]) => `,volume-opt=${k}=${v}`).join('');
  return `type=volume,source=${name},target=/data,volume-driver=btrfs,"volume-opt=replicas=${replicasOf(swarm)}"${extra}`;
}

/** Writes a volume's worth of data from inside the task: 150 small files and 4 MiB of random bytes. */
async function fill(swarm: Swarm, service: string): Promise<void> {
  await swarm.exec(service, ['sh', '-c', 'mkdir -p /data/small && for i in $(seq 1 150); do echo "file $i $RANDOM" > /data/small/$i; done; head -c 4194304 /dev/urandom > /data/big; sync']);
}

/** What the task sees in /data: every file's SHA-256, sorted by path. */
async function digest(swarm: Swarm, service: string): Promise<string> {
  const r = await swarm.exec(service, ['sh', '-c', 'cd /data && find . -type f | sort | xargs sha256sum']);
  return r.stdout;
}

async function write(swarm: Swarm, service: string, file: string, text: string, node?: string): Promise<void> {
  await swarm.exec(service, ['sh', '-c', `echo '${text}' > /data/${file} && sync`], { node });
}

/** /data/<file> in the service's running task (the one on `node`: a node cut off still shows its task running). */
async function read(swarm: Swarm, service: string, file: string, node?: string): Promise<string> {
  return (await swarm.exec(service, ['cat', `/data/${file}`], { node })).stdout.trim();
}

/** Moves `service` to `to` by constraint; the new task once running, and how long that took (service update -> running, Swarm's clock). */
async function moveTo(swarm: Swarm, service: string, from: string, to: string, current: SwarmTask, timeoutMs = 60_000) {
  const t0 = Date.now();
  await swarm.updateService(service, ['--constraint-rm', `node.hostname==${from}`, '--constraint-add', `node.hostname==${to}`]);
  const next = await swarm.waitForTask(service, { node: to, exclude: [current.id], timeoutMs });
  return { task: next, ms: next.stateSince - t0 };
}

/** Polls `cond` every 200 ms for up to `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Bytes of the push of `state` logged by a node ("db: state 2 is on node1:2201 (123 bytes, from ...)"). */
function pushedBytes(node: SwarmNode, volume: string, state: number): number | null {
  const m = new RegExp(`${volume}: state ${state} is on \\S+ \\((\\d+) bytes`).exec(node.daemon.stderr());
  return m ? Number(m[1]) : null;
}

const SERVICE_FLAGS = ['--restart-delay', '1s', '--restart-max-attempts', '0'];

t.test('a move by constraint carries the data; the move back is incremental; a drained node hands it over', async (t) => {
  const swarm = await createSwarm(t, ['node1', 'node2'], { env: { BUTTERVOLUME_HANDOVER_TIMEOUT: '10' } });
  const [node1, node2] = swarm.nodes as [SwarmNode, SwarmNode];
  await swarm.createService('db', [...SERVICE_FLAGS, '--constraint', 'node.hostname==node1', '--mount', mountSpec(swarm, 'db')]);
  const first = await swarm.waitForTask('db', { node: 'node1' });
  await fill(swarm, 'db');
  const written = await digest(swarm, 'db');
  t.equal(written.split('\n').filter(Boolean).length, 151, 'node1 wrote 151 files');

  const there = await moveTo(swarm, 'db', 'node1', 'node2', first);
  t.comment(`moved node1 -> node2 with its data (4.6 MiB, 151 files): task running ${there.ms} ms after the service update`);
  t.equal(await digest(swarm, 'db'), written, 'on node2 the task sees every file node1 wrote, byte for byte');
  t.match(node1.daemon.stderr(), /db: state 1 is on node2/, "node1's last Unmount pushed state 1");
  t.match(node2.daemon.stderr(), /db: now state 1/, 'node2 took state 1 before the Mount answered');

  await write(swarm, 'db', 'small/7', 'changed on node2');
  const back = await moveTo(swarm, 'db', 'node2', 'node1', there.task);
  t.comment(`moved back node2 -> node1: task running ${back.ms} ms after the service update`);
  t.equal(await read(swarm, 'db', 'small/7'), 'changed on node2', 'node1 sees what node2 wrote');
  const bytes = pushedBytes(node2, 'db', 2);
  t.ok(bytes !== null && bytes < 200_000, `the move back sent ${bytes} bytes, incrementally (the volume is 4.6 MiB)`);
  const after = await digest(swarm, 'db');
  t.equal(after.split('\n').filter(Boolean).length, 151, 'still 151 files');

  // a drained node: Swarm moves the task, the data follows (a placement change alone leaves a running task where it is)
  await swarm.updateService('db', ['--constraint-rm', 'node.hostname==node1']);
  const unconstrained = await swarm.waitForTask('db');
  const holder = unconstrained.node;
  await write(swarm, 'db', 'drain', `written on ${holder}`);
  const other = holder === 'node1' ? 'node2' : 'node1';
  const t0 = Date.now();
  await swarm.docker(['node', 'update', '--availability', 'drain', holder]);
  const drained = await swarm.waitForTask('db', { node: other, exclude: [unconstrained.id] });
  t.comment(`${holder} drained: the task ran on ${other} ${drained.stateSince - t0} ms later`);
  t.equal(await read(swarm, 'db', 'drain'), `written on ${holder}`, `after draining ${holder}, ${other} has what was written there`);
  await swarm.docker(['node', 'update', '--availability', 'active', holder]);

  const get = await swarm.get(other).daemon.call('/VolumeDriver.Get', { Name: 'db' });
  t.match((get.body.Volume as { Status: unknown }).Status, { State: 'in-sync', Holder: other }, 'Get: the holder, in sync');
  await swarm.removeService('db');
});

t.test('three nodes, one of them down: the move goes on, the node gets the state once it is back', async (t) => {
  const swarm = await createSwarm(t, ['node1', 'node2', 'node3'], { dispatcherHeartbeat: '1s' });
  const [node1, , node3] = swarm.nodes as [SwarmNode, SwarmNode, SwarmNode];
  await swarm.createService('app', [...SERVICE_FLAGS, '--constraint', 'node.hostname==node1', '--mount', mountSpec(swarm, 'app')]);
  const first = await swarm.waitForTask('app', { node: 'node1' });
  await write(swarm, 'app', 'f', 'one');
  await node3.crash();
  await until('node3 Down', async () => (await swarm.nodeList()).some((n) => n.hostname === 'node3' && n.status === 'Down'));
  const moved = await moveTo(swarm, 'app', 'node1', 'node2', first);
  t.comment(`node3 down: moved node1 -> node2 in ${moved.ms} ms`);
  t.equal(await read(swarm, 'app', 'f'), 'one', 'node2 has the data, node3 being down');
  t.match(node1.daemon.stderr(), /app: state 1 could not be pushed to node3/, 'node1 noted node3 was not reached');
  await node3.boot();
  await until('node1 to push state 1 to node3 once it is back', () => /app: state 1 is on node3/.test(node1.daemon.stderr()), 60_000);
  t.pass('node3, back, received state 1 (a retry of the push)');
  await swarm.removeService('app');
});

t.test('a split brain is refused with both copies kept; restore chooses, and the task starts', async (t) => {
  const swarm = await createSwarm(t, ['node1', 'node2'], { env: { BUTTERVOLUME_HANDOVER_TIMEOUT: '5' } });
  const [node1] = swarm.nodes as [SwarmNode, SwarmNode];
  await swarm.createService('cms', [...SERVICE_FLAGS, '--constraint', 'node.hostname==node1', '--mount', mountSpec(swarm, 'cms')]);
  const first = await swarm.waitForTask('cms', { node: 'node1' });
  await write(swarm, 'cms', 'f', 'one');
  await moveTo(swarm, 'cms', 'node1', 'node2', first);
  await write(swarm, 'cms', 'f', 'two, on node2');
  // meanwhile someone writes into node1's copy without Docker
  writeFileSync(join(node1.volumesPath, 'cms', 'f'), 'two, on node1\n');
  const t0 = Date.now();
  await swarm.updateService('cms', ['--constraint-rm', 'node.hostname==node2', '--constraint-add', 'node.hostname==node1']);
  // A Mount refused fails the task's start (state failed); Swarm tries again every second (--restart-delay 1s).
  const rejected = await swarm.waitForTask('cms', { node: 'node1', state: 'failed', createdAfter: t0 });
  t.match(rejected.err, /cms diverged: it changed on node1 since state 1, and node2 made state 2/, `the task is rejected: ${rejected.err.slice(0, 200)}`);
  const names = /Both are kept here: (\S+) \(this node's\) and (\S+) \(node2's\)/.exec(rejected.err);
  t.ok(names, 'the message names both snapshots');
  const snaps = (await node1.cli(['snapshots', 'cms'])).stdout.split('\n');
  t.ok(names && snaps.includes(names[1]!) && snaps.includes(names[2]!), 'both are snapshots on node1');
  await until('two more tries of the task', async () => (await swarm.tasks('cms')).filter((x) => x.state === 'failed' && x.createdAt >= t0).length >= 3);
  t.equal((await swarm.tasks('cms')).filter((x) => x.state === 'running').length, 0, 'no task runs on either copy meanwhile');
  const mineNow = (await node1.cli(['snapshots', 'cms'])).stdout.split('\n').filter((s) => s !== '' && !snaps.includes(s));
  t.same(mineNow, [], "Swarm's retries are refused with the same two snapshots (none made per try)");
  t.match((await swarm.tasks('cms')).find((x) => x.state === 'failed')!.err, names![1]!, 'the latest refusal names the same snapshot');

  await node1.cli(['restore', names![2]!, 'cms']);
  const running = await swarm.waitForTask('cms', { node: 'node1', createdAfter: t0 });
  t.equal(await read(swarm, 'cms', 'f'), 'two, on node2', "after restoring node2's state, Swarm's next try runs on it");
  t.ok(running, 'the task runs');
  await swarm.removeService('cms');
});

/** A 2-node swarm whose service `svc` runs on node2 (a worker; node1 is the manager): label node2 first, node1 once the data is pushed. */
async function heldByWorker(t: Test, opts: Record<string, string>, env: Record<string, string>) {
  const swarm = await createSwarm(t, ['node1', 'node2'], { dispatcherHeartbeat: '1s', env });
  const [node1, node2] = swarm.nodes as [SwarmNode, SwarmNode];
  await swarm.docker(['node', 'update', '--label-add', 'db=yes', 'node2']);
  await swarm.createService('svc', [...SERVICE_FLAGS, '--constraint', 'node.labels.db==yes', '--mount', mountSpec(swarm, 'svc', opts)]);
  await swarm.waitForTask('svc', { node: 'node2' });
  return { swarm, node1, node2 };
}

t.test('a holder cut off the network: refused, then buttervolume failover goes on from its last push; back, it serves nothing stale', async (t) => {
  const { swarm, node1, node2 } = await heldByWorker(t, {}, { BUTTERVOLUME_HANDOVER_TIMEOUT: '5' });
  await write(swarm, 'svc', 'f', 'pushed');
  // a restart in place: node2 lets it go (pushes state 1 to node1) and takes it again
  const before = (await swarm.tasks('svc')).find((x) => x.state === 'running')!;
  await swarm.updateService('svc', ['--force']);
  await swarm.waitForTask('svc', { node: 'node2', exclude: [before.id] });
  t.match(node2.daemon.stderr(), /svc: state 1 is on node1/, 'state 1 pushed to node1');
  await write(swarm, 'svc', 'f', 'never pushed');
  await swarm.docker(['node', 'update', '--label-add', 'db=yes', 'node1']);

  const t0 = Date.now();
  node2.host.linkDown();
  const rejected = await swarm.waitForTask('svc', { node: 'node1', state: 'failed', createdAfter: t0, timeoutMs: 60_000 });
  t.match(rejected.err, /svc: its holder node2 cannot be reached .*buttervolume failover svc/, 'node1 refuses to start from a copy the holder may have passed');
  const failover = await node1.cli(['failover', 'svc']);
  t.match(failover.stdout, /svc is taken over by node1 at state 1/, 'buttervolume failover on node1');
  const running = await swarm.waitForTask('svc', { node: 'node1', createdAfter: t0 });
  t.comment(`holder cut off: node1 ran the task ${running.stateSince - t0} ms after the cut (Swarm's rescheduling, a refusal, a manual failover)`);
  t.equal(await read(swarm, 'svc', 'f', 'node1'), 'pushed', 'the state of the last push');
  await write(swarm, 'svc', 'f', 'after the failover', 'node1');

  node2.host.linkUp();
  await until('node2 Ready again', async () => (await swarm.nodeList()).some((n) => n.hostname === 'node2' && n.status === 'Ready'), 60_000);
  await until('node2 to let its old task go', () => /svc: not pushed: node1 took it over without this node/.test(node2.daemon.stderr()), 60_000);
  t.pass('node2, back, does not push its stale copy');
  // and when the service comes back to node2, it gets node1's state; what it wrote alone is kept aside
  await swarm.docker(['node', 'update', '--label-rm', 'db', 'node1']);
  await swarm.waitForTask('svc', { node: 'node2', createdAfter: Date.now() - 1000, timeoutMs: 60_000 });
  t.equal(await read(swarm, 'svc', 'f'), 'after the failover', 'node2 serves the state made after the failover');
  t.match(node2.daemon.stderr(), /what it held before is kept as svc@/, 'what node2 wrote alone is kept as a snapshot');
  await swarm.removeService('svc');
});

t.test('a holder killed outright (failover=auto, rpo=10s): the task runs elsewhere on the state of the last push', async (t) => {
  const { swarm, node1, node2 } = await heldByWorker(t, { rpo: '10s', failover: 'auto' }, { BUTTERVOLUME_FAILOVER_AFTER: '5', BUTTERVOLUME_HANDOVER_TIMEOUT: '5' });
  await write(swarm, 'svc', 'f', 'A');
  await until('the rpo push of state 1', () => /svc: state 1 is on node1/.test(node2.daemon.stderr()), 30_000);
  const pushedAt = Date.now();
  await write(swarm, 'svc', 'f', 'B, after the last push');
  await swarm.docker(['node', 'update', '--label-add', 'db=yes', 'node1']);
  await sleep(Math.max(0, 2000 - (Date.now() - pushedAt)));
  const t0 = Date.now();
  await node2.crash();
  const running = await swarm.waitForTask('svc', { node: 'node1', createdAfter: t0, timeoutMs: 90_000 });
  t.comment(`holder SIGKILLed (dockerd, containers, our daemon): the task ran on node1 ${running.stateSince - t0} ms later; lost: what was written in the last ${t0 - pushedAt} ms (rpo 10 s)`);
  t.equal(await read(swarm, 'svc', 'f', 'node1'), 'A', 'node1 runs it on the state of the last push');
  t.match(node1.daemon.stderr(), /svc: taken over without its holder node2, unreachable .* for FAILOVER_AFTER/, 'node1 failed over by itself');
  await swarm.removeService('svc');
});

t.test('a stack file: driver_opts give the replicas; the volume follows its service', async (t) => {
  const swarm = await createSwarm(t, ['node1', 'node2']);
  const file = join(swarm.manager.dir, 'stack.yml');
  writeFileSync(
    file,
    [
      'version: "3.8"',
      'services:',
      '  web:',
      `    image: ${swarm.image}`,
      `    command: ["sh", "-c", "trap \\"exit 0\\" TERM; sleep 3600 & wait"]`,
      '    volumes: ["site:/data"]',
      '    deploy:',
      '      placement: { constraints: ["node.hostname==node1"] }',
      '      restart_policy: { delay: 1s }',
      'volumes:',
      '  site:',
      '    driver: btrfs',
      '    driver_opts:',
      `      replicas: "${replicasOf(swarm)}"`,
      '      rpo: "30s"',
      '',
    ].join('\n'),
  );
  await swarm.docker(['stack', 'deploy', '--resolve-image', 'never', '--detach=true', '-c', file, 'st']);
  const first = await swarm.waitForTask('st_web', { node: 'node1' });
  const get = await swarm.get('node1').daemon.call('/VolumeDriver.Get', { Name: 'st_site' });
  t.match((get.body.Volume as { Status: unknown }).Status, { Holder: 'node1', Replicas: [{ Node: 'node2' }] }, 'node1 made st_site with its replicas');
  await write(swarm, 'st_web', 'index.html', 'hello from node1');
  await moveTo(swarm, 'st_web', 'node1', 'node2', first);
  t.equal(await read(swarm, 'st_web', 'index.html'), 'hello from node1', 'the stack volume followed its service to node2');
  // Removing the stack's network can race the task's shutdown ("in use by task"): Swarm's own flake, not ours; the teardown removes the rest.
  await swarm.docker(['stack', 'rm', 'st'], { allowFailure: true });
});
