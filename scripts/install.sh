#!/usr/bin/env bash
# Quick start, step 1: install buttervolume from this checkout and start the
# plugin daemon, on a fresh Debian 12 machine, as root.
#  - builds the addon and the TypeScript (npm ci uses the committed prebuild
#    when it fits, else compiles with g++);
#  - when VOLUMES_PATH is not on btrfs and is the default one, creates a
#    sparse loop-backed btrfs image (BUTTERVOLUME_IMAGE_SIZE, default 10G)
#    mounted on /var/lib/buttervolume - the only step that uses btrfs-progs
#    (mkfs.btrfs), installed for it;
#  - starts `buttervolume run` in the background (log /var/log/buttervolume.log,
#    pid /run/buttervolume.pid), a legacy Docker plugin on
#    /run/docker/plugins/btrfs.sock (driver name "btrfs").
# Stop it with scripts/stop.sh. Configuration: BUTTERVOLUME_* variables or
# /etc/buttervolume/config.ini (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (btrfs ioctls, mounts)"
command -v node >/dev/null || die "Node.js >= 20.19 is required"
node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js >= 20.19 is required (found $(node --version))"
export DEBIAN_FRONTEND=noninteractive

echo "== building"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent

echo "== btrfs"
volumes=${BUTTERVOLUME_VOLUMES_PATH:-/var/lib/buttervolume/volumes}
base=/var/lib/buttervolume
probe=$volumes
while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
if [ "$(stat -f -c %T "$probe")" = btrfs ]; then
  echo "$volumes is on btrfs"
elif [ "${volumes%/}" = "$base/volumes" ]; then
  image=${BUTTERVOLUME_IMAGE:-/var/lib/buttervolume.img}
  command -v mkfs.btrfs >/dev/null || { apt-get update -qq && apt-get install -y -qq btrfs-progs >/dev/null; }
  if [ ! -e "$image" ]; then
    truncate -s "${BUTTERVOLUME_IMAGE_SIZE:-10G}" "$image"
    mkfs.btrfs -q -L buttervolume "$image"
  fi
  mkdir -p "$base"
  mountpoint -q "$base" || mount -o loop "$image" "$base"
  echo "mounted $image on $base (add to /etc/fstab to survive a reboot: $image $base btrfs loop 0 0)"
else
  die "$volumes is not on btrfs: mount a btrfs filesystem there, or unset BUTTERVOLUME_VOLUMES_PATH"
fi
mkdir -p /etc/buttervolume

echo "== starting the plugin"
pidfile=/run/buttervolume.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "already running (pid $(cat "$pidfile")); scripts/stop.sh first to restart it"
else
  nohup node "$root/bin/buttervolume.cjs" run >>/var/log/buttervolume.log 2>&1 &
  echo $! >"$pidfile"
  socket=${BUTTERVOLUME_SOCKET:-${BUTTERVOLUME_RUNPATH:-/run/docker}/plugins/btrfs.sock}
  for _ in $(seq 100); do
    [ -S "$socket" ] && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -5 /var/log/buttervolume.log >&2; die "the daemon exited (log above)"; }
    sleep 0.1
  done
  [ -S "$socket" ] || die "no socket at $socket after 10 s (see /var/log/buttervolume.log)"
  echo "listening on $socket (pid $(cat "$pidfile"), log /var/log/buttervolume.log)"
fi
ln -sf "$root/bin/buttervolume.cjs" /usr/local/bin/buttervolume
echo "$(buttervolume --version) is installed: try 'docker volume create -d btrfs v' and 'buttervolume snapshot v'"
