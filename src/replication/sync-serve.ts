// The serving side of sync at protocol version 2 (framing: sync-frames.ts):
// the tree of a live volume as packed directory records, and its files in
// batches. Read exactly as sync-source.ts reads them for version 1 (every
// directory and file opened beneath the volume's root with openat2, no
// symlink followed, FIFOs and devices never opened), but a directory costs
// one native call and one record, and a batch of small files one native
// call and one write, instead of a JSON line and a call per entry.
import type { Writable } from 'node:stream';

import * as btrfs from '../btrfs/index.js';
import { errCode } from '../util/err-code.js';
import { fdCloseQuietly, fdRead, fdStat } from './fd-ops.js';
import { send, sendLine } from './frames.js';
import { isTreePath, ReplicationError } from './protocol.js';
import { MAX_CHUNK_ITEM, MAX_PATH_BYTES, TAG_BIG, TAG_CHUNK, TAG_FILES, TAG_STATUS, TAG_TREE, sendItem, statusItem, treeRecordHead } from './sync-frames.js';

/** Errors of a directory that changed or is not what we may read: left out, with what it holds. */
const ENTRY_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV', 'EISDIR', 'EINVAL', 'ENAMETOOLONG', 'EACCES', 'EPERM']);
/** Directories listed ahead of the one being sent. */
const LIST_AHEAD = 4;
/** Records gathered into one item before it is written. */
const TREE_ITEM_BYTES = 32 * 1024;
/** Entries of one directory per record at most (bytes): a huge directory takes several. */
const RECORD_BYTES = 256 * 1024;
/** Content read per native call (one B item). */
const FILES_ITEM_BYTES = 1024 * 1024;
/** A file up to this size goes whole into a B item; a bigger one is streamed (H, C..., S). */
const WHOLE_FILE_BYTES = 256 * 1024;
/** Paths handed to one native call at most. */
const PATHS_PER_READ = 2048;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

/** `bytes` as a string, or null when they are not UTF-8. */
function utf8(bytes: Buffer): string | null {
  for (const b of bytes) if (b >= 0x80) return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes) ? bytes.toString('utf8') : null;
  return bytes.toString('latin1');
}

/**
 * The records of directory `dir` listed as `listing`, and its subdirectories
 * to walk (those a path can name: UTF-8, not too long; the client skips the
 * others as special).
 */
function records(dir: string, listing: btrfs.PackedListing): { parts: Buffer[]; subdirs: string[] } {
  const path = Buffer.from(dir, 'utf8');
  const parts: Buffer[] = [];
  const subdirs: string[] = [];
  const entries = new btrfs.PackedEntries(listing.entries, listing.count);
  let start = 0;
  let count = 0;
  const cut = (end: number) => {
    parts.push(treeRecordHead(path, listing.self, count, end - start), listing.entries.subarray(start, end));
    start = end;
    count = 0;
  };
  while (entries.next()) {
    if ((entries.mode & S_IFMT) === S_IFDIR) {
      const name = utf8(entries.name());
      if (name !== null && path.length + 1 + (entries.nameEnd - entries.nameStart) <= MAX_PATH_BYTES) subdirs.push(join(dir, name));
    }
    count++;
    if (entries.offset - start >= RECORD_BYTES) cut(entries.offset);
  }
  if (count > 0 || parts.length === 0) cut(entries.offset);
  return { parts, subdirs };
}

/**
 * Writes `{"ok":true}`, then the tree of the volume whose root is `rootFd`
 * (closed here) as T items, depth first (a directory's record before those
 * of its subdirectories), then {"end":true}. A directory that is no longer
 * one when it comes to be listed is left out with what it holds.
 * @throws ReplicationError `ERR_PEER_CLOSED`; the root's listing error.
 */
export async function serveTreePacked(out: Writable, rootFd: number): Promise<void> {
  const ahead = new Map<string, Promise<btrfs.PackedListing | null>>();
  const list = (dir: string): Promise<btrfs.PackedListing | null> => {
    const p = btrfs.listBeneathPacked(rootFd, dir).catch((err: unknown) => {
      if (dir !== '' && ENTRY_ERRORS.has(errCode(err) ?? '')) return null; // no longer a directory (a symlink now?): not walked
      throw err;
    });
    p.catch(() => undefined); // awaited when its turn comes
    return p;
  };
  try {
    await sendLine(out, { ok: true });
    const stack: string[] = [''];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    while (stack.length > 0) {
      const dir = stack.pop()!;
      const listed = ahead.get(dir) ?? list(dir);
      ahead.delete(dir);
      const listing = await listed;
      if (listing) {
        const { parts, subdirs } = records(dir, listing);
        for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
        for (const p of parts) pendingBytes += p.length;
        pending.push(...parts);
      }
      // The next directories are listed while this one is sent.
      for (let k = stack.length - 1; k >= 0 && k >= stack.length - LIST_AHEAD; k--) if (!ahead.has(stack[k]!)) ahead.set(stack[k]!, list(stack[k]!));
      if (pendingBytes >= TREE_ITEM_BYTES || (stack.length === 0 && pendingBytes > 0)) {
        await sendItem(out, TAG_TREE, pending);
        pending = [];
        pendingBytes = 0;
      }
    }
    await sendLine(out, { end: true });
  } finally {
    await Promise.allSettled(ahead.values());
    await fdCloseQuietly(rootFd);
  }
}

