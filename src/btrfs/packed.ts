// The packed entry of native/core/beneath_batch.h, read without an object
// per entry: a directory listing of thousands of entries costs one Buffer
// instead of thousands of objects, BigInts and name Buffers. Little-endian:
//   u32 mode, u32 uid, u32 gid, u32 nlink, u64 size, i64 mtime (ns),
//   u64 ino, u64 dev                                    (PACKED_STAT_BYTES)
// and in a listing, after it: u8 name length, the name, and for a symlink
// u16 target length, the target. The reader checks every length against
// the bytes it has: the same bytes may come from a peer (sync), and a
// malformed entry is a PackedEntryError, never a read past the end.
import { nameErrorClass } from '../util/error-name.js';

export const PACKED_STAT_BYTES = 48;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const TWO32 = 2 ** 32;
/** The high half of a u64 that still makes a safe integer. */
const SAFE_HIGH = 2 ** 21;

/** Entries that are not what the packed format says. */
export class PackedEntryError extends Error {}

nameErrorClass(PackedEntryError, 'PackedEntryError');

/** The stat fields of a packed stat, as numbers (mtime as a bigint). */
export interface PackedStatFields {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  mtimeNs: bigint;
  ino: number;
  dev: number;
}

function u64At(buf: Buffer, at: number, what: string): number {
  const high = buf.readUInt32LE(at + 4);
  if (high >= SAFE_HIGH) throw new PackedEntryError(`${what} beyond 2^53`);
  return high * TWO32 + buf.readUInt32LE(at);
}

/** The packed stat at `at` of `buf` (PACKED_STAT_BYTES there, checked by the caller). */
export function readPackedStat(buf: Buffer, at = 0): PackedStatFields {
  if (at < 0 || at + PACKED_STAT_BYTES > buf.length) throw new PackedEntryError('a packed stat cut short');
  return {
    mode: buf.readUInt32LE(at),
    uid: buf.readUInt32LE(at + 4),
    gid: buf.readUInt32LE(at + 8),
    nlink: buf.readUInt32LE(at + 12),
    size: u64At(buf, at + 16, 'size'),
    mtimeNs: buf.readBigInt64LE(at + 24),
    ino: u64At(buf, at + 32, 'ino'),
    dev: u64At(buf, at + 40, 'dev'),
  };
}

/**
 * A cursor over the packed entries of a listing: {@link next} steps to the
 * next entry and sets the fields (one object for all entries).
 */
export class PackedEntries {
  mode = 0;
  uid = 0;
  gid = 0;
  nlink = 0;
  size = 0;
  /** The mtime's high (signed) and low 32 bits: compared without a BigInt. */
  mtimeHigh = 0;
  mtimeLow = 0;
  ino = 0;
  dev = 0;
  /** Where the current entry's stat starts. */
  statAt = -1;
  nameStart = 0;
  nameEnd = 0;
  /** A symlink's target (start === end for none). */
  targetStart = 0;
  targetEnd = 0;
  #at: number;
  #left: number;

  /** `count` entries of `buf` from `start` to `end`. */
  constructor(
    readonly buf: Buffer,
    count: number,
    start = 0,
    readonly end = buf.length,
  ) {
    this.#at = start;
    this.#left = count;
  }

  /** Where the next entry starts (the end once all were read). */
  get offset(): number {
    return this.#at;
  }

  /** Entries not yet read. */
  get left(): number {
    return this.#left;
  }

  /** Steps to the next entry: false when there is none. @throws PackedEntryError when it does not fit. */
  next(): boolean {
    if (this.#left <= 0) return false;
    const { buf } = this;
    let at = this.#at;
    if (at + PACKED_STAT_BYTES + 1 > this.end) throw new PackedEntryError('an entry cut short');
    this.statAt = at;
    this.mode = buf.readUInt32LE(at);
    this.uid = buf.readUInt32LE(at + 4);
    this.gid = buf.readUInt32LE(at + 8);
    this.nlink = buf.readUInt32LE(at + 12);
    this.size = u64At(buf, at + 16, 'size');
    this.mtimeLow = buf.readUInt32LE(at + 24);
    this.mtimeHigh = buf.readInt32LE(at + 28);
    this.ino = u64At(buf, at + 32, 'ino');
    this.dev = u64At(buf, at + 40, 'dev');
    at += PACKED_STAT_BYTES;
    const nameLength = buf[at]!;
    this.nameStart = at + 1;
    this.nameEnd = at + 1 + nameLength;
    at = this.nameEnd;
    if (nameLength === 0 || at > this.end) throw new PackedEntryError('a name cut short');
    this.targetStart = this.targetEnd = at;
    if ((this.mode & S_IFMT) === S_IFLNK) {
      if (at + 2 > this.end) throw new PackedEntryError('a symlink target cut short');
      this.targetStart = at + 2;
      this.targetEnd = at + 2 + buf.readUInt16LE(at);
      at = this.targetEnd;
      if (at > this.end) throw new PackedEntryError('a symlink target cut short');
    }
    this.#at = at;
    this.#left--;
    return true;
  }

  /** The mtime in ns, exactly. */
  get mtimeNs(): bigint {
    return this.buf.readBigInt64LE(this.statAt + 24);
  }

  /** The mtime in ns, as a double (to the µs or so: enough to tell seconds apart). */
  get mtimeApprox(): number {
    return this.mtimeHigh * TWO32 + this.mtimeLow;
  }

  /** The name's bytes (a view, not a copy). */
  name(): Buffer {
    return this.buf.subarray(this.nameStart, this.nameEnd);
  }

  /** The symlink's target bytes (empty for anything else). */
  target(): Buffer {
    return this.buf.subarray(this.targetStart, this.targetEnd);
  }

  /** Compares the current name with name `start`..`end` of `other`, as Buffer.compare. */
  compareName(other: Buffer, start: number, end: number): number {
    return this.buf.compare(other, start, end, this.nameStart, this.nameEnd);
  }

  /** The current entry's stat fields. */
  stat(): PackedStatFields {
    return readPackedStat(this.buf, this.statAt);
  }
}
