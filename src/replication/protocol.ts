// The plugin's own request protocol, spoken on an SSH channel opened as the
// subsystem "buttervolume" (never a shell, never a command). The client
// writes one JSON line, the request; the server answers one JSON line, then
// depending on the request raw bytes follow:
//   list     -> {"ok":true,"snapshots":[...],"now":<ms since the epoch>}
//               (`now`: the server's clock as it answered, read by
//               `buttervolume doctor`; servers before it leave it out, and
//               clients ignore fields they do not know)
//   receive  -> {"ok":true,"ready":true}, the client sends a btrfs send
//               stream and closes its side, the server answers
//               {"ok":true,"received":{...}} (or {"ok":false,...})
//   send     -> {"ok":true}, then the raw stream; the server's last word
//               (a JSON line) is on the channel's stderr
//   tree     -> {"ok":true} once the live volume is open (a refusal
//               otherwise), then one JSON line per TreeEntry, each directory
//               before what it holds, then {"end":true} (or {"ok":false,...}
//               when the walk fails half-way)
//   files    -> {"ok":true}, then for each requested path, in the request's
//               order, a FileHeader line; when it says ok, the content in
//               chunks (u32 big-endian length, then that many bytes; at most
//               MAX_CHUNK_BYTES each), a 0 length, and a FileStatus line
//               ({"complete":false} when the file changed while it was read
//               or a read failed: the client drops what it got); then
//               {"end":true}. A header that is not ok has neither.
//   status   -> {"ok":true, ...ClusterStatus}: what this node knows of a
//               volume that follows its service (mounted here? being let
//               go? its newest state, who holds it)
//   claim    -> {"ok":true}: the requester holds the volume (an ownership
//               with a higher term than any before takes it over), and,
//               with `state`, its newest state is the snapshot of that
//               identity, which the receiver holds (it was just pushed)
// The live volume is read beneath its root only (openat2 RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS, see sync-source.ts): a path through a symlink is
// refused, never followed.
// Versioned: a request names its version `v`; a server refuses a version it
// does not speak, saying which it does. Version 2 changed only the answers
// to tree and files (sync-frames.ts: directories and files packed in binary
// items instead of a JSON line per entry and per file); a server speaks 1
// and 2, and a client asks for each request at the lowest version that has
// what it needs: list, receive, send, status and claim at 1 (a peer not yet
// upgraded still replicates with us), tree and files at 2. A sync from a
// peer that speaks only 1 fails, saying to upgrade it (no fallback).
import type { SnapshotIdentity } from '../store/lineage.js';
import { CodedError } from '../util/coded-error.js';
import { nameErrorClass } from '../util/error-name.js';

export const SUBSYSTEM = 'buttervolume';
/** The newest version this build speaks (see the top of this file). */
export const PROTOCOL_VERSION = 2;
/** The oldest it still speaks: what requests whose format did not change since are sent at. */
export const BASE_PROTOCOL_VERSION = 1;
/** What tree and files are asked at: their answers framed as sync-frames.ts says. */
export const SYNC_PROTOCOL_VERSION = 2;
/** Longest JSON line accepted (a files request lists paths). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

/** A refused or failed replication request; `code` is an `ERR_*` of ours or the peer's. */
export class ReplicationError extends CodedError {}

nameErrorClass(ReplicationError, 'ReplicationError');

/** Who holds a volume that follows its service (see store/cluster-record.ts). */
export interface WireOwnership {
  node: string;
  term: number;
  since: string;
}

/** A state of a volume that follows its service: its epoch and the identity of the snapshot holding it (the same on every node). */
export interface WireState {
  epoch: number;
  identity: string;
}

