// Volumes made from a snapshot or a volume (`-o from=`), on real btrfs: a
// read-only view (EROFS, nothing copied, its snapshot protected from rm and
// purge until the view is removed), writable clones of a snapshot and of a
// volume (independent), ephemeral volumes (reset at each first mount only,
// atomically, their source protected), what survives reopening the store,
// and hostile or conflicting options refused before anything is touched.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { parseCreateOptions } from '../../src/store/create-options.js';
import { VolumeStore } from '../../src/store/volume-store.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { openStore } from '../fixtures/store.js';

process.env.TZ = 'UTC';
const cow = { copyOnWrite: true, compression: null } as const;
const from = (source: string, extra: Record<string, string> = {}) => parseCreateOptions({ from: source, ...extra });
const read = (path: string) => readFileSync(path, 'utf8');
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
};

t.test('a read-only view of a snapshot: EROFS, no copy, its snapshot kept from rm and purge until the view goes', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', cow);
  const db = join(options.volumesPath, 'db');
  writeFileSync(join(db, 'f'), 'v1');
  // 64 MiB of data: a copy would show in the filesystem's free space.
  writeFileSync(join(db, 'big'), Buffer.alloc(64 << 20, 7));
  const snap = await store.snapshot('db');
  writeFileSync(join(db, 'f'), 'v2');

  t.same(await store.create('view', parseCreateOptions({ from: snap, readonly: 'true' })), { created: true });
  // btrfs-progs as the oracle: every byte of the view is shared with the snapshot, none its own.
  const du = execFileSync('btrfs', ['filesystem', 'du', '-s', '--raw', join(options.volumesPath, 'view')], { encoding: 'utf8' }).trim().split('\n').pop()!.trim().split(/\s+/);
  t.ok(Number(du[0]) >= 64 << 20, `the view holds the data (${du[0]} bytes)`);
  t.equal(Number(du[1]), 0, 'none of it exclusive: nothing was copied');
  const view = join(options.volumesPath, 'view');
  t.equal(read(join(view, 'f')), 'v1', "the view shows the snapshot's content");
  t.equal(await btrfs.getReadonly(view), true);
  t.equal(code(() => writeFileSync(join(view, 'f'), 'x')), 'EROFS', 'writing in it fails with EROFS');
  t.equal(code(() => writeFileSync(join(view, 'new'), 'x')), 'EROFS');
  t.equal(code(() => mkdirSync(join(view, 'd'))), 'EROFS');
  t.match((await store.get('view')).status, { from: snap, readOnly: true, ephemeral: false });
  t.notOk('from' in (await store.get('db')).status, 'a volume not made with from= shows none of it');
  t.same(await store.create('view', parseCreateOptions({ from: snap, readonly: 'true' })), { created: false }, 'Create is idempotent');

  // The snapshot is protected.
  await t.rejects(store.removeSnapshot(snap), { code: 'ERR_SOURCE_IN_USE', message: `cannot delete ${snap}: in use by volume view (a read-only view of it, or ephemeral from it); remove that volume first` });
  t.ok(existsSync(join(options.snapshotsPath, snap)));
  // Older snapshots and the protected one: purge deletes the others, keeps it, and says why.
  const old = `db@${formatTimestamp(new Date(Date.now() - 1000 * 3600e3), options.dtFormat)}`;
  await btrfs.snapshot(db, join(options.snapshotsPath, old), { readonly: true });
  const kept: Array<[string, string]> = [];
  const later = new Date(Date.now() + 3600e3);
  t.same(await store.purge('db', '1m:2m', { dryRun: true, now: later, onKept: (s, why) => kept.push([s, why]) }), [old], 'dry run: the protected snapshot is not counted');
  t.same(kept, [[snap, 'in use by volume view']], 'and it says why');
  const plan = await store.purgeWithPlan('db', '1m:2m', { dryRun: true, now: later });
  t.match(plan.decisions.find((d) => d.name === snap), { decision: 'KEEP', reason: /^in use by volume view \(the pattern alone would delete it/ }, 'as purge --explain shows it');
  kept.length = 0;
  const deleted = await store.purge('db', '1m:2m', { now: later, onKept: (s, why) => kept.push([s, why]) });
  t.same(deleted, [old], 'purge does not count it as deleted');
  t.same(kept, [[snap, 'in use by volume view']]);
  t.same(await store.snapshots('db'), [snap]);
  await t.rejects(store.restore(snap, 'view'), { code: 'ERR_READONLY_VOLUME', message: /^cannot restore view: it is a read-only view of db@/ });

  // Mount, unmount and remove of the view work; then the snapshot may go.
  t.equal(await store.mount('view', 'c1'), view);
  await t.rejects(store.remove('view'), { code: 'ERR_VOLUME_IN_USE' });
  await store.unmount('view', 'c1');
  await store.remove('view');
  t.same(readdirSync(join(options.stateDir, 'from')), [], 'its record went with it');
  await store.removeSnapshot(snap);
  t.same(await store.snapshots('db'), []);
  t.equal(read(join(db, 'f')), 'v2', 'the source volume was never touched');
});

