#!/usr/bin/env bash
# Concurrent browser calls (WebRTC) held against a real `boltcall serve` (offline speech, offline
# brain, recording): `webrtc-load` opens CALLS calls like the console's, each streaming the
# opening-hours caller (or silence with SILENT=1) for SECONDS, and reports what the engine spent.
# Usage: bench/webrtc_load.sh BIN_DIR CALLS [SECONDS]
set -euo pipefail
bin=$1 calls=$2 seconds=${3:-30}
work=$(mktemp -d) pid=''
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source "$(dirname "$0")/serve.sh"
serve_env 127.0.0.1:18182 127.0.0.1:15162 10
key=$(new_key)
start_serve "$key"
agent=$(create_agent "$key")
warm_up
audio=(--audio fixtures/calls/opening_hours/caller.wav)
[ "${SILENT:-0}" = 1 ] && audio=()
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/webrtc-load" --url "http://$http" --key "$key" --agent "$agent" \
  --calls "$calls" --seconds "$seconds" "${audio[@]}" --server-pid "$pid"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
