#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include "sys_error.h"

namespace bv::core {

Fd file_lock_try(const std::string& path, bool shared) {
  int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (raw < 0) throw_errno("open", path);
  Fd fd(raw);
  for (;;) {
    if (::flock(fd.get(), (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) return fd;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Fd();
    throw_errno("flock", path);
  }
}

}  // namespace bv::core
