#!/usr/bin/env bash
# Starts the local stack on 127.0.0.1: Apache Kafka 4.x (KRaft, from Maven Central jars; one
# node, or AIMASS_KAFKA_NODES combined broker+controller nodes), Apicurio Registry 3.x
# (Confluent-compatible API) and Redis. Starts only what is not already answering, waits
# until each answers, records pids of what it started (so stack:down stops exactly that),
# writes the endpoints to $AIMASS_STACK_DIR/endpoints.env and prints them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

need java "apt-get install -y openjdk-17-jre-headless   (Java 17 or newer)"
need mvn "apt-get install -y maven"
need redis-server "apt-get install -y redis-server"
mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
kafka_check_cluster_size

# --- Java for the registry ----------------------------------------------------------------
# Kafka 4.x runs on Java 17. Apicurio Registry 3.x is built for Java 21+: use a JDK >= 21 if
# one is present (AIMASS_REGISTRY_JAVA, then JAVA_HOME, then /usr/lib/jvm/*); otherwise fall
# back to Apicurio 2.6 (same Confluent-compatible API) on Java 17, and say so.
java_major() { "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'; }
REGISTRY_JAVA=""
for cand in "${AIMASS_REGISTRY_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" /usr/lib/jvm/*/bin/java "$(command -v java)"; do
  [[ -n "$cand" && -x "$cand" ]] || continue
  if (( "$(java_major "$cand" || echo 0)" >= 21 )); then REGISTRY_JAVA="$cand"; break; fi
done
if [[ -n "$REGISTRY_JAVA" ]]; then
  APICURIO_VERSION="${AIMASS_APICURIO_VERSION:-3.3.3}"
else
  REGISTRY_JAVA="$(command -v java)"
  APICURIO_VERSION="${AIMASS_APICURIO_VERSION:-2.6.13.Final}"
  log "no Java 21+ found: using Apicurio Registry $APICURIO_VERSION on Java 17 (install a JDK 21+ for 3.x)"
fi
APICURIO_DIR="$BUILD_DIR/apicurio-$APICURIO_VERSION"

# --- downloads (cached: Maven's local repository plus the unpacked build folder) ---------
if [[ ! -f "$BUILD_DIR/kafka-libs/.complete" || ! -f "$APICURIO_DIR/.complete" \
      || "$REPO_ROOT/scripts/stack/pom.xml" -nt "$BUILD_DIR/kafka-libs/.complete" ]]; then
  log "resolving Kafka and Apicurio Registry $APICURIO_VERSION from Maven Central (cached after the first run)..."
  # The dependency plugin's markers would skip a re-unpack after a partial run: start clean.
  rm -rf "$BUILD_DIR/dependency-maven-plugin-markers" "$BUILD_DIR/kafka-libs" "$APICURIO_DIR"
  mvn -B -q -f "$REPO_ROOT/scripts/stack/pom.xml" -Dapicurio.version="$APICURIO_VERSION" \
    -Dstack.build.dir="$BUILD_DIR" package \
    >"$LOG_DIR/maven.log" 2>&1 \
    || { tail -n 30 "$LOG_DIR/maven.log" >&2; die "maven could not resolve the stack (log: $LOG_DIR/maven.log)"; }
  touch "$BUILD_DIR/kafka-libs/.complete" "$APICURIO_DIR/.complete"
fi
# 3.x ships quarkus-run.jar (fast-jar layout); 2.x a single *-runner.jar.
REGISTRY_JAR=""
for jar in "$APICURIO_DIR"/quarkus-run.jar "$APICURIO_DIR"/*-runner.jar; do
  [[ -f "$jar" ]] && { REGISTRY_JAR="$jar"; break; }
done
[[ -n "$REGISTRY_JAR" ]] || die "no registry jar under $APICURIO_DIR"
save_state

# --- Redis ------------------------------------------------------------------------------
if redis_ping; then
  log "redis already answering on :$REDIS_PORT (left as it is)"
else
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that is not Redis"
  : >"$LOG_DIR/redis.log"
  redis_launch
  log "redis up on :$REDIS_PORT"
fi

# --- Kafka (KRaft combined broker+controller nodes) -------------------------------------
if (( KAFKA_NODES == 1 )); then
  if port_open "$KAFKA_PORT"; then
    log "something already listens on :$KAFKA_PORT; assuming it is Kafka (left as it is)"
  else
    mkdir -p "$(kafka_dir kafka)"
    kafka_write_single_props
    kafka_write_log4j
    [[ -f "$(kafka_dir kafka)/meta.properties" ]] || kafka_format kafka "$(kafka_random_uuid)"
    : >"$LOG_DIR/kafka.log"
    kafka_launch kafka
    wait_for kafka 90 kafka_node_ready kafka 0
    log "kafka up on :$KAFKA_PORT"
  fi
else
  # All nodes or none: a quorum of strangers is no cluster, so a port held by anything this
  # stack did not start is an error, not something to reuse.
  kafka_write_log4j
  to_start=()
  for i in $(seq 1 "$KAFKA_NODES"); do
    name="kafka-$i"
    if started "$name"; then log "$name already running (pid $(recorded_pid "$name"))"; continue; fi
    for port in "$(kafka_broker_port "$i")" "$(kafka_controller_port "$i")"; do
      port_open "$port" && die "port $port (for $name) is taken by something this stack did not start"
    done
    kafka_write_multi_props "$i"
    to_start+=("$name")
  done
  if (( ${#to_start[@]} > 0 )); then
    cluster_id="$(kafka_cluster_id)"
    formats=()
    for name in "${to_start[@]}"; do kafka_format "$name" "$cluster_id" & formats+=($!); done
    for job in "${formats[@]}"; do wait "$job" || die "kafka storage format failed"; done
    # Logs are appended to across restarts; the count of start lines tells this start apart.
    declare -A before=()
    for name in "${to_start[@]}"; do before[$name]="$(kafka_started_lines "$name")"; kafka_launch "$name"; done
    for name in "${to_start[@]}"; do wait_for "$name" 180 kafka_node_ready "$name" "${before[$name]}"; done
  fi
  kafka_wait_in_metadata 60 "127.0.0.1:$(kafka_broker_port 1)" $(seq 1 "$KAFKA_NODES")
  log "kafka up: $KAFKA_NODES nodes on $(kafka_brokers)"
fi

# --- Apicurio Registry (Confluent API at /apis/ccompat/v7) -------------------------------
if registry_ready; then
  log "schema registry already answering on :$REGISTRY_PORT (left as it is)"
else
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by something that is not a schema registry"
  : >"$LOG_DIR/registry.log"
  registry_launch
  log "schema registry (Apicurio $APICURIO_VERSION) up on :$REGISTRY_PORT"
fi

# --- Endpoints --------------------------------------------------------------------------
KAFKA_BROKERS="$(kafka_brokers)"
SCHEMA_REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
# The AIMASS_* lines make every stack script that runs after `source` address this same stack.
AIMASS_KAFKA_NODES="$KAFKA_NODES" AIMASS_STACK_DIR="$STACK_DIR" AIMASS_KAFKA_PORT="$KAFKA_PORT"
AIMASS_KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" AIMASS_REGISTRY_PORT="$REGISTRY_PORT"
AIMASS_REGISTRY_MGMT_PORT="$REGISTRY_MGMT_PORT" AIMASS_REDIS_PORT="$REDIS_PORT"
# Plain values stay unquoted, so dotenv readers (node --env-file, docker) take the file too.
env_line() {
  local v="${!1}"
  [[ "$v" =~ ^[A-Za-z0-9_./:,@+-]*$ ]] || v="'${v//\'/\'\\\'\'}'"
  printf 'export %s=%s\n' "$1" "$v"
}
{
  printf '# The local stack under %s, written by scripts/stack/up.sh. Use: source %s\n' "$STACK_DIR" "$ENDPOINTS_FILE"
  for var in KAFKA_BROKERS SCHEMA_REGISTRY_URL REDIS_URL AIMASS_KAFKA_NODES AIMASS_STACK_DIR AIMASS_KAFKA_PORT \
             AIMASS_KAFKA_CONTROLLER_PORT AIMASS_REGISTRY_PORT AIMASS_REGISTRY_MGMT_PORT AIMASS_REDIS_PORT; do
    env_line "$var"
  done
} >"$ENDPOINTS_FILE.tmp"
mv "$ENDPOINTS_FILE.tmp" "$ENDPOINTS_FILE"

cat <<ENDPOINTS
KAFKA_BROKERS=$KAFKA_BROKERS
SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL
REDIS_URL=$REDIS_URL
ENDPOINTS
