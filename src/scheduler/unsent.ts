// The fix of the original's issue #22. Its `replicate:` job took a snapshot,
// then sent it; when the host was down the snapshot stayed, and the next
// period took another: one more local snapshot per period for as long as the
// host was down. Here a `replicate:<host>` job first looks for a snapshot it
// can send instead of taking a new one (the rule of `resendable` below), and
// a snapshot it took and could not send is deleted once a newer one
// supersedes it (`superseded`), so at most one unsent snapshot per job stays.
import * as btrfs from '../btrfs/index.js';
import { newestSnapshot } from '../store/names.js';
import type { VolumeStore } from '../store/volume-store.js';

/**
 * The snapshot a `replicate:<host>` job sends instead of taking a new one, or
 * null. It is the newest plain snapshot S of the volume, whoever took it
 * (this job last time, a `snapshot` job, a user), when all of these hold:
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
export async function resendable(store: VolumeStore, volume: string, host: string, names: readonly string[]): Promise<string | null> {
  const newest = newestSnapshot(names, volume, store.dtFormat);
  if (newest === null || names.includes(`${newest}@${host}`)) return null;
  const volumePath = store.layout.volume(volume);
  // Writes still in the page cache (an append to an open file) bump the
  // ctransid only once written back: flush and commit first (BTRFS_IOC_SYNC).
  if (!(await btrfs.syncFilesystem(volumePath).then(() => true, () => false))) return null;
  const [live, snap] = await Promise.all([
    btrfs.subvolumeInfo(volumePath).catch(() => null),
    btrfs.subvolumeInfo(store.layout.snapshot(newest)).catch(() => null),
  ]);
  if (!live || !snap || snap.parentUuid === null || snap.parentUuid !== live.uuid) return null;
  return snap.ctransid === live.ctransid ? newest : null;
}

/**
 * Whether `previous`, a snapshot this job took and has not sent, may be
 * deleted now that `current` is the one to send: it is another name, still
 * there, and sent to no host at all (no marker `previous@*`), so nothing
 * depends on it. A user who wants local history schedules `snapshot`.
 */
export function superseded(previous: string | undefined, current: string, names: readonly string[]): previous is string {
  if (previous === undefined || previous === current || !names.includes(previous)) return false;
  return !names.some((n) => n.startsWith(`${previous}@`));
}
