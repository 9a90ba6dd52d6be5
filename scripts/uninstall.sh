#!/usr/bin/env bash
# Undoes what scripts/install.sh did, as it recorded in
# /var/lib/buttervolume.install, and nothing else:
#  - stops and disables buttervolume.service and the loop image's mount unit
#    (which unmounts the image), and removes their files; or stops the
#    daemon started in the background, and unmounts the image if install.sh
#    mounted it;
#  - removes the /usr/local/bin/buttervolume link (when it still points here).
# Never touched: the volumes, the snapshots, the image file, the
# configuration (/etc/buttervolume), the SSH keys, the build in this checkout.
# It says how to delete the image by hand. BUTTERVOLUME_PREFIX as for
# install.sh. Exit status 1 when something could not be undone (said why).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
prefix=${BUTTERVOLUME_PREFIX:-}
prefix=${prefix%/}
state=$prefix/var/lib/buttervolume.install
unit_dir=$prefix/etc/systemd/system
[ "$(id -u)" = 0 ] || { echo "uninstall.sh: run me as root" >&2; exit 1; }
[ -f "$state" ] || { echo "nothing to undo: no $state (scripts/install.sh records there what it installs)"; exit 0; }
recorded() { sed -n "s/^$1=//p" "$state" | tail -1; }
installed_root=$(recorded ROOT)
live=yes
[ -z "$prefix" ] || live=no
systemd_here=no
[ $live = yes ] && [ -d /run/systemd/system ] && systemd_here=yes
failed=0

# The daemon: the service, and a daemon started in the background (also
# after an install with systemd: one may be left from an earlier install).
units=$(recorded UNITS)
if [ -f "$unit_dir/buttervolume.service" ]; then
  if [ $systemd_here = yes ]; then
    systemctl disable --now buttervolume.service || failed=1
  elif [ $live = no ]; then
    systemctl --root="$prefix" disable buttervolume.service || failed=1
  fi
  rm -f "$unit_dir/buttervolume.service"
  rm -rf "$unit_dir/buttervolume.service.d"
  echo "removed buttervolume.service"
fi
BUTTERVOLUME_PREFIX=$prefix bash "$root/scripts/stop.sh" >/dev/null || { echo "the background daemon did not stop" >&2; failed=1; }

# The loop image: unmounted only when install.sh mounts it (its unit, or by hand).
image=$(recorded IMAGE)
mount_unit=$(recorded MOUNT_UNIT)
base=$prefix/var/lib/buttervolume
if [ -n "$mount_unit" ] && [ -f "$unit_dir/$mount_unit" ]; then
  if [ $systemd_here = yes ]; then
    systemctl disable --now "$mount_unit" || { echo "could not unmount $base: stop the containers using its volumes, then: umount $base" >&2; failed=1; }
  elif [ $live = no ]; then
    systemctl --root="$prefix" disable "$mount_unit" || failed=1
  fi
  rm -f "$unit_dir/$mount_unit"
  echo "removed $mount_unit"
fi
if [ "$(recorded MOUNTED_BY_INSTALL)" = yes ] && mountpoint -q "$base"; then
  if umount "$base"; then echo "unmounted $base"; else
    echo "could not unmount $base: stop the containers using its volumes, then: umount $base" >&2
    failed=1
  fi
fi
[ $systemd_here = yes ] && [ -n "$units" ] && systemctl daemon-reload

link=$(recorded LINK)
if [ -n "$link" ] && [ -L "$link" ] && [ "$(readlink "$link")" = "${installed_root:-$root}/bin/buttervolume.cjs" ]; then
  rm -f "$link"
  echo "removed $link"
fi

if [ $failed = 0 ]; then
  rm -f "$state"
else
  echo "uninstall.sh: not everything could be undone (above); $state is kept: run me again once it is fixed" >&2
fi
echo "kept: the volumes and snapshots (VOLUMES_PATH, SNAPSHOTS_PATH), /etc/buttervolume, the SSH keys"
if [ -n "$image" ]; then
  echo "kept: the image $prefix$image holding them; to delete them all for good, by hand:"
  echo "  mountpoint -q $base && umount $base; rm $prefix$image"
fi
exit $failed
