// Volumes made from a snapshot or a volume (`-o from=`, docs/volumes-from.md):
//
// - a read-only view (`readonly=true`, from a snapshot): a read-only
//   snapshot of the snapshot, made as the volume's subvolume. One ioctl,
//   whatever the size: nothing is copied (every extent is shared) and
//   nothing is restored. A container writing in it gets EROFS.
// - a writable volume: a writable snapshot of the source.
// - an ephemeral one (`ephemeral=true`): a writable snapshot of the source
//   again at every first Mount (mount count 0 -> 1), swapped in with
//   RENAME_EXCHANGE as restore does: no Mount ever sees a partial state; a
//   crash leaves the old or the new content, and the other under a work
//   name that recovery removes at the next start.
//
// What a volume was made from is kept in a record (from-record.ts). A
// snapshot a read-only view shows, and the source of an ephemeral volume,
// cannot be deleted while that volume exists (rm, Snapshot.Remove, purge,
// remove of a source volume): the view itself would survive (it shares the
// extents, it does not borrow them), but it is named after that snapshot and
// is its stand-in, and the ephemeral volume needs its source at each reset.
//
// Locks: making a volume from a snapshot of V takes V's lock exclusive (a
// snapshot is deleted under V's lock shared: the check that no volume needs
// it and the delete happen with no view made between them); from a volume,
// shared (remove takes it exclusive). A reset takes the volume's own lock
// exclusive: two first Mounts at once reset it once.
import * as btrfs from '../btrfs/index.js';
import { compareCodePoints } from '../util/code-point.js';
import { errCode } from '../util/err-code.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { listFromRecords, readFromRecord, removeFromRecord, writeFromRecord, type FromOptions, type FromRecord } from './from-record.js';
import { notFound } from './guards.js';
import { limitOf, noLimit } from './quota.js';
import { validateNewVolumeName } from './names.js';

export type { FromOptions, FromRecord } from './from-record.js';

/** What Get shows of a volume made with from= (nothing for another). */
export interface FromStatus {
  from: string;
  readOnly: boolean;
  ephemeral: boolean;
}

const kindOf = (source: string): 'snapshot' | 'volume' => (source.includes('@') ? 'snapshot' : 'volume');
const volumeOf = (source: string): string => source.split('@')[0]!;
const sourcePath = (c: StoreContext, r: Pick<FromRecord, 'source'>): string =>
  kindOf(r.source) === 'snapshot' ? c.layout.snapshot(r.source) : c.layout.volume(r.source);

/**
 * Creates volume `name` from `from.source` (options already checked by
 * parseCreateOptions). An existing volume is left as it is, as Create does.
 * Its limit (quota.ts): `size` when given; else from a volume, that
 * volume's (as clone); from a snapshot, none.
 * @throws StoreError `ERR_SOURCE_NOT_FOUND`, `ERR_VOLUME_EXISTS`, `ERR_INVALID_VOLUME_NAME`.
 */
export async function createFrom(c: StoreContext, name: string, from: FromOptions, size?: number): Promise<{ created: boolean }> {
  validateNewVolumeName(name, c.dtFormat);
  const kind = kindOf(from.source);
  return c.locks.withAll([[volumeOf(from.source), kind === 'snapshot' ? 'exclusive' : 'shared'], [name, 'exclusive']], async () => {
    const path = c.layout.volume(name);
    if (await btrfs.isSubvolume(path)) return { created: false };
    const source = sourcePath(c, from);
    if (!(await btrfs.isSubvolume(source))) throw new StoreError('ERR_SOURCE_NOT_FOUND', `from=${from.source}: no such ${kind}`);
    // The record first: a volume never exists without it (a record without its volume counts for nothing).
    await writeFromRecord(c, { version: 1, volume: name, kind, source: from.source, readonly: from.readonly, ephemeral: from.ephemeral, created: c.now().toISOString() });
    try {
      const qgroupLimit = size ?? (from.readonly ? noLimit(c) : kind === 'volume' ? await limitOf(c, source) : noLimit(c));
      await btrfs.snapshot(source, path, { readonly: from.readonly, qgroupLimit });
    } catch (err) {
      await removeFromRecord(c, name).catch(() => undefined);
      if (errCode(err) === 'EEXIST') throw new StoreError('ERR_VOLUME_EXISTS', `${name}: a file or directory with this name is in the way`, { cause: err });
      throw err;
    }
    return { created: true };
  });
}

/** Whether `name` is reset to its source at each first Mount. */
export async function isEphemeral(c: StoreContext, name: string): Promise<boolean> {
  return (await readFromRecord(c, name))?.ephemeral === true;
}

/**
 * Mount of an ephemeral volume: at the first one (count 0), its content is
 * replaced by a writable snapshot of its source first; then the mount is
 * recorded. Returns the mountpoint.
 */
export function mountEphemeral(c: StoreContext, name: string, caller: string): Promise<string> {
  return c.locks.with(name, 'exclusive', async () => {
    const path = c.layout.volume(name);
    if (!(await btrfs.isSubvolume(path))) throw notFound(`${name}: no such volume`);
    const record = await readFromRecord(c, name);
    const { count, unknown } = await c.mounts.activeCount(name);
    if (record?.ephemeral && count === 0) {
      if (unknown) c.logger?.warning(`${name}: not reset to ${record.source}: whether it is mounted is unknown (the mount table was damaged); it keeps its content until the next reboot`);
      else await reset(c, record, path);
    }
    await c.mounts.mount(name, caller);
    return path;
  });
}

