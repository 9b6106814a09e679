#!/usr/bin/env bash
# Installs the extra Kafka clients that load-tests/bench-clients.ts compares with kafkajs
# (@confluentinc/kafka-javascript, @platformatic/kafka) into load-tests/kafka-clients/, a
# separate private package: the root package.json (and CI's `npm ci`) never builds librdkafka.
# @confluentinc/kafka-javascript has no downloadable prebuilt binary here, so node-pre-gyp falls
# back to building the librdkafka bundled in its npm package; CKJS_LINKING=dynamic links that
# build against Debian's OpenSSL, SASL, zlib, zstd, lz4 and curl (the -dev packages below).
# Takes about a minute on 2 cores the first time (55–65 s here). Idempotent: a no-op once installed.
#   bash scripts/bench/install-kafka-clients.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=load-tests/kafka-clients

if [[ "${1:-}" != "--force" ]] &&
  (cd "$dir" && node -e 'require("@confluentinc/kafka-javascript"); require.resolve("@platformatic/kafka")') 2>/dev/null; then
  echo "kafka clients already installed in $dir"
  exit 0
fi

pkgs=(build-essential python3 libssl-dev libsasl2-dev zlib1g-dev libzstd-dev liblz4-dev libcurl4-openssl-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

start=$(date +%s)
cd "$dir"
if [[ -f package-lock.json ]]; then
  CKJS_LINKING=dynamic npm ci --no-audit --no-fund --foreground-scripts
else
  CKJS_LINKING=dynamic npm install --no-audit --no-fund --foreground-scripts
fi
node -e 'require("@confluentinc/kafka-javascript"); console.log("librdkafka", require("@confluentinc/kafka-javascript").librdkafkaVersion)'
echo "kafka clients installed in $(($(date +%s) - start)) s"
