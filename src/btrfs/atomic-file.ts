// Files that are never seen half-written: the one way buttervolume replaces
// a file of its own (the schedule, the scheduler's state, the mount table).
// One trip to the libuv pool does the work (writeFileAt: a temporary file
// in the same directory, written, its owner, mode and time set, renamed
// over the old one), plus opening and closing the directory.
import { constants as fsConstants } from 'node:fs';
import { basename, dirname } from 'node:path';

import { errCode, isMissing } from '../util/err-code.js';
import { close, fsync, mkdir, open, realpath, stat } from '../util/fs-async.js';
import { writeFileAt } from './beneath.js';

export interface AtomicWriteOptions {
  /** The file's mode; default: an existing file's, else 0644. */
  mode?: number;
  /** On disk once resolved (file and directory fsync'ed); default false (the page cache is enough for state rebuilt at boot). */
  durable?: boolean;
  /** Replace the target of a symbolic link at `path`, not the link (the user's own layout: a linked schedule.csv); default true. */
  followSymlink?: boolean;
}

/**
 * Replaces `path` with `data` atomically: a crash or a reader sees the old
 * content or the new one, never a mix or nothing. The parent directory is
 * created if missing. The file belongs to this process's user.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, options: AtomicWriteOptions = {}): Promise<void> {
  let target = path;
  if (options.followSymlink !== false) target = await realpath(path).catch((err: unknown) => (isMissing(err) ? path : Promise.reject(err)));
  const mode: number =
    options.mode ?? (await stat(target).then((st) => st.mode & 0o7777, (err: unknown) => (isMissing(err) ? 0o644 : Promise.reject(err))));
  const dir = dirname(target);
  const openDir = () => open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  const dirfd = await openDir().catch(async (err: unknown) => {
    if (errCode(err) !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true });
    return openDir();
  });
  try {
    const meta = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mode, mtime: BigInt(Date.now()) * 1_000_000n };
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    await writeFileAt(dirfd, basename(target), bytes, meta, { replace: true, tempPrefix: atomicTempPrefix(target), durable: options.durable === true });
  } finally {
    await close(dirfd);
  }
}

/** The temporary names {@link writeFileAtomic} uses for `path`: what a write cut short leaves, to remove at start. */
export function atomicTempPrefix(path: string): string {
  return `.${basename(path)}.tmp.`;
}

/** fsync of directory `dir`, after a rename in it (some filesystems refuse it, EINVAL: the rename is then as durable as it gets). */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fsync(fd);
  } catch (err) {
    if (errCode(err) !== 'EINVAL') throw err;
  } finally {
    await close(fd);
  }
}