t.test('writable from= a snapshot and from= a volume: clones, independent afterwards', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', cow);
  const db = join(options.volumesPath, 'db');
  writeFileSync(join(db, 'f'), 'nightly');
  const snap = await store.snapshot('db');
  writeFileSync(join(db, 'f'), 'live');

  await store.create('test-db', from(snap));
  const testDb = join(options.volumesPath, 'test-db');
  t.equal(read(join(testDb, 'f')), 'nightly', "the snapshot's content");
  t.equal(await btrfs.getReadonly(testDb), false);
  writeFileSync(join(testDb, 'f'), 'test writes');
  t.match((await store.get('test-db')).status, { from: snap, readOnly: false, ephemeral: false });

  await store.create('copy', from('db'));
  const copy = join(options.volumesPath, 'copy');
  t.equal(read(join(copy, 'f')), 'live', "a volume as source: its current content");
  writeFileSync(join(copy, 'f'), 'copy writes');
  writeFileSync(join(db, 'f'), 'db writes');
  t.equal(read(join(db, 'f')), 'db writes');
  t.equal(read(join(copy, 'f')), 'copy writes');
  t.equal(read(join(testDb, 'f')), 'test writes');
  t.equal(read(join(options.snapshotsPath, snap, 'f')), 'nightly', 'the snapshot unchanged');

  // Independent: their sources may go.
  await store.removeSnapshot(snap);
  await store.remove('db');
  t.equal(read(join(testDb, 'f')), 'test writes');
  t.equal(read(join(copy, 'f')), 'copy writes');
  // A volume made again from its own snapshot (one lock, not two).
  const snap2 = await store.snapshot('copy');
  await store.remove('copy');
  await store.create('copy', from(snap2));
  t.equal(read(join(copy, 'f')), 'copy writes');
});

