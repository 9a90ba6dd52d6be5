#include "quota_bindings.h"

#include <optional>
#include <string>
#include <vector>

#include "../core/extent_usage.h"
#include "../core/quota.h"
#include "convert.h"
#include "promise_worker.h"

namespace bv::napi {

namespace {

// Bytes and ids as JS numbers: exact up to 2^53, far beyond any filesystem here.
Napi::Number num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

// A whole number from 0 to 2^53 - 1.
uint64_t u53(Napi::Env env, const Napi::Value& v, const char* what) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::TypeError::New(env, std::string(what) + " must be a whole number from 0 to 2^53-1");
  }
  return static_cast<uint64_t>(d);
}

const char* mode_name(core::QuotaMode mode) {
  switch (mode) {
    case core::QuotaMode::Qgroup: return "qgroup";
    case core::QuotaMode::Simple: return "simple";
    default: return "off";
  }
}

Napi::Value status_to_js(Napi::Env env, const core::QuotaStatus& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", Napi::String::New(env, mode_name(s.mode)));
  o.Set("flags", num(env, s.flags));
  o.Set("inconsistent", Napi::Boolean::New(env, s.inconsistent));
  o.Set("rescanning", Napi::Boolean::New(env, s.rescanning));
  o.Set("enableGeneration", num(env, s.enable_gen));
  return o;
}

Napi::Value qgroup_to_js(Napi::Env env, const std::optional<core::Qgroup>& q) {
  if (!q) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", num(env, q->id));
  o.Set("generation", num(env, q->generation));
  o.Set("referenced", num(env, q->referenced));
  o.Set("referencedCompressed", num(env, q->referenced_compressed));
  o.Set("exclusive", num(env, q->exclusive));
  o.Set("exclusiveCompressed", num(env, q->exclusive_compressed));
  bool rfer = (q->limit_flags & 1) != 0, excl = (q->limit_flags & 2) != 0;  // BTRFS_QGROUP_LIMIT_MAX_RFER, _MAX_EXCL
  o.Set("maxReferenced", rfer ? Napi::Value(num(env, q->max_referenced)) : env.Null());
  o.Set("maxExclusive", excl ? Napi::Value(num(env, q->max_exclusive)) : env.Null());
  return o;
}

}  // namespace

Napi::Value QuotaStatus(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return PromiseWorker<core::QuotaStatus>::Run(
      info.Env(), "buttervolume:quotaStatus", [path] { return core::quota_status(path); }, status_to_js);
}

Napi::Value QuotaEnable(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  std::string kind = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (kind != "simple" && kind != "qgroup") throw Napi::TypeError::New(info.Env(), "mode must be 'simple' or 'qgroup'");
  core::QuotaMode mode = kind == "simple" ? core::QuotaMode::Simple : core::QuotaMode::Qgroup;
  return PromiseWorker<core::QuotaStatus>::Run(
      info.Env(), "buttervolume:quotaEnable", [path, mode] { return core::quota_enable(path, mode); }, status_to_js);
}

Napi::Value QgroupOf(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  using Opt = std::optional<core::Qgroup>;
  return PromiseWorker<Opt>::Run(
      info.Env(), "buttervolume:qgroupOf", [path] { return core::qgroup_of(path); }, qgroup_to_js);
}

Napi::Value QgroupsById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = path_arg(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "ids must be an array of numbers");
  Napi::Array array = info[1].As<Napi::Array>();
  std::vector<uint64_t> ids(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) ids[i] = u53(env, array.Get(i), "ids[i]");
  using List = std::vector<std::optional<core::Qgroup>>;
  return PromiseWorker<List>::Run(
      env, "buttervolume:qgroupsById", [path, ids] { return core::qgroups_by_id(path, ids); },
      [](Napi::Env e, List& list) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, list.size());
        for (size_t i = 0; i < list.size(); i++) out.Set(static_cast<uint32_t>(i), qgroup_to_js(e, list[i]));
        return out;
      });
}

Napi::Value QgroupSetLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = path_arg(info, 0, "path");
  std::optional<uint64_t> limit;
  if (info.Length() < 2 || !info[1].IsNull()) limit = u53(env, info.Length() > 1 ? info[1] : env.Undefined(), "maxReferenced");
  return run_void(env, "buttervolume:qgroupSetLimit", [path, limit] { core::qgroup_set_limit(path, limit); });
}

Napi::Value ExtentUsage(const Napi::CallbackInfo& info) {
  std::string path = path_arg(info, 0, "path");
  return PromiseWorker<core::ExtentUsage>::Run(
      info.Env(), "buttervolume:extentUsage", [path] { return core::subvolume_extent_usage(path); },
      [](Napi::Env e, core::ExtentUsage& u) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        o.Set("exclusive", num(e, u.exclusive));
        o.Set("referenced", num(e, u.referenced));
        o.Set("files", num(e, u.files));
        return o;
      });
}

}  // namespace bv::napi
