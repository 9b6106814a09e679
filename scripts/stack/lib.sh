# Shared helpers for the local stack scripts (sourced, not run).
# The stack lives under one git-ignored folder: $AIMASS_STACK_DIR (default <repo>/.stack).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${AIMASS_STACK_DIR:-$REPO_ROOT/.stack}"
RUN_DIR="$STACK_DIR/run"      # pid files of what *we* started
LOG_DIR="$STACK_DIR/logs"
DATA_DIR="$STACK_DIR/data"
BUILD_DIR="$STACK_DIR/build"  # Maven output: kafka-libs/, apicurio/

KAFKA_PORT="${AIMASS_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${AIMASS_KAFKA_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${AIMASS_REGISTRY_PORT:-8081}"
REGISTRY_MGMT_PORT="${AIMASS_REGISTRY_MGMT_PORT:-9001}"
REDIS_PORT="${AIMASS_REDIS_PORT:-6379}"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# pidfile NAME -> path; started NAME -> true if a pid we recorded is alive.
pidfile() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
started() { local f; f="$(pidfile "$1")"; [[ -f "$f" ]] && pid_alive "$(cat "$f")"; }

# wait_for NAME TIMEOUT_S CHECK_CMD... : polls CHECK_CMD every 0.5 s; fails with the log tail.
wait_for() {
  local name="$1" timeout_s="$2"; shift 2
  local deadline=$((SECONDS + timeout_s))
  until "$@" >/dev/null 2>&1; do
    if started "$name" || [[ ! -f "$(pidfile "$name")" ]]; then :; else
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited during start-up (log: $LOG_DIR/$name.log)"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name did not answer within ${timeout_s}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.5
  done
}

need() {
  local cmd="$1" hint="$2"
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found. Install it with: $hint"
}
