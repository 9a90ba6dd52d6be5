// Quotas by ioctl: turning them on (simple and full qgroups), the status
// item, a subvolume's qgroup and its limit, enforcement (EDQUOT), and what
// deleting a snapshot frees; btrfs-progs (qgroup show, filesystem du) is the
// oracle. Each kind on a filesystem of its own (a filesystem has one kind).
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs, plainDir } from '../fixtures/btrfs.js';
import { filesystemDu, qgroupShow } from '../fixtures/quota-oracle.js';

const MiB = 1024 * 1024;
// EDQUOT: libuv has no name for it (Node says code 'UNKNOWN'), the errno is -122.
const EDQUOT = -122;

/** The errno `fn` throws, or null. */
function errnoOf(fn: () => void): number | null {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).errno ?? null;
  }
}

/** Writes `bytes` of random data (incompressible) to `file`. */
function writeRandom(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  try {
    for (let done = 0; done < bytes; done += MiB) writeSync(fd, randomBytes(Math.min(MiB, bytes - done)));
  } finally {
    closeSync(fd);
  }
}

/** Appends 1 MiB chunks to `file` until a write fails or `max` is written; returns what was written and the error. */
function fillUntilRefused(file: string, max: number): { written: number; error: NodeJS.ErrnoException | null } {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    while (written < max) written += writeSync(fd, randomBytes(MiB));
    closeSync(fd);
    return { written, error: null };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // the close may report the same refusal (delayed allocation)
    }
    return { written, error: err as NodeJS.ErrnoException };
  }
}

t.test('quotas off: the status says so, qgroup calls are ENOTCONN', async (t) => {
  const { mnt } = mountBtrfs(t);
  const v = join(mnt, 'v');
  await btrfs.createSubvolume(v);
  t.same(await btrfs.quotaStatus(mnt), { mode: 'off', flags: 0, inconsistent: false, rescanning: false, enableGeneration: 0 });
  t.same(await btrfs.quotaStatus(v), (await btrfs.quotaStatus(mnt)), 'any path on the filesystem');
  await t.rejects(btrfs.qgroupOf(v), { code: 'ENOTCONN', syscall: 'BTRFS_IOC_TREE_SEARCH_V2', message: /quotas are not enabled/ });
  await t.rejects(btrfs.qgroupsById(mnt, [256]), { code: 'ENOTCONN' });
  await t.rejects(btrfs.setQgroupLimit(v, 10 * MiB), { code: 'ENOTCONN', syscall: 'BTRFS_IOC_QGROUP_LIMIT', message: /quotas are not enabled/ });
  t.throws(() => qgroupShow(mnt), /quotas not enabled/, 'btrfs-progs agrees');
  const plain = plainDir(t);
  await t.rejects(btrfs.quotaStatus(plain), { code: 'ENOTTY', message: /not a btrfs filesystem/ });
  await t.rejects(btrfs.enableQuotas(plain, 'simple'), { code: 'ENOTTY' });
  t.throws(() => btrfs.enableQuotas(mnt, 'off' as never), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.setQgroupLimit(v, -1), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.setQgroupLimit(v, 1.5), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.qgroupsById(mnt, ['256' as never]), { code: 'ERR_INVALID_ARG_TYPE' });
});

