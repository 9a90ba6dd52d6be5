// listSubvolumes against `btrfs subvolume list`.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { mountBtrfs, plainDir } from '../fixtures/btrfs.js';
import { subvolumeList } from '../fixtures/oracle.js';

const { mnt } = mountBtrfs(t);

t.test('lists exactly the subvolumes directly inside a directory', async (t) => {
  const dir = join(mnt, 'volumes');
  mkdirSync(dir);
  const names: string[] = [];
  for (let i = 0; i < 60; i++) {
    const name = `v${String(i).padStart(3, '0')}`;
    await btrfs.createSubvolume(join(dir, name));
    names.push(name);
  }
  for (let i = 0; i < 40; i++) {
    const name = `v000@${i}`;
    await btrfs.snapshot(join(dir, 'v000'), join(dir, name), { readonly: i % 2 === 0 });
    names.push(name);
  }
  // Noise that must not be listed: plain dirs, files, symlinks to subvolumes,
  // subvolumes nested deeper, a subvolume inside a listed one.
  mkdirSync(join(dir, 'plain'));
  await btrfs.createSubvolume(join(dir, 'plain', 'deeper'));
  writeFileSync(join(dir, 'metadata.db'), '');
  symlinkSync(join(dir, 'v001'), join(dir, 'link-to-v001'));
  await btrfs.createSubvolume(join(dir, 'v002', 'nested'));

  const ours = await btrfs.listSubvolumes(dir);
  t.same(ours.map((e) => e.name), [...names].sort(), 'names, sorted');

  const progs = new Map(subvolumeList(mnt).map((e) => [e.path, e]));
  for (const e of ours) {
    const ref = progs.get(`volumes/${e.name}`);
    if (!ref) {
      t.fail(`btrfs-progs does not know ${e.name}`);
      continue;
    }
    t.equal(e.path, join(dir, e.name));
    t.same(
      { id: e.id, uuid: e.uuid, parentUuid: e.parentUuid, receivedUuid: e.receivedUuid, gen: e.generation, top: e.parentId },
      { id: ref.id, uuid: ref.uuid, parentUuid: ref.parentUuid, receivedUuid: ref.receivedUuid, gen: ref.gen, top: ref.topLevel },
      e.name,
    );
  }
  const snaps = ours.filter((e) => e.name.includes('@'));
  t.equal(snaps.filter((e) => e.readonly).length, 20, 'read-only flags');
  t.ok(snaps.every((e) => e.parentUuid === ours[0]!.uuid), 'snapshots point at their source');
});

t.test('a directory that is not a subvolume root, an empty one, and the mount root', async (t) => {
  const sub = join(mnt, 'host');
  await btrfs.createSubvolume(sub);
  mkdirSync(join(sub, 'inner'));
  await btrfs.createSubvolume(join(sub, 'inner', 'a'));
  await btrfs.createSubvolume(join(sub, 'b'));
  t.same((await btrfs.listSubvolumes(join(sub, 'inner'))).map((e) => e.name), ['a']);
  t.same((await btrfs.listSubvolumes(sub)).map((e) => e.name), ['b']);
  mkdirSync(join(mnt, 'empty'));
  t.same(await btrfs.listSubvolumes(join(mnt, 'empty')), []);
  t.same((await btrfs.listSubvolumes(mnt)).map((e) => e.name), ['host'], 'only direct children of the top level');
});

t.test('errors', async (t) => {
  const plain = plainDir(t);
  await t.rejects(btrfs.listSubvolumes(join(mnt, 'missing')), { code: 'ENOENT', syscall: 'open' });
  writeFileSync(join(mnt, 'file'), '');
  await t.rejects(btrfs.listSubvolumes(join(mnt, 'file')), { code: 'ENOTDIR' });
  await t.rejects(btrfs.listSubvolumes(plain), { code: 'ENOTTY', message: /not a btrfs filesystem/ });
});
