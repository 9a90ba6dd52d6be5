// Atomic renames for swapping volumes without a moment where the name is
// missing (renameat2: RENAME_EXCHANGE / RENAME_NOREPLACE; Linux 3.15+, btrfs 4.7+).
// A rename acts on the entries themselves: symlinks are never followed.
#pragma once

#include <string>

namespace bv::core {

/** path_rename_noreplace() - rename @from to @to; EEXIST instead of replacing @to. */
void path_rename_noreplace(const std::string& from, const std::string& to);

/** path_rename_exchange() - atomically swap the names @a and @b (both must exist). */
void path_rename_exchange(const std::string& a, const std::string& b);

}  // namespace bv::core
