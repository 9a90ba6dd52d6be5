#include "lock_handle.h"

#include "addon.h"

namespace bv::napi {

Napi::Function LockHandle::Define(Napi::Env env) {
  return DefineClass(env, "LockHandle",
                     {InstanceMethod<&LockHandle::Release>("release"),
                      InstanceAccessor<&LockHandle::Held>("held")});
}

Napi::Object LockHandle::Wrap(Napi::Env env, core::Fd fd) {
  Addon* addon = env.GetInstanceData<Addon>();
  return addon->lock_class.New({Napi::External<core::Fd>::New(env, &fd)});
}

LockHandle::LockHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LockHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "LockHandle cannot be constructed from JavaScript");
  }
  fd_ = std::move(*info[0].As<Napi::External<core::Fd>>().Data());
}

Napi::Value LockHandle::Release(const Napi::CallbackInfo& info) {
  fd_.reset();  // closing the only fd of the open file description drops the flock
  return info.Env().Undefined();
}

Napi::Value LockHandle::Held(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), static_cast<bool>(fd_));
}

}  // namespace bv::napi
