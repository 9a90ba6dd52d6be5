// Concurrency over the socket: requests on one volume are serialised by its
// lock, requests on other volumes go on meanwhile, the event loop keeps
// answering while a request waits for a lock or the kernel works, and the
// gate admits heavy requests without ever holding up light ones.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { WorkGate } from '../../src/server/gate.js';
import { stateDirOf } from '../../src/store/open.js';
import { startTestDaemon, volumeEntries, type TestDaemon } from '../fixtures/daemon.js';

/** Takes the volume's lock as another buttervolume process would (an flock on its lock file). */
async function holdVolumeLock(d: TestDaemon, volume: string) {
  const dir = join(stateDirOf(d.config), 'locks');
  mkdirSync(dir, { recursive: true });
  return btrfs.lock(join(dir, `${volume}.lock`));
}

/** A promise with a flag saying whether it settled yet. */
function tracked<T>(p: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let settled = false;
  const promise = p.finally(() => (settled = true));
  return { promise, done: () => settled };
}

t.test('a request waiting for its volume does not hold up other volumes or the server', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'a' });
  await d.call('/VolumeDriver.Create', { Name: 'b' });
  const lock = await holdVolumeLock(d, 'a');
  t.teardown(() => lock.release());
  const a = tracked(d.call('/VolumeDriver.Snapshot', { Name: 'a' }));
  await sleep(100);
  t.notOk(a.done(), 'the snapshot of a waits for its lock');
  const b = await d.call('/VolumeDriver.Snapshot', { Name: 'b' });
  t.same([b.status, b.body.Err], [200, ''], 'b is snapshotted meanwhile');
  t.equal((await d.call('/VolumeDriver.List', {})).body.Volumes.length, 2, 'List answers meanwhile');
  t.same((await d.call('/VolumeDriver.Get', { Name: 'b' })).body.Volume.Status.Snapshots, 1, 'Get answers meanwhile');
  t.notOk(a.done(), 'a still waits');
  lock.release();
  const r = await a.promise;
  t.same([r.status, r.body.Err], [200, ''], 'a is snapshotted once its lock is free');
  t.match(r.body.Snapshot, /^a@/);
});

t.test('two requests on one volume run one after the other, in arrival order', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  const lock = await holdVolumeLock(d, 'v');
  t.teardown(() => lock.release());
  const order: string[] = [];
  const remove = d.call('/VolumeDriver.Remove', { Name: 'v' }).then((r) => (order.push('remove'), r));
  await sleep(100); // the Remove is now queued on v's lock
  const snapshot = d.call('/VolumeDriver.Snapshot', { Name: 'v' }).then((r) => (order.push('snapshot'), r));
  await sleep(100);
  t.same(order, [], 'both wait');
  lock.release();
  const [rm, snap] = await Promise.all([remove, snapshot]);
  t.same(order, ['remove', 'snapshot']);
  t.same(rm.body, { Err: '' });
  t.same([snap.status, snap.body], [500, { Err: 'No such volume: v' }], 'the snapshot ran after the removal, never during it');
  t.same(readdirSync(d.config.snapshotsPath), []);
});

t.test('concurrent restores and snapshots of one volume: every one whole, nothing left behind', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'v' });
  const file = join(d.config.volumesPath, 'v', 'data');
  writeFileSync(file, 'original');
  const first = (await d.call('/VolumeDriver.Snapshot', { Name: 'v' })).body.Snapshot;
  writeFileSync(file, 'changed');
  const requests = Array.from({ length: 16 }, (_, i) =>
    i % 2 ? d.call('/VolumeDriver.Snapshot', { Name: 'v' }) : d.call('/VolumeDriver.Snapshot.Restore', { Name: first }),
  );
  const answers = await Promise.all(requests);
  t.same(answers.map((r) => r.status), answers.map(() => 200), 'all succeed');
  const names = [first, ...answers.map((r) => r.body.VolumeBackup ?? r.body.Snapshot)];
  t.equal(new Set(names).size, 17, 'every snapshot and backup has its own name');
  t.same(readdirSync(d.config.snapshotsPath).sort(), [...names].sort());
  for (const n of names) t.match(readFileSync(join(d.config.snapshotsPath, n, 'data'), 'utf8'), /^(original|changed)$/, `${n} is whole`);
  t.equal(readFileSync(file, 'utf8'), 'original', 'the volume holds the restored data');
  t.same(volumeEntries(d.config.volumesPath), ['v'], 'no work subvolumes left');
});

t.test('the event loop answers while the kernel snapshots a volume full of dirty data', async (t) => {
  const d = await startTestDaemon(t);
  await d.call('/VolumeDriver.Create', { Name: 'big' });
  // 256 MiB not yet written back: the snapshot ioctl has to flush it all.
  const chunk = Buffer.alloc(1 << 20, 7);
  for (let i = 0; i < 256; i++) writeFileSync(join(d.config.volumesPath, 'big', `f${i}`), chunk);
  const snap = tracked(d.call('/VolumeDriver.Snapshot', { Name: 'big' }));
  let answered = 0;
  while (!snap.done()) {
    const r = await d.call('/VolumeDriver.Capabilities', {});
    if (r.status === 200 && !snap.done()) answered++;
  }
  t.equal((await snap.promise).status, 200);
  t.ok(answered >= 2, `${answered} requests answered during the snapshot`);
});

t.test('heavy requests are admitted up to the pool size minus one; light ones always pass', async (t) => {
  const d = await startTestDaemon(t);
  const slots = new WorkGate().slots;
  const names = Array.from({ length: slots + 1 }, (_, i) => `h${i}`);
  for (const n of [...names, 'light']) await d.call('/VolumeDriver.Create', { Name: n });
  const locks = await Promise.all(names.slice(0, slots).map((n) => holdVolumeLock(d, n)));
  t.teardown(() => locks.forEach((l) => l.release()));
  const waiting = names.slice(0, slots).map((n) => tracked(d.call('/VolumeDriver.Snapshot', { Name: n })));
  await sleep(100);
  const gated = tracked(d.call('/VolumeDriver.Snapshot', { Name: names[slots] }));
  const mount = await d.call('/VolumeDriver.Mount', { Name: 'light', ID: 'c' });
  t.same([mount.status, mount.body.Err], [200, ''], 'Mount is answered while every heavy slot is taken');
  // Not a timing: the heavy requests hold their slots until the locks are
  // released below, so a Mount that waited for a slot would never be answered.
  t.notOk(waiting.some((w) => w.done()) || gated.done(), 'no heavy request was answered before it');
  await sleep(100);
  t.notOk(gated.done(), `a ${slots + 1}th heavy request waits for a slot`);
  locks[0]!.release();
  t.equal((await waiting[0]!.promise).status, 200);
  t.equal((await gated.promise).status, 200, 'and gets the slot the first one freed');
  locks.forEach((l) => l.release());
  t.same((await Promise.all(waiting.map((w) => w.promise))).map((r) => r.status), waiting.map(() => 200));
});
