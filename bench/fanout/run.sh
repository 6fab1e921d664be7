#!/usr/bin/env bash
# bench/fanout/run.sh: the fan-out benchmark. Puts the emulator next to the
# servers one would run instead and records, per sample, broadcast latency to
# the last of N clients, sustained deliveries per second and idle memory.
#
#   bash bench/fanout/run.sh                       # every peer, NS, REPS
#   bash bench/fanout/run.sh floor emulator-json   # some peers
#
# Peers: floor node-ws mosquitto emulator-json emulator-mqtt emulator-raw
# (see README.md). The server runs on CPU $SERVER_CPU, the load client
# (client/) on CPU $CLIENT_CPU, both on 127.0.0.1. Order of samples: N, then
# rep, then peer, the peer list rotated by one each rep. Before each sample
# the script waits (at most MAX_LOAD_WAIT s) for the 1-minute load average to
# drop to MAX_LOAD. Every process it starts is stopped by its PID.
#
# Knobs (environment variables, defaults in brackets):
#   NS ["1000 10000"]   numbers of clients
#   REPS [3]            repetitions (interleaved)
#   ROUNDS [200]        measured broadcast rounds; ROUNDS_BIG for N >= 5000
#                       [100, or ROUNDS when only ROUNDS is set]
#   WARMUP [20]         unmeasured rounds before them
#   GAP_MS [5]          pause after each round
#   SUSTAIN [10]        seconds of the sustained phase (0: none)
#   TRIGGERERS [4]      concurrent triggerers in it
#   WINDOW [64]         most messages not yet at every client
#   PAD [0]             extra payload bytes
#   SERVER_CPU [1] CLIENT_CPU [0] PIN [1]   taskset CPUs; PIN=0 runs unpinned
#   MAX_LOAD [1.0] MAX_LOAD_WAIT [120]      quiet-machine wait before a sample
#   EMULATOR_BIN        emulator binary [a release build of this repository,
#                       made with `cargo build --release -p webpubsub-emulator`
#                       in ${CARGO_TARGET_DIR:-<repo>/target}]
#   EMULATOR_RUST_LOG [warn]  EMULATOR_ARGS [""]  ACCESS_KEY [a fixed key]
#   MOSQUITTO_BIN       [mosquitto on PATH, else /usr/sbin/mosquitto, else apt-get]
#   FANOUT_TARGET_DIR   where client/ and floor/ are built [bench/fanout/target]
#   CLIENT_TIMEOUT [900] seconds before a stuck client is killed
#   OUT                 [bench/fanout/results/run-<UTC stamp>.jsonl]
#   TARGETS [1]         also print summarize.py's PASS/FAIL checks
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

KNOWN_PEERS="floor node-ws mosquitto emulator-json emulator-mqtt emulator-raw"
if [ $# -gt 0 ]; then PEERS=("$@"); else read -r -a PEERS <<< "$KNOWN_PEERS"; fi

NS=${NS:-"1000 10000"}
REPS=${REPS:-3}
# A ROUNDS given without ROUNDS_BIG applies to every N.
ROUNDS_BIG=${ROUNDS_BIG:-${ROUNDS:-100}}
ROUNDS=${ROUNDS:-200}
WARMUP=${WARMUP:-20}
GAP_MS=${GAP_MS:-5}
SUSTAIN=${SUSTAIN:-10}
TRIGGERERS=${TRIGGERERS:-4}
WINDOW=${WINDOW:-64}
PAD=${PAD:-0}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PIN=${PIN:-1}
MAX_LOAD=${MAX_LOAD:-1.0}
MAX_LOAD_WAIT=${MAX_LOAD_WAIT:-120}
EMULATOR_RUST_LOG=${EMULATOR_RUST_LOG:-warn}
EMULATOR_ARGS=${EMULATOR_ARGS:-}
ACCESS_KEY=${ACCESS_KEY:-bench-fanout-access-key-0123456789ABCDEFabcdef}
FANOUT_TARGET_DIR=${FANOUT_TARGET_DIR:-$HERE/target}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-900}
TARGETS=${TARGETS:-1}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$HERE/results/run-$STAMP.jsonl}
LOGS=${OUT%.jsonl}.logs
HUB=bench
GROUP=bench            # the emulator's group = the MQTT topic
API_VERSION=2024-12-01

