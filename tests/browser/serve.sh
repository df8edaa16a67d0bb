#!/usr/bin/env bash
# Starts, restarts and stops one Switchboard server for the browser journey.
# Usage: serve.sh start|restart|stop
# Env: SB_BIN (binary), SB_STATE (state dir: pid file, log), SB_PORT, and any
#      SWITCHBOARD_* settings (data dir, database URL, bus), inherited by the server.
set -euo pipefail
: "${SB_BIN:?}" "${SB_STATE:?}" "${SB_PORT:?}"
pidfile="$SB_STATE/server.pid"

start() {
  SWITCHBOARD_LISTEN="127.0.0.1:$SB_PORT" "$SB_BIN" serve >>"$SB_STATE/server.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$SB_PORT/healthz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "switchboard exited during start; log:" >&2; tail -20 "$SB_STATE/server.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "switchboard did not become healthy" >&2; return 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  # A real outage: the customer keeps typing while the server is away.
  restart) stop; sleep "${SB_DOWNTIME:-3}"; start ;;
  *) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
