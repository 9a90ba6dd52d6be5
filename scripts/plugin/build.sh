#!/usr/bin/env bash
# `npm run plugin:build [-- OPTIONS]`: builds the managed Docker plugin from
# this checkout (after `npm run build`), with no registry:
#   1. stages Node.js and the package (stage.sh),
#   2. makes the base image (base.sh) or takes the one named by --base,
#   3. `docker build`s the Dockerfile on it and checks that Node.js loads the
#      daemon and the addon inside the image (the addon's glibc must fit),
#   4. exports the image's filesystem as rootfs/ next to plugin/config.json,
#      and checks that every ELF file in it is of the plugin's architecture,
#   5. `docker plugin create NAME`.
# --arch arm64 on an x64 machine (or x64 on arm64): Node.js is the npm
# registry's node-linux-ARCH of this Node's version (scripts/node-dist.sh,
# fetched once; or --node FILE, then no registry at all), the addon
# prebuilds/linux-ARCH, the libraries Debian's cross packages (arm64:
# apt-get install g++-aarch64-linux-gnu), and step 3's check runs Node.js from
# the exported rootfs under qemu-user-static (skipped, with a warning, when
# it is not installed). Such a plugin is created, but enables only on a host
# of its architecture.
# The plugin is left disabled: see the README ("Managed plugin") to enable it.
# It works on the engine the docker CLI talks to (DOCKER_HOST, contexts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() {
  cat >&2 <<USAGE
usage: npm run plugin:build -- [--name NAME] [--arch x64|arm64] [--base minimal|debootstrap|IMAGE] [--node FILE] [--replace]
  --name NAME   plugin reference (default anybox/buttervolume:latest: the original's,
                so existing volumes keep their driver name)
  --arch ARCH   the plugin's architecture (default: this machine's, $(host_arch));
                another one: Node.js from the npm registry (node-linux-ARCH, or --node),
                the addon prebuilds/linux-ARCH, Debian's cross libraries (arm64:
                apt-get install g++-aarch64-linux-gnu); enables on an ARCH host only
  --base KIND   minimal (default): only the libraries Node.js needs, from this machine;
                debootstrap: a Debian minbase made here; IMAGE: an image of yours
                (glibc >= the one the addon was built with)
  --node FILE   the Node.js binary to put in the image (default: the node running npm,
                $(command -v node 2>/dev/null || echo 'none found'); for another --arch,
                bin/node of the npm package node-linux-ARCH@$(node -v 2>/dev/null | tr -d v))
  --replace     remove an existing plugin of that name first (it is disabled first;
                its volumes' data stays on disk)
USAGE
  exit "${1:-2}"
}

name=anybox/buttervolume:latest
base=minimal
node_bin=
host=$(host_arch)
arch=$host
replace=false
while [ $# -gt 0 ]; do
  case "$1" in
    --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    --base) [ $# -ge 2 ] || usage; base=$2; shift 2 ;;
    --base=*) base=${1#*=}; shift ;;
    --node) [ $# -ge 2 ] || usage; node_bin=$2; shift 2 ;;
    --node=*) node_bin=${1#*=}; shift ;;
    --arch) [ $# -ge 2 ] || usage; arch=$2; shift 2 ;;
    --arch=*) arch=${1#*=}; shift ;;
    --replace) replace=true; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage ;;
  esac
done
machine=$(arch_machine "$arch") || die "unknown architecture '$arch' (x64 or arm64)"
qemu=
if [ "$arch" != "$host" ]; then
  if [ -z "$node_bin" ]; then
    node_bin=$(bash "$root/scripts/node-dist.sh" "$arch")/bin/node || die "no Node.js for linux-$arch: pass --node FILE"
  fi
  if command -v "$(arch_qemu "$arch")" >/dev/null 2>&1; then
    qemu=$(arch_qemu "$arch")
  else
    say "warning: $(arch_qemu "$arch") not found (apt-get install -y qemu-user-static): Node.js in the $arch rootfs will not be run here"
  fi
  [ "$base" != debootstrap ] || die "--base debootstrap makes a base for this machine ($host) only: use minimal (default) or an $arch image of yours"
