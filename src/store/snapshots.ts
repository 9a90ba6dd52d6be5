// Snapshots of a volume: taken read-only as `<volume>@<date>` (DTFORMAT,
// local time), listed, deleted. The newest one by the original's rule (the
// date in its name) is what restore takes by default and Get shows.
import { setTimeout as sleep } from 'node:timers/promises';

import * as btrfs from '../btrfs/index.js';
import { compareCodePoints } from '../util/code-point.js';
import { errCode } from '../util/err-code.js';
import { readdir } from '../util/fs-async.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { notFound } from './guards.js';
import { isSendMarker, newestSnapshot, snapshotName, validateSnapshotName, validateVolumeName } from './names.js';
import { refuseIfSource } from './volume-from.js';

/** Takes a read-only snapshot of volume `name` (its lock held by the caller); returns its name. */
export async function takeSnapshot(c: StoreContext, name: string): Promise<string> {
  const source = c.layout.volume(name);
  // Two snapshots within one tick of the DTFORMAT's finest unit get one
  // name: wait for the next tick (at most a second, as DTFORMAT shows seconds).
  const deadline = Date.now() + 1500;
  for (;;) {
    const snap = snapshotName(name, c.now(), c.dtFormat);
    try {
      await btrfs.snapshot(source, c.layout.snapshot(snap), { readonly: true });
      return snap;
    } catch (err) {
      const code = errCode(err);
      if ((code === 'ENOENT' || code === 'EINVAL' || code === 'ENOTDIR') && (err as btrfs.BtrfsError).path === source) {
        throw notFound(`No such volume: ${name}`, err);
      }
      if (code !== 'EEXIST') throw err;
      if (Date.now() > deadline) {
        throw new StoreError('ERR_SNAPSHOT_EXISTS', `${snap}: a snapshot of this name already exists (the clock did not move on?)`, { cause: err });
      }
      await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    }
  }
}

/**
 * Snapshot names, in name order (chronological with the default DTFORMAT):
 * those of volume `volume` (send markers included, like the original), or
 * all of them without it.
 */
export async function snapshotNames(c: StoreContext, volume?: string): Promise<string[]> {
  const prefix = volume === undefined ? undefined : `${validateVolumeName(volume)}@`;
  const entries = await readdir(c.layout.paths.snapshotsPath, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name.includes('@'))
    .map((e) => e.name)
    .filter((n) => prefix === undefined || n.startsWith(prefix))
    .sort(compareCodePoints);
}

/** Deletes snapshot `name`; refused while a volume made from it needs it (volume-from.ts). */
export async function removeSnapshot(c: StoreContext, name: string): Promise<void> {
  validateSnapshotName(name);
  const volume = name.slice(0, name.indexOf('@'));
  await c.locks.with(volume, 'shared', async () => {
    await refuseIfSource(c, name, 'delete');
    try {
      await btrfs.deleteSubvolume(c.layout.snapshot(name));
    } catch (err) {
      // Missing, or not a subvolume: either way there is no such snapshot
      // (asking the kernel once costs less than checking first).
      if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') {
        throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', 'No such snapshot', { cause: err });
      }
      throw err;
    }
  });
}

/** The read-only snapshots `<volume>@...` (markers not counted): what Get counts. Other volumes' are not read. */
export async function readonlySnapshotNames(c: StoreContext, volume: string): Promise<string[]> {
  const entries = await btrfs.listSubvolumes(c.layout.paths.snapshotsPath, { prefix: `${volume}@` });
  return entries.filter((e) => e.readonly && !isSendMarker(e.name)).map((e) => e.name);
}

/** The newest snapshot of `volume` that really is a subvolume (the original's rule: the date in its name). */
export async function newestSnapshotOf(c: StoreContext, volume: string): Promise<string> {
  const names = await btrfs.listSubvolumeNames(c.layout.paths.snapshotsPath, { prefix: `${volume}@` });
  const newest = newestSnapshot(names, volume, c.dtFormat);
  if (newest === null) throw new StoreError('ERR_NO_SNAPSHOT', `${volume}: no snapshot to restore`);
  return newest;
}
