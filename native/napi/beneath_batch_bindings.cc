#include "beneath_batch_bindings.h"

#include <memory>
#include <string>
#include <vector>

#include "../core/beneath_batch.h"
#include "../core/path.h"
#include "convert.h"
#include "errors.h"
#include "promise_worker.h"

namespace bv::napi {

namespace {

constexpr size_t kWriteSpecBytes = 56;

std::vector<std::string> paths_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), "paths must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsString()) throw Napi::TypeError::New(info.Env(), "paths must hold strings");
    out.push_back(no_nul(info.Env(), v.As<Napi::String>().Utf8Value(), "a path"));
  }
  return out;
}

size_t size_arg(const Napi::CallbackInfo& info, size_t i, const char* what, double max) {
  double v = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= 1 && v <= max) || v != static_cast<double>(static_cast<uint64_t>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " is out of range");
  }
  return static_cast<size_t>(v);
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// A Buffer that takes over @s (no copy): freed when the Buffer is collected.
Napi::Buffer<char> take_buffer(Napi::Env env, std::string&& s) {
  if (s.empty()) return Napi::Buffer<char>::New(env, 0);
  auto* held = new std::string(std::move(s));
  return Napi::Buffer<char>::New(env, held->data(), held->size(), [](Napi::Env, char*, std::string* h) { delete h; }, held);
}

// Errors of a call on @dirfd name paths relative to it: made to name the real path.
template <typename Work>
auto naming_real_path(int dirfd, Work work) -> decltype(work()) {
  try {
    return work();
  } catch (const core::SysError& e) {
    throw core::SysError(e.err, e.syscall, core::fd_describe(dirfd, e.path));
  }
}

}  // namespace

Napi::Value ListBeneathPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = rel_arg(info, 1, "path");
  auto convert = [](Napi::Env e, core::PackedListing& l) -> Napi::Value {
    Napi::Object out = Napi::Object::New(e);
    out.Set("self", take_buffer(e, std::move(l.self)));
    out.Set("count", Napi::Number::New(e, l.count));
    out.Set("entries", take_buffer(e, std::move(l.entries)));
    return out;
  };
  if (info.Length() > 0 && info[0].IsString()) {
    std::string dir = path_arg(info, 0, "dir");
    return PromiseWorker<core::PackedListing>::Run(
        env, "buttervolume:listBeneathPacked",
        [dir, path] {
          core::Fd root = core::dir_open(dir);
          return naming_real_path(root.get(), [&] { return core::dir_list_packed_at(root.get(), path, path); });
        },
        convert);
  }
  int dirfd = fd_arg(info, 0, "dir");
  return PromiseWorker<core::PackedListing>::Run(
      env, "buttervolume:listBeneathPacked",
      [dirfd, path] { return naming_real_path(dirfd, [&] { return core::dir_list_packed_at(dirfd, path, path); }); }, convert);
}

Napi::Value ReadFilesBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = fd_arg(info, 0, "dir");
  std::vector<std::string> paths = paths_arg(info, 1);
  size_t max_bytes = size_arg(info, 2, "maxBytes", 1 << 30);
  size_t max_file = size_arg(info, 3, "maxFile", 64 << 20);
  return PromiseWorker<core::FilesRead>::Run(
      env, "buttervolume:readFilesBeneath",
      [dirfd, paths = std::move(paths), max_bytes, max_file] { return core::files_read_beneath(dirfd, paths, max_bytes, max_file); },
      [](Napi::Env e, core::FilesRead& r) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("done", Napi::Number::New(e, r.done));
        out.Set("packed", take_buffer(e, std::move(r.packed)));
        if (r.big) {
          Napi::Object big = Napi::Object::New(e);
          std::string stat;
          core::pack_stat(stat, r.big->stat);
          big.Set("stat", take_buffer(e, std::move(stat)));
          big.Set("ctimeNs", Napi::BigInt::New(e, static_cast<int64_t>(r.big->stat.ctime)));
          big.Set("data", take_buffer(e, std::move(r.big->data)));
          big.Set("fd", Napi::Number::New(e, r.big->fd));
          out.Set("big", big);
        } else {
          out.Set("big", e.Null());
        }
        return out;
      });
}

Napi::Value WriteFilesBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = fd_arg(info, 0, "dir");
  std::vector<std::string> paths = paths_arg(info, 1);
  if (info.Length() <= 3 || !info[2].IsBuffer() || !info[3].IsBuffer()) throw Napi::TypeError::New(env, "spec and data must be Buffers");
  Napi::Buffer<uint8_t> spec = info[2].As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<char> data = info[3].As<Napi::Buffer<char>>();
  std::string prefix = rel_arg(info, 4, "tempPrefix");
  if (prefix.empty() || prefix.find('/') != std::string::npos) throw Napi::TypeError::New(env, "tempPrefix must be one name component");
  if (spec.Length() != paths.size() * kWriteSpecBytes) throw Napi::RangeError::New(env, "spec must hold 56 bytes per path");
  std::vector<core::FileToWrite> files(paths.size());
  for (size_t i = 0; i < paths.size(); i++) {
    const uint8_t* s = spec.Data() + i * kWriteSpecBytes;
    core::FileToWrite& f = files[i];
    f.path = std::move(paths[i]);
    f.offset = get_u32(s);
    f.length = get_u32(s + 4);
    f.meta.uid = get_u32(s + 8);
    f.meta.gid = get_u32(s + 12);
    f.meta.mode = get_u32(s + 16) & 07777;
    uint32_t flags = get_u32(s + 20);
    f.meta.mtime = static_cast<core::TimeNs>(get_u64(s + 24));
    f.replace = (flags & 1) != 0;
    f.want_ino = (flags & 4) != 0;
    if (flags & 2) f.expect = core::Expected{get_u64(s + 32), get_u64(s + 40), static_cast<core::TimeNs>(get_u64(s + 48))};
    if (f.offset > data.Length() || f.length > data.Length() - f.offset) throw Napi::RangeError::New(env, "spec names bytes outside data");
  }
  std::string bytes(data.Data(), data.Length());  // copied: the worker runs off the JS thread
  using Results = std::vector<core::FileWritten>;
  return PromiseWorker<Results>::Run(
      env, "buttervolume:writeFilesBeneath",
      [dirfd, files = std::move(files), bytes = std::move(bytes), prefix] {
        return core::files_write_beneath(dirfd, files, bytes, prefix, core::fd_describe(dirfd, ""));
      },
      [](Napi::Env e, Results& results) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, results.size());
        for (size_t i = 0; i < results.size(); i++) {
          const core::FileWritten& r = results[i];
          Napi::Value v = r.error ? make_error(e, *r.error) : r.ino ? Napi::Value(Napi::BigInt::New(e, *r.ino)) : e.Null();
          out.Set(static_cast<uint32_t>(i), v);
        }
        return out;
      });
}

Napi::Value MakeDirBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = fd_arg(info, 0, "dir");
  std::string path = rel_arg(info, 1, "path");
  auto u32 = [&](size_t i, const char* what) {
    if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(env, std::string(what) + " must be a number");
    return info[i].As<Napi::Number>().Uint32Value();
  };
  uid_t uid = u32(2, "uid");
  gid_t gid = u32(3, "gid");
  mode_t mode = u32(4, "mode") & 07777;
  return run_void(env, "buttervolume:makeDirBeneath", [dirfd, path, uid, gid, mode] {
    naming_real_path(dirfd, [&] { core::dir_make_beneath(dirfd, path, uid, gid, mode, path); });
  });
}

}  // namespace bv::napi
