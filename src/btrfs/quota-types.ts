// What the quota functions of quota.ts return (apart, so the addon's
// typing in binding.ts can name them without a cycle).

/** The kind of quotas on a filesystem: none, full qgroups, or simple quotas (Linux 6.7+). */
export type QuotaMode = 'off' | 'qgroup' | 'simple';

/** What the quota tree's status item says. */
export interface QuotaStatus {
  mode: QuotaMode;
  /** BTRFS_QGROUP_STATUS_FLAG_* (ON 1, RESCAN 2, INCONSISTENT 4, SIMPLE_MODE 8). */
  flags: number;
  /** Full qgroups only: the numbers are not to be trusted until a rescan. */
  inconsistent: boolean;
  /** Full qgroups only: a rescan is running. */
  rescanning: boolean;
  /** Simple quotas: the generation they were turned on at (older extents are not counted); 0 otherwise. */
  enableGeneration: number;
}

/**
 * A subvolume's qgroup (level 0). Numbers are those of the last transaction
 * commit: sync the filesystem first for what was written since.
 */
export interface Qgroup {
  /** The subvolume id. */
  id: number;
  generation: number;
  /** Full qgroups: bytes the subvolume references. Simple quotas: bytes of the extents it wrote that still exist anywhere (equal to `exclusive`). */
  referenced: number;
  referencedCompressed: number;
  /** Full qgroups: bytes only this subvolume references (what deleting it frees). Simple quotas: as `referenced`. */
  exclusive: number;
  exclusiveCompressed: number;
  /** The limit of `referenced` (BTRFS_QGROUP_LIMIT_MAX_RFER), or null. */
  maxReferenced: number | null;
  /** The limit of `exclusive`, or null (buttervolume never sets one). */
  maxExclusive: number | null;
}

/** What a subvolume's files' extents add up to (see {@link extentUsage}). */
export interface ExtentUsage {
  /** Bytes of data extents no other subvolume or file references: what deleting the subvolume frees. */
  exclusive: number;
  /** Bytes of all its files' data extents. */
  referenced: number;
  /** Regular files read (a hard-linked file once). */
  files: number;
}
