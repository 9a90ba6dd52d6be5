// Btrfs quotas through ioctls (no btrfs-progs): turning them on (simple
// quotas or full qgroups), reading whether and how they are on, a
// subvolume's qgroup (usage and limit) and setting its limit. Everything is
// read from the quota tree (objectid 8) by tree search and addressed by
// subvolume id; a limit is set through an fd of the subvolume's root, so no
// name is looked up twice. Needs CAP_SYS_ADMIN.
//
// How the two kinds count (kernel 6.18, checked on loop filesystems):
// - full qgroups (BTRFS_QUOTA_CTL_ENABLE): `referenced` is what the
//   subvolume references, shared or not; `exclusive` what only it
//   references (what deleting it frees). Every commit walks the backrefs of
//   the extents changed: the cost grows with the number of snapshots.
// - simple quotas (BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA, Linux 6.7+): each
//   extent is charged to the subvolume that wrote it, for as long as it
//   lives anywhere (in a snapshot, a clone); `referenced` == `exclusive`. A
//   snapshot starts at (almost) 0 and so does a writable snapshot (a clone):
//   what it shares stays charged to its writer. Only extents written after
//   quotas were turned on are counted. No backref walk: cheap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bv::core {

enum class QuotaMode : uint8_t { Off = 0, Qgroup = 1, Simple = 2 };

/** What the quota tree's QGROUP_STATUS item says. */
struct QuotaStatus {
  QuotaMode mode = QuotaMode::Off;
  uint64_t flags = 0;       // BTRFS_QGROUP_STATUS_FLAG_*
  uint64_t generation = 0;
  uint64_t enable_gen = 0;  // simple quotas: extents older than this generation are not counted
  bool inconsistent = false;
  bool rescanning = false;
};

/** quota_status_fd() - quotas on the filesystem of @fd (any file or directory on it). */
QuotaStatus quota_status_fd(int fd, const std::string& path);
QuotaStatus quota_status(const std::string& path);

/**
 * quota_enable() - turn quotas of kind @mode (Qgroup or Simple) on for the
 * filesystem of @path, unless some kind is on already (the kernel then does
 * nothing, whatever kind was asked: the caller compares the mode returned).
 * Commits a transaction. Throws SysError BTRFS_IOC_QUOTA_CTL: EINVAL for
 * simple quotas on a kernel without them (before 6.7), EPERM without CAP_SYS_ADMIN.
 */
QuotaStatus quota_enable(const std::string& path, QuotaMode mode);

/** A qgroup's usage and limits (from its QGROUP_INFO and QGROUP_LIMIT items). */
struct Qgroup {
  uint64_t id = 0;  // level 0: the subvolume id
  uint64_t generation = 0;
  uint64_t referenced = 0, referenced_compressed = 0;
  uint64_t exclusive = 0, exclusive_compressed = 0;
  uint64_t limit_flags = 0;  // BTRFS_QGROUP_LIMIT_MAX_RFER (bit 0), _MAX_EXCL (bit 1), ...
  uint64_t max_referenced = 0, max_exclusive = 0;  // meaningful when their flag is set
};

/**
 * qgroup_of() - the level-0 qgroup of the subvolume rooted at @path, or
 * nullopt when it has none. Throws SysError: ENOTCONN when quotas are off,
 * EINVAL when @path is not a subvolume root, ENOTTY off btrfs.
 */
std::optional<Qgroup> qgroup_of(const std::string& path);

/**
 * qgroups_by_id() - the level-0 qgroups of subvolumes @ids on the
 * filesystem of @path, in the order of @ids (nullopt for one without a
 * qgroup), in two searches whatever their number. ENOTCONN when quotas are off.
 */
std::vector<std::optional<Qgroup>> qgroups_by_id(const std::string& path, const std::vector<uint64_t>& ids);

/** qgroup_of_id() - the level-0 qgroup of subvolume @id on the filesystem of @fd, or nullopt. ENOTCONN when quotas are off. */
std::optional<Qgroup> qgroup_of_id(int fd, uint64_t id, const std::string& path);

/**
 * qgroup_set_limit_by_id() - BTRFS_IOC_QGROUP_LIMIT of subvolume @id, issued
 * on @fd: a directory outside that subvolume (the ioctl's transaction
 * reserves metadata in the qgroup of @fd's subvolume, which a subvolume
 * over its limit refuses with EDQUOT).
 */
void qgroup_set_limit_by_id(int fd, uint64_t id, std::optional<uint64_t> max_referenced, const std::string& path);

/**
 * qgroup_set_limit() - BTRFS_IOC_QGROUP_LIMIT on the qgroup of the
 * subvolume rooted at @path: its referenced bytes limited to @max_referenced,
 * or no limit (nullopt). The kernel then refuses writes past it (EDQUOT).
 * Throws SysError: ENOTCONN when quotas are off, EINVAL when @path is not a
 * subvolume root, ENOENT when the subvolume has no qgroup.
 */
void qgroup_set_limit(const std::string& path, std::optional<uint64_t> max_referenced);

}  // namespace bv::core
