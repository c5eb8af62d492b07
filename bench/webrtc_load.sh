#!/usr/bin/env bash
# Concurrent browser calls (WebRTC) held against a real `boltcall serve` (offline speech, offline
# brain, recording): `webrtc-load` opens CALLS calls like the console's, each streaming the
# opening-hours caller (or silence with SILENT=1) for SECONDS, and reports what the engine spent.
# Usage: bench/webrtc_load.sh BIN_DIR CALLS [SECONDS]
set -euo pipefail
bin=$1 calls=$2 seconds=${3:-30}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
export BOLTCALL_DATABASE_URL="sqlite://$work/bench.db" BOLTCALL_DATA_DIR="$work/data" \
  BOLTCALL_HTTP_ADDR=127.0.0.1:18182 BOLTCALL_SIP_ADDR=127.0.0.1:15162 BOLTCALL_RATE_LIMIT=off \
  BOLTCALL_MAX_CONCURRENT_CALLS=5000 BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS=5000
key=$("$bin/boltcall" keys create --plan elite 2>/dev/null | grep -o 'sk_live_[A-Za-z0-9]*' | head -1)
"$bin/boltcall" serve >"$work/serve.log" 2>&1 &
pid=$!
until curl -sf -o /dev/null http://127.0.0.1:18182/v1/voices -H "Authorization: Bearer $key"; do sleep 0.5; done
agent=$(curl -sf http://127.0.0.1:18182/v1/agents -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"name":"Front desk","voice_id":"voice_james",
       "greeting":"Thanks for calling Bright Smile Dental. How can I help you today?"}' | grep -o '"id":"agent_[A-Za-z0-9]*"' | cut -d'"' -f4)
sleep "${WARM_SECS:-5}"  # the agent's fixed lines are prepared in the background
audio=(--audio fixtures/calls/opening_hours/caller.wav)
[ "${SILENT:-0}" = 1 ] && audio=()
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/webrtc-load" --url http://127.0.0.1:18182 --key "$key" --agent "$agent" \
  --calls "$calls" --seconds "$seconds" "${audio[@]}" --server-pid "$pid"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
