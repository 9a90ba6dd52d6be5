#!/usr/bin/env bash
# Quick start, step 1: install buttervolume from this checkout and start the
# plugin daemon, on a fresh Debian 12 machine, as root.
#  - builds the addon and the TypeScript (npm ci uses the committed prebuild
#    when it fits, else compiles with g++);
#  - when VOLUMES_PATH is not on btrfs and is the default one, creates a
#    sparse loop-backed btrfs image (BUTTERVOLUME_IMAGE, default
#    /var/lib/buttervolume.img, BUTTERVOLUME_IMAGE_SIZE, default 10G) mounted
#    on /var/lib/buttervolume - the only step that uses btrfs-progs
#    (mkfs.btrfs), installed for it;
#  - on a host running systemd (/run/systemd/system exists): installs and
#    enables buttervolume.service (scripts/systemd/, started before
#    docker.service, restarted on failure; logs: journalctl -u buttervolume)
#    and, for the loop image, var-lib-buttervolume.mount, so that both come
#    back after a reboot;
#  - without systemd: starts `buttervolume run` in the background (log
#    /var/log/buttervolume.log, pid /run/buttervolume.pid); nothing starts it
#    again after a reboot;
#  - links `buttervolume` into /usr/local/bin.
# The daemon is a legacy Docker plugin on /run/docker/plugins/btrfs.sock
# (driver name "btrfs"). Running it again is harmless: it rebuilds, and keeps
# what is installed and running (restart the daemon to run a new build:
# systemctl restart buttervolume, or scripts/stop.sh and install.sh again).
# What it did is recorded in /var/lib/buttervolume.install, for
# scripts/uninstall.sh, which undoes it (and never touches volumes,
# snapshots or the image). scripts/stop.sh stops the daemon.
#
# Configuration: /etc/buttervolume/config.ini, or BUTTERVOLUME_* variables
# (see README): given to install.sh, they are kept for the service (in
# buttervolume.service.d/environment.conf). Variables of this script only:
#   BUTTERVOLUME_IMAGE, BUTTERVOLUME_IMAGE_SIZE  the loop image (above)
#   BUTTERVOLUME_INIT=systemd|background         instead of detecting systemd
#   BUTTERVOLUME_BUILD=0                         skip the build (dist/ is there)
#   BUTTERVOLUME_PREFIX=DIR                      install under DIR instead of /
#     (tests): every file it writes, the loop image and its mount point, the
#     pid and log files; with systemd, the units are enabled under DIR
#     (systemctl --root) and nothing is started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
die() { echo "install.sh: $*" >&2; exit 1; }

prefix=${BUTTERVOLUME_PREFIX:-}
prefix=${prefix%/}
state=$prefix/var/lib/buttervolume.install
unit_dir=$prefix/etc/systemd/system
bin_link=$prefix/usr/local/bin/buttervolume
pidfile=$prefix/run/buttervolume.pid
log=$prefix/var/log/buttervolume.log
base_at=/var/lib/buttervolume # as the installed system sees it (units)
base=$prefix$base_at
image_at=${BUTTERVOLUME_IMAGE:-/var/lib/buttervolume.img}
image=$prefix$image_at
init=${BUTTERVOLUME_INIT:-}
if [ -z "$init" ]; then
  if [ -d /run/systemd/system ]; then init=systemd; else init=background; fi
fi
case $init in systemd | background) ;; *) die "BUTTERVOLUME_INIT must be systemd or background, not '$init'" ;; esac
# systemctl acts on this system, or offline on the units under the prefix.
live=yes
[ -z "$prefix" ] || live=no
sysctl() { if [ $live = yes ]; then systemctl "$@"; else systemctl --root="$prefix" "$@"; fi; }

[ "$(id -u)" = 0 ] || die "run me as root (btrfs ioctls, mounts)"
command -v node >/dev/null || die "Node.js >= 20.19 is required"
node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js >= 20.19 is required (found $(node --version))"
node_bin=$(command -v node)
export DEBIAN_FRONTEND=noninteractive

