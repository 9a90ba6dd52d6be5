// The one error type of the core: an errno plus the step that failed
// (syscall or ioctl name) and the path(s) involved, like Node's fs errors.
#pragma once

#include <exception>
#include <string>

namespace bv::core {

struct SysError : std::exception {
  SysError(int err, std::string syscall, std::string path, std::string dest = {});

  int err;              // positive errno value
  std::string syscall;  // "open", "BTRFS_IOC_SNAP_CREATE_V2", ...
  std::string path;
  std::string dest;     // second path, when there is one (snapshot target)

  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/** Throws a SysError from the current errno. Call right after the failing syscall. */
[[noreturn]] void throw_errno(const char* syscall, const std::string& path,
                              const std::string& dest = {});

/** Throws a SysError with an explicit errno value. */
[[noreturn]] void throw_error(int err, const char* syscall, const std::string& path,
                              const std::string& dest = {});

/** "EEXIST" for EEXIST; "E<number>" when libc has no name for it. */
std::string errno_name(int err);

}  // namespace bv::core
