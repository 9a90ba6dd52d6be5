#include "beneath_bindings.h"

#include <functional>
#include <optional>
#include <string>

#include <sys/stat.h>

#include "../core/beneath.h"
#include "../core/path.h"
#include "../core/sys_error.h"
#include "convert.h"
#include "promise_worker.h"

namespace bv::napi {

namespace {

std::optional<core::TimeNs> time_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() > i && info[i].IsNull()) return std::nullopt;
  if (info.Length() <= i || !info[i].IsBigInt()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a bigint (ns) or null");
  bool lossless = false;
  int64_t v = info[i].As<Napi::BigInt>().Int64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(info.Env(), std::string(what) + " is out of range");
  return v;
}

// writeFileAt's expect: undefined or null, or { ino: bigint, size: number, mtimeNs: bigint }.
std::optional<core::Expected> expected_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return std::nullopt;
  if (!info[i].IsObject()) throw Napi::TypeError::New(env, "expect must be an object or null");
  Napi::Object o = info[i].As<Napi::Object>();
  Napi::Value ino = o.Get("ino"), size = o.Get("size"), mtime = o.Get("mtimeNs");
  if (!ino.IsBigInt() || !size.IsNumber() || !mtime.IsBigInt()) {
    throw Napi::TypeError::New(env, "expect must be { ino: bigint, size: number, mtimeNs: bigint }");
  }
  bool lossless = false;
  core::Expected e;
  e.ino = ino.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, "expect.ino is out of range");
  e.mtime = mtime.As<Napi::BigInt>().Int64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, "expect.mtimeNs is out of range");
  double sz = size.As<Napi::Number>().DoubleValue();
  if (!(sz >= 0 && sz <= 9007199254740991.0) || sz != static_cast<double>(static_cast<uint64_t>(sz))) throw Napi::RangeError::New(env, "expect.size is out of range");
  e.size = static_cast<uint64_t>(sz);
  return e;
}

core::BeneathOpen how_arg(const Napi::CallbackInfo& info, size_t i) {
  std::string how = info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (how == "read") return core::BeneathOpen::read;
  if (how == "directory") return core::BeneathOpen::directory;
  if (how == "create") return core::BeneathOpen::create;
  throw Napi::TypeError::New(info.Env(), "how must be 'read', 'directory' or 'create'");
}

Napi::Object stat_to_js(Napi::Env env, const core::EntryStat& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", Napi::Number::New(env, st.mode));
  o.Set("uid", Napi::Number::New(env, st.uid));
  o.Set("gid", Napi::Number::New(env, st.gid));
  o.Set("size", Napi::Number::New(env, static_cast<double>(st.size)));
  o.Set("dev", Napi::Number::New(env, static_cast<double>(st.dev)));
  o.Set("ino", Napi::Number::New(env, static_cast<double>(st.ino)));
  o.Set("nlink", Napi::Number::New(env, static_cast<double>(st.nlink)));
  o.Set("mtimeNs", Napi::BigInt::New(env, static_cast<int64_t>(st.mtime)));
  o.Set("ctimeNs", Napi::BigInt::New(env, static_cast<int64_t>(st.ctime)));
  return o;
}

// Runs @work(): the errors of a call on @dirfd name paths relative to it;
// they are made to name the real path (what @dirfd is, joined with theirs).
template <typename Work>
auto naming_real_path(int dirfd, Work work) -> decltype(work()) {
  try {
    return work();
  } catch (const core::SysError& e) {
    throw core::SysError(e.err, e.syscall, core::fd_describe(dirfd, e.path));
  }
}

// Runs @work(dirfd, path) on the pool, for a dir given as an fd or as a path
// (opened, followed like any: the caller's place); its errors name real paths.
template <typename T>
Napi::Value run_beneath(const Napi::CallbackInfo& info, const char* name, std::string path,
                        std::function<T(int, const std::string&)> work, typename PromiseWorker<T>::Convert convert) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && info[0].IsString()) {
    std::string dir = path_arg(info, 0, "dir");
    return PromiseWorker<T>::Run(
        env, name,
        [dir, path, work] {
          core::Fd root = core::dir_open(dir);
          return naming_real_path(root.get(), [&] { return work(root.get(), path); });
        },
        convert);
  }
  int dirfd = fd_arg(info, 0, "dir");
  return PromiseWorker<T>::Run(
      env, name, [dirfd, path, work] { return naming_real_path(dirfd, [&] { return work(dirfd, path); }); }, convert);
}

}  // namespace

Napi::Value ListBeneath(const Napi::CallbackInfo& info) {
  std::string path = rel_arg(info, 1, "path");
  return run_beneath<core::DirListing>(
      info, "buttervolume:listBeneath", path,
      [](int dirfd, const std::string& p) { return core::dir_list_beneath_at(dirfd, p, p); },
      [](Napi::Env env, core::DirListing& list) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("self", stat_to_js(env, list.self));
        Napi::Array entries = Napi::Array::New(env, list.entries.size());
        for (size_t i = 0; i < list.entries.size(); i++) {
          const core::ListedEntry& e = list.entries[i];
          Napi::Object o = stat_to_js(env, e.stat);
          o.Set("name", Napi::Buffer<char>::Copy(env, e.name.data(), e.name.size()));
          if (S_ISLNK(e.stat.mode)) o.Set("target", Napi::Buffer<char>::Copy(env, e.target.data(), e.target.size()));
          entries.Set(static_cast<uint32_t>(i), o);
        }
        out.Set("entries", entries);
        return out;
      });
}

