// Hostile peers against the embedded SSH server, played with ssh2 itself
// over real sockets, with a real store behind the service: clients that
// offer only weak or costly algorithms, a flood of idle connections from
// one address while a real peer comes from another, peers that stall after
// each kind of request, too many requests at once, and keys restricted by
// authorized_keys options (from=, volumes=, push-only, pull-only).
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { requireRoot } from '../fixtures/btrfs.js';
import { closedWithin, firstLine, idleSocket, openChannel, rawClient, startSshTarget, type SshTarget } from '../fixtures/ssh-target.js';

requireRoot();

/** The send stream of a new snapshot of a new volume `volume` holding `bytes` of random data; the snapshot is deleted again. */
async function streamOf(target: SshTarget, volume: string, bytes: number): Promise<{ name: string; stream: Buffer }> {
  await target.store.create(volume, { copyOnWrite: true, compression: null });
  writeFileSync(join(target.store.layout.volume(volume), 'data'), Buffer.alloc(bytes, 7).map((_, i) => (i * 2654435761) >>> 24));
  const name = await target.store.snapshot(volume);
  const parts: Buffer[] = [];
  for await (const c of btrfs.send(target.store.layout.snapshot(name))) parts.push(c as Buffer);
  await target.store.removeSnapshot(name);
  return { name, stream: Buffer.concat(parts) };
}

/** Names in SNAPSHOTS_PATH that are temporaries of a receive. */
const receiveTemps = (target: SshTarget) => readdirSync(target.store.layout.paths.snapshotsPath).filter((n) => n.startsWith('.bv-receive'));

/** Whether the volume's lock can be taken exclusively within `ms`. */
async function lockFree(target: SshTarget, volume: string, ms = 3000): Promise<boolean> {
  return Promise.race([target.store.withVolumeLock(volume, 'exclusive', async () => true), sleep(ms).then(() => false)]);
}

async function waitFor(what: () => boolean, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (what()) return true;
  return what();
}

t.test('algorithms: modern ones negotiated by default; weak or costly ones refused before any work', async (t) => {
  const target = await startSshTarget(t);
  const conn = await rawClient(t, target.port, { privateKey: target.privateKey });
  const n = conn.negotiated!;
  t.comment(`negotiated by default: ${JSON.stringify(n)}`);
  t.match(n.kex, /^curve25519-sha256(@libssh\.org)?$/, 'key exchange');
  t.equal(n.serverHostKey, 'ssh-ed25519', 'host key');
  t.equal(n.cs.cipher, 'aes128-gcm@openssh.com', 'cipher');
  t.equal(n.cs.compress, 'none', 'no compression unless asked');
  conn.end();
  const compressed = await rawClient(t, target.port, { privateKey: target.privateKey, algorithms: { compress: ['zlib@openssh.com', 'none'] } });
  t.equal(compressed.negotiated!.cs.compress, 'zlib@openssh.com', 'delayed compression when asked');
  compressed.end();
  const weak: Array<[string, ssh2.Algorithms]> = [
    ['8192-bit DH group', { kex: ['diffie-hellman-group18-sha512'] }],
    ['2048-bit DH group with SHA-1', { kex: ['diffie-hellman-group14-sha1'] }],
    ['1024-bit DH group', { kex: ['diffie-hellman-group1-sha1'] }],
    ['DH group exchange', { kex: ['diffie-hellman-group-exchange-sha256'] }],
    ['plain zlib (inflated before authentication)', { compress: ['zlib'] }],
    ['hmac-sha1', { cipher: ['aes128-ctr'], hmac: ['hmac-sha1'] }],
    ['a CBC cipher', { cipher: ['aes128-cbc'] }],
    ['ssh-rsa (SHA-1) host keys', { serverHostKey: ['ssh-rsa'] }],
    ['ssh-dss host keys', { serverHostKey: ['ssh-dss'] }],
  ];
  for (const [what, algorithms] of weak) {
    const started = Date.now();
    const err = await rawClient(t, target.port, { privateKey: target.privateKey, algorithms }).then(
      () => null,
      (e: Error) => e,
    );
    t.match(err?.message, /Handshake failed: no matching|closed/, `${what}: refused`);
    t.ok(Date.now() - started < 3000, `${what}: at once (${Date.now() - started} ms)`);
  }
  const other = await rawClient(t, target.port, { privateKey: target.privateKey, algorithms: { kex: ['diffie-hellman-group18-sha512', 'ecdh-sha2-nistp256'] } });
  t.equal(other.negotiated!.kex, 'ecdh-sha2-nistp256', 'a client that prefers a costly one gets a modern one it also offers');
});

