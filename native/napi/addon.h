// Per-environment state of the addon (safe with worker_threads).
#pragma once

#include <napi.h>

namespace bv::napi {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);

  Napi::FunctionReference error_class;         // BtrfsError, set once by the TS loader
  Napi::FunctionReference stream_error_class;  // SendStreamError, likewise
  Napi::FunctionReference lock_class;

 private:
  Napi::Value SetErrorClasses(const Napi::CallbackInfo& info);
};

}  // namespace bv::napi
