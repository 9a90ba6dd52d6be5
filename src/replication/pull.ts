// pull (the CLI's `receive <host> <volume>`, for failover): fetch the newest
// snapshot of the volume that the peer holds and we lack, incrementally from
// the newest one we hold the same state of (store/lineage.ts). An unreachable peer is an error, never
// "it has nothing" (the connection fails before anything is decided).
import { chooseParent, newestSendable, sameSnapshot } from '../store/lineage.js';
import type { PeerConnection } from './client.js';
import type { ReplicationContext } from './context.js';
import { abortChannel, watchIdle } from './idle-watch.js';
import { checkSnapshotList, lastWordError } from './peer-answers.js';

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
}

export async function pullVolume(ctx: ReplicationContext, conn: PeerConnection, volume: string, options: PullOptions = {}): Promise<PullResult> {
  const test = options.test ?? false;
  const { answer } = await conn.open({ op: 'list', volume, test });
  const remote = checkSnapshotList(answer, volume, conn.peer.label);
  const local = await ctx.store.listSnapshots(volume);
  const newest = newestSendable(remote);
  const result: PullResult = { host: conn.peer.spec, volume, newest: newest?.name ?? null, fetched: null, parent: null };
  if (!newest || local.some((l) => sameSnapshot(l, newest))) return result;
  // The peer sends: its parent is the newest of its snapshots that we hold the same state of.
  const parent = chooseParent(newest, remote, local);
  const { channel } = await conn.open({ op: 'send', volume, snapshot: newest.name, parent: parent?.name ?? null, test });
  let trailer: Buffer = Buffer.alloc(0);
  channel.stderr.on('data', (c: Buffer) => (trailer = lastBytes(trailer, c, PEER_STDERR_KEPT)));
  // A peer that stops sending is given up: it would hold our receive, its temporary subvolume and the volume's lock.
  const stopWatch = watchIdle(channel, conn.idleMs, (err) => abortChannel(channel, err));
  try {
    await ctx.store.receiveSnapshot(volume, newest.name, channel);
  } catch (err) {
    // The peer may have failed on its side: its last word (stderr) says why.
    const peerError = lastWordError(trailer.toString('utf8'), conn.peer.label);
    if (peerError) throw Object.assign(peerError, { cause: err });
    throw err;
  } finally {
    stopWatch();
  }
  ctx.logger.info(`fetched ${newest.name} from ${conn.peer.label} (${parent ? `incremental from ${parent.name}` : 'full'})`);
  return { ...result, fetched: newest.name, parent: parent?.name ?? null };
}
