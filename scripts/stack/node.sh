#!/usr/bin/env bash
# Controls one service of a stack that up.sh started (same AIMASS_STACK_DIR), for chaos
# scenarios and manual failure tests; it never touches a service up.sh did not start.
#   node.sh <service> kill|stop|start|pause|resume|status|pid
#   node.sh list                                  every service: name, state, pid
#   node.sh kafka-leader <topic> <partition>      the node leading that partition (exit 3: none)
#   node.sh kafka-coordinator <transactional-id>  the node coordinating that transactional id
#   node.sh kafka-group-coordinator <group-id>    the node coordinating that consumer group
# Services: kafka (single node) or kafka-1..kafka-N (AIMASS_KAFKA_NODES=N), redis, registry.
# Every action is idempotent: start on a running service, kill or stop on a stopped one, pause
# on a paused one, resume on a running one do nothing. start restarts with the same command
# line, properties and data (no reformat) and returns once the service answers again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

usage() {
  sed -n '4,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ -f "$STATE_FILE" ]] || die "no stack under $STACK_DIR: start one with scripts/stack/up.sh (same AIMASS_STACK_DIR)"
# What up.sh resolved wins over this caller's environment: it is what is running.
source "$STATE_FILE"

services() { kafka_node_names "$KAFKA_NODES"; echo redis; echo registry; }

service_port() {
  case "$1" in
    redis) echo "$REDIS_PORT" ;;
    registry) echo "$REGISTRY_PORT" ;;
    *) kafka_broker_port "$(kafka_index "$1")" ;;
  esac
}

# state NAME -> running | paused | stopped | external (answers, but this stack did not start it)
state() {
  local pid st
  if pid="$(recorded_pid "$1")" && pid_alive "$pid"; then
    st="$(proc_state "$pid")"
    if [[ "$st" == [Tt] ]]; then echo paused; else echo running; fi
  elif port_open "$(service_port "$1")"; then
    echo external
  else
    echo stopped
  fi
}

refuse_external() {
  die "$1 on :$(service_port "$1") was not started by this stack; node.sh leaves it alone"
}

# ready NAME: the service answers (for a Kafka node: it is back in the cluster's metadata).
ready() {
  case "$1" in
    redis) redis_ping ;;
    registry) registry_ready ;;
    *)
      port_open "$(service_port "$1")" || return 1
      have_kafka_admin || return 0
      KAFKA_BROKERS="127.0.0.1:$(service_port "$1")" kafka_admin wait-brokers 1000 "$(kafka_index "$1")"
      ;;
  esac
}

start_kafka_node() {
  local name="$1" before cluster_id
  [[ -f "$(kafka_props "$name")" ]] || die "$name has no $(kafka_props "$name"): run scripts/stack/up.sh first"
  port_open "$(kafka_controller_port "$(kafka_index "$name")")" \
    && die "controller port $(kafka_controller_port "$(kafka_index "$name")") of $name is taken"
  if [[ ! -f "$(kafka_dir "$name")/meta.properties" ]]; then
    log "$name has no formatted storage (data removed?): formatting it"
    if [[ "$name" == kafka ]]; then cluster_id="$(kafka_random_uuid)"; else cluster_id="$(kafka_cluster_id)"; fi
    kafka_format "$name" "$cluster_id"
  fi
  before="$(kafka_started_lines "$name")"
  printf '[stack] %s: started again by node.sh\n' "$(date '+%F %T')" >>"$LOG_DIR/$name.log"
  kafka_launch "$name"
  wait_for "$name" 180 kafka_node_ready "$name" "$before"
  wait_for "$name" 60 ready "$name"
}

do_start() {
  local name="$1"
  case "$(state "$name")" in
    running) log "$name already running (pid $(recorded_pid "$name"))"; return 0 ;;
    external) refuse_external "$name" ;;
    paused)
      kill -CONT "$(recorded_pid "$name")"
      wait_for "$name" 60 ready "$name"
      ;;
    stopped)
      mkdir -p "$RUN_DIR" "$LOG_DIR"
      case "$name" in
        redis) redis_launch ;;
        registry) registry_launch ;;
        *) start_kafka_node "$name" ;;
      esac
      ;;
  esac
  log "$name running (pid $(recorded_pid "$name"))"
}

