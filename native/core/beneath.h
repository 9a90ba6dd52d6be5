// Entries of a tree someone else controls (a container's volume), reached
// only from a directory fd: a relative path resolves with openat2(
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV), so no component can be "..", a symlink, a magic link or a
// mount point, and the last component is never followed either (O_NOFOLLOW,
// or O_CREAT | O_EXCL). A path swapped for a symlink between two calls makes
// the second one fail with ELOOP instead of reaching outside. A FIFO or a
// device is never opened: a read open looks at the entry through O_PATH first
// and reopens it (through /proc/self/fd) only when it is a regular file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

#include "fd.h"

namespace bv::core {

/** What entry_open_beneath_at() opens, and how. */
enum class BeneathOpen {
  read,       // a regular file, O_RDONLY (EISDIR for a directory, ELOOP for a symlink, EINVAL for anything else)
  directory,  // a directory, O_RDONLY | O_DIRECTORY (ENOTDIR for anything else, a symlink included)
  create,     // a new regular file, O_WRONLY | O_CREAT | O_EXCL with @mode (EEXIST whatever is there)
};

/**
 * entry_open_beneath_at() - open @path, relative to directory @dirfd ("" or
 * "." is @dirfd itself), without leaving @dirfd's tree and without following
 * any symlink. Close-on-exec; reads and directories without atime updates
 * when allowed. Throws SysError (syscall "openat2", path @shown): EXDEV for an
 * absolute path, a ".." above @dirfd or a mount point on the way, ELOOP for a
 * symlink anywhere on the path, ENOENT, ENOTDIR, EISDIR, EEXIST, EINVAL (not
 * a regular file, for a read), ENOSYS before Linux 5.6.
 */
Fd entry_open_beneath_at(int dirfd, const std::string& path, BeneathOpen how, mode_t mode, const std::string& shown);

/** entry_open_beneath() - the same below directory @dir, a path followed like any (the caller's place). */
Fd entry_open_beneath(const std::string& dir, const std::string& path, BeneathOpen how, mode_t mode);

/**
 * fd_describe() - what @fd is now (readlink of /proc/self/fd/<fd>), joined
 * with @path: for messages only, never resolved again.
 */
std::string fd_describe(int fd, const std::string& path);

/** Nanoseconds since the epoch. */
using TimeNs = int64_t;

/**
 * entry_set_times_at() - set the access and modification times of entry
 * @name of directory @dirfd, never following a symlink (a symlink's own times
 * are set); @name is one component, or "" for @dirfd itself. A time left out
 * is not changed. Throws SysError (syscall "utimensat", path @shown).
 */
void entry_set_times_at(int dirfd, const std::string& name, std::optional<TimeNs> atime,
                        std::optional<TimeNs> mtime, const std::string& shown);

/** fd_set_times() - entry_set_times_at(@fd, ""): the times of the open file or directory @fd. */
void fd_set_times(int fd, std::optional<TimeNs> atime, std::optional<TimeNs> mtime, const std::string& shown);

}  // namespace bv::core
