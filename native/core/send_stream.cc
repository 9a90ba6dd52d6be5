#include "send_stream.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "crc32c.h"

// Under AddressSanitizer (the fuzzer), the bytes read ahead around the
// command being parsed or handed out are poisoned, and so is a red zone
// after the last byte read, so reading one byte past a command is reported
// even though the buffer itself goes on.
#if defined(__SANITIZE_ADDRESS__)
#define BV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BV_ASAN 1
#endif
#endif
#ifdef BV_ASAN
#include <sanitizer/asan_interface.h>
#define BV_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define BV_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define BV_POISON(p, n) ((void)(p), (void)(n))
#define BV_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace bv::core {

namespace {

constexpr char kMagic[] = "btrfs-stream";  // 13 bytes with its NUL, as in the stream
constexpr size_t kStreamHeader = 17;  // magic (13, NUL included) + u32 version
constexpr size_t kCmdHeader = 10;     // u32 len, u16 cmd, u32 crc
constexpr size_t kNameMax = 255;      // NAME_MAX, XATTR_NAME_MAX
constexpr size_t kPathMax = 4095;     // PATH_MAX without its NUL
constexpr size_t kRedZone = 4096;     // ASan builds: poisoned bytes after the data read

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
uint64_t le64(const uint8_t* p) { return le32(p) | static_cast<uint64_t>(le32(p + 4)) << 32; }

enum class Kind : uint8_t { kNone, kU64, kU32, kU8, kUuid, kTime, kString, kBytes };

struct AttrInfo {
  const char* name;
  Kind kind;
};

constexpr AttrInfo kAttrs[] = {
    {"UNKNOWN", Kind::kNone},         {"UUID", Kind::kUuid},
    {"CTRANSID", Kind::kU64},         {"INO", Kind::kU64},
    {"SIZE", Kind::kU64},             {"MODE", Kind::kU64},
    {"UID", Kind::kU64},              {"GID", Kind::kU64},
    {"RDEV", Kind::kU64},             {"CTIME", Kind::kTime},
    {"MTIME", Kind::kTime},           {"ATIME", Kind::kTime},
    {"OTIME", Kind::kTime},           {"XATTR_NAME", Kind::kString},
    {"XATTR_DATA", Kind::kBytes},     {"PATH", Kind::kString},
    {"PATH_TO", Kind::kString},       {"PATH_LINK", Kind::kString},
    {"FILE_OFFSET", Kind::kU64},      {"DATA", Kind::kBytes},
    {"CLONE_UUID", Kind::kUuid},      {"CLONE_CTRANSID", Kind::kU64},
    {"CLONE_PATH", Kind::kString},    {"CLONE_OFFSET", Kind::kU64},
    {"CLONE_LEN", Kind::kU64},        {"FALLOCATE_MODE", Kind::kU32},
    {"FILEATTR", Kind::kU64},         {"UNENCODED_FILE_LEN", Kind::kU64},
    {"UNENCODED_LEN", Kind::kU64},    {"UNENCODED_OFFSET", Kind::kU64},
    {"COMPRESSION", Kind::kU32},      {"ENCRYPTION", Kind::kU32},
    {"VERITY_ALGORITHM", Kind::kU8},  {"VERITY_BLOCK_SIZE", Kind::kU32},
    {"VERITY_SALT_DATA", Kind::kBytes}, {"VERITY_SIG_DATA", Kind::kBytes},
};
constexpr size_t kAttrCount = sizeof(kAttrs) / sizeof(kAttrs[0]);
static_assert(kAttrCount == 36, "attribute table out of step with SendAttr");

// Highest attribute type and command number each version defines.
constexpr uint16_t max_attr(uint32_t version) { return version == 1 ? 24 : version == 2 ? 31 : 35; }
constexpr uint16_t max_cmd(uint32_t version) { return version == 1 ? 22 : version == 2 ? 25 : 26; }

constexpr uint64_t bit(SendAttr a) { return uint64_t{1} << static_cast<unsigned>(a); }
using A = SendAttr;

struct CmdInfo {
  const char* name;
  uint64_t required;  // what the kernel always emits (btrfs-ioctls.md 3.3)
  bool root_ok;       // the empty PATH (the subvolume root) is meaningful
};

// OTIME (v2 UTIMES) and COMPRESSION/ENCRYPTION (ENCODED_WRITE, 0 when
// absent) are optional: a receiver needs none of them.
constexpr CmdInfo kCmds[] = {
    {"UNKNOWN", 0, false},
    {"SUBVOL", bit(A::PATH) | bit(A::UUID) | bit(A::CTRANSID), false},
    {"SNAPSHOT", bit(A::PATH) | bit(A::UUID) | bit(A::CTRANSID) | bit(A::CLONE_UUID) | bit(A::CLONE_CTRANSID), false},
    {"MKFILE", bit(A::PATH) | bit(A::INO), false},
    {"MKDIR", bit(A::PATH) | bit(A::INO), false},
    {"MKNOD", bit(A::PATH) | bit(A::INO) | bit(A::RDEV) | bit(A::MODE), false},
    {"MKFIFO", bit(A::PATH) | bit(A::INO) | bit(A::RDEV) | bit(A::MODE), false},
    {"MKSOCK", bit(A::PATH) | bit(A::INO) | bit(A::RDEV) | bit(A::MODE), false},
    {"SYMLINK", bit(A::PATH) | bit(A::INO) | bit(A::PATH_LINK), false},
    {"RENAME", bit(A::PATH) | bit(A::PATH_TO), false},
    {"LINK", bit(A::PATH) | bit(A::PATH_LINK), false},
    {"UNLINK", bit(A::PATH), false},
    {"RMDIR", bit(A::PATH), false},
    {"SET_XATTR", bit(A::PATH) | bit(A::XATTR_NAME) | bit(A::XATTR_DATA), true},
    {"REMOVE_XATTR", bit(A::PATH) | bit(A::XATTR_NAME), true},
    {"WRITE", bit(A::PATH) | bit(A::FILE_OFFSET) | bit(A::DATA), false},
    {"CLONE", bit(A::PATH) | bit(A::FILE_OFFSET) | bit(A::CLONE_LEN) | bit(A::CLONE_UUID) | bit(A::CLONE_CTRANSID) |
                  bit(A::CLONE_PATH) | bit(A::CLONE_OFFSET), false},
    {"TRUNCATE", bit(A::PATH) | bit(A::SIZE), false},
    {"CHMOD", bit(A::PATH) | bit(A::MODE), true},
    {"CHOWN", bit(A::PATH) | bit(A::UID) | bit(A::GID), true},
    {"UTIMES", bit(A::PATH) | bit(A::ATIME) | bit(A::MTIME) | bit(A::CTIME), true},
    {"END", 0, false},
    {"UPDATE_EXTENT", bit(A::PATH) | bit(A::FILE_OFFSET) | bit(A::SIZE), false},
    {"FALLOCATE", bit(A::PATH) | bit(A::FALLOCATE_MODE) | bit(A::FILE_OFFSET) | bit(A::SIZE), false},
    {"FILEATTR", bit(A::PATH) | bit(A::FILEATTR), true},
    {"ENCODED_WRITE", bit(A::PATH) | bit(A::FILE_OFFSET) | bit(A::UNENCODED_FILE_LEN) | bit(A::UNENCODED_LEN) |
                          bit(A::UNENCODED_OFFSET) | bit(A::DATA), false},
    {"ENABLE_VERITY", bit(A::PATH) | bit(A::VERITY_ALGORITHM) | bit(A::VERITY_BLOCK_SIZE), false},
};
constexpr size_t kCmdCount = sizeof(kCmds) / sizeof(kCmds[0]);
static_assert(kCmdCount == 27, "command table out of step with SendCmd");

// A stream byte string made safe for a one-line message.
std::string escape(std::string_view s) {
  constexpr size_t kShown = 256;
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (i == kShown) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char oct[5];
      std::snprintf(oct, sizeof(oct), "\\%03o", c);
      out += oct;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string quoted(std::string_view s) { return "'" + escape(s) + "'"; }

// Each *_problem() returns what is wrong, or nullptr.
bool is_dot_or_dotdot(std::string_view c) { return c == "." || c == ".."; }

// A path inside the subvolume: the receiver resolves it under the subvolume
// root, so anything that could step out of it or mean something else is out.
const char* path_problem(std::string_view p) {
  if (p.empty()) return "is empty";
  if (p.size() > kPathMax) return "is longer than 4095 bytes";
  if (p.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (p.front() == '/') return "is absolute";
  if (p.back() == '/') return "ends with '/'";
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    std::string_view comp = p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp.empty()) return "has an empty component";
    if (comp == ".") return "has a '.' component";
    if (comp == "..") return "has a '..' component";
    if (comp.size() > kNameMax) return "has a component longer than 255 bytes";
    if (slash == std::string_view::npos) return nullptr;
    start = slash + 1;
  }
}

// SUBVOL/SNAPSHOT: the new subvolume's name in the destination directory.
const char* name_problem(std::string_view p) {
  if (p.empty()) return "is empty";
  if (p.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (p.find('/') != std::string_view::npos) return "is not a single name (contains '/')";
  if (is_dot_or_dotdot(p)) return "is '.' or '..'";
  if (p.size() > kNameMax) return "is longer than 255 bytes";
  return nullptr;
}

// A symlink's target is stored, never resolved by the receiver: any bytes.
const char* target_problem(std::string_view p) {
  if (p.empty()) return "is empty";
  if (p.size() > kPathMax) return "is longer than 4095 bytes";
  if (p.find('\0') != std::string_view::npos) return "contains a NUL byte";
  return nullptr;
}

const char* xattr_name_problem(std::string_view p) {
  if (p.empty()) return "is empty";
  if (p.size() > kNameMax) return "is longer than 255 bytes";
  if (p.find('\0') != std::string_view::npos) return "contains a NUL byte";
  return nullptr;
}

std::string size_problem(uint16_t type, size_t size, size_t expected) {
  return std::string("attribute ") + kAttrs[type].name + " has " + std::to_string(size) + " bytes, expected " +
         std::to_string(expected);
}

// Stores one attribute's value; returns what is wrong or "".
std::string store(SendCommand& c, uint16_t type, const uint8_t* v, size_t size) {
  switch (kAttrs[type].kind) {
    case Kind::kU64: {
      if (size != 8) return size_problem(type, size, 8);
      uint64_t x = le64(v);
      switch (static_cast<SendAttr>(type)) {
        case A::CTRANSID: c.ctransid = x; break;
        case A::INO: c.ino = x; break;
        case A::SIZE: c.size = x; break;
        case A::MODE: c.mode = x; break;
        case A::UID: c.uid = x; break;
        case A::GID: c.gid = x; break;
        case A::RDEV: c.rdev = x; break;
        case A::FILE_OFFSET: c.file_offset = x; break;
        case A::CLONE_CTRANSID: c.clone_ctransid = x; break;
        case A::CLONE_OFFSET: c.clone_offset = x; break;
        case A::CLONE_LEN: c.clone_len = x; break;
        case A::FILEATTR: c.fileattr = x; break;
        case A::UNENCODED_FILE_LEN: c.unencoded_file_len = x; break;
        case A::UNENCODED_LEN: c.unencoded_len = x; break;
        case A::UNENCODED_OFFSET: c.unencoded_offset = x; break;
        default: break;
      }
      return {};
    }
    case Kind::kU32: {
      if (size != 4) return size_problem(type, size, 4);
      uint32_t x = le32(v);
      switch (static_cast<SendAttr>(type)) {
        case A::FALLOCATE_MODE: c.fallocate_mode = x; break;
        case A::COMPRESSION: c.compression = x; break;
        case A::ENCRYPTION: c.encryption = x; break;
        default: break;  // VERITY_BLOCK_SIZE: v3 only, never reached
      }
      return {};
    }
    case Kind::kU8:
      return size == 1 ? std::string() : size_problem(type, size, 1);
    case Kind::kUuid: {
      if (size != 16) return size_problem(type, size, 16);
      auto& dst = type == static_cast<uint16_t>(A::UUID) ? c.uuid : c.clone_uuid;
      std::memcpy(dst.data(), v, 16);
      return {};
    }
    case Kind::kTime: {
      if (size != 12) return size_problem(type, size, 12);
      SendTime t{le64(v), le32(v + 8)};
      switch (static_cast<SendAttr>(type)) {
        case A::ATIME: c.atime = t; break;
        case A::MTIME: c.mtime = t; break;
        case A::CTIME: c.ctime = t; break;
        default: c.otime = t; break;
      }
      return {};
    }
    case Kind::kString: {
      std::string_view s(reinterpret_cast<const char*>(v), size);
      switch (static_cast<SendAttr>(type)) {
        case A::PATH: c.path = s; break;
        case A::PATH_TO: c.path_to = s; break;
        case A::PATH_LINK: c.path_link = s; break;
        case A::CLONE_PATH: c.clone_path = s; break;
        default: c.xattr_name = s; break;
      }
      return {};
    }
    case Kind::kBytes:
      if (type == static_cast<uint16_t>(A::DATA)) {
        c.data = {v, size};
      } else if (type == static_cast<uint16_t>(A::XATTR_DATA)) {
        c.xattr_data = {v, size};
      }
      return {};
    case Kind::kNone:
      break;
  }
  return "attribute type " + std::to_string(type) + " is unknown";
}

// The TLVs of one command's payload: bounds, types, sizes, duplicates.
std::string parse_attributes(SendCommand& c, const uint8_t* p, size_t len, uint32_t version) {
  const uint8_t* end = p + len;
  const uint16_t max = max_attr(version);
  while (p < end) {
    auto left = static_cast<size_t>(end - p);
    if (left < 2) return "an attribute header is cut short by the end of the command";
    uint16_t type = le16(p);
    if (type == 0 || type > max) {
      return "attribute type " + std::to_string(type) + " is out of range for stream version " +
             std::to_string(version);
    }
    const uint8_t* value;
    size_t size;
    if (type == static_cast<uint16_t>(A::DATA) && version >= 2) {
      value = p + 2;  // no length from v2 on: the rest of the command
      size = left - 2;
      p = end;
    } else {
      if (left < 4) return std::string("attribute ") + kAttrs[type].name + " is cut short by the end of the command";
      size = le16(p + 2);
      value = p + 4;
      if (size > left - 4) {
        return std::string("attribute ") + kAttrs[type].name + " (" + std::to_string(size) +
               " bytes) runs past the end of the command (" + std::to_string(left - 4) + " bytes left)";
      }
      p = value + size;
    }
    if (c.present.test(type)) return std::string("duplicate attribute ") + kAttrs[type].name;
    c.present.set(type);
    std::string why = store(c, type, value, size);
    if (!why.empty()) return why;
  }
  return {};
}

// Required attributes and path rules, once the TLVs are parsed.
std::string check_command(const SendCommand& c, uint32_t version) {
  const auto type = static_cast<uint16_t>(c.cmd);
  const CmdInfo& info = kCmds[type];
  uint64_t missing = info.required & ~c.present.to_ullong();
  if (missing != 0) {
    unsigned first = 0;
    while ((missing & (uint64_t{1} << first)) == 0) first++;
    std::string why = std::string("the command has no ") + kAttrs[first].name + " attribute";
    if (version >= 2 && c.has(A::DATA)) {
      why += " (from stream version 2 on, DATA takes the rest of the command, so it must be the last attribute)";
    }
    return why;
  }
  if (c.has(A::PATH)) {
    const bool subvol = c.cmd == SendCmd::SUBVOL || c.cmd == SendCmd::SNAPSHOT;
    const char* why = subvol ? name_problem(c.path) : (c.path.empty() && info.root_ok) ? nullptr : path_problem(c.path);
    if (why != nullptr) return std::string(subvol ? "subvolume name " : "PATH ") + why;
  }
  if (c.has(A::PATH_TO)) {
    if (const char* why = path_problem(c.path_to)) return "PATH_TO " + quoted(c.path_to) + " " + why;
  }
  if (c.has(A::CLONE_PATH)) {
    if (const char* why = path_problem(c.clone_path)) return "CLONE_PATH " + quoted(c.clone_path) + " " + why;
  }
  if (c.has(A::PATH_LINK)) {
    const bool symlink = c.cmd == SendCmd::SYMLINK;
    const char* why = symlink ? target_problem(c.path_link) : path_problem(c.path_link);
    if (why != nullptr) return std::string(symlink ? "symlink target " : "PATH_LINK ") + quoted(c.path_link) + " " + why;
  }
  if (c.has(A::XATTR_NAME)) {
    if (const char* why = xattr_name_problem(c.xattr_name)) return "XATTR_NAME " + quoted(c.xattr_name) + " " + why;
  }
  return {};
}

// PATH of a command that is refused before its attributes are checked (bad
// CRC, unknown number...): only to say where; bounds-checked, never trusted.
std::string_view path_hint(const uint8_t* p, size_t len, uint32_t version) {
  const uint8_t* end = p + len;
  while (end - p >= 4) {
    uint16_t type = le16(p);
    if (type == static_cast<uint16_t>(A::DATA) && version >= 2) break;
    size_t size = le16(p + 2);
    if (size > static_cast<size_t>(end - p) - 4) break;
    if (type == static_cast<uint16_t>(A::PATH)) return {reinterpret_cast<const char*>(p + 4), size};
    p += 4 + size;
  }
  return {};
}

}  // namespace

const char* send_cmd_name(uint16_t cmd) noexcept { return cmd < kCmdCount ? kCmds[cmd].name : "UNKNOWN"; }

const char* send_attr_name(uint16_t attr) noexcept { return attr < kAttrCount ? kAttrs[attr].name : "UNKNOWN"; }

StreamError::StreamError(const char* code_, std::string reason_, uint64_t command_, uint16_t command_type_,
                         std::string path_, uint64_t offset_)
    : code(code_),
      reason(std::move(reason_)),
      command(command_),
      command_type(command_type_),
      path(std::move(path_)),
      offset(offset_) {
  message_ = code + ": " + reason + ", ";
  if (command == 0) {
    message_ += "stream header";
  } else {
    message_ += "command " + std::to_string(command);
    if (command_type != 0) {
      message_ += std::string(" (") + send_cmd_name(command_type);
      if (!path.empty()) message_ += " '" + path + "'";
      message_ += ")";
    }
  }
}

ByteSource::~ByteSource() = default;

size_t MemorySource::read(uint8_t* buf, size_t len) noexcept {
  size_t n = std::min(len, size_ - pos_);
  if (n > 0) std::memcpy(buf, data_ + pos_, n);
  pos_ += n;
  return n;
}

SendStreamReader::SendStreamReader(ByteSource& source, size_t buffer_size)
    : source_(source), capacity_(std::max(buffer_size, kCmdHeader + kMaxCommandV2)) {
  buf_.reset(new uint8_t[capacity_]);
  set_end(0);
}

SendStreamReader::~SendStreamReader() { BV_UNPOISON(buf_.get(), capacity_); }

// Moves end_, and the ASan red zone that follows it (a no-op otherwise). Only
// the zone is poisoned, not the whole free tail: the buffer is megabytes, and
// a source may read in small pieces.
void SendStreamReader::set_end(size_t end) {
  BV_UNPOISON(buf_.get() + end_, std::min(kRedZone, capacity_ - end_));
  end_ = end;
  BV_POISON(buf_.get() + end_, std::min(kRedZone, capacity_ - end_));
}

// Makes @want bytes available from pos_ if the input has them; returns how
// many are available (fewer only at the end of the input).
size_t SendStreamReader::fill(size_t want) {
  if (end_ - pos_ >= want) return end_ - pos_;
  if (pos_ == end_) {
    pos_ = 0;
    set_end(0);
  } else if (pos_ + want > capacity_) {
    std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);  // at most one command's worth
    set_end(end_ - pos_);
    pos_ = 0;
  }
  while (end_ - pos_ < want && !eof_) {
    const size_t room = capacity_ - end_;
    BV_UNPOISON(buf_.get() + end_, std::min(kRedZone, room));  // the source may write there
    size_t n = source_.read(buf_.get() + end_, room);
    if (n > room) throw std::logic_error("ByteSource::read returned more bytes than asked for");
    if (n == 0) eof_ = true;
    set_end(end_ + n);
  }
  return end_ - pos_;
}

