// Turning core::SysError and core::StreamError into the BtrfsError and
// SendStreamError classes registered by the TS layer.
#pragma once

#include <napi.h>

#include "../core/send_stream.h"
#include "../core/sys_error.h"

namespace bv::napi {

/** A BtrfsError (or a plain Error carrying the same fields before registration). */
Napi::Value make_error(Napi::Env env, const core::SysError& err);

/** Throw @err as a JS exception from a synchronous binding. */
[[noreturn]] void throw_js(Napi::Env env, const core::SysError& err);

/** A SendStreamError (or a plain Error carrying the same fields before registration). */
Napi::Value make_stream_error(Napi::Env env, const core::StreamError& err);

/** Throw @err as a JS exception from a synchronous binding. */
[[noreturn]] void throw_js(Napi::Env env, const core::StreamError& err);

}  // namespace bv::napi