/** What a node answers to `status` about a volume that follows its service. */
export interface ClusterStatus {
  /** The answering node's NODE_NAME. */
  node: string;
  /** Its live volume exists. */
  exists: boolean;
  /** Mounted there this many times (0: not in use there). */
  mounted: number;
  /** In use there since (ISO time), when mounted. */
  since: string | null;
  /** Its last Unmount is pushing the final state to the replicas. */
  releasing: boolean;
  /** It is fetching the volume to mount it (from whom, how far). */
  fetching: { from: string; percent: number | null } | null;
  /** The newest state it holds (null: none), and when the snapshot holding it was made there (ISO time: shown, never compared). */
  state: { epoch: number; identity: string; snapshot: string; at: string | null } | null;
  /** Its live volume is the state of `epoch`, changed there since or not (null: no live volume). */
  live: { epoch: number; changed: boolean } | null;
  /** Who holds the volume, as it last learned. */
  owner: WireOwnership | null;
  /** Nodes a failover there declared stale. */
  superseded: Array<{ node: string; epoch: number; at: string }>;
}

export type Request =
  | { v: number; op: 'list'; volume: string; test: boolean }
  | { v: number; op: 'receive'; volume: string; snapshot: string; test: boolean }
  | { v: number; op: 'send'; volume: string; snapshot: string; parent: string | null; test: boolean }
  | { v: number; op: 'tree'; volume: string; test: boolean }
  | { v: number; op: 'files'; volume: string; paths: string[]; test: boolean }
  | { v: number; op: 'status'; volume: string; test: boolean }
  | { v: number; op: 'claim'; volume: string; owner: WireOwnership; state?: WireState; test: boolean };

/** A request as the client writes it (the version is added on the way out). */
export type RequestBody = Request extends infer R ? (R extends unknown ? Omit<R, 'v'> : never) : never;

/** What the server tells about one of its snapshots: its identity (checked on arrival: peer-answers.ts). */
export type RemoteSnapshot = SnapshotIdentity;

/** The lstat facts sync sends for an entry (tree) or a file (files): btrfs.EntryStat as JSON carries it (mtime a decimal string). */
export interface WireStat {
  /** st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time, ns since the epoch, as a decimal string. */
  mtime: string;
  /** Device and inode numbers, to group hard links (a nested subvolume has a device of its own). */
  dev: number;
  ino: number;
  nlink: number;
}

/** One entry of a volume's tree (sync), as the server walks it. */
export interface TreeEntry extends WireStat {
  /** Relative to the volume's root, components joined by "/"; '' is the root itself. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Symlink target. */
  target?: string;
  /** Why an 'other' is not copied: 'fifo', 'socket', 'character device', 'block device', 'name not UTF-8'... */
  why?: string;
}

/** What precedes a file's content in a files answer. */
export type FileHeader =
  /** The stat is of the file as opened (fstat), which is what is sent. */
  | ({ path: string; ok: true } & WireStat)
  | { path: string; ok: false; error: string; code: string };

/** What follows a file's content. */
export interface FileStatus {
  complete: boolean;
  error?: string;
  code?: string;
}

/** Largest chunk of a file's content in a files answer. */
export const MAX_CHUNK_BYTES = 256 * 1024;
/** Most paths in one files request (the request line stays below MAX_LINE_BYTES). */
export const MAX_FILES_PER_REQUEST = 4096;

/**
 * Whether `path` is a relative path of a tree entry: components joined by
 * "/", none empty, "." or "..", no NUL; '' (the root) when `root` allows it.
 */
export function isTreePath(path: unknown, root = false): path is string {
  if (typeof path !== 'string') return false;
  if (path === '') return root;
  if (path.includes('\0') || Buffer.byteLength(path) > 4095) return false;
  return path.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && Buffer.byteLength(c) <= 255);
}

const OPS = new Set(['list', 'receive', 'send', 'tree', 'files', 'status', 'claim']);

function bad(message: string): never {
  throw new ReplicationError('ERR_BAD_REQUEST', message);
}

