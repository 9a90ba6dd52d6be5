// The serving side of sync: the files of a live volume, read without ever
// following a symlink out of it (the volume's content is a container's, and
// it can swap any directory for a symlink at any moment).
//
// Every directory is opened beneath the volume's root with openat2
// (btrfs.openBeneath: no "..", no symlink, no mount point on the path), its
// entries looked at with lstat through /proc/self/fd/<dirfd>/<name> (never
// followed), and every file opened the same way from the root: a directory
// swapped for a symlink to / between the walk and the read makes that open
// fail (ELOOP), it never reaches outside. FIFOs, sockets and devices are
// listed as 'other' and never opened. Each file's header carries the fstat of
// the file actually opened, and its status says whether it changed while it
// was read.
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Writable } from 'node:stream';

import * as btrfs from '../btrfs/index.js';
import { at, errCode, fdCloseQuietly, fdRead, fdStat, kindOf } from './fd-ops.js';
import { sendChunk, sendLine } from './frames.js';
import { MAX_CHUNK_BYTES, ReplicationError, isTreePath, type FileHeader, type FileStatus, type TreeEntry } from './protocol.js';

/** Entries looked at concurrently in one directory. */
const LSTAT_BATCH = 64;
/** Files opened and read ahead of the one being sent (each holds at most one chunk). */
const READ_AHEAD = 16;
const MAX_PATH_BYTES = 4095;

/** Errors of an entry that changed or is not what we may read: that entry is skipped, the walk goes on. */
const ENTRY_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV', 'EISDIR', 'EINVAL', 'ENAMETOOLONG', 'EACCES', 'EPERM']);

/**
 * Opens the live volume at `root` (its parent is ours and followed; the
 * volume's own name is not).
 * @throws ReplicationError `ERR_VOLUME_NOT_FOUND`.
 */
async function openVolume(root: string): Promise<number> {
  try {
    return await btrfs.openBeneath(dirname(root), basename(root), 'directory');
  } catch (err) {
    if (['ENOENT', 'ENOTDIR'].includes(errCode(err) ?? '')) throw new ReplicationError('ERR_VOLUME_NOT_FOUND', `no live volume ${root}`, { cause: err });
    throw err;
  }
}

const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

function entryOf(path: string, st: BigIntStats, type: TreeEntry['type']): TreeEntry {
  return {
    path,
    type,
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtime: st.mtimeNs.toString(),
    dev: Number(st.dev),
    ino: Number(st.ino),
    nlink: Number(st.nlink),
  };
}

function other(path: string, why: string, st?: BigIntStats): TreeEntry {
  if (st) return { ...entryOf(path, st, 'other'), why };
  return { path, type: 'other', mode: 0, uid: 0, gid: 0, size: 0, mtime: '0', dev: 0, ino: 0, nlink: 0, why };
}

/** What entry `raw` of directory `dirfd` (at `dir`) is; null when it is gone. */
async function describe(dirfd: number, dir: string, raw: Buffer): Promise<TreeEntry | null> {
  const name = raw.toString('utf8');
  const path = join(dir, name);
  if (!Buffer.from(name, 'utf8').equals(raw)) return other(path, 'name not UTF-8');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return other(path, 'path longer than 4095 bytes');
  let st: BigIntStats;
  try {
    st = await lstat(at(dirfd, name), { bigint: true });
  } catch (err) {
    if (ENTRY_ERRORS.has(errCode(err) ?? '')) return null;
    throw err;
  }
  if (st.isFile()) return entryOf(path, st, 'file');
  if (st.isDirectory()) return entryOf(path, st, 'dir');
  if (st.isSymbolicLink()) {
    let target: Buffer;
    try {
      target = await readlink(at(dirfd, name), { encoding: 'buffer' });
    } catch (err) {
      if (ENTRY_ERRORS.has(errCode(err) ?? '')) return null; // replaced by something else: the next sync sees it
      throw err;
    }
    const text = target.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(target)) return other(path, 'symlink target not UTF-8', st);
    return { ...entryOf(path, st, 'symlink'), target: text };
  }
  return other(path, kindOf(st), st);
}

/**
 * Writes `{"ok":true}` once the volume at `root` is open, then its tree: one
 * JSON line per entry (a directory before what it holds), then {"end":true}.
 * @throws ReplicationError `ERR_VOLUME_NOT_FOUND` before anything is written; `ERR_PEER_CLOSED`.
 */
export async function serveTree(out: Writable, root: string): Promise<void> {
  const rootFd = await openVolume(root);
  try {
    await sendLine(out, { ok: true });
    const stack: string[] = [''];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let fd: number;
      try {
        fd = await btrfs.openBeneath(rootFd, dir, 'directory');
      } catch (err) {
        if (dir !== '' && ENTRY_ERRORS.has(errCode(err) ?? '')) continue; // no longer a directory (a symlink now?): not walked
        throw err;
      }
      try {
        await sendLine(out, entryOf(dir, await fdStat(fd), 'dir'));
        const names = (await readdir(at(fd), { encoding: 'buffer' })).sort(Buffer.compare);
        const subdirs: string[] = [];
        for (let i = 0; i < names.length; i += LSTAT_BATCH) {
          const entries = await Promise.all(names.slice(i, i + LSTAT_BATCH).map((n) => describe(fd, dir, n)));
          for (const e of entries) {
            if (e === null) continue;
            if (e.type === 'dir') subdirs.push(e.path);
            else await sendLine(out, e);
          }
        }
        for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
      } finally {
        await fdCloseQuietly(fd);
      }
    }
    await sendLine(out, { end: true });
  } finally {
    await fdCloseQuietly(rootFd);
  }
}

