// Turning core::SysError into the BtrfsError class registered by the TS layer.
#pragma once

#include <napi.h>

#include "../core/sys_error.h"

namespace bv::napi {

/** A BtrfsError (or a plain Error carrying the same fields before registration). */
Napi::Value make_error(Napi::Env env, const core::SysError& err);

/** Throw @err as a JS exception from a synchronous binding. */
[[noreturn]] void throw_js(Napi::Env env, const core::SysError& err);

}  // namespace bv::napi
