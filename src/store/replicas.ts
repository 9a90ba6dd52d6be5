// The store's side of replication, its only door for the replication layer:
// the snapshots of a volume with the identities send and receive match on,
// a snapshot received into the store under the one name it must have, the
// stream of one to send, the send markers `<snapshot>@<host>`, the unsent
// snapshot a `replicate:` job may send again, and a live volume's root for
// sync. A request of the original's test mode works in TEST_REMOTE_PATH
// (snapshots and live volumes both) instead of SNAPSHOTS_PATH and
// VOLUMES_PATH.
import { join } from 'node:path';
import type { Readable } from 'node:stream';

import * as btrfs from '../btrfs/index.js';
import { compareCodePoints } from '../util/code-point.js';
import { errCode } from '../util/err-code.js';
import { mkdir } from '../util/fs-async.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { newestSendable, type LocalSnapshot } from './lineage.js';
import { isSendMarker, validateSnapshotName, validateVolumeName } from './names.js';
import { reserveBytes } from './receive-reserve.js';

/** Where a replication request works. */
export interface Place {
  /** TEST_REMOTE_PATH (the original's test mode) instead of SNAPSHOTS_PATH and VOLUMES_PATH. */
  test?: boolean;
}

async function snapshotDir(c: StoreContext, place: Place): Promise<string> {
  if (!place.test) return c.layout.paths.snapshotsPath;
  const dir = testDir(c);
  await mkdir(dir, { recursive: true });
  return dir;
}

function testDir(c: StoreContext): string {
  const dir = c.layout.paths.testRemotePath;
  if (dir === undefined) throw new StoreError('ERR_NO_TEST_PATH', 'this store has no TEST_REMOTE_PATH');
  return dir;
}

/** `name` if it is a snapshot (not a send marker) of `volume`. */
function snapshotOf(volume: string, name: string): string {
  validateSnapshotName(name);
  if (!name.startsWith(`${volume}@`) || isSendMarker(name)) throw new StoreError('ERR_INVALID_SNAPSHOT_NAME', `${name} is not a snapshot of ${volume}`);
  return name;
}

/** The subvolumes `<volume>@...` of the place (markers included), in name order; none when its directory does not exist. */
export async function listSnapshots(c: StoreContext, volume: string, place: Place = {}): Promise<LocalSnapshot[]> {
  validateVolumeName(volume);
  const dir = place.test ? testDir(c) : c.layout.paths.snapshotsPath;
  const entries = await btrfs.listSubvolumes(dir, { prefix: `${volume}@` }).catch((err: unknown) => {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  });
  return entries
    .map(({ name, path, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, otime, readonly }) => ({ name, path, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, otime, readonly }))
    .sort((a, b) => compareCodePoints(a.name, b.name));
}

/**
 * Receives one snapshot of `volume` named `name` from `input`, under the
 * volume's shared lock. The stream must carry exactly that one snapshot:
 * the receiver refuses any other name before creating it (a stream cannot
 * plant a send marker, say, even when it fails afterwards). The store's
 * RECEIVE_RESERVE is kept free. Parents and clone sources come from the
 * same directory only.
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME`; SendStreamError
 *   `ERR_RECEIVE_UNEXPECTED`, `ERR_RECEIVE_NO_SPACE`; what receive() throws
 *   (EEXIST when the name is taken...).
 */
export async function receiveSnapshot(c: StoreContext, volume: string, name: string, input: Readable, place: Place = {}): Promise<btrfs.ReceiveResult> {
  validateVolumeName(volume);
  snapshotOf(volume, name);
  const dir = await snapshotDir(c, place);
  return c.locks.with(volume, 'shared', async () => {
    const reserve = await reserveBytes(dir, c.receiveReserve).catch((err: unknown) => {
      input.destroy(); // as receive() does when it fails: the sender is released
      throw err;
    });
    const result = await btrfs.receive(dir, input, { expectName: name, reserveBytes: reserve });
    // The receiver refused anything else already: a last check, never expected to fire.
    if (result.subvolumes.length !== 1 || result.name !== name) {
      for (const s of result.subvolumes) await btrfs.deleteSubvolume(s.path).catch(() => undefined);
      throw new StoreError('ERR_RECEIVE_UNEXPECTED', `the stream held ${result.subvolumes.map((s) => s.name).join(', ')}, not just ${name}: deleted`);
    }
    return result;
  });
}

/**
 * The send stream of snapshot `snapshot` of `volume`, incremental from
 * `parent` (another snapshot of it in the same place) or full. With
 * `metadataOnly`, a v2 stream without the file data (its extents' sizes
 * tell how big the real one will be).
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME`, `ERR_SNAPSHOT_NOT_FOUND`.
 */