say() { printf 'run.sh: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

for p in "${PEERS[@]}"; do
  [[ " $KNOWN_PEERS " == *" $p "* ]] || fail "unknown peer '$p'; known: $KNOWN_PEERS"
done
wanted() { local p; for p in "${PEERS[@]}"; do [[ $p == $1 ]] && return 0; done; return 1; }
for tool in cargo python3 timeout; do command -v "$tool" >/dev/null || fail "needs $tool"; done
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || fail "needs taskset (or PIN=0)"
  [ "$(nproc)" -ge 2 ] || { say "one CPU only: running unpinned (PIN=0)"; PIN=0; }
fi
# Command prefixes (taskset execs the program, so $! is the server's own PID).
ON_SERVER_CPU=(); ON_CLIENT_CPU=()
if [ "$PIN" = 1 ]; then ON_SERVER_CPU=(taskset -c "$SERVER_CPU"); ON_CLIENT_CPU=(taskset -c "$CLIENT_CPU"); fi

# ---------------------------------------------------------------- what the peers need

if wanted 'emulator-*'; then
  if [ -z "${EMULATOR_BIN:-}" ]; then
    say "building the emulator (cargo build --release -p webpubsub-emulator)"
    (cd "$REPO" && cargo build --release --quiet -p webpubsub-emulator)
    EMULATOR_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/webpubsub-emulator
    case $EMULATOR_BIN in /*) ;; *) EMULATOR_BIN=$REPO/$EMULATOR_BIN ;; esac
  fi
  [ -x "$EMULATOR_BIN" ] || fail "EMULATOR_BIN=$EMULATOR_BIN is not executable"
  EMULATOR_BIN=$(cd "$(dirname "$EMULATOR_BIN")" && pwd)/$(basename "$EMULATOR_BIN")
fi

if wanted mosquitto; then
  # Debian puts it in /usr/sbin, which is not on every user's PATH.
  MOSQUITTO_BIN=${MOSQUITTO_BIN:-$(PATH=$PATH:/usr/sbin:/usr/local/sbin command -v mosquitto || true)}
  if [ -z "$MOSQUITTO_BIN" ]; then
    say "installing mosquitto (apt-get)"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo -n"
    $sudo_ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq mosquitto >/dev/null \
      || fail "mosquitto is not installed and apt-get could not install it"
    MOSQUITTO_BIN=$(PATH=$PATH:/usr/sbin command -v mosquitto || true)
  fi
  [ -x "$MOSQUITTO_BIN" ] || fail "no mosquitto binary at $MOSQUITTO_BIN"
fi

if wanted node-ws; then
  command -v node >/dev/null && command -v npm >/dev/null || fail "node-ws needs node and npm"
  # npm ci installs exactly the committed package-lock.json (ws 8.x pinned).
  if ! (cd "$HERE/node-ws" && node -e '
        const want = require("./package-lock.json").packages["node_modules/ws"].version;
        process.exit(require("./node_modules/ws/package.json").version === want ? 0 : 1)' 2>/dev/null); then
    say "npm ci in node-ws/"
    (cd "$HERE/node-ws" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi

say "building client/ and floor/ (release, in $FANOUT_TARGET_DIR)"
CARGO_TARGET_DIR=$FANOUT_TARGET_DIR cargo build --release --quiet --manifest-path "$HERE/client/Cargo.toml"
CLIENT=$FANOUT_TARGET_DIR/release/fanout-client
if wanted floor; then
  CARGO_TARGET_DIR=$FANOUT_TARGET_DIR cargo build --release --quiet --manifest-path "$HERE/floor/Cargo.toml"
fi
FLOOR=$FANOUT_TARGET_DIR/release/fanout-floor

# ---------------------------------------------------------------- limits

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
read -r LOW HIGH < /proc/sys/net/ipv4/ip_local_port_range
SIZES=()
for n in $NS; do
  if [ "$FDS" != unlimited ] && [ "$FDS" -lt $((n + 512)) ]; then
    say "N=$n skipped: ulimit -n is $FDS, it needs about $((n + 512))"
  elif [ $((HIGH - LOW)) -lt $((n + 512)) ]; then
    say "N=$n skipped: only $((HIGH - LOW)) local ports ($LOW-$HIGH)"
  else
    SIZES+=("$n")
  fi
done
[ ${#SIZES[@]} -gt 0 ] || fail "none of NS=\"$NS\" can run here"

# ---------------------------------------------------------------- processes

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SERVER_PID=""
stop_server() {
  local pid=$SERVER_PID
  [ -n "$pid" ] || return 0
  SERVER_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# Waits until something accepts on 127.0.0.1:$1 while $SERVER_PID lives.
await_port() {
  for _ in $(seq 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

mosquitto_conf() { # ws_port tcp_port
  # Two pitfalls of Debian's mosquitto 2.0.11: it refuses to start when its
  # only listeners are websockets ones ("Unable to start any listening
  # sockets"), hence the plain listener on a second port; and a websockets
  # listener (libwebsockets) takes an interface NAME, so `lo`, not 127.0.0.1
  # (which it ignores, binding every address).
  cat <<EOF
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
listener $1 lo
protocol websockets
listener $2 127.0.0.1
protocol mqtt
EOF
}

# Starts $1 for $2 clients, logging to $3; sets SERVER_PID and ARGS (the client's flags).
start_peer() {
  local peer=$1 n=$2 log=$3 port
  port=$(free_port)
  ARGS=(--label "$peer" --n "$n")
  case $peer in
    floor)
      PORT=$port "${ON_SERVER_CPU[@]}" "$FLOOR" >"$log" 2>&1 &
      SERVER_PID=$!
      ARGS+=(--mode raw --url "ws://127.0.0.1:$port/" --trigger "http://127.0.0.1:$port/broadcast") ;;
    node-ws)
      PORT=$port "${ON_SERVER_CPU[@]}" node "$HERE/node-ws/server.js" >"$log" 2>&1 &
      SERVER_PID=$!
      ARGS+=(--mode raw --url "ws://127.0.0.1:$port/" --trigger "http://127.0.0.1:$port/broadcast") ;;
    mosquitto)
      mosquitto_conf "$port" "$(free_port)" > "${log%.log}.conf"
      "${ON_SERVER_CPU[@]}" "$MOSQUITTO_BIN" -c "${log%.log}.conf" >"$log" 2>&1 &
      SERVER_PID=$!
      ARGS+=(--mode mqtt --url "ws://127.0.0.1:$port/mqtt" --topic "$GROUP"
             --trigger "mqtt-ws://127.0.0.1:$port/mqtt") ;;
    emulator-*)
      # shellcheck disable=SC2086 # EMULATOR_ARGS is a list of flags
      RUST_LOG=$EMULATOR_RUST_LOG "${ON_SERVER_CPU[@]}" "$EMULATOR_BIN" --port "$port" --host 127.0.0.1 \
        --access-key "$ACCESS_KEY" --max-connections $((n + 256)) $EMULATOR_ARGS >"$log" 2>&1 &
      SERVER_PID=$!
      local base=http://127.0.0.1:$port/api/hubs/$HUB
      ARGS+=(--client-key "$ACCESS_KEY" --trigger-key "$ACCESS_KEY")
      case $peer in
        emulator-json) ARGS+=(--mode json --url "ws://127.0.0.1:$port/client/hubs/$HUB"
                              --trigger "$base/:send?api-version=$API_VERSION") ;;
        emulator-raw)  ARGS+=(--mode raw --url "ws://127.0.0.1:$port/client/hubs/$HUB"
                              --trigger "$base/:send?api-version=$API_VERSION") ;;
        emulator-mqtt) ARGS+=(--mode mqtt --url "ws://127.0.0.1:$port/clients/mqtt/hubs/$HUB" --topic "$GROUP"
                              --roles webpubsub.joinLeaveGroup,webpubsub.sendToGroup
                              --trigger "$base/groups/$GROUP/:send?api-version=$API_VERSION") ;;
      esac ;;
  esac
  ARGS+=(--server-pid "$SERVER_PID")
  await_port "$port"
}

# Lines of a server log that are warnings or errors: the emulator's WARN/ERROR
# lines and panics (RUST_LOG=warn also lets its startup banner through);
# everything mosquitto logs (it is set to log warnings and errors only);
# everything but the startup line of floor and node-ws.
log_warnings() {
  case $1 in
    emulator-*) grep -Ec '\b(WARN|ERROR)\b|panicked' "$2" || true ;;
    mosquitto) grep -vc '^\s*$' "$2" || true ;;
    *) grep -v '^\s*$' "$2" | grep -vc ' on 127\.0\.0\.1:' || true ;;
  esac
}

# Sets LOAD and WAITED: the 1-minute load average once it is low enough (or the wait ran out).
quiet_machine() {
  WAITED=0
  while :; do
    LOAD=$(cut -d' ' -f1 /proc/loadavg)
    python3 -c "import sys; sys.exit($LOAD > $MAX_LOAD)" && return 0
    if [ "$WAITED" -ge "$MAX_LOAD_WAIT" ]; then
      say "load $LOAD is still above $MAX_LOAD after ${WAITED}s; sampling anyway"
      return 0
    fi
    sleep 5
    WAITED=$((WAITED + 5))
  done
}

# ---------------------------------------------------------------- samples

mkdir -p "$(dirname "$OUT")" "$LOGS"
{
  echo "# bench/fanout run $STAMP: peers ${PEERS[*]}; N ${SIZES[*]}; reps $REPS; rounds $ROUNDS/$ROUNDS_BIG (N>=5000) + warm-up $WARMUP, gap ${GAP_MS}ms"
  echo "# sustain ${SUSTAIN}s, triggerers $TRIGGERERS, window $WINDOW, pad $PAD; pin $PIN (server CPU $SERVER_CPU, client CPU $CLIENT_CPU); max load $MAX_LOAD"
  echo "# $(uname -sr); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(nproc) CPUs; repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "# emulator ${EMULATOR_BIN:--}; node $(node --version 2>/dev/null || echo -); mosquitto ${MOSQUITTO_BIN:--}"
} > "${OUT%.jsonl}.meta"
say "peers: ${PEERS[*]}; N: ${SIZES[*]}; reps: $REPS; samples go to $OUT"

count=${#PEERS[@]}
for n in "${SIZES[@]}"; do
  rounds=$ROUNDS; [ "$n" -ge 5000 ] && rounds=$ROUNDS_BIG
  for rep in $(seq "$REPS"); do
    for i in $(seq 0 $((count - 1))); do
      peer=${PEERS[$(((i + rep - 1) % count))]}
      name=$peer-n$n-rep$rep
      quiet_machine
      say "---- $name (load $LOAD, waited ${WAITED}s)"
      if ! start_peer "$peer" "$n" "$LOGS/$name.server.log"; then
        say "$name: the server did not come up; its log: $LOGS/$name.server.log"
        stop_server
        printf '{"peer":"%s","n":%d,"rep":%d,"ok":false,"error":"server did not start","load":%s}\n' \
          "$peer" "$n" "$rep" "$LOAD" >> "$OUT"
        continue
      fi
      rc=0
      timeout --kill-after=10 "$CLIENT_TIMEOUT" "${ON_CLIENT_CPU[@]}" "$CLIENT" "${ARGS[@]}" \
        --rounds "$rounds" --warmup "$WARMUP" --gap-ms "$GAP_MS" --sustain-secs "$SUSTAIN" \
        --triggerers "$TRIGGERERS" --window "$WINDOW" --payload-pad "$PAD" \
        > "$LOGS/$name.out" 2> "$LOGS/$name.client.log" || rc=$?
      sed 's/^/    /' "$LOGS/$name.client.log" >&2
      alive=false; kill -0 "$SERVER_PID" 2>/dev/null && alive=true
      stop_server
      result=$(sed -n 's/^RESULT //p' "$LOGS/$name.out" | tail -1)
      [ -n "$result" ] || result='{"error":"the client printed no RESULT"}'
      ok=false; [ "$rc" = 0 ] && [ "$alive" = true ] && ok=true
      warnings=$(log_warnings "$peer" "$LOGS/$name.server.log")
      printf '{"peer":"%s","n":%d,"rep":%d,"ok":%s,"rc":%d,"server_alive":%s,"load":%s,"waited_s":%d,"server_warnings":%d,"result":%s}\n' \
        "$peer" "$n" "$rep" "$ok" "$rc" "$alive" "$LOAD" "$WAITED" "${warnings:-0}" "$result" >> "$OUT"
    done
  done
done

say "samples: $OUT"
flags=(); [ "$TARGETS" = 1 ] && flags+=(--targets)
python3 "$HERE/summarize.py" "${flags[@]}" "$OUT"
