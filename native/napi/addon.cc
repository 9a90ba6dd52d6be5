// The module's exports. Every call that touches the filesystem returns a
// Promise (PromiseWorker, libuv pool); only tryLock is synchronous (and
// dumpSendStream, which parses memory only).
#include "addon.h"

#include <optional>
#include <vector>

#include "../core/filesystem.h"
#include "../core/flags.h"
#include "../core/lock.h"
#include "../core/rename.h"
#include "../core/subvolume.h"
#include "beneath_batch_bindings.h"
#include "beneath_bindings.h"
#include "convert.h"
#include "errors.h"
#include "lock_handle.h"
#include "promise_worker.h"
#include "quota_bindings.h"
#include "send_stream_dump.h"
#include "stream_jobs.h"

#ifndef BV_SOURCE_HASH
#define BV_SOURCE_HASH "unknown"
#endif

namespace bv::napi {

namespace {

Napi::Value IsSubvolume(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return run_bool(info.Env(), "buttervolume:isSubvolume", [path] { return core::subvolume_is_root(path); });
}

// A new subvolume's quota limit: undefined (the kernel's default), null (none) or bytes.
core::NewLimit limit_arg(const Napi::CallbackInfo& info, size_t i) {
  core::NewLimit limit;
  if (info.Length() <= i || info[i].IsUndefined()) return limit;
  if (info[i].IsNull()) {
    limit.kind = core::NewLimit::Kind::None;
    return limit;
  }
  double v = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= 0 && v <= 9007199254740991.0) || v != static_cast<double>(static_cast<uint64_t>(v))) {
    throw Napi::TypeError::New(info.Env(), "qgroupLimit must be a whole number of bytes, null or undefined");
  }
  limit.kind = core::NewLimit::Kind::Bytes;
  limit.bytes = static_cast<uint64_t>(v);
  return limit;
}

Napi::Value CreateSubvolume(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  bool nocow = bool_arg(info, 1, "nocow");
  core::NewLimit limit = limit_arg(info, 2);
  return run_void(info.Env(), "buttervolume:createSubvolume",
                  [path, nocow, limit] { core::subvolume_create(path, nocow, limit); });
}

Napi::Value Snapshot(const Napi::CallbackInfo& info) {
  std::string source = path_arg(info, 0, "source");
  std::string dest = path_arg(info, 1, "dest");
  bool readonly = bool_arg(info, 2, "readonly");
  core::NewLimit limit = limit_arg(info, 3);
  return run_void(info.Env(), "buttervolume:snapshot",
                  [source, dest, readonly, limit] { core::subvolume_snapshot(source, dest, readonly, limit); });
}

Napi::Value DeleteSubvolume(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  bool recursive = bool_arg(info, 1, "recursive");
  return run_void(info.Env(), "buttervolume:deleteSubvolume",
                  [path, recursive] { core::subvolume_delete(path, recursive); });
}

Napi::Value SubvolumeInfo(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return PromiseWorker<core::SubvolInfo>::Run(
      info.Env(), "buttervolume:subvolumeInfo", [path] { return core::subvolume_info(path); },
      [](Napi::Env env, core::SubvolInfo& v) -> Napi::Value { return info_to_js(env, v); });
}

// (dir, mode, prefix) of the two listings: mode 0 chooses (the tree search
// as root), 1 forces the tree search, 2 the entry-by-entry way (1 and 2 are
// for tests); only names starting with prefix.
core::ListQuery list_query(const Napi::CallbackInfo& info, bool names_only) {
  core::ListQuery query;
  query.names_only = names_only;
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsString()) {
    throw Napi::TypeError::New(info.Env(), "expected (dir, mode, prefix)");
  }
  uint32_t mode = info[1].As<Napi::Number>().Uint32Value();
  if (mode > 2) throw Napi::TypeError::New(info.Env(), "mode must be 0, 1 or 2");
  query.mode = static_cast<core::ListMode>(mode);
  query.prefix = info[2].As<Napi::String>().Utf8Value();
  return query;
}

Napi::Value ListSubvolumes(const Napi::CallbackInfo& info) {
  std::string dir = path_arg(info, 0, "dir");
  core::ListQuery query = list_query(info, false);
  return PromiseWorker<PackedList>::Run(
      info.Env(), "buttervolume:listSubvolumes", [dir, query] { return pack_list(core::subvolume_list(dir, query)); },
      [](Napi::Env env, PackedList& packed) -> Napi::Value { return packed_list_to_js(env, packed); });
}

