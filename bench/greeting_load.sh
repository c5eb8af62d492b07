#!/usr/bin/env bash
# New Twilio Media Streams calls per second through a real `boltcall serve` (offline speech,
# offline brain, recording): how long each caller waits from `start` to the greeting's first
# audio. Usage: bench/greeting_load.sh BIN_DIR RATE CALLS [SECONDS]
# Set BOLTCALL_SPEECH_CACHE_MB=0 BOLTCALL_SPEECH_CACHE_DISK_MB=0 to measure without the cache.
set -euo pipefail
bin=$1 rate=$2 calls=$3 seconds=${4:-4}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
export BOLTCALL_DATABASE_URL="sqlite://$work/bench.db" BOLTCALL_DATA_DIR="$work/data" \
  BOLTCALL_HTTP_ADDR=127.0.0.1:18181 BOLTCALL_SIP_ADDR=127.0.0.1:15161 BOLTCALL_RATE_LIMIT=off \
  BOLTCALL_TWILIO_ALLOW_UNSIGNED=1 BOLTCALL_TWILIO_MAX_STREAMS=5000 \
  BOLTCALL_MAX_CONCURRENT_CALLS=5000 BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS=5000
key=$("$bin/boltcall" keys create --plan elite 2>/dev/null | grep -o 'sk_live_[A-Za-z0-9]*' | head -1)
"$bin/boltcall" serve >"$work/serve.log" 2>&1 &
pid=$!
until curl -sf -o /dev/null http://127.0.0.1:18181/v1/voices -H "Authorization: Bearer $key"; do sleep 0.5; done
curl -sf http://127.0.0.1:18181/v1/agents -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"name":"Front desk","voice_id":"voice_james","phone_number":"+14155550100",
       "greeting":"Thanks for calling Bright Smile Dental. How can I help you today?"}' >/dev/null
sleep "${WARM_SECS:-5}"  # the agent's fixed lines are prepared in the background
"$bin/twilio-load" --url ws://127.0.0.1:18181/carrier/twilio/stream --to +14155550100 \
  --calls "$calls" --rate "$rate" --seconds "$seconds" --silent --server-pid "$pid"
