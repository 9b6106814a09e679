#!/usr/bin/env bash
# Prepares a fresh machine for aimass: system packages (Java 17+, Maven, redis-server, curl)
# through apt when missing, then `npm ci` when node_modules is missing or older than the
# lockfile. Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The observability tests run a real Prometheus (and promtool) from Debian's package.
if [[ "${AIMASS_SETUP_FOR_TESTS:-0}" == 1 ]]; then
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi
if ((${#missing[@]} > 0)); then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "[setup] installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts packaged services where it can; the stack and the tests start their own.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  else
    echo "[setup] missing: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]})." >&2
    exit 1
  fi
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "[setup] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
# npm ci applies it (postinstall); a checkout whose node_modules predates the patch gets it here.
node patches/kafkajs.mjs
# `prepare` compiles on npm ci; rebuild when sources are newer than the last build.
if [[ ! -f dist/services/cli/cli.js ]] || [[ -n "$(find services test load-tests -name '*.ts' -newer dist/services/cli/cli.js -print -quit 2>/dev/null)" ]]; then
  npx --no-install tsc -p tsconfig.json
fi
