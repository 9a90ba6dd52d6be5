// One directory record of the peer's tree (sync, protocol 2: sync-frames.ts)
// against the local directory of the same path, listed packed in one native
// call: both are sorted by name, so they are walked side by side, no object
// per entry, no map. For each of the peer's entries, in v1's order of checks
// (sync-host.ts): what no path can name (a name that is not UTF-8, a path
// over 4095 bytes) and special files are skipped; an mtime ahead of our
// clock is skipped; then against what is here: another type is a conflict,
// not newer is kept, anything else is wanted (a file) or copied (a symlink).
// The entries that are directories only name them: each comes with its own
// record (sync-host.ts creates or finds it).
//
// What the peer sends is checked here, entry by entry: a name with "/" or
// NUL, "." or "..", an entry cut short, fails the host (ERR_PROTOCOL).
import * as btrfs from '../btrfs/index.js';
import { nameErrorClass } from '../util/error-name.js';
import { kindOfMode } from './fd-ops.js';
import type { TreeEntry } from './protocol.js';
import { MAX_PATH_BYTES } from './sync-frames.js';
import type { Local } from './sync-local.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** What a directory's comparison reports to its host's sync. */
export interface TreeSide {
  readonly label: string;
  /** Why mtime `ns` is not to be trusted (ahead of our clock), or null. */
  ahead(ns: bigint): string | null;
  /** An mtime (ns, as a double) above which {@link ahead} is asked; below, nothing is ahead. */
  aheadFrom(): number;
  skip(path: string, reason: string): void;
  kept(): void;
  /** A file missing here or older: fetched. */
  want(e: TreeEntry, local: Local | null): void;
  /** A symlink missing here or older: copied. */
  symlink(e: TreeEntry, local: Local | null): void;
}

/** A local directory's listing, walked once across the peer's records of it (both come sorted by name). */
export class LocalEntries {
  /** The cursor is on an entry (not past the last). */
  here: boolean;

  constructor(readonly entries: btrfs.PackedEntries) {
    this.here = entries.next();
  }
}

/** A name of the peer that is not one: the host fails. */
export class NameError extends Error {}

nameErrorClass(NameError, 'NameError');

const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

/** The current entry's name as a string, or null when it is not UTF-8; its bytes checked to be one name. */
function nameOf(e: btrfs.PackedEntries): string | null {
  const { buf, nameStart, nameEnd } = e;
  let ascii = true;
  for (let i = nameStart; i < nameEnd; i++) {
    const b = buf[i]!;
    if (b === 0x2f || b === 0) throw new NameError(`a name holding ${b === 0 ? 'NUL' : '"/"'}`);
    if (b >= 0x80) ascii = false;
  }
  if (nameEnd - nameStart <= 2 && buf[nameStart] === 0x2e && (nameEnd - nameStart === 1 || buf[nameStart + 1] === 0x2e)) throw new NameError('a name "." or ".."');
  if (ascii) return buf.toString('latin1', nameStart, nameEnd);
  const text = buf.toString('utf8', nameStart, nameEnd);
  return Buffer.from(text, 'utf8').equals(e.name()) ? text : null;
}

/** Why an entry of the peer cannot be copied whatever it is (its path cannot be named), or null. */
function unnameable(dirBytes: number, e: btrfs.PackedEntries, name: string | null): string | null {
  if (name === null) return 'name not UTF-8';
  if (dirBytes + (dirBytes > 0 ? 1 : 0) + (e.nameEnd - e.nameStart) > MAX_PATH_BYTES) return 'path longer than 4095 bytes';
  return null;
}

/** Whether the peer's entry `r` is newer than the local `l` of the same type (sync.ts: rsync's quick check on a tie). */
function newer(r: btrfs.PackedEntries, l: btrfs.PackedEntries, type: number): boolean {
  if (r.mtimeHigh !== l.mtimeHigh) return r.mtimeHigh > l.mtimeHigh;
  if (r.mtimeLow !== l.mtimeLow) return r.mtimeLow > l.mtimeLow;
  if (type === S_IFREG) return r.size !== l.size;
  return r.buf.compare(l.buf, l.targetStart, l.targetEnd, r.targetStart, r.targetEnd) !== 0;
}