/** A file opened and its first chunk read, or why it cannot be sent. */
type Prepared =
  | { ok: true; path: string; fd: number; st: BigIntStats; first: Buffer; eof: boolean }
  | { ok: false; path: string; code: string; error: string };

async function prepare(rootFd: number, path: string, open: Set<number>): Promise<Prepared> {
  if (!isTreePath(path)) return { ok: false, path, code: 'ERR_BAD_REQUEST', error: 'not a relative path of the volume' };
  let fd: number;
  try {
    fd = await btrfs.openBeneath(rootFd, path, 'read');
  } catch (err) {
    return { ok: false, path, code: errCode(err) ?? 'ERR_PEER_FAILED', error: (err as Error).message };
  }
  open.add(fd);
  try {
    const st = await fdStat(fd);
    const first = Buffer.allocUnsafe(MAX_CHUNK_BYTES);
    const n = await fdRead(fd, first);
    return { ok: true, path, fd, st, first: first.subarray(0, n), eof: n < MAX_CHUNK_BYTES };
  } catch (err) {
    if (open.delete(fd)) await fdCloseQuietly(fd);
    return { ok: false, path, code: errCode(err) ?? 'ERR_PEER_FAILED', error: (err as Error).message };
  }
}

function headerOf(p: Prepared & { ok: true }): FileHeader {
  const { st } = p;
  return {
    path: p.path,
    ok: true,
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtime: st.mtimeNs.toString(),
    dev: Number(st.dev),
    ino: Number(st.ino),
    nlink: Number(st.nlink),
  };
}

/** Sends the rest of a prepared file and says whether what was sent is whole. */
async function sendContent(out: Writable, p: Prepared & { ok: true }): Promise<FileStatus> {
  let sent = p.first.length;
  if (sent > 0) await sendChunk(out, p.first);
  let eof = p.eof;
  try {
    while (!eof) {
      const buf = Buffer.allocUnsafe(MAX_CHUNK_BYTES); // never reused: the channel may still hold the last one
      const n = await fdRead(p.fd, buf);
      if (n > 0) await sendChunk(out, buf.subarray(0, n));
      sent += n;
      eof = n < MAX_CHUNK_BYTES;
    }
  } catch (err) {
    if (errCode(err) === 'ERR_PEER_CLOSED') throw err;
    await sendChunk(out, Buffer.alloc(0));
    return { complete: false, code: errCode(err) ?? 'EIO', error: (err as Error).message };
  }
  await sendChunk(out, Buffer.alloc(0));
  const after = await fdStat(p.fd);
  if (after.mtimeNs !== p.st.mtimeNs || after.ctimeNs !== p.st.ctimeNs || after.size !== BigInt(sent)) {
    return { complete: false, code: 'ERR_CHANGED', error: 'changed while it was read' };
  }
  return { complete: true };
}

/**
 * Writes `{"ok":true}` once the volume at `root` is open, then the files
 * `paths` in that order (see protocol.ts), then {"end":true}. A path that
 * cannot be read (gone, not a regular file, a symlink on the way) gets a
 * header saying why; only the channel failing stops the answer.
 * @throws ReplicationError `ERR_VOLUME_NOT_FOUND` before anything is written; `ERR_PEER_CLOSED`.
 */
export async function serveFiles(out: Writable, root: string, paths: readonly string[]): Promise<void> {
  const rootFd = await openVolume(root);
  const open = new Set<number>();
  const ahead: Array<Promise<Prepared>> = [];
  let next = 0;
  const fill = () => {
    while (ahead.length < READ_AHEAD && next < paths.length) ahead.push(prepare(rootFd, paths[next++]!, open));
  };
  try {
    await sendLine(out, { ok: true });
    fill();
    while (ahead.length > 0) {
      const p = await ahead.shift()!;
      fill();
      if (!p.ok) {
        await sendLine(out, { path: p.path, ok: false, code: p.code, error: p.error } satisfies FileHeader);
        continue;
      }
      try {
        await sendLine(out, headerOf(p));
        await sendLine(out, await sendContent(out, p));
      } finally {
        if (open.delete(p.fd)) await fdCloseQuietly(p.fd);
      }
    }
    await sendLine(out, { end: true });
  } finally {
    // A channel that failed half-way: what was read ahead is closed too (each fd once: `open` owns them).
    await Promise.all(ahead);
    const left = [...open];
    open.clear();
    await Promise.all(left.map((fd) => fdCloseQuietly(fd)));
    await fdCloseQuietly(rootFd);
  }
}
