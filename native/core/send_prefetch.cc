#include "send_prefetch.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>
#include <cerrno>
#include <cstring>

#include "beneath.h"
#include "tree_search.h"

namespace bv::core {

namespace {

// How far ahead of the stream's reader pages are asked for. Enough for the
// reads of a few thousand small files to be in flight at once; bounded so
// that a send of a big volume keeps a small footprint in the page cache.
constexpr uint64_t kLead = 32ull << 20;
// How far behind the reader the pages of a read-ahead file are dropped. The
// stream holds more than file data (commands, inline files): the reader's
// count runs ahead of send's place in the files by that much, which this
// margin absorbs (a file dropped too early is only read again by send).
constexpr uint64_t kLag = 32ull << 20;
// One readahead(2) call at most (a big extent is asked for in steps, each
// waiting for room).
constexpr uint64_t kStep = 1ull << 20;
// Read-ahead files remembered for their drop at most (paths, not fds), and
// the bytes of those paths at most (a hostile tree's paths are 4 KiB deep).
constexpr size_t kMaxAhead = 16384;
constexpr size_t kMaxAheadBytes = 4u << 20;

// cachestat(2), Linux 6.5; older headers lack it (its number is the same on
// every architecture).
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct CachestatRange {
  uint64_t off, len;
};
struct Cachestat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

// Pages of @fd in the page cache, or -1 when cachestat(2) fails.
int64_t cached_pages(int fd) {
  CachestatRange range{0, 0};  // len 0: to the end of the file
  Cachestat cs{};
  if (::syscall(__NR_cachestat, fd, &range, &cs, 0) < 0) return -1;
  return static_cast<int64_t>(cs.nr_cache);
}

// The fields of a btrfs_file_extent_item this reads (little-endian, unaligned).
constexpr uint32_t kExtentType = 20;       // after generation, ram_bytes, compression, encryption, other_encoding
constexpr uint32_t kExtentDiskBytenr = 21;
constexpr uint32_t kExtentNumBytes = 45;   // after disk_bytenr, disk_num_bytes, offset
constexpr uint32_t kExtentItemSize = 53;

}  // namespace

SendPrefetch::~SendPrefetch() { stop(); }

bool SendPrefetch::available() {
  static const bool has = [] {
    Fd probe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    return probe && cached_pages(probe.get()) >= 0;
  }();
  return has;
}

void SendPrefetch::start(Fd snapshot, uint64_t newer_than) {
  if (!snapshot || !available() || thread_.joinable()) return;
  snapshot_ = std::move(snapshot);
  newer_than_ = newer_than;
  thread_ = std::thread([this] {
    try {
      run();
    } catch (...) {
      // Best effort (an allocation failed): never the process's end.
    }
  });
}

void SendPrefetch::advance(uint64_t streamed) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (streamed <= streamed_) return;
    streamed_ = streamed;
  }
  moved_.notify_all();
}

void SendPrefetch::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
  }
  moved_.notify_all();
  if (thread_.joinable()) thread_.join();
  snapshot_.reset();  // the snapshot is not held open until the JS side lets go of this object
}

uint64_t SendPrefetch::prefetched() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return prefetched_;
}

void SendPrefetch::run() {
  // The snapshot's own tree (tree id 0: the fd's), its file extents in key
  // order, which is the order send reads them in. For an incremental
  // stream, leaves not written since the parent are skipped by the kernel.
  TreeKeyRange range{0, BTRFS_FIRST_FREE_OBJECTID, UINT64_MAX, BTRFS_EXTENT_DATA_KEY, BTRFS_EXTENT_DATA_KEY, 0, UINT64_MAX};
  range.min_transid = newer_than_ == 0 ? 0 : newer_than_ + 1;
  try {
    tree_search(snapshot_.get(), range, "", [this](const TreeItem& item) {
      return visit_extent(item.objectid, item.offset, item.data, item.len);
    });
  } catch (const std::exception&) {
    // Best effort: the send reads what was not read ahead itself.
  }
  current_.reset();
  // Dropping continues as the stream goes on, until the send is over.
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopped_ && !ahead_.empty()) {
    const uint64_t seen = streamed_;
    lock.unlock();
    drop_passed(false);
    lock.lock();
    if (!ahead_.empty()) wait_moved(lock, seen);
  }
  lock.unlock();
  drop_passed(true);
  drop_in_flight();
}

