// Quotas and usage (see core/quota.h and core/extent_usage.h); every call
// returns a Promise (the libuv pool).
#pragma once

#include <napi.h>

namespace bv::napi {

/** quotaStatus(path) -> Promise<{ mode: 'off' | 'qgroup' | 'simple', flags, inconsistent, rescanning, enableGeneration }>. */
Napi::Value QuotaStatus(const Napi::CallbackInfo& info);

/** quotaEnable(path, mode: 'qgroup' | 'simple') -> Promise<status>: the status after (unchanged when some kind was on). */
Napi::Value QuotaEnable(const Napi::CallbackInfo& info);

/** qgroupOf(path) -> Promise<Qgroup | null>: the qgroup of the subvolume rooted at path. */
Napi::Value QgroupOf(const Napi::CallbackInfo& info);

/** qgroupsById(path, ids: number[]) -> Promise<Array<Qgroup | null>>, in the order of ids. */
Napi::Value QgroupsById(const Napi::CallbackInfo& info);

/** qgroupSetLimit(path, maxReferenced: number | null) -> Promise<void>. */
Napi::Value QgroupSetLimit(const Napi::CallbackInfo& info);

/** extentUsage(path) -> Promise<{ exclusive, referenced, files }>. */
Napi::Value ExtentUsage(const Napi::CallbackInfo& info);

}  // namespace bv::napi
