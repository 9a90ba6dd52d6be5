#!/usr/bin/env bash
# Stops the daemon started by scripts/install.sh (SIGTERM: requests in flight
# finish, the socket is removed) and waits for it to exit: the service with
# systemd (systemctl stop buttervolume; `systemctl start buttervolume` starts
# it again, a reboot too), else the background daemon of its pid file.
# BUTTERVOLUME_PREFIX as for install.sh.
set -euo pipefail
prefix=${BUTTERVOLUME_PREFIX:-}
prefix=${prefix%/}
if [ -z "$prefix" ] && [ -d /run/systemd/system ] && [ -f /etc/systemd/system/buttervolume.service ]; then
  systemctl stop buttervolume.service
  echo "stopped buttervolume.service"
fi
pidfile=$prefix/run/buttervolume.pid
[ -f "$pidfile" ] || { echo "not running in the background (no $pidfile)"; exit 0; }
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { echo "pid $pid still running after 30 s" >&2; exit 1; }
fi
rm -f "$pidfile"
echo "stopped"
