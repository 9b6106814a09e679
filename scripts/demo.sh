#!/usr/bin/env bash
# The README's main command: the e-commerce example end to end on a fresh machine.
#   setup → local stack → topics → two predictor workers (one consumer group) → a burst of
#   shop events → predictions read back read_committed and summarized → workers drained.
# The stack keeps running afterwards (stop it with `npm run stack:down`).
# DEMO_EVENTS (default 10000) sets the burst size.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/stack/up.sh >/dev/null

CONFIG=examples/shop/pipeline.yaml
EVENTS="${DEMO_EVENTS:-10000}"
LOGS=.stack/logs
mkdir -p "$LOGS"
step() { printf '\n== %s\n' "$*"; }

step "topics"
node bin/aimass.js topics create --config "$CONFIG"

step "starting two predictor workers (metrics on :9464 and :9465)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
for i in 0 1; do
  AIMASS_LOG_LEVEL=info node bin/aimass.js predict --config "$CONFIG" --metrics-port $((9464 + i)) \
    >"$LOGS/demo-predictor-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$((9464 + i))/readyz" >/dev/null 2>&1 && break
    kill -0 "${pids[$i]}" 2>/dev/null || { tail -n 20 "$LOGS/demo-predictor-$i.log"; echo "predictor $i exited" >&2; exit 1; }
    sleep 0.5
  done
  echo "predictor $i ready ($(curl -fsS "http://127.0.0.1:$((9464 + i))/readyz"))"
done

RUN_ID="demo$(date +%s)"
step "producing $EVENTS shop events (run $RUN_ID)"
node dist/load-tests/produce-events.js --count "$EVENTS" --run-id "$RUN_ID"

step "reading predictions (read_committed)"
node dist/load-tests/read-predictions.js --run-id "$RUN_ID" --count "$EVENTS"

step "worker metrics"
for i in 0 1; do
  curl -fsS "http://127.0.0.1:$((9464 + i))/metrics" \
    | grep -E '^aimass_(events_consumed_total|predictions_produced_total)\{|^aimass_(transaction_aborts_total|assigned_partitions) ' \
    | sed "s/^/  worker $i: /" || true
done

step "draining the workers (SIGTERM)"
cleanup
trap - EXIT
echo "done. Logs: $LOGS/demo-predictor-*.log. Stop the stack with: npm run stack:down"
