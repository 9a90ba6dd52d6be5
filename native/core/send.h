// Sending a read-only snapshot as a btrfs send stream (BTRFS_IOC_SEND): the
// kernel writes the whole stream into an fd (a pipe read by JS) and returns
// when it is done. Runs for minutes on a big volume: a thread of its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fd.h"

namespace bv::core {

struct SendOptions {
  /** The read-only snapshot to send. */
  Fd snapshot;
  std::string snapshot_path;
  /** Read-only parent for an incremental stream, or empty. Also a clone source. */
  Fd parent;
  std::string parent_path;
  /** More read-only clone sources. */
  std::vector<Fd> clone_sources;
  std::vector<std::string> clone_paths;
  /** 1 or 2 (0: the highest the kernel offers). */
  uint32_t protocol = 0;
  /** Send compressed extents as they are on disk (protocol 2). */
  bool compressed = false;
  /** Metadata only (UPDATE_EXTENT instead of data): for a size estimate, not receivable. */
  bool no_data = false;
};

/** send_protocol_max() - /sys/fs/btrfs/features/send_stream_version, 1 without it. */
uint32_t send_protocol_max();

/**
 * send_stream() - BTRFS_IOC_SEND of options.snapshot into @out_fd. The
 * snapshot, the parent and every clone source must be read-only subvolume
 * roots (EPERM naming the one that is not, before the kernel is asked).
 * Throws SysError (syscall BTRFS_IOC_SEND): EPIPE when the reader went away,
 * EPROTO for a protocol the kernel does not offer, EINVAL for compressed
 * with protocol 1.
 */
void send_stream(SendOptions& options, int out_fd);

}  // namespace bv::core
