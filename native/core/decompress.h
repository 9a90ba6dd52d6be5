// Decompressing a btrfs compressed extent in-process, for a receiver whose
// BTRFS_IOC_ENCODED_WRITE is refused (alignment, ENOSPC, an older kernel).
// The libraries are the system's own (libz, libzstd, liblzo2), opened with
// dlopen() on first use: nothing to link, and a host without one of them
// fails only the extents that need it, with a clear error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bv::core {

/**
 * extent_decompress() - decompress @size bytes of extent data compressed
 * with btrfs encoded-I/O type @compression (1 zlib, 2 zstd, 3..7 lzo with a
 * 4K..64K sector) into exactly @unencoded_len bytes (a shorter result is
 * zero-filled, as the kernel does). Throws SysError (syscall "decompress"):
 * EINVAL for corrupt data or an unknown type, ENOSYS when the library is
 * missing (path says which).
 */
std::vector<uint8_t> extent_decompress(uint32_t compression, const uint8_t* data, size_t size, size_t unencoded_len);

}  // namespace bv::core
