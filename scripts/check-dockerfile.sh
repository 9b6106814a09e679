#!/usr/bin/env bash
# Checks the images' recipes without a Docker engine: replays Dockerfile's COPY and RUN steps
# in temporary folders (npm ci from the local cache, tsc, pruning), then runs the result the way
# the container would (ENTRYPOINT --help/--version, every service module loads with production
# dependencies only, onnxruntime-node runs the shop model) and checks Dockerfile.gpu's structure.
# Same test as `npm test` runs: test/unit/deploy/dockerfile.test.ts. About a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npx --no-install tsc -p tsconfig.json
node --test dist/test/unit/deploy/dockerfile.test.js
