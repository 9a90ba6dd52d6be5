// Reading ahead of a send. BTRFS_IOC_SEND reads each file's data itself, one
// file after the other, waiting for every read: on a snapshot whose data is
// not in the page cache (a new snapshot is not: its inodes are not the live
// volume's) a tree of small files makes it wait for one read after another,
// most of a send's time (docs/benchmarks.md). A thread beside it reads the
// snapshot's file extents in the order send visits them (the key order of
// the snapshot's tree; for an incremental stream only the extents written
// after the parent) and asks for their pages with readahead(2), at most a
// bounded number of bytes ahead of what the stream's reader has taken.
//
// Send drops the pages it read of files that had none cached, so that a send
// does not fill the page cache. It keeps those of a file it finds cached,
// which a read-ahead file now is: the pages read ahead of a file that had
// none are dropped here instead (POSIX_FADV_DONTNEED) once the stream is
// well past them, and those of a file that had some cached before are left
// alone. Telling them apart needs cachestat(2) (Linux 6.5): without it
// nothing is read ahead. Best effort throughout: nothing here fails a send.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fd.h"

namespace bv::core {

class SendPrefetch {
 public:
  SendPrefetch() = default;
  ~SendPrefetch();
  SendPrefetch(const SendPrefetch&) = delete;
  SendPrefetch& operator=(const SendPrefetch&) = delete;

  /**
   * start() - the reading thread, for the read-only snapshot @snapshot (an
   * fd of its own, kept) sent in full (@newer_than 0) or incrementally from
   * a parent created in transaction @newer_than: only the extents written
   * after it are read ahead. Nothing when cachestat(2) is missing. Once.
   */
  void start(Fd snapshot, uint64_t newer_than);
  /** The stream's reader has taken @streamed bytes so far (any thread). */
  void advance(uint64_t streamed);
  /** The send is over: stops reading, drops what was read ahead and is left, joins. Idempotent. */
  void stop();
  /** Bytes asked for with readahead(2) (for tests and benches). */
  uint64_t prefetched() const;

  /** Whether this kernel has cachestat(2), without which nothing is read ahead. */
  static bool available();

 private:
  struct Ahead {
    uint64_t until;    // the prefetched count once its last byte was asked for
    std::string path;  // relative to the snapshot's root
  };

  void run();
  bool visit_extent(uint64_t ino, uint64_t offset, const uint8_t* item, uint32_t len);
  bool open_file(uint64_t ino);
  /** Waits until @bytes more may be read ahead; false once stopped. */
  bool wait_for_room(uint64_t bytes);
  /** Waits (@lock held) until the reader has gone past @seen bytes or the send is over. */
  void wait_moved(std::unique_lock<std::mutex>& lock, uint64_t seen);
  /** Drops the pages of read-ahead files the stream is past (@all: every one). */
  void drop_passed(bool all);
  /** Drops again, for a while, the files whose pages were still being read at the last drop. */
  void drop_in_flight();

  Fd snapshot_;
  uint64_t newer_than_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable moved_;
  uint64_t streamed_ = 0;
  uint64_t prefetched_ = 0;
  bool stopped_ = false;
  // The reading thread's own (not shared):
  uint64_t current_ino_ = 0;
  Fd current_;
  bool current_cold_ = false;
  std::deque<Ahead> ahead_;
  size_t ahead_bytes_ = 0;  // of the paths in ahead_
  std::vector<std::string> in_flight_;
};

}  // namespace bv::core