// The names only, as one Buffer of names separated by "/" (which no name holds).
Napi::Value ListSubvolumeNames(const Napi::CallbackInfo& info) {
  std::string dir = path_arg(info, 0, "dir");
  core::ListQuery query = list_query(info, true);
  return PromiseWorker<std::string>::Run(
      info.Env(), "buttervolume:listSubvolumeNames",
      [dir, query] {
        std::string names;
        for (const core::ListedSubvol& e : core::subvolume_list(dir, query)) {
          if (!names.empty()) names += '/';
          names += e.name;
        }
        return names;
      },
      [](Napi::Env env, std::string& names) -> Napi::Value {
        return Napi::Buffer<char>::Copy(env, names.data(), names.size());
      });
}

Napi::Value NestedSubvolumes(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  using List = std::vector<core::NestedSubvol>;
  return PromiseWorker<List>::Run(
      info.Env(), "buttervolume:nestedSubvolumes", [path] { return core::subvolume_nested(path); },
      [](Napi::Env env, List& list) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, list.size());
        for (size_t i = 0; i < list.size(); i++) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("id", Napi::Number::New(env, static_cast<double>(list[i].id)));
          o.Set("parentId", Napi::Number::New(env, static_cast<double>(list[i].parent_id)));
          o.Set("path", Napi::String::New(env, list[i].path));
          o.Set("readonly", Napi::Boolean::New(env, list[i].readonly));
          out.Set(static_cast<uint32_t>(i), o);
        }
        return out;
      });
}

Napi::Value GetReadonly(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return run_bool(info.Env(), "buttervolume:getReadonly", [path] { return core::subvolume_get_readonly(path); });
}

Napi::Value SetReadonly(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  bool value = bool_arg(info, 1, "readonly");
  return run_void(info.Env(), "buttervolume:setReadonly",
                  [path, value] { core::subvolume_set_readonly(path, value); });
}

Napi::Value GetNocow(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return run_bool(info.Env(), "buttervolume:getNocow", [path] { return core::inode_get_nocow(path); });
}

Napi::Value SetNocow(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  bool value = bool_arg(info, 1, "nocow");
  return run_void(info.Env(), "buttervolume:setNocow", [path, value] { core::inode_set_nocow(path, value); });
}

Napi::Value ClearImmutable(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return run_bool(info.Env(), "buttervolume:clearImmutable", [path] { return core::subvolume_unprotect(path); });
}

Napi::Value GetCompression(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  using Opt = std::optional<std::string>;
  return PromiseWorker<Opt>::Run(
      info.Env(), "buttervolume:getCompression", [path] { return core::inode_get_compression(path); },
      [](Napi::Env env, Opt& v) -> Napi::Value {
        return v ? Napi::String::New(env, *v) : env.Null();
      });
}

Napi::Value SetCompression(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  std::optional<std::string> value;
  if (info.Length() > 1 && info[1].IsString()) {
    value = info[1].As<Napi::String>().Utf8Value();
  } else if (info.Length() < 2 || !info[1].IsNull()) {
    throw Napi::TypeError::New(info.Env(), "compression must be a string or null");
  }
  return run_void(info.Env(), "buttervolume:setCompression",
                  [path, value] { core::inode_set_compression(path, value); });
}

Napi::Value SyncFilesystem(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return run_void(info.Env(), "buttervolume:syncFilesystem", [path] { core::filesystem_sync(path); });
}

Napi::Value WaitForCleaner(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return run_void(info.Env(), "buttervolume:waitForCleaner", [path] { core::filesystem_wait_cleaner(path); });
}

Napi::Value RenameNoReplace(const Napi::CallbackInfo& info) {
  std::string from = path_arg(info, 0, "from");
  std::string to = path_arg(info, 1, "to");
  return run_void(info.Env(), "buttervolume:renameNoReplace", [from, to] { core::path_rename_noreplace(from, to); });
}