fi
[ -n "$node_bin" ] || node_bin=$(command -v node || true)
[ -n "$node_bin" ] || die 'no node in PATH: pass --node FILE'
case "$name" in
  *[[:space:]]* | -* | '') die "invalid plugin name '$name'" ;;
  *:*) ;;
  *) name=$name:latest ;;
esac

need tar 'apt-get install -y tar'
need_docker
# The rootfs is extracted with its owners (root): only root can do that.
[ "$(id -u)" -eq 0 ] || say "warning: not root: the plugin's files will belong to $(id -un), not root"
start=$SECONDS

if docker plugin inspect "$name" >/dev/null 2>&1; then
  $replace || die "a plugin $name exists already: pass --replace to rebuild it here (its volumes stay), or use another --name; to upgrade from a registry: docker plugin upgrade $name REMOTE"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/buttervolume-plugin.XXXXXX")
tag=buttervolume/plugin-build:$(basename "$work" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9\n' '-')
container=
cleanup() {
  [ -z "$container" ] || docker rm -f "$container" >/dev/null 2>&1 || true
  docker image rm -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$here/stage.sh" "$node_bin" "$work/context" "$arch"
case "$base" in
  minimal | debootstrap) base_image=$("$here/base.sh" "$base" "$work/context" "$arch") ;;
  *) base_image=$base; say "base image $base_image (yours)" ;;
esac

# Where the build came from; it also makes every build's rootfs distinct
# (dockerd refuses a plugin whose rootfs is byte-identical to another's).
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit=$commit+changes
printf 'name=%s\ncommit=%s\narch=%s\nbase=%s\nbuilt=%s\n' "$name" "$commit" "$arch" "$base_image" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" \
  >"$work/context/opt/buttervolume/BUILD"

# The legacy builder: it takes local images as they are, where BuildKit may
# need the buildx plugin. Its output is shown only when it fails.
t0=$SECONDS
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --build-arg "BASE=$base_image" -t "$tag" \
  -f "$root/Dockerfile" "$work/context" >"$work/build.log" 2>&1 ||
  die "docker build failed (base $base_image); its output:
$(tail -n 20 "$work/build.log")"
say "image built in $(since "$t0")"

# Node.js must start in the image and load the daemon's modules and the addon
# (another architecture's: under qemu, once the rootfs is exported).
# Arguments: the package's directory, the architecture.
# shellcheck disable=SC2016 # JavaScript
check='const [root, arch] = process.argv.slice(1); const [a, b] = process.versions.node.split(".").map(Number);
  if (process.arch !== arch || !(a > 20 || (a === 20 && b >= 19))) throw new Error(`Node.js ${process.version} ${process.arch}: the plugin needs >= 20.19 on ${arch}`);
  Promise.all(["/dist/btrfs/index.js", "/dist/server/daemon.js"].map((m) => import(root + m))).then(() => console.log("ok " + process.version + " " + process.arch))'
if [ "$arch" = "$host" ]; then
  t0=$SECONDS
  out=$(docker run --rm --network none --entrypoint /usr/local/bin/node "$tag" -e "$check" /opt/buttervolume "$arch" 2>&1) ||
    die "Node.js cannot load the daemon in the image: does base $base_image have a glibc at least as new as this machine's ($(ldd --version 2>/dev/null | head -n1 | awk '{ print $NF }'))? $out"
  say "in the image: Node.js $out loads the daemon and the addon ($(since "$t0"))"
fi

t0=$SECONDS
container=$(docker create "$tag")
mkdir -p "$work/plugin/rootfs"
docker export "$container" | tar -x -C "$work/plugin/rootfs"
cp "$root/plugin/config.json" "$work/plugin/config.json"
size=$(du -sh "$work/plugin/rootfs" | cut -f1)
say "rootfs exported ($size) in $(since "$t0")"

