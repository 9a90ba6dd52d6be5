#!/usr/bin/env bash
# Builds the managed plugin from this checkout:
#   bash scripts/build-plugin.sh [NAME]   (default anybox/buttervolume:latest)
# It builds the Dockerfile (needs the node:20 images, i.e. a registry), exports
# the image's filesystem as the plugin rootfs next to plugin/config.json, and
# runs `docker plugin create`. The host needs /var/lib/buttervolume on btrfs
# and /var/lib/buttervolume/config to exist before `docker plugin enable NAME`.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-anybox/buttervolume:latest}
work=$(mktemp -d)
trap 'docker rm -f "$container" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
container=""
docker build -t buttervolume-rootfs:build .
container=$(docker create buttervolume-rootfs:build)
mkdir -p "$work/rootfs"
docker export "$container" | tar -x -C "$work/rootfs"
cp plugin/config.json "$work/config.json"
docker plugin rm -f "$name" >/dev/null 2>&1 || true
docker plugin create "$name" "$work"
echo "created plugin $name: mkdir -p /var/lib/buttervolume/config && docker plugin enable $name"
