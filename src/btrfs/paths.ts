import { statfs as statfsCallback } from 'node:fs';
import { promisify } from 'node:util';

import { checkPath } from './args.js';
import { native } from './binding.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;
// Not node:fs/promises: it loads some 25 internal modules the CLI's short commands never need.
const statfs = promisify(statfsCallback);

/**
 * Whether `path` is on a btrfs filesystem (statfs magic).
 * @throws Error ENOENT and other stat errors, as fs.statfs does.
 */
export async function isBtrfs(path: string): Promise<boolean> {
  const { type } = await statfs(checkPath(path, 'path'));
  return type === BTRFS_SUPER_MAGIC;
}

/**
 * Renames `from` to `to`, failing with EEXIST rather than replacing an
 * existing `to` (renameat2 RENAME_NOREPLACE). Works for subvolumes.
 * @throws BtrfsError EEXIST, ENOENT, EXDEV.
 */
export function renameNoReplace(from: string, to: string): Promise<void> {
  return native.renameNoReplace(checkPath(from, 'from'), checkPath(to, 'to'));
}

/**
 * Atomically swaps the names `a` and `b` (renameat2 RENAME_EXCHANGE): there
 * is no moment where either name is missing. Works for subvolumes.
 * @throws BtrfsError ENOENT (either missing), EXDEV.
 */
export function renameExchange(a: string, b: string): Promise<void> {
  return native.renameExchange(checkPath(a, 'a'), checkPath(b, 'b'));
}
