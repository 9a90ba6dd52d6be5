// A container owns its volume's content and can race us: nested and
// read-only subvolumes, symlinks, swaps. The store must never touch anything
// outside the volume a request names, never lose data it did not keep, and
// never be stopped (or stop the daemon) by what a volume contains.
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { btrfsProgs } from '../fixtures/btrfs.js';
import { swapLoop } from '../fixtures/hostile.js';
import { openStore } from '../fixtures/store.js';

const cow = { copyOnWrite: true, compression: null } as const;

function logs(): { lines: string[]; logger: { warning(m: string): void; error(m: string): void } } {
  const lines: string[] = [];
  return { lines, logger: { warning: (m) => lines.push(`WARNING ${m}`), error: (m) => lines.push(`ERROR ${m}`) } };
}

t.test('Remove of a hostile volume never destroys a sibling volume (swap d <-> s -> .. during the delete)', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('victim', cow);
  writeFileSync(join(options.volumesPath, 'victim', 'marker'), 'precious');
  for (let round = 0; round < 10; round++) {
    await store.create('evil', cow);
    const evil = join(options.volumesPath, 'evil');
    mkdirSync(join(evil, 'd'));
    await btrfs.createSubvolume(join(evil, 'd', 'victim'));
    symlinkSync('..', join(evil, 's'));
    const swapper = await swapLoop(t, join(evil, 'd'), join(evil, 's'));
    try {
      await store.remove('evil');
    } finally {
      await swapper.stop();
    }
    t.equal(await store.exists('evil'), false, `round ${round}: removed`);
  }
  t.equal(readFileSync(join(options.volumesPath, 'victim', 'marker'), 'utf8'), 'precious', 'the sibling is intact');
  t.same((await store.list()).map((v) => v.name), ['victim']);
});

t.test('Remove handles read-only nested subvolumes holding others', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  const v = join(options.volumesPath, 'v');
  await btrfs.createSubvolume(join(v, 'ro'));
  await btrfs.createSubvolume(join(v, 'ro', 'child'));
  await btrfs.setReadonly(join(v, 'ro'), true);
  await store.remove('v');
  t.equal(await store.exists('v'), false);
  t.notOk(btrfsProgs('subvolume', 'list', options.volumesPath).includes('ro'), 'nothing of it left');
});

t.test('Restore refuses a volume holding nested subvolumes, and changes nothing', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  const v = join(options.volumesPath, 'v');
  writeFileSync(join(v, 'f'), 'snapshotted');
  const snap = await store.snapshot('v');
  writeFileSync(join(v, 'f'), 'current');
  mkdirSync(join(v, 'app'));
  await btrfs.createSubvolume(join(v, 'app', 'inner'));
  writeFileSync(join(v, 'app', 'inner', 'data'), 'only here');
  await t.rejects(store.restore(snap), {
    code: 'ERR_NESTED_SUBVOLUMES',
    message: /^v: cannot restore a volume holding nested subvolumes \(app\/inner\)/,
  });
  await t.rejects(store.restore('v'), { code: 'ERR_NESTED_SUBVOLUMES' }, 'by volume name too');
  t.equal(readFileSync(join(v, 'f'), 'utf8'), 'current');
  t.equal(readFileSync(join(v, 'app', 'inner', 'data'), 'utf8'), 'only here', 'the nested data is kept');
  t.same(await store.snapshots('v'), [snap], 'no backup was taken');
  t.same(readdirSync(options.volumesPath), ['v'], 'no work subvolume left');
  // Once the nested subvolume is gone, the restore works.
  await btrfs.deleteSubvolume(join(v, 'app', 'inner'));
  const result = await store.restore(snap);
  t.equal(readFileSync(join(v, 'f'), 'utf8'), 'snapshotted');
  t.ok(result.backup);
});

t.test('a restore into a volume name that does not exist yet', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  writeFileSync(join(options.volumesPath, 'v', 'f'), 'x');
  const snap = await store.snapshot('v');
  const result = await store.restore(snap, 'fresh');
  t.same(result, { snapshot: snap, volume: 'fresh', backup: null });
  t.equal(readFileSync(join(options.volumesPath, 'fresh', 'f'), 'utf8'), 'x');
  t.same(readdirSync(options.volumesPath).sort(), ['fresh', 'v']);
});

t.test('work subvolumes left behind: the next start cleans or keeps them, and always starts', async (t) => {
  const { options } = await openStore(t);
  const vols = options.volumesPath;
  // Left by a restore: old data with a read-only nested subvolume holding a child.
  const kept = join(vols, '.bv-restore.v.0123456789ab');
  await btrfs.createSubvolume(kept);
  await btrfs.createSubvolume(join(kept, 'ro'));
  await btrfs.createSubvolume(join(kept, 'ro', 'child'));
  await btrfs.setReadonly(join(kept, 'ro'), true);
  // Left by a create: an empty subvolume.
  await btrfs.createSubvolume(join(vols, '.bv-create.w.0123456789ab'));
  // A plain directory with a work name, read-only content inside.
  mkdirSync(join(vols, '.bv-create.x.0123456789ab', 'sub'), { recursive: true });
  const { lines, logger } = logs();
  await VolumeStore.open(options, { recover: true, logger });
  t.same(readdirSync(vols).sort(), ['.bv-restore.v.0123456789ab'], 'the clean ones are gone, the nested one kept');
  t.match(lines.join('\n'), /WARNING kept .*\.bv-restore\.v\.0123456789ab: .* nested subvolumes \(ro, ro\/child\)/);
  t.equal(await btrfs.isSubvolume(join(kept, 'ro', 'child')), true, 'its nested data is untouched');
});

