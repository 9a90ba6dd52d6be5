// What a sync reports: per host, what was copied, kept and skipped (with
// the first reasons), or why the host failed.
import { ReplicationError } from './protocol.js';
import type { SyncLimits } from './sync-limits.js';

export interface SyncOptions {
  /** From the peers' TEST_REMOTE_PATH/<volume>. */
  test?: boolean;
  /** Bounds of what one host's sync remembers (tests set small ones); default DEFAULT_SYNC_LIMITS. */
  limits?: Partial<SyncLimits>;
}

/** An entry not copied, and why. */
export interface SyncSkip {
  path: string;
  reason: string;
}

/** What a sync did with one host. */
export interface HostSyncResult {
  host: string;
  ok: boolean;
  /** Why this host failed (it could not be reached, refused, or the transfer broke). */
  error?: string;
  /** Regular files written (content fetched). */
  copied?: number;
  /** Hard links made to a file copied in this run. */
  linked?: number;
  /** Remote hard links fetched as files of their own: more than the sync limits could remember. */
  unlinked?: number;
  symlinks?: number;
  /** Directories created. */
  dirs?: number;
  /** Bytes of content fetched. */
  bytes?: number;
  /** Files and symlinks already here, as new as the remote's or newer (within SYNC_CLOCK_SKEW): left as they are. */
  kept?: number;
  /** Entries not copied: conflicts, special files, files that changed while read or here, times ahead of our clock... */
  skipped?: number;
  /** The first of them, with the reason. */
  skips?: SyncSkip[];
}

export interface SyncResult {
  volume: string;
  /** Per host, in the order given: what was done, or why it failed. */
  hosts: HostSyncResult[];
}

/** A sync that failed for some host: the message names each with its reason; `result` holds what the others did. */
export class SyncError extends ReplicationError {
  /** The local snapshot taken before the pull (snapshot, then sync), if one was. */
  snapshot?: string;

  constructor(
    message: string,
    readonly result: SyncResult,
  ) {
    super('ERR_SYNC_FAILED', message);
  }
}
