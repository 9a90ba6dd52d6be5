// libFuzzer target for the send-stream reader: the whole input through
// SendStreamReader, as it is and with every CRC made right (so that mutations
// reach the checks behind the CRC), every command consumed (the reader
// poisons the rest of its buffer under ASan, so a parse step that strays
// past its command is reported). Also checks what a
// crash cannot show: views inside their command, the same outcome when the
// source hands out the input a few bytes at a time, one-line errors with a known code, the whole input
// consumed on success, and the two CRC32C implementations agreeing.
// Build and run: scripts/fuzz-send-stream.sh.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sanitizer/asan_interface.h>

#include "../core/crc32c.h"
#include "../core/send_stream.h"

using namespace bv::core;

namespace {

// A view must lie inside its command: the reader poisons every other byte it
// has read ahead (and a red zone after them), so this catches one that does not.
void touch(const uint8_t* p, size_t n) {
  if (n > 0 && __asan_region_is_poisoned(const_cast<uint8_t*>(p), n) != nullptr) abort();
}

void touch(std::string_view s) { touch(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

// Hands the input out in reads of 1..17 or 1..4096 bytes, sizes drawn from the input itself.
class TrickleSource final : public ByteSource {
 public:
  TrickleSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t read(uint8_t* buf, size_t len) override {
    const uint8_t b = size_ > 0 ? data_[(pos_ * 7) % size_] : 0;
    const size_t step = 1 + ((b & 1) ? b % 17 : b * 16u);
    size_t n = std::min({len, step, size_ - pos_});
    if (n > 0) std::memcpy(buf, data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// What a run produced, to compare two runs over different sources.
struct Outcome {
  std::vector<uint64_t> commands;  // (stream << 48) | (type << 32) | offset, one per command
  std::string error;               // what() of the StreamError, "" when accepted
  uint64_t bytes_read = 0;
};

void check_command(const SendCommand& c) {
  touch(c.path);
  touch(c.path_to);
  touch(c.path_link);
  touch(c.clone_path);
  touch(c.xattr_name);
  touch(c.data.data, c.data.size);
  touch(c.xattr_data.data, c.xattr_data.size);
  // The rules a receiver relies on, checked independently of the reader's own code.
  if (c.has(SendAttr::PATH)) {
    if (c.path.find('\0') != std::string_view::npos) abort();
    if (!c.path.empty() && (c.path.front() == '/' || c.path.back() == '/')) abort();
    if (c.path == ".." || c.path.substr(0, 3) == "../" || c.path.find("/../") != std::string_view::npos) abort();
    if ((c.cmd == SendCmd::SUBVOL || c.cmd == SendCmd::SNAPSHOT) &&
        (c.path.empty() || c.path.find('/') != std::string_view::npos)) {
      abort();
    }
  } else if (c.cmd != SendCmd::END) {
    abort();  // every command but END needs a PATH
  }
}

Outcome run(ByteSource& source) {
  Outcome out;
  SendStreamReader reader(source, 0);
  uint64_t expected_index = 0;
  try {
    while (reader.next_stream()) {
      if (reader.version() < 1 || reader.version() > SendStreamReader::kMaxVersion) abort();
      SendCommand cmd;
      bool first = true;
      while (reader.next(cmd)) {
        if (cmd.index != ++expected_index) abort();
        if (first && cmd.cmd != SendCmd::SUBVOL && cmd.cmd != SendCmd::SNAPSHOT) abort();
        first = false;
        check_command(cmd);
        out.commands.push_back(reader.stream_index() << 48 | uint64_t{static_cast<uint16_t>(cmd.cmd)} << 32 |
                               (cmd.offset & 0xffffffff));
      }
      if (cmd.cmd != SendCmd::END) abort();
    }
  } catch (const StreamError& e) {
    const std::string& code = e.code;
    if (code != kStreamTruncated && code != kStreamChecksum && code != kStreamInvalid && code != kStreamUnsupported) {
      abort();
    }
    out.error = e.what();
    if (e.reason.empty() || out.error.find('\n') != std::string::npos) abort();
  }
  out.bytes_read = reader.bytes_read();
  return out;
}

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

// A mutated command almost never has a right CRC, so the checks behind the
// CRC would stay out of reach: this copy of the input has every command's CRC
// recomputed, following the framing the way the reader does.
std::vector<uint8_t> with_fixed_crcs(const uint8_t* data, size_t size) {
  std::vector<uint8_t> out(data, data + size);
  size_t pos = 0;
  bool header = true;
  while (true) {
    if (header) {
      if (size - pos < 17) break;
      pos += 17;
      header = false;
    }
    if (size - pos < 10) break;
    uint8_t* h = out.data() + pos;
    const size_t len = le32(h);
    if (len > size - pos - 10) break;
    std::memset(h + 6, 0, 4);
    const uint32_t crc = crc32c(0, h, 10 + len);
    for (int i = 0; i < 4; i++) h[6 + i] = static_cast<uint8_t>(crc >> (8 * i));
    header = (h[4] | h[5] << 8) == static_cast<int>(SendCmd::END);
    pos += 10 + len;
  }
  return out;
}

void check_same(const Outcome& a, const Outcome& b) {
  if (a.commands != b.commands || a.error != b.error || a.bytes_read != b.bytes_read) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (detail::crc32c_hw_available()) {
    const uint32_t seed = size >= 4 ? le32(data) : 0;
    if (detail::crc32c_hw(seed, data, size) != detail::crc32c_table(seed, data, size)) abort();
  }

  MemorySource whole(data, size);
  Outcome a = run(whole);
  if (a.error.empty() && a.bytes_read != size) abort();  // accepted means every byte was read

  std::vector<uint8_t> fixed = with_fixed_crcs(data, size);
  const bool changed = size > 0 && std::memcmp(fixed.data(), data, size) != 0;
  if (changed) {
    MemorySource repaired(fixed.data(), size);
    a = run(repaired);
    if (a.error.empty() && a.bytes_read != size) abort();
  }
  // The same outcome when the bytes come in small pieces.
  TrickleSource trickle(changed ? fixed.data() : data, size);
  check_same(a, run(trickle));
  return 0;
}
