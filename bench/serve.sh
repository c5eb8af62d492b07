# Sourced by the bench scripts: a real `boltcall serve` from BIN_DIR ($bin) on a fresh SQLite
# database and data directory under $work, with the limits a load run would meet (API rate
# limit, INVITE rate, concurrent calls, unsigned Twilio streams) out of its way.
#
#   serve_env HTTP_ADDR SIP_ADDR RATE   export the engine's settings ($http, $sip) for RATE new calls/s
#   new_key [WORKSPACE]                 print a new live key on the largest plan
#   start_serve KEY                     start serve ($pid, log in $work/serve.log), wait until it answers
#   create_agent KEY [NUMBER]           create the front-desk agent (on NUMBER); print its id
#   warm_up                             wait while the agent's fixed lines are synthesised (WARM_SECS, 5)

serve_env() {
  http=$1 sip=$2
  # The INVITE limit is per source and sip-load sends from one socket: the whole rate, twice
  # over for digest (two INVITEs a call), with room for bursts.
  local invite_rate
  invite_rate=$(awk -v r="$3" 'BEGIN { printf "%d", r * 4 + 20 }')
  export BOLTCALL_DATABASE_URL="sqlite://$work/bench.db" BOLTCALL_DATA_DIR="$work/data" \
    BOLTCALL_HTTP_ADDR="$http" BOLTCALL_SIP_ADDR="$sip" BOLTCALL_RATE_LIMIT=off \
    BOLTCALL_SIP_INVITE_RATE="$invite_rate" \
    BOLTCALL_TWILIO_ALLOW_UNSIGNED=1 BOLTCALL_TWILIO_MAX_STREAMS=5000 \
    BOLTCALL_MAX_CONCURRENT_CALLS=5000 BOLTCALL_WORKSPACE_MAX_CONCURRENT_CALLS=5000
}

new_key() {
  "$bin/boltcall" keys create --plan elite ${1:+--workspace "$1"} 2>/dev/null |
    grep -o 'sk_live_[A-Za-z0-9]*' | head -1
}

start_serve() {
  "$bin/boltcall" serve >"$work/serve.log" 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://$http/v1/voices" -H "Authorization: Bearer $1"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.5
  done
}

create_agent() {
  local number=''
  [ -n "${2:-}" ] && number=',"phone_number":"'"$2"'"'
  curl -sf "http://$http/v1/agents" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d '{"name":"Front desk","voice_id":"voice_james"'"$number"',
         "greeting":"Thanks for calling Bright Smile Dental. How can I help you today?"}' |
    grep -o '"id":"agent_[A-Za-z0-9]*"' | cut -d'"' -f4
}

warm_up() {
  sleep "${WARM_SECS:-5}"
}
