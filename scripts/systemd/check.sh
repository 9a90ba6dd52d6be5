#!/usr/bin/env bash
# CI check of the systemd units (.ci/run), as root, on a host where systemd
# need not be running (systemd-analyze works on files):
#  1. the units exactly as scripts/install.sh writes them, with the loop
#     image's mount unit and its drop-ins (installed under a temporary
#     BUTTERVOLUME_PREFIX, nothing started), pass `systemd-analyze verify`
#     without a word: unknown keys, a unit named that does not exist, an
#     ExecStart binary that is not there fail it; and verify is seen to fail
#     on a copy whose ExecStart names a missing binary;
#  2. the daemon's work under the unit's CapabilityBoundingSet and
#     NoNewPrivileges (setpriv): receiving snapshots with device nodes,
#     setuid files, file capabilities, immutable files, ACLs (the conformance
#     suite's metadata group), file flags, and `buttervolume run`.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/bv-units-XXXXXX)
trap 'BUTTERVOLUME_PREFIX=$tmp bash scripts/uninstall.sh >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

BUTTERVOLUME_PREFIX=$tmp BUTTERVOLUME_INIT=systemd BUTTERVOLUME_BUILD=0 BUTTERVOLUME_IMAGE_SIZE=256M \
  BUTTERVOLUME_LOGLEVEL=DEBUG bash scripts/install.sh >"$tmp.log" 2>&1 || { cat "$tmp.log"; exit 1; }
rm -f "$tmp.log"
units=$tmp/etc/systemd/system
for f in buttervolume.service var-lib-buttervolume.mount buttervolume.service.d/loop-mount.conf buttervolume.service.d/paths.conf buttervolume.service.d/environment.conf; do
  [ -f "$units/$f" ] || { echo "check.sh: install.sh wrote no $f" >&2; exit 1; }
done
verify() { (cd "$1" && systemd-analyze verify "${@:2}" 2>&1); }
out=$(verify "$units" ./buttervolume.service ./var-lib-buttervolume.mount) || { echo "$out"; echo "check.sh: systemd-analyze verify failed" >&2; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "check.sh: systemd-analyze verify complained (above)" >&2; exit 1; }
echo "systemd-analyze verify: buttervolume.service, var-lib-buttervolume.mount and their drop-ins pass"

# The same check fails on a unit whose ExecStart cannot run.
mkdir "$tmp/broken"
sed 's|^ExecStart=[^ ]*|ExecStart=/nonexistent/node|' "$units/buttervolume.service" >"$tmp/broken/buttervolume.service"
if out=$(verify "$tmp/broken" ./buttervolume.service); then
  echo "check.sh: systemd-analyze verify passed a unit with a missing ExecStart binary" >&2; exit 1
fi
grep -q 'is not executable' <<<"$out" || { echo "$out"; echo "check.sh: verify failed for another reason than the binary" >&2; exit 1; }
echo "systemd-analyze verify: fails on a missing ExecStart binary, as it should"

caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$units/buttervolume.service" | tr 'A-Z ' 'a-z\n' | sed 's/^cap_/+/' | paste -sd, -)
grep -q '^NoNewPrivileges=yes$' "$units/buttervolume.service" || { echo "check.sh: expected NoNewPrivileges=yes" >&2; exit 1; }
echo "under the unit's capabilities ($caps) and no new privileges:"
setpriv --bounding-set=-all,"$caps" --inh-caps=-all --no-new-privs -- \
  node scripts/run-tests.mjs test/conformance/metadata.test.ts test/native/flags.test.ts test/cli/run.test.ts | tail -1
