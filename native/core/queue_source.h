// A ByteSource fed by another thread: the producer (the JS thread) queues
// chunks it keeps alive, the reader copies them straight into its buffer.
// No pipe between them: one copy fewer and no system call per chunk. The
// queue is bounded: push() says when it is full, and the drain callback runs
// (on the reading thread) once the reader has taken it down to half.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "send_stream.h"

namespace bv::core {

class QueueSource final : public ByteSource {
 public:
  /** @limit: bytes queued at which push() answers false; @on_drain: called when they fall to half after that. */
  QueueSource(size_t limit, std::function<void()> on_drain);

  /**
   * push() - queue @len bytes at @data, which the caller keeps alive and
   * unchanged until consumed() counts this chunk (or the reader is closed).
   * Returns false when the queue is full: push more only after on_drain.
   * Ignored (returns true) once the reader is closed.
   */
  bool push(const uint8_t* data, size_t len);
  /** No more input: read() returns 0 once the queue is empty. */
  void end();
  /** Stop: the next read() throws ERR_RECEIVE_ABORTED (the reader is not waited for). */
  void abort();
  /** The reader is done (it never reads again): pushes are dropped, nothing is referenced any more. */
  void close();
  /** Chunks the reader has finished copying, counted from the first push. */
  uint64_t consumed() const;
  /** Whether close() was called: no chunk is read any more. */
  bool closed() const;

  size_t read(uint8_t* buf, size_t len) override;

 private:
  struct Chunk {
    const uint8_t* data;
    size_t len;
  };

  const size_t limit_;
  const std::function<void()> on_drain_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Chunk> chunks_;  // the first one partly read when offset_ > 0
  size_t offset_ = 0;
  size_t queued_ = 0;         // bytes in chunks_ not read yet
  uint64_t consumed_ = 0;
  bool ended_ = false, aborted_ = false, closed_ = false, want_drain_ = false;
};

}  // namespace bv::core
