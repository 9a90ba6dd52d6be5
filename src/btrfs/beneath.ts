// Entries of a tree someone else controls (a container's volume), reached
// only from a directory: openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, the last component never followed.
// The fds are plain fds for node:fs (fstat, read, write, fchown, close...);
// the caller closes them. See native/core/beneath.h.
import { checkPath } from './args.js';
import { native } from './binding.js';

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

function typeError(message: string, code = 'ERR_INVALID_ARG_TYPE'): TypeError {
  return Object.assign(new TypeError(message), { code });
}

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
