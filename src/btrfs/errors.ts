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
}

/** Clearer words than strerror for what an errno means at a given btrfs step. */
function describe(code: string, syscall: string, errno: number): string {
  const ioctl = syscall.startsWith('BTRFS_IOC_');
  if (code === 'ENOTTY' && ioctl) return 'not a btrfs filesystem';
  if (code === 'EINVAL') {
    if (syscall === 'BTRFS_IOC_SNAP_CREATE_V2') return 'source is not a btrfs subvolume';
    if (syscall === 'fsetxattr') return 'compression cannot be set on a NOCOW file or directory';
    if (syscall === 'FS_IOC_SETFLAGS') return 'NOCOW can only change on an empty file or a directory without compression';
    if (ioctl) return 'not a btrfs subvolume';
  }
  if (code === 'ENOTEMPTY' && syscall === 'BTRFS_IOC_SNAP_DESTROY') {
    return 'subvolume contains other subvolumes (delete with recursive)';
  }
  if (code === 'EPERM' && (syscall === 'BTRFS_IOC_SNAP_DESTROY' || syscall === 'BTRFS_IOC_SUBVOL_SETFLAGS')) {
    return 'operation not permitted (needs CAP_SYS_ADMIN, or a send is using the subvolume)';
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
