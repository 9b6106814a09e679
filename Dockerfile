# syntax=docker/dockerfile:1
# aimass, CPU image: `aimass predict`, `aimass features`, `aimass topics create`, and the load
# generator (node /app/dist/load-tests/produce-events.js). See docs/deploy.md.
#
#   docker build -t aimass:local .
#   docker run --rm aimass:local --help
#
# The build stage compiles TypeScript with every dependency; the runtime stage installs the
# production dependencies only and copies the compiled dist/ across. `--ignore-scripts` on both
# installs: the root package's `prepare` script runs tsc (not installed with --omit=dev), and
# onnxruntime-node's postinstall only fetches optional CUDA binaries (the CPU build is bundled
# in the npm package; Dockerfile.gpu installs the CUDA ones).
# scripts/check-dockerfile.sh replays these RUN and COPY steps outside Docker.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY services ./services
COPY load-tests ./load-tests
RUN npx tsc -p tsconfig.json

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --gid 10001 aimass \
  && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin aimass
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node ships binaries for every platform; macOS and Windows ones are 220 MB of dead weight.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
  && npm cache clean --force
# --ignore-scripts skipped the root postinstall: apply the kafkajs patches (patches/kafkajs.mjs).
COPY patches ./patches
RUN node patches/kafkajs.mjs && node patches/kafkajs.mjs --check
COPY --from=build /app/dist/services ./dist/services
COPY --from=build /app/dist/load-tests ./dist/load-tests
COPY bin ./bin
COPY models ./models
COPY examples ./examples
COPY schemas ./schemas
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 9464: predictor metrics/health (--metrics-port), 9465: feature-writer (by convention).
EXPOSE 9464 9465
# Exec form: node is PID 1 and receives SIGTERM itself, which starts the drain.
ENTRYPOINT ["node", "/app/bin/aimass.js"]
CMD ["--help"]
