import { nameErrorClass } from '../util/error-name.js';

// What the scheduler needs from replication. Replication itself (btrfs send
// over ssh, rsync) is a later issue; until then the default replicator
// refuses clearly, and the scheduler still behaves well with it: a failing
// `replicate:` job keeps retrying the one snapshot it took (see jobs.ts)
// instead of leaving one more local snapshot every period.

/** Sends snapshots to peers and pulls volumes from them. */
export interface Replicator {
  /**
   * Send read-only snapshot `snapshot` (`<volume>@<date>`) to `host`,
   * incrementally when possible. On success it must leave the send marker
   * `<snapshot>@<host>` in SNAPSHOTS_PATH, as the original's Send did: the
   * scheduler reads "already sent to host" from the markers.
   */
  send(snapshot: string, host: string): Promise<void>;
  /**
   * Pull the live volume `volume` from each of `hosts` into the local one
   * (the original's rsync without --delete). Rejects if any host failed,
   * after trying every host.
   */
  sync(volume: string, hosts: string[]): Promise<void>;
}

/** Code of the error the default replicator rejects with. */
export const ERR_REPLICATION_UNAVAILABLE = 'ERR_REPLICATION_UNAVAILABLE';

/** The refusal of {@link unavailableReplicator}. */
export class ReplicationUnavailableError extends Error {
  readonly code = ERR_REPLICATION_UNAVAILABLE;
}

nameErrorClass(ReplicationUnavailableError, 'ReplicationUnavailableError');

/**
 * The replicator used when none is given: every call rejects with
 * `ERR_REPLICATION_UNAVAILABLE`, naming what was asked.
 */
export const unavailableReplicator: Replicator = Object.freeze({
  send(snapshot: string, host: string): Promise<void> {
    return Promise.reject(
      new ReplicationUnavailableError(`cannot send ${snapshot} to ${host}: replication is not available in this build`),
    );
  },
  sync(volume: string, hosts: string[]): Promise<void> {
    return Promise.reject(
      new ReplicationUnavailableError(`cannot synchronize ${volume} from ${hosts.join(', ')}: replication is not available in this build`),
    );
  },
});
