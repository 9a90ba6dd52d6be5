// The framing of sync's tree and files answers from protocol version 2 on
// (protocol.ts): after the answer's {"ok":true} line, items, each a tag
// byte, a u32 little-endian length and that many bytes, until a JSON line
// ({"end":true}, or {"ok":false,...} when the server failed half-way: a tag
// is never "{", so a line is told apart by its first byte). Numbers are
// little-endian throughout; entries and stats are packed as btrfs/packed.ts
// reads them (the server sends what its native listing packed, as is).
//   T  directory records, one after another, each:
//        u16 path length, the directory's path (UTF-8, '' the root),
//        its packed stat, u32 entries, u32 bytes of entries, the packed
//        entries (sorted by name; a directory's own record comes later, so
//        the entries that are directories are only named here). A directory
//        of many entries takes several records of the same path in a row.
//   B  whole files, in the request's order from where the last item stopped:
//        u32 files, then per file the records of btrfs.readFilesBeneath
//        (u8 kind: 0 whole, 1 changed while read, 2 not read; the packed
//        stat, u32 length, the bytes; or u8 code length, code, u16 message
//        length, message)
//   H  the next file, too big for one item: its packed stat; then
//   C  its bytes (1..MAX_CHUNK_ITEM), as many as it takes, then
//   S  u8 1 when it was read whole and did not change meanwhile, else 0 and
//        u16 length, why
// What a peer sends is bounded here (MAX_ITEM_BYTES) and checked by whoever
// reads the records; a malformed item fails that host (ERR_PROTOCOL).
import type { Writable } from 'node:stream';

import { PACKED_STAT_BYTES, PackedEntries, readPackedStat, type PackedStatFields } from '../btrfs/index.js';
import { nameErrorClass } from '../util/error-name.js';
import type { FrameReader } from './frames.js';
import { send } from './frames.js';
import { isTreePath } from './protocol.js';

export const TAG_TREE = 0x54;
export const TAG_FILES = 0x42;
export const TAG_BIG = 0x48;
export const TAG_CHUNK = 0x43;
export const TAG_STATUS = 0x53;
const TAGS = new Set([TAG_TREE, TAG_FILES, TAG_BIG, TAG_CHUNK, TAG_STATUS]);
const LINE = 0x7b; // "{"

/** Largest item read from a peer (a tree item, a batch of files): what one item may make us hold. */
export const MAX_ITEM_BYTES = 4 * 1024 * 1024;
/** Largest C item (a big file's bytes). */
export const MAX_CHUNK_ITEM = 1024 * 1024;
/** Longest path of a tree entry, in bytes (as protocol.ts isTreePath). */
export const MAX_PATH_BYTES = 4095;

/** An item, or a JSON line. */
export type Item = { kind: 'item'; tag: number; payload: Buffer } | { kind: 'line'; line: unknown };

/** A malformed item or record of a peer. */
export class ItemError extends Error {}

nameErrorClass(ItemError, 'ItemError');

/** Writes item `tag` holding `parts`, in one write (one write of the channel is at least one SSH packet). */
export function sendItem(out: Writable, tag: number, parts: readonly Buffer[]): Promise<void> {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const head = Buffer.allocUnsafe(5);
  head[0] = tag;
  head.writeUInt32LE(length, 1);
  return send(out, Buffer.concat([head, ...parts], 5 + length));
}

/** The next item or line of `reader`; items longer than `max` are refused. */
export async function readItem(reader: FrameReader, max = MAX_ITEM_BYTES): Promise<Item> {
  if ((await reader.peek()) === LINE) return { kind: 'line', line: await reader.line() };
  const head = await reader.bytes(5);
  const tag = head[0]!;
  const length = head.readUInt32LE(1);
  if (!TAGS.has(tag)) throw new ItemError(`an item of unknown tag ${tag}`);
  if (length > max) throw new ItemError(`an item of ${length} bytes (at most ${max})`);
  return { kind: 'item', tag, payload: await reader.bytes(length) };
}

/** The head of a tree record of directory `path` (UTF-8 bytes), its packed stat `self`, and `count` entries in `bytes`. */
export function treeRecordHead(path: Buffer, self: Buffer, count: number, bytes: number): Buffer {
  const head = Buffer.allocUnsafe(2 + path.length + PACKED_STAT_BYTES + 8);
  head.writeUInt16LE(path.length, 0);
  path.copy(head, 2);
  self.copy(head, 2 + path.length, 0, PACKED_STAT_BYTES);
  head.writeUInt32LE(count, 2 + path.length + PACKED_STAT_BYTES);
  head.writeUInt32LE(bytes, 2 + path.length + PACKED_STAT_BYTES + 4);
  return head;
}

