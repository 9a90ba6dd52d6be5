// One Promise-returning AsyncWorker for every blocking call: the work runs on
// the libuv pool, a SysError thrown there rejects with a BtrfsError, and the
// result is converted to JS on the main thread.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <optional>
#include <utility>

#include "../core/sys_error.h"
#include "errors.h"

namespace bv::napi {

struct Unit {};

template <typename T>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<T()>;
  using Convert = std::function<Napi::Value(Napi::Env, T&)>;

  static Napi::Promise Run(Napi::Env env, const char* name, Work work, Convert convert) {
    auto* worker = new PromiseWorker(env, name, std::move(work), std::move(convert));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();  // the worker deletes itself after OnOK/OnError
    return promise;
  }

 protected:
  void Execute() override {
    try {
      result_.emplace(work_());
    } catch (const core::SysError& e) {
      error_.emplace(e);
      SetError(e.what());
    } catch (const std::exception& e) {
      error_.emplace(EIO, std::string("internal: ") + e.what(), std::string());
      SetError(e.what());
    }
  }

  void OnOK() override { deferred_.Resolve(convert_(Env(), *result_)); }

  void OnError(const Napi::Error&) override { deferred_.Reject(make_error(Env(), *error_)); }

 private:
  PromiseWorker(Napi::Env env, const char* name, Work work, Convert convert)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        convert_(std::move(convert)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  std::optional<T> result_;
  std::optional<core::SysError> error_;
};

/** Run @work (returning nothing) off the JS thread; resolves to undefined. */
inline Napi::Promise run_void(Napi::Env env, const char* name, std::function<void()> work) {
  return PromiseWorker<Unit>::Run(
      env, name,
      [work = std::move(work)]() {
        work();
        return Unit{};
      },
      [](Napi::Env e, Unit&) { return e.Undefined(); });
}

/** Run @work (returning a bool) off the JS thread; resolves to that boolean. */
inline Napi::Promise run_bool(Napi::Env env, const char* name, std::function<bool()> work) {
  return PromiseWorker<bool>::Run(env, name, std::move(work),
                                  [](Napi::Env e, bool& v) { return Napi::Boolean::New(e, v); });
}

}  // namespace bv::napi
