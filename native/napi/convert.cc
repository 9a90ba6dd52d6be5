#include "convert.h"

#include <cstdio>

namespace bv::napi {

namespace {

Napi::Value uuid_to_js(Napi::Env env, const uint8_t (&uuid)[16]) {
  bool zero = true;
  for (uint8_t b : uuid) zero = zero && b == 0;
  if (zero) return env.Null();
  char text[37];
  std::snprintf(text, sizeof(text),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8],
                uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
  return Napi::String::New(env, text);
}

Napi::Value time_to_js(Napi::Env env, const core::Timespec& t) {
  if (t.sec == 0 && t.nsec == 0) return env.Null();  // never set (stime/rtime of a local subvolume)
  return Napi::Date::New(env, static_cast<double>(t.sec) * 1000.0 + t.nsec / 1e6);
}

Napi::Number u64(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

}  // namespace

std::string path_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  }
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a non-empty path without NUL bytes");
  }
  return s;
}

bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBoolean()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a boolean");
  }
  return info[i].As<Napi::Boolean>().Value();
}

Napi::Object info_to_js(Napi::Env env, const core::SubvolInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", u64(env, info.id));
  o.Set("parentId", u64(env, info.parent_id));
  o.Set("dirId", u64(env, info.dir_id));
  o.Set("uuid", uuid_to_js(env, info.uuid));
  o.Set("parentUuid", uuid_to_js(env, info.parent_uuid));
  o.Set("receivedUuid", uuid_to_js(env, info.received_uuid));
  o.Set("generation", u64(env, info.generation));
  o.Set("ctransid", u64(env, info.ctransid));
  o.Set("otransid", u64(env, info.otransid));
  o.Set("stransid", u64(env, info.stransid));
  o.Set("rtransid", u64(env, info.rtransid));
  o.Set("ctime", time_to_js(env, info.ctime));
  o.Set("otime", time_to_js(env, info.otime));
  o.Set("stime", time_to_js(env, info.stime));
  o.Set("rtime", time_to_js(env, info.rtime));
  o.Set("readonly", Napi::Boolean::New(env, (info.flags & 1) != 0));  // BTRFS_ROOT_SUBVOL_RDONLY
  return o;
}

}  // namespace bv::napi
