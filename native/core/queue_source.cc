#include "queue_source.h"

#include <algorithm>
#include <cstring>

namespace bv::core {

namespace {
// Chunks taken per read(): enough to fill the reader's buffer from 32 KiB packets.
constexpr size_t kBatch = 128;
}  // namespace

QueueSource::QueueSource(size_t limit, std::function<void()> on_drain)
    : limit_(limit), on_drain_(std::move(on_drain)) {}

bool QueueSource::push(const uint8_t* data, size_t len) {
  bool wake, full;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return true;
    if (len == 0) return queued_ < limit_;
    chunks_.push_back({data, len});
    wake = queued_ == 0;  // the reader waits only on an empty queue
    queued_ += len;
    full = queued_ >= limit_;
    if (full) want_drain_ = true;
  }
  if (wake) ready_.notify_one();
  return !full;
}

void QueueSource::end() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ended_ = true;
  }
  ready_.notify_one();
}

void QueueSource::abort() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
  }
  ready_.notify_one();
}

void QueueSource::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  chunks_.clear();
  offset_ = 0;
  queued_ = 0;
}

uint64_t QueueSource::consumed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return consumed_;
}

bool QueueSource::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

size_t QueueSource::read(uint8_t* buf, size_t len) {
  Chunk batch[kBatch];
  size_t taken = 0, offset;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return aborted_ || queued_ > 0 || ended_; });
    if (aborted_) throw StreamError("ERR_RECEIVE_ABORTED", "the input was closed before the stream ended", 0, 0, "", 0);
    if (queued_ == 0) return 0;  // ended
    offset = offset_;
    // Only this thread removes chunks and the producer keeps them alive, so
    // they can be copied without the lock (the producer is not held up).
    size_t want = len;
    for (size_t i = 0; i < chunks_.size() && taken < kBatch && want > 0; i++) {
      batch[taken++] = chunks_[i];
      want -= std::min(want, chunks_[i].len - (i == 0 ? offset : 0));
    }
  }
  size_t copied = 0, finished = 0;
  for (size_t i = 0; i < taken; i++) {
    const size_t n = std::min(batch[i].len - offset, len - copied);
    std::memcpy(buf + copied, batch[i].data + offset, n);
    copied += n;
    if (offset + n < batch[i].len) {
      offset += n;
      break;
    }
    finished++;
    offset = 0;
  }
  bool drain = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(finished));
    offset_ = offset;
    queued_ -= copied;
    consumed_ += finished;
    if (want_drain_ && queued_ <= limit_ / 2) {
      want_drain_ = false;
      drain = true;
    }
  }
  if (drain && on_drain_) on_drain_();
  return copied;
}

}  // namespace bv::core
