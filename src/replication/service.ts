// What the embedded SSH server does for a peer, one request per channel (see
// protocol.ts): list the snapshots it holds of a volume, receive one, send
// one back (pull), and serve a live volume's files (sync). Every name is
// checked with the store's rules, every request against what the peer's key
// may do (authorized-keys.ts); a test request works in TEST_REMOTE_PATH
// (the original's tests replicated a host to itself there). A peer is held
// to time limits (its request line, then no stall longer than
// REPLICATION_IDLE_TIMEOUT) and to a number of requests at once, per
// connection and per key.
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { validateVolumeName } from '../store/names.js';
import type { VolumeStore } from '../store/volume-store.js';
import { errCode } from '../util/err-code.js';
import { report } from '../util/telemetry.js';
import { grantRefusal, type KeyGrant } from './authorized-keys.js';
import { LocalCluster } from './cluster-local.js';
import { estimateSendSize } from './estimate.js';
import { abortChannel, watchIdle } from './idle-watch.js';
import { readLine, writeLine } from './frames.js';
import { MAX_LINE_BYTES, PROTOCOL_VERSION, ReplicationError, SYNC_PROTOCOL_VERSION, parseRequest, type RemoteSnapshot, type Request } from './protocol.js';
import { serveFilesPacked, serveTreePacked } from './sync-serve.js';
import { serveFiles, serveTree } from './sync-source.js';

/** A server channel: data both ways, and stderr for the last word of a send. */
export interface ServiceChannel extends Duplex {
  stderr: Writable;
}

/** The authenticated peer a channel belongs to. */
export interface PeerSession {
  /** `address:port`, for the log. */
  who: string;
  /** Its address (no port): the peer's label in the metrics. */
  address?: string;
  /** Its connection (requests are counted per connection). */
  connection: object;
  /** Its key (base64 of the public key): requests are counted per key too. */
  key: string;
  /** The key's line in authorized_keys. */
  keyLine: number;
  grant: KeyGrant;
}

/** The bounds a peer is held to. */
export interface ServiceLimits {
  /** The request line must have arrived this long after the channel opened. */
  requestLineMs: number;
  /** A request whose peer sends or takes nothing for this long is aborted (REPLICATION_IDLE_TIMEOUT). */
  idleMs: number;
  maxRequestsPerConnection: number;
  maxRequestsPerKey: number;
}

/** What a request may have of the daemon at most, unless the config says otherwise. */
export const DEFAULT_LIMITS: Omit<ServiceLimits, 'idleMs'> = Object.freeze({ requestLineMs: 5000, maxRequestsPerConnection: 8, maxRequestsPerKey: 16 });

export class ReplicationService {
  readonly limits: ServiceLimits;
  /** What this node knows of the volumes that follow their service (shared with the daemon's coordinator). */
  readonly cluster: LocalCluster;
  private readonly perConnection = new WeakMap<object, number>();
  private readonly perKey = new Map<string, number>();

  constructor(
    readonly store: VolumeStore,
    readonly config: Config,
    readonly logger: Logger,
    limits: Partial<ServiceLimits> = {},
    cluster?: LocalCluster,
  ) {
    this.limits = { ...DEFAULT_LIMITS, idleMs: config.replicationIdleSeconds * 1000, ...limits };
    this.cluster = cluster ?? new LocalCluster(store, config.nodeName);
  }

  /** How long a connection or a request may stay silent. */
  get idleMs(): number {
    return this.limits.idleMs;
  }

  /** Serves one channel: a request, its answer, then what it calls for. Never throws. */
  async handle(channel: ServiceChannel, peer: PeerSession): Promise<void> {
    const { who } = peer;
    let request: Request | undefined;
    const release = this.admit(peer);
    try {
      if (!release) {
        throw new ReplicationError(
          'ERR_TOO_MANY_REQUESTS',
          `too many requests at once (at most ${this.limits.maxRequestsPerConnection} per connection and ${this.limits.maxRequestsPerKey} per key): try again when one has ended`,
        );
      }
      request = parseRequest(await readLine(channel, MAX_LINE_BYTES, this.limits.requestLineMs));
      validateVolumeName(request.volume);
      const refused = grantRefusal(peer.grant, request.op, request.volume);
      if (refused) throw new ReplicationError('ERR_NOT_PERMITTED', `the key of authorized_keys line ${peer.keyLine} may not ${request.op} ${request.volume}: ${refused}`);
      this.logger.debug(`ssh ${who}: ${request.op} ${request.volume}${request.test ? ' (test)' : ''}`);
      const stop = watchIdle(channel, this.limits.idleMs, (err) => abortChannel(channel, err));
      try {
        await this.dispatch(channel, request, peer.address ?? peer.who);
      } finally {
        stop();
      }
    } catch (err) {
      const code = errCode(err);
      const message = (err as Error).message ?? String(err);
      if (request) this.logger.warning(`ssh ${who}: ${request.op} ${request.volume} failed: ${message}`);
      else this.logger.warning(`ssh ${who}: bad request: ${message}`);
      if (channel.writable && !channel.destroyed) writeLine(channel, { ok: false, error: message, code: typeof code === 'string' ? code : 'ERR_PEER_FAILED', v: PROTOCOL_VERSION });
    } finally {
      release?.();
      if (!channel.destroyed) channel.end();
    }
  }

