// One batch of files fetched from the peer (a "files" request at protocol 2,
// sync-frames.ts) and written here. Small files come many to an item and
// are written by one native call per item (btrfs.writeFilesBeneath: each
// under a temporary name in its directory, opened beneath the volume's
// root, its owner, mode and mtime set, renamed into place only if what is
// there is still what was listed); a big one is streamed to a temporary
// file and renamed the same way (sync-writes.ts). A file the peer could not
// read, that changed while read, or dated ahead of our clock is skipped.
import * as btrfs from '../btrfs/index.js';
import type { Limiter } from '../util/limiter.js';
import { printable } from '../util/untrusted-text.js';
import type { PeerConnection } from './client.js';
import { FrameReader } from './frames.js';
import { protocolError } from './peer-answers.js';
import { ReplicationError, SYNC_PROTOCOL_VERSION, type FileHeader, type RequestBody } from './protocol.js';
import { fileRecords, ItemError, MAX_CHUNK_ITEM, readItem, readStatus, TAG_BIG, TAG_CHUNK, TAG_FILES, TAG_STATUS, type Item } from './sync-frames.js';
import { CHANGED_HERE, expected, renameRefusal, SYNC_TEMP_PREFIX, type DirCache, type Local, type TempFile } from './sync-local.js';
import { openTempFile, placeTempFile } from './sync-writes.js';

/** Remote inodes with several names: the first fetched in this run, and how many names are still to come. */
export interface LinkGroup {
  /** The first path of the group fetched in this run. */
  path: string;
  /** Its local inode once written. */
  ino?: bigint;
  /** Names of the remote inode still to come (its nlink minus those seen): remembered until none. */
  left: number;
}

/** A file to fetch. */
export interface Wanted {
  path: string;
  /** What is here under that name as listed (null: nothing): replaced only if it still is that. */
  local: Local | null;
  group?: LinkGroup;
}

/** What a fetch reports to its host's sync. */
export interface FetchSide {
  readonly label: string;
  readonly rootFd: number;
  readonly dirs: DirCache;
  /** Writes of fetched items in flight (what each holds is in memory). */
  readonly writes: Limiter;
  /** Throws the host's failure, if there is one. */
  check(): void;
  fail(err: unknown): void;
  ahead(ns: bigint): string | null;
  skip(path: string, reason: string): void;
  /** A local change makes `path` a skip; anything else is thrown again. */
  skipIfChangedHere(path: string, err: unknown): void;
  /** Bytes of complete content received. */
  received(bytes: number): void;
  copied(item: Wanted, ino: bigint): void;
}

/**
 * Writes of fetched items at once: one. btrfs makes files in one subvolume
 * no faster from several threads (20,000 files of 1 KB: 0.74 s from one,
 * 0.86 s from three, 0.93 s from four), and one keeps them in order.
 */
export const WRITES_IN_FLIGHT = 1;
/** Items received and waiting for their write at most (each up to an item's bytes): what keeps the writer busy between requests. */
export const WRITES_QUEUED = 8;

/**
 * Opens a tree or files request at SYNC_PROTOCOL_VERSION; a peer that does
 * not speak it is told apart (sync needs it: no fallback to version 1).
 */
export async function openSync(conn: PeerConnection, request: RequestBody): ReturnType<PeerConnection['open']> {
  return conn.open(request, SYNC_PROTOCOL_VERSION).catch((err: unknown) => {
    if ((err as { code?: string }).code !== 'ERR_PROTOCOL_VERSION') throw err;
    throw new ReplicationError(
      'ERR_PROTOCOL_VERSION',
      `${conn.peer.label} does not speak protocol version ${SYNC_PROTOCOL_VERSION}, which sync needs: upgrade buttervolume there (${(err as Error).message})`,
    );
  });
}

/** The next item of `reader`; a malformed one fails the host (ERR_PROTOCOL). */
export async function nextItem(reader: FrameReader, label: string, max?: number): Promise<Item> {
  try {
    return await readItem(reader, max);
  } catch (err) {
    throw err instanceof ItemError ? protocolError(label, err.message) : err;
  }
}

function headerOf(path: string, st: btrfs.PackedStatFields): FileHeader & { ok: true } {
  const { mode, uid, gid, size, dev, ino, nlink } = st;
  return { path, ok: true, mode, uid, gid, size, mtime: st.mtimeNs.toString(), dev, ino, nlink };
}

/** The native writes of one B item's files; each result reported. */
async function writeAll(side: FetchSide, payload: Buffer, files: btrfs.FileToWrite[], items: Wanted[]): Promise<void> {
  const results = await btrfs.writeFilesBeneath(side.rootFd, files, payload, SYNC_TEMP_PREFIX);
  results.forEach((r, k) => {
    const item = items[k]!;
    if (r === null) side.skip(item.path, CHANGED_HERE);
    else if (typeof r === 'bigint') side.copied(item, r);
    else {
      // Its name taken meanwhile (renameat2 over a listed file, linkat of a new one).
      const err = r.syscall === 'renameat2' || r.syscall === 'linkat' ? renameRefusal(r) : r;
      try {
        side.skipIfChangedHere(item.path, err);
      } catch {
        side.fail(err);
      }
    }
  });
}

