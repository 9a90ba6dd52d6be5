// receive(): what it resolves to, the lifecycle of a received subvolume, the
// parent and clone-source checks, several streams in one input, names that
// are taken, and the event loop while a big stream is applied. Kernel
// streams come from btrfs-progs (a fixture); content is compared with what
// btrfs receive makes of the same stream (the conformance harness compares
// many more histories, test/conformance).
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { btrfsProgs, mountBtrfs } from '../fixtures/btrfs.js';
import { subvolumeShow } from '../fixtures/oracle.js';
import { buildHistory, randomDataSnapshot, send } from '../fixtures/send-history.js';
import { treeDiff } from '../fixtures/tree-digest.js';

const { mnt } = mountBtrfs(t, { size: 2 * 1024 ** 3, mountOptions: ['compress=zstd'] });
const src = join(mnt, 'src');
mkdirSync(src);
const { s1, s2 } = buildHistory(src);
const full = join(mnt, 's1.stream');
const incr = join(mnt, 's2.stream');
send(full, [s1], { proto: 2 });
send(incr, [s2], { proto: 2, parent: s1 });

let n = 0;
function dest(): string {
  const d = join(mnt, `dest${++n}`);
  mkdirSync(d);
  return d;
}

t.test('full then incremental: names, UUIDs, read-only, received marks, content as btrfs receive makes it', async (t) => {
  const d = dest();
  const r1 = await btrfs.receive(d, createReadStream(full));
  const [src1, src2] = await Promise.all([btrfs.subvolumeInfo(s1), btrfs.subvolumeInfo(s2)]);
  t.equal(r1.name, 's1');
  t.equal(r1.path, join(d, 's1'));
  t.equal(r1.receivedUuid, src1.uuid, 'the received UUID is the sent snapshot\'s UUID');
  t.equal(r1.parentUuid, null);
  t.same(r1.subvolumes.map((s) => s.name), ['s1']);
  const info1 = await btrfs.subvolumeInfo(r1.path);
  t.equal(info1.uuid, r1.uuid);
  t.equal(info1.readonly, true);
  t.equal(info1.stransid, src1.ctransid, 'stransid = the sender\'s ctransid');
  t.ok(info1.rtransid > 0);
  t.equal(subvolumeShow(r1.path)['Received UUID'], src1.uuid, 'btrfs-progs agrees');
  const r2 = await btrfs.receive(d, createReadStream(incr));
  t.equal(r2.parentUuid, r1.uuid, 'the incremental is a snapshot of the received parent');
  t.equal(r2.receivedUuid, src2.uuid);
  const ref = dest();
  btrfsProgs('receive', '-q', '-f', full, ref);
  btrfsProgs('receive', '-q', '-f', incr, ref);
  t.equal(await treeDiff(r2.path, join(ref, 's2')), '', 'same tree as btrfs receive');
  t.equal(await treeDiff(r1.path, join(ref, 's1')), '');
  t.same(readdirSync(d).sort(), ['s1', 's2'], 'no temporary left');
});

t.test('several streams back to back, and several subvolumes in one stream (send -e)', async (t) => {
  const two = join(mnt, 'two.stream');
  writeFileSync(two, Buffer.concat([send(join(mnt, 'a.stream'), [s1], { proto: 2 }), send(join(mnt, 'b.stream'), [s2], { proto: 1, parent: s1 })]));
  const d = dest();
  const r = await btrfs.receive(d, createReadStream(two));
  t.same(r.subvolumes.map((s) => s.name), ['s1', 's2'], 'listed in order');
  t.equal(r.name, 's2', 'the result is the last one');
  t.equal(r.subvolumes[1]!.parentUuid, r.subvolumes[0]!.uuid);
  const e = join(mnt, 'e.stream');
  send(e, [s1, s2], { proto: 2, endCmd: true });
  const d2 = dest();
  const re = await btrfs.receive(d2, createReadStream(e));
  t.same(re.subvolumes.map((s) => s.name), ['s1', 's2']);
  const ref = dest();
  btrfsProgs('receive', '-q', '-f', e, ref);
  t.equal(await treeDiff(join(d2, 's2'), join(ref, 's2')), '', 'as btrfs receive makes it');
  t.equal(await treeDiff(join(d, 's1'), join(ref, 's1')), '');
});

