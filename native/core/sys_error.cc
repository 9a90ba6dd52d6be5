#include "sys_error.h"

#include <cerrno>
#include <cstring>

namespace bv::core {

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? std::string(name) : "E" + std::to_string(err);
}

SysError::SysError(int err_, std::string syscall_, std::string path_, std::string dest_)
    : err(err_), syscall(std::move(syscall_)), path(std::move(path_)), dest(std::move(dest_)) {
  message_ = errno_name(err) + ": " + std::strerror(err) + ", " + syscall + " '" + path + "'";
  if (!dest.empty()) message_ += " -> '" + dest + "'";
}

void throw_errno(const char* syscall, const std::string& path, const std::string& dest) {
  throw SysError(errno, syscall, path, dest);
}

void throw_error(int err, const char* syscall, const std::string& path, const std::string& dest) {
  throw SysError(err, syscall, path, dest);
}

}  // namespace bv::core