/** Swaps a writable snapshot of the source in for the volume's content; the old content is deleted. */
async function reset(c: StoreContext, record: FromRecord, path: string): Promise<void> {
  const source = sourcePath(c, record);
  if (!(await btrfs.isSubvolume(source))) {
    throw new StoreError(
      'ERR_SOURCE_NOT_FOUND',
      `${record.volume}: cannot reset it to ${record.source}: that ${record.kind} no longer exists (deleted outside buttervolume?); remove the volume, or create it again from another source`,
    );
  }
  const temp = c.layout.temp('reset', record.volume);
  await btrfs.snapshot(source, temp, { qgroupLimit: await limitOf(c, path) }); // the volume keeps its limit
  try {
    await btrfs.renameExchange(temp, path);
  } catch (err) {
    await btrfs.deleteSubvolume(temp).catch(() => undefined);
    throw err;
  }
  // The old content: throw-away by definition, nested subvolumes with it.
  await btrfs.deleteSubvolume(temp, { recursive: true }).catch((err: Error) => c.logger?.error(`${record.volume}: reset, but its old content stays in ${temp} (${err.message}); the next start removes it`));
}

/**
 * The volumes that need `source` (a snapshot or a volume) to exist: the
 * read-only views of it and the ephemeral volumes reset to it, in name order.
 */
export async function sourceUsers(c: StoreContext, source: string): Promise<string[]> {
  return users(c, (r) => r.source === source).then((m) => m.get(source) ?? []);
}

/** The snapshots of `volume` that volumes need, each with those volumes (for purge). */
export function protectedSnapshots(c: StoreContext, volume: string): Promise<Map<string, string[]>> {
  return users(c, (r) => r.kind === 'snapshot' && volumeOf(r.source) === volume);
}

async function users(c: StoreContext, match: (r: FromRecord) => boolean): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const r of await listFromRecords(c)) {
    if (!(r.readonly || r.ephemeral) || !match(r)) continue;
    // A record whose volume is gone (removed, or never made: a crash) needs nothing.
    if (!(await btrfs.isSubvolume(c.layout.volume(r.volume)))) continue;
    found.set(r.source, [...(found.get(r.source) ?? []), r.volume].sort(compareCodePoints));
  }
  return found;
}

/** "in use by volume v" / "in use by volumes a, b": why a source is kept. */
export function inUseBy(volumes: readonly string[]): string {
  return `in use by volume${volumes.length > 1 ? 's' : ''} ${volumes.join(', ')}`;
}

/**
 * Refuses to `what` (delete, remove) `source` while a volume needs it.
 * @throws StoreError `ERR_SOURCE_IN_USE`.
 */
export async function refuseIfSource(c: StoreContext, source: string, what: string): Promise<void> {
  const volumes = await sourceUsers(c, source);
  if (volumes.length === 0) return;
  const as = kindOf(source) === 'snapshot' ? 'a read-only view of it, or ephemeral from it' : 'ephemeral from it';
  throw new StoreError('ERR_SOURCE_IN_USE', `cannot ${what} ${source}: ${inUseBy(volumes)} (${as}); remove ${volumes.length > 1 ? 'those volumes' : 'that volume'} first`);
}

/**
 * Refuses to `what` (restore) volume `name` when it was made as a read-only
 * view or as an ephemeral volume: the first cannot change, the second would
 * be reset at its next first Mount.
 * @throws StoreError `ERR_READONLY_VOLUME`, `ERR_EPHEMERAL_VOLUME`.
 */
export async function refuseIfMadeFrom(c: StoreContext, name: string, what: string): Promise<void> {
  const r = await readFromRecord(c, name);
  if (r?.readonly) throw new StoreError('ERR_READONLY_VOLUME', `cannot ${what} ${name}: it is a read-only view of ${r.source}; ${what} into another volume`);
  if (r?.ephemeral) {
    throw new StoreError('ERR_EPHEMERAL_VOLUME', `cannot ${what} ${name}: it is ephemeral, reset to ${r.source} at every first mount, so this would not last; ${what} into another volume`);
  }
}

/** What Get shows: From, ReadOnly, Ephemeral for a volume made with from= (nothing for another). */
export async function fromStatus(c: StoreContext, name: string): Promise<FromStatus | Record<string, never>> {
  const r = await readFromRecord(c, name);
  return r ? { from: r.source, readOnly: r.readonly, ephemeral: r.ephemeral } : {};
}

/** Forgets what volume `name` was made from (it was removed). */
export function forgetFrom(c: StoreContext, name: string): Promise<void> {
  return removeFromRecord(c, name);
}

/**
 * Removes the records whose volume does not exist (a crash between the
 * record and the volume, or between the volume's removal and its record's);
 * at the daemon's start. Anything unreadable is reported, never fatal.
 */
export async function dropStaleFromRecords(c: StoreContext): Promise<void> {
  let records: FromRecord[];
  try {
    records = await listFromRecords(c);
  } catch (err) {
    c.logger?.error(`${(err as Error).message}; until then, snapshots and volumes cannot be deleted`);
    return;
  }
  for (const r of records) {
    try {
      await c.locks.with(r.volume, 'exclusive', async () => {
        if (!(await btrfs.isSubvolume(c.layout.volume(r.volume)))) await removeFromRecord(c, r.volume);
      });
    } catch (err) {
      c.logger?.error(`cannot remove the stale record of what ${r.volume} was made from: ${(err as Error).message}; skipped`);
    }
  }
}
