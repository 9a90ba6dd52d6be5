import { checkBoolean, checkPath, typeError } from './args.js';
import { native } from './binding.js';
import type { Compression } from './types.js';

const COMPRESSIONS: ReadonlySet<string> = new Set(['zlib', 'lzo', 'zstd', 'none']);

/** Whether the subvolume at `path` is read-only. Equivalent: `btrfs property get PATH ro`. */
export function getReadonly(path: string): Promise<boolean> {
  return native.getReadonly(checkPath(path, 'path'));
}

/**
 * Makes a subvolume read-only (default) or writable; commits a transaction
 * when the state changes. `received_uuid` is kept: make a writable snapshot
 * of a received snapshot rather than flipping it (see docs/api.md).
 * @throws BtrfsError EINVAL (not a subvolume), EPERM (a send is using it).
 */
export function setReadonly(path: string, readonly = true): Promise<void> {
  return native.setReadonly(checkPath(path, 'path'), checkBoolean(readonly, 'readonly'));
}

/**
 * Clears the immutable and append-only flags (`chattr -i -a`) of a
 * subvolume's root, making it writable first when it is read-only (flags
 * cannot change on it otherwise): with either set, the subvolume can be
 * neither renamed nor deleted. Resolves to false, changing nothing, when
 * neither is set. Needs CAP_LINUX_IMMUTABLE.
 * @throws BtrfsError EINVAL (not a subvolume root).
 */
export function clearImmutable(path: string): Promise<boolean> {
  return native.clearImmutable(checkPath(path, 'path'));
}

/** Whether FS_NOCOW_FL is set on a file or directory. Equivalent: `lsattr -d` shows `C`. */
export function getNocow(path: string): Promise<boolean> {
  return native.getNocow(checkPath(path, 'path'));
}

/**
 * Sets (default) or clears FS_NOCOW_FL. On a directory, files created later
 * inherit it. Equivalent: `chattr +C`.
 * @throws BtrfsError EINVAL on a non-empty regular file (where the kernel would
 * silently ignore the change) or together with compression.
 */
export function setNocow(path: string, nocow = true): Promise<void> {
  return native.setNocow(checkPath(path, 'path'), checkBoolean(nocow, 'nocow'));
}

/** The `btrfs.compression` property of a file or directory, or null when unset. */
export function getCompression(path: string): Promise<string | null> {
  return native.getCompression(checkPath(path, 'path'));
}

/**
 * Sets the `btrfs.compression` property ('none' forbids compression), or
 * removes it with null. Files created later inherit it from a directory.
 * Equivalent: `btrfs property set PATH compression VALUE`.
 * @throws BtrfsError EROFS (read-only snapshot), EINVAL (NOCOW file).
 */
export function setCompression(path: string, value: Compression | null): Promise<void> {
  const abs = checkPath(path, 'path');
  if (value !== null && (typeof value !== 'string' || !COMPRESSIONS.has(value))) {
    throw typeError(`compression must be one of zlib, lzo, zstd, none or null, got ${JSON.stringify(value)}`, 'ERR_INVALID_ARG_VALUE');
  }
  return native.setCompression(abs, value);
}

/** Flushes and commits the filesystem holding `path` (BTRFS_IOC_SYNC). */
export function syncFilesystem(path: string): Promise<void> {
  return native.syncFilesystem(checkPath(path, 'path'));
}
