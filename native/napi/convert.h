// Argument checks and C++ -> JS conversions shared by the bindings.
#pragma once

#include <napi.h>

#include <string>

#include "../core/subvolume.h"

namespace bv::napi {

/** Argument @i as a path string: a TypeError unless it is a non-empty string without NUL. */
std::string path_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

/** Argument @i as a boolean: a TypeError otherwise. */
bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

/** A SubvolInfo as a plain object (uuids as strings or null, times as Dates). */
Napi::Object info_to_js(Napi::Env env, const core::SubvolInfo& info);

}  // namespace bv::napi
