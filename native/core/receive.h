// Receiving btrfs send streams in-process: the commands the reader hands out
// (send_stream.h) applied with fd-relative syscalls to a subvolume created
// under a temporary name in the destination directory, marked received,
// made read-only and renamed into place only when complete. On any failure
// the partial subvolume is deleted. Every path stays inside the subvolume
// being received (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_XDEV for every parent, *at() calls without following the
// last component); parents and clone sources are only subvolumes directly
// inside the directories the caller allows, and a parent must be unchanged
// since it was received (stricter than btrfs receive). Needs CAP_SYS_ADMIN.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fd.h"
#include "send_stream.h"
#include "sys_error.h"

namespace bv::core {

/** A directory the receiver may take parents and clone sources from (its direct subvolumes). */
struct AllowedDir {
  Fd fd;
  std::string path;
};

struct ReceiveOptions {
  /** Where the subvolumes go (also an allowed directory). */
  Fd dest;
  std::string dest_path;
  /** More directories whose direct subvolumes may be parents and clone sources. */
  std::vector<AllowedDir> allowed;
  /** Temporary names are `<temp_prefix>.<n>` in the destination (a leftover after a crash is the caller's to clean). */
  std::string temp_prefix;
  /** Decompress ENCODED_WRITE data in-process instead of trying the ioctl (tests the fallback). */
  bool force_decompress = false;
  /**
   * The one subvolume the input may hold, when set: a SUBVOL or SNAPSHOT of
   * another name, or a second one, is refused (ERR_RECEIVE_UNEXPECTED)
   * before anything of it is created, and the subvolume is renamed into
   * place only once the input has ended (so a refused input leaves nothing).
   */
  std::optional<std::string> expect_name;
  /**
   * Free space to leave on the destination's filesystem: a command that
   * would allocate past it is refused (ERR_RECEIVE_NO_SPACE) before it is
   * applied; 0 = no limit. See receive_space.h.
   */
  uint64_t reserve_bytes = 0;
};

/** One subvolume received. */
struct ReceivedSubvol {
  std::string name;
  std::array<uint8_t, 16> uuid{}, received_uuid{}, parent_uuid{};
  uint64_t ctransid = 0;
  uint64_t commands = 0;
};

/** A system call that failed while applying a command: the SysError plus which command. */
struct ReceiveSysError : SysError {
  ReceiveSysError(const SysError& err, uint64_t command, uint16_t command_type);
  uint64_t command;
  uint16_t command_type;
};

/**
 * receive() - read every stream of @source and apply it under options.dest.
 * Throws StreamError (a bad stream; also codes ERR_RECEIVE_* for a stream
 * the destination cannot take: ERR_RECEIVE_PARENT_NOT_FOUND,
 * ERR_RECEIVE_PARENT_MODIFIED, ERR_RECEIVE_CLONE_SOURCE, ERR_RECEIVE_ABORTED,
 * ERR_RECEIVE_UNEXPECTED, ERR_RECEIVE_NO_SPACE),
 * ReceiveSysError (a syscall failed applying a command), SysError (setup or
 * finishing; EEXIST when the name is already taken). Subvolumes completed
 * before the failing one stay; the failing one is deleted.
 */
std::vector<ReceivedSubvol> receive(ByteSource& source, ReceiveOptions& options);

}  // namespace bv::core
