// Entries of a tree someone else controls (a container's volume), reached
// only from a directory: openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, the last component never followed.
// The fds are plain fds for node:fs (fstat, read, write, fchown, close...);
// the caller closes them. See native/core/beneath.h.
import { checkPath, typeError } from './args.js';
import { native } from './binding.js';
import type { EntryStat, ListedEntry } from './types.js';

/**
 * What {@link openBeneath} opens:
 * - `read`: a regular file, read-only. A FIFO, socket or device is never
 *   opened (looked at through O_PATH first): EINVAL; EISDIR for a
 *   directory, ELOOP for a symlink.
 * - `directory`: a directory (ENOTDIR for anything else, a symlink at the
 *   end included; ELOOP for one before it).
 * - `create`: a new regular file for writing, with `mode` (EEXIST when
 *   anything, a symlink included, has that name).
 */
export type BeneathHow = 'read' | 'directory' | 'create';

function checkFd(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw typeError(`${name} must be an fd (an integer >= 0), got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

function checkRelative(value: unknown, name: string): string {
  if (typeof value !== 'string') throw typeError(`${name} must be a string, got ${typeof value}`);
  if (value.includes('\0')) throw typeError(`${name} must not contain NUL bytes`, 'ERR_INVALID_ARG_VALUE');
  return value;
}

function checkTime(value: unknown, name: string): bigint | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'bigint') throw typeError(`${name} must be a bigint (ns since the epoch) or null`);
  return value;
}

/**
 * Opens `path`, relative to directory `dir` (an fd, or a path followed like
 * any: the caller's own place), without leaving it and without following any
 * symlink: every component is resolved beneath `dir`, none may be "..", a
 * symlink or a mount point, and the last is never followed. `''` or `'.'` is
 * `dir` itself. Resolves to an fd (close-on-exec) the caller must close.
 * @throws BtrfsError (syscall 'openat2'): EXDEV (absolute path, ".." above
 *   `dir`, a mount point), ELOOP (a symlink on the path), ENOENT, ENOTDIR,
 *   EISDIR, EEXIST, EINVAL (`read` of something that is not a regular file).
 */
export function openBeneath(dir: number | string, path: string, how: BeneathHow, options: { mode?: number } = {}): Promise<number> {
  const d = typeof dir === 'string' ? checkPath(dir, 'dir') : checkFd(dir, 'dir');
  const p = checkRelative(path, 'path');
  if (how !== 'read' && how !== 'directory' && how !== 'create') throw typeError(`how must be 'read', 'directory' or 'create'`, 'ERR_INVALID_ARG_VALUE');
  const mode = options.mode ?? 0o600;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw typeError('mode must be an integer from 0 to 0o7777', 'ERR_INVALID_ARG_VALUE');
  return native.openBeneath(d, p, how, mode);
}

/**
 * Sets the times of entry `name` of directory fd `dirfd` to the nanosecond
 * (node:fs takes seconds as a double, which loses the last digits), never
 * following a symlink: a symlink's own times are set. `name` is one
 * component, or `''` for `dirfd` itself (any open file or directory). A time
 * given as null is left unchanged.
 * @throws BtrfsError (syscall 'utimensat'): EINVAL for a name with "/", "." or "..", ENOENT...
 */
export function setTimesAt(dirfd: number, name: string, times: { atime?: bigint | null; mtime?: bigint | null }): Promise<void> {
  return native.setTimesAt(checkFd(dirfd, 'dirfd'), checkRelative(name, 'name'), checkTime(times.atime, 'atime'), checkTime(times.mtime, 'mtime'));
}

/** What {@link writeFileAt} gives the file. */
export interface FileMeta {
  uid: number;
  gid: number;
  /** Permission bits (setuid, setgid and sticky included); the type bits are ignored. */
  mode: number;
  /** ns since the epoch. */
  mtime: bigint;
}

function checkId(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xfffffffe) throw typeError(`${name} must be an integer from 0 to 2^32-2`);
  return value;
}

/** What a name must still be for {@link writeFileAt} to replace it: the entry as a listing saw it (lstat). */
export interface ExpectedEntry {
  ino: bigint;
  size: number;
  /** ns since the epoch. */
  mtimeNs: bigint;
}

/** Options of {@link writeFileAt}. */
export interface WriteFileAtOptions {
  replace: boolean;
  tempPrefix: string;
  /** With `replace`: replace only this entry (see {@link writeFileAt}). */
  expect?: ExpectedEntry | null;
  /** fsync the file before the rename and the directory after it: on disk once resolved. Default false. */
  durable?: boolean;
}

function checkExpected(value: unknown): ExpectedEntry | null {
  if (value === undefined || value === null) return null;
  const e = value as Partial<ExpectedEntry>;
  if (typeof e !== 'object' || typeof e.ino !== 'bigint' || typeof e.mtimeNs !== 'bigint' || !Number.isSafeInteger(e.size) || e.size! < 0) {
    throw typeError('options.expect must be { ino: bigint, size: an integer >= 0, mtimeNs: bigint } or null');
  }
  return { ino: e.ino, size: e.size!, mtimeNs: e.mtimeNs };
}

/**
 * Atomically makes entry `name` (one component) of directory fd `dirfd` a
 * regular file holding `data` with `meta`: written to a new temporary name
 * `<tempPrefix><random hex>` in `dirfd`, its owner, mode and mtime set, then
 * renamed to `name`: over what is there with `replace` (a directory there
 * fails, EISDIR or ENOTEMPTY), else only where nothing is (EEXIST). A reader
 * sees the old entry or the whole new file, never a part; on failure the
 * temporary file is removed. Only `name` and the temporary name are resolved,
 * in `dirfd`, neither followed. One call: the libuv pool does it all.
 * With `expect` (and `replace`), `name` is looked at (lstat) right before the
 * rename: when it is gone or no longer that inode, size and mtime (written
 * since it was listed), nothing is replaced, the temporary file is removed and
 * the promise resolves to null.
 * Resolves to the new file's inode number.
 * With `durable`, the file and then the directory are fsync'ed (a crash
 * leaves the old content or the new on disk).
 * @throws BtrfsError (syscall 'openat', 'write', 'fchown', 'fchmod',
 *   'utimensat', 'fsync', 'close', 'fstatat' or 'renameat2'): EINVAL for a name with "/", "." or "..".
 */
export function writeFileAt(dirfd: number, name: string, data: Buffer, meta: FileMeta, options: WriteFileAtOptions & { expect?: undefined }): Promise<bigint>;
export function writeFileAt(dirfd: number, name: string, data: Buffer, meta: FileMeta, options: WriteFileAtOptions): Promise<bigint | null>;
export function writeFileAt(dirfd: number, name: string, data: Buffer, meta: FileMeta, options: WriteFileAtOptions): Promise<bigint | null> {
  if (!Buffer.isBuffer(data)) throw typeError('data must be a Buffer');
  const m = meta as Partial<FileMeta> | null;
  if (typeof m !== 'object' || m === null) throw typeError('meta must be an object');
  if (!Number.isInteger(m.mode) || m.mode! < 0) throw typeError('meta.mode must be an integer');
  if (typeof m.mtime !== 'bigint') throw typeError('meta.mtime must be a bigint (ns since the epoch)');
  if (typeof options?.replace !== 'boolean') throw typeError('options.replace must be a boolean');
  const prefix = checkRelative(options.tempPrefix, 'options.tempPrefix');
  if (prefix.includes('/')) throw typeError('options.tempPrefix must not contain "/"', 'ERR_INVALID_ARG_VALUE');
  const expect = checkExpected(options.expect);
  if (options.durable !== undefined && typeof options.durable !== 'boolean') throw typeError('options.durable must be a boolean');
  return native.writeFileAt(checkFd(dirfd, 'dirfd'), checkRelative(name, 'name'), data, checkId(m.uid, 'meta.uid'), checkId(m.gid, 'meta.gid'), m.mode! & 0o7777, m.mtime, options.replace, prefix, expect, options.durable === true);
}

/**
 * Opens directory `path` beneath `dir` (as {@link openBeneath} 'directory')
 * and lists it in one call: the directory's own fstat, and each entry's
 * lstat (never followed; a symlink's target read) without "." and "..", in
 * directory order. An entry that goes away while listed is left out. Nothing
 * is opened but the directory.
 * @throws BtrfsError as openBeneath; 'getdents', 'fstatat', 'readlinkat'.
 */
export function listBeneath(dir: number | string, path: string): Promise<{ self: EntryStat; entries: ListedEntry[] }> {
  const d = typeof dir === 'string' ? checkPath(dir, 'dir') : checkFd(dir, 'dir');
  return native.listBeneath(d, checkRelative(path, 'path'));
}

/** What {@link readFileBeneath} read. */
export interface BeneathRead {
  /** fstat of the file opened, before reading. */
  stat: EntryStat;
  /** Its first bytes: at most `max`, all of it when `eof`. */
  data: Buffer;
  /** `data` is the whole file: it is closed. */
  eof: boolean;
  /** `eof`, and the file did not change while read (mtime, ctime, size as at the start). */
  complete: boolean;
  /** Not `eof`: the file, open after `data`, for the caller to read on and close. */
  fd: number | null;
}

/**
 * Opens regular file `path` beneath `dir` (as {@link openBeneath} 'read':
 * never a FIFO or a device, never through a symlink) and reads up to `max`
 * bytes in one call; a file that ends there is closed, and said complete
 * when it did not change meanwhile. A bigger one is left open for the rest.
 * @throws BtrfsError as openBeneath 'read'; 'fstat', 'read'.
 */
export function readFileBeneath(dir: number | string, path: string, options: { max: number }): Promise<BeneathRead> {
  const d = typeof dir === 'string' ? checkPath(dir, 'dir') : checkFd(dir, 'dir');
  const max = options?.max;
  if (!Number.isInteger(max) || max < 1 || max > 64 * 1024 * 1024) throw typeError('options.max must be an integer from 1 to 64 MiB', 'ERR_INVALID_ARG_VALUE');
  return native.readFileBeneath(d, checkRelative(path, 'path'), max);
}
