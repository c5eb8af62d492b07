#!/usr/bin/env bash
# New Twilio Media Streams calls per second through a real `boltcall serve` (offline speech,
# offline brain, recording): how long each caller waits from `start` to the greeting's first
# audio. Usage: bench/greeting_load.sh BIN_DIR RATE CALLS [SECONDS]
# Set BOLTCALL_SPEECH_CACHE_MB=0 BOLTCALL_SPEECH_CACHE_DISK_MB=0 to measure without the cache.
set -euo pipefail
bin=$1 rate=$2 calls=$3 seconds=${4:-4}
work=$(mktemp -d) pid=''
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/serve.sh"
serve_env 127.0.0.1:18181 127.0.0.1:15161 "$rate"
key=$(new_key)
start_serve "$key"
create_agent "$key" +14155550100 >/dev/null
warm_up
"$bin/twilio-load" --url "ws://$http/carrier/twilio/stream" --to +14155550100 \
  --calls "$calls" --rate "$rate" --seconds "$seconds" --silent --server-pid "$pid"
