#!/usr/bin/env bash
# Where a server's CPU goes under one scenario's load.
#
#   bash bench/load/profile.sh callgrind ours message   # instructions per request
#   bash bench/load/profile.sh perf baseline connect    # perf record (cpu-clock, call graphs)
#
# The server (ours, baseline or NAME=BINARY, as in run.sh, built by run.sh or
# by hand) runs pinned to SERVER_CPU, wrk to WRK_CPU, for WARMUP then
# DURATION seconds.
#
# callgrind: the server runs under valgrind with instrumentation switched on
# only for the measured wrk run, so the output's total divided by the
# requests wrk completed is user-space instructions per request, a figure
# that does not depend on the machine's load. Under valgrind, sha2 cannot
# use the CPU's SHA instructions and runs its portable code: its share is
# overstated. Compare two outputs function by function with
#   callgrind_annotate OUT.callgrind
#
# perf: `perf record -e cpu-clock -g` of the server process (kernel included;
# the VM may lack hardware counters, hence cpu-clock). Read with
#   perf report -i OUT.perf --no-children --sort dso,sym
#
# Knobs: DURATION=8 WARMUP=2 CONNS=32 WRK_CPU=0 SERVER_CPU=1 PORT=18190 FREQ=2000 (perf)
#        OUT=bench/load/results/profile-<tool>-<server>-<scenario>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOL=${1:?usage: profile.sh callgrind|perf SERVER SCENARIO}
SPEC=${2:?usage: profile.sh callgrind|perf SERVER SCENARIO}
SCENARIO=${3:?usage: profile.sh callgrind|perf SERVER SCENARIO}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PORT=${PORT:-18190}
export BENCH_ACCESS_KEY=${BENCH_ACCESS_KEY:-anAccessKeyForBenchmarks0123456789}
export BENCH_CONNECTION_ID=${BENCH_CONNECTION_ID:-bench-conn-0001}
export BENCH_HUB=${BENCH_HUB:-chat}
export BENCH_PATH=${BENCH_PATH:-/api/webpubsub/hubs/$BENCH_HUB/}
export BENCH_SIGNATURE
BENCH_SIGNATURE=$(python3 "$HERE/events.py" sign)
case $SPEC in
  ours) BIN=${OURS_BIN:-$ROOT/target/release/examples/bench_server} NAME=ours ;;
  baseline) BIN=$HERE/axum-baseline/target/release/axum-baseline NAME=baseline ;;
  *=*) BIN=${SPEC#*=} NAME=${SPEC%%=*} ;;
  *) echo "profile.sh: unknown server $SPEC" >&2; exit 1 ;;
esac
[ -x "$BIN" ] || { echo "profile.sh: no executable $BIN (run bench/load/run.sh once, or build it)" >&2; exit 1; }
mkdir -p "$HERE/results"
OUT=${OUT:-$HERE/results/profile-$TOOL-$NAME-$SCENARIO}
SCRIPT=$HERE/scenarios/$SCENARIO.lua
load() { taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"$1s" -s "$SCRIPT" "http://127.0.0.1:$PORT"; }
listening() {
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=0.2).close()" "$PORT" 2>/dev/null
}

case $TOOL in
  callgrind)
    command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
    PORT=$PORT taskset -c "$SERVER_CPU" valgrind --tool=callgrind --instr-atstart=no \
      --callgrind-out-file="$OUT.callgrind" "$BIN" >"$OUT.log" 2>&1 &
    PID=$!
    trap 'kill -TERM $PID 2>/dev/null || true' EXIT
    until listening; do kill -0 $PID || exit 1; sleep 0.2; done
    load "$WARMUP" >/dev/null
    callgrind_control -i on $PID >/dev/null 2>&1
    load "$DURATION" >"$OUT.wrk"
    callgrind_control -i off $PID >/dev/null 2>&1
    kill -TERM $PID; wait $PID || true
    trap - EXIT
    requests=$(awk '/ requests in / { print $1 }' "$OUT.wrk")
    total=$(callgrind_annotate "$OUT.callgrind" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    echo "$NAME $SCENARIO: $requests requests, $total instructions, $((total / requests)) per request ($OUT.callgrind)"
    ;;
  perf)
    command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install -y linux-perf)" >&2; exit 1; }
    PORT=$PORT taskset -c "$SERVER_CPU" "$BIN" >"$OUT.log" 2>&1 &
    PID=$!
    trap 'kill -TERM $PID 2>/dev/null || true' EXIT
    until listening; do kill -0 $PID || exit 1; sleep 0.1; done
    load "$WARMUP" >/dev/null
    load "$DURATION" >"$OUT.wrk" &
    WRK=$!
    perf record -e cpu-clock -F "${FREQ:-2000}" -g -p $PID -o "$OUT.perf" -- sleep $((DURATION - 1)) >/dev/null 2>&1
    wait $WRK
    kill -TERM $PID; wait $PID || true
    trap - EXIT
    echo "$NAME $SCENARIO: $(awk '/^Requests\/sec:/ { print $2 }' "$OUT.wrk") requests/s; perf report -i $OUT.perf --no-children --sort dso,sym"
    ;;
  *) echo "profile.sh: tool is callgrind or perf" >&2; exit 1 ;;
esac
