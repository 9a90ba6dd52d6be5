// Read-only flag, NOCOW and the compression property, checked with
// btrfs property / lsattr.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs, plainDir } from '../fixtures/btrfs.js';
import { lsattr, propertyGet } from '../fixtures/oracle.js';

const { mnt } = mountBtrfs(t);
const plain = plainDir(t);

t.test('read-only flag round trip', async (t) => {
  const v = join(mnt, 'ro');
  await btrfs.createSubvolume(v);
  t.equal(await btrfs.getReadonly(v), false);
  t.equal(propertyGet(v, 'ro'), 'false');
  await btrfs.setReadonly(v);
  t.equal(await btrfs.getReadonly(v), true);
  t.equal(propertyGet(v, 'ro'), 'true');
  t.equal((await btrfs.subvolumeInfo(v)).readonly, true);
  await btrfs.setReadonly(v, true); // no change: no error
  await btrfs.setReadonly(v, false);
  t.equal(propertyGet(v, 'ro'), 'false');
  writeFileSync(join(v, 'f'), 'writable again');
  mkdirSync(join(mnt, 'dir'));
  await t.rejects(btrfs.setReadonly(join(mnt, 'dir')), { code: 'EINVAL', syscall: 'BTRFS_IOC_SUBVOL_GETFLAGS' });
  await t.rejects(btrfs.getReadonly(join(mnt, 'dir')), { code: 'EINVAL' });
  await t.rejects(btrfs.getReadonly(plain), { code: 'ENOTTY', message: /not a btrfs filesystem/ });
  t.throws(() => btrfs.setReadonly(v, 'yes' as never), { name: 'TypeError' });
});

t.test('NOCOW on directories and empty files; refused on a non-empty file', async (t) => {
  const v = join(mnt, 'cow');
  await btrfs.createSubvolume(v);
  t.equal(await btrfs.getNocow(v), false);
  await btrfs.setNocow(v);
  t.ok(lsattr(v).includes('C'));
  writeFileSync(join(v, 'inherits'), 'x');
  t.equal(await btrfs.getNocow(join(v, 'inherits')), true);
  await btrfs.setNocow(v, false);
  t.notOk(lsattr(v).includes('C'));

  writeFileSync(join(v, 'empty'), '');
  await btrfs.setNocow(join(v, 'empty'));
  t.ok(lsattr(join(v, 'empty')).includes('C'));

  writeFileSync(join(v, 'full'), 'data');
  await t.rejects(btrfs.setNocow(join(v, 'full')), {
    code: 'EINVAL',
    syscall: 'FS_IOC_SETFLAGS',
    message: /NOCOW can only change on an empty file/,
  });
  t.notOk(lsattr(join(v, 'full')).includes('C'), 'the kernel really did not set it');
  await t.rejects(btrfs.getNocow(join(v, 'missing')), { code: 'ENOENT' });
});

t.test('compression property', async (t) => {
  const v = join(mnt, 'comp');
  await btrfs.createSubvolume(v);
  t.equal(await btrfs.getCompression(v), null);
  t.equal(propertyGet(v, 'compression'), null);
  for (const algo of ['zstd', 'lzo', 'zlib'] as const) {
    await btrfs.setCompression(v, algo);
    t.equal(await btrfs.getCompression(v), algo);
    t.equal(propertyGet(v, 'compression'), algo, `btrfs-progs reads ${algo}`);
  }
  writeFileSync(join(v, 'new'), 'x');
  t.equal(await btrfs.getCompression(join(v, 'new')), 'zlib', 'inherited by new files');
  t.ok(lsattr(join(v, 'new')).includes('c'));
  await btrfs.setCompression(v, 'none');
  t.equal(propertyGet(v, 'compression'), 'none');
  await btrfs.setCompression(v, null);
  t.equal(await btrfs.getCompression(v), null);
  t.equal(propertyGet(v, 'compression'), null);
  await btrfs.setCompression(v, null); // removing twice is fine
  t.throws(() => btrfs.setCompression(v, 'gzip' as never), { name: 'TypeError', message: /zlib, lzo, zstd, none or null/ });

  await btrfs.snapshot(v, join(mnt, 'comp@ro'), { readonly: true });
  await t.rejects(btrfs.setCompression(join(mnt, 'comp@ro'), 'zstd'), { code: 'EROFS', syscall: 'fsetxattr' });
  const nocow = join(mnt, 'nocowvol');
  await btrfs.createSubvolume(nocow, { nocow: true });
  await t.rejects(btrfs.setCompression(nocow, 'zstd'), { code: 'EINVAL', message: /cannot be set on a NOCOW/ }, 'NOCOW excludes compression');
});

t.test('clearImmutable: immutable or append-only root cleared (read-only made writable first), so it can be deleted', async (t) => {
  for (const flag of ['+i', '+a']) {
    const v = join(mnt, `protected${flag}`);
    await btrfs.createSubvolume(v);
    execFileSync('chattr', [flag, v]);
    await btrfs.setReadonly(v);
    await t.rejects(btrfs.deleteSubvolume(v), { code: 'EPERM' }, `${flag}: cannot be deleted`);
    t.equal(await btrfs.clearImmutable(v), true, `${flag}: cleared`);
    t.notMatch(lsattr(v), /[ia]/);
    t.equal(await btrfs.getReadonly(v), false, 'made writable');
    await btrfs.deleteSubvolume(v);
  }
  const v = join(mnt, 'unprotected');
  await btrfs.createSubvolume(v);
  await btrfs.setReadonly(v);
  t.equal(await btrfs.clearImmutable(v), false, 'neither set: nothing done');
  t.equal(await btrfs.getReadonly(v), true, 'still read-only');
  mkdirSync(join(mnt, 'plaindir'));
  await t.rejects(btrfs.clearImmutable(join(mnt, 'plaindir')), { code: 'EINVAL' }, 'not a subvolume root');
});

t.test('syncFilesystem', async (t) => {
  writeFileSync(join(mnt, 'dirty'), Buffer.alloc(1 << 20, 1));
  await btrfs.syncFilesystem(mnt);
  await btrfs.syncFilesystem(join(mnt, 'dirty'));
  await t.rejects(btrfs.syncFilesystem(plain), { code: 'ENOTTY', syscall: 'BTRFS_IOC_SYNC' });
  await t.rejects(btrfs.syncFilesystem(join(mnt, 'missing')), { code: 'ENOENT' });
});
