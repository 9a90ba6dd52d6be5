// sync <volume> <host>...: the original's rsync pull (archive mode, no
// --delete) without rsync. For each host in turn, its live volume's tree is
// read (a "tree" request) and compared with the local live volume as it
// arrives: a file missing here or newer (mtime) there is fetched (or as old
// but of another size: rsync's quick check on a tie), in batches
// ("files" requests, large files streamed in chunks), and written under a
// temporary name in its directory, its owner, mode and mtime set, then
// renamed over the old one: a reader sees the old file or the new one, never
// half of one. Symlinks are copied as symlinks, remote paths sharing an
// inode become hard links of one local file, missing directories are created
// (their mtime set at the end). Nothing local is ever deleted: a type
// conflict (a remote file where a directory is here, a symlink here where
// the remote has a directory...) is skipped and reported, and so is a FIFO,
// socket or device.
//
// "Newer" is the peer's clock against ours: an entry whose mtime is ahead of
// this host's clock by more than SYNC_CLOCK_SKEW is skipped (a peer whose
// clock is a year ahead would otherwise replace every file). And the local
// entry is looked at once (a listing of its directory) but replaced only if
// it is still what was listed (inode, size, mtime) right before the rename:
// a container's write in between wins, the file is skipped.
//
// The local volume is a container's too, and hostile: every directory is
// opened beneath the volume's root with openat2 (btrfs.openBeneath: no
// symlink, no "..", no mount point on the path) and every entry is named as
// /proc/self/fd/<dirfd>/<name>, never followed; a planted `a -> /etc` makes
// the peer's `a/passwd` a conflict, not a write to /etc/passwd.
//
// Here: the results and syncVolume, host after host. One host's pull is
// sync-host.ts; the local side sync-local.ts; the writes sync-writes.ts;
// the peer's answers are checked by peer-answers.ts.
import { StoreError } from '../store/errors.js';
import { validateVolumeName } from '../store/names.js';
import { withPeer, type ConnectOptions } from './client.js';
import type { ReplicationContext } from './context.js';
import type { Peer } from './peer.js';
import { HostSync } from './sync-host.js';
import { SyncError, type HostSyncResult, type SyncOptions, type SyncResult } from './sync-result.js';

export { SyncError, type HostSyncResult, type SyncOptions, type SyncResult, type SyncSkip } from './sync-result.js';
import { syncLimits } from './sync-limits.js';

export { SYNC_TEMP_PREFIX } from './sync-local.js';

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Pulls the live `volume` of each of `peers`, in turn, into the local live
 * volume (see the top of this file). Each host's failure is its own: the
 * others are still synced.
 * @throws StoreError `ERR_VOLUME_NOT_FOUND` (no local volume: no host is tried);
 *   SyncError `ERR_SYNC_FAILED` once every host was tried, naming each that failed with its reason.
 */
export async function syncVolume(ctx: ReplicationContext, volume: string, peers: readonly Peer[], connect: ConnectOptions, options: SyncOptions): Promise<SyncResult> {
  validateVolumeName(volume);
  const limits = syncLimits(options.limits);
  if (!(await ctx.store.exists(volume))) throw new StoreError('ERR_VOLUME_NOT_FOUND', `${volume}: no such volume`);
  const hosts: HostSyncResult[] = [];
  for (const peer of peers) {
    try {
      const counts = await withPeer(peer, connect, (conn) => ctx.store.withVolumeLock(volume, 'shared', () => new HostSync(ctx, conn, volume, options.test === true, limits).run()));
      hosts.push({ host: peer.label, ok: true, ...counts });
      ctx.logger.info(
        `sync ${volume} from ${peer.label}: ${counts.copied} files (${counts.bytes} bytes), ${counts.linked} hard links${counts.unlinked ? ` (${counts.unlinked} fetched as files of their own)` : ''}, ${counts.symlinks} symlinks, ${counts.dirs} directories; ${counts.kept} kept, ${counts.skipped} skipped`,
      );
      for (const s of counts.skips) ctx.logger.debug(`sync ${volume} from ${peer.label}: skipped ${s.path}: ${s.reason}`);
    } catch (err) {
      hosts.push({ host: peer.label, ok: false, error: message(err) });
      ctx.logger.warning(`sync ${volume} from ${peer.label} failed: ${message(err)}`);
    }
  }
  const failed = hosts.filter((h) => !h.ok);
  const result = { volume, hosts };
  if (failed.length > 0) throw new SyncError(`sync of ${volume} failed from ${failed.map((h) => `${h.host} (${h.error})`).join(', ')}`, result);
  return result;
}
