#!/usr/bin/env bash
# `npm run plugin:build [-- OPTIONS]`: builds the managed Docker plugin from
# this checkout (after `npm run build`), with no registry:
#   1. stages Node.js and the package (stage.sh),
#   2. makes the base image (base.sh) or takes the one named by --base,
#   3. `docker build`s the Dockerfile on it and checks that Node.js loads the
#      daemon and the addon inside the image (the addon's glibc must fit),
#   4. exports the image's filesystem as rootfs/ next to plugin/config.json,
#   5. `docker plugin create NAME`.
# The plugin is left disabled: see the README ("Managed plugin") to enable it.
# It works on the engine the docker CLI talks to (DOCKER_HOST, contexts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

usage() {
  cat >&2 <<USAGE
usage: npm run plugin:build -- [--name NAME] [--base minimal|debootstrap|IMAGE] [--node FILE] [--replace]
  --name NAME   plugin reference (default anybox/buttervolume:latest: the original's,
                so existing volumes keep their driver name)
  --base KIND   minimal (default): only the libraries Node.js needs, from this machine;
                debootstrap: a Debian minbase made here; IMAGE: an image of yours
                (glibc >= the one the addon was built with)
  --node FILE   the Node.js binary to put in the image (default: the node running npm,
                $(command -v node 2>/dev/null || echo 'none found'))
  --replace     remove an existing plugin of that name first (it is disabled first;
                its volumes' data stays on disk)
USAGE
  exit "${1:-2}"
}

name=anybox/buttervolume:latest
base=minimal
node_bin=$(command -v node || true)
replace=false
while [ $# -gt 0 ]; do
  case "$1" in
    --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    --base) [ $# -ge 2 ] || usage; base=$2; shift 2 ;;
    --base=*) base=${1#*=}; shift ;;
    --node) [ $# -ge 2 ] || usage; node_bin=$2; shift 2 ;;
    --node=*) node_bin=${1#*=}; shift ;;
    --replace) replace=true; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage ;;
  esac
done
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

"$here/stage.sh" "$node_bin" "$work/context"
case "$base" in
  minimal | debootstrap) base_image=$("$here/base.sh" "$base" "$work/context") ;;
  *) base_image=$base; say "base image $base_image (yours)" ;;
esac

# Where the build came from; it also makes every build's rootfs distinct
# (dockerd refuses a plugin whose rootfs is byte-identical to another's).
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null || commit=$commit+changes
printf 'name=%s\ncommit=%s\nbase=%s\nbuilt=%s\n' "$name" "$commit" "$base_image" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" \
  >"$work/context/opt/buttervolume/BUILD"

# The legacy builder: it takes local images as they are, where BuildKit may
# need the buildx plugin. Its output is shown only when it fails.
t0=$SECONDS
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --build-arg "BASE=$base_image" -t "$tag" \
  -f "$root/Dockerfile" "$work/context" >"$work/build.log" 2>&1 ||
  die "docker build failed (base $base_image); its output:
$(tail -n 20 "$work/build.log")"
say "image built in $(since "$t0")"

# Node.js must start in the image and load the daemon's modules and the addon.
t0=$SECONDS
check='Promise.all(["/opt/buttervolume/dist/btrfs/index.js", "/opt/buttervolume/dist/server/daemon.js"].map((m) => import(m))).then(() => console.log("ok " + process.version))'
out=$(docker run --rm --network none --entrypoint /usr/local/bin/node "$tag" -e "$check" 2>&1) ||
  die "Node.js cannot load the daemon in the image: does base $base_image have a glibc at least as new as this machine's ($(ldd --version 2>/dev/null | head -n1 | awk '{ print $NF }'))? $out"
say "in the image: Node.js $out loads the daemon and the addon ($(since "$t0"))"

t0=$SECONDS
container=$(docker create "$tag")
mkdir -p "$work/plugin/rootfs"
docker export "$container" | tar -x -C "$work/plugin/rootfs"
cp "$root/plugin/config.json" "$work/plugin/config.json"
size=$(du -sh "$work/plugin/rootfs" | cut -f1)
say "rootfs exported ($size) in $(since "$t0")"

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
  settings=$(docker plugin inspect "$name" | "$node_bin" -e '
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
say "plugin $name created (rootfs $size) in $(since "$start"), disabled."
say "next: mkdir -p /var/lib/buttervolume/config /var/lib/buttervolume/ssh   (/var/lib/buttervolume on btrfs)"
say "      docker plugin enable $name"
