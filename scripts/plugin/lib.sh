# shellcheck shell=bash
# Helpers shared by the scripts in scripts/plugin/ (sourced, not run).
# Every message goes to stderr, prefixed with the script's name, so that
# stdout carries only what a script returns (an image name, a path).

BV_ME=${BV_ME:-$(basename "$0" .sh)}

say() { printf '%s: %s\n' "$BV_ME" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$BV_ME" "$*" >&2
  exit 1
}

# need CMD WHY: fail with one clear line when CMD is not installed.
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

# The Docker engine the docker CLI talks to (DOCKER_HOST, the context...) must answer.
need_docker() {
  need docker 'install the docker CLI and engine (Debian: apt-get install -y docker.io)'
  local v
  v=$(docker version --format '{{.Server.Version}}' 2>/dev/null) ||
    die "the Docker engine does not answer (docker version failed${DOCKER_HOST:+, DOCKER_HOST=$DOCKER_HOST}): start dockerd first"
  say "Docker engine $v${DOCKER_HOST:+ at $DOCKER_HOST}"
}

# Seconds since $1 (a value of $SECONDS), for the timing lines.
since() { printf '%ss' "$((SECONDS - $1))"; }

# Architectures (Node.js's names) the plugin is built for: x64, arm64.
# arch_machine ARCH: the ELF e_machine of its binaries; arch_triplet ARCH:
# Debian's multiarch triplet (its cross tools are TRIPLET-*, its libraries in
# /usr/TRIPLET/lib, and the plugin's in /lib/TRIPLET); arch_qemu ARCH: the
# qemu-user-static program that runs its binaries on another machine.
arch_machine() { case "$1" in x64) echo 62 ;; arm64) echo 183 ;; *) return 1 ;; esac; }
arch_triplet() { case "$1" in x64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;; *) return 1 ;; esac; }
arch_qemu() { case "$1" in x64) echo qemu-x86_64-static ;; arm64) echo qemu-aarch64-static ;; *) return 1 ;; esac; }
# The architecture of the machine running this (the node in PATH).
host_arch() { node -p process.arch 2>/dev/null || uname -m | sed 's/^x86_64$/x64/; s/^aarch64$/arm64/'; }

# elf_machine FILE: its ELF e_machine (little-endian ELF), or status 1 when it is no ELF file.
elf_machine() {
  [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' \n')" = '177ELF' ] || return 1
  od -An -tu2 -j18 -N2 "$1" | tr -d ' \n'
}
