// Entries beneath a directory in batches (native/core/beneath_batch.h): one
// trip to a thread for a directory listed packed (packed.ts reads it), for
// many small files read, for many small files written (each under a
// temporary name, renamed into place as writeFileAt does), for a directory
// made with its owner and mode. Paths resolve beneath the directory fd with
// openat2 (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV), the
// last component never followed.
import { checkPath, typeError } from './args.js';
import type { ExpectedEntry } from './beneath.js';
import { native } from './binding.js';
import type { BtrfsError } from './errors.js';

function checkFd(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw typeError(`${name} must be an fd (an integer >= 0)`);
  return value;
}

function checkRelative(value: unknown, name: string): string {
  if (typeof value !== 'string') throw typeError(`${name} must be a string, got ${typeof value}`);
  if (value.includes('\0')) throw typeError(`${name} must not contain NUL bytes`, 'ERR_INVALID_ARG_VALUE');
  return value;
}

/** A directory listed packed: its own packed stat and `count` packed entries sorted by name (bytes). */
export interface PackedListing {
  self: Buffer;
  count: number;
  entries: Buffer;
}

/**
 * Opens directory `path` beneath `dir` (as openBeneath 'directory') and
 * lists it in one call, packed (packed.ts: PackedEntries reads it), its
 * entries sorted by name as Buffer.compare orders them. Each entry's lstat
 * (never followed), a symlink's target; an entry gone meanwhile is left out.
 * @throws BtrfsError as listBeneath.
 */
export function listBeneathPacked(dir: number | string, path: string): Promise<PackedListing> {
  const d = typeof dir === 'string' ? checkPath(dir, 'dir') : checkFd(dir, 'dir');
  return native.listBeneathPacked(d, checkRelative(path, 'path'));
}

/** What {@link readFilesBeneath} read. */
export interface FilesRead {
  /** Paths handled, from the first: a record each in `packed`. */
  done: number;
  /**
   * Per path: u8 kind (0 read whole and unchanged while read, 1 read whole
   * but changed while read, 2 not read), then for 0 and 1 the packed stat of
   * the file opened, u32 length and the bytes; for 2, u8 code length, the
   * errno's name, u16 message length and the message.
   */
  packed: Buffer;
  /** The path after the last handled when it is bigger than maxFile: open, its first maxFile bytes read; the caller reads on and closes `fd`. */
  big: { stat: Buffer; ctimeNs: bigint; data: Buffer; fd: number } | null;
}

/**
 * Reads regular files `paths` beneath `dirfd` (each as readFileBeneath:
 * never a FIFO or a device, never through a symlink) whole, in order, in one
 * call, until `maxBytes` of content or a file bigger than `maxFile`. A file
 * that cannot be read gets a record saying why.
 */
export function readFilesBeneath(dirfd: number, paths: readonly string[], options: { maxBytes: number; maxFile: number }): Promise<FilesRead> {
  const { maxBytes, maxFile } = options;
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || !Number.isInteger(maxFile) || maxFile < 1 || maxFile > 64 * 1024 * 1024) {
    throw typeError('maxBytes must be an integer >= 1, maxFile from 1 to 64 MiB', 'ERR_INVALID_ARG_VALUE');
  }
  return native.readFilesBeneath(checkFd(dirfd, 'dirfd'), paths.map((p, i) => checkRelative(p, `paths[${i}]`)), maxBytes, maxFile);
}

/** One file of {@link writeFilesBeneath}: its content is `length` bytes at `offset` of the data. */
export interface FileToWrite {
  /** Relative to the directory: "dir/name" or "name". */
  path: string;
  offset: number;
  length: number;
  uid: number;
  gid: number;
  /** Permission bits (07777). */
  mode: number;
  /** ns since the epoch. */
  mtime: bigint;
  /** Over what is there (only if it is still `expect`, when given), or only where nothing is. */
  replace: boolean;
  expect: ExpectedEntry | null;
  /** Resolve to its inode (else 0n for a file written: one fstat less). */
  inode?: boolean;
}

const SPEC_BYTES = 56;

/**
 * writeFileAt for each of `files` in one call: each written to a temporary
 * name `<tempPrefix><random hex>` in its directory (opened beneath `dirfd`),
 * its owner, mode and mtime set, then renamed into place (see writeFileAt:
 * `replace`, `expect`). Resolves to one result per file, in order: its new
 * inode (0n unless `inode` asked for it), null when `expect` no longer held
 * (nothing replaced), or the
 * BtrfsError that stopped it (that file only).
 */
export function writeFilesBeneath(dirfd: number, files: readonly FileToWrite[], data: Buffer, tempPrefix: string): Promise<Array<bigint | null | BtrfsError>> {
  const spec = Buffer.alloc(files.length * SPEC_BYTES);
  files.forEach((f, i) => {
    const at = i * SPEC_BYTES;
    if (!Number.isInteger(f.offset) || !Number.isInteger(f.length) || f.offset < 0 || f.length < 0 || f.offset + f.length > data.length) {
      throw typeError(`files[${i}]: offset and length must fall within data`, 'ERR_INVALID_ARG_VALUE');
    }
    spec.writeUInt32LE(f.offset, at);
    spec.writeUInt32LE(f.length, at + 4);
    spec.writeUInt32LE(f.uid, at + 8);
    spec.writeUInt32LE(f.gid, at + 12);
    spec.writeUInt32LE(f.mode & 0o7777, at + 16);
    spec.writeUInt32LE((f.replace ? 1 : 0) | (f.replace && f.expect ? 2 : 0) | (f.inode ? 4 : 0), at + 20);
    spec.writeBigInt64LE(f.mtime, at + 24);
    if (f.expect) {
      spec.writeBigUInt64LE(f.expect.ino, at + 32);
      spec.writeBigUInt64LE(BigInt(f.expect.size), at + 40);
      spec.writeBigInt64LE(f.expect.mtimeNs, at + 48);
    }
  });
  const prefix = checkRelative(tempPrefix, 'tempPrefix');
  if (prefix === '' || prefix.includes('/')) throw typeError('tempPrefix must be one name component', 'ERR_INVALID_ARG_VALUE');
  return native.writeFilesBeneath(checkFd(dirfd, 'dirfd'), files.map((f, i) => checkRelative(f.path, `files[${i}].path`)), spec, data, prefix);
}

/**
 * Makes directory `path` beneath `dirfd` (its parent resolved beneath it,
 * never through a symlink) with mode 0700, then gives it `uid`, `gid` and
 * `mode`, in one call.
 * @throws BtrfsError ('openat2', 'mkdirat', 'fchown', 'fchmod'): EEXIST when anything has that name.
 */
export function makeDirBeneath(dirfd: number, path: string, meta: { uid: number; gid: number; mode: number }): Promise<void> {
  return native.makeDirBeneath(checkFd(dirfd, 'dirfd'), checkRelative(path, 'path'), meta.uid, meta.gid, meta.mode & 0o7777);
}