# Every ELF file in it is of the plugin's architecture (a stray one of this
# machine's would fail only when the plugin uses it, on the other host).
t0=$SECONDS
# shellcheck disable=SC2016 # JavaScript
elves=$("$(command -v node)" -e '
  const fs = require("fs"), path = require("path");
  const [root, machine] = [process.argv[1], Number(process.argv[2])];
  const header = Buffer.alloc(20);
  let n = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const fd = fs.openSync(p, "r");
        const got = fs.readSync(fd, header, 0, 20, 0);
        fs.closeSync(fd);
        if (got < 20 || header.toString("latin1", 0, 4) !== "\x7fELF") continue;
        const m = header.readUInt16LE(18);
        if (m !== machine) throw new Error(`/${path.relative(root, p)} is for ELF machine ${m}, not ${machine}`);
        n++;
      }
    }
  };
  walk(root);
  console.log(n);' "$work/plugin/rootfs" "$machine" 2>&1) || die "a file in the rootfs is not for $arch: $(printf '%s' "$elves" | grep -m1 'Error:')"
say "rootfs: $elves ELF files, all $arch ($(since "$t0"))"

if [ "$arch" != "$host" ] && [ -n "$qemu" ]; then
  # qemu -L: the loader and libraries come from the rootfs, as on an $arch host.
  t0=$SECONDS
  rootfs=$work/plugin/rootfs
  out=$(timeout 180 "$qemu" -L "$rootfs" "$rootfs/usr/local/bin/node" -e "$check" "$rootfs/opt/buttervolume" "$arch" 2>&1) ||
    die "Node.js cannot load the daemon from the $arch rootfs under $qemu: $out"
  say "in the rootfs, under $qemu: Node.js $out loads the daemon and the addon ($(since "$t0"))"
fi

settings=
was_enabled=false
if $replace && docker plugin inspect "$name" >/dev/null 2>&1; then
  # What `docker plugin set` changed is carried over: env values that differ
  # from the old plugin's defaults, and mount sources that differ from the
  # new config.json's (dockerd updates a mount's default along with its
  # setting, so the old defaults are lost). An enabled plugin is enabled
  # again. Docker keeps the volumes of a removed plugin and serves them again
  # through the new plugin of the same name.
  # shellcheck disable=SC2016 # JavaScript
  settings=$(docker plugin inspect "$name" | node -e '
    const fs = require("fs");
    const [p] = JSON.parse(fs.readFileSync(0, "utf8"));
    const fresh = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const envDefaults = new Map(p.Config.Env.map((v) => [v.Name, v.Value]));
    for (const kv of p.Settings.Env) {
      const i = kv.indexOf("=");
      if (envDefaults.get(kv.slice(0, i)) !== kv.slice(i + 1)) console.log(kv);
    }
    for (const m of p.Settings.Mounts) {
      const d = fresh.mounts.find((c) => c.name === m.Name);
      if (m.Name && d && d.source !== m.Source) console.log(`${m.Name}.source=${m.Source}`);
    }' "$work/plugin/config.json")
  was_enabled=$(docker plugin inspect -f '{{.Enabled}}' "$name")
  say "replacing plugin $name (enabled: $was_enabled)"
  if [ "$was_enabled" = true ]; then docker plugin disable -f "$name" >/dev/null; fi
  docker plugin rm -f "$name" >/dev/null
fi
t0=$SECONDS
docker plugin create "$name" "$work/plugin" >/dev/null ||
  die "docker plugin create $name failed${settings:+ (the old plugin is removed; its settings were: $(printf '%s' "$settings" | tr '\n' ' '))}; volumes stay on disk: fix and build again"
say "docker plugin create took $(since "$t0")"
if [ -n "$settings" ]; then
  while IFS= read -r kv; do
    docker plugin set "$name" "$kv" 2>/dev/null || say "warning: the new plugin does not take the old setting $kv"
  done <<<"$settings"
  say "settings carried over: $(printf '%s' "$settings" | tr '\n' ' ')"
fi
if [ "$was_enabled" = true ]; then
  docker plugin enable "$name" >/dev/null || die "the new plugin $name is created but does not enable (see above)"
  say "plugin $name replaced (rootfs $size) and enabled again in $(since "$start")"
  exit 0
fi
say "plugin $name created (rootfs $size, $arch) in $(since "$start"), disabled."
[ "$arch" = "$host" ] || say "it enables on a linux-$arch host only: push it (npm run plugin:push) and install it there"
say "next: mkdir -p /var/lib/buttervolume/config /var/lib/buttervolume/ssh   (/var/lib/buttervolume on btrfs)"
say "      docker plugin enable $name"
