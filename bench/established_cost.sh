#!/usr/bin/env bash
# What an established silent call costs a real `boltcall serve`: CALLS calls (Twilio Media
# Streams or SIP) opened at RATE per second and held SECONDS; once every call is up and has
# heard its greeting, the engine's CPU ticks (/proc/PID/stat) are read over MEASURE_SECS and
# printed as cores and % of a core per call, with the load client's cores beside them.
# PERF=1 records a perf profile of the engine over that window instead (/tmp/perf.data);
# CALL_GRAPH=dwarf gives callers through code built without frame pointers.
# AUDIO=WAV has the callers play an 8 kHz WAV (looped) instead of digital line silence, e.g.
# faint noise: sox -n -r 8000 -b 16 -c 1 noise.wav synth 10 pinknoise vol 0.005
# Usage: bench/established_cost.sh BIN_DIR twilio|sip CALLS SECONDS [RATE]
#   e.g. bench/established_cost.sh target/release twilio 200 40 50
set -euo pipefail
bin=$1 kind=$2 calls=$3 seconds=$4 rate=${5:-50}
measure=${MEASURE_SECS:-10}
work=$(mktemp -d)
pid='' load=''
trap '[ -n "$load" ] && kill "$load" 2>/dev/null; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/serve.sh"
serve_env 127.0.0.1:18187 127.0.0.1:15167 "$rate"
export BOLTCALL_IDLE_REPROMPT_SECS=3600 BOLTCALL_IDLE_HANGUP_SECS=3600
key=$(new_key)
start_serve "$key"
create_agent "$key" +14155550100 >/dev/null
warm_up
common=(--to +14155550100 --calls "$calls" --rate "$rate" --seconds "$seconds" --server-pid "$pid"
  ${AUDIO:+--audio "$AUDIO"})
quiet=(--silent)
[ -n "${AUDIO:-}" ] && quiet=()
if [ "$kind" = sip ]; then
  "$bin/sip-load" --target "$sip" "${common[@]}" >"$work/load.out" 2>&1 &
else
  "$bin/twilio-load" --url "ws://$http/carrier/twilio/stream" "${quiet[@]}" "${common[@]}" >"$work/load.out" 2>&1 &
fi
load=$!
# Every call is up after CALLS/RATE s; its greeting (about 4 s) has played some seconds later.
sleep $(( calls / rate + ${SETTLE_SECS:-8} ))
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
e0=$(ticks "$pid") l0=$(ticks "$load")
if [ "${PERF:-0}" = 1 ]; then
  perf record -F 499 --call-graph "${CALL_GRAPH:-fp}" -p "$pid" -o /tmp/perf.data -- sleep "$measure" 2>/dev/null
else
  sleep "$measure"
fi
e1=$(ticks "$pid") l1=$(ticks "$load")
hz=$(getconf CLK_TCK)
awk -v e=$((e1 - e0)) -v l=$((l1 - l0)) -v hz="$hz" -v s="$measure" -v n="$calls" 'BEGIN {
  printf "established calls: %d; engine %.3f cores = %.3f %% of a core per call; load client %.3f cores\n",
    n, e / hz / s, e / hz / s / n * 100, l / hz / s }'
wait "$load" || true
load=''
cat "$work/load.out"
