#!/usr/bin/env bash
# `npm run prebuildify [-- --arch x64|arm64] [--out DIR]`: builds the committed prebuilds,
# prebuilds/linux-x64/buttervolume.node and prebuilds/linux-arm64/
# buttervolume.node (both by default), from native/ and binding.gyp, stripped.
# Each records the hash of those sources (scripts/native-hash.cjs), which
# test/native/prebuild.test.ts compares: commit prebuilds/ after a change of
# the native sources.
#  - the host's architecture: `prebuildify --napi --strip` in the checkout,
#    with the machine's compiler and Node's headers (npm's nodedir when it
#    holds them, else those of node-linux-<arch> from the npm registry, as
#    below), as before: build/Release/buttervolume.node moves into
#    prebuilds/, and the addon is then loaded from there;
#  - the other one: cross-built in a temporary copy of native/ and binding.gyp
#    (build/ is left alone) with Debian's cross compiler (arm64:
#    g++-aarch64-linux-gnu, x64: g++-x86-64-linux-gnu) against the headers of
#    the npm registry's node-linux-<arch> package of this Node's version
#    (scripts/node-dist.sh, fetched once into ~/.cache/buttervolume).
# The N-API addon is the same for every Node >= 20.19 of that architecture
# (NAPI_VERSION 8). Run it under `flock /tmp/bv-native.lock` where others
# build too. --out DIR: the cross-built ones go to DIR/prebuilds/linux-<arch>
# instead (CI builds one from source to check it, the committed one stays).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'prebuildify.sh: %s\n' "$*" >&2; }
die() {
  printf 'prebuildify.sh: error: %s\n' "$*" >&2
  exit 1
}

arches=()
dest=$root
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) [ $# -ge 2 ] || die '--arch needs x64 or arm64'; arches+=("$2"); shift 2 ;;
    --arch=*) arches+=("${1#*=}"); shift ;;
    --out) [ $# -ge 2 ] || die '--out needs a directory'; dest=$(cd "$2" && pwd); shift 2 ;;
    *) die "unknown argument: $1 (usage: npm run prebuildify [-- --arch x64|arm64]...)" ;;
  esac
done
[ ${#arches[@]} -gt 0 ] || arches=(x64 arm64)
host=$(node -p process.arch)

triplet() {
  case "$1" in
    arm64) echo aarch64-linux-gnu ;;
    x64) echo x86_64-linux-gnu ;;
    *) die "unknown architecture '$1' (x64 or arm64)" ;;
  esac
}

cross() {
  local arch=$1 tri headers work out
  tri=$(triplet "$arch")
  command -v "$tri-g++" >/dev/null && command -v "$tri-strip" >/dev/null ||
    die "$tri-g++ not found: apt-get install -y g++-${tri%%-linux-gnu}-linux-gnu (Debian: g++-aarch64-linux-gnu, g++-x86-64-linux-gnu)"
  headers=$(bash "$root/scripts/node-dist.sh" "$arch")
  work=$(mktemp -d "${TMPDIR:-/tmp}/buttervolume-prebuild-$arch.XXXXXX")
  # shellcheck disable=SC2064 # expanded now, on purpose
  trap "rm -rf '$work'" EXIT
  mkdir -p "$work/scripts"
  cp -r native binding.gyp package.json "$work/"
  cp scripts/native-hash.cjs "$work/scripts/"
  ln -s "$root/node_modules" "$work/node_modules"
  say "cross-building linux-$arch with $tri-g++ against Node.js $(basename "$headers" | sed 's/^node-linux-[a-z0-9]*-//') headers"
  CC=$tri-gcc CXX=$tri-g++ AR=$tri-ar LINK=$tri-g++ npm_config_nodedir=$headers \
    "$root/node_modules/.bin/prebuildify" --napi --strip --strip-bin "$tri-strip" --arch "$arch" \
    --cwd "$work" --out "$work" --cache "$work/.devdir"
  out=$work/prebuilds/linux-$arch/buttervolume.node
  [ -f "$out" ] || die "no $out after the build"
  mkdir -p "$dest/prebuilds/linux-$arch"
  cp "$out" "$dest/prebuilds/linux-$arch/.buttervolume.node.tmp"
  mv -f "$dest/prebuilds/linux-$arch/.buttervolume.node.tmp" "$dest/prebuilds/linux-$arch/buttervolume.node"
}

for arch in "${arches[@]}"; do
  triplet "$arch" >/dev/null
  if [ "$arch" = "$host" ]; then
    [ "$dest" = "$root" ] || die "--out is for the cross-built architecture, not this machine's ($host)"
    nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
    [ -f "$nodedir/include/node/node_api.h" ] || nodedir=$(bash "$root/scripts/node-dist.sh" "$arch")
    say "building linux-$arch (this machine's architecture) against the headers in $nodedir"
    npm_config_nodedir=$nodedir "$root/node_modules/.bin/prebuildify" --napi --strip
  else
    cross "$arch"
  fi
  say "$dest/prebuilds/linux-$arch/buttervolume.node: $(stat -c %s "$dest/prebuilds/linux-$arch/buttervolume.node") bytes, sources $(node scripts/native-hash.cjs)"
done
