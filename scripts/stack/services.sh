# How each service of the local stack is configured, started and checked: shared by up.sh
# (first start) and node.sh (restarts), so a restarted service runs exactly as it first did.
# Sourced after lib.sh.

KAFKA_CP="$BUILD_DIR/kafka-libs/*"
LOG4J_FILE="$STACK_DIR/log4j2.yaml"
CLUSTER_FILE="$DATA_DIR/kafka-cluster.env"  # a multi-node cluster's id and size

# save_state: records the resolved ports and paths, so node.sh restarts what up.sh started
# even when the caller's environment differs.
save_state() {
  local var
  for var in KAFKA_NODES KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT REGISTRY_PORT \
             REGISTRY_MGMT_PORT REGISTRY_JAVA REGISTRY_JAR APICURIO_VERSION; do
    printf '%s=%q\n' "$var" "${!var}"
  done >"$STATE_FILE.tmp"
  mv "$STATE_FILE.tmp" "$STATE_FILE"
}

kafka_brokers() {
  local i list=()
  for i in $(seq 1 "$KAFKA_NODES"); do list+=("127.0.0.1:$(kafka_broker_port "$i")"); done
  (IFS=,; echo "${list[*]}")
}

# kafka-admin.mjs (kafkajs) answers metadata questions; without node_modules the stack still
# starts, checked by its logs only.
have_kafka_admin() { command -v node >/dev/null 2>&1 && [[ -d "$REPO_ROOT/node_modules/kafkajs" ]]; }
kafka_admin() { node "$REPO_ROOT/scripts/stack/kafka-admin.mjs" "$@"; }

