// Replication when things break mid-transfer: the link cut (the veth taken
// down: no FIN ever comes) or the sender killed. The peer keeps nothing
// partial, and the next run succeeds, incrementally from the last snapshot
// that did arrive.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { BIN } from '../fixtures/daemon-client.js';
import { createCluster, peer, type Node } from '../fixtures/cluster.js';

/** Names in the peer's snapshot directory: no partial receive may stay. */
const received = (n: Node) => readdirSync(n.snapshotsPath).sort();

async function bigVolume(n: Node, name: string, mb: number): Promise<void> {
  await n.volume(name, { small: 'small' });
  execFileSync('dd', ['if=/dev/urandom', `of=${join(n.volumesPath, name, 'big')}`, 'bs=1M', `count=${mb}`, 'status=none']);
}

/** Waits until a partial receive shows up on `n` (the transfer is under way). */
async function transferStarted(n: Node): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (readdirSync(n.snapshotsPath).some((e) => e.startsWith('.bv-receive.'))) return;
    await sleep(25);
  }
  throw new Error('the transfer did not start');
}

t.test('the link cut mid-transfer: nothing partial stays, the next send catches up incrementally', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2']);
  const [n1, n2] = nodes as [Node, Node];
  await n1.volume('db', { f: '1' });
  const s1 = await n1.snapshot('db');
  await n1.cli(['send', peer(n2), s1]);
  await bigVolume(n1, 'db2', 64);
  execFileSync('dd', ['if=/dev/urandom', `of=${join(n1.volumesPath, 'db', 'big')}`, 'bs=1M', 'count=64', 'status=none']);
  const s2 = await n1.snapshot('db');
  // Slow enough to be cut in the middle.
  const sending = n1.cli(['send', '--limit', '4M', peer(n2), s2], { allowFailure: true });
  await transferStarted(n2);
  n2.host.linkDown();
  const failed = await sending;
  t.equal(failed.code, 1, 'the send fails');
  t.match(failed.stderr, /buttervolume: send: /);
  n2.host.linkUp();
  // The peer finds out through its keepalives, then deletes what it had started.
  for (let i = 0; i < 200 && received(n2).some((e) => e.startsWith('.bv-receive.')); i++) await sleep(100);
  t.same(received(n2), [s1], 'only the complete snapshot: no partial one');
  const next = JSON.parse((await n1.cli(['send', '--json', peer(n2), s2])).stdout);
  t.match(next, { transferred: true, parent: s1 }, 'the next run succeeds, incrementally');
  t.same(received(n2), [s1, s2]);
});

t.test('the sender killed mid-transfer: nothing partial stays', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2']);
  const [n1, n2] = nodes as [Node, Node];
  await bigVolume(n1, 'big', 64);
  const s = await n1.snapshot('big');
  const proc = n1.host.spawn(process.execPath, [BIN, 'send', '--limit', '4M', peer(n2), s], { env: n1.host.env });
  await transferStarted(n2);
  proc.kill('SIGKILL');
  await proc.exited;
  for (let i = 0; i < 100 && received(n2).length > 0; i++) await sleep(100);
  t.same(received(n2), [], 'the peer deleted the partial snapshot');
  t.match(JSON.parse((await n1.cli(['send', '--json', peer(n2), s])).stdout), { transferred: true, parent: null });
  t.same(received(n2), [s]);
});
