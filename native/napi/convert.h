// Argument checks and C++ -> JS conversions shared by the bindings.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "../core/subvolume.h"

namespace bv::napi {

/** Argument @i as a path string: a TypeError unless it is a non-empty string without NUL. */
std::string path_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

/** Argument @i as an fd: a TypeError unless it is an integer from 0 to INT_MAX. */
int fd_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

/** @s, a TypeError if it holds a NUL byte (a path the kernel would cut short). */
std::string no_nul(Napi::Env env, std::string s, const char* what);

/** Argument @i as a relative path or a name: may be empty (the directory itself), never holds NUL. */
std::string rel_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

/** Argument @i as a boolean: a TypeError otherwise. */
bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* what);

/** The 16 bytes at @uuid as its text form, or null for the nil UUID (never set). */
Napi::Value uuid_to_js(Napi::Env env, const uint8_t* uuid);

/** A SubvolInfo as a plain object (uuids as strings or null, times as Dates). */
Napi::Object info_to_js(Napi::Env env, const core::SubvolInfo& info);

/** Numbers per entry of a PackedList (src/btrfs/subvolume.ts reads them in this order). */
constexpr size_t kListStride = 15;

/**
 * A listing packed for one crossing, on the worker thread: building an
 * object (or even a string) per entry through N-API costs more than the
 * whole tree search, so the objects are made in JS from two columns.
 * numbers[15i..15i+14]: id, parent id, dir id, generation, ctransid,
 * otransid, stransid, rtransid, ctime, otime, stime, rtime (ms since the
 * epoch, NaN when unset), read-only (0/1), the end in `text` of the name,
 * which UUIDs follow it (bit 0 uuid, 1 parent uuid, 2 received uuid; bit 3:
 * the parent UUID is the previous entry's, not repeated in `text`).
 * text: per entry its name (UTF-8), then each UUID present as 36 characters;
 * an entry's name starts where the previous entry's text ended.
 */
constexpr int kSameParentUuid = 8;

struct PackedList {
  std::vector<double> numbers;
  std::string text;
};

PackedList pack_list(const std::vector<core::ListedSubvol>& list);

/** `{numbers: Float64Array, text: Buffer}` from a PackedList (two copies, no per-entry work). */
Napi::Object packed_list_to_js(Napi::Env env, const PackedList& packed);

}  // namespace bv::napi
