// send <host> <snapshot>: asks the peer which snapshots of the volume it
// holds, picks as parent the newest local snapshot the peer holds a faithful
// copy of (btrfs-ioctls.md 4.3: received from it, at the same ctransid,
// read-only and unchanged since), and sends incrementally, or in full when
// there is none. Nothing on the peer is deleted before the new copy is
// complete (the original deleted the peer's copy before a full resend); a
// snapshot the peer already has is not sent again. The send marker
// `<snapshot>@<host>` is written afterwards, as the original did.
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import * as btrfs from '../btrfs/index.js';
import { StoreError } from '../store/errors.js';
import { markSent, snapshotsIn, type SnapshotIdentity } from '../store/replicas.js';
import { isSendMarker, validateSnapshotName } from '../store/names.js';
import { estimateSendSize } from './estimate.js';
import type { PeerConnection } from './client.js';
import type { RemoteSnapshot } from './protocol.js';
import { Meter, type Progress } from './transfer.js';
import { abortChannel, watchIdle } from './idle-watch.js';
import type { ReplicationContext } from './context.js';

export interface SendOptions {
  /** Into the peer's TEST_REMOTE_PATH (the original's tests). */
  test?: boolean;
  /** Bytes per second at most. */
  limit?: number;
  onProgress?: (p: Progress) => void;
}

export interface SendResult {
  snapshot: string;
  host: string;
  /** False when the peer had it already. */
  transferred: boolean;
  /** The parent of the incremental stream, or null for a full one. */
  parent: string | null;
  bytes: number;
  marker: string;
}

/** The identity a stream gives a snapshot: its received UUID if it has one, else its UUID. */
export function identity(s: Pick<SnapshotIdentity, 'uuid' | 'receivedUuid'>): string | null {
  return s.receivedUuid ?? s.uuid;
}

/** Whether remote `d` is a faithful copy of local `p` (4.3): the only parents an incremental may use. */
export function holdsCopyOf(d: RemoteSnapshot, p: SnapshotIdentity): boolean {
  if (!d.readonly) return false;
  // Received from p (or from a snapshot with p's identity), at p's state, unchanged since.
  if (d.receivedUuid !== null && d.receivedUuid === identity(p) && d.stransid === p.ctransid && d.ctransid <= d.rtransid) return true;
  // The other way: p was received from d, which has not changed since it was sent.
  return p.receivedUuid !== null && d.uuid === p.receivedUuid && d.ctransid === p.stransid;
}

/**
 * The parent for sending `snapshot`: the newest (by ctransid) other local
 * read-only snapshot of the same volume, not newer than it, that `remote`
 * holds a faithful copy of; null when there is none.
 */
export function chooseParent(snapshot: SnapshotIdentity, local: readonly SnapshotIdentity[], remote: readonly RemoteSnapshot[]): SnapshotIdentity | null {
  let best: SnapshotIdentity | null = null;
  for (const p of local) {
    if (p.name === snapshot.name || !p.readonly || isSendMarker(p.name) || p.ctransid > snapshot.ctransid) continue;
    if (!remote.some((d) => holdsCopyOf(d, p))) continue;
    if (!best || p.ctransid > best.ctransid || (p.ctransid === best.ctransid && p.otime > best.otime)) best = p;
  }
  return best;
}

/**
 * The local side of a send, checked before any connection: the snapshot and
 * its volume's other snapshots; the marker's name must fit.
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME`, `ERR_SNAPSHOT_NOT_FOUND`.
 */
export async function localSide(ctx: ReplicationContext, snapshot: string, label: string): Promise<{ self: SnapshotIdentity; local: SnapshotIdentity[] }> {
  validateSnapshotName(snapshot);
  if (isSendMarker(snapshot)) throw new StoreError('ERR_INVALID_SNAPSHOT_NAME', `${snapshot} is a send marker, not a snapshot`);
  validateSnapshotName(`${snapshot}@${label}`);
  const local = await snapshotsIn(ctx.store.layout.paths.snapshotsPath, snapshot.slice(0, snapshot.indexOf('@')));
  const self = local.find((s) => s.name === snapshot);
  if (!self || !self.readonly) throw new StoreError('ERR_SNAPSHOT_NOT_FOUND', `No such snapshot: ${snapshot}`);
  return { self, local };
}

/** Sends `snapshot` over `conn` (see the module comment). */
export async function sendSnapshot(ctx: ReplicationContext, conn: PeerConnection, snapshot: string, options: SendOptions = {}): Promise<SendResult> {
  const label = conn.peer.label;
  const volume = snapshot.slice(0, snapshot.indexOf('@'));
  const { self, local } = await localSide(ctx, snapshot, label);
  const test = options.test ?? false;
  const { answer } = await conn.open({ op: 'list', volume, test });
  const remote = (answer.snapshots ?? []) as RemoteSnapshot[];
  const done = async (transferred: boolean, parent: string | null, bytes: number): Promise<SendResult> => ({
    snapshot,
    host: conn.peer.spec,
    transferred,
    parent,
    bytes,
    marker: await markSent(ctx.store, snapshot, label, ctx.logger),
  });
  if (remote.some((d) => holdsCopyOf(d, self) || (d.readonly && d.receivedUuid !== null && d.receivedUuid === identity(self)))) {
    ctx.logger.info(`${conn.peer.label} already holds ${snapshot}: not sent again`);
    return done(false, null, 0);
  }
  const parent = chooseParent(self, local, remote);
  const total = options.onProgress ? await estimateSendSize(self.path, parent?.path).catch(() => null) : null;
  const { channel } = await conn.open({ op: 'receive', volume, snapshot, test });
  const meter = new Meter({ ...(options.limit ? { limit: options.limit } : {}), total, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  const stream = btrfs.send(self.path, parent ? { parent: parent.path } : {});
  // The answer comes once the peer has the whole snapshot (or failed): read it alongside.
  const answered = conn.next(channel, `the stream of ${snapshot}`);
  answered.catch(() => undefined);
  // A peer that stops taking the stream is given up (it would hold the send thread).
  const stopWatch = watchIdle(channel, conn.idleMs, (err) => abortChannel(channel, err));
  try {
    await pipeline(stream, meter, channel, { end: true });
  } catch (err) {
    // The peer may have refused mid-stream: its words say why.
    const peerError = await Promise.race([answered.then(() => null, (e: Error) => e), sleep(1000).then(() => null)]);
    throw peerError ?? err;
  } finally {
    stopWatch();
  }
  await conn.finalAnswer(answered, channel, `the stream of ${snapshot}`);
  ctx.logger.info(`sent ${snapshot} to ${conn.peer.label} (${parent ? `incremental from ${parent.name}` : 'full'}, ${meter.bytes} bytes)`);
  return done(true, parent?.name ?? null, meter.bytes);
}
