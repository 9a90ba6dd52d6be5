// A volume that follows its service, driven through the plugin API as
// Docker drives it (Create, Mount, Unmount), between real hosts (network
// namespaces, each with its btrfs and its own `buttervolume run`): the
// handover of a move and of a move back (incremental), a Mount refused while
// the volume is in use elsewhere, a holder that cannot be reached (refused,
// then `buttervolume failover`), and a divergence refused with both copies
// kept. The real Swarm runs in cluster-swarm.test.ts.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { createCluster, peer, type Node } from '../fixtures/cluster.js';

interface TeardownHost {
  teardown(fn: () => void | Promise<void>): void;
}

const ID = (n: number) => n.toString(16).padStart(64, '0');

async function ok(node: Node, path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await node.daemon.call(path, body);
  if (r.status !== 200) throw new Error(`${node.name} ${path} ${JSON.stringify(body)}: ${r.status} ${String(r.body?.Err)}`);
  return r.body as Record<string, unknown>;
}

async function refused(node: Node, path: string, body: unknown): Promise<string> {
  const r = await node.daemon.call(path, body);
  if (r.status === 200) throw new Error(`${node.name} ${path}: expected a refusal, got ${JSON.stringify(r.body)}`);
  return String(r.body?.Err);
}

/** Nodes whose daemons wait at most `handover` s for a holder, and fail over by themselves after `failover` s. */
async function nodes(t: TeardownHost, names: string[], env: Record<string, string> = {}) {
  const cluster = await createCluster(t, names, { env: { BUTTERVOLUME_HANDOVER_TIMEOUT: '4', ...env } });
  const replicas = cluster.nodes.map((n) => peer(n)).join(',');
  const create = (n: Node, name: string, extra: Record<string, string> = {}) => ok(n, '/VolumeDriver.Create', { Name: name, Opts: { replicas, ...extra } });
  return { ...cluster, replicas, create };
}

t.test('a move: the last Unmount pushes, the first Mount elsewhere takes it over; a move back is incremental', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2']);
  await create(n1!, 'db');
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'data'), 'x'.repeat(1 << 20));
  writeFileSync(join(m1, 'small'), 'written on node1');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  t.match(n1!.daemon.stderr(), /db: state 1 is on node2/, 'the release pushed state 1 to node2');

  await create(n2!, 'db'); // as Swarm does on the node a task lands on
  const m2 = String((await ok(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) })).Mountpoint);
  t.equal(readFileSync(join(m2, 'small'), 'utf8'), 'written on node1', 'node2 mounts the data written on node1');
  t.equal(readFileSync(join(m2, 'data'), 'utf8').length, 1 << 20);
  writeFileSync(join(m2, 'small'), 'written on node2');
  await ok(n2!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(2) });
  const pushed = /db: state 2 is on node1(?::\d+)? \((\d+) bytes, from (\S+)\)/.exec(n2!.daemon.stderr());
  t.ok(pushed, 'the move back pushed state 2, incrementally');
  t.ok(Number(pushed?.[1]) < 100_000, `bytes sent (${pushed?.[1]}) far below the volume (1 MiB)`);

  const back = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(3) })).Mountpoint);
  t.equal(readFileSync(join(back, 'small'), 'utf8'), 'written on node2', 'node1 mounts what node2 wrote');
  const status = (await ok(n1!, '/VolumeDriver.Get', { Name: 'db' })).Volume as { Status: Record<string, unknown> };
  t.match(status.Status, { Holder: 'node1', Epoch: 2 }, 'Get shows the holder and the state');
  const replicas = await n1!.cli(['replicas', '--json', 'db']);
  t.match(JSON.parse(replicas.stdout), { Volume: 'db', Node: 'node1', Epoch: 2, Replicas: [{ node: 'node2', reachable: true, epoch: 2 }] }, 'buttervolume replicas');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(3) });
});

t.test('in use elsewhere: refused after HANDOVER_TIMEOUT, naming the node', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2']);
  await create(n1!, 'v');
  await create(n2!, 'v');
  await ok(n1!, '/VolumeDriver.Mount', { Name: 'v', ID: ID(1) });
  const started = Date.now();
  const err = await refused(n2!, '/VolumeDriver.Mount', { Name: 'v', ID: ID(2) });
  t.match(err, /v is in use on node1 since .*HANDOVER_TIMEOUT/);
  t.ok(Date.now() - started >= 3500, 'after waiting for it');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'v', ID: ID(1) });
  await ok(n2!, '/VolumeDriver.Mount', { Name: 'v', ID: ID(2) });
  t.pass('once let go, it is taken over');
});

