// isBtrfs and the atomic renames used to swap volumes.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs, plainDir } from '../fixtures/btrfs.js';

const { mnt } = mountBtrfs(t);
const plain = plainDir(t);

t.test('isBtrfs', async (t) => {
  t.equal(await btrfs.isBtrfs(mnt), true);
  t.equal(await btrfs.isBtrfs(plain), false);
  await t.rejects(btrfs.isBtrfs(join(mnt, 'missing')), { code: 'ENOENT' });
});

t.test('renameExchange swaps two subvolumes atomically', async (t) => {
  const a = join(mnt, 'a');
  const b = join(mnt, 'b');
  await btrfs.createSubvolume(a);
  await btrfs.snapshot(a, b);
  writeFileSync(join(a, 'f'), 'A');
  writeFileSync(join(b, 'f'), 'B');
  const [ia, ib] = await Promise.all([btrfs.subvolumeInfo(a), btrfs.subvolumeInfo(b)]);
  await btrfs.renameExchange(a, b);
  t.equal(readFileSync(join(a, 'f'), 'utf8'), 'B');
  t.equal(readFileSync(join(b, 'f'), 'utf8'), 'A');
  t.equal((await btrfs.subvolumeInfo(a)).uuid, ib.uuid);
  t.equal((await btrfs.subvolumeInfo(b)).uuid, ia.uuid);
  await t.rejects(btrfs.renameExchange(a, join(mnt, 'missing')), { code: 'ENOENT', syscall: 'renameat2', path: a, dest: join(mnt, 'missing') });
  const other = mountBtrfs(t);
  await btrfs.createSubvolume(join(other.mnt, 'x'));
  await t.rejects(btrfs.renameExchange(a, join(other.mnt, 'x')), { code: 'EXDEV' });
});

t.test('renameNoReplace never replaces', async (t) => {
  const c = join(mnt, 'c');
  const d = join(mnt, 'd');
  await btrfs.createSubvolume(c);
  await btrfs.createSubvolume(d);
  writeFileSync(join(d, 'keep'), 'd');
  await t.rejects(btrfs.renameNoReplace(c, d), { code: 'EEXIST', syscall: 'renameat2' });
  t.equal(readFileSync(join(d, 'keep'), 'utf8'), 'd', 'the target is untouched');
  await btrfs.renameNoReplace(c, join(mnt, 'e'));
  t.equal(await btrfs.isSubvolume(join(mnt, 'e')), true);
  t.equal(await btrfs.isSubvolume(c), false);
});