void SendStreamReader::consume(size_t n) {
  pos_ += n;
  consumed_ += n;
}

void SendStreamReader::fail(const char* code, std::string reason, uint16_t type, std::string_view path) {
  const uint64_t command = state_ == State::kInStream ? commands_ : 0;
  throw StreamError(code, std::move(reason), command, type, escape(path), error_offset_);
}

bool SendStreamReader::next_stream() {
  if (state_ == State::kFailed) throw std::logic_error("SendStreamReader used after an error");
  if (state_ == State::kInStream) throw std::logic_error("SendStreamReader::next_stream() before the END of the stream");
  try {
    BV_UNPOISON(buf_.get(), end_);
    error_offset_ = consumed_;
    const size_t have = fill(kStreamHeader);
    if (have == 0) {
      if (state_ == State::kStart) fail(kStreamTruncated, "the input is empty", 0);
      return false;
    }
    if (have < kStreamHeader) {
      fail(kStreamTruncated, "the input ends inside a stream header (" + std::to_string(have) + " of 17 bytes)", 0);
    }
    const uint8_t* h = buf_.get() + pos_;
    if (std::memcmp(h, kMagic, sizeof(kMagic)) != 0) fail(kStreamInvalid, "not a btrfs send stream (bad magic)", 0);
    const uint32_t version = le32(h + sizeof(kMagic));
    if (version == 0) fail(kStreamInvalid, "stream version 0 does not exist", 0);
    if (version > kMaxVersion) {
      fail(kStreamUnsupported, "stream version " + std::to_string(version) + " is not supported (only 1 and 2)", 0);
    }
    version_ = version;
    streams_++;
    consume(kStreamHeader);
    state_ = State::kInStream;
    expect_subvol_ = true;
    return true;
  } catch (...) {
    state_ = State::kFailed;
    throw;
  }
}

