// Reading a btrfs send stream (btrfs-ioctls.md section 3): framing, CRC and
// every check a receiver needs before it acts on a command. Pure C++, no
// syscalls and no N-API, so it can be fuzzed and tested on plain bytes.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

namespace bv::core {

/** Command numbers of the send stream (kernel-shared/send.h). */
enum class SendCmd : uint16_t {
  SUBVOL = 1,
  SNAPSHOT = 2,
  MKFILE = 3,
  MKDIR = 4,
  MKNOD = 5,
  MKFIFO = 6,
  MKSOCK = 7,
  SYMLINK = 8,
  RENAME = 9,
  LINK = 10,
  UNLINK = 11,
  RMDIR = 12,
  SET_XATTR = 13,
  REMOVE_XATTR = 14,
  WRITE = 15,
  CLONE = 16,
  TRUNCATE = 17,
  CHMOD = 18,
  CHOWN = 19,
  UTIMES = 20,
  END = 21,
  UPDATE_EXTENT = 22,
  FALLOCATE = 23,       // v2
  FILEATTR = 24,        // v2
  ENCODED_WRITE = 25,   // v2
  ENABLE_VERITY = 26,   // v3
};

/** Attribute (TLV) types of the send stream. */
enum class SendAttr : uint16_t {
  UUID = 1,
  CTRANSID = 2,
  INO = 3,
  SIZE = 4,
  MODE = 5,
  UID = 6,
  GID = 7,
  RDEV = 8,
  CTIME = 9,
  MTIME = 10,
  ATIME = 11,
  OTIME = 12,
  XATTR_NAME = 13,
  XATTR_DATA = 14,
  PATH = 15,
  PATH_TO = 16,
  PATH_LINK = 17,
  FILE_OFFSET = 18,
  DATA = 19,
  CLONE_UUID = 20,
  CLONE_CTRANSID = 21,
  CLONE_PATH = 22,
  CLONE_OFFSET = 23,
  CLONE_LEN = 24,
  FALLOCATE_MODE = 25,      // v2
  FILEATTR = 26,            // v2
  UNENCODED_FILE_LEN = 27,  // v2
  UNENCODED_LEN = 28,       // v2
  UNENCODED_OFFSET = 29,    // v2
  COMPRESSION = 30,         // v2
  ENCRYPTION = 31,          // v2
  VERITY_ALGORITHM = 32,    // v3
  VERITY_BLOCK_SIZE = 33,   // v3
  VERITY_SALT_DATA = 34,    // v3
  VERITY_SIG_DATA = 35,     // v3
};

/** "SUBVOL", "WRITE", ... for a command number; "UNKNOWN" for any other. Never throws. */
const char* send_cmd_name(uint16_t cmd) noexcept;

/** "PATH", "DATA", ... for an attribute type; "UNKNOWN" for any other. Never throws. */
const char* send_attr_name(uint16_t attr) noexcept;

/** StreamError::code values. */
inline constexpr const char* kStreamTruncated = "ERR_SEND_STREAM_TRUNCATED";
inline constexpr const char* kStreamChecksum = "ERR_SEND_STREAM_CHECKSUM";
inline constexpr const char* kStreamInvalid = "ERR_SEND_STREAM_INVALID";
inline constexpr const char* kStreamUnsupported = "ERR_SEND_STREAM_UNSUPPORTED";

/**
 * A stream the reader refuses. what() is one line:
 * "ERR_SEND_STREAM_CHECKSUM: bad checksum, command 37 (WRITE 'a/b')".
 */
struct StreamError : std::exception {
  StreamError(const char* code, std::string reason, uint64_t command, uint16_t command_type,
              std::string path, uint64_t offset);

  std::string code;          // one of the kStream* values
  std::string reason;        // one line without the location: "bad checksum"
  uint64_t command = 0;      // 1-based index of the command in the whole input; 0 = a stream header
  uint16_t command_type = 0; // its command number as read (0 when not read yet)
  std::string path;          // its PATH when known: control bytes escaped (\n, \ooo), cut at 256 bytes
  uint64_t offset = 0;       // byte offset in the input of that command's (or header's) first byte

  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/** Where the reader gets its bytes from (a file, a pipe, memory...). */
class ByteSource {
 public:
  virtual ~ByteSource();

  /**
   * read() - copy up to @len (> 0) bytes into @buf.
   * Returns how many were copied, 0 only at the end of the input. May
   * block, and may throw (the reader lets the exception through).
   */
  virtual size_t read(uint8_t* buf, size_t len) = 0;
};

/** A ByteSource over a buffer the caller keeps alive. */
class MemorySource final : public ByteSource {
 public:
  MemorySource(const uint8_t* data, size_t size) noexcept : data_(data), size_(size) {}
  size_t read(uint8_t* buf, size_t len) noexcept override;

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

/** A send-stream timespec: u64 seconds and u32 nanoseconds. */
struct SendTime {
  uint64_t sec = 0;
  uint32_t nsec = 0;
};

/**
 * One command, framed, checksummed and validated by SendStreamReader::next().
 * Only the attributes present in the stream are set (has()); the others are
 * zero or empty. Views and spans point into the reader's buffer and stay
 * valid until the next call on the reader.
 */
struct SendCommand {
  struct Span {
    const uint8_t* data = nullptr;
    size_t size = 0;
  };

  SendCmd cmd{};
  uint64_t index = 0;   // 1-based, counted over the whole input (all streams)
  uint64_t offset = 0;  // byte offset of the command header in the input
  std::bitset<36> present;  // bit n set when attribute type n appeared