export async function snapshotStream(
  c: StoreContext,
  volume: string,
  snapshot: string,
  parent: string | null,
  place: Place = {},
  options: { metadataOnly?: boolean } = {},
): Promise<Readable> {
  validateVolumeName(volume);
  const dir = await snapshotDir(c, place);
  const paths = [snapshotOf(volume, snapshot), ...(parent === null ? [] : [snapshotOf(volume, parent)])].map((n) => join(dir, n));
  for (const path of paths) {
    if (!(await btrfs.isSubvolume(path))) throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', `no snapshot ${path}`);
  }
  return btrfs.send(paths[0]!, {
    ...(paths[1] === undefined ? {} : { parent: paths[1] }),
    ...(options.metadataOnly ? { noData: true, protocol: 2 } : {}),
    readAhead: c.sendReadAhead,
  });
}

/**
 * Records that `snapshot` was sent to the host labelled `label`: the
 * original's marker `<snapshot>@<label>`, a read-only snapshot of it (purge
 * keeps the newest marker of each host and its snapshot, so the next send
 * stays incremental). Older markers of that host for the volume go (the
 * original meant to delete them and did not). Idempotent.
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME` (the marker's name would be over 255 bytes).
 */
export async function markSent(c: StoreContext, snapshot: string, label: string): Promise<string> {
  validateSnapshotName(snapshot);
  const marker = validateSnapshotName(`${snapshot}@${label}`);
  const volume = snapshot.slice(0, snapshot.indexOf('@'));
  return c.locks.with(volume, 'shared', async () => {
    const dir = c.layout.paths.snapshotsPath;
    try {
      await btrfs.snapshot(join(dir, snapshot), join(dir, marker), { readonly: true });
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    for (const old of await listSnapshots(c, volume)) {
      if (!isSendMarker(old.name) || old.name === marker || old.name.slice(old.name.lastIndexOf('@') + 1) !== label) continue;
      await btrfs.deleteSubvolume(old.path).catch((err: Error) => c.logger?.warning(`cannot delete the old marker ${old.name}: ${err.message}`));
    }
    return marker;
  });
}

/**
 * The snapshot a `replicate:<host>` job sends instead of taking a new one,
 * or null (the fix of the original's issue #22: one unsent snapshot per
 * period while the host is down). It is the newest snapshot S of the volume
 * by lineage, whoever took it, when all of these hold:
 *
 * - S was not sent to `host` yet: there is no marker `S@host`;
 * - S is a snapshot of the volume as it is now, not of an older volume of the
 *   same name (restore swaps the subvolume): S's parent UUID is the volume's UUID;
 * - nothing changed in the volume since S: S's `ctransid` equals the
 *   volume's, read after flushing and committing the filesystem. btrfs
 *   copies the source's ctransid into a snapshot and bumps the volume's on
 *   any change of its content (data, metadata, even a utimes); buffered
 *   writes count once written back, hence the flush.
 *
 * A new snapshot would then hold what S holds (a write racing with this
 * check may be missed, as it may be by any snapshot; it bumps the ctransid
 * and is in the next period's snapshot). A missing volume gives null.
 */
export async function unsentSnapshot(c: StoreContext, volume: string, host: string): Promise<string | null> {
  const snapshots = await listSnapshots(c, volume);
  const newest = newestSendable(snapshots);
  if (newest === null || snapshots.some((s) => s.name === `${newest.name}@${host}`)) return null;
  const volumePath = c.layout.volume(volume);
  // Writes still in the page cache (an append to an open file) bump the
  // ctransid only once written back: flush and commit first (BTRFS_IOC_SYNC).
  if (!(await btrfs.syncFilesystem(volumePath).then(() => true, () => false))) return null;
  const live = await btrfs.subvolumeInfo(volumePath).catch(() => null);
  if (!live || newest.parentUuid === null || newest.parentUuid !== live.uuid) return null;
  return newest.ctransid === live.ctransid ? newest.name : null;
}

/**
 * The root of live volume `volume` (in VOLUMES_PATH, or TEST_REMOTE_PATH),
 * opened beneath its directory (the volume's own name is never followed):
 * an fd the caller closes. Sync reads and writes the volume's content only
 * beneath it.
 * @throws StoreError `ERR_VOLUME_NOT_FOUND`.
 */
export async function openLiveVolume(c: StoreContext, volume: string, place: Place = {}): Promise<number> {
  validateVolumeName(volume);
  const dir = place.test ? testDir(c) : c.layout.paths.volumesPath;
  try {
    return await btrfs.openBeneath(dir, volume, 'directory');
  } catch (err) {
    if (['ENOENT', 'ENOTDIR'].includes(errCode(err) ?? '')) throw new StoreError('ERR_VOLUME_NOT_FOUND', `no live volume ${join(dir, volume)}`, { cause: err });
    throw err;
  }
}

/** Writes what the volumes' filesystem holds in memory to disk and commits it (after a sync wrote many files). */
export async function flushVolumes(c: StoreContext): Promise<void> {
  await btrfs.syncFilesystem(c.layout.paths.volumesPath);
}
