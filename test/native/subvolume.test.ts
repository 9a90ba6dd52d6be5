// Subvolume create / snapshot / delete / info against the real kernel, with
// btrfs-progs as the oracle.
import { mkdirSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs, plainDir } from '../fixtures/btrfs.js';
import { lsattr, openFdCount, snapshotPaths, subvolumeList, subvolumeShow } from '../fixtures/oracle.js';

const fx = mountBtrfs(t);
const mnt = fx.mnt;
const plain = plainDir(t);

t.test('createSubvolume makes a subvolume btrfs-progs agrees on', async (t) => {
  const v = join(mnt, 'vol');
  await btrfs.createSubvolume(v);
  t.equal(await btrfs.isSubvolume(v), true);
  const info = await btrfs.subvolumeInfo(v);
  const show = subvolumeShow(v);
  t.equal(info.id, Number(show['Subvolume ID']));
  t.equal(info.uuid, show['UUID']);
  t.equal(info.parentUuid, null);
  t.equal(show['Parent UUID'], '-');
  t.equal(info.receivedUuid, null);
  t.equal(info.generation, Number(show['Generation']));
  t.equal(info.otransid, Number(show['Gen at creation']));
  t.equal(info.parentId, Number(show['Parent ID']));
  t.equal(info.stransid, Number(show['Send transid']));
  t.equal(info.rtransid, Number(show['Receive transid']));
  t.equal(info.readonly, false);
  t.equal(show['Flags'], '-');
  const created = new Date(show['Creation time']!.replace(' +0000', 'Z').replace(' ', 'T'));
  t.equal(Math.floor(info.otime.getTime() / 1000), created.getTime() / 1000, 'otime to the second');
  t.ok(info.ctime instanceof Date);
  t.equal(info.rtime, null, 'never received');
  t.equal(lsattr(v).includes('C'), false, 'copy-on-write by default');
});

t.test('createSubvolume with nocow sets FS_NOCOW_FL, inherited by new files', async (t) => {
  const v = join(mnt, 'nocow');
  await btrfs.createSubvolume(v, { nocow: true });
  t.ok(lsattr(v).includes('C'));
  t.equal(await btrfs.getNocow(v), true);
  writeFileSync(join(v, 'db'), 'x');
  t.ok(lsattr(join(v, 'db')).includes('C'), 'a new file inherits NOCOW');
});

t.test('every path form reaches the same subvolume', async (t) => {
  const v = join(mnt, 'forms');
  await btrfs.createSubvolume(`${v}/`); // trailing slash
  const dirLink = join(plain, 'dir-link');
  symlinkSync(mnt, dirLink);
  const cwd = process.cwd();
  process.chdir(mnt);
  t.teardown(() => process.chdir(cwd));
  const byAbs = await btrfs.subvolumeInfo(v);
  t.equal((await btrfs.subvolumeInfo('forms')).id, byAbs.id, 'relative');
  t.equal((await btrfs.subvolumeInfo(`${v}//`)).id, byAbs.id, 'trailing slashes');
  t.equal((await btrfs.subvolumeInfo(join(dirLink, 'forms'))).id, byAbs.id, 'through a symlinked directory');
  t.equal(await btrfs.isSubvolume(join(dirLink, 'forms')), true);
  await btrfs.snapshot('forms', 'forms-snap', { readonly: true });
  t.equal((await btrfs.subvolumeInfo(join(mnt, 'forms-snap'))).parentUuid, byAbs.uuid);
  await btrfs.deleteSubvolume('forms-snap/');
  t.equal(await btrfs.isSubvolume(join(mnt, 'forms-snap')), false);
  t.equal(relative(mnt, process.cwd()), '');
});

t.test('a symlink as the last component is never followed', async (t) => {
  const v = join(mnt, 'target');
  await btrfs.createSubvolume(v);
  writeFileSync(join(v, 'keep'), 'kept');
  const link = join(mnt, 'link-to-target');
  symlinkSync(v, link);
  t.equal(await btrfs.isSubvolume(link), false, 'a symlink is not a subvolume');
  // A directory is expected and a symlink is not one (O_DIRECTORY|O_NOFOLLOW: ENOTDIR).
  await t.rejects(btrfs.subvolumeInfo(link), { code: 'ENOTDIR', syscall: 'open', path: link });
  await t.rejects(btrfs.snapshot(link, join(mnt, 'via-link')), { code: 'ENOTDIR', path: link });
  await t.rejects(btrfs.getReadonly(link), { code: 'ENOTDIR' });
  await t.rejects(btrfs.setReadonly(link, true), { code: 'ENOTDIR' });
  await t.rejects(btrfs.getNocow(link), { code: 'ELOOP' }, 'any file: O_NOFOLLOW alone gives ELOOP');
  await t.rejects(btrfs.deleteSubvolume(link), { code: 'ENOTDIR', syscall: 'BTRFS_IOC_SNAP_DESTROY' });
  await t.rejects(btrfs.deleteSubvolume(link, { recursive: true }), { code: 'ENOTDIR' });
  t.equal(await btrfs.isSubvolume(join(mnt, 'via-link')), false);
  t.equal(readFileSync(join(v, 'keep'), 'utf8'), 'kept', 'the target is untouched');
  t.equal((await btrfs.subvolumeInfo(v)).readonly, false);
});

