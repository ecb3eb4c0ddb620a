#!/usr/bin/env bash
# Kafka tooling and web clients on one log.
#
# kcat produces keyed records through sluice's Kafka port; sluice's own CLI reads the same
# records over the WebSocket gateway (the path a browser page takes), with the same offsets
# and keys; then the CLI publishes one record over the WebSocket and kcat consumes it from
# the Kafka port. No copy, no relay: both fronts append to and read from the same segments.
#
# Run against `npm start` (WebSocket on 8080, Kafka on 9092):
#   bash examples/kcat-bridge.sh
# Settings: BROKER (host:port of the Kafka listener), SLUICE_URL (the WebSocket address),
# TOPIC, and SLUICE (how to run the CLI; `npx sluice` from a checkout or an installed package).
set -euo pipefail

BROKER=${BROKER:-127.0.0.1:9092}
SLUICE_URL=${SLUICE_URL:-ws://127.0.0.1:8080}
TOPIC=${TOPIC:-orders-$$}
SLUICE=${SLUICE:-npx sluice}
export SLUICE_URL

command -v kcat >/dev/null || { echo "kcat is not installed (apt-get install kcat)" >&2; exit 1; }

# 1. kcat -> Kafka port. A Kafka producer's first request for an unknown topic creates it
#    with the server's default partition count, as a one-broker Kafka with auto-create does.
printf 'alice:placed\nbob:paid\ncarol:shipped\n' | kcat -b "$BROKER" -P -t "$TOPIC" -K : -p 0

# 2. WebSocket <- the same log: offset, key and value, as kcat wrote them.
echo "# read over the WebSocket gateway"
$SLUICE consume -t "$TOPIC" -p 0 -o earliest -f '%o %k %s\n'

# 3. WebSocket -> the log; kcat <- Kafka port: the record a web client publishes.
echo "dave:returned" | $SLUICE produce -t "$TOPIC" -p 0 -K : >/dev/null
echo "# read by kcat from the Kafka port"
kcat -b "$BROKER" -C -t "$TOPIC" -p 0 -o beginning -e -q -f '%o %k %s\n'