t.test('an unreachable holder: refused (failover=manual), then buttervolume failover goes on from the last push; the holder, back, does not serve its copy', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2']);
  await create(n1!, 'db');
  await create(n2!, 'db');
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'f'), 'pushed');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) });
  writeFileSync(join(m1, 'f'), 'never pushed');
  n1!.host.linkDown();
  const err = await refused(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) });
  t.match(err, /db: its holder node1 cannot be reached .*buttervolume failover db/);
  const failover = await n2!.cli(['failover', 'db']);
  t.match(failover.stdout, /db is taken over by node2 at state 1/);
  const m2 = String((await ok(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) })).Mountpoint);
  t.equal(readFileSync(join(m2, 'f'), 'utf8'), 'pushed', 'the state of the last push');
  writeFileSync(join(m2, 'f'), 'after the failover');
  await ok(n2!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(2) });
  n1!.host.linkUp();
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  // node1 comes back: it was superseded; its next Mount fetches, its own writes kept aside.
  const again = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(3) })).Mountpoint);
  t.equal(readFileSync(join(again, 'f'), 'utf8'), 'after the failover', 'node1 serves the state made after the failover, not its stale copy');
  t.match(n1!.daemon.stderr(), /what it held before is kept as db@/, 'what node1 wrote alone is kept as a snapshot');
});

t.test('diverged: changed here and a newer state elsewhere: refused, both kept; restore chooses', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2']);
  await create(n1!, 'db');
  await create(n2!, 'db');
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'f'), 'one');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  const m2 = String((await ok(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) })).Mountpoint);
  writeFileSync(join(m2, 'f'), 'two, on node2');
  await ok(n2!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(2) });
  // Meanwhile someone wrote into node1's copy without mounting it through Docker.
  writeFileSync(join(m1, 'f'), 'two, on node1');
  const err = await refused(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(3) });
  t.match(err, /db diverged: it changed on node1 since state 1, and node2 made state 2 .*Both are kept here: (db@\S+) \(this node's\) and (db@\S+) \(node2's\)/);
  const [, mine, theirs] = /Both are kept here: (db@\S+) \(this node's\) and (db@\S+) \(node2's\)/.exec(err)!;
  t.equal(readFileSync(join(n1!.snapshotsPath, mine!, 'f'), 'utf8'), 'two, on node1', "node1's own kept");
  t.equal(readFileSync(join(n1!.snapshotsPath, theirs!, 'f'), 'utf8'), 'two, on node2', "node2's fetched and kept");
  t.equal(readFileSync(join(m1, 'f'), 'utf8'), 'two, on node1', 'nothing overwritten');
  const status = (await ok(n1!, '/VolumeDriver.Get', { Name: 'db' })).Volume as { Status: Record<string, unknown> };
  t.equal(status.Status.State, 'diverged', 'Get says diverged');
  await n1!.cli(['restore', theirs!, 'db']);
  const m = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(3) })).Mountpoint);
  t.equal(readFileSync(join(m, 'f'), 'utf8'), 'two, on node2', "after the choice, node2's state is mounted");
  t.ok(existsSync(join(n1!.snapshotsPath, mine!)), "and node1's still kept");
});

t.test('failover=auto: taken over once the holder has been unreachable for FAILOVER_AFTER; rpo pushes while in use', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2'], { BUTTERVOLUME_FAILOVER_AFTER: '3' });
  await create(n1!, 'db', { failover: 'auto', rpo: '10s' });
  await create(n2!, 'db', { failover: 'auto', rpo: '10s' });
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'f'), 'before the rpo push');
  // No Unmount: the rpo pushes while the volume is in use.
  let pushed = false;
  for (let i = 0; i < 40 && !pushed; i++) {
    await new Promise((r) => setTimeout(r, 500));
    pushed = /db: state 1 is on node2/.test(n1!.daemon.stderr());
  }
  t.ok(pushed, 'state 1 pushed by the rpo, the volume still mounted');
  writeFileSync(join(m1, 'f'), 'after the rpo push: lost with node1');
  n1!.daemon.kill('SIGKILL');
  n1!.host.linkDown();
  const first = await refused(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) });
  t.match(first, /its holder node1 cannot be reached .*failover=auto does by itself once node1 has been unreachable for FAILOVER_AFTER \(3 s\)/);
  await new Promise((r) => setTimeout(r, 3500));
  const m2 = String((await ok(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) })).Mountpoint);
  t.equal(readFileSync(join(m2, 'f'), 'utf8'), 'before the rpo push', 'the state of the last push, never older');
  t.match(n2!.daemon.stderr(), /taken over without its holder node1, unreachable .* for FAILOVER_AFTER/);
});

t.test('three nodes, one down: a move between the two others goes on (the holder vouches for the newest state)', async (t) => {
  const { nodes: [n1, n2, n3], create } = await nodes(t, ['node1', 'node2', 'node3']);
  for (const n of [n1!, n2!, n3!]) await create(n, 'db');
  n3!.host.linkDown();
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'f'), 'three');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  t.match(n1!.daemon.stderr(), /state 1 could not be pushed to node3.*pushed when it is back/, 'node3 down: kept for later, not an error');
  const m2 = String((await ok(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) })).Mountpoint);
  t.equal(readFileSync(join(m2, 'f'), 'utf8'), 'three');
});

