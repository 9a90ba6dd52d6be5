// The volume store on real btrfs: the original's scenarios and the safety
// rules (validation, in-use refusals, no data loss on restore).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { lsattr, propertyGet } from '../fixtures/oracle.js';
import { openStore } from '../fixtures/store.js';

const cow = { copyOnWrite: true, compression: null } as const;

t.test('create, list, get, path, remove', async (t) => {
  const { store, options } = await openStore(t);
  t.same(await store.list(), []);
  t.same(await store.create('vol1', cow), { created: true });
  t.same(await store.create('vol1', { copyOnWrite: false, compression: null }), { created: false }, 'idempotent');
  t.notOk(lsattr(join(options.volumesPath, 'vol1')).includes('C'), 'options of a second create are ignored');
  t.same(await store.list(), [{ name: 'vol1', mountpoint: join(options.volumesPath, 'vol1') }]);
  t.equal(await store.path('vol1'), join(options.volumesPath, 'vol1'));
  const details = await store.get('vol1');
  t.equal(details.name, 'vol1');
  t.ok(details.createdAt instanceof Date && Math.abs(details.createdAt.getTime() - Date.now()) < 60_000);
  t.same(details.status, { snapshots: 0, lastSnapshot: null, mounts: 0, copyOnWrite: true, compression: null });
  await store.remove('vol1');
  t.same(await store.list(), []);
  await t.rejects(store.remove('vol1'), { code: 'ERR_VOLUME_NOT_FOUND', message: 'vol1: no such volume' });
  await t.rejects(store.get('vol1'), { message: /no such volume$/ });
  await t.rejects(store.path('vol1'), { message: /no such volume$/ });
  await t.rejects(store.mount('vol1', 'id'), { message: /no such volume$/ });
});

t.test('create options: NOCOW and compression, set before the volume appears', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', { copyOnWrite: false, compression: null });
  t.ok(lsattr(join(options.volumesPath, 'db')).includes('C'));
  t.equal((await store.get('db')).status.copyOnWrite, false);
  await store.create('logs', { copyOnWrite: true, compression: 'zstd' });
  t.equal(propertyGet(join(options.volumesPath, 'logs'), 'compression'), 'zstd');
  t.equal((await store.get('logs')).status.compression, 'zstd');
  t.same(readdirSync(options.volumesPath).sort(), ['db', 'logs'], 'no work names left behind');
});

t.test('names are validated and nothing is touched', async (t) => {
  const { store, options } = await openStore(t);
  const bad = ['../x', 'a/b', 'x@y', '', 'n'.repeat(300), 'a\0b', 'é', '.', '..', '-rf'];
  for (const name of bad) {
    await t.rejects(store.create(name, cow), { code: 'ERR_INVALID_VOLUME_NAME' }, JSON.stringify(name));
    await t.rejects(store.snapshot(name), { code: 'ERR_INVALID_VOLUME_NAME' });
  }
  t.same(readdirSync(options.volumesPath), []);
  t.same(readdirSync(options.snapshotsPath), []);
  t.notOk(existsSync(join(options.volumesPath, '..', 'x')));
});

t.test('mount reference counts per (volume, ID), persisted, and in-use refusals', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  t.equal(await store.mount('v', 'a'), join(options.volumesPath, 'v'));
  t.equal(await store.mount('v', 'a'), join(options.volumesPath, 'v'), 'the same ID twice');
  await store.mount('v', 'b');
  t.equal(await store.mountCount('v'), 3);
  await store.snapshot('v');
  await t.rejects(store.remove('v'), { code: 'ERR_VOLUME_IN_USE', message: /cannot remove a volume in use \(mounted 3 times\)/ });
  await t.rejects(store.restore('v'), { code: 'ERR_VOLUME_IN_USE' });
  // A second store (another process: the CLI) sees the same counts.
  const other = await VolumeStore.open(options);
  t.equal(await other.mountCount('v'), 3);
  await store.unmount('v', 'a');
  await store.unmount('v', 'b');
  await store.unmount('unknown', 'zzz');
  await store.unmount('v', 'never-mounted');
  t.equal(await other.mountCount('v'), 1);
  await store.unmount('v', 'a');
  t.equal(await other.mountCount('v'), 0);
  await other.remove('v');
  t.same(JSON.parse(readFileSync(join(options.stateDir, 'mounts.json'), 'utf8')).mounts, {});
});

