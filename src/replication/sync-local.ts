// The local side of sync: the live volume as sync sees it, a container's and
// hostile. Every directory is opened beneath the volume's root with openat2
// (btrfs.openBeneath: no symlink, no "..", no mount point on the path) and
// every entry named as /proc/self/fd/<dirfd>/<name> (fd-ops.ts), never
// followed. What it holds is looked at once (a listing per directory), and
// replaced only if it is still what was listed right before the rename: the
// container's write in between wins. Whatever the container changes under
// us makes that one entry a skip, with the reason {@link localChange} gives.
import { lstat, rename, unlink } from 'node:fs/promises';

import * as btrfs from '../btrfs/index.js';
import { errCode } from '../util/err-code.js';
import { at, fdClose, fdCloseQuietly, fdWriteAll } from './fd-ops.js';

/** Temporary names in the local volume: `.bv-sync.<hex>`. */
export const SYNC_TEMP_PREFIX = '.bv-sync.';
/** Open directory fds kept for the entries that follow. */
const DIR_CACHE = 64;

/** What is here under a name, as far as sync needs it. */
export interface Local {
  mode: number;
  size: number;
  mtimeNs: bigint;
  ino: bigint;
  /** A symlink's target (as UTF-8). */
  target?: string;
}

const S_IFMT = 0o170000;

/** Whether `local` is a `type`. */
export const isType = (local: Local, type: 'file' | 'dir' | 'symlink'): boolean => (local.mode & S_IFMT) === { file: 0o100000, dir: 0o040000, symlink: 0o120000 }[type];

/** `dir/name` as [dir, name] ('' for the root). */
export const split = (path: string): [string, string] => {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? ['', path] : [path.slice(0, slash), path.slice(slash + 1)];
};

/** What `local` must still be for a rename over it (writeFileAt's `expect`). */
export const expected = (local: Local): btrfs.ExpectedEntry => ({ ino: local.ino, size: local.size, mtimeNs: local.mtimeNs });

/** A local change that makes one entry a skip; its message is the reason. */
export class Skip extends Error {}

export const CHANGED_HERE = 'changed here during the sync: kept';

/** Errors of the local tree changing under us (the container): that entry is skipped, the sync goes on. */
const LOCAL_CHANGED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EXDEV', 'EMLINK']);

/**
 * The one rule for "the container changed this under us": why `err` makes
 * its entry a skip (a {@link Skip}'s reason, or an errno of a changed tree),
 * or null when it is a real failure (the host's sync fails).
 */
export function localChange(err: unknown): string | null {
  if (err instanceof Skip) return err.message;
  const code = errCode(err);
  return code !== undefined && LOCAL_CHANGED.has(code) ? `changed here during the sync (${code})` : null;
}

/** A rename into place refused because of what is there now, as a Skip (anything else as it is). */
export function renameRefusal(err: unknown): unknown {
  const code = errCode(err);
  if (code === 'EEXIST') return new Skip('created here during the sync: kept');
  if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'ENOTDIR') return new Skip('a directory here now: kept');
  return err;
}

/** Entry `name` of directory `dirfd` (lstat, not followed), or null when there is none. */
export async function lstatLocal(dirfd: number, name: string): Promise<Local | null> {
  try {
    const st = await lstat(at(dirfd, name), { bigint: true });
    return { mode: Number(st.mode), size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino };
  } catch (err) {
    if (errCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Renames temporary `tmp` of `dirfd` to `name`: over the old entry `local`
 * if it is still the one listed (looked at right before), or only where
 * nothing is (a new one).
 * @throws Skip when what is there now is not what was listed.
 */
export async function renameIntoPlace(dirfd: number, tmp: string, name: string, local: Local | null): Promise<void> {
  if (local) {
    const now = await lstatLocal(dirfd, name);
    if (!now || now.ino !== local.ino || now.size !== local.size || now.mtimeNs !== local.mtimeNs) throw new Skip(CHANGED_HERE);
  }
  try {
    if (local) await rename(at(dirfd, tmp), at(dirfd, name));
    else await btrfs.renameNoReplace(at(dirfd, tmp), at(dirfd, name));
  } catch (err) {
    throw renameRefusal(err);
  }
}

interface CachedDir {
  fd: Promise<number>;
  users: number;
}

/** Directory fds of the local volume by path, opened beneath its root, shared by the work in flight. */
export class DirCache {
  readonly #entries = new Map<string, CachedDir>();

  constructor(readonly root: number) {}

  /** The fd of directory `path` ('' is the root); release it when done. */
  async acquire(path: string): Promise<number> {
    let e = this.#entries.get(path);
    if (e) {
      this.#entries.delete(path); // most recently used last
      this.#entries.set(path, e);
    } else {
      const fd = path === '' ? Promise.resolve(this.root) : btrfs.openBeneath(this.root, path, 'directory');
      const entry: CachedDir = { fd, users: 0 };
      e = entry;
      this.#entries.set(path, entry);
      fd.catch(() => {
        if (this.#entries.get(path) === entry) this.#entries.delete(path);
      });
    }
    e.users++;
    try {
      return await e.fd;
    } catch (err) {
      e.users--;
      throw err;
    }
  }

  release(path: string): void {
    const e = this.#entries.get(path);
    if (e) e.users--;
    if (this.#entries.size <= DIR_CACHE) return;
    for (const [k, entry] of this.#entries) {
      if (this.#entries.size <= DIR_CACHE) break;
      if (entry.users > 0 || k === '') continue;
      this.#entries.delete(k);
      entry.fd.then(fdCloseQuietly, () => undefined);
    }
  }

  /** Closes every directory but the root (the caller's). */
  async closeAll(): Promise<void> {
    const all = [...this.#entries];
    this.#entries.clear();
    await Promise.all(all.filter(([k]) => k !== '').map(([, e]) => e.fd.then(fdCloseQuietly, () => undefined)));
  }
}

/** A temporary file being written in a directory of the local volume (holds that directory's fd). */
export class TempFile {
  #open = true;
  #placed = false;
  #done = false;

  constructor(
    private readonly dirs: DirCache,
    private readonly parent: string,
    readonly dirfd: number,
    readonly name: string,
    readonly fd: number,
  ) {}

  write(data: Buffer): Promise<void> {
    return fdWriteAll(this.fd, data);
  }

  async closeFd(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await fdClose(this.fd);
  }

  placed(): void {
    this.#placed = true;
  }

  /** Closes and, unless it was renamed into place, removes it; releases the directory. Idempotent. */
  async discard(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.#open) {
      this.#open = false;
      await fdCloseQuietly(this.fd);
    }
    if (!this.#placed) await unlink(at(this.dirfd, this.name)).catch(() => undefined);
    this.dirs.release(this.parent);
  }
}
