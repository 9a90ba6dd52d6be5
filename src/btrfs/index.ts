/**
 * buttervolume/btrfs: BTRFS subvolumes from Node.js through the kernel's
 * ioctls; no process is ever spawned. See docs/api.md.
 */
export { BtrfsError, isBtrfsError, SendStreamError, isSendStreamError } from './errors.js';
export type { BtrfsErrorFields, SendStreamErrorCode, SendStreamErrorFields } from './errors.js';
export {
  createSubvolume,
  deleteSubvolume,
  isSubvolume,
  listSubvolumeNames,
  listSubvolumes,
  nestedSubvolumes,
  snapshot,
  subvolumeInfo,
  waitForCleaner,
} from './subvolume.js';
export {
  clearImmutable,
  getCompression,
  getNocow,
  getReadonly,
  setCompression,
  setNocow,
  setReadonly,
  syncFilesystem,
} from './flags.js';
export { lock } from './lock.js';
export { receive } from './receive.js';
export { send, sendProtocolMax } from './send.js';
export { isBtrfs, renameExchange, renameNoReplace } from './paths.js';
export { listBeneath, openBeneath, readFileBeneath, setTimesAt, writeFileAt } from './beneath.js';
export { listBeneathPacked, makeDirBeneath, readFilesBeneath, writeFilesBeneath, type FilesRead, type FileToWrite, type PackedListing } from './beneath-batch.js';
export { PACKED_STAT_BYTES, PackedEntries, PackedEntryError, readPackedStat, type PackedStatFields } from './packed.js';
export type { BeneathHow, BeneathRead, ExpectedEntry, FileMeta, WriteFileAtOptions } from './beneath.js';
export { dumpSendStream } from './send-stream.js';
export { enableQuotas, extentUsage, qgroupOf, qgroupsById, quotaStatus, setQgroupLimit } from './quota.js';
export type { ExtentUsage, Qgroup, QuotaMode, QuotaStatus } from './quota.js';
export type { DumpedCommand, SendCommandName, SendTime, SendU64 } from './send-stream.js';
export type * from './types.js';