Napi::Value ReadFileBeneath(const Napi::CallbackInfo& info) {
  std::string path = rel_arg(info, 1, "path");
  if (info.Length() <= 2 || !info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "max must be a number");
  double maxd = info[2].As<Napi::Number>().DoubleValue();
  if (!(maxd >= 1 && maxd <= 64.0 * 1024 * 1024)) throw Napi::RangeError::New(info.Env(), "max must be from 1 to 64 MiB");
  size_t max = static_cast<size_t>(maxd);
  return run_beneath<core::FileRead>(
      info, "buttervolume:readFileBeneath", path,
      [max](int dirfd, const std::string& p) { return core::file_read_beneath_at(dirfd, p, max, p); },
      [](Napi::Env env, core::FileRead& r) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("stat", stat_to_js(env, r.stat));
        out.Set("data", Napi::Buffer<char>::Copy(env, r.data.data(), r.data.size()));
        out.Set("eof", Napi::Boolean::New(env, r.eof));
        out.Set("complete", Napi::Boolean::New(env, r.complete));
        out.Set("fd", r.fd >= 0 ? Napi::Value(Napi::Number::New(env, r.fd)) : env.Null());
        return out;
      });
}

Napi::Value OpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = rel_arg(info, 1, "path");
  core::BeneathOpen how = how_arg(info, 2);
  if (info.Length() <= 3 || !info[3].IsNumber()) throw Napi::TypeError::New(env, "mode must be a number");
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value() & 07777);
  auto convert = [](Napi::Env e, int& fd) -> Napi::Value { return Napi::Number::New(e, fd); };
  if (info.Length() > 0 && info[0].IsString()) {
    std::string dir = path_arg(info, 0, "dir");
    return PromiseWorker<int>::Run(
        env, "buttervolume:openBeneath", [dir, path, how, mode] { return core::entry_open_beneath(dir, path, how, mode).release(); },
        convert);
  }
  int dirfd = fd_arg(info, 0, "dir");
  return PromiseWorker<int>::Run(
      env, "buttervolume:openBeneath",
      [dirfd, path, how, mode] {
        return naming_real_path(dirfd, [&] { return core::entry_open_beneath_at(dirfd, path, how, mode, path).release(); });
      },
      convert);
}

Napi::Value SetTimesAt(const Napi::CallbackInfo& info) {
  int dirfd = fd_arg(info, 0, "dirfd");
  std::string name = rel_arg(info, 1, "name");
  std::optional<core::TimeNs> atime = time_arg(info, 2, "atime");
  std::optional<core::TimeNs> mtime = time_arg(info, 3, "mtime");
  return run_void(info.Env(), "buttervolume:setTimesAt", [dirfd, name, atime, mtime] {
    naming_real_path(dirfd, [&] { core::entry_set_times_at(dirfd, name, atime, mtime, name); });
  });
}

Napi::Value WriteFileAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = fd_arg(info, 0, "dirfd");
  std::string name = rel_arg(info, 1, "name");
  if (info.Length() <= 2 || !info[2].IsBuffer()) throw Napi::TypeError::New(env, "data must be a Buffer");
  Napi::Buffer<char> buf = info[2].As<Napi::Buffer<char>>();
  std::string data(buf.Data(), buf.Length());  // copied: the worker runs off the JS thread
  auto u32 = [&](size_t i, const char* what) {
    if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(env, std::string(what) + " must be a number");
    return info[i].As<Napi::Number>().Uint32Value();
  };
  core::FileMeta meta;
  meta.uid = static_cast<uid_t>(u32(3, "uid"));
  meta.gid = static_cast<gid_t>(u32(4, "gid"));
  meta.mode = static_cast<mode_t>(u32(5, "mode") & 07777);
  std::optional<core::TimeNs> mtime = time_arg(info, 6, "mtime");
  if (!mtime) throw Napi::TypeError::New(env, "mtime must be a bigint (ns)");
  meta.mtime = *mtime;
  if (info.Length() <= 7 || !info[7].IsBoolean()) throw Napi::TypeError::New(env, "replace must be a boolean");
  bool replace = info[7].As<Napi::Boolean>().Value();
  std::string prefix = rel_arg(info, 8, "tempPrefix");
  std::optional<core::Expected> expect = expected_arg(info, 9);
  bool durable = info.Length() > 10 && info[10].IsBoolean() && info[10].As<Napi::Boolean>().Value();
  using Ino = std::optional<uint64_t>;
  return PromiseWorker<Ino>::Run(
      env, "buttervolume:writeFileAt",
      [dirfd, name, data = std::move(data), meta, replace, prefix, expect, durable]() -> Ino {
        std::optional<ino_t> ino = naming_real_path(
            dirfd, [&] { return core::file_write_at(dirfd, name, data, meta, replace, prefix, name, expect, durable); });
        return ino ? Ino(static_cast<uint64_t>(*ino)) : std::nullopt;
      },
      [](Napi::Env e, Ino& ino) -> Napi::Value { return ino ? Napi::Value(Napi::BigInt::New(e, *ino)) : e.Null(); });
}

}  // namespace bv::napi