do_kill() {
  local name="$1" pid
  case "$(state "$name")" in
    stopped) log "$name already stopped"; return 0 ;;
    external) refuse_external "$name" ;;
  esac
  pid="$(recorded_pid "$name")"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 10 || die "$name (pid $pid) is still there 10s after SIGKILL"
  rm -f "$(pidfile "$name")"
  wait_released "$name"
  log "$name killed (pid $pid)"
}

do_stop() {
  case "$(state "$1")" in
    stopped) log "$1 already stopped"; return 0 ;;
    external) refuse_external "$1" ;;
  esac
  stop_services "$STOP_TIMEOUT_S" "$1"
  wait_released "$1"
}

# wait_released NAME: its ports are free again, so a start right after cannot collide.
wait_released() {
  wait_port_closed "$(service_port "$1")" 10 || die "port $(service_port "$1") of $1 is still open after it exited"
  case "$1" in
    redis | registry) ;;
    *) wait_port_closed "$(kafka_controller_port "$(kafka_index "$1")")" 10 \
         || die "controller port of $1 is still open after it exited" ;;
  esac
}

# signal_until NAME SIGNAL WANTED_STATE: sends SIGNAL and waits until the kernel reports it.
signal_until() {
  local pid deadline=$((SECONDS + 10))
  pid="$(recorded_pid "$1")"
  kill "-$2" "$pid"
  until [[ "$(state "$1")" == "$3" ]]; do
    (( SECONDS < deadline )) || die "$1 (pid $pid) is not $3 10s after SIG$2"
    sleep 0.1
  done
  log "$1 $3 (pid $pid)"
}

do_pause() {
  case "$(state "$1")" in
    paused) return 0 ;;
    running) signal_until "$1" STOP paused ;;
    stopped) die "$1 is stopped: there is nothing to pause" ;;
    external) refuse_external "$1" ;;
  esac
}

do_resume() {
  case "$(state "$1")" in
    paused) signal_until "$1" CONT running ;;
    running | stopped) return 0 ;;
    external) refuse_external "$1" ;;
  esac
}

do_status() {
  local st; st="$(state "$1")"
  case "$st" in
    running | paused) echo "$st $(recorded_pid "$1")" ;;
    *) echo "$st" ;;
  esac
}

# kafka_name ID -> the service name of Kafka node ID in this stack.
kafka_name() { if (( KAFKA_NODES == 1 )); then echo kafka; else echo "kafka-$1"; fi; }

ask_kafka() {
  local id
  have_kafka_admin || die "this needs node and the project's node_modules (kafkajs)"
  id="$(KAFKA_BROKERS="$(kafka_brokers)" kafka_admin "$@")" || exit $?
  kafka_name "$id"
}

(( $# >= 1 )) || usage
case "$1" in
  list)
    (( $# == 1 )) || usage
    for svc in $(services); do printf '%s %s\n' "$svc" "$(do_status "$svc")"; done
    ;;
  kafka-leader) (( $# == 3 )) || usage; ask_kafka leader "$2" "$3" ;;
  kafka-coordinator) (( $# == 2 )) || usage; ask_kafka coordinator transaction "$2" ;;
  kafka-group-coordinator) (( $# == 2 )) || usage; ask_kafka coordinator group "$2" ;;
  *)
    (( $# == 2 )) || usage
    [[ " $(services | paste -sd' ') " == *" $1 "* ]] \
      || die "no service '$1' in the stack under $STACK_DIR (services: $(services | paste -sd' '))"
    case "$2" in
      kill) do_kill "$1" ;;
      stop) do_stop "$1" ;;
      start) do_start "$1" ;;
      pause) do_pause "$1" ;;
      resume) do_resume "$1" ;;
      status) do_status "$1" ;;
      pid) started "$1" || exit 1; recorded_pid "$1" ;;
      *) usage ;;
    esac
    ;;
esac
