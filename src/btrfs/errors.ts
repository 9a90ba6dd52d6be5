import { getSystemErrorMap } from 'node:util';
import { nameErrorClass } from '../util/error-name.js';

const BRAND = Symbol.for('buttervolume.BtrfsError');

/** Fields the native addon passes when it builds an error. */
export interface BtrfsErrorFields {
  /** Negative errno, as in Node's own fs errors. */
  errno: number;
  /** errno name: 'EEXIST', 'ENOENT', ... */
  code: string;
  /** The failing step: 'open', 'statfs', 'BTRFS_IOC_SNAP_CREATE_V2', ... */
  syscall: string;
  path: string;
  dest?: string;
  /** receive(): the 1-based index of the stream's command being applied when the syscall failed. */
  command?: number;
  /** receive(): that command's name: 'WRITE', 'RENAME', ... */
  commandName?: string;
}

/** Clearer words than strerror for what an errno means at a given btrfs step. */
function describe(code: string, syscall: string, errno: number): string {
  const ioctl = syscall.startsWith('BTRFS_IOC_');
  if (code === 'ENOTTY' && ioctl) return 'not a btrfs filesystem';
  if (syscall === 'BTRFS_IOC_QUOTA_CTL' && code === 'EINVAL') return 'this kernel has no simple quotas (Linux 6.7 or later)';
  if (code === 'ENOTCONN' && (syscall === 'BTRFS_IOC_QGROUP_LIMIT' || syscall === 'BTRFS_IOC_TREE_SEARCH_V2')) return 'quotas are not enabled on this filesystem';
  if (code === 'EINVAL') {
    if (syscall === 'BTRFS_IOC_SNAP_CREATE_V2') return 'source is not a btrfs subvolume';
    if (syscall === 'fsetxattr') return 'compression cannot be set on a NOCOW file or directory';
    if (syscall === 'FS_IOC_SETFLAGS') return 'NOCOW can only change on an empty file or a directory without compression';
    if (syscall === 'openat2') return 'not a regular file (a FIFO, socket or device is never opened)';
    if (ioctl) return 'not a btrfs subvolume';
  }
  if (code === 'ENOTEMPTY' && syscall === 'BTRFS_IOC_SNAP_DESTROY') {
    return 'subvolume contains other subvolumes (delete with recursive)';
  }
  if (code === 'EPERM' && (syscall === 'BTRFS_IOC_SNAP_DESTROY' || syscall === 'BTRFS_IOC_SUBVOL_SETFLAGS')) {
    return 'operation not permitted (needs CAP_SYS_ADMIN, or a send is using the subvolume)';
  }
  if (syscall === 'openat2') {
    if (code === 'ELOOP') return 'a symbolic link on the path (never followed)';
    if (code === 'EXDEV') return 'the path leaves its directory (absolute, "..", or a mount point)';
  }
  if (code === 'EAGAIN' && syscall === 'flock') return 'locked by another operation';
  if (code === 'ETIMEDOUT' && syscall === 'flock') return 'timed out waiting for the lock';
  const known = getSystemErrorMap().get(errno);
  return known ? known[1] : 'unknown error';
}

/**
 * A failed filesystem operation, shaped like Node's fs errors:
 * `EEXIST: file already exists, BTRFS_IOC_SNAP_CREATE_V2 '/v/a' -> '/v/b'`.
 */
export class BtrfsError extends Error {
  declare readonly errno: number;
  declare readonly code: string;
  declare readonly syscall: string;
  declare readonly path: string;
  declare readonly dest?: string;
  /** Set by receive(): the command being applied (see {@link BtrfsErrorFields}). */
  declare readonly command?: number;
  declare readonly commandName?: string;

  constructor(fields: BtrfsErrorFields) {
    const { errno, code, syscall, path, dest } = fields;
    let message = `${code}: ${describe(code, syscall, errno)}, ${syscall} '${path}'`;
    if (dest !== undefined) message += ` -> '${dest}'`;
    super(message);
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    this.path = path;
    if (dest !== undefined) this.dest = dest;
    if (fields.command !== undefined) this.command = fields.command;
    if (fields.commandName !== undefined) this.commandName = fields.commandName;
    Error.captureStackTrace?.(this, BtrfsError);
  }