Napi::Value RenameExchange(const Napi::CallbackInfo& info) {
  std::string a = path_arg(info, 0, "a");
  std::string b = path_arg(info, 1, "b");
  return run_void(info.Env(), "buttervolume:renameExchange", [a, b] { core::path_rename_exchange(a, b); });
}

// Synchronous on purpose: open + flock(LOCK_NB) never waits on the disk or a
// transaction, and a blocking flock would pin a libuv thread (JS polls instead).
Napi::Value TryLock(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  bool shared = bool_arg(info, 1, "shared");
  try {
    core::Fd fd = core::file_lock_try(path, shared);
    if (!fd) return info.Env().Null();
    return LockHandle::Wrap(info.Env(), std::move(fd));
  } catch (const core::SysError& e) {
    throw_js(info.Env(), e);
  }
}

}  // namespace

Addon::Addon(Napi::Env env, Napi::Object exports) {
  lock_class = Napi::Persistent(LockHandle::Define(env));
  // An export: a function of the same name.
  auto fn = [&env](const char* name, Napi::Value (*call)(const Napi::CallbackInfo&)) {
    return InstanceValue(name, Napi::Function::New(env, call, name));
  };
  DefineAddon(exports,
              {InstanceMethod<&Addon::SetErrorClasses>("setErrorClasses"),
               InstanceValue("sourceHash", Napi::String::New(env, BV_SOURCE_HASH)),
               fn("isSubvolume", IsSubvolume),
               fn("createSubvolume", CreateSubvolume),
               fn("snapshot", Snapshot),
               fn("deleteSubvolume", DeleteSubvolume),
               fn("subvolumeInfo", SubvolumeInfo),
               fn("listSubvolumes", ListSubvolumes),
               fn("listSubvolumeNames", ListSubvolumeNames),
               fn("nestedSubvolumes", NestedSubvolumes),
               fn("getReadonly", GetReadonly),
               fn("setReadonly", SetReadonly),
               fn("getNocow", GetNocow),
               fn("setNocow", SetNocow),
               fn("clearImmutable", ClearImmutable),
               fn("getCompression", GetCompression),
               fn("setCompression", SetCompression),
               fn("syncFilesystem", SyncFilesystem),
               fn("waitForCleaner", WaitForCleaner),
               fn("renameNoReplace", RenameNoReplace),
               fn("renameExchange", RenameExchange),
               fn("tryLock", TryLock),
               fn("openBeneath", OpenBeneath),
               fn("setTimesAt", SetTimesAt),
               fn("writeFileAt", WriteFileAt),
               fn("listBeneath", ListBeneath),
               fn("readFileBeneath", ReadFileBeneath),
               fn("listBeneathPacked", ListBeneathPacked),
               fn("readFilesBeneath", ReadFilesBeneath),
               fn("writeFilesBeneath", WriteFilesBeneath),
               fn("makeDirBeneath", MakeDirBeneath),
               fn("dumpSendStream", DumpSendStream),
               fn("send", Send),
               fn("receive", Receive),
               fn("sendProtocolMax", SendProtocolMax),
               fn("quotaStatus", QuotaStatus),
               fn("quotaEnable", QuotaEnable),
               fn("qgroupOf", QgroupOf),
               fn("qgroupsById", QgroupsById),
               fn("qgroupSetLimit", QgroupSetLimit),
               fn("extentUsage", ExtentUsage)});
}

// setErrorClasses({ BtrfsError, SendStreamError }): the constructors native
// failures become; every one is required, so a missing one is caught at load.
Napi::Value Addon::SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "setErrorClasses expects { BtrfsError, SendStreamError }");
  }
  Napi::Object classes = info[0].As<Napi::Object>();
  auto get = [&](const char* name) {
    Napi::Value v = classes.Get(name);
    if (!v.IsFunction()) throw Napi::TypeError::New(env, std::string("setErrorClasses: ") + name + " must be a constructor");
    return v.As<Napi::Function>();
  };
  Napi::Function btrfs = get("BtrfsError");
  Napi::Function stream = get("SendStreamError");
  error_class = Napi::Persistent(btrfs);
  stream_error_class = Napi::Persistent(stream);
  return env.Undefined();
}

}  // namespace bv::napi

// The macro pastes the name into identifiers: it needs an unqualified one.
using ButtervolumeAddon = bv::napi::Addon;
NODE_API_ADDON(ButtervolumeAddon)
