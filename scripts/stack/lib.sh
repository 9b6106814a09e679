# Shared helpers for the local stack scripts (sourced, not run).
# The stack lives under one git-ignored folder: $AIMASS_STACK_DIR (default <repo>/.stack).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${AIMASS_STACK_DIR:-$REPO_ROOT/.stack}"
RUN_DIR="$STACK_DIR/run"      # pid files of what *we* started
LOG_DIR="$STACK_DIR/logs"
DATA_DIR="$STACK_DIR/data"
BUILD_DIR="$STACK_DIR/build"  # Maven output: kafka-libs/, apicurio/
STATE_FILE="$STACK_DIR/stack.env"          # what up.sh resolved, for node.sh (internal)
ENDPOINTS_FILE="$STACK_DIR/endpoints.env"  # what up.sh started, for anyone to `source`

# Kafka node i (1-based) listens on KAFKA_PORT + 2(i-1) (clients) and KAFKA_CONTROLLER_PORT
# + 2(i-1) (KRaft quorum): 9092/9093 for one node; 9092,9094,9096 and 9093,9095,9097 for three.
# The controller base follows the broker port, so moving AIMASS_KAFKA_PORT moves both.
KAFKA_NODES="${AIMASS_KAFKA_NODES:-1}"
KAFKA_PORT="${AIMASS_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${AIMASS_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
REGISTRY_PORT="${AIMASS_REGISTRY_PORT:-8081}"
# 9001 next to the default registry port; next to a moved one, so two stacks never share it.
REGISTRY_MGMT_PORT="${AIMASS_REGISTRY_MGMT_PORT:-$([[ -n "${AIMASS_REGISTRY_PORT:-}" ]] && echo $((REGISTRY_PORT + 1)) || echo 9001)}"
REDIS_PORT="${AIMASS_REDIS_PORT:-6379}"
# How long a stopped service may take to exit on SIGTERM before it is killed.
STOP_TIMEOUT_S=30

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

[[ "$KAFKA_NODES" =~ ^[1-9]$ ]] || die "AIMASS_KAFKA_NODES must be 1..9 (got '$KAFKA_NODES')"

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_state PID -> the kernel's one-letter state (R, S, T = stopped by a signal, Z, ...).
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"   # the command name in parentheses may itself hold spaces
  printf '%s' "${stat%% *}"
}
# A zombie is not alive once all its threads are gone: a killed JVM's main thread turns
# zombie while its other threads still hold the sockets.
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  [[ "$(proc_state "$1")" != Z ]] && return 0
  local tasks=("/proc/$1/task"/*)
  (( ${#tasks[@]} > 1 ))
}

# pidfile NAME -> path; started NAME -> true if a pid we recorded is alive.
pidfile() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
started() { local f; f="$(pidfile "$1")"; [[ -f "$f" ]] && pid_alive "$(cat "$f")"; }
recorded_pid() { local f; f="$(pidfile "$1")"; [[ -f "$f" ]] && cat "$f"; }

# kafka_node_names N -> the pid/log/properties names of an N-node cluster, one per line.
kafka_node_names() {
  if (( $1 == 1 )); then echo kafka; else seq -f 'kafka-%g' 1 "$1"; fi
}
kafka_broker_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
kafka_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }

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

# wait_gone PID TIMEOUT_S: true once PID has exited.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while pid_alive "$1"; do (( SECONDS < deadline )) || return 1; sleep 0.2; done
}

# wait_port_closed PORT TIMEOUT_S: true once nothing accepts connections on PORT.
wait_port_closed() {
  local deadline=$((SECONDS + $2))
  while port_open "$1"; do (( SECONDS < deadline )) || return 1; sleep 0.2; done
}

# stop_services TIMEOUT_S NAME...: SIGTERM to every recorded, live pid at once (plus SIGCONT,
# so a paused one can act on it), waits for all, SIGKILLs whatever is left; removes the pid files.
# All at once matters for a multi-node Kafka: stopped one by one, the last nodes lose their
# quorum and cannot finish a controlled shutdown.
stop_services() {
  local timeout_s="$1"; shift
  local name pid names=() pids=()
  for name in "$@"; do
    pid="$(recorded_pid "$name")" || continue
    if pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      kill -CONT "$pid" 2>/dev/null || true
      names+=("$name"); pids+=("$pid")
    else
      rm -f "$(pidfile "$name")"
    fi
  done
  local deadline=$((SECONDS + timeout_s)) i any
  while (( SECONDS < deadline )); do
    any=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && { any=1; break; }; done
    (( any )) || break
    sleep 0.5
  done
  for i in "${!names[@]}"; do
    if pid_alive "${pids[$i]}"; then
      log "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM for ${timeout_s}s; killing it"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      wait_gone "${pids[$i]}" 10 || log "${names[$i]} (pid ${pids[$i]}) is still there after SIGKILL"
    fi
    log "${names[$i]} stopped"
    rm -f "$(pidfile "${names[$i]}")"
  done
}

need() {
  local cmd="$1" hint="$2"
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found. Install it with: $hint"
}