  /** Counts a request of `peer`; null when it has too many in flight already. */
  private admit(peer: PeerSession): (() => void) | null {
    const onConnection = this.perConnection.get(peer.connection) ?? 0;
    const ofKey = this.perKey.get(peer.key) ?? 0;
    if (onConnection >= this.limits.maxRequestsPerConnection || ofKey >= this.limits.maxRequestsPerKey) return null;
    this.perConnection.set(peer.connection, onConnection + 1);
    this.perKey.set(peer.key, ofKey + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.perConnection.set(peer.connection, (this.perConnection.get(peer.connection) ?? 1) - 1);
      const left = (this.perKey.get(peer.key) ?? 1) - 1;
      if (left > 0) this.perKey.set(peer.key, left);
      else this.perKey.delete(peer.key);
    };
  }

  private async dispatch(channel: ServiceChannel, request: Request, peer: string): Promise<void> {
    switch (request.op) {
      case 'list': {
        const place = { test: request.test };
        const snapshots: RemoteSnapshot[] = (await this.store.listSnapshots(request.volume, place))
          .filter((s) => s.readonly)
          .map(({ name, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, readonly }) => ({ name, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, readonly }));
        writeLine(channel, { ok: true, snapshots, now: Date.now() });
        return;
      }
      case 'receive': {
        writeLine(channel, { ok: true, ready: true });
        const result = await this.store.receiveSnapshot(request.volume, request.snapshot, channel, { test: request.test }).catch((err: unknown) => {
          report({ kind: 'replication', peer, volume: request.volume, direction: 'received', bytes: 0, ok: false });
          throw err;
        });
        report({ kind: 'replication', peer, volume: request.volume, direction: 'received', bytes: result.streamBytes, ok: true });
        this.logger.info(`received ${result.name}${request.test ? ' (test)' : ''}`);
        writeLine(channel, { ok: true, received: { name: result.name, uuid: result.uuid, receivedUuid: result.receivedUuid, parentUuid: result.parentUuid } });
        return;
      }
      case 'send': {
        const place = { test: request.test };
        // What the puller shows as progress: a metadata-only stream's extents (no data read).
        const estimate = await this.store
          .snapshotStream(request.volume, request.snapshot, request.parent, place, { metadataOnly: true })
          .then(estimateSendSize)
          .catch(() => null);
        const stream = await this.store.snapshotStream(request.volume, request.snapshot, request.parent, place);
        writeLine(channel, { ok: true, estimate });
        let bytes = 0;
        stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
        try {
          await pipeline(stream, channel, { end: false });
          await this.lastWord(channel, { ok: true });
          report({ kind: 'replication', peer, volume: request.volume, direction: 'sent', bytes, ok: true });
        } catch (err) {
          report({ kind: 'replication', peer, volume: request.volume, direction: 'sent', bytes: 0, ok: false });
          if (!channel.destroyed) await this.lastWord(channel, { ok: false, error: (err as Error).message, code: errCode(err) ?? 'ERR_PEER_FAILED' });
          throw err;
        }
        return;
      }
      case 'status':
        writeLine(channel, { ok: true, ...(await this.cluster.status(request.volume)) });
        return;
      case 'claim':
        await this.cluster.claim(request.volume, request.owner, request.state);
        writeLine(channel, { ok: true });
        return;
      // Each writes {"ok":true} itself once the volume is open: a missing volume is a refusal.
      // Version 1 answers in JSON lines (sync-source.ts), 2 in packed items (sync-serve.ts).
      case 'tree': {
        const root = await this.store.openLiveVolume(request.volume, { test: request.test });
        await (request.v >= SYNC_PROTOCOL_VERSION ? serveTreePacked(channel, root) : serveTree(channel, root));
        return;
      }
      case 'files': {
        const root = await this.store.openLiveVolume(request.volume, { test: request.test });
        await (request.v >= SYNC_PROTOCOL_VERSION ? serveFilesPacked(channel, root, request.paths) : serveFiles(channel, root, request.paths));
        return;
      }
    }
  }

  /**
   * Writes a send's last word on stderr and waits until ssh2 has taken it
   * (an end of the channel written meanwhile could overtake it when the
   * peer's window is full), for the idle time at most.
   */
  private async lastWord(channel: ServiceChannel, value: unknown): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => channel.stderr.write(`${JSON.stringify(value)}\n`, () => resolve())),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.limits.idleMs))),
    ]);
    clearTimeout(timer);
  }
}
