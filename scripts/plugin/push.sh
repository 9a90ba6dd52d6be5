#!/usr/bin/env bash
# `npm run plugin:push [-- NAME]`: pushes the plugin built by plugin:build
# (default anybox/buttervolume:latest) to the registry its name points at:
# Docker Hub for user/name:tag, or host[:port]/path:tag. Log in first
# (`docker login [host]`). Other hosts then `docker plugin install NAME`, or
# `docker plugin upgrade OLD NAME` to keep an installed plugin's volumes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

[ $# -le 1 ] || die "usage: npm run plugin:push [-- NAME]"
case "${1:-}" in -h | --help) say "usage: npm run plugin:push [-- NAME]   (default anybox/buttervolume:latest)"; exit 0 ;; esac
name=${1:-anybox/buttervolume:latest}
case "$name" in *:*) ;; *) name=$name:latest ;; esac
need_docker
docker plugin inspect "$name" >/dev/null 2>&1 ||
  die "no plugin $name on this engine: build it first (npm run plugin:build -- --name $name)"
docker plugin push "$name" >&2 || die "docker plugin push $name failed (logged in? docker login $(printf '%s' "$name" | awk -F/ 'NF > 2 || $1 ~ /[.:]/ { print $1 }'))"
say "pushed $name"