t.test('read-only snapshot: content, parent uuid, listed by btrfs-progs, EROFS on write', async (t) => {
  const v = join(mnt, 'src');
  await btrfs.createSubvolume(v);
  writeFileSync(join(v, 'foobar'), 'foobar');
  const snap = join(mnt, 'src@1');
  await btrfs.snapshot(v, snap, { readonly: true });
  t.equal(readFileSync(join(snap, 'foobar'), 'utf8'), 'foobar');
  const [src, info] = await Promise.all([btrfs.subvolumeInfo(v), btrfs.subvolumeInfo(snap)]);
  t.equal(info.parentUuid, src.uuid);
  t.equal(info.readonly, true);
  t.equal(info.ctransid, src.ctransid, 'ctransid is copied from the source');
  t.equal(subvolumeShow(snap)['Flags'], 'readonly');
  t.ok(snapshotPaths(mnt).includes('src@1'), 'btrfs subvolume list -s shows it');
  await t.rejects(writeFile(join(snap, 'new'), 'x'), { code: 'EROFS' });
  await t.rejects(writeFile(join(snap, 'foobar'), 'y'), { code: 'EROFS' });
  t.equal(readFileSync(join(snap, 'foobar'), 'utf8'), 'foobar');
});

t.test('writable snapshot diverges from its source', async (t) => {
  const v = join(mnt, 'wsrc');
  await btrfs.createSubvolume(v);
  writeFileSync(join(v, 'f'), 'one');
  const clone = join(mnt, 'wclone');
  await btrfs.snapshot(v, clone);
  t.equal((await btrfs.subvolumeInfo(clone)).readonly, false);
  writeFileSync(join(clone, 'f'), 'two');
  t.equal(readFileSync(join(v, 'f'), 'utf8'), 'one');
  t.equal(readFileSync(join(clone, 'f'), 'utf8'), 'two');
  t.ok(snapshotPaths(mnt).includes('wclone'), 'a writable snapshot is still a snapshot for btrfs-progs');
});

t.test('top level and subvolume detection', async (t) => {
  t.equal(await btrfs.isSubvolume(mnt), true, 'the mount root (id 5) is a subvolume');
  t.equal((await btrfs.subvolumeInfo(mnt)).id, 5);
  mkdirSync(join(mnt, 'plaindir'));
  writeFileSync(join(mnt, 'file'), '');
  t.equal(await btrfs.isSubvolume(join(mnt, 'plaindir')), false);
  t.equal(await btrfs.isSubvolume(join(mnt, 'file')), false);
  t.equal(await btrfs.isSubvolume(join(mnt, 'missing')), false);
  t.equal(await btrfs.isSubvolume(join(mnt, 'file', 'below')), false);
  t.equal(await btrfs.isSubvolume(plain), false, 'not btrfs');
  t.equal(await btrfs.isSubvolume('/'), false, 'ext4 root has inode 2, not btrfs anyway');
});

t.test('recursive delete removes nested subvolumes deepest first', async (t) => {
  const top = join(mnt, 'nest');
  await btrfs.createSubvolume(top);
  mkdirSync(join(top, 'a', 'b'), { recursive: true });
  await btrfs.createSubvolume(join(top, 'a', 'b', 'child'));
  await btrfs.createSubvolume(join(top, 'a', 'b', 'child', 'grandchild'));
  await btrfs.createSubvolume(join(top, 'sibling'));
  writeFileSync(join(top, 'a', 'b', 'child', 'grandchild', 'f'), 'data');
  await t.rejects(btrfs.deleteSubvolume(top), {
    code: 'ENOTEMPTY',
    errno: -39,
    syscall: 'BTRFS_IOC_SNAP_DESTROY',
    path: top,
  });
  t.equal(await btrfs.isSubvolume(top), true, 'nothing deleted by the refused call');
  await btrfs.deleteSubvolume(top, { recursive: true });
  t.equal(await btrfs.isSubvolume(top), false);
  t.notOk(subvolumeList(mnt).some((e) => e.path.startsWith('nest')), 'btrfs-progs sees none of them');
});

