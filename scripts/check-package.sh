#!/usr/bin/env bash
# Checks the npm package as a user gets it, on this machine, as root:
#  1. `npm pack` (its prepack runs `npm run build`), or the tarball given;
#     it holds what runs and nothing else: bin/, dist/ (no source maps), both
#     prebuilds, the native sources and binding.gyp for a build where no
#     prebuild fits, README.md, package.json; no tests, benches, fixtures,
#     docs, fuzzers;
#  2. `npm install -g --prefix TMP` of it as on a machine WITHOUT a compiler:
#     PATH holds no cc/gcc/g++/clang/make/python (links to everything else),
#     CC and CXX are /bin/false, and a new empty npm cache (dependencies come
#     from the registry, as for a new user; --warm-cache: npm's own cache,
#     --prefer-offline, as the tap test does). The install must succeed without
#     building the addon (no build/ in the installed package: node-gyp-build
#     took the prebuild);
#  3. the installed `buttervolume --version`, then `buttervolume run` (legacy
#     plugin socket under a temporary RUNPATH, volumes on a loop-mounted btrfs,
#     no SSH server), a volume created through the socket
#     (VolumeDriver.Create over HTTP, as dockerd does), `buttervolume
#     snapshot` of it (a read-only subvolume in SNAPSHOTS_PATH), and a clean
#     stop on SIGTERM (exit 0, socket removed).
# Prints the package's size and the time from the start of `npm install -g`
# to the snapshot done. Needs root, mkfs.btrfs (btrfs-progs), the npm registry
# (the dependencies). Bounded: each step has a timeout.
# Usage: check-package.sh [--warm-cache] [buttervolume-VERSION.tgz]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'check-package.sh: %s\n' "$*" >&2; }
die() {
  printf 'check-package.sh: error: %s\n' "$*" >&2
  exit 1
}
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

[ "$(id -u)" -eq 0 ] || die 'run me as root (a loop mount, btrfs ioctls)'
command -v mkfs.btrfs >/dev/null || die 'mkfs.btrfs not found: apt-get install -y btrfs-progs'

