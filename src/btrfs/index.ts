/**
 * buttervolume/btrfs: BTRFS subvolumes from Node.js through the kernel's
 * ioctls; no process is ever spawned. See docs/api.md.
 */
export { BtrfsError, isBtrfsError } from './errors.js';
export type { BtrfsErrorFields } from './errors.js';
export {
  createSubvolume,
  deleteSubvolume,
  isSubvolume,
  listSubvolumes,
  nestedSubvolumes,
  snapshot,
  subvolumeInfo,
  waitForCleaner,
} from './subvolume.js';
export {
  getCompression,
  getNocow,
  getReadonly,
  setCompression,
  setNocow,
  setReadonly,
  syncFilesystem,
} from './flags.js';
export { lock } from './lock.js';
export { isBtrfs, renameExchange, renameNoReplace } from './paths.js';
export type * from './types.js';