t.test('a flood of idle connections from one address does not keep a peer from another out', async (t) => {
  const target = await startSshTarget(t, { server: { loginGraceMs: 60_000 } });
  const flood = Array.from({ length: 40 }, () => idleSocket(t, target.port, '127.0.0.2'));
  // The flood's excess is closed at once; 4 stay waiting (the per-address cap).
  const closedAtOnce = await Promise.all(flood.map((f) => Promise.race([f.closed.then(() => 1), sleep(2000).then(() => 0)])));
  t.equal(closedAtOnce.reduce((a: number, b) => a + b, 0), 36, 'all but 4 of the 40 closed at once');
  t.ok(target.logs.some((l) => /more than 4 connections from 127\.0\.0\.2 waiting to authenticate: closed/.test(l)), 'logged');
  t.ok(target.logs.filter((l) => /WARNING.*more than 4 connections from 127\.0\.0\.2/.test(l)).length <= 1, 'warned once for the burst, not per connection');
  const started = Date.now();
  const peer = await rawClient(t, target.port, { privateKey: target.privateKey, localAddress: '127.0.0.1' });
  const ms = Date.now() - started;
  t.comment(`an authorized peer from 127.0.0.1 authenticated in ${ms} ms during the flood`);
  t.ok(ms < 2000, `the peer got in at once (${ms} ms)`);
  const channel = await openChannel(peer, { op: 'list', volume: 'v' });
  t.match(await firstLine(channel), { ok: true, snapshots: [], now: Number }, 'and is served');
  // Reopened over and over, the flood still takes no more than its share.
  for (let round = 0; round < 3; round++) {
    const again = Array.from({ length: 10 }, () => idleSocket(t, target.port, '127.0.0.2'));
    const second = await rawClient(t, target.port, { privateKey: target.privateKey, localAddress: '127.0.0.3' });
    second.end();
    for (const a of again) a.socket.destroy();
  }
  t.pass('a peer from a third address got in during three more bursts');
});

t.test('stalled peers are cut off and hold nothing: no request line, a receive without its stream, half a stream', async (t) => {
  const target = await startSshTarget(t, { limits: { requestLineMs: 800, idleMs: 1500 } });
  const conn = await rawClient(t, target.port, { privateKey: target.privateKey });

  const silent = await openChannel(conn, null);
  const answer = await firstLine(silent, 5000);
  t.equal(answer.code, 'ERR_PEER_TIMEOUT', 'a channel with no request line is answered with a timeout');
  t.ok((await closedWithin(silent, 5000)) < 5000, 'and closed');

  const { name, stream } = await streamOf(target, 'v', 4 << 20);
  for (const sent of [0, stream.length >> 1]) {
    const channel = await openChannel(conn, { op: 'receive', volume: 'v', snapshot: name });
    t.same(await firstLine(channel), { ok: true, ready: true }, `receive accepted (then ${sent} bytes and silence)`);
    if (sent > 0) channel.write(stream.subarray(0, sent));
    const started = Date.now();
    const ms = await closedWithin(channel, 10_000);
    t.ok(Date.now() - started >= 1000 && ms < 10_000, `cut off after the idle time (${ms} ms)`);
    t.ok(await waitFor(() => receiveTemps(target).length === 0, 3000), 'its temporary subvolume is deleted');
    t.notOk(await btrfs.isSubvolume(target.store.layout.snapshot(name)), 'nothing received under the name');
    t.ok(await lockFree(target, 'v'), "the volume's lock is released");
  }
  t.ok(target.logs.some((l) => /receive v failed: .*sent or took nothing for 2 s \(REPLICATION_IDLE_TIMEOUT\)/.test(l)), 'the reason is logged');
  // The volume can be removed (it was ERR_VOLUME_BUSY while a stalled receive held it).
  await target.store.remove('v');
  t.pass('the volume is removed');
});

