// The serving side of sync: the files of a live volume, read without ever
// following a symlink out of it (the volume's content is a container's, and
// it can swap any directory for a symlink at any moment).
//
// Every directory is opened and listed beneath the volume's root with
// openat2 (btrfs.listBeneath: no "..", no symlink, no mount point on the
// path; its entries lstat'ed, never followed), and every file opened the same
// way from the root (btrfs.readFileBeneath): a directory swapped for a
// symlink to / between the walk and the read makes that open fail (ELOOP), it
// never reaches outside. FIFOs, sockets and devices are listed as 'other' and
// never opened. Each file's header carries the fstat of the file actually
// opened, and its status says whether it changed while it was read.
import type { Writable } from 'node:stream';

import * as btrfs from '../btrfs/index.js';
import type { EntryStat, ListedEntry } from '../btrfs/types.js';
import { errCode } from '../util/err-code.js';
import { fdCloseQuietly, fdRead, fdStat, kindOfMode } from './fd-ops.js';
import { send, sendChunk, sendLine } from './frames.js';
import { MAX_CHUNK_BYTES, isTreePath, type FileHeader, type FileStatus, type TreeEntry } from './protocol.js';

/** Files opened and read ahead of the one being sent (each holds at most one chunk). */
const READ_AHEAD = 16;
const MAX_PATH_BYTES = 4095;
/** Lines of the tree gathered into one write (one SSH packet for many lines). */
const TREE_WRITE_BYTES = 32 * 1024;

/** Errors of an entry that changed or is not what we may read: that entry is skipped, the walk goes on. */
const ENTRY_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV', 'EISDIR', 'EINVAL', 'ENAMETOOLONG', 'EACCES', 'EPERM']);

const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function entryOf(path: string, st: EntryStat, type: TreeEntry['type']): TreeEntry {
  const { mode, uid, gid, size, dev, ino, nlink } = st;
  return { path, type, mode, uid, gid, size, mtime: st.mtimeNs.toString(), dev, ino, nlink };
}

/** Bytes as a string, or null when they are not UTF-8 (a JSON string could not carry them back). */
function utf8(bytes: Buffer): string | null {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : null;
}

/** The tree entry of listed entry `e` of directory `dir`. */
function describe(dir: string, e: ListedEntry): TreeEntry {
  const name = utf8(e.name);
  if (name === null) return { ...entryOf(join(dir, e.name.toString('utf8')), e, 'other'), why: 'name not UTF-8' };
  const path = join(dir, name);
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return { ...entryOf(path, e, 'other'), why: 'path longer than 4095 bytes' };
  switch (e.mode & S_IFMT) {
    case S_IFREG:
      return entryOf(path, e, 'file');
    case S_IFDIR:
      return entryOf(path, e, 'dir');
    case S_IFLNK: {
      const target = utf8(e.target ?? Buffer.alloc(0));
      if (target === null || target === '') return { ...entryOf(path, e, 'other'), why: 'symlink target not UTF-8' };
      return { ...entryOf(path, e, 'symlink'), target };
    }
    default:
      return { ...entryOf(path, e, 'other'), why: kindOfMode(e.mode) };
  }
}

/**
 * Writes `{"ok":true}`, then the tree of the volume whose root is `rootFd`
 * (from VolumeStore.openLiveVolume; closed here): one
 * JSON line per entry (a directory before what it holds), then {"end":true}.
 * A directory that is no longer one when it comes to be listed (a symlink
 * swapped in) is left out with what it holds.
 * @throws ReplicationError `ERR_PEER_CLOSED`.
 */
export async function serveTree(out: Writable, rootFd: number): Promise<void> {
  try {
    await sendLine(out, { ok: true });
    let lines = '';
    const stack: string[] = [''];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let listing: Awaited<ReturnType<typeof btrfs.listBeneath>>;
      try {
        listing = await btrfs.listBeneath(rootFd, dir);
      } catch (err) {
        if (dir !== '' && ENTRY_ERRORS.has(errCode(err) ?? '')) continue; // no longer a directory (a symlink now?): not walked
        throw err;
      }
      lines += `${JSON.stringify(entryOf(dir, listing.self, 'dir'))}\n`;
      const subdirs: string[] = [];
      for (const listed of listing.entries.sort((a, b) => Buffer.compare(a.name, b.name))) {
        const e = describe(dir, listed);
        if (e.type === 'dir') subdirs.push(e.path);
        else lines += `${JSON.stringify(e)}\n`;
        if (lines.length >= TREE_WRITE_BYTES) {
          await send(out, lines);
          lines = '';
        }
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
      // Sent as each directory is done, so the peer works while we walk on.
      if (lines !== '') {
        await send(out, lines);
        lines = '';
      }
    }
    await sendLine(out, { end: true });
  } finally {
    await fdCloseQuietly(rootFd);
  }
}

