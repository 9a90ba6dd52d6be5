#include "decompress.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "sys_error.h"

namespace bv::core {

namespace {

// The few entry points we use, declared here so no -dev package is needed.
using ZUncompress = int (*)(unsigned char*, unsigned long*, const unsigned char*, unsigned long);
using ZstdDecompress = size_t (*)(void*, size_t, const void*, size_t);
using ZstdIsError = unsigned (*)(size_t);
using ZstdFrameSize = size_t (*)(const void*, size_t);
using LzoDecompress = int (*)(const unsigned char*, unsigned long, unsigned char*, unsigned long*, void*);

struct Libraries {
  ZUncompress z_uncompress = nullptr;
  ZstdDecompress zstd_decompress = nullptr;
  ZstdIsError zstd_is_error = nullptr;
  ZstdFrameSize zstd_frame_size = nullptr;
  LzoDecompress lzo1x_decompress_safe = nullptr;
};

void* open_library(const char* name) { return ::dlopen(name, RTLD_NOW | RTLD_LOCAL); }

const Libraries& libraries() {
  static Libraries libs;
  static std::once_flag once;
  std::call_once(once, [] {
    if (void* z = open_library("libz.so.1")) libs.z_uncompress = reinterpret_cast<ZUncompress>(::dlsym(z, "uncompress"));
    if (void* zstd = open_library("libzstd.so.1")) {
      libs.zstd_decompress = reinterpret_cast<ZstdDecompress>(::dlsym(zstd, "ZSTD_decompress"));
      libs.zstd_is_error = reinterpret_cast<ZstdIsError>(::dlsym(zstd, "ZSTD_isError"));
      libs.zstd_frame_size = reinterpret_cast<ZstdFrameSize>(::dlsym(zstd, "ZSTD_findFrameCompressedSize"));
    }
    if (void* lzo = open_library("liblzo2.so.2")) {
      libs.lzo1x_decompress_safe = reinterpret_cast<LzoDecompress>(::dlsym(lzo, "lzo1x_decompress_safe"));
    }
  });
  return libs;
}

[[noreturn]] void corrupt(const char* what) { throw_error(EINVAL, "decompress", what); }

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }

void zlib(const uint8_t* data, size_t size, std::vector<uint8_t>& out) {
  auto fn = libraries().z_uncompress;
  if (fn == nullptr) throw_error(ENOSYS, "decompress", "libz.so.1");
  unsigned long len = out.size();
  if (fn(out.data(), &len, data, size) != 0) corrupt("zlib");
}

void zstd(const uint8_t* data, size_t size, std::vector<uint8_t>& out) {
  const Libraries& libs = libraries();
  if (libs.zstd_decompress == nullptr || libs.zstd_is_error == nullptr || libs.zstd_frame_size == nullptr) {
    throw_error(ENOSYS, "decompress", "libzstd.so.1");
  }
  // The extent is padded to a sector after the frame: decompress the frame only.
  size_t frame = libs.zstd_frame_size(data, size);
  if (libs.zstd_is_error(frame)) corrupt("zstd");
  size_t n = libs.zstd_decompress(out.data(), out.size(), data, frame);
  if (libs.zstd_is_error(n)) corrupt("zstd");
}

// btrfs' LZO framing: a u32 total length, then segments of (u32 length,
// LZO1X data), each decompressing to at most one sector; a segment header
// never straddles a sector boundary (the tail of the sector is padding).
void lzo(uint32_t compression, const uint8_t* data, size_t size, std::vector<uint8_t>& out) {
  auto fn = libraries().lzo1x_decompress_safe;
  if (fn == nullptr) throw_error(ENOSYS, "decompress", "liblzo2.so.2");
  const size_t sector = size_t{4096} << (compression - 3);
  if (size < 4) corrupt("lzo");
  size_t total = le32(data);
  if (total > size || total < 4) corrupt("lzo");
  size_t in = 4, produced = 0;
  while (in < total && produced < out.size()) {
    size_t left_in_sector = sector - (in % sector);
    if (left_in_sector < 4) in += left_in_sector;  // padding before a header
    if (in + 4 > total) break;
    size_t seg = le32(data + in);
    in += 4;
    if (seg == 0 || in + seg > total) corrupt("lzo");
    unsigned long got = std::min(sector, out.size() - produced);
    if (fn(data + in, seg, out.data() + produced, &got, nullptr) != 0) corrupt("lzo");
    produced += got;
    in += seg;
  }
}

}  // namespace

std::vector<uint8_t> extent_decompress(uint32_t compression, const uint8_t* data, size_t size, size_t unencoded_len) {
  std::vector<uint8_t> out(unencoded_len, 0);  // zero-filled: a short result ends in zeros, as the kernel's
  if (compression == 1) {
    zlib(data, size, out);
  } else if (compression == 2) {
    zstd(data, size, out);
  } else if (compression >= 3 && compression <= 7) {
    lzo(compression, data, size, out);
  } else {
    throw_error(EINVAL, "decompress", "unknown compression " + std::to_string(compression));
  }
  return out;
}

}  // namespace bv::core
