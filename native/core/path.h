// Paths as the core resolves them. A path names an ENTRY: the directories
// above it are followed like any path (they are the caller's), but a
// symbolic link as the last component is never followed, so a symlink in a
// volume or snapshot directory can never make an operation act on what it
// points to. Every fd is a real one (ioctls fail on O_PATH fds), close-on-exec,
// opened without atime updates when we may skip them.
#pragma once

#include <string>

#include "fd.h"

namespace bv::core {

/** An entry opened for a "parent fd + name" operation. */
struct ParentAndName {
  Fd parent;         // the directory holding the entry (symlinks above it followed)
  std::string name;  // one component, never "." or ".."; "." only for the root "/"
};

/**
 * path_open_parent() - open the directory holding @path and return it with
 * the last component. Trailing slashes are ignored. Throws SysError: EINVAL
 * (syscall "open") for an empty path or a last component of "." or "..",
 * ENAMETOOLONG for a component over 255 bytes, and the open(2) errors of the
 * parent directory. The root "/" gives the root directory and name ".".
 */
ParentAndName path_open_parent(const std::string& path);

/** dir_open() - open directory @path, following symlinks (a place to work in, not an entry). */
Fd dir_open(const std::string& path);

/**
 * dir_open_at() - open directory @name below @dirfd without following a
 * symlink at @name (ELOOP) - the entry form of every core operation.
 */
Fd dir_open_at(int dirfd, const std::string& name, const std::string& path_for_errors);

/** entry_open_at() - open file or directory @name below @dirfd read-only, no symlink, never blocking on a FIFO. */
Fd entry_open_at(int dirfd, const std::string& name, const std::string& path_for_errors);

/** dir_open_entry() - path_open_parent() + dir_open_at(): open directory entry @path. */
Fd dir_open_entry(const std::string& path);

/** entry_open() - path_open_parent() + entry_open_at(): open file or directory entry @path. */
Fd entry_open(const std::string& path);

/** fs_is_btrfs_fd() - whether @fd lives on a btrfs filesystem (fstatfs magic). */
bool fs_is_btrfs_fd(int fd, const std::string& path_for_errors);

/**
 * subvolume_require_root_fd() - throw unless @fd is the root directory of a
 * subvolume: ENOTTY (with @syscall) when not on btrfs, EINVAL otherwise.
 */
void subvolume_require_root_fd(int fd, const char* syscall, const std::string& path);

/** fd_dup() - a close-on-exec duplicate of @fd. */
Fd fd_dup(int fd, const std::string& path_for_errors);

/** path_join() - @dir + "/" + @name, for error messages. */
std::string path_join(const std::string& dir, const std::string& name);

}  // namespace bv::core
