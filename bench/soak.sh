#!/usr/bin/env bash
# Soak on the real path: CALLS calls through a real `boltcall serve` (offline speech, offline
# brain, fresh SQLite DB and data dir), started at RATE per second and each held SECONDS, over
# SIP (`sip-load`: INVITE, RTP) or Twilio Media Streams (`twilio-load`). Every caller hears the
# greeting, says a short utterance once (fixtures/load/hello.wav, "Hello, can you hear me?", at
# SAY_AT s after the answer) and waits for the reply. Every SAMPLE_SECS the tool prints the
# calls so far and the engine's RSS, open fds and threads, and at the end the engine's
# flatness (first sample after warm-up, last, max), the greeting and reply counts and
# latencies, and the warnings and errors the engine logged.
#
# The agent's idle reprompt ("are you still there?", 8 s after it last spoke when it has heard
# nothing) is turned off (BOLTCALL_IDLE_REPROMPT_SECS=3600 unless set): the load tool takes
# the first agent speech after the caller's utterance for the reply, and a reprompt fired
# because the engine had not yet heard the caller would pass for one.
#
# The offline recogniser (Whisper) decodes one utterance at a time on a 2-core machine: when
# callers speak faster than it keeps up (debug build, 2 shared cores: above about one
# utterance every 2 s) most hang up before the engine has understood them, and the reply
# count measures STT capacity rather than the soak; flatness and the greeting do not depend
# on it. STT=deepgram runs the calls' recognition on `deepgram-stand-in` instead (Deepgram's
# live protocol on a local port, hearing every stretch of sound as "Hello, can you hear me?"),
# so every call can be understood and answered at the soak's rate.
#
# Usage: bench/soak.sh BIN_DIR sip|twilio CALLS RATE [SECONDS]
#   e.g. bench/soak.sh target/release sip 100000 10 12
# Environment: STT (whisper | deepgram), SAMPLE_SECS (10), SAY (the WAV), SAY_AT (6), CONCURRENCY (a cap on live calls),
# WARMUP_SECS (the tool's default: SECONDS), WARM_SECS (5, for the agent's fixed lines),
# KEEP=DIR (keep serve.log and the database there).
#
# Recordings: serve has no setting to turn call recording off (config.rs has none; every call
# writes a stereo WAV of about 64 KB/s under DATA_DIR/recordings), so this script deletes the
# WAVs as they appear, every 2 s. A deleted file the engine still writes keeps its space only
# until the call ends and closes it, so the disk holds at most the live calls' recordings.
set -euo pipefail
if [ $# -lt 4 ] || { [ "$2" != sip ] && [ "$2" != twilio ]; }; then
  sed -n 's/^# \{0,1\}//p' "$0" | sed -n '/^Usage/,/^KEEP/p' >&2
  exit 2
fi
bin=$1 carrier=$2 calls=$3 rate=$4 seconds=${5:-12}
here=$(cd "$(dirname "$0")/.." && pwd)
say=${SAY:-$here/fixtures/load/hello.wav}
work=$(mktemp -d)
pid='' sweeper='' stand_in=''
cleanup() {
  [ -n "$sweeper" ] && kill "$sweeper" 2>/dev/null
  [ -n "$stand_in" ] && kill "$stand_in" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && cp "$work/serve.log" "$work"/bench.db* "$KEEP"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
source "$here/bench/serve.sh"
serve_env 127.0.0.1:18185 127.0.0.1:15165 "$rate"
export BOLTCALL_IDLE_REPROMPT_SECS="${BOLTCALL_IDLE_REPROMPT_SECS:-3600}"
if [ "${STT:-whisper}" = deepgram ]; then
  "$bin/deepgram-stand-in" --listen 127.0.0.1:18190 >"$work/deepgram.log" 2>&1 &
  stand_in=$!
  export BOLTCALL_STT=deepgram BOLTCALL_DEEPGRAM_API_KEY=stand-in \
    BOLTCALL_DEEPGRAM_BASE_URL=http://127.0.0.1:18190
fi
# Every call counts at least one of its plan's minutes and the largest plan includes 10,000 a
# billing period (the engine refuses calls beyond it): a workspace per 9,000 calls, each with
# its own agent and number, and the tool dials them in turn.
workspaces=$(( (calls + 8999) / 9000 ))
keys=() numbers=()
for i in $(seq 1 "$workspaces"); do
  keys+=("$(new_key "soak $i")")
  numbers+=("+1415555$(printf '%04d' $((100 + i)))")
done
key=${keys[0]}
start_serve "$key"
for i in "${!keys[@]}"; do
  create_agent "${keys[$i]}" "${numbers[$i]}" >/dev/null
done
warm_up
(while sleep 2; do find "$work/data/recordings" -name '*.wav' -delete 2>/dev/null || true; done) &
sweeper=$!
common=(--to "$(IFS=,; echo "${numbers[*]}")" --calls "$calls" --rate "$rate" --seconds "$seconds"
  --say "$say" --say-at "${SAY_AT:-6}" --sample-secs "${SAMPLE_SECS:-10}" --server-pid "$pid")
[ -n "${CONCURRENCY:-}" ] && common+=(--concurrency "$CONCURRENCY")
[ -n "${WARMUP_SECS:-}" ] && common+=(--warmup-secs "$WARMUP_SECS")
echo "soak: $carrier, ${STT:-whisper} recognition, $calls calls at $rate/s, $seconds s each, over $workspaces workspaces; engine pid $pid; load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$carrier" = sip ]; then
  "$bin/sip-load" --target "$sip" "${common[@]}"
else
  "$bin/twilio-load" --url "ws://$http/carrier/twilio/stream" "${common[@]}"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The engine's side of the first workspace's last 100 calls (the API's largest page): did it transcribe the
# caller, and did it answer after that? One such call's transcript shows what the reply was.
curl -sf "http://$http/v1/calls?limit=100" -H "Authorization: Bearer $key" | jq -r '
  (.data // []) as $calls
  | ($calls | map(select([.transcript[]?.role] | index("caller")))) as $heard
  | ($calls | map(select([.transcript[]?.role] | join(" ") | test("caller.*agent")))) as $answered
  | "engine transcripts of the last \($calls | length) calls: \($heard | length) have the caller'"'"'s words, \($answered | length) an agent line after them",
    ($answered[0] // empty | "  e.g. " + ([.transcript[] | "\(.role): \(.text)"] | join(" | ")))' ||
  echo "engine transcripts: unreadable"
echo "engine log: $(wc -l <"$work/serve.log") lines, $(du -h "$work/serve.log" | cut -f1); database $(du -ch "$work"/bench.db* | tail -1 | cut -f1); data dir $(du -sh "$work/data" | cut -f1)"
# Warnings and errors by message, with the colours, the timestamp and the per-call fields taken
# out; the start-up notes about unconfigured carriers are not news.
problems=$(sed -E 's/\x1b\[[0-9;]*m//g' "$work/serve.log" | grep -E '^[^ ]+ +(WARN|ERROR) ' |
  grep -v 'endpoints answer 403 until' || true)
if [ -n "$problems" ]; then
  echo "engine warnings and errors ($(printf '%s\n' "$problems" | wc -l)), by message:"
  printf '%s\n' "$problems" | sed -E 's/^[^ ]+ +//; s/[a-z_]+=("[^"]*"|[^ ]+)//g; s/ +/ /g' |
    sort | uniq -c | sort -rn | head -15
else
  echo "engine warnings and errors: none"
fi
