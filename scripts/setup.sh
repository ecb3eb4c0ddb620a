#!/usr/bin/env bash
# Installs sluice's dependencies on a Debian machine with Node 20: Debian packages the
# build and the browser tests need (only when missing), then `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else
    echo "setup: missing ${need[*]}: install them with apt-get" >&2; exit 1
  fi
fi
# Real peers for the cluster and Kafka tests: nats-server (JetStream) and kcat (librdkafka).
for bin in nats-server kcat; do
  if ! command -v "$bin" >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq "$bin"
    else
      echo "setup: $bin is missing: the tests that need it will fail (apt-get install -y $bin as root)" >&2
    fi
  fi
done
# Chromium for the browser tests (test/client/browser.test.ts skips without it). Only root
# installs it; anyone else gets a note, since the other tests do not need it.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium
  else
    echo "setup: /usr/bin/chromium is missing: the browser tests will be skipped (apt-get install -y chromium as root)" >&2
  fi
fi
npm ci --no-audit --no-fund