  // Paths are relative to the subvolume being received and checked (see
  // SendStreamReader::next()); path_link is SYMLINK's target or LINK's source.
  std::string_view path, path_to, path_link, clone_path, xattr_name;
  Span data, xattr_data;  // WRITE/ENCODED_WRITE payload; SET_XATTR value
  std::array<uint8_t, 16> uuid{}, clone_uuid{};
  uint64_t ctransid = 0, clone_ctransid = 0, ino = 0, size = 0, mode = 0, uid = 0, gid = 0, rdev = 0,
           file_offset = 0, clone_offset = 0, clone_len = 0, fileattr = 0, unencoded_file_len = 0,
           unencoded_len = 0, unencoded_offset = 0;
  uint32_t fallocate_mode = 0, compression = 0, encryption = 0;
  SendTime atime, mtime, ctime, otime;

  bool has(SendAttr attr) const noexcept { return present.test(static_cast<size_t>(attr)); }
};

/**
 * Pulls commands out of one input holding one or more send streams, as
 * `btrfs send a b` (streams back to back) and `btrfs send -e a b` (several
 * subvolumes under one header and one END) write them.
 *
 *   SendStreamReader reader(source);
 *   while (reader.next_stream())
 *     for (SendCommand cmd; reader.next(cmd);) apply(cmd);
 *
 * Memory is one buffer of buffer_size bytes whatever the input (commands are
 * capped); the source is read in chunks that fill it, and commands are
 * handed out as views into it: no allocation and no copy per command.
 * After a StreamError (or an exception from the source) the reader is
 * failed: any further call throws std::logic_error.
 */
class SendStreamReader {
 public:
  /** Largest command payload accepted: the kernel's v1 buffer is 64 KiB. */
  static constexpr size_t kMaxCommandV1 = 64 << 10;
  /** v2: the kernel uses 16 KiB + 128 KiB (encoded writes); generous slack above. */
  static constexpr size_t kMaxCommandV2 = 1 << 20;
  /** Highest stream version read (v3 needs fs-verity support). */
  static constexpr uint32_t kMaxVersion = 2;

  /**
   * @source: read from as needed; must outlive the reader.
   * @buffer_size: raised to the largest command plus its header when smaller.
   * Allocates the buffer (std::bad_alloc); reads nothing yet.
   */
  explicit SendStreamReader(ByteSource& source, size_t buffer_size = 4 << 20);
  ~SendStreamReader();
  SendStreamReader(const SendStreamReader&) = delete;
  SendStreamReader& operator=(const SendStreamReader&) = delete;

  /**
   * next_stream() - read the next stream header (magic "btrfs-stream\0",
   * u32 version).
   * Returns false only at a clean end of input after a complete stream.
   * Throws StreamError: TRUNCATED (empty input, cut header), INVALID (bad
   * magic, version 0), UNSUPPORTED (version 3 and above); std::logic_error
   * when called before the current stream's END was read.
   */
  bool next_stream();

  /** Version of the current stream (1 or 2); 0 before the first header. */
  uint32_t version() const noexcept { return version_; }

  /** 1-based index of the current stream in the input; 0 before the first header. */
  uint64_t stream_index() const noexcept { return streams_; }

  /**
   * next() - read, verify and hand out the next command of the current stream.
   * Returns true with @cmd filled (END included); false once END was handed
   * out (then call next_stream()). Checks, in this order: the length against
   * kMaxCommandV1/V2; the CRC32C, before anything else is believed; the
   * command number (known, defined in this version; UPDATE_EXTENT is
   * UNSUPPORTED: the stream was sent without file data); SUBVOL or SNAPSHOT
   * first in a stream; the TLV framing (in bounds, type 1..max of the
   * version, exact sizes for integers, UUIDs and times, no duplicates, v2
   * DATA last by construction); the attributes the command needs; paths:
   * relative, no NUL, no empty, "." or ".." component, components <= 255
   * bytes, whole <= 4095; empty only for the subvolume root in CHOWN, CHMOD,
   * UTIMES, SET_XATTR, REMOVE_XATTR and FILEATTR; SUBVOL/SNAPSHOT names one
   * component; SYMLINK targets any non-empty bytes without NUL; xattr names
   * 1..255 bytes without NUL. Unknown-to-the-command attributes of a known
   * type are checked and kept, not refused (the kernel may add some).
   * Throws StreamError (TRUNCATED, CHECKSUM, INVALID, UNSUPPORTED), whatever
   * the source throws, and std::logic_error when no stream header was read;
   * @cmd is then unspecified.
   */
  bool next(SendCommand& cmd);

  /** Bytes of the input consumed so far: headers and commands handed out. */
  uint64_t bytes_read() const noexcept { return consumed_; }

 private:
  enum class State { kStart, kInStream, kBetween, kFailed };

  size_t fill(size_t want);
  void set_end(size_t end);
  void consume(size_t n);
  bool read_command(SendCommand& cmd);
  [[noreturn]] void fail(const char* code, std::string reason, uint16_t type, std::string_view path = {});

  ByteSource& source_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t capacity_;
  size_t pos_ = 0;  // first unconsumed byte of buf_
  size_t end_ = 0;  // one past the last byte read into buf_
  bool eof_ = false;
  State state_ = State::kStart;
  bool expect_subvol_ = false;  // no command of the current stream yet
  uint32_t version_ = 0;
  uint64_t streams_ = 0;
  uint64_t commands_ = 0;
  uint64_t consumed_ = 0;
  uint64_t error_offset_ = 0;
};

}  // namespace bv::core
