#!/usr/bin/env bash
# The README's test command: sets the machine up, starts the local stack if it is not
# already running (or uses KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL if exported),
# runs lint, unit and integration tests with node's test runner, and stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
AIMASS_SETUP_FOR_TESTS=1 bash scripts/setup.sh

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  # Only the services this run starts are stopped afterwards (stack:down uses pid files).
  before="$(ls .stack/run/*.pid 2>/dev/null || true)"
  bash scripts/stack/up.sh >/dev/null
  if [[ -z "$before" ]]; then trap 'bash scripts/stack/down.sh' EXIT; fi
fi

npx --no-install eslint . --max-warnings=0
npx --no-install prettier --check . --log-level=warn
# One file at a time: integration tests share one broker on a 2-core machine, and
# serial runs keep their timings (and failures) readable.
# Node 20 runs every file of a directory it is given, so pass the test files explicitly.
# Arguments narrow the run to folders of dist/test (e.g. `npm test -- dist/test/unit`).
roots=("${@:-dist/test}")
mapfile -t files < <(find "${roots[@]}" -name '*.test.js' | sort)
# c8 collects V8 coverage of every process the tests start (workers included) and fails the
# run below the thresholds in .c8rc.json. It is measured on the whole suite only.
if (($# == 0)); then
  npx --no-install c8 node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
  # The chaos suite's short subset (broker kill -9 and restart, zombie, poison) on a stack of
  # its own: it kills brokers, so it never runs against the one above.
  node dist/load-tests/chaos/run.js --ci
else
  node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
fi
