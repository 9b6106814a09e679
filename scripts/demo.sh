#!/usr/bin/env bash
# The README's main command: sets the machine up, starts the local stack and checks that
# Kafka transactions, the schema registry and Redis work end to end. The stack keeps
# running afterwards (stop it with `npm run stack:down`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/stack/up.sh
node bin/aimass.js smoke
