// send and receive: each runs on a thread of its own (never the libuv pool,
// which the server budgets for short ioctls) and talks to JS through a pipe:
// send writes the stream into it for a net.Socket to read, receive reads
// what a net.Socket writes into it. Backpressure is the pipe's. The result
// (or the error) comes back through a thread-safe function.
#pragma once

#include <napi.h>

namespace bv::napi {

/**
 * send(snapshot, parent | null, cloneSources[], protocol, compressed, noData)
 * -> { fd, done }: fd is the read end of the pipe the stream comes out of
 * (the caller owns it), done a Promise settling when the ioctl returned.
 */
Napi::Value Send(const Napi::CallbackInfo& info);

/**
 * receive(destDir, allowedDirs[], tempPrefix, forceDecompress) -> { fd, done,
 * abort }: fd is the write end of the pipe the stream goes into (the caller
 * owns it and closes it at the end of the input), done resolves to the
 * received subvolumes, abort() makes the receiver stop with
 * ERR_RECEIVE_ABORTED at its next read (close fd after calling it).
 */
Napi::Value Receive(const Napi::CallbackInfo& info);

/** sendProtocolMax() -> the highest send stream version the kernel offers. */
Napi::Value SendProtocolMax(const Napi::CallbackInfo& info);

}  // namespace bv::napi