/** A B item: its files written in the background (in order, WRITES_QUEUED waiting at most); resolves to how many it held. */
async function wholeFiles(side: FetchSide, payload: Buffer, items: readonly Wanted[], at: number): Promise<number> {
  const records = fileRecords(payload, items.length - at);
  const files: btrfs.FileToWrite[] = [];
  const targets: Wanted[] = [];
  records.forEach((r, k) => {
    const item = items[at + k]!;
    if (r.kind === 'unreadable') return side.skip(item.path, `cannot be read on ${side.label}: ${printable(r.message, 300)}`);
    if (r.kind === 'changed') return side.skip(item.path, `changed on ${side.label} while it was read, not copied`);
    // The file as read may not be the one listed: its time is checked again.
    const ahead = side.ahead(r.stat.mtimeNs);
    if (ahead) return side.skip(item.path, `${ahead}: not copied`);
    side.received(r.length);
    const { uid, gid, mode } = r.stat;
    const inode = item.group !== undefined; // a hard link's first name: its followers are linked to the inode
    files.push({ path: item.path, offset: r.offset, length: r.length, uid, gid, mode, mtime: r.stat.mtimeNs, replace: item.local !== null, expect: item.local && expected(item.local), inode });
    targets.push(item);
  });
  if (files.length > 0) {
    await side.writes.whenBelow(WRITES_QUEUED);
    void side.writes.run(() => writeAll(side, payload, files, targets).catch((err: unknown) => side.fail(err)));
  }
  return records.length;
}

/** A big file (H): its C items into a temporary file, renamed into place after a complete S. */
async function bigFile(side: FetchSide, reader: FrameReader, item: Wanted, stat: btrfs.PackedStatFields): Promise<void> {
  const ahead = side.ahead(stat.mtimeNs);
  let file: TempFile | undefined = ahead ? undefined : await openTempFile(side.dirs, item.path);
  let size = 0;
  try {
    for (;;) {
      const got = await nextItem(reader, side.label, MAX_CHUNK_ITEM);
      if (got.kind === 'line' || (got.tag !== TAG_CHUNK && got.tag !== TAG_STATUS)) throw protocolError(side.label, `${item.path}: an item that is not its content`);
      if (got.tag === TAG_CHUNK) {
        size += got.payload.length;
        if (file) await file.write(got.payload);
        continue;
      }
      const status = (() => {
        try {
          return readStatus(got.payload);
        } catch (err) {
          throw protocolError(side.label, (err as Error).message);
        }
      })();
      if (ahead) return side.skip(item.path, `${ahead}: not copied`);
      if (!status.complete) return side.skip(item.path, `changed on ${side.label} while it was read, not copied (${printable(status.why, 300)})`);
      side.received(size);
      const placing = file!;
      file = undefined;
      await placeTempFile(placing, item.path, item.local, headerOf(item.path, stat)).then(
        (ino) => side.copied(item, ino),
        (err: unknown) => side.skipIfChangedHere(item.path, err),
      );
      return;
    }
  } finally {
    if (file) await file.discard();
  }
}

/** Fetches `items` (one files request) and writes each here, or says why not. */
export async function fetchFiles(side: FetchSide, conn: PeerConnection, volume: string, test: boolean, items: readonly Wanted[]): Promise<void> {
  side.check();
  const { channel } = await openSync(conn, { op: 'files', volume, paths: items.map((i) => i.path), test });
  const reader = new FrameReader(channel, `${side.label}: files of ${volume}`, { idleMs: conn.idleMs });
  try {
    let at = 0;
    for (;;) {
      const got = await nextItem(reader, side.label);
      if (got.kind === 'line') {
        const line = got.line as { end?: unknown; ok?: unknown } | null;
        if (line?.end === true && at === items.length) break;
        if (line?.ok === false) throw protocolError(side.label, `a files answer failed half-way: ${printable(String((line as { error?: unknown }).error), 300)}`);
        throw protocolError(side.label, `a files answer ended after ${at} of ${items.length} files`);
      }
      if (got.tag === TAG_FILES) {
        try {
          at += await wholeFiles(side, got.payload, items, at);
        } catch (err) {
          throw err instanceof ItemError || err instanceof btrfs.PackedEntryError ? protocolError(side.label, err.message) : err;
        }
      } else if (got.tag === TAG_BIG && at < items.length) {
        if (got.payload.length !== btrfs.PACKED_STAT_BYTES) throw protocolError(side.label, 'a big file header that is not one');
        let stat: btrfs.PackedStatFields;
        try {
          stat = btrfs.readPackedStat(got.payload);
        } catch (err) {
          throw protocolError(side.label, (err as Error).message);
        }
        await bigFile(side, reader, items[at++]!, stat);
      } else {
        throw protocolError(side.label, `an item out of place in a files answer (tag ${got.tag})`);
      }
      side.check();
    }
  } finally {
    await reader.close();
    channel.close();
  }
}
