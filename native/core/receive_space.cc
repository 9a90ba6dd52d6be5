#include "receive_space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <iterator>

#include "sys_error.h"

namespace bv::core {

namespace {

// How often other writers are looked at: per this much charged, or this long.
constexpr uint64_t kRereadBytes = 64ull << 20;
constexpr auto kRereadEvery = std::chrono::seconds(1);

uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// "1.5 GiB" for messages.
std::string show_size(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    u++;
  }
  char out[32];
  std::snprintf(out, sizeof(out), u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return out;
}

}  // namespace

ReceiveSpace::ReceiveSpace(int fd, std::string path, uint64_t reserve)
    : fd_(fd), path_(std::move(path)), reserve_(reserve) {
  if (reserve_ == 0) return;
  start_free_ = last_free_ = read_free();
}

uint64_t ReceiveSpace::read_free() {
  struct statvfs st;
  if (::fstatvfs(fd_, &st) < 0) throw_errno("fstatvfs", path_);
  last_read_ = std::chrono::steady_clock::now();
  since_last_ = 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

void ReceiveSpace::charge(uint64_t bytes, const SendCommand& cmd) {
  if (reserve_ == 0 || bytes == 0) return;
  if (since_last_ >= kRereadBytes || std::chrono::steady_clock::now() - last_read_ >= kRereadEvery) {
    last_free_ = read_free();
  }
  const uint64_t avail = std::min(minus(start_free_, charged_), minus(last_free_, since_last_));
  if (bytes > avail || avail - bytes < reserve_) {
    std::string reason = bytes > avail
        ? "applying this command needs " + show_size(bytes) + " but " + path_ + " has " + show_size(avail) + " free"
        : "applying this command would leave " + show_size(avail - bytes) + " free on " + path_;
    reason += ", less than the " + show_size(reserve_) + " a receive must leave (RECEIVE_RESERVE)";
    throw StreamError("ERR_RECEIVE_NO_SPACE", reason, cmd.index, static_cast<uint16_t>(cmd.cmd), std::string(cmd.path),
                      cmd.offset);
  }
  charged_ += bytes;
  since_last_ += bytes;
}

}  // namespace bv::core