t.test('simple quotas: enable, usage, limits, EDQUOT, snapshots', async (t) => {
  const { mnt } = mountBtrfs(t);
  const before = join(mnt, 'before');
  await btrfs.createSubvolume(before);
  writeRandom(join(before, 'old'), 4 * MiB);
  await btrfs.syncFilesystem(mnt);

  const on = await btrfs.enableQuotas(mnt, 'simple');
  t.equal(on.mode, 'simple');
  t.ok(on.flags & 8, 'BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE');
  t.ok(on.enableGeneration > 0, 'the generation quotas started at');
  t.equal(on.inconsistent, false);
  t.same(await btrfs.quotaStatus(join(mnt, 'before')), on, 'read back');
  t.same(await btrfs.enableQuotas(mnt, 'qgroup'), on, 'another kind asked while one is on: nothing changes');
  t.same(await btrfs.enableQuotas(mnt, 'simple'), on, 'twice: nothing changes');

  const a = join(mnt, 'a');
  const b = join(mnt, 'b');
  await btrfs.createSubvolume(a);
  await btrfs.createSubvolume(b);
  const q0 = await btrfs.qgroupOf(a);
  t.ok(q0, 'a new subvolume has its qgroup');
  t.equal(q0!.id, (await btrfs.subvolumeInfo(a)).id, 'qgroup 0/<subvolume id>');
  t.equal(q0!.maxReferenced, null);
  t.equal(q0!.maxExclusive, null);

  // Usage: what was written, counted at the commit.
  writeRandom(join(a, 'data'), 32 * MiB);
  await btrfs.syncFilesystem(mnt);
  const q1 = (await btrfs.qgroupOf(a))!;
  t.ok(Math.abs(q1.referenced - 32 * MiB) < 0.01 * 32 * MiB, `referenced ${q1.referenced} within 1% of 32 MiB`);
  t.equal(q1.exclusive, q1.referenced, 'simple quotas: exclusive is referenced');
  const oracle = qgroupShow(mnt);
  t.equal(oracle.get(q1.id)?.referenced, q1.referenced, 'btrfs qgroup show agrees');
  t.equal(oracle.get(q1.id)?.exclusive, q1.exclusive);
  const old = (await btrfs.qgroupOf(before))!;
  t.ok(old.referenced < MiB, 'extents written before quotas were on are not counted');

  // A limit, enforced: EDQUOT past it, the neighbour unaffected.
  await btrfs.setQgroupLimit(a, 40 * MiB);
  t.equal((await btrfs.qgroupOf(a))!.maxReferenced, 40 * MiB);
  t.equal(qgroupShow(mnt).get(q1.id)?.maxReferenced, 40 * MiB, 'btrfs qgroup show sees the limit');
  const refused = fillUntilRefused(join(a, 'more'), 64 * MiB);
  t.equal(refused.error?.errno, EDQUOT, 'a write past the limit fails with EDQUOT');
  t.ok(refused.written <= 9 * MiB, `${refused.written} bytes went in before the refusal`);
  writeRandom(join(b, 'neighbour'), 16 * MiB);
  t.pass('the neighbour writes on');

  // Raised while over the limit (the ioctl is not issued inside the full volume), then lowered below usage, then cleared.
  await btrfs.setQgroupLimit(a, 20 * MiB);
  t.equal((await btrfs.qgroupOf(a))!.maxReferenced, 20 * MiB, 'a limit below the usage is accepted by the kernel');
  t.equal(errnoOf(() => writeFileSync(join(a, 'tiny'), randomBytes(8192))), EDQUOT, 'even a small write is refused');
  unlinkSync(join(a, 'more'));
  t.pass('deleting in a volume over its limit works');
  await btrfs.setQgroupLimit(a, 100 * MiB);
  t.equal((await btrfs.qgroupOf(a))!.maxReferenced, 100 * MiB, 'raised again');
  writeRandom(join(a, 'again'), 8 * MiB);
  await btrfs.setQgroupLimit(a, null);
  t.equal((await btrfs.qgroupOf(a))!.maxReferenced, null, 'cleared');
  t.equal(qgroupShow(mnt).get(q1.id)?.maxReferenced, null);

  // Snapshots under simple quotas: a snapshot starts near 0, what it shares stays charged to the writer.
  const snap = join(mnt, 'a@1');
  await btrfs.snapshot(a, snap, { readonly: true });
  const clone = join(mnt, 'clone');
  await btrfs.snapshot(snap, clone);
  await btrfs.syncFilesystem(mnt);
  const [qa, qs, qc] = await btrfs.qgroupsById(mnt, [(await btrfs.subvolumeInfo(a)).id, (await btrfs.subvolumeInfo(snap)).id, (await btrfs.subvolumeInfo(clone)).id]);
  t.ok(qs!.referenced < MiB && qc!.referenced < MiB, 'a snapshot and a clone of it start near 0');
  writeRandom(join(a, 'data'), 32 * MiB); // overwrite: the old extents stay, kept by the snapshot, charged to a
  await btrfs.syncFilesystem(mnt);
  const qa2 = (await btrfs.qgroupOf(a))!;
  t.ok(qa2.referenced - qa!.referenced > 31 * MiB, 'overwriting with a snapshot kept: the volume is charged the new extents too');

  // qgroupsById: in the order asked, null for an id without a qgroup, as btrfs-progs says.
  const ids = [qa2.id, 99_999, q0!.id];
  const list = await btrfs.qgroupsById(a, ids);
  t.equal(list.length, 3);
  t.equal(list[1], null);
  t.equal(list[0]!.id, qa2.id);
  const shown = qgroupShow(mnt);
  for (const q of [list[0]!, list[2]!]) t.equal(shown.get(q.id)?.referenced, q.referenced, `qgroup 0/${q.id} as btrfs-progs shows it`);
  t.same(await btrfs.qgroupsById(mnt, []), []);

  // Not a subvolume root.
  mkdirSync(join(a, 'dir'));
  await t.rejects(btrfs.qgroupOf(join(a, 'dir')), { code: 'EINVAL' });
  await t.rejects(btrfs.setQgroupLimit(join(a, 'dir'), MiB), { code: 'EINVAL', syscall: 'BTRFS_IOC_QGROUP_LIMIT' });
  await t.rejects(btrfs.setQgroupLimit(join(mnt, 'missing'), MiB), { code: 'ENOENT' });
  symlinkSync(a, join(mnt, 'link'));
  await t.rejects(btrfs.setQgroupLimit(join(mnt, 'link'), MiB), { code: 'ENOTDIR' }, 'a symlink is never followed');
});

