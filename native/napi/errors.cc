#include "errors.h"

#include "addon.h"

namespace bv::napi {

Napi::Value make_error(Napi::Env env, const core::SysError& err) {
  Napi::Object fields = Napi::Object::New(env);
  fields.Set("errno", Napi::Number::New(env, -err.err));  // negative, as in Node's fs errors
  fields.Set("code", Napi::String::New(env, core::errno_name(err.err)));
  fields.Set("syscall", Napi::String::New(env, err.syscall));
  fields.Set("path", Napi::String::New(env, err.path));
  if (!err.dest.empty()) fields.Set("dest", Napi::String::New(env, err.dest));

  Addon* addon = env.GetInstanceData<Addon>();
  if (addon != nullptr && !addon->error_class.IsEmpty()) {
    return addon->error_class.New({fields});
  }
  Napi::Error plain = Napi::Error::New(env, err.what());
  Napi::Object obj = plain.Value();
  for (const char* key : {"errno", "code", "syscall", "path", "dest"}) {
    if (fields.Has(key)) obj.Set(key, fields.Get(key));
  }
  return obj;
}

void throw_js(Napi::Env env, const core::SysError& err) {
  throw Napi::Error(env, make_error(env, err));
}

Napi::Value make_stream_error(Napi::Env env, const core::StreamError& err) {
  Napi::Object fields = Napi::Object::New(env);
  fields.Set("code", Napi::String::New(env, err.code));
  fields.Set("reason", Napi::String::New(env, err.reason));
  fields.Set("command", Napi::Number::New(env, static_cast<double>(err.command)));
  if (err.command_type != 0) {
    fields.Set("commandType", Napi::Number::New(env, err.command_type));
    fields.Set("commandName", Napi::String::New(env, core::send_cmd_name(err.command_type)));
  }
  if (!err.path.empty()) fields.Set("path", Napi::String::New(env, err.path));
  fields.Set("offset", Napi::Number::New(env, static_cast<double>(err.offset)));

  Addon* addon = env.GetInstanceData<Addon>();
  if (addon != nullptr && !addon->stream_error_class.IsEmpty()) {
    return addon->stream_error_class.New({fields});
  }
  Napi::Error plain = Napi::Error::New(env, err.what());
  Napi::Object obj = plain.Value();
  for (const char* key : {"code", "reason", "command", "commandType", "commandName", "path", "offset"}) {
    if (fields.Has(key)) obj.Set(key, fields.Get(key));
  }
  return obj;
}

void throw_js(Napi::Env env, const core::StreamError& err) {
  throw Napi::Error(env, make_stream_error(env, err));
}

}  // namespace bv::napi
