// What sync writes into the local volume one entry at a time (small files
// go many to a native call: sync-fetch.ts), each under a temporary name in
// its directory, its owner, mode and times set, then renamed into place
// (sync-local.ts: renameIntoPlace): a reader sees the old entry or the new
// one, never half of one, and an entry the container changed since it was
// listed is kept.
import { lchown, link, lstat, symlink, unlink } from 'node:fs/promises';

import * as btrfs from '../btrfs/index.js';
import { errCode } from '../util/err-code.js';
import { randomHex } from '../util/random-hex.js';
import { at, fdChmod, fdChown, fdClose, fdStat } from './fd-ops.js';
import type { FileHeader, TreeEntry } from './protocol.js';
import { renameIntoPlace, Skip, split, SYNC_TEMP_PREFIX, TempFile, type DirCache, type Local } from './sync-local.js';

/** What a file fetched from the peer becomes here. */
type FileMeta = FileHeader & { ok: true };

/** Makes a temporary entry of `dirfd` with `make`, then `place`s it (renamed into place); the temporary is removed if that fails. */
async function placeNew(dirfd: number, make: (tmp: string) => Promise<void>, place: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = SYNC_TEMP_PREFIX + randomHex(12);
  await make(tmp);
  try {
    await place(tmp);
  } catch (err) {
    await unlink(at(dirfd, tmp)).catch(() => undefined);
    throw err;
  }
}

/** A new temporary file in the directory of `path`, for a file too big to hold in memory. */
export async function openTempFile(dirs: DirCache, path: string): Promise<TempFile> {
  const [parent] = split(path);
  const dirfd = await dirs.acquire(parent);
  try {
    for (let attempt = 0; ; attempt++) {
      const name = SYNC_TEMP_PREFIX + randomHex(12);
      try {
        const fd = await btrfs.openBeneath(dirfd, name, 'create', { mode: 0o600 });
        return new TempFile(dirs, parent, dirfd, name, fd);
      } catch (err) {
        if (errCode(err) !== 'EEXIST' || attempt >= 4) throw err;
      }
    }
  } catch (err) {
    dirs.release(parent);
    throw err;
  }
}

/** Sets the metadata of a written temporary file and renames it into place as `path`; resolves to its inode. */
export async function placeTempFile(file: TempFile, path: string, local: Local | null, header: FileMeta): Promise<bigint> {
  try {
    await fdChown(file.fd, header.uid, header.gid); // before chmod: chown clears setuid/setgid
    await fdChmod(file.fd, header.mode & 0o7777);
    await btrfs.setTimesAt(file.fd, '', { mtime: BigInt(header.mtime) });
    const { ino } = await fdStat(file.fd);
    await file.closeFd();
    await renameIntoPlace(file.dirfd, file.name, split(path)[1], local);
    file.placed();
    return ino;
  } finally {
    await file.discard();
  }
}

/** Symlink `e` of the peer, here (over `local` if it is still what was listed). */
export async function copySymlink(dirs: DirCache, e: TreeEntry, local: Local | null): Promise<void> {
  const [parent, name] = split(e.path);
  const dirfd = await dirs.acquire(parent);
  try {
    await placeNew(
      dirfd,
      (tmp) => symlink(e.target!, at(dirfd, tmp)),
      async (tmp) => {
        await lchown(at(dirfd, tmp), e.uid, e.gid);
        await btrfs.setTimesAt(dirfd, tmp, { mtime: BigInt(e.mtime) });
        await renameIntoPlace(dirfd, tmp, name, local);
      },
    );
  } finally {
    dirs.release(parent);
  }
}

/**
 * `path` as a hard link of `source`, the local copy (inode `ino`) of the
 * first name of a remote hard-link group fetched in this run.
 * @throws Skip when `source` is not that file any more, or `path` changed.
 */
export async function linkCopy(dirs: DirCache, path: string, local: Local | null, source: string, ino: bigint): Promise<void> {
  const [parent, name] = split(path);
  const [srcParent, srcName] = split(source);
  const dst = await dirs.acquire(parent);
  try {
    const src = await dirs.acquire(srcParent);
    try {
      await placeNew(
        dst,
        (tmp) => link(at(src, srcName), at(dst, tmp)),
        async (tmp) => {
          if ((await lstat(at(dst, tmp), { bigint: true })).ino !== ino) throw new Skip(`${source} changed here during the sync: not linked`);
          await renameIntoPlace(dst, tmp, name, local);
        },
      );
    } finally {
      dirs.release(srcParent);
    }
  } finally {
    dirs.release(parent);
  }
}

/** Sets the mtime of directory `path` of the volume whose root is `rootFd`. */
export async function setDirTime(rootFd: number, path: string, mtime: bigint): Promise<void> {
  const fd = await btrfs.openBeneath(rootFd, path, 'directory');
  try {
    await btrfs.setTimesAt(fd, '', { mtime });
  } finally {
    await fdClose(fd);
  }
}
