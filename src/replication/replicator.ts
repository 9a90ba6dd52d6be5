// The one replication seam: send, receive (pull) and sync, over SSH with
// ssh2, used alike by the plugin server's endpoints, the CLI and the
// scheduler. Peers are `name`, `name:port` or `user@name[:port]`; the port
// defaults to SSH_PORT and the keys are in SSH_PATH.
import { report } from '../util/telemetry.js';
import type { ConnectOptions } from './client.js';
import type { ReplicationContext } from './context.js';
import { parsePeer, type Peer } from './peer.js';
import type { PullOptions, PullResult } from './pull.js';
import type { SendOptions, SendResult } from './send.js';
import type { ClusterStatus, WireOwnership, WireState } from './protocol.js';
import type { SyncOptions, SyncResult } from './sync.js';

export type { Peer, PullResult, SendResult, SyncResult };

/** What {@link Replicator.snapshotAndSync} did: the local snapshot taken first, then the sync. */
export interface SnapshotSyncResult extends SyncResult {
  snapshot: string;
}

export interface TransportOptions {
  /** SSH compression. */
  compress?: boolean;
  /** Give up connecting after this many ms (default 20 s). */
  connectTimeoutMs?: number;
}

/** Sends snapshots to peers, pulls them back, synchronizes live volumes. */
export interface Replicator {
  /**
   * Reads a peer spec with this host's SSH_PORT as default port: callers check
   * every host before doing anything (a sync snapshots first).
   * @throws StoreError `ERR_INVALID_HOST`.
   */
  peer(spec: string): Peer;
  /**
   * Sends read-only snapshot `snapshot` to `host`, incrementally when the
   * peer holds a faithful copy of an older one; writes the send marker
   * `<snapshot>@<host>` (the scheduler and purge read them).
   */
  send(snapshot: string, host: string, options?: SendOptions & TransportOptions): Promise<SendResult>;
  /** Fetches the newest snapshot of `volume` that `host` holds and we lack (the CLI's `receive`, the endpoint Snapshot.Receive). */
  pull(host: string, volume: string, options?: PullOptions & TransportOptions): Promise<PullResult>;
  /**
   * Pulls the files of the live `volume` of each of `hosts` into the local
   * one (after a local snapshot, taken by the caller). Rejects, once every
   * host was tried, naming each host that failed.
   */
  sync(volume: string, hosts: readonly string[], options?: SyncOptions & TransportOptions): Promise<SyncResult>;
  /**
   * The original's "snapshot, then sync": every host checked, a local
   * snapshot of `volume` taken (so whatever the pull replaces can be
   * restored), then {@link sync}.
   * @throws StoreError of the snapshot (no host tried); SyncError with `snapshot` set.
   */
  snapshotAndSync(volume: string, hosts: readonly string[], options?: SyncOptions & TransportOptions): Promise<SnapshotSyncResult>;
}

/**
 * The Replicator over SSH. ssh2 and the transfer code are loaded on first
 * use: the daemon and the CLI's other commands do not pay for them.
 */
/** `transfer`'s outcome reported (bytes of the stream; 0 when nothing moved or it failed), then passed on. */
async function measured<T extends { bytes: number }>(peer: Peer, volume: string, direction: 'sent' | 'received', transfer: Promise<T>): Promise<T> {
  try {
    const result = await transfer;
    report({ kind: 'replication', peer: peer.label, volume, direction, bytes: result.bytes, ok: true });
    return result;
  } catch (err) {
    report({ kind: 'replication', peer: peer.label, volume, direction, bytes: 0, ok: false });
    throw err;
  }
}

export class SshReplicator implements Replicator {
  constructor(readonly ctx: ReplicationContext) {}

  /** A peer spec read with this host's SSH_PORT as default port. */
  peer(spec: string): Peer {
    return parsePeer(spec, this.ctx.config.sshPort);
  }

