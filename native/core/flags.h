// Per-subvolume and per-inode switches: read-only, NOCOW, compression property.
// `_fd` forms act on an open fd; path forms open the entry (no final symlink).
#pragma once

#include <optional>
#include <string>

namespace bv::core {

/** subvolume_get_readonly_fd() - BTRFS_IOC_SUBVOL_GETFLAGS & BTRFS_SUBVOL_RDONLY (unprivileged). */
bool subvolume_get_readonly_fd(int fd, const std::string& path);
bool subvolume_get_readonly(const std::string& path);

/**
 * subvolume_set_readonly_fd() - BTRFS_IOC_SUBVOL_SETFLAGS. Commits a
 * transaction when the state changes (a no-op otherwise). received_uuid is
 * left alone (see the docs on received snapshots).
 */
void subvolume_set_readonly_fd(int fd, bool readonly, const std::string& path);
void subvolume_set_readonly(const std::string& path, bool readonly);

/**
 * subvolume_unprotect_fd() - clear FS_IMMUTABLE_FL and FS_APPEND_FL on the
 * root of the subvolume @fd (a subvolume root, else EINVAL), making it
 * writable first when it is read-only (its flags cannot change otherwise):
 * with either set, the subvolume can be neither renamed nor deleted.
 * Returns false, changing nothing, when neither is set.
 */
bool subvolume_unprotect_fd(int fd, const std::string& path);
bool subvolume_unprotect(const std::string& path);

/** inode_get_nocow_fd() - FS_NOCOW_FL of a file or directory (FS_IOC_GETFLAGS). */
bool inode_get_nocow_fd(int fd, const std::string& path);
bool inode_get_nocow(const std::string& path);

/**
 * inode_set_nocow_fd() - set or clear FS_NOCOW_FL. The kernel silently
 * ignores the change on a non-empty regular file; we read the flag back and
 * throw EINVAL (syscall FS_IOC_SETFLAGS) instead of reporting a success that
 * did not happen.
 */
void inode_set_nocow_fd(int fd, bool nocow, const std::string& path);
void inode_set_nocow(const std::string& path, bool nocow);

/** inode_get_compression_fd() - the btrfs.compression property, or nullopt when unset. */
std::optional<std::string> inode_get_compression_fd(int fd, const std::string& path);
std::optional<std::string> inode_get_compression(const std::string& path);

/**
 * inode_set_compression_fd() - set the btrfs.compression property ("zlib",
 * "lzo", "zstd", "none"), or remove it (nullopt) so the mount option applies.
 */
void inode_set_compression_fd(int fd, const std::optional<std::string>& value, const std::string& path);
void inode_set_compression(const std::string& path, const std::optional<std::string>& value);

}  // namespace bv::core
