#include "rename.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>

#include "sys_error.h"

namespace bv::core {

void path_rename_noreplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) < 0) {
    throw_errno("renameat2", from, to);
  }
}

void path_rename_exchange(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) < 0) {
    throw_errno("renameat2", a, b);
  }
}

}  // namespace bv::core
