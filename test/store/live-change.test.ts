// Whether a live volume changed since a state of it (store/live-change.ts):
// reads move the subvolume's ctransid (relatime writes access times) but are
// no change; writes, new names, renames, owners and modes are.
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';

import * as btrfs from '../../src/btrfs/index.js';
import { openStore } from '../fixtures/store.js';

const OPTS = { copyOnWrite: true, compression: null } as const;

t.test('reads are no change; each kind of write is one', async (t) => {
  const { store, options } = await openStore(t);
  await store.create('v', OPTS);
  const live = await store.path('v');
  mkdirSync(join(live, 'dir'));
  writeFileSync(join(live, 'dir', 'f'), 'one');
  writeFileSync(join(live, 'g'), 'two');
  /** A state now: its snapshot and the live volume's ctransid, as the cluster record keeps them. */
  const mark = async () => {
    const snapshot = await store.snapshot('v');
    return { snapshot, ctransid: await store.liveCtransid('v') };
  };
  let since = await mark();
  t.equal(await store.liveChanged('v', since), false, 'right after the state: unchanged');

  await sleep(1100); // relatime writes an access time at the first read after a change
  readdirSync(live);
  readFileSync(join(live, 'dir', 'f'));
  readdirSync(join(live, 'dir'));
  await btrfs.syncFilesystem(live);
  t.not((await btrfs.subvolumeInfo(live)).ctransid, since.ctransid, 'the reads moved the ctransid');
  t.equal(await store.liveChanged('v', since), false, 'but they are no change');
  t.same(readdirSync(options.volumesPath).filter((n) => n.startsWith('.bv-')), [], 'the probe snapshot is gone');

  const changes: Array<[string, () => void]> = [
    ['a file written', () => writeFileSync(join(live, 'g'), 'changed')],
    ['a file added', () => writeFileSync(join(live, 'dir', 'new'), 'x')],
    ['a rename', () => renameSync(join(live, 'g'), join(live, 'h'))],
    ['a mode', () => chmodSync(join(live, 'dir', 'f'), 0o600)],
    ['an owner', () => chownSync(join(live, 'dir', 'f'), 1234, 1234)],
  ];
  for (const [what, change] of changes) {
    since = await mark();
    change();
    t.equal(await store.liveChanged('v', since), true, `${what}: a change`);
  }

  // A big change: told at its first command, the rest of the stream never made.
  since = await mark();
  writeFileSync(join(live, 'big'), Buffer.alloc(200 << 20, 1));
  const t0 = Date.now();
  t.equal(await store.liveChanged('v', since), true, '200 MiB written: a change');
  t.ok(Date.now() - t0 < 5000, `told in ${Date.now() - t0} ms (the stream is stopped at its first write)`);
  await sleep(200); // the send thread, cut off, ends after: nothing may surface from it

  since = await mark();
  t.equal(await store.liveChanged('v', { ...since, snapshot: undefined }), false, 'no snapshot known, same ctransid: unchanged');
  await sleep(1100);
  readFileSync(join(live, 'dir', 'new'));
  t.equal(await store.liveChanged('v', { ...since, snapshot: undefined }), true, 'no snapshot known, ctransid moved: taken as a change');
  t.equal(await store.liveChanged('v', { ...since, snapshot: 'v@2000-01-01T00:00:00.000000' }), true, 'its snapshot gone: taken as a change');

  await store.create('empty', OPTS);
  const empty = await store.path('empty');
  const created = await store.liveCtransid('empty');
  await sleep(1100);
  readdirSync(empty);
  t.equal(await store.liveChanged('empty', { ctransid: created, snapshot: null }), false, 'a volume as created, only read: unchanged');
  writeFileSync(join(empty, 'f'), 'x');
  t.equal(await store.liveChanged('empty', { ctransid: created, snapshot: null }), true, 'written: changed');
});