type Batch = Awaited<ReturnType<typeof btrfs.readFilesBeneath>>;

/** Streams big file `big` (its first bytes read, the rest to read from its fd): H, C..., S. */
async function sendBig(out: Writable, big: NonNullable<Batch['big']>): Promise<void> {
  const st = btrfs.readPackedStat(big.stat);
  await sendItem(out, TAG_BIG, [big.stat]);
  let sent = big.data.length;
  if (sent > 0) await sendItem(out, TAG_CHUNK, [big.data]);
  let why = '';
  // Read into a buffer with room for the item's head in front: the chunk is written as it was read.
  const read = async (): Promise<Buffer> => {
    const buf = Buffer.allocUnsafe(5 + MAX_CHUNK_ITEM); // never reused: the channel may still hold the last one
    const n = await fdRead(big.fd, buf.subarray(5));
    buf[0] = TAG_CHUNK;
    buf.writeUInt32LE(n, 1);
    return buf.subarray(0, 5 + n);
  };
  let next = read();
  for (;;) {
    let chunk: Buffer;
    try {
      chunk = await next;
    } catch (err) {
      why = `${errCode(err) ?? 'EIO'}: ${(err as Error).message}`; // a read error ends this file (the client drops it)
      break;
    }
    if (chunk.length === 5) break;
    next = read();
    next.catch(() => undefined);
    sent += chunk.length - 5;
    await send(out, chunk);
  }
  if (!why) {
    const after = await fdStat(big.fd);
    if (after.mtimeNs !== st.mtimeNs || after.ctimeNs !== big.ctimeNs || after.size !== BigInt(sent)) why = 'changed while it was read';
  }
  await sendItem(out, TAG_STATUS, [statusItem(why === '', why)]);
}

/**
 * Writes `{"ok":true}`, then files `paths` of the volume whose root is
 * `rootFd` (closed here), in that order, as B items (and H, C, S for a big
 * one), then {"end":true}. A path that cannot be read gets a record saying
 * why; only the channel failing stops the answer. The next batch is read
 * while one is sent.
 * @throws ReplicationError `ERR_BAD_REQUEST` (a path that is not one of a volume), `ERR_PEER_CLOSED`.
 */
export async function serveFilesPacked(out: Writable, rootFd: number, paths: readonly string[]): Promise<void> {
  const read = (from: number): Promise<Batch> => {
    const p = btrfs.readFilesBeneath(rootFd, paths.slice(from, from + PATHS_PER_READ), { maxBytes: FILES_ITEM_BYTES, maxFile: WHOLE_FILE_BYTES });
    p.catch(() => undefined);
    return p;
  };
  let next: Promise<Batch> | null = null;
  let big: Batch['big'] = null;
  try {
    const bad = paths.findIndex((p) => !isTreePath(p));
    if (bad >= 0) throw new ReplicationError('ERR_BAD_REQUEST', `not a relative path of the volume: ${JSON.stringify(String(paths[bad]).slice(0, 200))}`);
    await sendLine(out, { ok: true });
    let at = 0;
    next = paths.length > 0 ? read(0) : null;
    while (next) {
      const batch = await next;
      big = batch.big;
      at += batch.done + (big ? 1 : 0);
      next = at < paths.length ? read(at) : null;
      if (batch.done > 0) {
        const head = Buffer.allocUnsafe(4);
        head.writeUInt32LE(batch.done, 0);
        await sendItem(out, TAG_FILES, [head, batch.packed]);
      }
      if (big) {
        await sendBig(out, big);
        await fdCloseQuietly(big.fd);
        big = null;
      }
    }
    await sendLine(out, { end: true });
  } finally {
    if (big) await fdCloseQuietly(big.fd);
    // A channel that failed half-way: what was read ahead is closed too.
    const left = await next?.catch(() => null);
    if (left?.big) await fdCloseQuietly(left.big.fd);
    await fdCloseQuietly(rootFd);
  }
}
