#!/usr/bin/env bash
# Stops the daemon started by scripts/install.sh (SIGTERM: requests in flight
# finish, the socket is removed) and waits for it to exit.
set -euo pipefail
pidfile=/run/buttervolume.pid
[ -f "$pidfile" ] || { echo "not running (no $pidfile)"; exit 0; }
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { echo "pid $pid still running after 30 s" >&2; exit 1; }
fi
rm -f "$pidfile"
echo "stopped"