t.test('stalled readers are cut off: a send and a files answer nobody reads', async (t) => {
  const target = await startSshTarget(t, { limits: { idleMs: 1500 } });
  await target.store.create('big', { copyOnWrite: true, compression: null });
  const data = Buffer.alloc(24 << 20).map((_, i) => (i * 2246822519) >>> 24);
  writeFileSync(join(target.store.layout.volume('big'), 'data'), data);
  const snap = await target.store.snapshot('big');
  const conn = await rawClient(t, target.port, { privateKey: target.privateKey });
  for (const request of [
    { op: 'send', volume: 'big', snapshot: snap },
    { op: 'files', volume: 'big', paths: ['data'] },
  ]) {
    const channel = await openChannel(conn, request);
    t.equal((await firstLine(channel)).ok, true, `${request.op}: answered`);
    // Never read: the SSH window fills and the server waits for us, then gives up and closes the channel.
    const started = Date.now();
    t.ok(await waitFor(() => target.logs.some((l) => new RegExp(`${request.op} big failed: .*REPLICATION_IDLE_TIMEOUT`).test(l)), 15_000), `${request.op}: cut off, the reason logged`);
    t.comment(`${request.op}: cut off after ${Date.now() - started} ms`);
    t.ok(await waitFor(() => (channel as unknown as { incoming: { state: string } }).incoming.state === 'closed', 5000), `${request.op}: the server closed the channel`);
  }
  // The server is still fine.
  const again = await rawClient(t, target.port, { privateKey: target.privateKey });
  const channel = await openChannel(again, { op: 'list', volume: 'big' });
  t.equal(((await firstLine(channel)).snapshots as unknown[]).length, 1, 'and answers the next request');
});

t.test('an authenticated connection that makes no request is closed after the idle time', async (t) => {
  const target = await startSshTarget(t, { limits: { idleMs: 1000 } });
  const conn = await rawClient(t, target.port, { privateKey: target.privateKey });
  const ms = await closedWithin(conn, 8000);
  t.ok(ms >= 800 && ms < 8000, `closed after ${ms} ms`);
});

t.test('requests at once are bounded per connection and per key, refused with a clear error', async (t) => {
  const target = await startSshTarget(t, { limits: { requestLineMs: 20_000, maxRequestsPerConnection: 2, maxRequestsPerKey: 3 } });
  const a = await rawClient(t, target.port, { privateKey: target.privateKey });
  const b = await rawClient(t, target.port, { privateKey: target.privateKey });
  // Channels that say nothing hold their place.
  const held = [await openChannel(a, null), await openChannel(a, null)];
  const third = await firstLine(await openChannel(a, { op: 'list', volume: 'v' }));
  t.equal(third.code, 'ERR_TOO_MANY_REQUESTS', 'the third on one connection is refused');
  t.match(third.error, /at most 2 per connection and 3 per key/);
  held.push(await openChannel(b, null));
  const fourth = await firstLine(await openChannel(b, { op: 'list', volume: 'v' }));
  t.equal(fourth.code, 'ERR_TOO_MANY_REQUESTS', 'the fourth of one key, on another connection, is refused');
  held[0]!.write(`${JSON.stringify({ v: 1, op: 'list', volume: 'v' })}\n`);
  t.equal((await firstLine(held[0]!)).ok, true, 'a held one is served when it speaks');
  await sleep(200);
  t.equal((await firstLine(await openChannel(b, { op: 'list', volume: 'v' }))).ok, true, 'and its place is given back');
});