t.test('a failure to clean one leftover is logged and skipped', async (t) => {
  const { options } = await openStore(t);
  const vols = options.volumesPath;
  const stuck = join(vols, '.bv-create.y.0123456789ab');
  await btrfs.createSubvolume(stuck);
  await btrfs.createSubvolume(join(vols, '.bv-create.z.0123456789ab'));
  // A send in progress would hold it (EPERM); here it is made immutable, which fails the delete alike.
  const { execFileSync } = await import('node:child_process');
  execFileSync('chattr', ['+i', stuck]);
  t.teardown(() => execFileSync('chattr', ['-i', stuck]));
  const { lines, logger } = logs();
  const store = await VolumeStore.open(options, { logger });
  const removed = await store.recover();
  t.same(removed, ['.bv-create.z.0123456789ab']);
  t.match(lines.join('\n'), /ERROR cannot remove .*\.bv-create\.y\.0123456789ab, left by an interrupted operation: .*; skipped/);
});

t.test('symlinks in VOLUMES_PATH and SNAPSHOTS_PATH are never followed', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('other', cow);
  writeFileSync(join(options.volumesPath, 'other', 'f'), 'other data');
  await store.create('a', cow);
  writeFileSync(join(options.volumesPath, 'a', 'f'), 'a data');
  const otherSnap = await store.snapshot('other');
  // A snapshot name of `a` pointing at a snapshot of `other`, and a volume pointing at `other`.
  const fake = `a@${otherSnap.split('@')[1]}`;
  symlinkSync(join(options.snapshotsPath, otherSnap), join(options.snapshotsPath, fake));
  symlinkSync(join(options.volumesPath, 'other'), join(options.volumesPath, 'linked'));
  await t.rejects(store.restore(fake), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
  t.equal(readFileSync(join(options.volumesPath, 'a', 'f'), 'utf8'), 'a data', 'the volume was not restored from another one');
  const ops: Array<() => Promise<unknown>> = [() => store.mount('linked', 'id'), () => store.snapshot('linked'), () => store.get('linked'), () => store.path('linked'), () => store.remove('linked')];
  for (const op of ops) {
    await t.rejects(op(), { code: 'ERR_VOLUME_NOT_FOUND' });
  }
  await t.rejects(store.clone('linked', 'copy'), { code: 'ERR_VOLUME_NOT_FOUND' });
  t.same((await store.list()).map((v) => v.name), ['a', 'other'], 'a symlink is not listed');
  t.equal(readFileSync(join(options.volumesPath, 'other', 'f'), 'utf8'), 'other data');
  t.equal(await store.mountCount('other'), 0);
});

t.test('Get counts read-only snapshots only, and shows the newest', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  const s1 = await store.snapshot('v');
  mkdirSync(join(options.snapshotsPath, 'v@2999-01-01T00:00:00.000000'));
  await btrfs.createSubvolume(join(options.snapshotsPath, 'v@2998-01-01T00:00:00.000000'));
  const s2 = await store.snapshot('v');
  await btrfs.snapshot(join(options.snapshotsPath, s2), join(options.snapshotsPath, `${s2}@host`), { readonly: true });
  const status = (await store.get('v')).status;
  t.equal(status.snapshots, 2, 'a plain directory, a writable subvolume and a marker are not counted');
  t.equal(status.lastSnapshot, s2);
  t.not(s1, s2);
});

t.test('restore by volume name chooses the newest snapshot once it holds the lock', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', cow);
  const v = join(options.volumesPath, 'v');
  writeFileSync(join(v, 'f'), 'one');
  const older = await store.snapshot('v');
  writeFileSync(join(v, 'f'), 'two');
  const newer = await store.snapshot('v');
  writeFileSync(join(v, 'f'), 'three');
  // Another process holds the volume; meanwhile the newest snapshot disappears.
  const { spawn } = await import('node:child_process');
  const lockFile = join(options.stateDir, 'locks', 'v.lock');
  mkdirSync(join(options.stateDir, 'locks'), { recursive: true });
  const holder = spawn('flock', ['--exclusive', lockFile, 'sleep', '30'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  t.teardown(async () => {
    if (holder.exitCode === null) holder.kill('SIGKILL');
    await exited;
  });
  await new Promise((r) => setTimeout(r, 300));
  const restoring = store.restore('v');
  await new Promise((r) => setTimeout(r, 200));
  btrfsProgs('subvolume', 'delete', join(options.snapshotsPath, newer));
  holder.kill('SIGKILL');
  const result = await restoring;
  t.equal(result.snapshot, older, 'the newest that exists when the restore runs');
  t.equal(readFileSync(join(v, 'f'), 'utf8'), 'one');
});
