#include "send_stream_dump.h"

#include "../core/send_stream.h"
#include "../core/uuid.h"
#include "errors.h"

namespace bv::napi {

namespace {

using core::SendAttr;

// Numbers while exact, BigInt above 2^53 - 1 (offsets and sizes can be).
Napi::Value u64(Napi::Env env, uint64_t v) {
  constexpr uint64_t kMaxSafe = (uint64_t{1} << 53) - 1;
  if (v <= kMaxSafe) return Napi::Number::New(env, static_cast<double>(v));
  return Napi::BigInt::New(env, v);
}

// Stream strings are bytes; the dump shows them as UTF-8 (invalid bytes
// become U+FFFD), which is what a debugging view needs.
Napi::String text(Napi::Env env, std::string_view s) { return Napi::String::New(env, s.data(), s.size()); }

// The nil UUID too (as it is in the stream): a dump hides nothing.
Napi::String uuid_text(Napi::Env env, const std::array<uint8_t, 16>& u) {
  return Napi::String::New(env, core::uuid_string(u));
}

Napi::Object time_obj(Napi::Env env, const core::SendTime& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sec", u64(env, t.sec));
  o.Set("nsec", Napi::Number::New(env, t.nsec));
  return o;
}

Napi::Object command_to_js(Napi::Env env, const core::SendCommand& c, uint64_t stream) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("stream", u64(env, stream));
  o.Set("index", u64(env, c.index));
  o.Set("offset", u64(env, c.offset));
  o.Set("command", core::send_cmd_name(static_cast<uint16_t>(c.cmd)));
  auto str = [&](SendAttr a, const char* key, std::string_view v) {
    if (c.has(a)) o.Set(key, text(env, v));
  };
  auto num = [&](SendAttr a, const char* key, uint64_t v) {
    if (c.has(a)) o.Set(key, u64(env, v));
  };
  auto time = [&](SendAttr a, const char* key, const core::SendTime& t) {
    if (c.has(a)) o.Set(key, time_obj(env, t));
  };
  str(SendAttr::PATH, "path", c.path);
  str(SendAttr::PATH_TO, "pathTo", c.path_to);
  str(SendAttr::PATH_LINK, "pathLink", c.path_link);
  str(SendAttr::CLONE_PATH, "clonePath", c.clone_path);
  if (c.has(SendAttr::UUID)) o.Set("uuid", uuid_text(env, c.uuid));
  if (c.has(SendAttr::CLONE_UUID)) o.Set("cloneUuid", uuid_text(env, c.clone_uuid));
  num(SendAttr::CTRANSID, "ctransid", c.ctransid);
  num(SendAttr::CLONE_CTRANSID, "cloneCtransid", c.clone_ctransid);
  num(SendAttr::INO, "ino", c.ino);
  num(SendAttr::SIZE, "size", c.size);
  num(SendAttr::MODE, "mode", c.mode);
  num(SendAttr::UID, "uid", c.uid);
  num(SendAttr::GID, "gid", c.gid);
  num(SendAttr::RDEV, "rdev", c.rdev);
  num(SendAttr::FILE_OFFSET, "fileOffset", c.file_offset);
  num(SendAttr::CLONE_OFFSET, "cloneOffset", c.clone_offset);
  num(SendAttr::CLONE_LEN, "cloneLen", c.clone_len);
  num(SendAttr::FILEATTR, "fileattr", c.fileattr);
  num(SendAttr::UNENCODED_FILE_LEN, "unencodedFileLen", c.unencoded_file_len);
  num(SendAttr::UNENCODED_LEN, "unencodedLen", c.unencoded_len);
  num(SendAttr::UNENCODED_OFFSET, "unencodedOffset", c.unencoded_offset);
  num(SendAttr::FALLOCATE_MODE, "fallocateMode", c.fallocate_mode);
  num(SendAttr::COMPRESSION, "compression", c.compression);
  num(SendAttr::ENCRYPTION, "encryption", c.encryption);
  time(SendAttr::ATIME, "atime", c.atime);
  time(SendAttr::MTIME, "mtime", c.mtime);
  time(SendAttr::CTIME, "ctime", c.ctime);
  time(SendAttr::OTIME, "otime", c.otime);
  if (c.has(SendAttr::DATA)) o.Set("dataLength", u64(env, c.data.size));
  str(SendAttr::XATTR_NAME, "xattrName", c.xattr_name);
  if (c.has(SendAttr::XATTR_DATA)) o.Set("xattrData", Napi::Buffer<uint8_t>::Copy(env, c.xattr_data.data, c.xattr_data.size));
  return o;
}

}  // namespace

Napi::Value DumpSendStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "data must be a Uint8Array");
  }
  Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
  core::MemorySource source(data.Data(), data.ByteLength());
  core::SendStreamReader reader(source, 0);  // the smallest buffer: the input is in memory already
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  try {
    while (reader.next_stream()) {
      core::SendCommand cmd;
      while (reader.next(cmd)) out.Set(n++, command_to_js(env, cmd, reader.stream_index()));
    }
  } catch (const core::StreamError& e) {
    throw_js(env, e);
  }
  return out;
}

}  // namespace bv::napi
