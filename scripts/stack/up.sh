#!/usr/bin/env bash
# Starts the local stack on 127.0.0.1: Apache Kafka 4.x (KRaft, single node, from Maven
# Central jars), Apicurio Registry 3.x (Confluent-compatible API) and Redis. Starts only
# what is not already answering, waits until each answers, records pids of what it
# started (so stack:down stops exactly that), and prints the endpoints.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need java "apt-get install -y openjdk-17-jre-headless   (Java 17 or newer)"
need mvn "apt-get install -y maven"
need redis-server "apt-get install -y redis-server"
mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"

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

# --- Redis ------------------------------------------------------------------------------
redis_ping() { [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }
if redis_ping; then
  log "redis already answering on :$REDIS_PORT (left as it is)"
else
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that is not Redis"
  mkdir -p "$DATA_DIR/redis"
  # --daemonize no + our own background job: we own the pid, and stack:down can stop it.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA_DIR/redis" \
    --save "" --appendonly no --daemonize no >"$LOG_DIR/redis.log" 2>&1 &
  echo $! >"$(pidfile redis)"
  wait_for redis 20 redis_ping
  log "redis up on :$REDIS_PORT"
fi

# --- Kafka (KRaft combined broker+controller) -------------------------------------------
kafka_ready() {
  # A broker that accepts connections may still lack its metadata; the log line marks readiness.
  port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$LOG_DIR/kafka.log" 2>/dev/null
}
if port_open "$KAFKA_PORT"; then
  log "something already listens on :$KAFKA_PORT; assuming it is Kafka (left as it is)"
else
  kdir="$DATA_DIR/kafka"; mkdir -p "$kdir"
  cat >"$STACK_DIR/kafka.properties" <<PROPS
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
  cat >"$STACK_DIR/log4j2.yaml" <<'LOG4J'
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
  cp="$BUILD_DIR/kafka-libs/*"
  if [[ ! -f "$kdir/meta.properties" ]]; then
    cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    java -Dlog4j2.configurationFile="$STACK_DIR/log4j2.yaml" -cp "$cp" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$STACK_DIR/kafka.properties" >"$LOG_DIR/kafka-format.log" 2>&1 \
      || { cat "$LOG_DIR/kafka-format.log" >&2; die "kafka storage format failed"; }
  fi
  : >"$LOG_DIR/kafka.log"
  java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$STACK_DIR/log4j2.yaml" \
    -cp "$cp" kafka.Kafka "$STACK_DIR/kafka.properties" >>"$LOG_DIR/kafka.log" 2>&1 &
  echo $! >"$(pidfile kafka)"
  wait_for kafka 90 kafka_ready
  log "kafka up on :$KAFKA_PORT"
fi

# --- Apicurio Registry (Confluent API at /apis/ccompat/v7) -------------------------------
registry_ready() { curl -fsS "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" >/dev/null 2>&1; }
if registry_ready; then
  log "schema registry already answering on :$REGISTRY_PORT (left as it is)"
else
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by something that is not a schema registry"
  "$REGISTRY_JAVA" -Xms128m -Xmx512m \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.port="$REGISTRY_MGMT_PORT" -Dquarkus.management.host=127.0.0.1 \
    -jar "$REGISTRY_JAR" >"$LOG_DIR/registry.log" 2>&1 &
  echo $! >"$(pidfile registry)"
  wait_for registry 120 registry_ready
  log "schema registry (Apicurio $APICURIO_VERSION) up on :$REGISTRY_PORT"
fi

cat <<ENDPOINTS
KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
SCHEMA_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
ENDPOINTS