/** A directory record of a T item: its path, its stat, and a cursor over its entries. */
export interface TreeRecord {
  path: string;
  self: PackedStatFields;
  entries: PackedEntries;
}

/** The records of T item `payload`, checked as far as their heads go (the entries are checked as they are read). */
export function treeRecords(payload: Buffer): TreeRecord[] {
  const out: TreeRecord[] = [];
  let at = 0;
  while (at < payload.length) {
    if (at + 2 > payload.length) throw new ItemError('a tree record cut short');
    const pathLength = payload.readUInt16LE(at);
    const fixed = at + 2 + pathLength;
    if (pathLength > MAX_PATH_BYTES || fixed + PACKED_STAT_BYTES + 8 > payload.length) throw new ItemError('a tree record cut short');
    const raw = payload.subarray(at + 2, fixed);
    const path = raw.toString('utf8');
    if (!isTreePath(path, true) || !Buffer.from(path, 'utf8').equals(raw)) throw new ItemError(`a tree record of a path that is not one: ${JSON.stringify(path.slice(0, 200))}`);
    const self = readPackedStat(payload, fixed);
    const count = payload.readUInt32LE(fixed + PACKED_STAT_BYTES);
    const bytes = payload.readUInt32LE(fixed + PACKED_STAT_BYTES + 4);
    const start = fixed + PACKED_STAT_BYTES + 8;
    if (start + bytes > payload.length || count * (PACKED_STAT_BYTES + 2) > bytes) throw new ItemError(`the tree record of ${JSON.stringify(path)} cut short`);
    out.push({ path, self, entries: new PackedEntries(payload, count, start, start + bytes) });
    at = start + bytes;
  }
  return out;
}

/** What a B item says of one file. */
export type FileRecord =
  | { kind: 'whole' | 'changed'; stat: PackedStatFields; offset: number; length: number }
  | { kind: 'unreadable'; code: string; message: string };

/** The records of B item `payload` (the files it holds), each checked; at most `max` files. */
export function fileRecords(payload: Buffer, max: number): FileRecord[] {
  if (payload.length < 4) throw new ItemError('a files item cut short');
  const count = payload.readUInt32LE(0);
  if (count > max) throw new ItemError(`a files item of ${count} files, ${max} asked for at most`);
  const out: FileRecord[] = [];
  let at = 4;
  const need = (n: number) => {
    if (at + n > payload.length) throw new ItemError('a files item cut short');
  };
  for (let i = 0; i < count; i++) {
    need(1);
    const kind = payload[at]!;
    at += 1;
    if (kind === 0 || kind === 1) {
      need(PACKED_STAT_BYTES + 4);
      const stat = readPackedStat(payload, at);
      const length = payload.readUInt32LE(at + PACKED_STAT_BYTES);
      at += PACKED_STAT_BYTES + 4;
      need(length);
      out.push({ kind: kind === 0 ? 'whole' : 'changed', stat, offset: at, length });
      at += length;
    } else if (kind === 2) {
      need(1);
      const codeLength = payload[at]!;
      need(1 + codeLength + 2);
      const code = payload.toString('latin1', at + 1, at + 1 + codeLength);
      const messageLength = payload.readUInt16LE(at + 1 + codeLength);
      at += 1 + codeLength + 2;
      need(messageLength);
      out.push({ kind: 'unreadable', code, message: payload.toString('utf8', at, at + messageLength) });
      at += messageLength;
    } else {
      throw new ItemError(`a file record of unknown kind ${kind}`);
    }
  }
  if (at !== payload.length) throw new ItemError('a files item with bytes after its last file');
  return out;
}

/** The S item of a big file: complete, or why not. */
export function statusItem(complete: boolean, why = ''): Buffer {
  const text = Buffer.from(why.slice(0, 2000), 'utf8');
  const out = Buffer.allocUnsafe(complete ? 1 : 3 + text.length);
  out[0] = complete ? 1 : 0;
  if (!complete) {
    out.writeUInt16LE(text.length, 1);
    text.copy(out, 3);
  }
  return out;
}

/** What an S item says. */
export function readStatus(payload: Buffer): { complete: boolean; why: string } {
  if (payload.length === 1 && payload[0] === 1) return { complete: true, why: '' };
  if (payload.length < 3 || payload[0] !== 0 || payload.readUInt16LE(1) !== payload.length - 3) throw new ItemError('a status item that is not one');
  return { complete: false, why: payload.toString('utf8', 3) };
}
