#include "convert.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "../core/uuid.h"

namespace bv::napi {

namespace {

// Milliseconds since the epoch, as a Date holds them; NaN when never set.
double time_ms(const core::Timespec& t) {
  if (t.sec == 0 && t.nsec == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(t.sec) * 1000.0 + t.nsec / 1e6;
}

Napi::Value time_to_js(Napi::Env env, const core::Timespec& t) {
  double ms = time_ms(t);
  if (std::isnan(ms)) return env.Null();  // never set (stime/rtime of a local subvolume)
  return Napi::Date::New(env, ms);
}

Napi::Number u64(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

}  // namespace

Napi::Value uuid_to_js(Napi::Env env, const uint8_t* uuid) {
  if (core::uuid_is_nil(uuid)) return env.Null();
  char text[core::kUuidTextSize];
  core::uuid_format(uuid, text);
  return Napi::String::New(env, text, sizeof(text));
}

int fd_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an fd");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 2147483647.0) || v != static_cast<double>(static_cast<int>(v))) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an fd (an integer >= 0)");
  }
  return static_cast<int>(v);
}

std::string no_nul(Napi::Env env, std::string s, const char* what) {
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(env, std::string(what) + " must not contain NUL bytes");
  return s;
}

std::string rel_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return no_nul(info.Env(), info[i].As<Napi::String>().Utf8Value(), what);
}

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

PackedList pack_list(const std::vector<core::ListedSubvol>& list) {
  PackedList p;
  p.numbers.resize(kListStride * list.size());
  size_t text_size = 0;
  for (const core::ListedSubvol& e : list) text_size += e.name.size() + 3 * core::kUuidTextSize;
  p.text.reserve(text_size);
  const uint8_t(*previous_parent)[16] = nullptr;
  for (size_t i = 0; i < list.size(); i++) {
    const core::SubvolInfo& v = list[i].info;
    p.text += list[i].name;
    const size_t name_end = p.text.size();
    int mask = 0;
    const uint8_t(*uuids[3])[16] = {&v.uuid, &v.parent_uuid, &v.received_uuid};
    for (int k = 0; k < 3; k++) {
      // Snapshots of one volume, listed side by side, share their parent UUID: sent once.
      if (k == 1 && previous_parent != nullptr && std::memcmp(*previous_parent, v.parent_uuid, 16) == 0) {
        mask |= kSameParentUuid;
        continue;
      }
      if (core::uuid_is_nil(*uuids[k])) continue;
      char text[core::kUuidTextSize];
      core::uuid_format(*uuids[k], text);
      p.text.append(text, sizeof(text));
      mask |= 1 << k;
    }
    previous_parent = (mask & (2 | kSameParentUuid)) != 0 ? &v.parent_uuid : nullptr;
    double* o = p.numbers.data() + kListStride * i;
    o[0] = static_cast<double>(v.id);
    o[1] = static_cast<double>(v.parent_id);
    o[2] = static_cast<double>(v.dir_id);
    o[3] = static_cast<double>(v.generation);
    o[4] = static_cast<double>(v.ctransid);
    o[5] = static_cast<double>(v.otransid);
    o[6] = static_cast<double>(v.stransid);
    o[7] = static_cast<double>(v.rtransid);
    o[8] = time_ms(v.ctime);
    o[9] = time_ms(v.otime);
    o[10] = time_ms(v.stime);
    o[11] = time_ms(v.rtime);
    o[12] = (v.flags & 1) != 0 ? 1 : 0;  // BTRFS_ROOT_SUBVOL_RDONLY
    o[13] = static_cast<double>(name_end);
    o[14] = mask;
  }
  return p;
}

Napi::Object packed_list_to_js(Napi::Env env, const PackedList& packed) {
  Napi::Float64Array numbers = Napi::Float64Array::New(env, packed.numbers.size());
  if (!packed.numbers.empty()) std::memcpy(numbers.Data(), packed.numbers.data(), packed.numbers.size() * sizeof(double));
  Napi::Object out = Napi::Object::New(env);
  out.Set("numbers", numbers);
  out.Set("text", Napi::Buffer<char>::Copy(env, packed.text.data(), packed.text.size()));
  return out;
}

}  // namespace bv::napi