warm=false
if [ "${1:-}" = --warm-cache ]; then
  warm=true
  shift
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bv-package.XXXXXX")
daemon=
mnt=$tmp/mnt
cleanup() {
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon" 2>/dev/null || true
    sleep 1
    kill -KILL "$daemon" 2>/dev/null || true
  fi
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. the package
if [ $# -ge 1 ]; then
  tgz=$(realpath "$1")
  [ -f "$tgz" ] || die "$1: no such file"
else
  say 'npm pack (prepack: npm run build)'
  (cd "$root" && timeout 300 npm pack --silent --pack-destination "$tmp" >"$tmp/pack.out" 2>"$tmp/pack.err") ||
    die "npm pack failed: $(tail -n 5 "$tmp/pack.err")"
  tgz=$tmp/$(tail -n 1 "$tmp/pack.out")
fi
version=$(tar -xzOf "$tgz" package/package.json | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).version')
tar -tzvf "$tgz" >"$tmp/list.txt"
entries=$(sed 's#.* package/#package/#' "$tmp/list.txt" | sed 's#^package/##')
unpacked=$(awk '{ s += $3 } END { print s }' "$tmp/list.txt")
for need in bin/buttervolume.cjs dist/cli/main.cjs dist/cli/peer.cjs dist/cli/main.js dist/server/daemon.js dist/btrfs/index.js dist/btrfs/index.d.ts \
  prebuilds/linux-x64/buttervolume.node prebuilds/linux-arm64/buttervolume.node binding.gyp scripts/native-hash.cjs native/napi/addon.cc README.md package.json; do
  printf '%s\n' "$entries" | grep -qxF "$need" || die "the package lacks $need"
done
stray=$(printf '%s\n' "$entries" | grep -E '^(test|bench|docs|fixtures|src|native/fuzz|\.ci|plugin|scripts/(plugin|[^/]+\.sh))(/|$)|\.test\.|\.map$|(^|/)fixtures/|^(tsconfig|eslint|\.taprc)' || true)
[ -z "$stray" ] || die "the package holds what does not run: $(printf '%s' "$stray" | head -n 10 | tr '\n' ' ')"
say "package $(basename "$tgz"): $(stat -c %s "$tgz") bytes, $(printf '%s\n' "$entries" | wc -l) files, $unpacked bytes unpacked; no tests, benches, fixtures, docs"

# --- 2. npm install -g, no compiler
nocc=$tmp/path
mkdir -p "$nocc"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    b=$(basename "$f")
    case "$b" in
      cc | c++ | c89* | c99* | cpp | cpp-* | gcc | gcc-* | g++ | g++-* | clang* | *-linux-gnu-* | make | gmake | python | python2* | python3* | node-gyp | ld | ld.* | as) continue ;;
    esac
    [ -e "$nocc/$b" ] || ln -s "$f" "$nocc/$b"
  done
done
for c in gcc g++ cc c++ make python3; do
  if PATH=$nocc command -v "$c" >/dev/null 2>&1; then die "$c is still reachable with the compiler-less PATH"; fi
done
prefix=$tmp/prefix
export BUTTERVOLUME_CONFIG=$tmp/no-config.ini BUTTERVOLUME_VOLUMES_PATH=$mnt/volumes BUTTERVOLUME_SNAPSHOTS_PATH=$mnt/snapshots \
  BUTTERVOLUME_TEST_REMOTE_PATH=$mnt/received BUTTERVOLUME_SCHEDULE=$tmp/etc/schedule.csv BUTTERVOLUME_RUNPATH=$tmp/run \
  BUTTERVOLUME_SSH_PORT=0 BUTTERVOLUME_SSH_PATH=$tmp/ssh
socket=$tmp/run/plugins/btrfs.sock
# the btrfs first: the timed part is the user's, from the install on
truncate -s 512M "$tmp/btrfs.img"
mkfs.btrfs -q "$tmp/btrfs.img" >"$tmp/mkfs.log" 2>&1 || die "mkfs.btrfs failed: $(cat "$tmp/mkfs.log")"
mkdir -p "$mnt"
mount -o loop "$tmp/btrfs.img" "$mnt"

cache=(--cache "$tmp/npm-cache")
$warm && cache=(--prefer-offline)
say "npm install -g --prefix TMP $(basename "$tgz") (PATH without compilers, CC=CXX=/bin/false, $($warm && echo "npm's cache" || echo 'empty npm cache'))"
t0=$(date +%s%N)
PATH=$nocc CC=/bin/false CXX=/bin/false \
  timeout 300 npm install -g --prefix "$prefix" "${cache[@]}" --no-audit --no-fund --loglevel=error "$tgz" >"$tmp/install.log" 2>&1 ||
  die "npm install -g failed: $(tail -n 20 "$tmp/install.log")"
install_ms=$(ms "$t0")
pkg=$prefix/lib/node_modules/buttervolume
bin=$prefix/bin/buttervolume
[ -x "$bin" ] || die "no $bin after the install"
[ ! -e "$pkg/build" ] || die "the install built the addon ($pkg/build exists): the prebuild was not used"
say "installed in $install_ms ms, addon from prebuilds/ (no build/); ssh2's optional crypto binding: $([ -e "$pkg/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node" ] && echo built || echo 'not built (no compiler: ssh2 uses Node crypto)')"

# --- 3. the installed command
got=$(PATH=$nocc timeout 30 "$bin" --version) || die "buttervolume --version failed: $got"
printf '%s\n' "$got" | grep -qF "$version" || die "buttervolume --version printed '$got', not $version"
PATH=$nocc "$bin" run >"$tmp/run.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do
  [ -S "$socket" ] && break
  kill -0 "$daemon" 2>/dev/null || die "buttervolume run exited: $(tail -n 20 "$tmp/run.log")"
  sleep 0.1
done
[ -S "$socket" ] || die "no socket $socket after 20 s: $(tail -n 20 "$tmp/run.log")"
# shellcheck disable=SC2016 # JavaScript
post='
  const http = require("http");
  const [socketPath, path, body] = process.argv.slice(1);
  const req = http.request({ socketPath, path, method: "POST", timeout: 20000 }, (res) => {
    let data = "";
    res.on("data", (c) => (data += c));
    res.on("end", () => { console.log(data); process.exitCode = res.statusCode === 200 ? 0 : 1; });
  });
  req.on("timeout", () => req.destroy(new Error("timed out")));
  req.on("error", (e) => { console.error(e.message); process.exitCode = 1; });
  req.end(body + "\n");'
answer=$(node -e "$post" "$socket" /Plugin.Activate '{}') || die "Plugin.Activate failed: $answer"
case "$answer" in *'"Implements":["VolumeDriver"]'*) ;; *) die "Plugin.Activate answered $answer" ;; esac
answer=$(node -e "$post" "$socket" /VolumeDriver.Create '{"Name":"pkgcheck","Opts":{}}') || die "VolumeDriver.Create failed: $answer"
[ "$answer" = '{"Err":""}' ] || die "VolumeDriver.Create answered $answer"
[ -d "$mnt/volumes/pkgcheck" ] || die "VolumeDriver.Create made no $mnt/volumes/pkgcheck"
snapshot=$(PATH=$nocc timeout 60 "$bin" snapshot pkgcheck) || die "buttervolume snapshot failed: $snapshot"
total_ms=$(ms "$t0")
case "$snapshot" in pkgcheck@*) ;; *) die "buttervolume snapshot printed '$snapshot'" ;; esac
[ -d "$mnt/snapshots/$snapshot" ] || die "no $mnt/snapshots/$snapshot"
if command -v btrfs >/dev/null; then
  [ "$(btrfs property get -ts "$mnt/snapshots/$snapshot" ro)" = ro=true ] || die "$snapshot is not a read-only subvolume"
fi
listed=$(PATH=$nocc timeout 30 "$bin" snapshots pkgcheck) || die "buttervolume snapshots failed"
[ "$listed" = "$snapshot" ] || die "buttervolume snapshots pkgcheck printed '$listed'"
# A command of the peer bundle (dist/cli/peer.cjs, ssh2 inside, its binding not built here).
keyline=$(PATH=$nocc timeout 30 "$bin" ssh-key) || die "buttervolume ssh-key failed: $keyline"
case "$keyline" in "ssh-ed25519 "*) ;; *) die "buttervolume ssh-key printed '$keyline'" ;; esac
kill -TERM "$daemon"
code=0
wait "$daemon" || code=$?
daemon=
[ "$code" -eq 0 ] || die "buttervolume run exited $code on SIGTERM: $(tail -n 20 "$tmp/run.log")"
[ ! -e "$socket" ] || die "the socket is left after the stop"
say "ok: $got; buttervolume run answered on its socket, VolumeDriver.Create made pkgcheck, buttervolume snapshot made $snapshot (read-only), ssh-key printed its key, SIGTERM stopped it (exit 0)"
say "npm install -g -> snapshot done: $total_ms ms (install $install_ms ms); package $(stat -c %s "$tgz") bytes"