  private connectOptions(options: TransportOptions): ConnectOptions {
    const { sshPath, replicationIdleSeconds } = this.ctx.config;
    return {
      sshPath,
      logger: this.ctx.logger,
      idleMs: replicationIdleSeconds * 1000,
      ...(options.compress ? { compress: true } : {}),
      ...(options.connectTimeoutMs ? { timeoutMs: options.connectTimeoutMs } : {}),
    };
  }

  async send(snapshot: string, host: string, options: SendOptions & TransportOptions = {}): Promise<SendResult> {
    const peer = this.peer(host);
    const [{ withPeer }, { localSide, sendSnapshot }] = await Promise.all([import('./client.js'), import('./send.js')]);
    await localSide(this.ctx, snapshot, peer.label); // local mistakes before any connection
    const volume = snapshot.slice(0, snapshot.indexOf('@'));
    return measured(peer, volume, 'sent', withPeer(peer, this.connectOptions(options), (conn) => sendSnapshot(this.ctx, conn, snapshot, options)));
  }

  async pull(host: string, volume: string, options: PullOptions & TransportOptions = {}): Promise<PullResult> {
    const peer = this.peer(host);
    const [{ withPeer }, { pullVolume }] = await Promise.all([import('./client.js'), import('./pull.js')]);
    return measured(peer, volume, 'received', withPeer(peer, this.connectOptions(options), (conn) => pullVolume(this.ctx, conn, volume, options)));
  }

  async sync(volume: string, hosts: readonly string[], options: SyncOptions & TransportOptions = {}): Promise<SyncResult> {
    const peers = hosts.map((h) => this.peer(h));
    const { syncVolume } = await import('./sync.js');
    const reportHosts = (result: SyncResult) =>
      result.hosts.forEach((h, i) => report({ kind: 'replication', peer: peers[i]?.label ?? h.host, volume, direction: 'received', bytes: h.bytes ?? 0, ok: h.ok }));
    try {
      const result = await syncVolume(this.ctx, volume, peers, this.connectOptions(options), options);
      reportHosts(result);
      return result;
    } catch (err) {
      const result = (err as { result?: SyncResult }).result;
      if (result) reportHosts(result);
      else peers.forEach((p) => report({ kind: 'replication', peer: p.label, volume, direction: 'received', bytes: 0, ok: false }));
      throw err;
    }
  }

  async snapshotAndSync(volume: string, hosts: readonly string[], options: SyncOptions & TransportOptions = {}): Promise<SnapshotSyncResult> {
    hosts.forEach((h) => this.peer(h)); // every host is good before the snapshot
    const snapshot = await this.ctx.store.snapshot(volume);
    try {
      return { snapshot, ...(await this.sync(volume, hosts, options)) };
    } catch (err) {
      if (err instanceof Error && 'result' in err && (err as { code?: string }).code === 'ERR_SYNC_FAILED') Object.assign(err, { snapshot });
      throw err;
    }
  }

  /** What `host` knows of a volume that follows its service (see cluster-local.ts); connecting bounded by `timeoutMs`. */
  async status(host: string, volume: string, options: { timeoutMs?: number } = {}): Promise<ClusterStatus> {
    const peer = this.peer(host);
    const [{ withPeer }, { checkClusterStatus }] = await Promise.all([import('./client.js'), import('./peer-answers.js')]);
    const connect = this.connectOptions(options.timeoutMs ? { connectTimeoutMs: options.timeoutMs } : {});
    return withPeer(peer, connect, async (conn) => checkClusterStatus((await conn.open({ op: 'status', volume, test: false })).answer, volume, peer.label));
  }

  /** Tells `host` that `owner` holds `volume` (and, with `state`, that it just pushed that state there). */
  async claim(host: string, volume: string, owner: WireOwnership, state?: WireState, options: { timeoutMs?: number } = {}): Promise<void> {
    const peer = this.peer(host);
    const { withPeer } = await import('./client.js');
    const connect = this.connectOptions(options.timeoutMs ? { connectTimeoutMs: options.timeoutMs } : {});
    await withPeer(peer, connect, (conn) => conn.open({ op: 'claim', volume, owner, ...(state ? { state } : {}), test: false }).then(({ channel }) => void channel.end()));
  }
}