/**
 * A file opened and its first chunk read, or why it cannot be sent. A file
 * that fits in that chunk was read whole, checked and closed (`whole`: its
 * whole answer, one write); a bigger one stays open for the rest.
 */
type Prepared =
  | { ok: true; path: string; whole: Buffer }
  | { ok: true; path: string; whole?: undefined; fd: number; st: EntryStat; first: Buffer }
  | { ok: false; path: string; code: string; error: string };

function chunkHead(n: number): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(n, 0);
  return head;
}

const line = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value)}\n`);

const CHANGED: FileStatus = { complete: false, code: 'ERR_CHANGED', error: 'changed while it was read' };

function headerOf(path: string, st: EntryStat): FileHeader {
  const { mode, uid, gid, size, dev, ino, nlink } = st;
  return { path, ok: true, mode, uid, gid, size, mtime: st.mtimeNs.toString(), dev, ino, nlink };
}

async function prepare(rootFd: number, path: string, open: Set<number>): Promise<Prepared> {
  if (!isTreePath(path)) return { ok: false, path, code: 'ERR_BAD_REQUEST', error: 'not a relative path of the volume' };
  let read: btrfs.BeneathRead;
  try {
    read = await btrfs.readFileBeneath(rootFd, path, { max: MAX_CHUNK_BYTES });
  } catch (err) {
    return { ok: false, path, code: errCode(err) ?? 'ERR_PEER_FAILED', error: (err as Error).message };
  }
  if (read.fd !== null) {
    open.add(read.fd);
    return { ok: true, path, fd: read.fd, st: read.stat, first: read.data };
  }
  const n = read.data.length;
  const parts = [line(headerOf(path, read.stat)), ...(n > 0 ? [chunkHead(n), read.data] : []), chunkHead(0), line(read.complete ? { complete: true } : CHANGED)];
  return { ok: true, path, whole: Buffer.concat(parts) };
}

/** Sends a file bigger than one chunk: header, chunks, end, status. */
async function sendBig(out: Writable, p: { path: string; fd: number; st: EntryStat; first: Buffer }): Promise<void> {
  await sendLine(out, headerOf(p.path, p.st));
  let sent = p.first.length;
  if (sent > 0) await sendChunk(out, p.first);
  let status: FileStatus | undefined;
  for (let eof = false; !eof; ) {
    const buf = Buffer.allocUnsafe(MAX_CHUNK_BYTES); // never reused: the channel may still hold the last one
    let n: number;
    try {
      n = await fdRead(p.fd, buf);
    } catch (err) {
      // A read error ends this file (the client drops it); a channel error ends the answer.
      status = { complete: false, code: errCode(err) ?? 'EIO', error: (err as Error).message };
      break;
    }
    if (n > 0) await sendChunk(out, buf.subarray(0, n));
    sent += n;
    eof = n === 0;
  }
  await sendChunk(out, Buffer.alloc(0));
  if (!status) {
    const after = await fdStat(p.fd);
    const same = after.mtimeNs === p.st.mtimeNs && after.ctimeNs === p.st.ctimeNs && after.size === BigInt(sent);
    status = same ? { complete: true } : CHANGED;
  }
  await sendLine(out, status);
}

/**
 * Writes `{"ok":true}`, then the files `paths` of the volume whose root is
 * `rootFd` (closed here) in that order (see protocol.ts), then {"end":true}. A path that
 * cannot be read (gone, not a regular file, a symlink on the way) gets a
 * header saying why; only the channel failing stops the answer. Files are
 * opened and read READ_AHEAD ahead of the one being sent; a small one is
 * read whole in one call and sent in one write.
 * @throws ReplicationError `ERR_PEER_CLOSED`.
 */
export async function serveFiles(out: Writable, rootFd: number, paths: readonly string[]): Promise<void> {
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
      if (!p.ok) await sendLine(out, { path: p.path, ok: false, code: p.code, error: p.error } satisfies FileHeader);
      else if (p.whole) await send(out, p.whole);
      else {
        try {
          await sendBig(out, p);
        } finally {
          if (open.delete(p.fd)) await fdCloseQuietly(p.fd);
        }
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