function entryOf(path: string, r: btrfs.PackedEntries, type: 'file' | 'symlink', target?: string): TreeEntry {
  const { mode, uid, gid, size, dev, ino, nlink } = r;
  return { path, type, mode, uid, gid, size, mtime: r.mtimeNs.toString(), dev, ino, nlink, ...(target === undefined ? {} : { target }) };
}

function localOf(l: btrfs.PackedEntries): Local {
  return { mode: l.mode, size: l.size, mtimeNs: l.mtimeNs, ino: BigInt(l.ino) };
}

/**
 * Compares the peer's entries of directory `dir` with `mine` (this
 * directory's listing here; null: just created, empty) and reports each to
 * `side`. Synchronous: nothing here waits.
 * @throws NameError, btrfs.PackedEntryError for what the peer sent malformed.
 */
export function compareDirectory(side: TreeSide, dir: string, remote: btrfs.PackedEntries, mine: LocalEntries | null): void {
  const dirBytes = Buffer.byteLength(dir);
  const aheadFrom = side.aheadFrom();
  const local = mine?.entries ?? null;
  while (remote.next()) {
    const name = nameOf(remote);
    const type = remote.mode & S_IFMT;
    const why = unnameable(dirBytes, remote, name);
    const path = join(dir, name ?? remote.name().toString('utf8'));
    if (why !== null) {
      side.skip(path, `a ${why} on ${side.label}: not copied`);
      continue;
    }
    if (type === S_IFDIR) continue; // its own record comes
    if (type !== S_IFREG && type !== S_IFLNK) {
      side.skip(path, `a ${kindOfMode(remote.mode)} on ${side.label}: not copied`);
      continue;
    }
    let target: string | undefined;
    if (type === S_IFLNK) {
      const bytes = remote.target();
      target = bytes.toString('utf8');
      if (bytes.length === 0 || !Buffer.from(target, 'utf8').equals(bytes)) {
        side.skip(path, `a symlink target not UTF-8 on ${side.label}: not copied`);
        continue;
      }
    }
    if (remote.mtimeApprox > aheadFrom) {
      const ahead = side.ahead(remote.mtimeNs);
      if (ahead) {
        side.skip(path, `${ahead}: not copied`);
        continue;
      }
    }
    while (mine?.here && local!.compareName(remote.buf, remote.nameStart, remote.nameEnd) < 0) mine.here = local!.next();
    const same = mine?.here === true && local!.compareName(remote.buf, remote.nameStart, remote.nameEnd) === 0;
    if (same) {
      const mine = local!.mode & S_IFMT;
      if (mine !== type) {
        side.skip(path, `a ${type === S_IFREG ? 'file' : 'symlink'} on ${side.label}, a ${kindOfMode(local!.mode)} here: kept`);
        continue;
      }
      if (!newer(remote, local!, type)) {
        side.kept();
        continue;
      }
    }
    const l = same ? localOf(local!) : null;
    if (type === S_IFREG) side.want(entryOf(path, remote, 'file'), l);
    else side.symlink(entryOf(path, remote, 'symlink', target), l);
  }
}

/**
 * How many of a skipped directory's entries are skipped with it: all but the
 * subdirectories whose own records come (they count themselves).
 * @throws as {@link compareDirectory}.
 */
export function countSkipped(dir: string, remote: btrfs.PackedEntries): number {
  const dirBytes = Buffer.byteLength(dir);
  let n = 0;
  while (remote.next()) {
    const name = nameOf(remote);
    if ((remote.mode & S_IFMT) !== S_IFDIR || unnameable(dirBytes, remote, name) !== null) n++;
  }
  return n;
}