t.test('ephemeral: reset at each first mount only, its source protected, what survives reopening', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', cow);
  writeFileSync(join(options.volumesPath, 'db', 'f'), 'clean');
  const snap = await store.snapshot('db');
  await store.create('tmp', from(snap, { ephemeral: 'true' }));
  const tmp = join(options.volumesPath, 'tmp');
  t.match((await store.get('tmp')).status, { from: snap, readOnly: false, ephemeral: true });

  await store.mount('tmp', 'run1');
  writeFileSync(join(tmp, 'f'), 'dirty');
  writeFileSync(join(tmp, 'g'), 'more');
  await store.mount('tmp', 'run2');
  t.equal(read(join(tmp, 'f')), 'dirty', 'a second mount while mounted: no reset');
  await store.unmount('tmp', 'run1');
  await store.mount('tmp', 'run3');
  t.equal(read(join(tmp, 'f')), 'dirty', 'still mounted by run2: no reset');
  await store.unmount('tmp', 'run2');
  await store.unmount('tmp', 'run3');
  t.equal(read(join(tmp, 'f')), 'dirty', 'unmount does not reset');
  await store.mount('tmp', 'run4');
  t.equal(read(join(tmp, 'f')), 'clean', 'the next first mount resets it');
  t.notOk(existsSync(join(tmp, 'g')));
  t.same(readdirSync(options.volumesPath).filter((n) => n.startsWith('.bv-')), [], 'no work subvolume left');
  writeFileSync(join(tmp, 'f'), 'dirty again');

  await t.rejects(store.removeSnapshot(snap), { code: 'ERR_SOURCE_IN_USE', message: /in use by volume tmp/ });
  await t.rejects(store.restore(snap, 'tmp'), { code: 'ERR_VOLUME_IN_USE' });
  await store.unmount('tmp', 'run4');
  await t.rejects(store.restore(snap, 'tmp'), { code: 'ERR_EPHEMERAL_VOLUME' });

  // An ephemeral volume from a volume: that volume cannot be removed meanwhile.
  await store.create('tmp2', from('db', { ephemeral: 'true' }));
  await t.rejects(store.remove('db'), { code: 'ERR_SOURCE_IN_USE', message: 'cannot remove db: in use by volume tmp2 (ephemeral from it); remove that volume first' });
  writeFileSync(join(options.volumesPath, 'db', 'f'), 'db changed');
  await store.mount('tmp2', 'x');
  t.equal(read(join(options.volumesPath, 'tmp2', 'f')), 'db changed', "reset to the source volume's current content");
  await store.unmount('tmp2', 'x');

  // Another process, then the daemon again: the records hold.
  store.close();
  const reopened = await VolumeStore.open(options, { recover: true, owner: true });
  t.teardown(() => reopened.close());
  t.match((await reopened.get('tmp')).status, { from: snap, ephemeral: true });
  await t.rejects(reopened.removeSnapshot(snap), { code: 'ERR_SOURCE_IN_USE' });
  await t.rejects(reopened.remove('db'), { code: 'ERR_SOURCE_IN_USE' });
  t.equal(read(join(tmp, 'f')), 'dirty again');
  await reopened.mount('tmp', 'after');
  t.equal(read(join(tmp, 'f')), 'clean', 'reset after a restart too');
  await reopened.unmount('tmp', 'after');

  await reopened.remove('tmp');
  await reopened.removeSnapshot(snap);
  await reopened.remove('tmp2');
  await reopened.remove('db');
  t.same(readdirSync(join(options.stateDir, 'from')), []);
});

t.test('a crash half-way: leftovers removed at the next start, a record without its volume protects nothing', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', cow);
  writeFileSync(join(options.volumesPath, 'db', 'f'), 'clean');
  const snap = await store.snapshot('db');
  await store.create('tmp', from(snap, { ephemeral: 'true' }));
  // A reset cut after its snapshot (new content under a work name, never swapped in).
  const work = join(options.volumesPath, '.bv-reset.tmp.0123456789ab');
  await btrfs.snapshot(join(options.snapshotsPath, snap), work);
  // A Create cut between its record and its volume.
  const recordOf = (v: string) => join(options.stateDir, 'from', `${v}.json`);
  writeFileSync(recordOf('ghost'), readFileSync(recordOf('tmp'), 'utf8').replace('"volume": "tmp"', '"volume": "ghost"').replace('"ephemeral": true', '"ephemeral": false').replace('"readonly": false', '"readonly": true'));
  store.close();

  const reopened = await VolumeStore.open(options, { recover: true, owner: true });
  t.teardown(() => reopened.close());
  t.notOk(existsSync(work), 'the work subvolume is gone');
  t.notOk(existsSync(recordOf('ghost')), 'the record without a volume is gone');
  t.ok(existsSync(recordOf('tmp')));
  await reopened.remove('tmp');
  await reopened.removeSnapshot(snap);

  // A damaged record is never read as "nothing depends on it".
  await reopened.create('tmp', from('db', { ephemeral: 'true' }));
  writeFileSync(recordOf('tmp'), '{"version": 1, "volume": "tm');
  await t.rejects(reopened.remove('db'), { code: 'ERR_FROM_RECORD', message: new RegExp(`^${recordOf('tmp')} is not a record`) });
  await t.rejects(reopened.mount('tmp', 'x'), { code: 'ERR_FROM_RECORD' });
});