t.test('a name already taken in the destination is refused, never overwritten', async (t) => {
  const d = dest();
  await btrfs.createSubvolume(join(d, 's1'));
  writeFileSync(join(d, 's1', 'mine'), 'keep');
  await t.rejects(btrfs.receive(d, createReadStream(full)), { code: 'EEXIST', path: join(d, 's1') });
  t.same(readdirSync(join(d, 's1')), ['mine'], 'untouched');
  writeFileSync(join(d, 'plain'), '');
  t.same(readdirSync(d).sort(), ['plain', 's1'], 'no temporary left');
});

t.test('parents: missing, outside the allowed directories, modified since received, writable', async (t) => {
  const d = dest();
  await t.rejects(btrfs.receive(d, createReadStream(incr)), { name: 'SendStreamError', code: 'ERR_RECEIVE_PARENT_NOT_FOUND', command: 1, commandName: 'SNAPSHOT' });
  t.same(readdirSync(d), [], 'nothing created');
  // The parent received elsewhere: only found when that directory is allowed.
  const other = dest();
  await btrfs.receive(other, createReadStream(full));
  await t.rejects(btrfs.receive(d, createReadStream(incr)), { code: 'ERR_RECEIVE_PARENT_NOT_FOUND', message: /not in an allowed directory/ });
  const ok = await btrfs.receive(d, createReadStream(incr), { allowedDirs: [other] });
  t.equal(ok.parentUuid, (await btrfs.subvolumeInfo(join(other, 's1'))).uuid);
  // A parent made writable and changed after it was received (btrfs receive would apply the stream on it).
  const again = dest();
  await btrfs.receive(again, createReadStream(full));
  await btrfs.setReadonly(join(again, 's1'), false); // setReadonly keeps the received UUID
  writeFileSync(join(again, 's1', 'hard'), 'changed');
  await t.rejects(btrfs.receive(again, createReadStream(incr)), { code: 'ERR_RECEIVE_PARENT_MODIFIED', message: /is not read-only/ });
  await btrfs.setReadonly(join(again, 's1'), true);
  await t.rejects(btrfs.receive(again, createReadStream(incr)), { code: 'ERR_RECEIVE_PARENT_MODIFIED', message: /modified after it was received/ });
  t.same(readdirSync(again), ['s1'], 'no partial subvolume left');
});

t.test('a parent matched by its own UUID: at the ctransid the stream names, or unchanged since it was taken', async (t) => {
  const vol = join(src, 'own');
  btrfsProgs('subvolume', 'create', vol);
  writeFileSync(join(vol, 'a'), 'one');
  const a = join(src, 'own-a');
  btrfsProgs('subvolume', 'snapshot', '-r', vol, a);
  writeFileSync(join(vol, 'b'), 'two');
  const b = join(src, 'own-b');
  btrfsProgs('subvolume', 'snapshot', '-r', vol, b);
  const fromA = join(mnt, 'own-b.stream');
  send(fromA, [b], { proto: 2, parent: a });
  // A sent in full elsewhere (A'), changed there and sent back with A' as parent: the failover
  // pull. The stream names A's UUID (A' was received from it) and A''s ctransid, not A's.
  const copies = dest();
  const copy = await btrfs.receive(copies, btrfs.send(a));
  btrfsProgs('subvolume', 'snapshot', copy.path, join(copies, 'work'));
  writeFileSync(join(copies, 'work', 'c'), 'three');
  const c = join(copies, 'own-c');
  btrfsProgs('subvolume', 'snapshot', '-r', join(copies, 'work'), c);
  const fromCopy = join(mnt, 'own-c.stream');
  send(fromCopy, [c], { proto: 2, parent: copy.path });
  t.ok((await btrfs.subvolumeInfo(copy.path)).ctransid !== (await btrfs.subvolumeInfo(a)).ctransid, "the copy's ctransid is not A's");
  // Received into a directory of their own, with A's directory allowed (A' is not): A is the parent.
  const ok = dest();
  t.equal((await btrfs.receive(ok, createReadStream(fromA), { allowedDirs: [src] })).parentUuid, (await btrfs.subvolumeInfo(a)).uuid, 'A at the ctransid the stream names');
  const back = await btrfs.receive(ok, createReadStream(fromCopy), { allowedDirs: [src] });
  t.equal(await treeDiff(back.path, c), '', 'A unchanged since taken: the copy\'s stream applies on it');
  // A made writable, changed, made read-only again.
  await btrfs.setReadonly(a, false);
  writeFileSync(join(a, 'a'), 'changed');
  await btrfs.setReadonly(a, true);
  const refused = dest();
  for (const stream of [fromA, fromCopy]) {
    await t.rejects(btrfs.receive(refused, createReadStream(stream), { allowedDirs: [src] }), {
      code: 'ERR_RECEIVE_PARENT_MODIFIED',
      commandName: 'SNAPSHOT',
      message: /own-a was modified after it was taken/,
    });
  }
  t.same(readdirSync(refused), [], 'nothing left');
  // A stream made from A as it is now names its new ctransid: A is that very state.
  const fromNewA = join(mnt, 'own-b2.stream');
  send(fromNewA, [b], { proto: 2, parent: a });
  const r = await btrfs.receive(refused, createReadStream(fromNewA), { allowedDirs: [src] });
  t.equal(await treeDiff(r.path, b), '', 'applied on A as it is: B');
});

