// Batches beneath a directory (see core/beneath_batch.h): one promise for a
// directory listed packed, many small files read, many written, a directory
// made with its owner and mode.
#pragma once

#include <napi.h>

namespace bv::napi {

/** listBeneathPacked(dir: fd | path, path) -> Promise<{ self: Buffer, count, entries: Buffer }>. */
Napi::Value ListBeneathPacked(const Napi::CallbackInfo& info);

/**
 * readFilesBeneath(dirfd, paths: string[], maxBytes, maxFile) ->
 * Promise<{ done, packed: Buffer, big: { stat: Buffer, ctimeNs: bigint, data: Buffer, fd } | null }>.
 */
Napi::Value ReadFilesBeneath(const Napi::CallbackInfo& info);

/**
 * writeFilesBeneath(dirfd, paths: string[], spec: Buffer, data: Buffer,
 * tempPrefix) -> Promise<Array<bigint | null | BtrfsError>>: spec holds 56
 * bytes per path (little-endian): u32 offset, u32 length (in data), u32 uid,
 * u32 gid, u32 mode, u32 flags (1 replace, 2 expect, 4 the inode wanted:
 * else 0n for a file written), i64 mtime (ns),
 * u64 expected ino, u64 expected size, i64 expected mtime (ns).
 */
Napi::Value WriteFilesBeneath(const Napi::CallbackInfo& info);

/** makeDirBeneath(dirfd, path, uid, gid, mode) -> Promise<void>. */
Napi::Value MakeDirBeneath(const Napi::CallbackInfo& info);

}  // namespace bv::napi
