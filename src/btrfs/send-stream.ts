// Reading send streams in memory: the debugging view of what the native
// reader (native/core/send_stream.h) hands to a receiver.
import { native } from './binding.js';

/** Command names of the send stream, as `btrfs receive --dump` knows them (in upper case). */
export type SendCommandName =
  | 'SUBVOL' | 'SNAPSHOT' | 'MKFILE' | 'MKDIR' | 'MKNOD' | 'MKFIFO' | 'MKSOCK' | 'SYMLINK' | 'RENAME' | 'LINK'
  | 'UNLINK' | 'RMDIR' | 'SET_XATTR' | 'REMOVE_XATTR' | 'WRITE' | 'CLONE' | 'TRUNCATE' | 'CHMOD' | 'CHOWN'
  | 'UTIMES' | 'END' | 'FALLOCATE' | 'FILEATTR' | 'ENCODED_WRITE';

/** A u64 of the stream: a number while exact (<= 2^53 - 1), else a bigint. */
export type SendU64 = number | bigint;

/** A timespec of the stream (UTIMES). */
export interface SendTime {
  sec: SendU64;
  nsec: number;
}

/**
 * One command of a send stream. Only the attributes present in the stream
 * are set. Paths are relative to the received subvolume ('' is its root) and
 * shown as UTF-8 (bytes that are not become U+FFFD).
 */
export interface DumpedCommand {
  /** 1-based index of the stream (header) in the input. */
  stream: number;
  /** 1-based index of the command in the whole input. */
  index: number;
  /** Byte offset of the command in the input. */
  offset: number;
  command: SendCommandName;
  path?: string;
  /** RENAME's new name. */
  pathTo?: string;
  /** SYMLINK's target, or LINK's existing file (PATH is the new name). */
  pathLink?: string;
  /** CLONE's source file, in the subvolume cloneUuid. */
  clonePath?: string;
  uuid?: string;
  cloneUuid?: string;
  ctransid?: SendU64;
  cloneCtransid?: SendU64;
  ino?: SendU64;
  size?: SendU64;
  mode?: SendU64;
  uid?: SendU64;
  gid?: SendU64;
  rdev?: SendU64;
  fileOffset?: SendU64;
  cloneOffset?: SendU64;
  cloneLen?: SendU64;
  /** Raw btrfs inode flags (FILEATTR). */
  fileattr?: SendU64;
  unencodedFileLen?: SendU64;
  unencodedLen?: SendU64;
  unencodedOffset?: SendU64;
  fallocateMode?: number;
  compression?: number;
  encryption?: number;
  atime?: SendTime;
  mtime?: SendTime;
  ctime?: SendTime;
  otime?: SendTime;
  /** Bytes of WRITE / ENCODED_WRITE data (the data itself is not copied out). */
  dataLength?: number;
  xattrName?: string;
  xattrData?: Buffer;
}

/**
 * Every command of the send stream(s) in `data`, checked as a receiver
 * checks them (framing, CRC32C, attributes, paths). Several streams back to
 * back (`btrfs send a b`) and several subvolumes in one stream (`send -e`)
 * are read; the END of each stream is listed. Synchronous: it parses memory.
 * Equivalent: `btrfs receive --dump` (which stops after the first stream).
 * @throws TypeError when `data` is not a Uint8Array (a Buffer is one).
 * @throws SendStreamError ERR_SEND_STREAM_TRUNCATED, ERR_SEND_STREAM_CHECKSUM,
 * ERR_SEND_STREAM_INVALID, ERR_SEND_STREAM_UNSUPPORTED (version 3+, --no-data).
 */
export function dumpSendStream(data: Uint8Array): DumpedCommand[] {
  if (!(data instanceof Uint8Array)) {
    throw Object.assign(new TypeError(`data must be a Uint8Array, got ${data === null ? 'null' : typeof data}`), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  }
  return native.dumpSendStream(data);
}
