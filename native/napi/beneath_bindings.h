// Entries beneath a directory (see core/beneath.h), for JS code that works on
// a tree it does not trust: the fds it gets are plain fds, for node:fs.
#pragma once

#include <napi.h>

namespace bv::napi {

/**
 * openBeneath(dir: fd | path, path, how: 'read' | 'directory' | 'create',
 * mode) -> Promise<fd>: the caller owns (and closes) the fd.
 */
Napi::Value OpenBeneath(const Napi::CallbackInfo& info);

/**
 * setTimesAt(dirfd, name, atimeNs: bigint | null, mtimeNs: bigint | null)
 * -> Promise<void>: name "" is dirfd itself; null leaves a time unchanged.
 */
Napi::Value SetTimesAt(const Napi::CallbackInfo& info);

/**
 * writeFileAt(dirfd, name, data: Buffer, uid, gid, mode, mtimeNs: bigint,
 * replace, tempPrefix, expect?: { ino: bigint, size, mtimeNs: bigint } | null)
 * -> Promise<bigint | null> (the new file's inode; null when @expect no
 * longer holds and nothing was replaced): see core::file_write_at.
 */
Napi::Value WriteFileAt(const Napi::CallbackInfo& info);

/** listBeneath(dir: fd | path, path) -> Promise<{ self, entries }>: see core::dir_list_beneath_at. */
Napi::Value ListBeneath(const Napi::CallbackInfo& info);

/** readFileBeneath(dir: fd | path, path, max) -> Promise<{ stat, data, eof, complete, fd }>: see core::file_read_beneath_at. */
Napi::Value ReadFileBeneath(const Napi::CallbackInfo& info);

}  // namespace bv::napi
