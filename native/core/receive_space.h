// The free space a receive must leave on its filesystem (ReceiveOptions::
// reserve_bytes): every command that allocates data is charged before it
// is applied, and refused when the filesystem's free space (statvfs
// f_bavail * f_frsize) would fall below the reserve. btrfs's statfs counts
// data only once it is written back, so what the receive itself wrote is
// counted from the first reading on; later readings (every 64 MiB charged,
// or every second) can only lower the estimate: they catch other writers,
// never hide our own dirty data.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "send_stream.h"

namespace bv::core {

class ReceiveSpace {
 public:
  /** @fd: any fd on the filesystem; @reserve 0 charges nothing (no statvfs either). */
  ReceiveSpace(int fd, std::string path, uint64_t reserve);

  /**
   * charge() - count @bytes that applying @cmd will allocate. Throws
   * StreamError ERR_RECEIVE_NO_SPACE (naming @cmd) when they would leave
   * less than the reserve free; SysError when statvfs fails.
   */
  void charge(uint64_t bytes, const SendCommand& cmd);

 private:
  uint64_t read_free();

  int fd_;
  std::string path_;
  uint64_t reserve_;
  uint64_t start_free_ = 0;  // at the first reading
  uint64_t charged_ = 0;     // since then
  uint64_t last_free_ = 0;   // at the last reading
  uint64_t since_last_ = 0;  // charged since then
  std::chrono::steady_clock::time_point last_read_;
};

}  // namespace bv::core