t.test('full qgroups: enable, referenced of a snapshot, exclusive after the source changed', async (t) => {
  const { mnt } = mountBtrfs(t);
  const on = await btrfs.enableQuotas(mnt, 'qgroup');
  t.equal(on.mode, 'qgroup');
  t.equal(on.flags & 8, 0, 'not simple mode');
  t.same((await btrfs.enableQuotas(mnt, 'simple')).mode, 'qgroup', 'simple asked while full qgroups are on: nothing changes');
  const v = join(mnt, 'v');
  await btrfs.createSubvolume(v);
  writeRandom(join(v, 'f'), 16 * MiB);
  await btrfs.syncFilesystem(mnt);
  const snap = join(mnt, 'v@1');
  await btrfs.snapshot(v, snap, { readonly: true });
  await btrfs.syncFilesystem(mnt);
  const s1 = (await btrfs.qgroupOf(snap))!;
  t.ok(Math.abs(s1.referenced - 16 * MiB) < 0.01 * 16 * MiB, 'a snapshot references all of it');
  t.ok(s1.exclusive < MiB, 'and holds nothing alone');
  writeRandom(join(v, 'f'), 16 * MiB);
  await btrfs.syncFilesystem(mnt);
  const s2 = (await btrfs.qgroupOf(snap))!;
  t.ok(Math.abs(s2.exclusive - 16 * MiB) < 0.02 * 16 * MiB, `after the volume rewrote it, the snapshot alone holds the old data (${s2.exclusive})`);
  t.equal(qgroupShow(mnt).get(s2.id)?.exclusive, s2.exclusive, 'btrfs qgroup show agrees');
  await btrfs.setQgroupLimit(v, 20 * MiB);
  t.equal(fillUntilRefused(join(v, 'g'), 64 * MiB).error?.errno, EDQUOT, 'the limit is on referenced bytes');
});

t.test('extentUsage: what deleting a snapshot frees, as btrfs filesystem du says', async (t) => {
  const { mnt } = mountBtrfs(t);
  const v = join(mnt, 'v');
  await btrfs.createSubvolume(v);
  mkdirSync(join(v, 'd/e'), { recursive: true });
  writeRandom(join(v, 'keep'), 4 * MiB);
  writeRandom(join(v, 'd/e/change'), 6 * MiB);
  writeRandom(join(v, 'd/linked'), 2 * MiB);
  linkSync(join(v, 'd/linked'), join(v, 'd/e/second-name'));
  writeFileSync(join(v, 'small'), 'inline data');
  symlinkSync('/', join(v, 'root-link'));
  await btrfs.createSubvolume(join(v, 'nested'));
  writeRandom(join(v, 'nested/not-counted'), 3 * MiB);
  await btrfs.syncFilesystem(mnt);

  const s1 = join(mnt, 'v@1');
  await btrfs.snapshot(v, s1, { readonly: true });
  const u1 = await btrfs.extentUsage(s1);
  t.equal(u1.exclusive, 0, 'a fresh snapshot shares everything with its volume');
  t.equal(u1.referenced, 12 * MiB, 'its files: keep, change, linked once (the nested subvolume is not in a snapshot)');
  t.equal(u1.files, 4, 'keep, change, linked (two names), small');
  const live = await btrfs.extentUsage(v);
  t.equal(live.referenced, 12 * MiB, 'the nested subvolume and the symlink are not entered');

  writeRandom(join(v, 'd/e/change'), 6 * MiB); // the volume moves on: the old data is s1's alone
  unlinkSync(join(v, 'd/linked'));
  unlinkSync(join(v, 'd/e/second-name')); // the hard-linked file too
  await btrfs.syncFilesystem(mnt);
  const u2 = await btrfs.extentUsage(s1);
  t.equal(u2.exclusive, 8 * MiB, 'after the volume rewrote 6 MiB and deleted 2 MiB, the snapshot alone holds 8 MiB');
  t.equal(filesystemDu(s1).exclusive, u2.exclusive, 'btrfs filesystem du agrees');

  const s2 = join(mnt, 'v@2');
  await btrfs.snapshot(v, s2, { readonly: true });
  const s3 = join(mnt, 'v@3');
  await btrfs.snapshot(v, s3, { readonly: true });
  await btrfs.deleteSubvolume(join(v, 'nested'));
  await btrfs.deleteSubvolume(v, { recursive: true });
  await btrfs.syncFilesystem(mnt);
  t.equal((await btrfs.extentUsage(s2)).exclusive, 0, 'two snapshots of one state share it: neither frees it alone');
  t.equal(filesystemDu(s2).exclusive, 0);

  await t.rejects(btrfs.extentUsage(join(s1, 'd')), { code: 'EINVAL', syscall: 'FS_IOC_FIEMAP' });
  await t.rejects(btrfs.extentUsage(join(mnt, 'missing')), { code: 'ENOENT' });
  await t.rejects(btrfs.extentUsage(plainDir(t)), { code: 'ENOTTY' });
});