# --- Redis ------------------------------------------------------------------------------
redis_ping() { [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }
redis_launch() {
  mkdir -p "$DATA_DIR/redis"
  # --daemonize no + our own background job: we own the pid, and stack:down can stop it.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA_DIR/redis" \
    --save "" --appendonly no --daemonize no >>"$LOG_DIR/redis.log" 2>&1 </dev/null &
  echo $! >"$(pidfile redis)"
  wait_for redis 20 redis_ping
}

# --- Apicurio Registry (Confluent API at /apis/ccompat/v7) -------------------------------
registry_ready() { curl -fsS "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" >/dev/null 2>&1; }
registry_launch() {
  "$REGISTRY_JAVA" -Xms128m -Xmx512m \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.port="$REGISTRY_MGMT_PORT" -Dquarkus.management.host=127.0.0.1 \
    -jar "$REGISTRY_JAR" >>"$LOG_DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$(pidfile registry)"
  wait_for registry 120 registry_ready
}

# --- Kafka (KRaft combined broker+controller nodes) -------------------------------------
# A node is named `kafka` in a single-node stack and `kafka-<node.id>` in a multi-node one.
kafka_props() { printf '%s/%s.properties' "$STACK_DIR" "$1"; }
kafka_dir() { printf '%s/%s' "$DATA_DIR" "$1"; }
kafka_index() { if [[ "$1" == kafka ]]; then echo 1; else echo "${1#kafka-}"; fi; }

kafka_write_log4j() {
  cat >"$LOG4J_FILE" <<'LOG4J'
Configuration:
  Appenders:
    Console: { name: STDOUT, PatternLayout: { pattern: "[%d] %p %m (%c)%n" } }
  Loggers:
    Root: { level: INFO, AppenderRef: [ { ref: STDOUT } ] }
    Logger:
      - { name: kafka.request.logger, level: WARN }
      - { name: org.apache.kafka.clients, level: WARN }
      - { name: state.change.logger, level: WARN }
LOG4J
}

kafka_write_single_props() {
  local kdir; kdir="$(kafka_dir kafka)"
  cat >"$(kafka_props kafka)" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$kdir
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
}

# Replication factor 3 (fewer with fewer nodes) and min ISR one less: any one node may fail
# without losing an acks=all write or a transaction.
kafka_write_multi_props() {
  local i="$1" n name kdir voters=() rf isr
  name="kafka-$i"; kdir="$(kafka_dir "$name")"
  for n in $(seq 1 "$KAFKA_NODES"); do voters+=("$n@127.0.0.1:$(kafka_controller_port "$n")"); done
  rf=$(( KAFKA_NODES < 3 ? KAFKA_NODES : 3 )); isr=$(( rf > 1 ? rf - 1 : 1 ))
  cat >"$(kafka_props "$name")" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://127.0.0.1:$(kafka_broker_port "$i"),CONTROLLER://127.0.0.1:$(kafka_controller_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_broker_port "$i")
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$kdir
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
unclean.leader.election.enable=false
auto.create.topics.enable=false
PROPS
}

kafka_random_uuid() { java -cp "$KAFKA_CP" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1; }

# A quorum's voters are fixed when its data is made: the data of 3 nodes cannot serve 2 or 5.
kafka_check_cluster_size() {
  local nodes
  (( KAFKA_NODES > 1 )) && [[ -f "$CLUSTER_FILE" ]] || return 0
  nodes="$(sed -n 's/^NODES=//p' "$CLUSTER_FILE")"
  [[ "$nodes" == "$KAFKA_NODES" ]] || die "$DATA_DIR holds a $nodes-node Kafka cluster, not $KAFKA_NODES nodes: \
remove $DATA_DIR/kafka-* (its data) or use another AIMASS_STACK_DIR"
}

# kafka_cluster_id: a multi-node cluster's one id, made once and kept with its data, so a
# node formatted later (its data dir removed) still joins the same cluster.
kafka_cluster_id() {
  local id
  kafka_check_cluster_size
  if [[ -f "$CLUSTER_FILE" ]]; then
    id="$(sed -n 's/^CLUSTER_ID=//p' "$CLUSTER_FILE")"
  else
    id="$(kafka_random_uuid)"
    [[ -n "$id" ]] || die "kafka.tools.StorageTool random-uuid printed nothing"
    mkdir -p "$DATA_DIR"
    printf 'CLUSTER_ID=%s\nNODES=%s\n' "$id" "$KAFKA_NODES" >"$CLUSTER_FILE"
  fi
  echo "$id"
}

# kafka_format NAME CLUSTER_ID: formats the node's storage unless it already is.
kafka_format() {
  local name="$1" kdir; kdir="$(kafka_dir "$1")"
  mkdir -p "$kdir"
  [[ -f "$kdir/meta.properties" ]] && return 0
  java -Dlog4j2.configurationFile="$LOG4J_FILE" -cp "$KAFKA_CP" kafka.tools.StorageTool \
    format -t "$2" -c "$(kafka_props "$name")" >"$LOG_DIR/$name-format.log" 2>&1 \
    || { cat "$LOG_DIR/$name-format.log" >&2; die "$name storage format failed"; }
}

# Three nodes share a small machine: 512 MiB of heap each is plenty for a test cluster.
kafka_heap() { if [[ "$1" == kafka ]]; then echo "-Xms256m -Xmx1g"; else echo "-Xms256m -Xmx512m"; fi; }

kafka_launch() {
  local name="$1" heap
  read -r -a heap <<<"$(kafka_heap "$name")"
  java "${heap[@]}" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_FILE" \
    -cp "$KAFKA_CP" kafka.Kafka "$(kafka_props "$name")" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# A broker that accepts connections may still lack its metadata; the log line marks readiness.
# Its count before a (re)start tells this start's line from an earlier one in the same log.
kafka_started_lines() {
  local n; n="$(grep -c "Kafka Server started" "$LOG_DIR/$1.log" 2>/dev/null)" || true
  echo "${n:-0}"
}
kafka_node_ready() {
  local name="$1" before="$2"
  port_open "$(kafka_broker_port "$(kafka_index "$name")")" && (( $(kafka_started_lines "$name") > before ))
}

# kafka_wait_in_metadata TIMEOUT_S BOOTSTRAP NODE_ID...: the brokers are registered and unfenced.
kafka_wait_in_metadata() {
  local timeout_s="$1" bootstrap="$2"; shift 2
  have_kafka_admin || { log "node/kafkajs not found: skipping the metadata check"; return 0; }
  KAFKA_BROKERS="$bootstrap" kafka_admin wait-brokers "$((timeout_s * 1000))" "$@" \
    || die "the metadata from $bootstrap did not list node(s) $* within ${timeout_s}s"
}