t.test('two first mounts at once reset once, and both see the reset content', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', cow);
  writeFileSync(join(options.volumesPath, 'db', 'f'), 'clean');
  await store.create('tmp', from('db', { ephemeral: 'true' }));
  const tmp = join(options.volumesPath, 'tmp');
  await store.mount('tmp', 'a');
  writeFileSync(join(tmp, 'f'), 'dirty');
  await store.unmount('tmp', 'a');
  // Subvolume ids are never reused: each reset makes the next one.
  const before = (await btrfs.subvolumeInfo(tmp)).id;
  const seen = await Promise.all(
    ['b', 'c', 'd'].map(async (id) => {
      await store.mount('tmp', id);
      return (await btrfs.subvolumeInfo(tmp)).id;
    }),
  );
  t.equal(await store.mountCount('tmp'), 3);
  t.equal(read(join(tmp, 'f')), 'clean');
  t.same(seen, [before + 1, before + 1, before + 1], 'one reset, and every mount saw its result');
});

t.test('from= a name that does not exist, hostile names and conflicting options: refused, nothing made', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('db', cow);
  const snap = await store.snapshot('db');
  await t.rejects(store.create('v', from('nosuch')), { code: 'ERR_SOURCE_NOT_FOUND', message: 'from=nosuch: no such volume' });
  await t.rejects(store.create('v', from('db@2001-01-01T00:00:00.000000')), { code: 'ERR_SOURCE_NOT_FOUND', message: 'from=db@2001-01-01T00:00:00.000000: no such snapshot' });
  await t.rejects(store.create('v', from('db@..')), { code: 'ERR_SOURCE_NOT_FOUND' });
  // A volume used as a snapshot, or a snapshot name for a directory that is not a subvolume.
  mkdirSync(join(options.snapshotsPath, 'db@stray'));
  await t.rejects(store.create('v', from('db@stray')), { code: 'ERR_SOURCE_NOT_FOUND' });

  const hostile = ['../db', 'db/../x', '/etc', 'db@x/../../etc', '', '@x', 'db@', 'a\0b', 'n'.repeat(300), `db@${'x'.repeat(300)}`, '-rf', '.', '..', '.bv-reset.db.0123456789ab', 'é'];
  for (const name of hostile) {
    t.throws(() => from(name), { code: 'ERR_INVALID_OPTION', message: /^Invalid option for from: / }, JSON.stringify(name));
  }
  t.throws(() => from(`${snap}@node2`), { code: 'ERR_INVALID_OPTION', message: /is a send marker/ });
  const conflicts: Array<[Record<string, unknown>, RegExp]> = [
    [{ readonly: 'true' }, /readonly goes with from=/],
    [{ ephemeral: 'true' }, /ephemeral goes with from=/],
    [{ from: snap, readonly: 'true', ephemeral: 'true' }, /choose one/],
    [{ from: 'db', readonly: 'true' }, /readonly=true needs from= a snapshot/],
    [{ from: snap, copyonwrite: 'false' }, /copyonwrite with from=/],
    [{ from: snap, compression: 'zstd' }, /compression with from=/],
    [{ from: snap, replicas: 'node2' }, /replicas with from=/],
    [{ from: snap, rpo: '1h' }, /rpo with from=/],
    [{ from: snap, readonly: 'yes' }, /Invalid option for readonly: yes/],
    [{ from: snap, ephemeral: '1' }, /Invalid option for ephemeral: 1/],
    [{ from: { a: 1 } }, /must be a string/],
  ];
  for (const [opts, message] of conflicts) t.throws(() => parseCreateOptions(opts), { code: 'ERR_INVALID_OPTION', message }, JSON.stringify(opts));
  t.same(parseCreateOptions({ From: snap, ReadOnly: 'True' }).from, { source: snap, readonly: true, ephemeral: false }, "keys and booleans in any case (compose's True)");
  t.same(parseCreateOptions({ from: 'db', readonly: 'false', ephemeral: 'false' }).from, { source: 'db', readonly: false, ephemeral: false });

  t.same(readdirSync(options.volumesPath).filter((n) => !n.startsWith('.')), ['db'], 'no volume made');
  t.notOk(existsSync(join(options.stateDir, 'from')) && readdirSync(join(options.stateDir, 'from')).length > 0, 'no record left');
});
