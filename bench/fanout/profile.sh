#!/usr/bin/env bash
# bench/fanout/profile.sh: where one peer's server spends its CPU while it
# broadcasts. Starts the peer as run.sh does (pinned, 127.0.0.1), connects N
# clients, runs broadcast rounds only (no sustained phase) and records the
# server process with `perf record -e cpu-clock` (flat samples, no call
# graphs) for PERF_SECS seconds once the rounds are going. Prints the share
# of samples per DSO (kernel, the server binary, libc, ...) and the top
# symbols.
#
#   bash bench/fanout/profile.sh PEER [N]
#
# PEER: floor | node-ws | mosquitto | emulator-json | emulator-raw | emulator-mqtt
# N: clients [10000].
# Knobs: ROUNDS [400] (enough to outlast the recording at N=10000; lower it
# for small N or leave it, the client just runs longer), LEAD_SECS [2]
# (wait after the clients are ready before recording), PERF_SECS [10],
# PERF_FREQ [1999], TOP [30] symbols, SERVER_CPU [1], CLIENT_CPU [0],
# EMULATOR_BIN, EMULATOR_RUST_LOG [warn], ACCESS_KEY, MOSQUITTO_BIN,
# FANOUT_TARGET_DIR, OUT [bench/fanout/results/profile-<peer>-<N>-<stamp>/].
# Needs perf (Debian: linux-perf; /usr/bin/perf). Every process it starts is
# stopped by its PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEER=${1:?usage: profile.sh PEER [N]}
N=${2:-10000}
ROUNDS=${ROUNDS:-400}
LEAD_SECS=${LEAD_SECS:-2}
PERF_SECS=${PERF_SECS:-10}
PERF_FREQ=${PERF_FREQ:-1999}
TOP=${TOP:-30}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
EMULATOR_RUST_LOG=${EMULATOR_RUST_LOG:-warn}
ACCESS_KEY=${ACCESS_KEY:-bench-fanout-access-key-0123456789ABCDEFabcdef}
FANOUT_TARGET_DIR=${FANOUT_TARGET_DIR:-$HERE/target}
OUT=${OUT:-$HERE/results/profile-$PEER-$N-$(date -u +%Y%m%dT%H%M%SZ)}
PERF=${PERF:-$(command -v perf || echo /usr/bin/perf)}

say() { printf 'profile.sh: %s\n' "$*" >&2; }
[ -x "$PERF" ] || { say "perf not found (apt-get install linux-perf)"; exit 1; }
mkdir -p "$OUT"

