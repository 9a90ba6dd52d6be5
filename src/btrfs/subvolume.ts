import { join } from 'node:path';

import { checkOptions, checkPath } from './args.js';
import { native } from './binding.js';
import type {
  CreateSubvolumeOptions,
  DeleteSubvolumeOptions,
  ListedSubvolume,
  NestedSubvolume,
  SnapshotOptions,
  SubvolumeInfo,
} from './types.js';

/**
 * Whether `path` is the root of a btrfs subvolume: btrfs magic AND inode 256
 * AND a directory. False for a missing path or one on another filesystem.
 * @throws BtrfsError for other failures (EACCES...).
 */
export function isSubvolume(path: string): Promise<boolean> {
  return native.isSubvolume(checkPath(path, 'path'));
}

/**
 * Creates an empty subvolume. Equivalent: `btrfs subvolume create` (+ `chattr +C`).
 * @throws BtrfsError EEXIST, ENOENT (parent missing), ENOTTY (not btrfs), EROFS.
 */
export function createSubvolume(path: string, options?: CreateSubvolumeOptions): Promise<void> {
  const { nocow = false } = checkOptions<CreateSubvolumeOptions>(options, { nocow: 'boolean' }, 'createSubvolume');
  return native.createSubvolume(checkPath(path, 'path'), nocow);
}

/**
 * Snapshots subvolume `source` at `dest` (BTRFS_IOC_SNAP_CREATE_V2).
 * Equivalent: `btrfs subvolume snapshot [-r] source dest`.
 * @throws BtrfsError EEXIST, EINVAL (source not a subvolume), EXDEV, EROFS, ENOENT.
 */
export function snapshot(source: string, dest: string, options?: SnapshotOptions): Promise<void> {
  const { readonly = false } = checkOptions<SnapshotOptions>(options, { readonly: 'boolean' }, 'snapshot');
  return native.snapshot(checkPath(source, 'source'), checkPath(dest, 'dest'), readonly);
}

/**
 * Deletes a subvolume. Equivalent: `btrfs subvolume delete`. The space is
 * freed later by the kernel's cleaner.
 * @throws BtrfsError ENOENT, EINVAL (not a subvolume), ENOTEMPTY (nested
 * subvolumes without `recursive`), EPERM.
 */
export function deleteSubvolume(path: string, options?: DeleteSubvolumeOptions): Promise<void> {
  const { recursive = false } = checkOptions<DeleteSubvolumeOptions>(options, { recursive: 'boolean' }, 'deleteSubvolume');
  return native.deleteSubvolume(checkPath(path, 'path'), recursive);
}

/**
 * What the kernel knows about the subvolume rooted at `path`.
 * Equivalent: `btrfs subvolume show`.
 * @throws BtrfsError ENOENT, EINVAL (not a subvolume root), ENOTTY (not btrfs).
 */
export function subvolumeInfo(path: string): Promise<SubvolumeInfo> {
  return native.subvolumeInfo(checkPath(path, 'path'));
}

/**
 * The subvolumes directly inside directory `dir`, sorted by name, in one
 * native call (one open + one ioctl per entry).
 * @throws BtrfsError ENOENT, ENOTDIR, ENOTTY (not btrfs).
 */
export async function listSubvolumes(dir: string): Promise<ListedSubvolume[]> {
  const abs = checkPath(dir, 'dir');
  const entries = await native.listSubvolumes(abs);
  return entries.map((e) => Object.assign(e, { path: join(abs, e.name) }));
}

/**
 * Every subvolume below the subvolume rooted at `path`, at any depth, parents
 * first, found in the root tree by id (needs root). Equivalent: `btrfs
 * subvolume list -o`, recursively.
 * @throws BtrfsError EINVAL (not a subvolume root), EPERM (not root), ENOTTY.
 */
export function nestedSubvolumes(path: string): Promise<NestedSubvolume[]> {
  return native.nestedSubvolumes(checkPath(path, 'path'));
}

/**
 * Commits the filesystem of `path` and waits until the kernel has finished
 * cleaning deleted subvolumes (BTRFS_IOC_SUBVOL_SYNC_WAIT, Linux 6.13+; on
 * older kernels only the commit). Used by benchmarks and tests.
 */
export function waitForCleaner(path: string): Promise<void> {
  return native.waitForCleaner(checkPath(path, 'path'));
}
