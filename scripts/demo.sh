#!/usr/bin/env bash
# The README's main command: the e-commerce example end to end on a fresh machine.
#   setup → local stack → topics → feature-writer + user/item features into Redis → two
#   predictor workers (one consumer group) → a burst of shop events → predictions read back
#   read_committed and summarized → workers drained.
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

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

step "feature-writer (metrics on :9466) and online features for 1000 users and 500 items"
AIMASS_LOG_LEVEL=info node bin/aimass.js features --config "$CONFIG" --metrics-port 9466 >"$LOGS/demo-features.log" 2>&1 &
pids+=($!)
node dist/load-tests/produce-features.js --users 1000 --items 500
for _ in $(seq 1 120); do
  applied="$(curl -fsS http://127.0.0.1:9466/metrics 2>/dev/null | awk '/^aimass_features_updates_(applied|skipped_stale)_total /{s+=$2} END{print s+0}' || true)"
  [[ "${applied:-0}" -ge 1500 ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 20 "$LOGS/demo-features.log"; echo "feature-writer exited" >&2; exit 1; }
  sleep 0.5
done
echo "feature-writer applied ${applied:-0} updates to Redis"

step "starting two predictor workers (metrics on :9464 and :9465)"
for i in 0 1; do
  AIMASS_LOG_LEVEL=info node bin/aimass.js predict --config "$CONFIG" --metrics-port $((9464 + i)) \
    >"$LOGS/demo-predictor-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  pid="${pids[$((i + 1))]}"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$((9464 + i))/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOGS/demo-predictor-$i.log"; echo "predictor $i exited" >&2; exit 1; }
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
    | grep -E '^aimass_(events_consumed_total|predictions_produced_total|feature_lookups_total)\{|^aimass_(transaction_aborts_total|assigned_partitions) ' \
    | sed "s/^/  worker $i: /" || true
done

step "draining the workers and the feature-writer (SIGTERM)"
cleanup
trap - EXIT
echo "done. Logs: $LOGS/demo-predictor-*.log. Stop the stack with: npm run stack:down"
