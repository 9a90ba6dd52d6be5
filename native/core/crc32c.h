// CRC32C (Castagnoli) as the btrfs send stream uses it: seed 0, no final
// inversion, reflected polynomial 0x82F63B78. Pure computation, no syscalls.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bv::core {

/**
 * crc32c() - continue a CRC32C over @len bytes at @data.
 * @crc: the running value; 0 to start a send-stream checksum.
 *
 * No inversion on the way in or out, so calls chain:
 * crc32c(crc32c(0, a, n), b, m) is the CRC of a followed by b. (The
 * "standard" CRC32C of a buffer is crc32c(~0u, data, len) ^ ~0u.)
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8
 * table otherwise. Never throws.
 */
uint32_t crc32c(uint32_t crc, const uint8_t* data, size_t len) noexcept;

namespace detail {

/** The table implementation, whatever the CPU (for tests and the fuzzer). */
uint32_t crc32c_table(uint32_t crc, const uint8_t* data, size_t len) noexcept;

/** The SSE4.2 implementation; only call it when crc32c_hw_available(). */
uint32_t crc32c_hw(uint32_t crc, const uint8_t* data, size_t len) noexcept;

/** True when this CPU has SSE4.2 (always false off x86-64). */
bool crc32c_hw_available() noexcept;

}  // namespace detail

}  // namespace bv::core