t.test('snapshot, snapshots, remove snapshot (the original test_snapshot/test_snapshots)', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v1', cow);
  await store.create('v2', cow);
  writeFileSync(join(options.volumesPath, 'v1', 'foobar'), 'foobar');
  const s = await store.snapshot('v1');
  t.match(s, /^v1@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  t.equal(readFileSync(join(options.snapshotsPath, s, 'foobar'), 'utf8'), 'foobar');
  t.equal(await btrfs.getReadonly(join(options.snapshotsPath, s)), true);
  const more = [await store.snapshot('v1'), await store.snapshot('v2'), await store.snapshot('v2')];
  t.equal(new Set([s, ...more]).size, 4, 'distinct names even within one millisecond');
  t.same(await store.snapshots(), [s, ...more].sort());
  t.same(await store.snapshots('v2'), more.slice(1).sort());
  t.same(await store.snapshots('v'), [], 'a prefix of a name is not the volume');
  const status = (await store.get('v1')).status;
  t.equal(status.snapshots, 2);
  t.equal(status.lastSnapshot, more[0]);
  await store.removeSnapshot(s);
  t.notOk(existsSync(join(options.snapshotsPath, s)));
  await t.rejects(store.removeSnapshot(s), { code: 'ERR_SNAPSHOT_NOT_FOUND', message: 'No such snapshot' });
  await t.rejects(store.removeSnapshot('v1'), { code: 'ERR_INVALID_SNAPSHOT_NAME' });
  await t.rejects(store.removeSnapshot('../x@y'), { code: 'ERR_INVALID_SNAPSHOT_NAME' });
  await t.rejects(store.snapshot('missing'), { code: 'ERR_VOLUME_NOT_FOUND', message: 'No such volume: missing' });
});

t.test('restore (the original test_restore) keeps a backup and swaps atomically', async (t) => {
  const { store, options } = await openStore(t);
  const file = (vol: string) => readFileSync(join(options.volumesPath, vol, 'foobar'), 'utf8');
  await store.create('vol', cow);
  writeFileSync(join(options.volumesPath, 'vol', 'foobar'), 'foobar');
  const snap = await store.snapshot('vol');
  writeFileSync(join(options.volumesPath, 'vol', 'foobar'), 'modified');
  const result = await store.restore(snap);
  t.equal(result.snapshot, snap);
  t.equal(result.volume, 'vol');
  t.equal(file('vol'), 'foobar');
  t.ok(result.backup && result.backup.startsWith('vol@'));
  t.equal(readFileSync(join(options.snapshotsPath, result.backup!, 'foobar'), 'utf8'), 'modified');
  t.equal((await btrfs.subvolumeInfo(join(options.volumesPath, 'vol'))).readonly, false, 'the restored volume is writable');

  await store.create('other', cow);
  writeFileSync(join(options.volumesPath, 'other', 'foobar'), 'other');
  const onto = await store.restore(snap, 'other');
  t.equal(file('other'), 'foobar', 'restore onto another existing volume (Target)');
  t.ok(onto.backup?.startsWith('other@'));

  const fresh = await store.restore(snap, 'brandnew');
  t.equal(fresh.backup, null, 'no backup when the target did not exist');
  t.equal(file('brandnew'), 'foobar');

  writeFileSync(join(options.volumesPath, 'vol', 'foobar'), 'again');
  const byVolume = await store.restore('vol');
  t.not(byVolume.snapshot, snap, 'a volume name means its newest snapshot');
  t.equal(file('vol'), 'modified', 'the newest snapshot of vol is the backup taken by the first restore');

  await t.rejects(store.restore('nosnaps'), { code: 'ERR_NO_SNAPSHOT', message: 'nosnaps: no snapshot to restore' });
  await t.rejects(store.restore('vol@2000-01-01T00:00:00.000000'), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
  t.same(readdirSync(options.volumesPath).filter((n) => n.startsWith('.')), [], 'no work names left');
});

t.test('clone (the original test_clone)', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('src', cow);
  writeFileSync(join(options.volumesPath, 'src', 'foobar'), 'foobar');
  t.equal(await store.clone('src', 'copy'), 'copy');
  t.equal(readFileSync(join(options.volumesPath, 'copy', 'foobar'), 'utf8'), 'foobar');
  writeFileSync(join(options.volumesPath, 'copy', 'foobar'), 'changed');
  t.equal(readFileSync(join(options.volumesPath, 'src', 'foobar'), 'utf8'), 'foobar');
  await t.rejects(store.clone('src', 'copy'), { code: 'ERR_VOLUME_EXISTS' });
  mkdirSync(join(options.volumesPath, 'plaindir'));
  await t.rejects(store.clone('src', 'plaindir'), { code: 'ERR_VOLUME_EXISTS' }, 'no nested snapshot inside an existing directory');
  t.same(readdirSync(join(options.volumesPath, 'plaindir')), []);
  await t.rejects(store.clone('missing', 'x'), { code: 'ERR_VOLUME_NOT_FOUND' });
  await t.rejects(store.clone('src', 'src'), { code: 'ERR_VOLUME_EXISTS' });
});

t.test('recover removes what a crash left behind, and only that', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('keep', cow);
  await btrfs.createSubvolume(join(options.volumesPath, '.bv-restore.keep.0123456789ab'));
  mkdirSync(join(options.volumesPath, '.bv-create.x.aaaaaaaaaaaa'));
  mkdirSync(join(options.volumesPath, '.unrelated'));
  t.same((await store.recover()).sort(), ['.bv-create.x.aaaaaaaaaaaa', '.bv-restore.keep.0123456789ab']);
  t.same(readdirSync(options.volumesPath).sort(), ['.unrelated', 'keep']);
});

t.test('refuses to open on a filesystem that is not btrfs', async (t) => {
  const { options } = await openStore(t);
  await t.rejects(VolumeStore.open({ ...options, volumesPath: '/tmp' }), {
    code: 'ERR_NOT_BTRFS',
    message: 'not a btrfs filesystem: /tmp',
  });
});