function field<T>(obj: Record<string, unknown>, key: string, kind: string, optional = false): T {
  const v = obj[key];
  if (v === undefined && optional) return undefined as T;
  if (kind === 'string[]') {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(`${key} must be an array of strings`);
  } else if (typeof v !== kind && !(optional && v === null)) {
    bad(`${key} must be a ${kind}`);
  }
  return v as T;
}

const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/;

/** An ownership as a peer states it, checked. */
export function ownership(value: unknown): WireOwnership {
  const o = value as Partial<WireOwnership> | null;
  const ok =
    typeof o === 'object' &&
    o !== null &&
    typeof o.node === 'string' &&
    NODE_NAME.test(o.node) &&
    typeof o.term === 'number' &&
    Number.isSafeInteger(o.term) &&
    o.term >= 0 &&
    typeof o.since === 'string' &&
    o.since.length <= 40 &&
    !Number.isNaN(Date.parse(o.since));
  if (!ok) bad(`an owner that is not one: ${(JSON.stringify(value) ?? '').slice(0, 200)}`);
  const { node, term, since } = o as WireOwnership;
  return { node, term, since };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function wireState(value: unknown): WireState {
  const s = value as Partial<WireState> | null;
  if (typeof s !== 'object' || s === null || !Number.isSafeInteger(s.epoch) || s.epoch! < 1 || typeof s.identity !== 'string' || !UUID.test(s.identity)) {
    bad(`a state that is not one: ${(JSON.stringify(value) ?? '').slice(0, 200)}`);
  }
  return { epoch: s.epoch!, identity: s.identity! };
}

/**
 * Reads a request object. Names are checked by the service (the store's
 * rules); here only its shape.
 * @throws ReplicationError `ERR_BAD_REQUEST`, `ERR_PROTOCOL_VERSION`.
 */
export function parseRequest(value: unknown): Request {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('a request is a JSON object');
  const obj = value as Record<string, unknown>;
  const v = field<number>(obj, 'v', 'number');
  if (!Number.isInteger(v) || v < BASE_PROTOCOL_VERSION || v > PROTOCOL_VERSION) {
    const also = `(and ${PROTOCOL_VERSION}: tree and files packed)`;
    throw new ReplicationError('ERR_PROTOCOL_VERSION', `protocol version ${String(v)} is not spoken here (this server speaks ${BASE_PROTOCOL_VERSION}) ${also}`);
  }
  const op = field<string>(obj, 'op', 'string');
  if (!OPS.has(op)) bad(`unknown request ${JSON.stringify(op)}`);
  const volume = field<string>(obj, 'volume', 'string');
  const test = field<boolean | undefined>(obj, 'test', 'boolean', true) ?? false;
  const allowed: Record<string, string[]> = { list: [], receive: ['snapshot'], send: ['snapshot', 'parent'], tree: [], files: ['paths'], status: [], claim: ['owner', 'state'] };
  for (const key of Object.keys(obj)) {
    if (!['v', 'op', 'volume', 'test', ...allowed[op]!].includes(key)) bad(`unknown field ${JSON.stringify(key)} in a ${op} request`);
  }
  switch (op) {
    case 'list':
    case 'tree':
    case 'status':
      return { v, op, volume, test };
    case 'claim':
      return { v, op, volume, owner: ownership(obj.owner), ...(obj.state === undefined ? {} : { state: wireState(obj.state) }), test };
    case 'receive':
      return { v, op, volume, snapshot: field<string>(obj, 'snapshot', 'string'), test };
    case 'send':
      return { v, op, volume, snapshot: field<string>(obj, 'snapshot', 'string'), parent: field<string | null>(obj, 'parent', 'string', true) ?? null, test };
    default: {
      const paths = field<string[]>(obj, 'paths', 'string[]');
      if (paths.length > MAX_FILES_PER_REQUEST) bad(`at most ${MAX_FILES_PER_REQUEST} paths in a files request, got ${paths.length}`);
      return { v, op: 'files', volume, paths, test };
    }
  }
}
