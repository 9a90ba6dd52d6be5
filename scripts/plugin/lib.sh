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
