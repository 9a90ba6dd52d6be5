// Purge when things go wrong: a deletion the kernel refuses stops the purge
// (and nothing is deleted after it has answered), and a stray directory
// named like a snapshot is neither planned nor in the way.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { formatTimestamp } from '../../src/util/timestamp.js';
import { openStore } from '../fixtures/store.js';

process.env.TZ = 'UTC';
const cow = { copyOnWrite: true, compression: null } as const;

t.test('a refused deletion stops the purge; nothing is deleted after it answered', async (t) => {
  const { store, options, mnt } = await openStore(t);
  await store.create('vol', cow);
  const vol = join(options.volumesPath, 'vol');
  const now = Date.now();
  const names: string[] = [];
  for (let i = 0; i < 200; i++) {
    const name = `vol@${formatTimestamp(new Date(now - (1000 + i) * 3600e3), options.dtFormat)}`;
    await btrfs.snapshot(vol, join(options.snapshotsPath, name), { readonly: true });
    names.push(name);
  }
  // The kernel refuses to delete the default subvolume (EPERM): make the
  // oldest snapshot, the first one the plan deletes, the default.
  const oldest = [...names].sort()[0]!;
  const id = (await btrfs.subvolumeInfo(join(options.snapshotsPath, oldest))).id;
  execFileSync('btrfs', ['subvolume', 'set-default', String(id), mnt]);
  t.teardown(() => execFileSync('btrfs', ['subvolume', 'set-default', '5', mnt]));

  await t.rejects(store.purge('vol', '1h:1d'), {
    code: 'ERR_PURGE_FAILED',
    message: /^purge of vol stopped after deleting \d+ of 200 snapshots: EPERM/,
  });
  const atRejection = (await store.snapshots('vol')).length;
  // Without stopping, all 199 deletable snapshots would go (the plan dooms all 200).
  t.ok(atRejection > 1, `stopped before the end of the plan (${atRejection} left)`);
  await new Promise((r) => setTimeout(r, 500));
  t.equal((await store.snapshots('vol')).length, atRejection, 'no deletion after the rejection');
  t.ok(existsSync(join(options.snapshotsPath, oldest)));
});

t.test('a plain directory named like a snapshot is left alone', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('vol', cow);
  const old = `vol@${formatTimestamp(new Date(Date.now() - 100 * 3600e3), options.dtFormat)}`;
  await btrfs.snapshot(join(options.volumesPath, 'vol'), join(options.snapshotsPath, old), { readonly: true });
  const stray = join(options.snapshotsPath, 'vol@2000-01-01T00:00:00.000000');
  mkdirSync(stray);
  t.same(await store.purge('vol', '1h:1d', { dryRun: true }), [old]);
  t.same(await store.purge('vol', '1h:1d'), [old]);
  t.ok(existsSync(stray), 'the stray directory is still there');
  t.notOk(existsSync(join(options.snapshotsPath, old)));
});