t.test('a node recognises itself in replicas by its address too', async (t) => {
  const { nodes: [n1, n2] } = await nodes(t, ['node1', 'node2']);
  const replicas = `${n1!.host.address}:${n1!.host.sshPort},${peer(n2!)}`;
  await ok(n1!, '/VolumeDriver.Create', { Name: 'db', Opts: { replicas } });
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'f'), 'by address');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  t.match(n1!.daemon.stderr(), /db: state 1 is on node2/, 'pushed to node2');
  t.notMatch(n1!.daemon.stderr(), new RegExp(`state 1 (is on|could not be pushed to) ${n1!.host.address.replaceAll('.', '\\.')}`), 'not to itself');
  const report = JSON.parse((await n1!.cli(['replicas', '--json', 'db'])).stdout) as { Replicas: { node: string }[] };
  t.same(report.Replicas.map((r) => r.node), ['node2'], 'its replicas: node2 only');
});

t.test('a fetch longer than a Mount may take goes on in the background, refused meanwhile with its progress; one cut half-way leaves nothing and starts again', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2'], { BUTTERVOLUME_REPLICATION_IDLE_TIMEOUT: '4' });
  await create(n1!, 'big');
  await create(n2!, 'big');
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'big', ID: ID(1) })).Mountpoint);
  const data = randomBytes(36 << 20);
  writeFileSync(join(m1, 'data'), data);
  n2!.host.linkDown(); // node2 misses the push: its first Mount must fetch
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'big', ID: ID(1) });
  n2!.host.linkUp();
  n1!.host.limitRate(1.2 * (1 << 20)); // ~30 s for the 36 MiB
  t.teardown(() => n1!.host.limitRate(null));

  // A fetch cut half-way: refused, nothing partial mounted or left behind.
  const cut = n2!.daemon.call('/VolumeDriver.Mount', { Name: 'big', ID: ID(2) });
  await new Promise((r) => setTimeout(r, 6000));
  n1!.host.linkDown();
  const cutAnswer = await cut;
  t.not(cutAnswer.status, 200, `the Mount whose fetch was cut is refused: ${String(cutAnswer.body?.Err).slice(0, 160)}`);
  t.same(readdirSync(join(n2!.volumesPath, 'big')), [], "node2's volume is as it was (empty): nothing partial");
  t.same(readdirSync(n2!.snapshotsPath).filter((n) => n.startsWith('.bv-receive')), [], 'no half-received subvolume left');
  n1!.host.linkUp();

  // A fetch longer than ANSWER_WITHIN (20 s): refused with its progress, going on; Swarm's retry finds the data.
  const started = Date.now();
  const first = await n2!.daemon.call('/VolumeDriver.Mount', { Name: 'big', ID: ID(3) });
  t.not(first.status, 200, 'refused while the fetch goes on');
  t.match(String(first.body?.Err), /big: fetching it from node1, \d+% done; the task starts once its data is here/, `with its progress: ${String(first.body?.Err)}`);
  t.ok(Date.now() - started < 25_000, 'answered within the engine’s time');
  t.same(readdirSync(join(n2!.volumesPath, 'big')), [], 'nothing mounted meanwhile');
  let answer = first;
  const deadline = Date.now() + 90_000;
  while (answer.status !== 200 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    answer = await n2!.daemon.call('/VolumeDriver.Mount', { Name: 'big', ID: ID(3) });
    if (answer.status !== 200) t.match(String(answer.body?.Err), /fetching it from node1/, 'a retry meanwhile: still fetching');
  }
  t.equal(answer.status, 200, `mounted once fetched (${Math.round((Date.now() - started) / 1000)} s)`);
  t.ok(readFileSync(join(String(answer.body.Mountpoint), 'data')).equals(data), 'with every byte node1 wrote');
  t.match(n2!.daemon.stderr(), /big: fetched state 1 from node1/);
});

t.test('reading an idle copy is no change: the volume moves back without a divergence', async (t) => {
  const { nodes: [n1, n2], create } = await nodes(t, ['node1', 'node2']);
  await create(n1!, 'db');
  await create(n2!, 'db');
  const m1 = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(1) })).Mountpoint);
  writeFileSync(join(m1, 'f'), 'one');
  await ok(n1!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(1) });
  const m2 = String((await ok(n2!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(2) })).Mountpoint);
  writeFileSync(join(m2, 'f'), 'two');
  await ok(n2!, '/VolumeDriver.Unmount', { Name: 'db', ID: ID(2) });
  // A backup tool, or a curious admin, reads node1's idle copy: relatime writes access times (the ctransid moves).
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(readFileSync(join(m1, 'f'), 'utf8'), 'one', "node1's idle copy, read");
  readdirSync(m1);
  const back = String((await ok(n1!, '/VolumeDriver.Mount', { Name: 'db', ID: ID(3) })).Mountpoint);
  t.equal(readFileSync(join(back, 'f'), 'utf8'), 'two', 'node1 takes node2’s state: the reads were no change');
  t.notMatch(n1!.daemon.stderr(), /diverged/);
});
