#!/usr/bin/env bash
# New SIP calls per second through a real `boltcall serve` (offline speech, offline brain,
# recording): `sip-load` places CALLS calls at RATE per second over UDP, each held SECONDS
# while it streams line silence, and reports INVITE → 200 OK, 200 OK → the greeting's first
# audio, the engine's outbound pacing and what the calls cost it.
# Usage: bench/sip_greeting_load.sh BIN_DIR RATE CALLS [SECONDS]
# SIP_USER/SIP_PASSWORD make the engine challenge every INVITE (digest) and the callers answer;
# AUDIO=caller.wav (8 kHz mono 16-bit) streams that instead of silence.
# Set BOLTCALL_SPEECH_CACHE_MB=0 BOLTCALL_SPEECH_CACHE_DISK_MB=0 to measure without the cache.
set -euo pipefail
bin=$1 rate=$2 calls=$3 seconds=${4:-4}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# The INVITE limit is per source and sip-load sends from one socket: allow the whole rate,
# twice over for digest (two INVITEs a call), with room for bursts.
invite_rate=$(awk -v r="$rate" 'BEGIN { printf "%d", r * 4 + 20 }')
export BOLTCALL_DATABASE_URL="sqlite://$work/bench.db" BOLTCALL_DATA_DIR="$work/data" \
  BOLTCALL_HTTP_ADDR=127.0.0.1:18183 BOLTCALL_SIP_ADDR=127.0.0.1:15163 BOLTCALL_RATE_LIMIT=off \
  BOLTCALL_SIP_INVITE_RATE="$invite_rate" \
  BOLTCALL_MAX_CONCURRENT_CALLS=5000 BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS=5000
extra=()  # more sip-load options
if [ -n "${SIP_USER:-}" ]; then
  export BOLTCALL_SIP_USERS="$SIP_USER:$SIP_PASSWORD"
  extra=(--user "$SIP_USER" --password "$SIP_PASSWORD")
fi
key=$("$bin/boltcall" keys create --plan elite 2>/dev/null | grep -o 'sk_live_[A-Za-z0-9]*' | head -1)
"$bin/boltcall" serve >"$work/serve.log" 2>&1 &
pid=$!
until curl -sf -o /dev/null http://127.0.0.1:18183/v1/voices -H "Authorization: Bearer $key"; do sleep 0.5; done
curl -sf http://127.0.0.1:18183/v1/agents -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"name":"Front desk","voice_id":"voice_james","phone_number":"+14155550100",
       "greeting":"Thanks for calling Bright Smile Dental. How can I help you today?"}' >/dev/null
sleep "${WARM_SECS:-5}"  # the agent's fixed lines are prepared in the background
[ -n "${AUDIO:-}" ] && extra+=(--audio "$AUDIO")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/sip-load" --target 127.0.0.1:15163 --to +14155550100 \
  --calls "$calls" --rate "$rate" --seconds "$seconds" "${extra[@]}" --server-pid "$pid"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
