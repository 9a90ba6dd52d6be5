// receive <host> <volume> (pull, for failover): fetch the newest snapshot of
// the volume that the peer holds and we lack, incrementally from the newest
// one we hold a faithful copy of. An unreachable peer is an error, never
// "it has nothing" (the connection fails before anything is decided).
import { ReplicationError, type RemoteSnapshot } from './protocol.js';
import type { PeerConnection } from './client.js';
import { abortChannel, watchIdle } from './idle-watch.js';
import type { ReplicationContext } from './context.js';
import { identity } from './send.js';
import { newestSnapshot, isSendMarker } from '../store/names.js';
import { receiveSnapshot, snapshotsIn, type SnapshotIdentity } from '../store/replicas.js';

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

/** Whether local `l` holds the content of remote `r` (by the identities a stream carries). */
function holds(l: SnapshotIdentity, r: RemoteSnapshot): boolean {
  if (!l.readonly) return false;
  return (l.receivedUuid !== null && l.receivedUuid === identity(r)) || (r.receivedUuid !== null && l.uuid === r.receivedUuid);
}

/** Whether local `l` is a faithful parent for a stream from remote `r` (4.3, seen from the receiving side). */
function faithful(l: SnapshotIdentity, r: RemoteSnapshot): boolean {
  if (!l.readonly || !r.readonly) return false;
  if (l.receivedUuid !== null && l.receivedUuid === identity(r) && l.stransid === r.ctransid && l.ctransid <= l.rtransid) return true;
  return r.receivedUuid !== null && r.receivedUuid === l.uuid && r.stransid === l.ctransid;
}

export async function pullVolume(ctx: ReplicationContext, conn: PeerConnection, volume: string, options: PullOptions = {}): Promise<PullResult> {
  const test = options.test ?? false;
  const { answer } = await conn.open({ op: 'list', volume, test });
  const remote = ((answer.snapshots ?? []) as RemoteSnapshot[]).filter((r) => r.readonly && !isSendMarker(r.name));
  const dir = ctx.store.layout.paths.snapshotsPath;
  const local = await snapshotsIn(dir, volume);
  const newestName = newestSnapshot(remote.map((r) => r.name), volume, ctx.store.dtFormat);
  const result: PullResult = { host: conn.peer.spec, volume, newest: newestName, fetched: null, parent: null };
  const newest = remote.find((r) => r.name === newestName);
  if (!newest) return result;
  if (local.some((l) => holds(l, newest))) return result;
  let parent: RemoteSnapshot | null = null;
  for (const r of remote) {
    if (r === newest || r.ctransid > newest.ctransid || !local.some((l) => faithful(l, r))) continue;
    if (!parent || r.ctransid > parent.ctransid) parent = r;
  }
  const { channel } = await conn.open({ op: 'send', volume, snapshot: newest.name, parent: parent?.name ?? null, test });
  let trailer: Buffer = Buffer.alloc(0);
  channel.stderr.on('data', (c: Buffer) => (trailer = lastBytes(trailer, c, PEER_STDERR_KEPT)));
  // A peer that stops sending is given up: it would hold our receive, its temporary subvolume and the volume's lock.
  const stopWatch = watchIdle(channel, conn.idleMs, (err) => abortChannel(channel, err));
  try {
    await receiveSnapshot(ctx.store, dir, volume, newest.name, channel);
  } catch (err) {
    const last = trailer.toString('utf8').trim().split('\n').pop();
    let peer: { ok?: boolean; error?: string; code?: string } | undefined;
    try {
      peer = last ? JSON.parse(last) : undefined;
    } catch {
      peer = undefined;
    }
    if (peer && peer.ok === false) throw new ReplicationError(peer.code ?? 'ERR_PEER_FAILED', `${conn.peer.label}: ${peer.error ?? 'send failed'}`, { cause: err });
    throw err;
  } finally {
    stopWatch();
  }
  ctx.logger.info(`fetched ${newest.name} from ${conn.peer.label} (${parent ? `incremental from ${parent.name}` : 'full'})`);
  return { ...result, fetched: newest.name, parent: parent?.name ?? null };
}