  /** Builds an error for a given errno name (used by the TS layer itself). */
  static fromCode(code: string, syscall: string, path: string): BtrfsError {
    const entry = [...getSystemErrorMap()].find(([, [name]]) => name === code);
    return new BtrfsError({ errno: entry ? entry[0] : 0, code, syscall, path });
  }
}

nameErrorClass(BtrfsError, 'BtrfsError');
Object.defineProperty(BtrfsError.prototype, BRAND, { value: true, enumerable: false });

/** True for a BtrfsError from any copy of this module (works across realms). */
export function isBtrfsError(value: unknown): value is BtrfsError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

const STREAM_BRAND = Symbol.for('buttervolume.SendStreamError');

/** Why a send stream was refused. */
export type SendStreamErrorCode =
  /** The input ends early: empty, inside a header or a command, or before END. */
  | 'ERR_SEND_STREAM_TRUNCATED'
  /** A command's CRC32C does not match: corrupted in transit or on disk. */
  | 'ERR_SEND_STREAM_CHECKSUM'
  /** Malformed: bad magic, unknown command, bad attribute, unsafe path... */
  | 'ERR_SEND_STREAM_INVALID'
  /** Well-formed but not something we receive: version 3+, a --no-data stream. */
  | 'ERR_SEND_STREAM_UNSUPPORTED'
  /** receive(): no usable parent or clone source, or it changed since (see docs/api.md). */
  | 'ERR_RECEIVE_PARENT_NOT_FOUND'
  | 'ERR_RECEIVE_PARENT_MODIFIED'
  | 'ERR_RECEIVE_CLONE_SOURCE'
  /** receive(): the input was destroyed or failed. */
  | 'ERR_RECEIVE_ABORTED'
  /** receive(): another subvolume than `expectName`, or a second one. */
  | 'ERR_RECEIVE_UNEXPECTED'
  /** receive(): applying the command would leave less free space than `reserveBytes`. */
  | 'ERR_RECEIVE_NO_SPACE';

/** Fields the native addon passes when it builds a SendStreamError. */
export interface SendStreamErrorFields {
  code: SendStreamErrorCode;
  /** What is wrong, without the location: 'bad checksum'. */
  reason: string;
  /** 1-based index of the command in the whole input; 0 for a stream header. */
  command: number;
  /** The command's number as read, when its header was read. */
  commandType?: number;
  /** 'WRITE', 'RENAME', ... ('UNKNOWN' for a number that is none). */
  commandName?: string;
  /** The command's PATH when known, control bytes escaped. */
  path?: string;
  /** Byte offset of that command (or header) in the input. */
  offset: number;
}

/**
 * A send stream the reader refused, before any of the offending command was
 * acted on: `ERR_SEND_STREAM_CHECKSUM: bad checksum, command 37 (WRITE 'a/b')`.
 */
export class SendStreamError extends Error {
  declare readonly code: SendStreamErrorCode;
  declare readonly reason: string;
  declare readonly command: number;
  declare readonly commandType?: number;
  declare readonly commandName?: string;
  declare readonly path?: string;
  declare readonly offset: number;

  constructor(fields: SendStreamErrorFields) {
    const { code, reason, command, commandType, commandName, path, offset } = fields;
    let where = 'stream header';
    if (command !== 0) {
      where = `command ${command}`;
      if (commandName !== undefined) where += ` (${commandName}${path !== undefined ? ` '${path}'` : ''})`;
    }
    super(`${code}: ${reason}, ${where}`);
    this.code = code;
    this.reason = reason;
    this.command = command;
    if (commandType !== undefined) this.commandType = commandType;
    if (commandName !== undefined) this.commandName = commandName;
    if (path !== undefined) this.path = path;
    this.offset = offset;
    Error.captureStackTrace?.(this, SendStreamError);
  }
}

nameErrorClass(SendStreamError, 'SendStreamError');
Object.defineProperty(SendStreamError.prototype, STREAM_BRAND, { value: true, enumerable: false });

/** True for a SendStreamError from any copy of this module (works across realms). */
export function isSendStreamError(value: unknown): value is SendStreamError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[STREAM_BRAND] === true;
}
