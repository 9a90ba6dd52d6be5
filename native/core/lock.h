// Advisory whole-file locks (flock) that serialise the CLI and the daemon.
#pragma once

#include <string>

#include "fd.h"

namespace bv::core {

/**
 * file_lock_try() - open (creating, mode 0600) the lock file @path and flock it
 * without waiting. Returns the locked fd, or an empty Fd when another open
 * file description holds a conflicting lock (also one of this process).
 * Closing the fd releases the lock.
 */
Fd file_lock_try(const std::string& path, bool shared);

}  // namespace bv::core
