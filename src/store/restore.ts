// Restore and clone: a volume made from a snapshot, or from another volume.
// Restore never leaves the volume missing: the new content is built under a
// hidden name and swapped in with RENAME_EXCHANGE once the old content is
// kept as a snapshot; a crash at any step leaves old or new data and a
// leftover that recovery.ts removes at the next start.
import * as btrfs from '../btrfs/index.js';
import { errCode } from '../util/err-code.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { describeNested, notFound, refuseIfMounted } from './guards.js';
import { validateNewVolumeName, validateSnapshotName, validateVolumeName } from './names.js';
import { epochOf, updateRecord } from './cluster-record.js';
import { newestSnapshotOf, takeSnapshot } from './snapshots.js';
import { limitOf, noLimit } from './quota.js';
import { refuseIfMadeFrom } from './volume-from.js';

export interface RestoreOptions {
  /** Keep the volume as it was as a read-only snapshot first (default true; false only when its content is already kept, or nothing). */
  backup?: boolean;
}

export interface RestoreResult {
  /** The snapshot the volume was restored from. */
  snapshot: string;
  /** The restored volume. */
  volume: string;
  /** Read-only snapshot of the volume as it was before, or null if it did not exist. */
  backup: string | null;
}

/**
 * Restores a snapshot into a volume: `name` is a snapshot, or a volume
 * meaning its newest snapshot; `target` defaults to the snapshot's volume.
 * The current volume is first kept as a read-only snapshot (`backup`).
 * Refused while the target is mounted.
 */
export async function restore(c: StoreContext, name: string, target?: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const given = name.includes('@') ? validateSnapshotName(name) : validateVolumeName(name);
  const volume = target ?? given.split('@')[0]!;
  validateVolumeName(volume);
  // A new volume must have a name that fits (an existing one, made by the original, may be longer).
  const path = c.layout.volume(volume);
  if (!(await btrfs.isSubvolume(path))) validateNewVolumeName(volume, c.dtFormat);
  return c.locks.with(volume, 'exclusive', async () => {
    // Chosen under the lock: a snapshot taken or removed meanwhile counts.
    const snapshot = name.includes('@') ? given : await newestSnapshotOf(c, given);
    const source = c.layout.snapshot(snapshot);
    if (!(await btrfs.isSubvolume(source))) throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', 'No such snapshot');
    const exists = await btrfs.isSubvolume(path);
    if (!exists) validateNewVolumeName(volume, c.dtFormat);
    await refuseIfMounted(c, volume, 'restore');
    if (exists) await refuseIfMadeFrom(c, volume, 'restore');
    if (exists) await refuseIfNested(volume, path);
    const temp = c.layout.temp('restore', volume);
    // The volume keeps its limit (quota.ts), set in the snapshot ioctl: swapped in with it.
    await btrfs.snapshot(source, temp, { qgroupLimit: exists ? await limitOf(c, path) : noLimit(c) });
    let swapped = false;
    try {
      if (!exists) {
        await btrfs.renameNoReplace(temp, path);
        swapped = true;
        return { snapshot, volume, backup: null };
      }
      const backup = options.backup === false ? null : await takeSnapshot(c, volume);
      await btrfs.renameExchange(temp, path);
      swapped = true;
      await settleDivergence(c, volume, snapshot, path);
      return { snapshot, volume, backup };
    } finally {
      if (!(exists === false && swapped)) await dropWork(c, temp);
    }
  });
}

/** Creates volume `target` as a writable snapshot of volume `name`, with its limit (quota.ts). */
export async function clone(c: StoreContext, name: string, target: string): Promise<string> {
  validateVolumeName(name);
  validateNewVolumeName(target, c.dtFormat);
  if (name === target) throw new StoreError('ERR_VOLUME_EXISTS', `${target}: volume already exists`);
  return c.locks.withAll([[name, 'shared'], [target, 'exclusive']], async () => {
    const source = c.layout.volume(name);
    if (!(await btrfs.isSubvolume(source))) throw notFound('No such volume');
    try {
      await btrfs.snapshot(source, c.layout.volume(target), { qgroupLimit: await limitOf(c, source) }); // the source's limit
    } catch (err) {
      if (errCode(err) === 'EEXIST') throw new StoreError('ERR_VOLUME_EXISTS', `${target}: volume already exists`, { cause: err });
      throw err;
    }
    return target;
  });
}

/**
 * A volume that diverged (cluster-record.ts) is settled by restoring one of
 * the two states kept: the peer's (this node takes its state, what changed
 * here stays a snapshot), or this node's own (it becomes a state newer than
 * the peer's, pushed at the next release).
 */
async function settleDivergence(c: StoreContext, volume: string, snapshot: string, path: string): Promise<void> {
  await updateRecord(c, volume, async (r) => {
    const d = r?.diverged;
    if (!r || !d || (snapshot !== d.theirs.snapshot && snapshot !== d.mine.snapshot)) return null;
    const ctransid = (await btrfs.subvolumeInfo(path)).ctransid;
    if (snapshot === d.theirs.snapshot) {
      return { ...r, state: { epoch: d.theirs.epoch, snapshot, identity: d.theirs.identity }, live: { epoch: d.theirs.epoch, ctransid, snapshot }, diverged: null };
    }
    const info = await btrfs.subvolumeInfo(c.layout.snapshot(snapshot));
    const epoch = Math.max(d.theirs.epoch, epochOf(r)) + 1;
    return { ...r, state: { epoch, snapshot, identity: info.receivedUuid ?? info.uuid ?? '' }, live: { epoch, ctransid, snapshot }, diverged: null };
  });
}

/** Deletes a work subvolume of restore; keeps it (and says so) if nested subvolumes appeared in it. */
async function dropWork(c: StoreContext, temp: string): Promise<void> {
  try {
    await btrfs.deleteSubvolume(temp);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return;
    // ENOTEMPTY: nested subvolumes were created in the old volume after the check.
    c.logger?.error(`kept ${temp} (${(err as Error).message}): it may hold data that exists nowhere else; recover() reports it at each start`);
  }
}

/** Restore keeps the old volume as a snapshot, and snapshots do not hold nested subvolumes. */
async function refuseIfNested(name: string, path: string): Promise<void> {
  const nested = await btrfs.nestedSubvolumes(path);
  if (nested.length === 0) return;
  throw new StoreError(
    'ERR_NESTED_SUBVOLUMES',
    `${name}: cannot restore a volume holding nested subvolumes (${describeNested(nested)}): a snapshot does not keep them, so restoring would lose them; move or delete them first`,
  );
}
