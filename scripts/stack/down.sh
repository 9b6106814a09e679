#!/usr/bin/env bash
# Stops exactly what stack:up started (by pid file), gracefully first, then by force,
# and leaves services it did not start alone. Data and logs stay under .stack/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_one() {
  local name="$1" f pid
  f="$(pidfile "$name")"
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do pid_alive "$pid" || break; sleep 0.5; done
    if pid_alive "$pid"; then
      log "$name (pid $pid) ignored SIGTERM for 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    log "$name stopped"
  fi
  rm -f "$f"
}

# Registry first (it is a Kafka-independent app, but stopping clients before the broker is tidy).
for svc in registry kafka redis; do stop_one "$svc"; done
