// What a peer answers, checked before anything uses it: a peer is hostile
// until proven otherwise. A snapshot list (send, pull), a tree entry and a
// file header (sync), a failure's last word on stderr (pull). A malformed
// answer fails that request with ERR_PROTOCOL; a peer's error code is passed
// on only when it is of our ERR_* form, its words only made printable.
import type { SnapshotIdentity } from '../store/lineage.js';
import { validateSnapshotName } from '../store/names.js';
import { printable } from '../util/untrusted-text.js';
import { ReplicationError, isTreePath, ownership, type ClusterStatus, type FileHeader, type TreeEntry } from './protocol.js';

export function protocolError(peer: string, what: string): ReplicationError {
  return new ReplicationError('ERR_PROTOCOL', `${peer}: ${what}`);
}

const shown = (value: unknown): string => (JSON.stringify(value) ?? String(value)).slice(0, 200);
const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isUuid = (v: unknown): v is string | null => v === null || (typeof v === 'string' && UUID.test(v));
const TRANSID_MAX = Number.MAX_SAFE_INTEGER;

function isSnapshotName(name: unknown, volume: string): name is string {
  if (typeof name !== 'string' || !name.startsWith(`${volume}@`)) return false;
  try {
    validateSnapshotName(name);
    return true;
  } catch {
    return false;
  }
}

/** The snapshots of `volume` a `list` answer holds, each checked field by field; at most `max` of them. */
export function checkSnapshotList(answer: Record<string, unknown>, volume: string, peer: string, max = 100_000): SnapshotIdentity[] {
  const list = answer.snapshots;
  if (!Array.isArray(list)) throw protocolError(peer, `a snapshot list that is not one: ${shown(list)}`);
  if (list.length > max) throw protocolError(peer, `a list of ${list.length} snapshots (at most ${max})`);
  return list.map((value: unknown) => {
    const s = value as Partial<SnapshotIdentity> | null;
    const ok =
      typeof s === 'object' &&
      s !== null &&
      isSnapshotName(s.name, volume) &&
      isUuid(s.uuid) &&
      isUuid(s.receivedUuid) &&
      isUuid(s.parentUuid) &&
      isInt(s.ctransid, 0, TRANSID_MAX) &&
      isInt(s.stransid, 0, TRANSID_MAX) &&
      isInt(s.rtransid, 0, TRANSID_MAX) &&
      typeof s.readonly === 'boolean';
    if (!ok) throw protocolError(peer, `a snapshot of ${volume} that is not one: ${shown(value)}`);
    const { name, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, readonly } = s as SnapshotIdentity;
    return { name, uuid, receivedUuid, parentUuid, ctransid, stransid, rtransid, readonly };
  });
}

const NS = /^-?[0-9]{1,20}$/;
const TYPES = new Set(['file', 'dir', 'symlink', 'other']);

/** A tree entry from the peer, checked (a malformed one fails the host). */
export function checkTreeEntry(value: unknown, peer: string): TreeEntry {
  const e = value as Partial<TreeEntry> | null;
  const ok =
    typeof e === 'object' &&
    e !== null &&
    isTreePath(e.path, true) &&
    TYPES.has(e.type as string) &&
    isInt(e.mode, 0, 0xffffffff) &&
    isInt(e.uid, 0, 0xffffffff) &&
    isInt(e.gid, 0, 0xffffffff) &&
    isInt(e.size, 0, Number.MAX_SAFE_INTEGER) &&
    typeof e.mtime === 'string' &&
    NS.test(e.mtime) &&
    isInt(e.dev, 0, Number.MAX_SAFE_INTEGER) &&
    isInt(e.ino, 0, Number.MAX_SAFE_INTEGER) &&
    isInt(e.nlink, 0, Number.MAX_SAFE_INTEGER) &&
    (e.type !== 'symlink' || (typeof e.target === 'string' && e.target !== '' && !e.target.includes('\0') && Buffer.byteLength(e.target) < 4096)) &&
    (e.path !== '' || e.type === 'dir');
  if (!ok) throw protocolError(peer, `a tree entry that is not one: ${shown(value)}`);
  return e as TreeEntry;
}