t.test('clone sources outside the allowed directories are refused', async (t) => {
  // s3 holds a file sharing extents with a snapshot of another subvolume, sent with it as clone source (-c).
  const other = join(src, 'other');
  btrfsProgs('subvolume', 'create', other);
  writeFileSync(join(other, 'blob'), Buffer.alloc(256 * 1024, 7));
  const otherSnap = join(src, 'other-1');
  btrfsProgs('subvolume', 'snapshot', '-r', other, otherSnap);
  const vol = join(src, 'vol');
  execFileSync('cp', ['--reflink=always', join(otherSnap, 'blob'), join(vol, 'cloned')]);
  const s3 = join(src, 's3');
  btrfsProgs('subvolume', 'snapshot', '-r', vol, s3);
  const stream = join(mnt, 's3.stream');
  btrfsProgs('send', '-q', '--proto', '2', '-p', s2, '-c', otherSnap, '-f', stream, s3);
  t.ok(btrfs.dumpSendStream(await import('node:fs').then((f) => f.readFileSync(stream))).some((c) => c.command === 'CLONE' && c.clonePath === 'blob'), 'the stream clones from the other subvolume');
  const sources = dest();
  send(join(mnt, 'other.stream'), [otherSnap], { proto: 2 });
  await btrfs.receive(sources, createReadStream(join(mnt, 'other.stream')));
  const d = dest();
  await btrfs.receive(d, createReadStream(full));
  await btrfs.receive(d, createReadStream(incr));
  await t.rejects(btrfs.receive(d, createReadStream(stream)), { code: 'ERR_RECEIVE_CLONE_SOURCE', commandName: 'CLONE' });
  t.same(readdirSync(d).sort(), ['s1', 's2'], 'the partial s3 was deleted');
  const r = await btrfs.receive(d, createReadStream(stream), { allowedDirs: [sources] });
  t.equal(r.name, 's3');
  t.equal(await treeDiff(r.path, s3), '', 'the clone is right');
});

t.test('the event loop keeps turning while a big stream is applied; memory stays bounded', async (t) => {
  const snap = randomDataSnapshot(src, 'big', 160);
  const d = dest();
  let ticks = 0;
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    ticks++;
  }, 10);
  const before = process.memoryUsage().rss;
  let peak = before;
  const watch = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = performance.now();
  await btrfs.receive(d, btrfs.send(snap));
  const ms = performance.now() - started;
  clearInterval(timer);
  clearInterval(watch);
  t.ok(ticks > ms / 100, `${ticks} ticks in ${ms.toFixed(0)} ms (longest gap ${worst.toFixed(0)} ms)`);
  t.ok(peak - before < 100 * 1024 * 1024, `memory grew by ${((peak - before) / 1024 / 1024).toFixed(0)} MB for a 160 MB stream`);
  t.equal(await treeDiff(join(d, 'big-1'), snap), '');
});
