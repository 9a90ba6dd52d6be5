// node:fs on raw fds (from btrfs.openBeneath), as promises, and the one way
// sync names an entry of an opened directory: /proc/self/fd/<dirfd>/<name>,
// which resolves the directory the fd holds (wherever it is now) and then
// one component, that lstat, readlink, rename, symlink, link, lchown, unlink
// and mkdir never follow. No path of a volume is ever resolved from a string.
import * as fs from 'node:fs';
import { promisify } from 'node:util';

export const fdClose = promisify(fs.close);
export const fdChown = promisify(fs.fchown);
export const fdChmod = promisify(fs.fchmod);
const fstatP = promisify(fs.fstat) as (fd: number, options: { bigint: true }) => Promise<fs.BigIntStats>;
// fs.read and fs.write promisify to { bytesRead } / { bytesWritten }.
const readP = promisify(fs.read) as unknown as (fd: number, buffer: Buffer, offset: number, length: number, position: null) => Promise<{ bytesRead: number }>;
const writeP = promisify(fs.write) as unknown as (fd: number, buffer: Buffer, offset: number, length: number, position: null) => Promise<{ bytesWritten: number }>;

/** fstat with ns times. */
export function fdStat(fd: number): Promise<fs.BigIntStats> {
  return fstatP(fd, { bigint: true });
}

/** Reads up to `buffer.length` bytes at the current offset; 0 at the end. */
export async function fdRead(fd: number, buffer: Buffer): Promise<number> {
  return (await readP(fd, buffer, 0, buffer.length, null)).bytesRead;
}

/** Writes all of `data` at the current offset. */
export async function fdWriteAll(fd: number, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; ) at += (await writeP(fd, data, at, data.length - at, null)).bytesWritten;
}

/** Closes `fd`, ignoring errors (cleanup paths). */
export function fdCloseQuietly(fd: number): Promise<void> {
  return fdClose(fd).catch(() => undefined);
}

/** Entry `name` (one component) of directory fd `dirfd`, or the directory itself. */
export function at(dirfd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dirfd}` : `/proc/self/fd/${dirfd}/${name}`;
}


/** What st_mode says an entry is, in words. */
export function kindOfMode(mode: number): string {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'character device';
    case 0o060000:
      return 'block device';
    default:
      return 'special file';
  }
}
