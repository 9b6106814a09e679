#!/usr/bin/env bash
# Stops exactly what stack:up started (by pid file), gracefully first, then by force,
# and leaves services it did not start alone. Data and logs stay under .stack/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Every Kafka node with a pid file: a single-node `kafka`, a multi-node `kafka-<id>`.
kafka_nodes=()
for f in "$RUN_DIR"/kafka.pid "$RUN_DIR"/kafka-[0-9]*.pid; do
  [[ -f "$f" ]] && { f="${f##*/}"; kafka_nodes+=("${f%.pid}"); }
done

# Registry first (it is a Kafka-independent app, but stopping clients before the broker is
# tidy), then all Kafka nodes together, then Redis.
stop_services "$STOP_TIMEOUT_S" registry
(( ${#kafka_nodes[@]} == 0 )) || stop_services "$STOP_TIMEOUT_S" "${kafka_nodes[@]}"
stop_services "$STOP_TIMEOUT_S" redis