bool SendPrefetch::visit_extent(uint64_t ino, uint64_t offset, const uint8_t* item, uint32_t len) {
  if (len < kExtentItemSize) return true;  // inline: its data is in the metadata send reads anyway
  uint64_t generation = le64(item);
  if (item[kExtentType] != BTRFS_FILE_EXTENT_REG) return true;  // prealloc: zeros, nothing to read
  uint64_t disk_bytenr = le64(item + kExtentDiskBytenr);
  uint64_t bytes = le64(item + kExtentNumBytes);
  if (disk_bytenr == 0 || bytes == 0) return true;  // a hole
  if (newer_than_ != 0 && generation <= newer_than_) return true;  // the parent's: cloned, not read
  if (ino != current_ino_ && !open_file(ino)) return true;
  if (!current_) return true;
  for (uint64_t pos = offset; pos < offset + bytes;) {
    uint64_t step = std::min(kStep, offset + bytes - pos);
    if (!wait_for_room(step)) return false;
    ::readahead(current_.get(), static_cast<off64_t>(pos), step);
    pos += step;
    std::lock_guard<std::mutex> lock(mutex_);
    prefetched_ += step;
    if (current_cold_ && !ahead_.empty()) ahead_.back().until = prefetched_;
  }
  return true;
}

bool SendPrefetch::open_file(uint64_t ino) {
  current_.reset();
  current_ino_ = ino;
  current_cold_ = false;
  // Its path in the snapshot (the first of its names; INO_LOOKUP ends it with '/').
  btrfs_ioctl_ino_lookup_args args{};
  args.treeid = 0;
  args.objectid = ino;
  if (::ioctl(snapshot_.get(), BTRFS_IOC_INO_LOOKUP, &args) < 0) return true;
  std::string path(args.name, strnlen(args.name, sizeof(args.name)));
  if (!path.empty() && path.back() == '/') path.pop_back();
  if (path.empty()) return true;
  Fd fd = openat2_beneath(snapshot_.get(), path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME);
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != ino) return true;
  // Only a file with nothing cached is read ahead (and its pages dropped
  // after): one with pages either is the user's, or send is reading it now
  // (and will drop what it read: pages added behind it would be left).
  if (cached_pages(fd.get()) != 0) return true;
  current_cold_ = true;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    // Bounded memory: wait for the stream to pass the oldest ones.
    auto full = [this] { return ahead_.size() >= kMaxAhead || ahead_bytes_ >= kMaxAheadBytes; };
    while (!stopped_ && full()) {
      const uint64_t seen = streamed_;
      lock.unlock();
      drop_passed(false);
      lock.lock();
      if (full()) wait_moved(lock, seen);
    }
    if (stopped_) return false;
    ahead_bytes_ += path.size();
    ahead_.push_back({prefetched_, path});
  }
  current_ = std::move(fd);
  return true;
}

bool SendPrefetch::wait_for_room(uint64_t bytes) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (stopped_) return false;
    if (prefetched_ + bytes <= streamed_ + kLead) return true;
    const uint64_t seen = streamed_;
    lock.unlock();
    drop_passed(false);
    lock.lock();
    if (prefetched_ + bytes > streamed_ + kLead) wait_moved(lock, seen);
  }
}

void SendPrefetch::wait_moved(std::unique_lock<std::mutex>& lock, uint64_t seen) {
  // A predicate, not a bare wait: a stop() or an advance() that came while
  // the lock was let go (dropping pages) has notified nobody.
  moved_.wait(lock, [&] { return stopped_ || streamed_ != seen; });
}

void SendPrefetch::drop_passed(bool all) {
  for (;;) {
    std::string path;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ahead_.empty()) return;
      const Ahead& front = ahead_.front();
      if (!all && front.until + kLag > streamed_) return;
      // The file being read ahead now stays until it is done with.
      if (!all && ahead_.size() == 1 && current_cold_ && current_) return;
      path = std::move(ahead_.front().path);
      ahead_.pop_front();
      ahead_bytes_ -= path.size();
    }
    Fd fd = openat2_beneath(snapshot_.get(), path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME);
    if (!fd) continue;
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    // At the end, a read asked for just before may still be in flight: its
    // pages are locked and DONTNEED passes them by. Looked at again below.
    if (all && cached_pages(fd.get()) > 0) in_flight_.push_back(std::move(path));
  }
}

void SendPrefetch::drop_in_flight() {
  // Reads of a few MiB end within milliseconds; bounded at about 100 ms.
  for (int attempt = 0; attempt < 50 && !in_flight_.empty(); attempt++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::vector<std::string> still;
    for (std::string& path : in_flight_) {
      Fd fd = openat2_beneath(snapshot_.get(), path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOATIME);
      if (!fd) continue;
      ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
      if (cached_pages(fd.get()) > 0) still.push_back(std::move(path));
    }
    in_flight_ = std::move(still);
  }
  in_flight_.clear();
}

}  // namespace bv::core