t.test('error paths carry code, errno, syscall and path', async (t) => {
  const fdsBefore = openFdCount();
  const v = join(mnt, 'errs');
  await btrfs.createSubvolume(v);
  await t.rejects(btrfs.createSubvolume(v), {
    name: 'BtrfsError',
    code: 'EEXIST',
    errno: -17,
    syscall: 'BTRFS_IOC_SUBVOL_CREATE_V2',
    path: v,
    message: `EEXIST: file already exists, BTRFS_IOC_SUBVOL_CREATE_V2 '${v}'`,
  });
  await t.rejects(btrfs.createSubvolume(join(mnt, 'nope', 'x')), { code: 'ENOENT', syscall: 'open', path: join(mnt, 'nope') });
  await t.rejects(btrfs.createSubvolume(join(plain, 'x')), {
    code: 'ENOTTY',
    syscall: 'BTRFS_IOC_SUBVOL_CREATE_V2',
    message: /not a btrfs filesystem/,
  });
  await t.rejects(btrfs.createSubvolume(join(mnt, 'n'.repeat(256))), { code: 'ENAMETOOLONG' });

  mkdirSync(join(mnt, 'pdir'));
  await t.rejects(btrfs.snapshot(join(mnt, 'pdir'), join(mnt, 'pdir-snap')), {
    code: 'EINVAL',
    syscall: 'BTRFS_IOC_SNAP_CREATE_V2',
    path: join(mnt, 'pdir'),
    dest: join(mnt, 'pdir-snap'),
    message: /source is not a btrfs subvolume/,
  });
  await t.rejects(btrfs.snapshot(join(mnt, 'missing'), join(mnt, 's')), { code: 'ENOENT', syscall: 'open', path: join(mnt, 'missing') });
  await btrfs.snapshot(v, join(mnt, 'errs@1'), { readonly: true });
  await t.rejects(btrfs.snapshot(v, join(mnt, 'errs@1')), { code: 'EEXIST', dest: join(mnt, 'errs@1') });
  await t.rejects(btrfs.snapshot(v, join(mnt, 'errs@1', 'inside')), { code: 'EROFS' });
  const other = mountBtrfs(t);
  await t.rejects(btrfs.snapshot(v, join(other.mnt, 'x')), { code: 'EXDEV' });

  await t.rejects(btrfs.deleteSubvolume(join(mnt, 'missing')), { code: 'ENOENT', syscall: 'BTRFS_IOC_SNAP_DESTROY' });
  await t.rejects(btrfs.deleteSubvolume(join(mnt, 'pdir')), { code: 'EINVAL', message: /not a btrfs subvolume/ });
  await t.rejects(btrfs.deleteSubvolume(join(mnt, 'pdir'), { recursive: true }), { code: 'EINVAL' });

  await t.rejects(btrfs.subvolumeInfo(join(mnt, 'pdir')), { code: 'EINVAL', syscall: 'BTRFS_IOC_GET_SUBVOL_INFO' });
  writeFileSync(join(mnt, 'afile'), '');
  await t.rejects(btrfs.subvolumeInfo(join(mnt, 'afile')), { code: 'ENOTDIR', syscall: 'open' });
  await t.rejects(btrfs.subvolumeInfo(plain), { code: 'ENOTTY', message: /not a btrfs filesystem/ });
  await t.rejects(btrfs.subvolumeInfo(join(mnt, 'missing')), { code: 'ENOENT' });
  t.equal(openFdCount(), fdsBefore, 'no fd leaked on any error path');
});

t.test('arguments are checked before any syscall', async (t) => {
  t.throws(() => btrfs.createSubvolume(42 as unknown as string), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => btrfs.createSubvolume(''), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => btrfs.createSubvolume(join(mnt, 'a\0b')), { code: 'ERR_INVALID_ARG_VALUE', message: /NUL/ });
  t.throws(() => btrfs.snapshot(join(mnt, 'x'), join(mnt, 'y'), { readOnly: true } as never), {
    name: 'TypeError',
    message: /unknown option "readOnly" for snapshot\(\); did you mean "readonly"\?/,
  });
  t.throws(() => btrfs.createSubvolume(join(mnt, 'x'), { nocow: 'yes' } as never), { message: /must be a boolean/ });
  t.throws(() => btrfs.deleteSubvolume(join(mnt, 'x'), 'recursive' as never), { message: /must be an object/ });
  t.equal(await btrfs.isSubvolume(join(mnt, 'a')), false, 'nothing was created by the refused calls');
});
