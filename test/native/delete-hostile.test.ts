// A recursive delete against content that fights back: the subvolume being
// deleted is owned by a container, which can nest subvolumes, make them
// read-only, and rename, swap and symlink its directories while we work.
// Nothing outside the subvolume may ever be touched.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs } from '../fixtures/btrfs.js';
import { subvolumeCreatorLoop, swapLoop } from '../fixtures/hostile.js';
import { subvolumeList } from '../fixtures/oracle.js';

const { mnt } = mountBtrfs(t);

t.test('swapping a directory with a symlink to ".." cannot redirect the delete to a sibling volume', async (t) => {
  const vols = join(mnt, 'vols');
  mkdirSync(vols);
  const victim = join(vols, 'victim');
  await btrfs.createSubvolume(victim);
  writeFileSync(join(victim, 'marker'), 'precious');
  for (let round = 0; round < 15; round++) {
    const evil = join(vols, 'evil');
    await btrfs.createSubvolume(evil);
    mkdirSync(join(evil, 'd'));
    // Named like the sibling: a delete steered through "s -> .." hits vols/victim.
    await btrfs.createSubvolume(join(evil, 'd', 'victim'));
    await btrfs.createSubvolume(join(evil, 'd', 'victim', 'deeper'));
    symlinkSync('..', join(evil, 's'));
    const swapper = await swapLoop(t, join(evil, 'd'), join(evil, 's'));
    try {
      await btrfs.deleteSubvolume(evil, { recursive: true });
    } finally {
      await swapper.stop();
    }
    t.equal(await btrfs.isSubvolume(evil), false, `round ${round}: the hostile volume is gone`);
    t.equal(readFileSync(join(victim, 'marker'), 'utf8'), 'precious', `round ${round}: the sibling volume is intact`);
  }
  t.same(subvolumeList(mnt).map((e) => e.path), ['vols/victim'], 'btrfs-progs sees only the sibling');
});

t.test('read-only nested subvolumes holding others are deleted too', async (t) => {
  const top = join(mnt, 'ro-nest');
  await btrfs.createSubvolume(top);
  await btrfs.createSubvolume(join(top, 'ro'));
  await btrfs.createSubvolume(join(top, 'ro', 'child'));
  await btrfs.createSubvolume(join(top, 'ro', 'child', 'grandchild'));
  await btrfs.setReadonly(join(top, 'ro', 'child'), true);
  await btrfs.setReadonly(join(top, 'ro'), true);
  await t.rejects(btrfs.deleteSubvolume(join(top, 'ro', 'child', 'grandchild')), { code: 'EROFS' }, 'the kernel refuses a child of a read-only parent');
  const nested = await btrfs.nestedSubvolumes(top);
  t.same(nested.map((n) => [n.path, n.readonly]), [['ro', true], ['ro/child', true], ['ro/child/grandchild', false]]);
  await btrfs.deleteSubvolume(top, { recursive: true });
  t.equal(await btrfs.isSubvolume(top), false);
  t.notOk(subvolumeList(mnt).some((e) => e.path.startsWith('ro-nest')));
});

t.test('a read-only subvolume that holds others, deleted itself', async (t) => {
  const top = join(mnt, 'ro-top');
  await btrfs.createSubvolume(top);
  await btrfs.createSubvolume(join(top, 'inner'));
  await btrfs.setReadonly(top, true);
  await btrfs.deleteSubvolume(top, { recursive: true });
  t.equal(await btrfs.isSubvolume(top), false);
});

t.test('deep and wide nesting, with renames done before the delete', async (t) => {
  const top = join(mnt, 'deep');
  await btrfs.createSubvolume(top);
  let dir = top;
  for (let i = 0; i < 40; i++) {
    dir = join(dir, `level${i}`);
    await btrfs.createSubvolume(dir);
  }
  for (let i = 0; i < 30; i++) await btrfs.createSubvolume(join(top, `wide${i}`));
  await btrfs.renameNoReplace(join(top, 'level0'), join(top, 'renamed'));
  t.equal((await btrfs.nestedSubvolumes(top)).length, 70);
  await btrfs.deleteSubvolume(top, { recursive: true });
  t.equal(await btrfs.isSubvolume(top), false);
  t.notOk(subvolumeList(mnt).some((e) => e.path.startsWith('deep')));
});

t.test('subvolumes created inside while deleting: deleted too, or a clear ENOTEMPTY; nothing outside changes', async (t) => {
  const vols = join(mnt, 'race');
  mkdirSync(vols);
  const other = join(vols, 'other');
  await btrfs.createSubvolume(other);
  writeFileSync(join(other, 'marker'), 'x');
  const top = join(vols, 'spawning');
  await btrfs.createSubvolume(top);
  const creator = await subvolumeCreatorLoop(t, top);
  let outcome = 'deleted';
  try {
    await btrfs.deleteSubvolume(top, { recursive: true });
  } catch (err) {
    outcome = (err as { code?: string }).code ?? 'error';
  } finally {
    await creator.stop();
  }
  t.ok(['deleted', 'ENOTEMPTY', 'ENOENT'].includes(outcome), `outcome: ${outcome}`);
  if (await btrfs.isSubvolume(top)) await btrfs.deleteSubvolume(top, { recursive: true });
  t.equal(await btrfs.isSubvolume(top), false, 'once the content stops, the delete completes');
  t.equal(readFileSync(join(other, 'marker'), 'utf8'), 'x');
});

t.test('nestedSubvolumes of a plain directory or a missing path', async (t) => {
  mkdirSync(join(mnt, 'plain'));
  await t.rejects(btrfs.nestedSubvolumes(join(mnt, 'plain')), { code: 'EINVAL' });
  await t.rejects(btrfs.nestedSubvolumes(join(mnt, 'missing')), { code: 'ENOENT' });
  const empty = join(mnt, 'no-children');
  await btrfs.createSubvolume(empty);
  t.same(await btrfs.nestedSubvolumes(empty), []);
});
