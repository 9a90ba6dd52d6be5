// A held flock, owned by a JS object: release() closes the fd; if the object
// is collected while still held, the destructor closes it (RAII).
#pragma once

#include <napi.h>

#include "../core/fd.h"

namespace bv::napi {

class LockHandle : public Napi::ObjectWrap<LockHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  /** Wrap an already locked fd; only C++ can create these (an External is required). */
  static Napi::Object Wrap(Napi::Env env, core::Fd fd);

  explicit LockHandle(const Napi::CallbackInfo& info);

 private:
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Held(const Napi::CallbackInfo& info);

  core::Fd fd_;
};

}  // namespace bv::napi