CARGO_TARGET_DIR=$FANOUT_TARGET_DIR cargo build --release --quiet --manifest-path "$HERE/client/Cargo.toml"
CLIENT=$FANOUT_TARGET_DIR/release/fanout-client
case $PEER in
  floor)
    CARGO_TARGET_DIR=$FANOUT_TARGET_DIR cargo build --release --quiet --manifest-path "$HERE/floor/Cargo.toml" ;;
  emulator-*)
    if [ -z "${EMULATOR_BIN:-}" ]; then
      (cd "$REPO" && cargo build --release --quiet -p webpubsub-emulator)
      EMULATOR_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/webpubsub-emulator
      case $EMULATOR_BIN in /*) ;; *) EMULATOR_BIN=$REPO/$EMULATOR_BIN ;; esac
    fi ;;
  node-ws)
    [ -d "$HERE/node-ws/node_modules/ws" ] || (cd "$HERE/node-ws" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ;;
  mosquitto)
    MOSQUITTO_BIN=${MOSQUITTO_BIN:-$(PATH=$PATH:/usr/sbin command -v mosquitto || true)}
    [ -n "$MOSQUITTO_BIN" ] || { say "mosquitto not installed (run.sh installs it)"; exit 1; } ;;
  *) say "unknown peer $PEER"; exit 1 ;;
esac
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api=http://127.0.0.1:$port/api/hubs/bench
case $PEER in
  floor)
    PORT=$port taskset -c "$SERVER_CPU" "$FANOUT_TARGET_DIR/release/fanout-floor" >"$OUT/server.log" 2>&1 &
    ARGS=(--mode raw --url "ws://127.0.0.1:$port/" --trigger "http://127.0.0.1:$port/broadcast") ;;
  node-ws)
    PORT=$port taskset -c "$SERVER_CPU" node "$HERE/node-ws/server.js" >"$OUT/server.log" 2>&1 &
    ARGS=(--mode raw --url "ws://127.0.0.1:$port/" --trigger "http://127.0.0.1:$port/broadcast") ;;
  mosquitto)
    # Same config as run.sh: a plain listener beside the websockets one, and `lo`, not 127.0.0.1.
    printf '%s\n' "per_listener_settings false" "allow_anonymous true" "persistence false" \
      "log_dest stderr" "log_type error" "log_type warning" "listener $port lo" "protocol websockets" \
      "listener $(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') 127.0.0.1" \
      "protocol mqtt" > "$OUT/mosquitto.conf"
    taskset -c "$SERVER_CPU" "$MOSQUITTO_BIN" -c "$OUT/mosquitto.conf" >"$OUT/server.log" 2>&1 &
    ARGS=(--mode mqtt --url "ws://127.0.0.1:$port/mqtt" --topic bench --trigger "mqtt-ws://127.0.0.1:$port/mqtt") ;;
  emulator-*)
    RUST_LOG=$EMULATOR_RUST_LOG taskset -c "$SERVER_CPU" "$EMULATOR_BIN" --port "$port" --host 127.0.0.1 \
      --access-key "$ACCESS_KEY" --max-connections $((N + 256)) >"$OUT/server.log" 2>&1 &
    ARGS=(--client-key "$ACCESS_KEY" --trigger-key "$ACCESS_KEY")
    case $PEER in
      emulator-json) ARGS+=(--mode json --url "ws://127.0.0.1:$port/client/hubs/bench" --trigger "$api/:send?api-version=2024-12-01") ;;
      emulator-raw)  ARGS+=(--mode raw --url "ws://127.0.0.1:$port/client/hubs/bench" --trigger "$api/:send?api-version=2024-12-01") ;;
      emulator-mqtt) ARGS+=(--mode mqtt --url "ws://127.0.0.1:$port/clients/mqtt/hubs/bench" --topic bench
                            --roles webpubsub.joinLeaveGroup,webpubsub.sendToGroup
                            --trigger "$api/groups/bench/:send?api-version=2024-12-01") ;;
    esac ;;
esac
SERVER_PID=$!
CLIENT_PID=""
PERF_PID=""
cleanup() {
  local pid
  for pid in $PERF_PID $CLIENT_PID $SERVER_PID; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

for _ in $(seq 150); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { say "the server exited: $(tail -3 "$OUT/server.log")"; exit 1; }
  sleep 0.1
done

taskset -c "$CLIENT_CPU" "$CLIENT" --label "$PEER" --n "$N" "${ARGS[@]}" --server-pid "$SERVER_PID" \
  --rounds "$ROUNDS" --warmup 10 --sustain-secs 0 >"$OUT/client.out" 2>"$OUT/client.log" &
CLIENT_PID=$!
# Record once every client is ready (the client says so on stderr) and the rounds have started.
until grep -q 'clients ready' "$OUT/client.log" 2>/dev/null; do
  kill -0 "$CLIENT_PID" 2>/dev/null || { say "the client ended early:"; cat "$OUT/client.log" >&2; exit 1; }
  sleep 0.2
done
sleep "$LEAD_SECS"
say "recording $PEER (pid $SERVER_PID) for ${PERF_SECS}s"
"$PERF" record -e cpu-clock -F "$PERF_FREQ" -p "$SERVER_PID" -o "$OUT/perf.data" -- sleep "$PERF_SECS" \
  2>"$OUT/perf-record.log" &
PERF_PID=$!
wait "$PERF_PID" || { say "perf record failed:"; cat "$OUT/perf-record.log" >&2; exit 1; }
PERF_PID=""
wait "$CLIENT_PID" || true
CLIENT_PID=""
cat "$OUT/client.log" >&2

report() { "$PERF" report -i "$OUT/perf.data" --stdio --percent-limit 0.3 "$@" 2>/dev/null | grep -v '^#' | grep -v '^\s*$'; }
echo "== $PEER, N=$N: share of server CPU samples by DSO"
report --sort dso | head -12 | tee "$OUT/by-dso.txt"
echo
echo "== top $TOP symbols"
report --sort dso,sym | head -"$TOP" | tee "$OUT/by-symbol.txt"
echo
echo "(perf.data and the logs are in $OUT)"