# The record of what was installed: KEY=value lines, read back without
# running them.
recorded() { [ -f "$state" ] && sed -n "s/^$1=//p" "$state" | tail -1 || true; }
record() { # KEY [value...]: the KEY=value lines replace those of KEY (none: removed); kept sorted
  local key=$1
  shift
  mkdir -p "$(dirname "$state")"
  touch "$state"
  { grep -v "^$key=" "$state" || true; for value in "$@"; do echo "$key=$value"; done; } | LC_ALL=C sort >"$state.tmp"
  mv "$state.tmp" "$state"
}
record ROOT "$root"
record INIT "$init"

if [ "${BUTTERVOLUME_BUILD:-1}" != 0 ]; then
  echo "== building"
  npm ci --no-audit --no-fund --loglevel=error
  npm run build --silent
fi
[ -f "$root/dist/cli/main.js" ] || die "dist/ is missing: build first (npm run build)"

echo "== btrfs"
volumes=${BUTTERVOLUME_VOLUMES_PATH:-$base/volumes}
probe=$volumes
while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
# The loop image is ours to mount when install made it, or when it is what
# is mounted on $base (an install before the record existed).
use_image=$(recorded IMAGE)
if [ -z "$use_image" ] && mountpoint -q "$base"; then
  dev=$(findmnt -rn -o SOURCE -M "$base" || true)
  if [ -n "$dev" ] && [ -e "$image" ] && [ "$(losetup -n -O BACK-FILE "$dev" 2>/dev/null)" = "$(realpath "$image")" ]; then
    use_image=$image_at
  fi
fi
if [ -n "$use_image" ] && [ "$use_image" != "$image_at" ]; then
  die "the loop image installed is $use_image, not $image_at: scripts/uninstall.sh first, or unset BUTTERVOLUME_IMAGE"
fi
if [ -z "$use_image" ] && [ "$(stat -f -c %T "$probe")" = btrfs ]; then
  echo "$volumes is on btrfs"
elif [ -n "$use_image" ] || [ "${volumes%/}" = "$base/volumes" ]; then
  if [ ! -e "$image" ]; then
    command -v mkfs.btrfs >/dev/null || { apt-get update -qq && apt-get install -y -qq btrfs-progs >/dev/null; }
    mkdir -p "$(dirname "$image")"
    truncate -s "${BUTTERVOLUME_IMAGE_SIZE:-10G}" "$image"
    mkfs.btrfs -q -L buttervolume "$image"
    echo "made $image (${BUTTERVOLUME_IMAGE_SIZE:-10G}, sparse)"
  fi
  use_image=$image_at
  record IMAGE "$image_at"
  echo "$base: the btrfs image $image"
  mkdir -p "$base"
  if [ "$init" = background ] && ! mountpoint -q "$base"; then
    mount -o loop "$image" "$base"
    record MOUNTED_BY_INSTALL yes
    echo "mounted $image on $base (mounted again by install.sh only: add '$image_at $base_at btrfs loop,nofail 0 0' to /etc/fstab for a reboot)"
  fi
else
  die "$volumes is not on btrfs: mount a btrfs filesystem there, or unset BUTTERVOLUME_VOLUMES_PATH"
fi
mkdir -p "$prefix/etc/buttervolume"
# Fields of the configuration the daemon will read (config.ini, BUTTERVOLUME_*
# and, for the service, the settings below), space-separated.
service_settings=()
config() {
  env "${service_settings[@]}" node --input-type=module -e "
    const { loadConfig } = await import(process.argv[1]);
    try { const c = loadConfig(); console.log(process.argv.slice(2).map((f) => c[f]).join(' ')); }
    catch (err) { console.error('install.sh: ' + err.message); process.exit(1); }" "$root/dist/config.js" "$@"
}

