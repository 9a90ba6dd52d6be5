// Quotas: turning them on, reading a subvolume's usage and limit, setting
// the limit, and what deleting a snapshot would free. Ioctls of
// native/core/quota.cc and native/core/extent_usage.cc (see there how simple
// quotas and full qgroups count).
import { checkPath, typeError } from './args.js';
import { native } from './binding.js';
import type { ExtentUsage, Qgroup, QuotaMode, QuotaStatus } from './quota-types.js';

export type { ExtentUsage, Qgroup, QuotaMode, QuotaStatus } from './quota-types.js';

/**
 * The quotas of the filesystem holding `path`, from the quota tree (root).
 * Equivalent: `btrfs qgroup show` (whether it says quotas are off).
 * @throws BtrfsError ENOTTY (not btrfs), EPERM (not root).
 */
export function quotaStatus(path: string): Promise<QuotaStatus> {
  return native.quotaStatus(checkPath(path, 'path'));
}

/**
 * Turns quotas of kind `mode` on for the filesystem holding `path`, unless
 * some kind is on already: then nothing changes (compare the mode
 * returned). Equivalent: `btrfs quota enable [--simple]`.
 * @throws BtrfsError EINVAL (`simple` on a kernel before 6.7), EPERM, ENOTTY.
 */
export function enableQuotas(path: string, mode: Exclude<QuotaMode, 'off'>): Promise<QuotaStatus> {
  if (mode !== 'simple' && mode !== 'qgroup') throw typeError('mode must be "simple" or "qgroup"', 'ERR_INVALID_ARG_VALUE');
  return native.quotaEnable(checkPath(path, 'path'), mode);
}

/**
 * The qgroup of the subvolume rooted at `path`, or null when it has none.
 * Equivalent: `btrfs qgroup show -re` of its line.
 * @throws BtrfsError ENOTCONN (quotas off), EINVAL (not a subvolume root), ENOTTY.
 */
export function qgroupOf(path: string): Promise<Qgroup | null> {
  return native.qgroupOf(checkPath(path, 'path'));
}

/** The qgroups of subvolumes `ids` of the filesystem holding `path`, in that order (null: none). @throws BtrfsError ENOTCONN (quotas off). */
export function qgroupsById(path: string, ids: readonly number[]): Promise<Array<Qgroup | null>> {
  if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id) && id >= 0)) throw typeError('ids must be an array of subvolume ids');
  return native.qgroupsById(checkPath(path, 'path'), [...ids]);
}

/**
 * Limits the referenced bytes of the subvolume rooted at `path` to `bytes`
 * (null: no limit); writes past it then fail with EDQUOT. Equivalent:
 * `btrfs qgroup limit <bytes|none> <path>`. Works on a subvolume already
 * over its limit (the ioctl is issued on its parent directory).
 * @throws BtrfsError ENOTCONN (quotas off), EINVAL (not a subvolume root), ENOENT (no qgroup).
 */
export function setQgroupLimit(path: string, bytes: number | null): Promise<void> {
  if (bytes !== null && !(Number.isSafeInteger(bytes) && bytes >= 0)) throw typeError('bytes must be a whole number of bytes or null', 'ERR_INVALID_ARG_VALUE');
  return native.qgroupSetLimit(checkPath(path, 'path'), bytes);
}

/**
 * What deleting the subvolume rooted at `path` (a read-only snapshot) would
 * free, from its files' extents (FIEMAP's SHARED flag): reads every
 * directory and file of it, so it costs in proportion to its files. Logical
 * sizes (a compressed extent counts uncompressed); metadata is not counted.
 * Equivalent: the "Exclusive" of `btrfs filesystem du -s`.
 * @throws BtrfsError EINVAL (not a subvolume root), ENOTTY.
 */
export function extentUsage(path: string): Promise<ExtentUsage> {
  return native.extentUsage(checkPath(path, 'path'));
}
