// send <host> <snapshot>: asks the peer which snapshots of the volume it
// holds, picks as parent the newest local snapshot the peer holds the same
// state of (store/lineage.ts: a faithful copy, one way or the other), and
// sends incrementally, or in full when there is none. Nothing on the peer is deleted before the new copy is
// complete (the original deleted the peer's copy before a full resend); a
// snapshot the peer already has is not sent again. The send marker
// `<snapshot>@<host>` is written afterwards, as the original did.
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { StoreError } from '../store/errors.js';
import { chooseParent, sameSnapshot, type LocalSnapshot } from '../store/lineage.js';
import { isSendMarker, validateSnapshotName } from '../store/names.js';
import type { PeerConnection } from './client.js';
import type { ReplicationContext } from './context.js';
import { estimateSendSize } from './estimate.js';
import { abortChannel, watchIdle } from './idle-watch.js';
import { checkSnapshotList } from './peer-answers.js';
import { Meter, type Progress } from './transfer.js';

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

/**
 * The local side of a send, checked before any connection: the snapshot and
 * its volume's other snapshots; the marker's name must fit.
 * @throws StoreError `ERR_INVALID_SNAPSHOT_NAME`, `ERR_SNAPSHOT_NOT_FOUND`.
 */
export async function localSide(ctx: ReplicationContext, snapshot: string, label: string): Promise<{ self: LocalSnapshot; local: LocalSnapshot[] }> {
  validateSnapshotName(snapshot);
  if (isSendMarker(snapshot)) throw new StoreError('ERR_INVALID_SNAPSHOT_NAME', `${snapshot} is a send marker, not a snapshot`);
  validateSnapshotName(`${snapshot}@${label}`);
  const local = await ctx.store.listSnapshots(snapshot.slice(0, snapshot.indexOf('@')));
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
  const remote = checkSnapshotList(answer, volume, label);
  const done = async (transferred: boolean, parent: string | null, bytes: number): Promise<SendResult> => ({
    snapshot,
    host: conn.peer.spec,
    transferred,
    parent,
    bytes,
    marker: await ctx.store.markSent(snapshot, label),
  });
  if (remote.some((d) => sameSnapshot(d, self))) {
    ctx.logger.info(`${conn.peer.label} already holds ${snapshot}: not sent again`);
    return done(false, null, 0);
  }
  const parent = chooseParent(self, local, remote);
  const total = options.onProgress
    ? await ctx.store
        .snapshotStream(volume, snapshot, parent?.name ?? null, {}, { metadataOnly: true })
        .then(estimateSendSize)
        .catch(() => null)
    : null;
  const stream = await ctx.store.snapshotStream(volume, snapshot, parent?.name ?? null);
  const { channel } = await conn.open({ op: 'receive', volume, snapshot, test }).catch((err: unknown) => {
    stream.destroy();
    throw err;
  });
  const meter = new Meter({ ...(options.limit ? { limit: options.limit } : {}), total, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
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