/** The header of file `path` in a files answer, checked. */
export function checkFileHeader(value: unknown, path: string, peer: string): FileHeader {
  const h = value as Record<string, unknown> | null;
  if (typeof h !== 'object' || h === null || h.path !== path) throw protocolError(peer, `expected the header of ${JSON.stringify(path)}, got ${shown(value)}`);
  if (h.ok === false && typeof h.error === 'string') return h as FileHeader;
  const ok = h.ok === true && isInt(h.mode, 0, 0xffffffff) && isInt(h.uid, 0, 0xffffffff) && isInt(h.gid, 0, 0xffffffff) && typeof h.mtime === 'string' && NS.test(h.mtime);
  if (!ok) throw protocolError(peer, `a file header that is not one: ${shown(value)}`);
  return h as FileHeader;
}

const PEER_CODE_RE = /^ERR_[A-Z0-9_]{1,60}$/;

/**
 * An answer's failure as an error on this side: the peer's code (when it is
 * one of the ERR_* form) and its words, made printable. Null when the
 * answer says ok.
 */
export function answerError(answer: unknown, peer: string): ReplicationError | null {
  const a = answer as { ok?: unknown; error?: unknown; code?: unknown } | null;
  if (a && a.ok === true) return null;
  const message = typeof a?.error === 'string' ? printable(a.error) : 'an answer that is not one';
  const code = typeof a?.code === 'string' && PEER_CODE_RE.test(a.code) ? a.code : 'ERR_PEER_FAILED';
  return new ReplicationError(code, `${peer}: ${message}`);
}

/** The failure a peer's last stderr line states (a send that broke on its side), or null when it states none. */
export function lastWordError(stderr: string, peer: string): ReplicationError | null {
  const last = stderr.trim().split('\n').pop();
  if (!last) return null;
  let value: unknown;
  try {
    value = JSON.parse(last);
  } catch {
    return null;
  }
  const v = value as { ok?: unknown } | null;
  return typeof v === 'object' && v !== null && v.ok === false ? answerError(value, peer) : null;
}

const NODE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/;
const isTime = (v: unknown): v is string => typeof v === 'string' && v.length <= 40 && !Number.isNaN(Date.parse(v));

/** A `status` answer, checked field by field (what is not ours to trust fails the request). */
export function checkClusterStatus(answer: Record<string, unknown>, volume: string, peer: string): ClusterStatus {
  const a = answer as Partial<ClusterStatus>;
  const fail = (what: string): never => {
    throw protocolError(peer, `a status that is not one (${what}): ${shown(answer)}`);
  };
  if (typeof a.node !== 'string' || !NODE.test(a.node)) fail('node');
  if (typeof a.exists !== 'boolean' || !isInt(a.mounted, 0, 1_000_000) || typeof a.releasing !== 'boolean') fail('exists, mounted, releasing');
  if (a.since !== null && !isTime(a.since)) fail('since');
  const f = a.fetching;
  if (f !== null && !(typeof f === 'object' && f !== undefined && typeof f.from === 'string' && f.from.length <= 300 && (f.percent === null || isInt(f.percent, 0, 100)))) fail('fetching');
  const s = a.state;
  if (s !== null && !(typeof s === 'object' && s !== undefined && isInt(s.epoch, 1, TRANSID_MAX) && isUuid(s.identity) && s.identity !== null && isSnapshotName(s.snapshot, volume) && (s.at === null || isTime(s.at)))) fail('state');
  const l = a.live;
  if (l !== null && !(typeof l === 'object' && l !== undefined && isInt(l.epoch, 0, TRANSID_MAX) && typeof l.changed === 'boolean')) fail('live');
  let owner = null;
  try {
    owner = a.owner === null ? null : ownership(a.owner);
  } catch {
    fail('owner');
  }
  if (!Array.isArray(a.superseded) || a.superseded.length > 64) fail('superseded');
  const superseded = a.superseded!.map((x: unknown) => {
    const e = x as { node?: unknown; epoch?: unknown; at?: unknown } | null;
    if (!e || typeof e.node !== 'string' || !NODE.test(e.node) || !isInt(e.epoch, 0, TRANSID_MAX) || !isTime(e.at)) fail('superseded');
    return { node: e!.node as string, epoch: e!.epoch as number, at: e!.at as string };
  });
  return {
    node: a.node!,
    exists: a.exists!,
    mounted: a.mounted!,
    since: a.since ?? null,
    releasing: a.releasing!,
    fetching: f ? { from: f.from, percent: f.percent } : null,
    state: s ? { epoch: s.epoch, identity: s.identity, snapshot: s.snapshot, at: s.at } : null,
    live: l ? { epoch: l.epoch, changed: l.changed } : null,
    owner,
    superseded,
  };
}
