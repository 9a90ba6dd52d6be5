#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define BV_CRC32C_X86 1
#endif

namespace bv::core {

namespace {

constexpr uint32_t kPoly = 0x82F63B78;  // Castagnoli, reflected

using Table = std::array<std::array<uint32_t, 256>, 8>;

// Slicing-by-8: t[0] is the byte-at-a-time table, t[k][b] = b followed by
// k zero bytes, so eight table lookups consume eight input bytes at once.
constexpr Table make_table() {
  Table t{};
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int i = 0; i < 8; i++) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][b] = c;
  }
  for (size_t k = 1; k < 8; k++) {
    for (size_t b = 0; b < 256; b++) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr Table kTable = make_table();

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // unaligned-safe; the byte order is checked below
  return v;
}

}  // namespace

namespace detail {

uint32_t crc32c_table(uint32_t crc, const uint8_t* p, size_t len) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  while (len >= 8) {
    uint64_t v = load_le64(p) ^ crc;
    auto lo = static_cast<uint32_t>(v);
    auto hi = static_cast<uint32_t>(v >> 32);
    crc = kTable[7][lo & 0xff] ^ kTable[6][(lo >> 8) & 0xff] ^ kTable[5][(lo >> 16) & 0xff] ^
          kTable[4][lo >> 24] ^ kTable[3][hi & 0xff] ^ kTable[2][(hi >> 8) & 0xff] ^
          kTable[1][(hi >> 16) & 0xff] ^ kTable[0][hi >> 24];
    p += 8;
    len -= 8;
  }
#endif
  while (len-- > 0) crc = (crc >> 8) ^ kTable[0][(crc ^ *p++) & 0xff];
  return crc;
}

#ifdef BV_CRC32C_X86

namespace {

// The crc32 instruction has a latency of 3 cycles but a throughput of 1, so
// three independent lanes over three adjacent blocks run ~3x faster than one
// chain. Without inversion the CRC is linear: crc(A||B) = shift(crc(A), |B|)
// ^ crc(0, B), where shift() appends |B| zero bytes; it is applied with four
// lookups in a table built once per block size.
constexpr size_t kLong = 8192;
constexpr size_t kShort = 256;

struct Shift {
  uint32_t t[4][256];
};

Shift make_shift(size_t n) {
  static const uint8_t zeros[kLong] = {};
  uint32_t basis[32];  // shift of each single-bit register value
  for (int j = 0; j < 32; j++) basis[j] = crc32c_table(1u << j, zeros, n);
  Shift s{};
  for (int k = 0; k < 4; k++) {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int bit = 0; bit < 8; bit++) {
        if ((b >> bit) & 1) v ^= basis[8 * k + bit];
      }
      s.t[k][b] = v;
    }
  }
  return s;
}

inline uint32_t shift(const Shift& s, uint32_t crc) {
  return s.t[0][crc & 0xff] ^ s.t[1][(crc >> 8) & 0xff] ^ s.t[2][(crc >> 16) & 0xff] ^ s.t[3][crc >> 24];
}

// Three lanes of @block bytes each while at least 3 * @block remain.
__attribute__((target("sse4.2"))) inline uint64_t lanes(uint64_t c, const uint8_t*& p, size_t& len,
                                                        size_t block, const Shift& s) {
  while (len >= 3 * block) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + block;
    do {
      c = _mm_crc32_u64(c, load_le64(p));
      c1 = _mm_crc32_u64(c1, load_le64(p + block));
      c2 = _mm_crc32_u64(c2, load_le64(p + 2 * block));
      p += 8;
    } while (p < end);
    c = shift(s, static_cast<uint32_t>(c)) ^ c1;
    c = shift(s, static_cast<uint32_t>(c)) ^ c2;
    p += 2 * block;
    len -= 3 * block;
  }
  return c;
}

}  // namespace

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const uint8_t* p, size_t len) noexcept {
  uint64_t c = crc;
  if (len >= 3 * kShort) {
    static const Shift long_shift = make_shift(kLong);
    static const Shift short_shift = make_shift(kShort);
    c = lanes(c, p, len, kLong, long_shift);
    c = lanes(c, p, len, kShort, short_shift);
  }
  while (len >= 8) {
    c = _mm_crc32_u64(c, load_le64(p));
    p += 8;
    len -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (len-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

bool crc32c_hw_available() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

#else

uint32_t crc32c_hw(uint32_t crc, const uint8_t* p, size_t len) noexcept { return crc32c_table(crc, p, len); }

bool crc32c_hw_available() noexcept { return false; }

#endif

}  // namespace detail

uint32_t crc32c(uint32_t crc, const uint8_t* data, size_t len) noexcept {
  static const bool hw = detail::crc32c_hw_available();
  return hw ? detail::crc32c_hw(crc, data, len) : detail::crc32c_table(crc, data, len);
}

}  // namespace bv::core