t.test('authorized_keys options: from=, volumes=, push-only, pull-only; unknown options refuse the line', async (t) => {
  const target = await startSshTarget(t, { keyOptions: 'from="127.0.0.2,127.0.1.0/24,!127.0.1.9"' });
  const refused = (address: string) =>
    rawClient(t, target.port, { privateKey: target.privateKey, localAddress: address }).then(
      (c) => {
        c.end();
        return false;
      },
      () => true,
    );
  t.notOk(await refused('127.0.0.2'), 'from 127.0.0.2: in');
  t.notOk(await refused('127.0.1.5'), 'from 127.0.1.5 (in 127.0.1.0/24): in');
  t.ok(await refused('127.0.0.1'), 'from 127.0.0.1: refused');
  t.ok(await refused('127.0.1.9'), 'from 127.0.1.9 (negated): refused');
  t.ok(target.logs.some((l) => /refused the key of .*authorized_keys line 1: its from="127\.0\.0\.2,127\.0\.1\.0\/24,!127\.0\.1\.9" does not allow 127\.0\.0\.1/.test(l)), 'the refusal names the line and the address');

  const ask = async (options: string, op: string, volume: string, extra: Record<string, unknown> = {}) => {
    target.setAuthorizedKeys(`${options} ${target.publicLine} peer\n`);
    const conn = await rawClient(t, target.port, { privateKey: target.privateKey });
    try {
      return await firstLine(await openChannel(conn, { op, volume, ...extra }));
    } finally {
      conn.end();
    }
  };
  t.equal((await ask('volumes="db*,!dbsecret"', 'list', 'db1')).ok, true, 'volumes=: a named volume is served');
  const other = await ask('volumes="db*,!dbsecret"', 'list', 'web');
  t.equal(other.code, 'ERR_NOT_PERMITTED', 'volumes=: another is refused');
  t.match(other.error, /may not list web: its volumes="db\*,!dbsecret" does not name web/);
  t.equal((await ask('volumes="db*,!dbsecret"', 'tree', 'dbsecret')).code, 'ERR_NOT_PERMITTED', 'volumes=: a negated one is refused');

  t.same(await ask('push-only', 'receive', 'db1', { snapshot: 'db1@2024-01-01T00:00:00.000000' }), { ok: true, ready: true }, 'push-only: receive allowed');
  t.equal((await ask('push-only', 'list', 'db1')).ok, true, 'push-only: list allowed (a sender chooses its parent)');
  for (const op of ['send', 'tree']) {
    const extra = op === 'send' ? { snapshot: 'db1@2024-01-01T00:00:00.000000' } : {};
    t.equal((await ask('push-only', op, 'db1', extra)).code, 'ERR_NOT_PERMITTED', `push-only: ${op} refused`);
  }
  t.equal((await ask('pull-only', 'receive', 'db1', { snapshot: 'db1@2024-01-01T00:00:00.000000' })).code, 'ERR_NOT_PERMITTED', 'pull-only: receive refused');
  t.equal((await ask('pull-only,volumes="db1"', 'files', 'db1', { paths: [] })).code, 'ERR_VOLUME_NOT_FOUND', 'pull-only: files allowed (then: no such volume)');

  target.setAuthorizedKeys(`command="/bin/sh" ${target.publicLine} peer\nno-pty,environment="A=B" ${target.publicLine} peer\npush-only,pull-only ${target.publicLine} peer\n`);
  t.ok(await refused('127.0.0.1'), 'command=, environment= and push-only with pull-only: every line refused');
  for (const [line, why] of [
    [1, /line 1: option command= is not supported: line ignored/],
    [2, /line 2: option environment= is not supported: line ignored/],
    [3, /line 3: push-only and pull-only together allow nothing: line ignored/],
  ] as const) {
    t.ok(target.logs.some((l) => why.test(l)), `line ${line}: the reason is logged`);
  }
  target.setAuthorizedKeys(`restrict,no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc ${target.publicLine} peer\n`);
  t.notOk(await refused('127.0.0.1'), 'restrictions of what is never offered are accepted');
});
