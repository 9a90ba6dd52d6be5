// Hostile peers between real hosts (network namespaces, each with its own
// `buttervolume run`): one host floods another's SSH port with idle
// connections while a third replicates to it; authorized_keys restrictions
// (from=, push-only) applied to real addresses.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import { createCluster, peer } from '../fixtures/cluster.js';

/** A script that opens `n` TCP connections to host:port, says nothing, and reopens each one the server closes. */
const FLOOD = `
const net = require('node:net');
const [host, port, n] = process.argv.slice(1);
let opened = 0;
const open = () => {
  const s = net.connect(Number(port), host);
  opened++;
  s.on('error', () => {});
  s.on('close', () => setTimeout(open, 20));
};
for (let i = 0; i < Number(n); i++) open();
setInterval(() => console.log('opened ' + opened), 500);
`;

t.test('one host floods the SSH port with idle connections; a real peer from another address replicates meanwhile', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2', 'node3']);
  const [n1, n2, n3] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  await n1.volume('db', { f: 'x'.repeat(100_000) });
  const calm = Date.now();
  await n1.cli(['send', peer(n2), await n1.snapshot('db')]);
  const calmMs = Date.now() - calm;

  const flood = n3.host.spawn(process.execPath, ['-e', FLOOD, n2.host.address, String(n2.host.sshPort), '64']);
  await flood.waitForOutput(/opened (6[4-9]|[7-9][0-9]|[0-9]{3,})/, 10_000);
  writeFileSync(join(n1.volumesPath, 'db', 'g'), 'during the flood');
  const started = Date.now();
  const sent = JSON.parse((await n1.cli(['send', '--json', peer(n2), await n1.snapshot('db')])).stdout);
  const floodMs = Date.now() - started;
  t.comment(`a send from node1 took ${calmMs} ms before and ${floodMs} ms while node3 kept 64 idle connections open (reopened as closed)`);
  t.match(sent, { transferred: true }, 'the send went through');
  t.ok(floodMs < Math.max(5000, calmMs * 3), `and was not held up (${floodMs} ms vs ${calmMs} ms)`);
  t.match(n2.daemon.stderr(), new RegExp(`more than 4 connections from ${n3.host.address.replace(/\./g, '\\.')} waiting to authenticate: closed`), 'node2 capped node3');
  flood.kill('SIGKILL');
});

t.test('authorized_keys: from= names the addresses a key may come from; push-only keeps a pusher from pulling', async (t) => {
  const { nodes } = await createCluster(t, ['node1', 'node2', 'node3'], { authorize: false });
  const [n1, n2, n3] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  await n1.volume('db', { f: '1' });
  const s1 = await n1.snapshot('db');
  const keys = join(n2.host.sshPath, 'authorized_keys');

  writeFileSync(keys, `from="${n3.host.address}" ${n1.publicKey()}\n`);
  const refused = await n1.cli(['send', peer(n2), s1], { allowFailure: true });
  t.equal(refused.code, 1, "node1's key, allowed only from node3's address, is refused from node1's");
  t.match(refused.stderr, /refused our key/);
  t.match(n2.daemon.stderr(), new RegExp(`its from="${n3.host.address.replace(/\./g, '\\.')}" does not allow ${n1.host.address.replace(/\./g, '\\.')}`), 'node2 says why');

  writeFileSync(keys, `from="${n1.host.address.replace(/\.\d+$/, '.0')}/24,!${n3.host.address}",push-only ${n1.publicKey()}\n`);
  const sent = JSON.parse((await n1.cli(['send', '--json', peer(n2), s1])).stdout);
  t.match(sent, { transferred: true }, 'allowed from its subnet: sent');
  t.equal(readFileSync(join(n2.snapshotsPath, s1, 'f'), 'utf8'), '1');
  await n2.cli(['restore', 'db']);
  writeFileSync(join(n2.volumesPath, 'db', 'f'), '2');
  await n2.snapshot('db');
  const pull = await n1.cli(['receive', peer(n2), 'db'], { allowFailure: true });
  t.equal(pull.code, 1, 'push-only: a pull is refused');
  t.match(pull.stderr, /may not send db: it is push-only/);
});
