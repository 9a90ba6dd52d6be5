// Replication between real hosts (network namespaces joined by a bridge),
// each with its btrfs and its own `buttervolume run`: full then incremental
// send, a resend, a peer that lost the parent, failover with receive, and
// the refusals of the SSH side (unknown key, changed host key).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { createCluster, peer } from '../fixtures/cluster.js';

t.test('send: full, then incremental, then again; receive back after a failover', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2']);
  const [n1, n2] = nodes as [typeof nodes[0], typeof nodes[0]];
  await n1.volume('db', { foobar: 'foobar' });
  const s1 = await n1.snapshot('db');

  const first = await n1.cli(['send', '--json', peer(n2), s1]);
  const r1 = JSON.parse(first.stdout);
  t.match(r1, { snapshot: s1, transferred: true, parent: null }, 'a full send');
  const copy1 = join(n2.snapshotsPath, s1);
  t.equal(readFileSync(join(copy1, 'foobar'), 'utf8'), 'foobar', 'the peer has the data');
  const [local1, remote1] = await Promise.all([btrfs.subvolumeInfo(join(n1.snapshotsPath, s1)), btrfs.subvolumeInfo(copy1)]);
  t.equal(remote1.receivedUuid, local1.uuid);
  t.equal(remote1.readonly, true);
  t.ok(readdirSync(n1.snapshotsPath).includes(`${s1}@${peer(n2)}`), 'the send marker is written');
  t.match(n1.host.name, 'node1');
  t.match(readFileSync(join(n1.host.sshPath, 'known_hosts'), 'utf8'), /^\[node2\]:\d+ ssh-ed25519 /, 'first contact recorded the host key');

  writeFileSync(join(n1.volumesPath, 'db', 'foobar'), 'changed');
  writeFileSync(join(n1.volumesPath, 'db', 'new'), 'new file');
  const s2 = await n1.snapshot('db');
  const r2 = JSON.parse((await n1.cli(['send', '--json', peer(n2), s2])).stdout);
  t.match(r2, { transferred: true, parent: s1 }, 'incremental from the first');
  const remote2 = await btrfs.subvolumeInfo(join(n2.snapshotsPath, s2));
  t.equal(remote2.parentUuid, remote1.uuid, "the second received snapshot's parent is the first received one (the original's test)");
  t.equal(readFileSync(join(n2.snapshotsPath, s2, 'foobar'), 'utf8'), 'changed');
  t.same(readdirSync(n1.snapshotsPath).filter((n) => n.endsWith(`@${peer(n2)}`)), [`${s2}@${peer(n2)}`], 'only the newest marker is kept');

  const again = JSON.parse((await n1.cli(['send', '--json', peer(n2), s2])).stdout);
  t.match(again, { transferred: false, bytes: 0 }, 'a snapshot the peer has is not sent again');

  // The peer lost the parent: a full send, nothing deleted before the new copy is there.
  await btrfs.deleteSubvolume(join(n2.snapshotsPath, s1));
  await btrfs.deleteSubvolume(join(n2.snapshotsPath, s2));
  writeFileSync(join(n1.volumesPath, 'db', 'third'), '3');
  const s3 = await n1.snapshot('db');
  t.match(JSON.parse((await n1.cli(['send', '--json', peer(n2), s3])).stdout), { transferred: true, parent: null }, 'full when the peer holds no parent');
  t.equal(readFileSync(join(n2.snapshotsPath, s3, 'third'), 'utf8'), '3');

  // Failover: node1 goes away; node2 already has s3. Then node1 comes back and pulls what node2 made.
  await n1.daemon.stop();
  await n2.cli(['restore', 'db']); // db does not exist on node2: made from its newest snapshot
  t.equal(readFileSync(join(n2.volumesPath, 'db', 'third'), 'utf8'), '3', 'node2 serves db from the received snapshot');
  writeFileSync(join(n2.volumesPath, 'db', 'on-node2'), 'written after the failover');
  const s4 = await n2.snapshot('db');
  await n1.daemon.restart();
  const pulled = await n1.cli(['receive', '--json', peer(n2), 'db']);
  const p = JSON.parse(pulled.stdout);
  t.match(p, { fetched: s4, newest: s4 }, 'node1 fetched what node2 made');
  t.equal(readFileSync(join(n1.snapshotsPath, s4, 'on-node2'), 'utf8'), 'written after the failover');
  const nothing = JSON.parse((await n1.cli(['receive', '--json', peer(n2), 'db'])).stdout);
  t.match(nothing, { fetched: null, newest: s4 }, 'nothing new: nothing fetched');
});

t.test('refusals: an unknown client key, a changed host key, an unreachable host', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2', 'node3'], { authorize: false });
  const [n1, n2, n3] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
  await n1.volume('v', { f: 'x' });
  const s = await n1.snapshot('v');
  const refused = await n1.cli(['send', peer(n2), s], { allowFailure: true });
  t.equal(refused.code, 1);
  t.match(refused.stderr, /refused our key .*id_ed25519\.pub.*authorized_keys/, 'an unknown key is refused, saying what to do');
  t.same(readdirSync(n2.snapshotsPath), [], 'nothing arrived');
  t.match(n2.daemon.stderr(), /refused a ssh-ed25519 key/, 'the peer logged it');

  // A peer whose host key changed (reinstalled, or not the same machine): refused, naming the file and line.
  writeFileSync(join(n2.host.sshPath, 'authorized_keys'), `${n1.publicKey()}\n`);
  await n1.cli(['send', peer(n2), s]);
  const known = readFileSync(join(n1.host.sshPath, 'known_hosts'), 'utf8');
  const lines = known.trim().split('\n');
  const other = readFileSync(join(n3.host.sshPath, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(' ');
  writeFileSync(join(n1.host.sshPath, 'known_hosts'), `${lines[0]!.split(' ')[0]} ${other[0]} ${other[1]}\n`);
  const s2 = await n1.snapshot('v');
  const changed = await n1.cli(['send', peer(n2), s2], { allowFailure: true });
  t.equal(changed.code, 1);
  t.match(changed.stderr, /the host key of \[node2\]:\d+ is not the one recorded in .*known_hosts line 1: refused/);

  const unreachable = await n1.cli(['send', 'node3:1', s2], { allowFailure: true });
  t.match(unreachable.stderr, /cannot reach node3:1 \(node3 port 1\): ECONNREFUSED/);
});
