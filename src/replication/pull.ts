// pull (the CLI's `receive <host> <volume>`, for failover): fetch the newest
// snapshot of the volume that the peer holds and we lack, incrementally from
// the newest one we hold the same state of (store/lineage.ts). An unreachable peer is an error, never
// "it has nothing" (the connection fails before anything is decided).
import type { Readable } from 'node:stream';

import { chooseParent, newestSendable, sameSnapshot } from '../store/lineage.js';
import type { PeerConnection } from './client.js';
import type { ReplicationContext } from './context.js';
import { abortChannel, watchIdle } from './idle-watch.js';
import { checkSnapshotList, lastWordError } from './peer-answers.js';
import { ReplicationError } from './protocol.js';
import { Meter } from './transfer.js';

/** Bytes kept of a peer's stderr during a send: its last word is one short JSON line, the rest is not ours to hold. */
const PEER_STDERR_KEPT = 4096;

/** The last `max` bytes of `kept` then `chunk` (copied: a chunk is not held whole). */
function lastBytes(kept: Buffer, chunk: Buffer, max: number): Buffer {
  if (chunk.length >= max) return Buffer.from(chunk.subarray(chunk.length - max));
  const both = Buffer.concat([kept, chunk]);
  return both.length <= max ? both : Buffer.from(both.subarray(both.length - max));
}

export interface PullOptions {
  /** From the peer's TEST_REMOTE_PATH. */
  test?: boolean;
  /** This snapshot of the peer's (a state to hand over), instead of its newest. */
  snapshot?: string;
  /** Bytes received so far, and the peer's estimate of the whole (null: none). */
  onProgress?: (bytes: number, total: number | null) => void;
}

export interface PullResult {
  host: string;
  volume: string;
  /** The newest snapshot the peer holds (null: none). */
  newest: string | null;
  /** What was fetched, or null when we had it already. */
  fetched: string | null;
  /** Its parent (incremental), or null (full). */
  parent: string | null;
  /** Bytes of the stream received (0 when nothing was fetched). */
  bytes: number;
}

/** `channel` piped into `meter`, whose reader learns of the channel's failure too (pipe() does not pass it on). */
function metered(channel: Readable, meter: Meter): Meter {
  channel.once('error', (err: Error) => meter.destroy(err));
  channel.once('close', () => {
    if (!channel.readableEnded) meter.destroy(new ReplicationError('ERR_PEER_CLOSED', 'the peer closed the channel'));
  });
  return channel.pipe(meter);
}

export async function pullVolume(ctx: ReplicationContext, conn: PeerConnection, volume: string, options: PullOptions = {}): Promise<PullResult> {
  const test = options.test ?? false;
  const { answer } = await conn.open({ op: 'list', volume, test });
  const remote = checkSnapshotList(answer, volume, conn.peer.label);
  const local = await ctx.store.listSnapshots(volume);
  const wanted = options.snapshot === undefined ? newestSendable(remote) : remote.find((r) => r.name === options.snapshot && r.readonly);
  if (options.snapshot !== undefined && !wanted) throw new ReplicationError('ERR_SNAPSHOT_NOT_FOUND', `${conn.peer.label} holds no snapshot ${options.snapshot}`);
  const newest = wanted ?? null;
  const result: PullResult = { host: conn.peer.spec, volume, newest: newest?.name ?? null, fetched: null, parent: null, bytes: 0 };
  if (!newest || local.some((l) => sameSnapshot(l, newest))) return result;
  // The peer sends: its parent is the newest of its snapshots that we hold the same state of.
  const parent = chooseParent(newest, remote, local);
  const { channel, answer: sending } = await conn.open({ op: 'send', volume, snapshot: newest.name, parent: parent?.name ?? null, test });
  const total = typeof sending.estimate === 'number' && Number.isSafeInteger(sending.estimate) && sending.estimate >= 0 ? sending.estimate : null;
  let trailer: Buffer = Buffer.alloc(0);
  channel.stderr.on('data', (c: Buffer) => (trailer = lastBytes(trailer, c, PEER_STDERR_KEPT)));
  // A peer that stops sending is given up: it would hold our receive, its temporary subvolume and the volume's lock.
  const stopWatch = watchIdle(channel, conn.idleMs, (err) => abortChannel(channel, err));
  let bytes: number;
  try {
    // Counted on the way only when asked: one more stream layer per chunk otherwise for nothing.
    const input = options.onProgress ? metered(channel, new Meter({ total, onProgress: (p) => options.onProgress!(p.bytes, total) })) : channel;
    bytes = (await ctx.store.receiveSnapshot(volume, newest.name, input)).streamBytes;
  } catch (err) {
    // The peer may have failed on its side: its last word (stderr) says why.
    const peerError = lastWordError(trailer.toString('utf8'), conn.peer.label);
    if (peerError) throw Object.assign(peerError, { cause: err });
    throw err;
  } finally {
    stopWatch();
  }
  ctx.logger.info(`fetched ${newest.name} from ${conn.peer.label} (${parent ? `incremental from ${parent.name}` : 'full'})`);
  return { ...result, fetched: newest.name, parent: parent?.name ?? null, bytes };
}
