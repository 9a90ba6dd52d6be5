#include "beneath_bindings.h"

#include <optional>
#include <string>

#include "../core/beneath.h"
#include "../core/sys_error.h"
#include "promise_worker.h"

namespace bv::napi {

namespace {

int fd_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an fd");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 2147483647.0) || v != static_cast<double>(static_cast<int>(v))) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an fd (an integer >= 0)");
  }
  return static_cast<int>(v);
}

// A relative path or a name: may be empty (the directory itself), never holds NUL.
std::string rel_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), std::string(what) + " must not contain NUL bytes");
  return s;
}

std::optional<core::TimeNs> time_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() > i && info[i].IsNull()) return std::nullopt;
  if (info.Length() <= i || !info[i].IsBigInt()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a bigint (ns) or null");
  bool lossless = false;
  int64_t v = info[i].As<Napi::BigInt>().Int64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(info.Env(), std::string(what) + " is out of range");
  return v;
}

core::BeneathOpen how_arg(const Napi::CallbackInfo& info, size_t i) {
  std::string how = info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (how == "read") return core::BeneathOpen::read;
  if (how == "directory") return core::BeneathOpen::directory;
  if (how == "create") return core::BeneathOpen::create;
  throw Napi::TypeError::New(info.Env(), "how must be 'read', 'directory' or 'create'");
}

}  // namespace

Napi::Value OpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = rel_arg(info, 1, "path");
  core::BeneathOpen how = how_arg(info, 2);
  if (info.Length() <= 3 || !info[3].IsNumber()) throw Napi::TypeError::New(env, "mode must be a number");
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value() & 07777);
  auto convert = [](Napi::Env e, int& fd) -> Napi::Value { return Napi::Number::New(e, fd); };
  if (info.Length() > 0 && info[0].IsString()) {
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    if (dir.empty() || dir.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "dir must be a non-empty path without NUL bytes");
    return PromiseWorker<int>::Run(
        env, "buttervolume:openBeneath", [dir, path, how, mode] { return core::entry_open_beneath(dir, path, how, mode).release(); },
        convert);
  }
  int dirfd = fd_arg(info, 0, "dir");
  return PromiseWorker<int>::Run(
      env, "buttervolume:openBeneath",
      [dirfd, path, how, mode] {
        try {
          return core::entry_open_beneath_at(dirfd, path, how, mode, "").release();
        } catch (const core::SysError& e) {
          throw core::SysError(e.err, e.syscall, core::fd_describe(dirfd, path));
        }
      },
      convert);
}

Napi::Value SetTimesAt(const Napi::CallbackInfo& info) {
  int dirfd = fd_arg(info, 0, "dirfd");
  std::string name = rel_arg(info, 1, "name");
  std::optional<core::TimeNs> atime = time_arg(info, 2, "atime");
  std::optional<core::TimeNs> mtime = time_arg(info, 3, "mtime");
  return run_void(info.Env(), "buttervolume:setTimesAt", [dirfd, name, atime, mtime] {
    try {
      core::entry_set_times_at(dirfd, name, atime, mtime, "");
    } catch (const core::SysError& e) {
      throw core::SysError(e.err, e.syscall, core::fd_describe(dirfd, name));
    }
  });
}

}  // namespace bv::napi
