// send and receive: each runs on a thread of its own (never the libuv pool,
// which the server budgets for short ioctls). Send writes the stream into a
// pipe for a net.Socket to read (the ioctl needs an fd); receive reads the
// Buffers JS queues for it (core/queue_source.h), without a pipe. The
// result (or the error) comes back through a thread-safe function.
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
 * receive(destDir, allowedDirs[], tempPrefix, forceDecompress, onDrain) ->
 * { push, end, abort, release, done }: push(chunk) queues a Buffer for the
 * receiver (kept referenced until it has been copied) and returns false when
 * the queue is full, after which onDrain() is called once it has room; end()
 * at the end of the input; abort() makes the receiver stop with
 * ERR_RECEIVE_ABORTED at its next read; release() drops the Buffers held
 * (call it once done has settled). done resolves to the received subvolumes.
 */
Napi::Value Receive(const Napi::CallbackInfo& info);

/** sendProtocolMax() -> the highest send stream version the kernel offers. */
Napi::Value SendProtocolMax(const Napi::CallbackInfo& info);

}  // namespace bv::napi