# The BUTTERVOLUME_* settings given to this script, for the service; not the
# variables of this script itself.
settings() {
  env | grep -E '^BUTTERVOLUME_[A-Z_]+=.' | grep -vE '^BUTTERVOLUME_(IMAGE|IMAGE_SIZE|INIT|BUILD|PREFIX)=' | sort || true
}
# One Environment= line: "%" doubled, "\" and '"' escaped inside the quotes.
environment_line() { printf 'Environment="%s"\n' "$(printf '%s' "$1" | sed -e 's/%/%%/g' -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
render() { # template output, then KEY=value pairs
  local template=$1 out=$2 script=()
  shift 2
  for pair in "$@"; do script+=(-e "s|@${pair%%=*}@|${pair#*=}|g"); done
  mkdir -p "$(dirname "$out")"
  sed "${script[@]}" "$template" >"$out.tmp"
  chmod 644 "$out.tmp"
  mv "$out.tmp" "$out"
}

if [ "$init" = systemd ]; then
  echo "== systemd units"
  dropins=$unit_dir/buttervolume.service.d
  units=(buttervolume.service)
  if [ -n "$use_image" ]; then
    mount_unit=$(systemd-escape --path --suffix=mount "$base_at")
    if findmnt --fstab --tab-file "$prefix/etc/fstab" -n "$base_at" >/dev/null 2>&1; then
      echo "$base_at is in /etc/fstab: mounted from there at boot (no $mount_unit installed)"
    else
      render scripts/systemd/buttervolume-loop.mount "$unit_dir/$mount_unit" \
        "IMAGE=$image_at" "IMAGE_DIR=$(dirname "$image_at")" "BASE=$base_at" "ROOT=$root"
      record MOUNT_UNIT "$mount_unit"
      units=("$mount_unit" "${units[@]}")
    fi
    render scripts/systemd/loop-mount.conf "$dropins/loop-mount.conf" "MOUNT_UNIT=$mount_unit"
  fi
  render scripts/systemd/buttervolume.service "$unit_dir/buttervolume.service" "NODE=$node_bin" "ROOT=$root"
  mkdir -p "$dropins"
  # The settings given, or those of the install before when none is given.
  given=$(settings)
  if [ -z "$given" ] && grep -q '^SETTING=' "$state"; then
    given=$(sed -n 's/^SETTING=//p' "$state")
    echo "the service keeps the settings of the install before: $(echo "$given" | cut -d= -f1 | tr '\n' ' ')"
  fi
  if [ -n "$given" ]; then
    mapfile -t service_settings <<<"$given"
    record SETTING "${service_settings[@]}"
    { echo '# Written by scripts/install.sh: the BUTTERVOLUME_* variables it was run with.'
      echo '[Service]'
      for line in "${service_settings[@]}"; do environment_line "$line"; done; } >"$dropins/environment.conf"
    echo "the service runs with: ${service_settings[*]%%=*} (in $dropins/environment.conf)"
  fi
  # The filesystems of VOLUMES_PATH and SNAPSHOTS_PATH are mounted first.
  paths=$(config volumesPath snapshotsPath)
  printf '# Written by scripts/install.sh: VOLUMES_PATH and SNAPSHOTS_PATH at install time.\n[Unit]\nRequiresMountsFor=%s\n' "$paths" >"$dropins/paths.conf"
  record UNITS "${units[*]}"
  if [ $live = yes ]; then
    # A daemon started in the background by an earlier install gives way to the service.
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "stopping the daemon started in the background (pid $(cat "$pidfile"))"
      bash scripts/stop.sh
    fi
    systemctl daemon-reload
    was_active=$(systemctl is-active buttervolume.service || true)
    systemctl enable --now "${units[@]}"
    if [ "$was_active" = active ]; then
      echo "buttervolume.service was running already: 'systemctl restart buttervolume' runs this build"
    else
      echo "buttervolume.service started (journalctl -u buttervolume for its log)"
    fi
    systemctl is-active --quiet buttervolume.service || die "buttervolume.service is not running: systemctl status buttervolume"
  else
    sysctl enable "${units[@]}"
    echo "units installed and enabled under $prefix, not started"
  fi
else
  echo "== starting the plugin"
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "already running (pid $(cat "$pidfile")); scripts/stop.sh first to restart it"
  else
    nohup "$node_bin" "$root/bin/buttervolume.cjs" run >>"$log" 2>&1 &
    echo $! >"$pidfile"
    socket=$(config socketPath)
    for _ in $(seq 100); do
      [ -S "$socket" ] && break
      kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -5 "$log" >&2; die "the daemon exited (log above)"; }
      sleep 0.1
    done
    [ -S "$socket" ] || die "no socket at $socket after 10 s (see $log)"
    echo "listening on $socket (pid $(cat "$pidfile"), log $log)"
  fi
fi
mkdir -p "$(dirname "$bin_link")"
ln -sfn "$root/bin/buttervolume.cjs" "$bin_link"
record LINK "$bin_link"
echo "$("$node_bin" "$root/bin/buttervolume.cjs" --version) is installed: try 'docker volume create -d btrfs v' and 'buttervolume snapshot v'"
