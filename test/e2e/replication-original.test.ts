// The original buttervolume's replication test cases (docker-plugin-and-
// original.md 2.12), through our HTTP endpoints: a host replicating to itself
// over localhost on SSH_PORT, `Test: true` into TEST_REMOTE_PATH. Plus the
// endpoints' refusals, and scheduled replicate jobs between two hosts.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { authorize, createCluster, peer, type Node } from '../fixtures/cluster.js';

t.test('test_send: Send to localhost in test mode, full then incremental', async (t) => {
  const { nodes } = await createCluster(t, ['solo'], {
    // localhost is this host: SSH_PORT is the peer's port too.
    env: {},
  });
  const n = nodes[0]!;
  authorize(n, n);
  const name = 'buttervolume-test-send';
  await n.volume(name, { foobar: 'foobar' });
  const s1 = await n.snapshot(name);
  const r1 = await n.daemon.call('/VolumeDriver.Snapshot.Send', { Name: s1, Host: 'localhost', Test: true });
  t.equal(r1.body.Err, '', JSON.stringify(r1.body));
  t.equal(readFileSync(join(n.testRemotePath, s1, 'foobar'), 'utf8'), 'foobar', 'the remote copy has the file');
  writeFileSync(join(n.volumesPath, name, 'foobar'), 'modified');
  const s2 = await n.snapshot(name);
  const r2 = await n.daemon.call('/VolumeDriver.Snapshot.Send', { Name: s2, Host: 'localhost', Test: true });
  t.equal(r2.body.Err, '');
  t.equal(r2.body.Parent, s1);
  t.equal(readFileSync(join(n.testRemotePath, s2, 'foobar'), 'utf8'), 'modified', 'the remote file is updated');
  const [first, second] = await Promise.all([btrfs.subvolumeInfo(join(n.testRemotePath, s1)), btrfs.subvolumeInfo(join(n.testRemotePath, s2))]);
  t.equal(second.parentUuid, first.uuid, "the second remote snapshot's Parent UUID is the first's UUID");
  t.ok(readdirSync(n.snapshotsPath).includes(`${s2}@localhost`), 'the marker names the host as given');
});

t.test('the endpoints refuse bad requests clearly', async (t) => {
  const { nodes } = await createCluster(t, ['solo']);
  const n = nodes[0]!;
  const cases: Array<[string, unknown, RegExp]> = [
    ['/VolumeDriver.Snapshot.Send', { Name: 'db', Host: 'h' }, /snapshot name "db" has no "@"/],
    ['/VolumeDriver.Snapshot.Send', { Name: 'db@1', Host: 'h h' }, /^host "h h" is not a DNS name/],
    ['/VolumeDriver.Snapshot.Send', { Name: 'db@1', Host: 'h', Test: 'yes' }, /Test must be true or false/],
    ['/VolumeDriver.Snapshot.Send', { Name: 'db@1', Host: 'localhost', Tset: true }, /unknown field "Tset"/],
    ['/VolumeDriver.Snapshot.Send', { Name: 'db@1', Host: 'localhost' }, /No such snapshot: db@1/],
    ['/VolumeDriver.Snapshot.Receive', { Name: 'x/y', Host: 'h' }, /contains "\/"/],
    ['/VolumeDriver.Volume.Sync', { Volumes: ['v'], Hosts: 'h' }, /Hosts must be an array of strings/],
  ];
  for (const [path, body, message] of cases) {
    const r = await n.daemon.call(path, body);
    t.equal(r.status, 500, `${path} ${JSON.stringify(body)}`);
    t.match(r.body.Err, message);
  }
});

t.test('scheduled replicate jobs between two hosts, and to a host that is down', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2']);
  const [n1, n2] = nodes as [Node, Node];
  await n1.volume('db', { f: 'v1' });
  await n1.cli(['schedule', `replicate:${peer(n2)}`, '120', 'db']);
  await n1.cli(['schedule', 'replicate:node9:1', '120', 'db']);
  await n1.cli(['schedule', `replicate:${peer(n2)}`, '120', 'boo']);
  const pass = await n1.cli(['scheduled', 'run', '--json'], { allowFailure: true });
  const jobs = JSON.parse(pass.stdout).jobs as Array<{ name: string; action: string; ok: boolean; error?: string }>;
  t.match(jobs[0], { name: 'db', ok: true });
  t.match(jobs[1], { name: 'db', ok: false, error: /node9/ });
  t.match(jobs[2], { name: 'boo', ok: false }, 'a volume that does not exist does not break the pass');
  const sent = readdirSync(n2.snapshotsPath);
  t.equal(sent.length, 1, 'one snapshot arrived');
  t.ok(readdirSync(n1.snapshotsPath).includes(`${sent[0]}@${peer(n2)}`), 'marked as sent');
  // An hour later, after a change: one incremental catches up.
  writeFileSync(join(n1.volumesPath, 'db', 'f'), 'v2');
  const later = new Date(Date.now() + 121 * 60_000).toISOString();
  await n1.cli(['scheduled', 'run', '--now', later], { allowFailure: true });
  const now = readdirSync(n2.snapshotsPath).sort();
  t.equal(now.length, 2);
  t.equal(readFileSync(join(n2.snapshotsPath, now[1]!, 'f'), 'utf8'), 'v2');
  const [a, b] = await Promise.all(now.map((s) => btrfs.subvolumeInfo(join(n2.snapshotsPath, s))));
  t.equal(b!.parentUuid, a!.uuid, 'incremental');
});
