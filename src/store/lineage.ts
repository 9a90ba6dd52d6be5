// Replication lineage: the rules, in one place and without I/O, by which two
// hosts tell that they hold the same snapshot, from which common state an
// incremental stream may start, which state is the newest, and what purge
// must keep so that the next incremental stays possible. Every rule reads
// the identities btrfs keeps (docs: btrfs-ioctls.md 4.2-4.3), never names
// or clocks: a name can be anything, and two hosts' clocks disagree.
//
// A stream of snapshot X carries ID(X) (X's received UUID if it has one,
// else its UUID) and X's ctransid; the copy it makes, D, gets received UUID
// ID(X) and stransid X.ctransid, and its own ctransid/rtransid from the
// receiving filesystem.
import { isSendMarker, parseSnapshotName } from './names.js';

/** What a snapshot is, as send and receive match on it (the same on either host). */
export interface SnapshotIdentity {
  name: string;
  uuid: string | null;
  receivedUuid: string | null;
  parentUuid: string | null;
  ctransid: number;
  stransid: number;
  rtransid: number;
  readonly: boolean;
}

/** A snapshot of this host: its identity, its path and when it was made. */
export interface LocalSnapshot extends SnapshotIdentity {
  path: string;
  otime: Date;
}

/** ID(s): what a stream of `s` names it by (its received UUID if it has one, else its UUID). */
export function identity(s: Pick<SnapshotIdentity, 'uuid' | 'receivedUuid'>): string | null {
  return s.receivedUuid ?? s.uuid;
}

/**
 * Whether `copy` is a faithful copy of `source` as `source` is now: received
 * from a stream of it (or of a snapshot with its identity) at its present
 * state, both read-only, and not modified since it was received. Only then
 * may a stream made against one be applied on the other.
 */
export function isCopyOf(copy: SnapshotIdentity, source: SnapshotIdentity): boolean {
  return (
    copy.readonly &&
    source.readonly &&
    copy.receivedUuid !== null &&
    copy.receivedUuid === identity(source) &&
    copy.stransid === source.ctransid &&
    copy.ctransid <= copy.rtransid
  );
}

/** Whether `a` and `b` (one on each host) hold the same state: one is a faithful copy of the other. The parents an incremental may use. */
export function sameState(a: SnapshotIdentity, b: SnapshotIdentity): boolean {
  return isCopyOf(a, b) || isCopyOf(b, a);
}

/**
 * Whether `a` and `b` are the same snapshot, on two hosts or one: read-only,
 * with one identity (one received from the other, or both from a third). A
 * snapshot a peer holds this way is not sent to it again.
 */
export function sameSnapshot(a: SnapshotIdentity, b: SnapshotIdentity): boolean {
  const id = identity(a);
  return a.readonly && b.readonly && id !== null && id === identity(b);
}

/** A snapshot that is not a send marker and is read-only: one that may be sent or be a parent. */
function isSendable(s: SnapshotIdentity): boolean {
  return s.readonly && !isSendMarker(s.name);
}

/** Orders the states of one filesystem: by ctransid, then creation time where known, then name. */
function newer(a: SnapshotIdentity & { otime?: Date }, b: SnapshotIdentity & { otime?: Date }): boolean {
  if (a.ctransid !== b.ctransid) return a.ctransid > b.ctransid;
  const at = a.otime?.getTime() ?? 0;
  const bt = b.otime?.getTime() ?? 0;
  if (at !== bt) return at > bt;
  return a.name > b.name;
}

/** The newest of `snapshots` (all of one filesystem) by {@link newer}, or null when there is none. */
export function newestState<T extends SnapshotIdentity & { otime?: Date }>(snapshots: readonly T[]): T | null {
  let best: T | null = null;
  for (const s of snapshots) if (best === null || newer(s, best)) best = s;
  return best;
}

/** The newest sendable snapshot (not a marker, read-only) of `snapshots`, or null. */
export function newestSendable<T extends SnapshotIdentity & { otime?: Date }>(snapshots: readonly T[]): T | null {
  return newestState(snapshots.filter(isSendable));
}

/**
 * The parent for a stream of `of`: the newest other sendable snapshot of
 * `mine` (the sending host's), not newer than `of`, that `theirs` (the
 * receiving host's snapshots) holds the same state of; null when there is
 * none (a full stream). The sender's choice when it pushes (`mine` local) and
 * when it is asked to by a pull (`mine` the peer's, `theirs` ours).
 */
export function chooseParent<T extends SnapshotIdentity & { otime?: Date }>(of: SnapshotIdentity, mine: readonly T[], theirs: readonly SnapshotIdentity[]): T | null {
  const candidates = mine.filter((p) => p.name !== of.name && isSendable(p) && p.ctransid <= of.ctransid && theirs.some((d) => sameState(d, p)));
  return newestState(candidates);
}

/** Why replication needs a snapshot kept: the next incremental to `peer` (`marker`: its newest send marker, `sent`: the snapshot that marker marks), or from the peer that sent it (`received`: the newest snapshot received; the peer is unknown here). */
export interface ReplicationHold {
  name: string;
  role: 'marker' | 'sent' | 'received';
  /** The host of the marker (`marker`, `sent`); null for `received`. */
  peer: string | null;
}

/**
 * The snapshots purge must keep for replication, among the snapshots of one
 * volume on this host (markers included), with why: for each host, the
 * newest send marker `<snapshot>@<host>` and the snapshot it marks (the
 * parent of the next incremental send to that host; purging it would make
 * the next send a full one: a bug of the original), and the newest snapshot
 * received from a peer (the parent the peer's next incremental needs).
 * Newest by lineage.
 */
export function replicationHolds(snapshots: readonly (SnapshotIdentity & { otime?: Date })[], dtFormat: string): ReplicationHold[] {
  const markersByHost = new Map<string, Array<SnapshotIdentity & { otime?: Date }>>();
  for (const s of snapshots) {
    if (!isSendMarker(s.name)) continue;
    const host = parseSnapshotName(s.name, dtFormat)?.host ?? '';
    markersByHost.set(host, [...(markersByHost.get(host) ?? []), s]);
  }
  const holds: ReplicationHold[] = [];
  for (const [peer, markers] of markersByHost) {
    const newest = newestState(markers)!;
    holds.push({ name: newest.name, role: 'marker', peer }, { name: newest.name.slice(0, newest.name.lastIndexOf('@')), role: 'sent', peer });
  }
  const received = newestState(snapshots.filter((s) => s.receivedUuid !== null && !isSendMarker(s.name)));
  if (received) holds.push({ name: received.name, role: 'received', peer: null });
  return holds;
}

/** The names of {@link replicationHolds}. */
export function replicationKeep(snapshots: readonly (SnapshotIdentity & { otime?: Date })[], dtFormat: string): Set<string> {
  return new Set(replicationHolds(snapshots, dtFormat).map((h) => h.name));
}
