// A receive killed with SIGKILL half-way leaves its temporary subvolume; the
// store removes it at its next start (the process is gone), never one of a
// receive still running. A process is told by its PID, start time and boot:
// a daemon that is PID 1 at every start (a managed plugin) cleans what its
// previous lives left. Leftovers whose root is immutable are cleaned too.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import { packageRoot } from '../../src/btrfs/binding.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { btrfsProgs } from '../fixtures/btrfs.js';
import { openStore } from '../fixtures/store.js';

// Receives a stream file into a directory, slowly (so it can be killed in the middle).
const script = `
const { receive } = await import(process.env.BV_DIST + '/btrfs/index.js');
const { createReadStream } = await import('node:fs');
const { Transform } = await import('node:stream');
const slow = new Transform({ transform(chunk, _, done) { setTimeout(() => done(null, chunk), 20); } });
console.log('started');
await receive(process.argv[1], createReadStream(process.argv[2], { highWaterMark: 64 * 1024 }).pipe(slow));
`;

t.test('SIGKILL in the middle of a receive: the next start removes the partial subvolume', async (t) => {
  const { options, store, mnt } = await openStore(t);
  const vol = join(mnt, 'source');
  btrfsProgs('subvolume', 'create', vol);
  writeFileSync(join(vol, 'data'), Buffer.alloc(32 * 1024 * 1024, 9));
  btrfsProgs('subvolume', 'snapshot', '-r', vol, join(mnt, 'source@1'));
  const stream = join(mnt, 'stream');
  btrfsProgs('send', '-q', '-f', stream, join(mnt, 'source@1'));
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, options.snapshotsPath, stream], {
    env: { ...process.env, BV_DIST: join(packageRoot, 'dist') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  let partial: string[] = [];
  for (let i = 0; i < 200 && partial.length === 0; i++) {
    await sleep(25);
    partial = readdirSync(options.snapshotsPath).filter((n) => n.startsWith('.bv-receive.'));
  }
  t.match(partial, [new RegExp(`^\\.bv-receive\\.${child.pid}\\.\\d+\\.[0-9a-f]{8}\\.1\\.1$`)], 'a partial subvolume is there, under its temporary name');
  t.equal(partial.length, 1);
  // A store opened while that receive still runs leaves it alone.
  await VolumeStore.open(options, { recover: true });
  t.same(readdirSync(options.snapshotsPath).filter((n) => n.startsWith('.bv-receive.')), partial, 'not removed while its process runs');
  child.kill('SIGKILL');
  await exited;
  const removed = await store.recover();
  t.same(removed, partial, 'removed once its process is gone');
  t.same(readdirSync(options.snapshotsPath), [], 'nothing left');
  // Also in the other receiving directories (TEST_REMOTE_PATH).
  const received = join(mnt, 'received');
  mkdirSync(received);
  btrfsProgs('subvolume', 'create', join(received, '.bv-receive.999999999.1.1'));
  await VolumeStore.open({ ...options, testRemotePath: received }, { recover: true });
  t.same(readdirSync(received), []);
});

const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/-/g, '').slice(0, 8);

t.test('a leftover whose root is immutable or append-only, and read-only, is cleaned', async (t) => {
  const { options, store } = await openStore(t);
  const names = ['.bv-receive.999999999.1.1', `.bv-receive.999999999.12345.${boot}.1.1`];
  for (const [i, name] of names.entries()) {
    const path = join(options.snapshotsPath, name);
    btrfsProgs('subvolume', 'create', path);
    writeFileSync(join(path, 'data'), 'left');
    execFileSync('chattr', [i === 0 ? '+i' : '+a', path]);
    btrfsProgs('property', 'set', path, 'ro', 'true');
  }
  t.same((await store.recover()).sort(), [...names].sort(), 'both removed');
  t.same(readdirSync(options.snapshotsPath), []);
});

// Run as PID 1 of a new PID namespace (with its own /proc), as the plugin's node is.
const pidOne = `
const dist = process.env.BV_DIST;
const { VolumeStore } = await import(dist + '/store/volume-store.js');
const { receive } = await import(dist + '/btrfs/index.js');
const { readdirSync, readFileSync } = await import('node:fs');
const { PassThrough } = await import('node:stream');
const options = JSON.parse(process.argv[1]);
const stream = readFileSync(process.argv[2]);
const temps = () => readdirSync(options.snapshotsPath).filter((n) => n.startsWith('.bv-receive.')).sort();
const before = temps();
// A receive of this process, half-way.
const input = new PassThrough();
const receiving = receive(options.snapshotsPath, input);
input.write(stream.subarray(0, stream.length >> 1));
let running = [];
for (let i = 0; i < 400 && running.length === 0; i++) {
  await new Promise((r) => setTimeout(r, 10));
  running = temps().filter((n) => !before.includes(n));
}
const store = await VolumeStore.open(options, { recover: true });
const afterOpen = temps();
const again = await store.recover();
input.end(stream.subarray(stream.length >> 1));
const received = await receiving;
console.log(JSON.stringify({ pid: process.pid, running, afterOpen, again, received: received.name, after: readdirSync(options.snapshotsPath).sort() }));
`;

t.test('PID 1 at every start: what a previous PID 1 left is removed, not the receive running in this one', async (t) => {
  const { options, mnt } = await openStore(t);
  const vol = join(mnt, 'source');
  btrfsProgs('subvolume', 'create', vol);
  writeFileSync(join(vol, 'data'), Buffer.alloc(8 * 1024 * 1024, 3));
  btrfsProgs('subvolume', 'snapshot', '-r', vol, join(mnt, 'source@1'));
  const stream = join(mnt, 'stream');
  btrfsProgs('send', '-q', '-f', stream, join(mnt, 'source@1'));
  // Left by earlier lives of PID 1: the old form (PID only), another start time, another boot.
  const leftovers = ['.bv-receive.1.7.1', `.bv-receive.1.12345.${boot}.1.1`, '.bv-receive.1.1.00000001.1.1'];
  for (const name of leftovers) btrfsProgs('subvolume', 'create', join(options.snapshotsPath, name));
  const out = execFileSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--input-type=module', '-e', pidOne, JSON.stringify(options), stream], {
    env: { ...process.env, BV_DIST: join(packageRoot, 'dist') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  t.equal(r.pid, 1, 'the store ran as PID 1');
  t.match(r.running, [/^\.bv-receive\.1\.\d+\.[0-9a-f]{8}\.1\.1$/], "this PID 1's receive was running");
  t.same(r.afterOpen, r.running, 'opening the store with recover removed the earlier lives\' leftovers, not the running receive');
  t.same(r.again, [], 'nor did a second recover');
  t.equal(r.received, 'source@1', 'the receive completed');
  t.same(r.after, ['source@1']);
});