bool SendStreamReader::next(SendCommand& cmd) {
  switch (state_) {
    case State::kInStream:
      break;
    case State::kBetween:
      return false;
    case State::kStart:
      throw std::logic_error("SendStreamReader::next() before next_stream()");
    case State::kFailed:
      throw std::logic_error("SendStreamReader used after an error");
  }
  try {
    return read_command(cmd);
  } catch (...) {
    state_ = State::kFailed;
    throw;
  }
}

bool SendStreamReader::read_command(SendCommand& cmd) {
  BV_UNPOISON(buf_.get(), end_);  // the previous command's guard
  commands_++;
  error_offset_ = consumed_;
  size_t have = fill(kCmdHeader);
  if (have == 0) fail(kStreamTruncated, "the input ends before the END command", 0);
  if (have < kCmdHeader) {
    fail(kStreamTruncated, "the input ends inside a command header (" + std::to_string(have) + " of 10 bytes)", 0);
  }
  const uint32_t len = le32(buf_.get() + pos_);
  const uint16_t type = le16(buf_.get() + pos_ + 4);
  const uint32_t crc = le32(buf_.get() + pos_ + 6);
  const size_t limit = version_ == 1 ? kMaxCommandV1 : kMaxCommandV2;
  if (len > limit) {
    fail(kStreamInvalid, "command length " + std::to_string(len) + " is over the limit of " + std::to_string(limit) +
                             " bytes for stream version " + std::to_string(version_), type);
  }
  const size_t total = kCmdHeader + len;
  have = fill(total);
  if (have < total) {
    fail(kStreamTruncated, "the input ends inside the command (" + std::to_string(have) + " of " +
                               std::to_string(total) + " bytes)", type);
  }
  const uint8_t* h = buf_.get() + pos_;
  const uint8_t* payload = h + kCmdHeader;
  BV_POISON(buf_.get(), pos_);  // only this command is addressable from here on
  BV_POISON(buf_.get() + pos_ + total, end_ - pos_ - total);

  // The CRC covers the header with its crc field zeroed, then the payload.
  static const uint8_t kZeros[4] = {};
  const uint32_t actual = crc32c(crc32c(crc32c(0, h, 6), kZeros, 4), payload, len);
  if (actual != crc) fail(kStreamChecksum, "bad checksum", type, path_hint(payload, len, version_));

  if (type == 0 || type >= kCmdCount) {
    fail(kStreamInvalid, "unknown command type " + std::to_string(type), type, path_hint(payload, len, version_));
  }
  if (type > max_cmd(version_)) {
    fail(kStreamInvalid, std::string("command ") + kCmds[type].name + " (" + std::to_string(type) +
                             ") does not exist in stream version " + std::to_string(version_),
         type, path_hint(payload, len, version_));
  }
  if (type == static_cast<uint16_t>(SendCmd::UPDATE_EXTENT)) {
    fail(kStreamUnsupported, "stream has no file data (sent with --no-data)", type, path_hint(payload, len, version_));
  }
  if (expect_subvol_ && type != static_cast<uint16_t>(SendCmd::SUBVOL) &&
      type != static_cast<uint16_t>(SendCmd::SNAPSHOT)) {
    fail(kStreamInvalid, "a stream must start with SUBVOL or SNAPSHOT", type, path_hint(payload, len, version_));
  }

  cmd = SendCommand{};
  cmd.cmd = static_cast<SendCmd>(type);
  cmd.index = commands_;
  cmd.offset = consumed_;
  std::string why = parse_attributes(cmd, payload, len, version_);
  if (why.empty()) why = check_command(cmd, version_);
  if (!why.empty()) fail(kStreamInvalid, std::move(why), type, cmd.has(A::PATH) ? cmd.path : path_hint(payload, len, version_));

  consume(total);
  expect_subvol_ = false;
  if (cmd.cmd == SendCmd::END) state_ = State::kBetween;
  return true;
}

}  // namespace bv::core