t.test('a limit given at creation: in the create or snapshot ioctl itself', async (t) => {
  for (const mode of ['simple', 'qgroup'] as const) {
    await t.test(mode, async (t) => {
      const { mnt } = mountBtrfs(t);
      await btrfs.enableQuotas(mnt, mode);
      const v = join(mnt, 'v');
      await btrfs.createSubvolume(v, { nocow: true, qgroupLimit: 10 * MiB });
      t.equal((await btrfs.qgroupOf(v))!.maxReferenced, 10 * MiB, 'created with its limit');
      t.equal(await btrfs.getNocow(v), true);
      const plainNew = join(mnt, 'plain');
      await btrfs.createSubvolume(plainNew);
      t.equal((await btrfs.qgroupOf(plainNew))!.maxReferenced, null, 'without one: none');

      const same = join(mnt, 'same');
      await btrfs.snapshot(v, same, { qgroupLimit: 10 * MiB });
      t.equal((await btrfs.qgroupOf(same))!.maxReferenced, 10 * MiB, 'a snapshot with the same limit');
      const other = join(mnt, 'other');
      await btrfs.snapshot(v, other, { qgroupLimit: 30 * MiB });
      t.equal((await btrfs.qgroupOf(other))!.maxReferenced, 30 * MiB, 'a snapshot with another limit than its source');
      t.equal(qgroupShow(mnt).get((await btrfs.subvolumeInfo(other)).id)?.maxReferenced, 30 * MiB, 'as btrfs-progs shows it');
      const none = join(mnt, 'none');
      await btrfs.snapshot(v, none, { qgroupLimit: null });
      t.equal((await btrfs.qgroupOf(none))!.maxReferenced, null, 'null: no limit, whatever the source has');
      const byDefault = join(mnt, 'default');
      await btrfs.snapshot(v, byDefault, { readonly: true });
      const inherited = (await btrfs.qgroupOf(byDefault))!.maxReferenced;
      t.equal(inherited, mode === 'qgroup' ? 10 * MiB : null, mode === 'qgroup' ? 'full qgroups: the kernel gives a snapshot its source\'s limit' : 'simple quotas: no limit unless asked');
      t.equal(fillUntilRefused(join(other, 'f'), 64 * MiB).error?.errno, EDQUOT, 'the limit given is the one enforced');
    });
  }
  await t.test('quotas off: the limit is ignored', async (t) => {
    const { mnt } = mountBtrfs(t);
    await btrfs.createSubvolume(join(mnt, 'v'), { qgroupLimit: MiB });
    await btrfs.snapshot(join(mnt, 'v'), join(mnt, 's'), { qgroupLimit: MiB });
    await btrfs.snapshot(join(mnt, 'v'), join(mnt, 'n'), { qgroupLimit: null });
    writeRandom(join(mnt, 'v', 'f'), 4 * MiB);
    t.equal((await btrfs.quotaStatus(mnt)).mode, 'off');
  });
  t.throws(() => btrfs.snapshot('/a', '/b', { qgroupLimit: -5 }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.createSubvolume('/a', { qgroupLimit: '5' as never }), { code: 'ERR_INVALID_ARG_TYPE', message: /a number or null/ });
});
