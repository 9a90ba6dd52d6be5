// RAII owner of a file descriptor. Closing never clobbers errno, so an error
// captured right after a failing syscall survives the unwinding of Fds.
#pragma once

#include <cerrno>
#include <utility>

#include <unistd.h>

namespace bv::core {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }

  void reset() {
    if (fd_ >= 0) {
      int saved = errno;
      ::close(fd_);
      errno = saved;
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace bv::core
