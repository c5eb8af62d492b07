#!/bin/sh
# HTTP API benchmark: wrk against GET /v1/calls?limit=20 and POST /v1/leads, limiter off.
# Usage: bench/http.sh BINARY DATABASE_URL [DURATION] [CONNECTIONS]
#   bench/http.sh target/release/boltcall sqlite:///tmp/bench.db 10s 32
set -eu
BIN=$1
DB=$2
DURATION=${3:-10s}
CONNECTIONS=${4:-32}
PORT=${BOLTCALL_BENCH_PORT:-18080}
HERE=$(dirname "$0")
export BOLTCALL_DATABASE_URL="$DB" BOLTCALL_RATE_LIMIT=off BOLTCALL_HTTP_ADDR="127.0.0.1:$PORT"
export BOLTCALL_DATA_DIR="${TMPDIR:-/tmp}/boltcall-bench-data" RUST_LOG=warn
BOLTCALL_KEY=$("$BIN" keys create --plan elite --workspace bench 2>/dev/null)
export BOLTCALL_KEY
"$BIN" serve 2>/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/v1/openapi.json"; do sleep 0.1; done
BASE="http://127.0.0.1:$PORT"
AGENT=$(curl -s -X POST "$BASE/v1/agents" -H "Authorization: Bearer $BOLTCALL_KEY" \
  -H "Content-Type: application/json" -d '{"name": "Bench", "voice_id": "voice_sarah"}' |
  sed 's/.*"id":"\([^"]*\)".*/\1/')
i=0
while [ $i -lt 50 ]; do
  curl -s -o /dev/null -X POST "$BASE/v1/calls/outbound" -H "Authorization: Bearer $BOLTCALL_KEY" \
    -H "Content-Type: application/json" -d "{\"agent_id\": \"$AGENT\", \"to\": \"+1555000111\"}"
  i=$((i + 1))
done
echo "## GET /v1/calls?limit=20 ($DB)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/get_calls.lua" "$BASE/v1/calls?limit=20"
echo "## POST /v1/leads ($DB)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/post_lead.lua" "$BASE/v1/leads"
