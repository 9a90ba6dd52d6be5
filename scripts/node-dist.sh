#!/usr/bin/env bash
# Prints the directory of Node.js's Linux distribution for ARCH (x64 or
# arm64): bin/node and include/node (the headers node-gyp builds against).
# It is the npm registry's package node-linux-ARCH@VERSION (VERSION: by
# default the version of the node running this script), fetched with
# `npm pack` (npm checks its integrity; no install script runs) once and kept
# in $BUTTERVOLUME_NODE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/buttervolume).
# Used at build and check time only (the arm64 prebuild, its qemu check, the
# arm64 managed plugin): nothing the product runs contacts a registry.
# Usage: node-dist.sh ARCH [VERSION]
set -euo pipefail
die() {
  printf 'node-dist.sh: error: %s\n' "$*" >&2
  exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 x64|arm64 [VERSION]"
arch=$1
case "$arch" in x64 | arm64) ;; *) die "unknown architecture '$arch' (x64 or arm64)" ;; esac
version=${2:-$(node -p process.versions.node)}
version=${version#v}
cache=${BUTTERVOLUME_NODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/buttervolume}
dir=$cache/node-linux-$arch-$version
if [ -x "$dir/bin/node" ] && [ -f "$dir/include/node/node_api.h" ]; then
  printf '%s\n' "$dir"
  exit 0
fi

command -v npm >/dev/null || die 'npm not found: it fetches Node.js from the npm registry'
mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'node-dist.sh: fetching node-linux-%s@%s from the npm registry\n' "$arch" "$version" >&2
(cd "$work" && npm pack --silent --ignore-scripts "node-linux-$arch@$version" >pack.out 2>pack.err) ||
  die "npm pack node-linux-$arch@$version failed: $(tail -n 3 "$work/pack.err" | tr '\n' ' ')"
tgz=$work/$(tail -n 1 "$work/pack.out")
[ -f "$tgz" ] || die "npm pack node-linux-$arch@$version wrote no tarball"
mkdir "$work/x"
tar -xzf "$tgz" -C "$work/x"
[ -x "$work/x/package/bin/node" ] && [ -f "$work/x/package/include/node/node_api.h" ] ||
  die "node-linux-$arch@$version holds no bin/node and include/node/node_api.h"
# Renamed into place whole: a concurrent fetch of the same version loses the race harmlessly.
mv -T "$work/x/package" "$dir" 2>/dev/null || [ -x "$dir/bin/node" ] || die "cannot move the package to $dir"
printf '%s\n' "$dir"
