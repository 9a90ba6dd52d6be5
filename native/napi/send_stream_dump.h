// dumpSendStream(data): every command of a send stream in memory as plain
// objects, like `btrfs receive --dump` (tests and debugging).
#pragma once

#include <napi.h>

namespace bv::napi {

/**
 * dumpSendStream(data: Uint8Array) -> object[]. Synchronous: it only parses
 * memory. Throws a TypeError for a non-Uint8Array and a SendStreamError
 * (make_stream_error) for a stream the reader refuses.
 */
Napi::Value DumpSendStream(const Napi::CallbackInfo& info);

}  // namespace bv::napi
