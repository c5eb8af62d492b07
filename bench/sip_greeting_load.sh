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
work=$(mktemp -d) pid=''
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/serve.sh"
serve_env 127.0.0.1:18183 127.0.0.1:15163 "$rate"
extra=()  # more sip-load options
if [ -n "${SIP_USER:-}" ]; then
  export BOLTCALL_SIP_USERS="$SIP_USER:$SIP_PASSWORD"
  extra=(--user "$SIP_USER" --password "$SIP_PASSWORD")
fi
key=$(new_key)
start_serve "$key"
create_agent "$key" +14155550100 >/dev/null
warm_up
[ -n "${AUDIO:-}" ] && extra+=(--audio "$AUDIO")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/sip-load" --target "$sip" --to +14155550100 \
  --calls "$calls" --rate "$rate" --seconds "$seconds" "${extra[@]}" --server-pid "$pid"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
