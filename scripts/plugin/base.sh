#!/usr/bin/env bash
# Makes the base image the plugin's Dockerfile starts FROM, with no registry,
# and prints its name on stdout. Usage: base.sh KIND STAGE [ARCH]
#   minimal      (default) only the shared libraries the staged ELF files need
#                (Node.js and every .node addon in STAGE, found with ldd: libc,
#                libm, libstdc++, libgcc_s, the loader), copied from this
#                machine, plus /etc/passwd, /etc/group, /etc/nsswitch.conf and
#                /tmp. ~5 MB, a second. The addons were built here, so the
#                glibc they were linked against is the one in the image.
#                For another ARCH than this machine's (arm64 on x64), ldd cannot
#                run them: the libraries they name (readelf -d, recursively)
#                come from Debian's cross packages in /usr/TRIPLET/lib
#                (arm64: libc6-arm64-cross, libstdc++6-arm64-cross, which
#                g++-aarch64-linux-gnu installs), put in /lib/TRIPLET, the
#                loader at the path the binaries ask for (/lib/ld-linux-aarch64.so.1).
#   debootstrap  Debian `debootstrap --variant=minbase` (the suite of this
#                machine, else bookworm) from the mirror in this machine's apt
#                sources (or $DEBOOTSTRAP_MIRROR); ~200 MB, ~1 min, needs root
#                and the debootstrap package; this machine's architecture only.
# Either is imported with `docker import` under a name derived from its
# content (minimal) or suite (debootstrap), and reused when it already exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

[ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 minimal|debootstrap STAGE [x64|arm64]"
kind=$1
stage=$2
host=$(host_arch)
arch=${3:-$host}
arch_machine "$arch" >/dev/null || die "unknown architecture '$arch' (x64 or arm64)"
work=$(mktemp -d "${TMPDIR:-/tmp}/buttervolume-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Deterministic archive of DIR on stdout (same content, same bytes, same name).
pack() { tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - .; }

# import TAR NAME: docker import unless NAME exists already.
import() {
  if docker image inspect "$2" >/dev/null 2>&1; then
    say "base image $2 exists: reused"
  else
    docker import --message "buttervolume plugin base ($kind)" - "$2" <"$1" >/dev/null
    say "base image $2 imported ($(du -h "$1" | cut -f1))"
  fi
}

# The shared libraries that the ELF files ($elves) need, as
# "PATH-IN-IMAGE HOST-FILE" lines on stdout.
host_libs() {
  need ldd 'it comes with glibc (Debian: libc-bin)'
  # shellcheck disable=SC2086
  ldd $elves >"$work/ldd.txt" 2>&1 || die "ldd failed on the staged binaries (not built for this machine?): $(grep -v '=>' "$work/ldd.txt" | head -n 3 | tr '\n' ' ')"
  if grep -q 'not found' "$work/ldd.txt"; then
    die "a staged binary needs a library this machine does not have: $(grep 'not found' "$work/ldd.txt" | sort -u | tr -s ' \t\n' ' ')"
  fi
  # ldd lines: "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)":
  # under the path ldd names (the loader searches /lib/<triplet> by default), the file it resolves to
  awk '$2 == "=>" && $3 ~ /^\// { print $3, $3 } $1 ~ /^\// && $2 ~ /^\(0x/ { print $1, $1 }' "$work/ldd.txt" | sort -u
}

# The same for another architecture than this machine's, whose loader cannot
# run here: the libraries named by readelf -d, recursively, from Debian's
# cross packages in /usr/TRIPLET/lib, put in /lib/TRIPLET (the loader's
# default directory), the loader at the path the binaries ask for.
cross_libs() {
  need readelf 'apt-get install -y binutils'
  local tri sysroot queue=() seen=' ' f name interp='' path
  tri=$(arch_triplet "$arch")
  sysroot=${BUTTERVOLUME_CROSS_SYSROOT:-/usr/$tri}
  [ -d "$sysroot/lib" ] || die "no $arch libraries in $sysroot/lib: apt-get install -y g++-$tri (Debian's cross compiler brings its C and C++ libraries)"
  for f in $elves; do
    queue+=("$f")
    [ -n "$interp" ] || interp=$(readelf -l "$f" 2>/dev/null | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
  done
  [ -n "$interp" ] || die 'the staged Node.js names no program interpreter'
  queue+=("$sysroot/lib/$(basename "$interp")")
  seen=" $(basename "$interp") "
  printf '%s %s\n' "$interp" "$sysroot/lib/$(basename "$interp")"
  while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    [ -e "$f" ] || die "$(basename "$f") is needed but not in $sysroot/lib"
    for name in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      case "$seen" in *" $name "*) continue ;; esac
      seen="$seen$name "
      [ -e "$sysroot/lib/$name" ] || die "$(basename "$f") needs $name, not found in $sysroot/lib"
      path=/lib/$tri/$name
      printf '%s %s\n' "$path" "$sysroot/lib/$name"
      queue+=("$sysroot/lib/$name")
    done
  done
}

minimal() {
  local rootfs=$work/rootfs elves libs lib src
  mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
  chmod 1777 "$rootfs/tmp"
  chmod 0700 "$rootfs/root"
  elves=$(find "$stage" -type f \( -name '*.node' -o -path '*/bin/node' \))
  if [ "$arch" = "$host" ]; then host_libs >"$work/libs.txt"; else cross_libs >"$work/libs.txt"; fi
  while read -r lib src; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$src" "$rootfs$lib"
  done <"$work/libs.txt"
  libs=$(cut -d' ' -f1 "$work/libs.txt")
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  # glibc >= 2.34 has files and dns built in; dockerd binds the host's /etc/hosts and resolv.conf
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  pack "$rootfs" >"$work/base.tar"
  local sum
  sum=$(sha256sum "$work/base.tar" | cut -c1-12)
  say "minimal base ($arch): $(printf '%s\n' "$libs" | wc -l) libraries ($(printf '%s\n' "$libs" | xargs -n1 basename | tr '\n' ' '))"
  import "$work/base.tar" "buttervolume/base:minimal-$sum"
  printf '%s\n' "buttervolume/base:minimal-$sum"
}

# The Debian mirror of this machine's apt sources (deb822 "URIs:" or one-line "deb URL").
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '
      /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }
      /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\// && $i ~ /\/debian\/?$/) { print $i; exit } }
    ' "$f"
  done | head -n1
}

debootstrap_base() {
  [ "$arch" = "$host" ] || die "--base debootstrap makes a base for this machine ($host) only: use minimal, or an image of yours for $arch"
  need debootstrap 'apt-get install -y debootstrap'
  [ "$(id -u)" -eq 0 ] || die 'debootstrap needs root'
  local suite mirror name
  suite=$(. /etc/os-release 2>/dev/null && [ "${ID:-}" = debian ] && printf '%s' "${VERSION_CODENAME:-}") || suite=
  suite=${suite:-bookworm}
  name=buttervolume/base:debootstrap-$suite
  if docker image inspect "$name" >/dev/null 2>&1; then
    say "base image $name exists: reused"
    printf '%s\n' "$name"
    return
  fi
  mirror=${DEBOOTSTRAP_MIRROR:-$(apt_mirror)}
  [ -n "$mirror" ] || die 'no Debian mirror found in /etc/apt/sources.list*: set DEBOOTSTRAP_MIRROR'
  say "debootstrap --variant=minbase $suite from $mirror (about a minute)"
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; last lines:
$(tail -n 15 "$work/debootstrap.log")"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  pack "$work/rootfs" >"$work/base.tar"
  import "$work/base.tar" "$name"
  printf '%s\n' "$name"
}

case "$kind" in
  minimal) minimal ;;
  debootstrap) debootstrap_base ;;
  *) die "unknown base kind '$kind' (minimal or debootstrap; for an image of your own, use build.sh --base IMAGE)" ;;
esac
