#!/usr/bin/env bash
# The upstream under load: our bench server beside a bare axum app, on
# 127.0.0.1, with wrk. See bench/README.md ("The upstream under load").
#
#   bash bench/load/run.sh                 # ours and baseline, REPS=5
#   bash bench/load/run.sh ours baseline before=/path/to/an/older/bench_server
#
# A server is `ours` (target/release/examples/bench_server, built here),
# `baseline` (axum-baseline/, built here) or NAME=BINARY (any server that
# follows bench_server's contract: listens on 127.0.0.1:$PORT, serves
# $BENCH_PATH, checks signatures with $BENCH_ACCESS_KEY; a NAME starting
# with `baseline` is checked as a baseline: 200s only).
#
# Each sample: start the server (pinned to SERVER_CPU), check it with
# `events.py verify` (the baseline: 200s; the others: event-handler answers
# and a refused bad signature), WARMUP seconds of unrecorded load, DURATION
# seconds of wrk (pinned to WRK_CPU), stop the server by its PID. The order
# is rep > scenario > server, and every other rep runs the servers in the
# reverse order (A B, B A, A B, ...), so drift in the machine's load falls on
# both alike. The main figure is the server's CPU time (user + system, from
# /proc/PID/stat) per request: it does not depend on how fast wrk is.
#
# Knobs (environment):
#   REPS=5 DURATION=10 WARMUP=2           reps; seconds per sample
#   SCENARIOS="connect message preflight" scenarios/<name>.lua
#   THREADS=1 CONNS=32                    wrk -t / -c
#   PIN=1 WRK_CPU=0 SERVER_CPU=1          PIN=0 lets both float
#   PORT=18090                            the first port tried
#   BUILD=1                               BUILD=0 uses the binaries as they are
#   OURS_BIN=<repo>/target/release/examples/bench_server
#   OUT=bench/load/results/<UTC time>.tsv raw samples; the summary is printed
#   BENCH_ACCESS_KEY, BENCH_CONNECTION_ID, BENCH_HUB, BENCH_PATH
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

REPS=${REPS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
SCENARIOS=${SCENARIOS:-"connect message preflight"}
THREADS=${THREADS:-1}
CONNS=${CONNS:-32}
PIN=${PIN:-1}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PORT=${PORT:-18090}
BUILD=${BUILD:-1}
OURS_BIN=${OURS_BIN:-$ROOT/target/release/examples/bench_server}
BASELINE_BIN=$HERE/axum-baseline/target/release/axum-baseline
export BENCH_ACCESS_KEY=${BENCH_ACCESS_KEY:-anAccessKeyForBenchmarks0123456789}
export BENCH_CONNECTION_ID=${BENCH_CONNECTION_ID:-bench-conn-0001}
export BENCH_HUB=${BENCH_HUB:-chat}
export BENCH_PATH=${BENCH_PATH:-/api/webpubsub/hubs/$BENCH_HUB/}
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(ours baseline)

die() { echo "run.sh: $*" >&2; exit 1; }
[[ $REPS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ ]] \
  || die "REPS and DURATION are positive whole numbers, WARMUP a whole number"

# --- tools ---------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  command -v apt-get >/dev/null || die "wrk not found; install it (Debian/Ubuntu: apt-get install -y wrk)"
  echo "# installing wrk with apt-get"
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
for tool in wrk python3 taskset; do command -v $tool >/dev/null || die "$tool not found"; done
if [ "$PIN" = 1 ] && [ "$(nproc)" -lt 2 ]; then echo "# fewer than 2 CPUs: PIN=0" >&2; PIN=0; fi
pin_to() { # cpu -> the words that run a command on it (none when PIN=0)
  if [ "$PIN" = 1 ]; then echo "taskset -c $1"; fi
}
export BENCH_SIGNATURE
BENCH_SIGNATURE=$(python3 "$HERE/events.py" sign)

# --- servers -------------------------------------------------------------------
binary_of() {
  case $1 in
    ours) echo "$OURS_BIN" ;;
    baseline) echo "$BASELINE_BIN" ;;
    *=*) echo "${1#*=}" ;;
    *) die "unknown server '$1' (ours, baseline or NAME=BINARY)" ;;
  esac
}
name_of() { echo "${1%%=*}"; }
if [ "$BUILD" = 1 ]; then
  for s in "${SERVERS[@]}"; do
    case $s in
      ours) [ "$OURS_BIN" = "$ROOT/target/release/examples/bench_server" ] \
              && (cd "$ROOT" && cargo build --release --quiet --example bench_server) ;;
      baseline) cargo build --release --quiet --manifest-path "$HERE/axum-baseline/Cargo.toml" ;;
    esac
  done
fi
for s in "${SERVERS[@]}"; do
  [ -x "$(binary_of "$s")" ] || die "$(name_of "$s"): no executable $(binary_of "$s")"
done

SERVER_PID=""
start_server() { # spec port log
  # No function or subshell in between: taskset execs the binary, so $! is
  # the server process itself.
  PORT=$2 $(pin_to "$SERVER_CPU") "$(binary_of "$1")" >"$3" 2>&1 </dev/null &
  SERVER_PID=$!
  local tries=0
  until python3 - "$2" <<'EOF' 2>/dev/null
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
EOF
  do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$3" >&2; die "$(name_of "$1") exited while starting"; }
    tries=$((tries + 1))
    [ $tries -lt 150 ] || { stop_server; die "$(name_of "$1") did not listen on port $2 within 15 s"; }
    sleep 0.1
  done
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}
while ! port_free "$PORT"; do PORT=$((PORT + 1)); done

TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# --- measuring -----------------------------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
peak_rss_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"; }
ms() { # a wrk duration (812.00us, 1.20ms, 2.00s) in ms
  awk -v t="$1" 'BEGIN { n = t + 0
    if (t ~ /us$/) n /= 1000; else if (t ~ /ms$/) ; else if (t ~ /m$/) n *= 60000; else if (t ~ /s$/) n *= 1000
    printf "%.3f", n }'
}
wrk_run() { # scenario port seconds out -> prints wrk's user+sys CPU seconds
  local TIMEFORMAT='%U %S'
  { time $(pin_to "$WRK_CPU") wrk -t"$THREADS" -c"$CONNS" -d"$3s" --latency \
      -s "$HERE/scenarios/$1.lua" "http://127.0.0.1:$2" >"$4" 2>&1; } 2>"$4.time" || true
  awk '{ print $1 + $2 }' "$4.time"
}

mkdir -p "$HERE/results"
OUT=${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).tsv}
printf 'rep\tscenario\tserver\tok\trps\trequests\tp50_ms\tp99_ms\terrors\tserver_cpu_s\tcpu_us_per_req\tserver_cpu_pct\twrk_cpu_pct\trss_peak_kb\n' >"$OUT"
{
  echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# wrk -t$THREADS -c$CONNS -d${DURATION}s after ${WARMUP}s warm-up; PIN=$PIN (wrk CPU $WRK_CPU, server CPU $SERVER_CPU)"
  echo "# servers: ${SERVERS[*]}; scenarios: $SCENARIOS; reps: $REPS"
  echo "# samples: $OUT"
} | tee "$OUT.txt"

for rep in $(seq "$REPS"); do
  order=("${SERVERS[@]}")
  if [ $((rep % 2)) = 0 ]; then
    order=(); for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[$i]}"); done
  fi
  for sc in $SCENARIOS; do
    [ -f "$HERE/scenarios/$sc.lua" ] || die "no scenario $HERE/scenarios/$sc.lua"
    for spec in "${order[@]}"; do
      name=$(name_of "$spec")
      start_server "$spec" "$PORT" "$TMP/server.log"
      ok=1 why=""
      mode=(); [[ $name == baseline* ]] && mode=(--baseline)
      if ! python3 "$HERE/events.py" verify "http://127.0.0.1:$PORT" "${mode[@]}" >"$TMP/verify" 2>&1; then
        ok=0 why=" verify failed"; sed 's/^/   /' "$TMP/verify"
      fi
      [ "$WARMUP" = 0 ] || wrk_run "$sc" "$PORT" "$WARMUP" "$TMP/warmup" >/dev/null
      c0=$(cpu_ticks "$SERVER_PID")
      wrk_s=$(wrk_run "$sc" "$PORT" "$DURATION" "$TMP/wrk")
      c1=$(cpu_ticks "$SERVER_PID")
      rss=$(peak_rss_kb "$SERVER_PID")
      kill -0 "$SERVER_PID" 2>/dev/null || { ok=0 why="$why died"; }
      stop_server
      w=$TMP/wrk
      rps=$(awk '/^Requests\/sec:/ { print $2 }' "$w")
      requests=$(awk '/ requests in / { print $1 }' "$w")
      secs=$(awk '/ requests in / { sub(/s,$/, "", $4); print $4 + 0 }' "$w")
      p50=$(ms "$(awk '$1 == "50%" { print $2 }' "$w")")
      p99=$(ms "$(awk '$1 == "99%" { print $2 }' "$w")")
      errors=$(awk '/Non-2xx or 3xx responses:/ { n += $5 } /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$w")
      if [ -z "$rps" ] || [ -z "$requests" ] || [ "$requests" = 0 ]; then
        ok=0 why="$why no wrk figures"; sed 's/^/   /' "$w"; rps=0 requests=0 secs=$DURATION
      fi
      [ "$errors" = 0 ] || { ok=0 why="$why $errors errors"; }
      read -r cpu_s us_req srv_pct wrk_pct < <(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" \
        -v n="$requests" -v d="$secs" -v w="$wrk_s" 'BEGIN { s = c / hz
          printf "%.2f %.2f %.0f %.0f\n", s, (n > 0 ? s / n * 1e6 : 0), s / d * 100, w / d * 100 }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$sc" "$name" "$ok" "$rps" \
        "$requests" "$p50" "$p99" "$errors" "$cpu_s" "$us_req" "$srv_pct" "$wrk_pct" "$rss" >>"$OUT"
      printf 'rep %s %-9s %-10s %9s req/s  %6s us/req  server %3s%%  wrk %3s%%  p99 %6s ms  peak RSS %5s KiB%s\n' \
        "$rep" "$sc" "$name" "$rps" "$us_req" "$srv_pct" "$wrk_pct" "$p99" "$rss" \
        "$([ "$ok" = 1 ] || echo "  INVALID:$why")" | tee -a "$OUT.txt"
    done
  done
done

echo | tee -a "$OUT.txt"
python3 "$HERE/summarize.py" "$OUT" | tee -a "$OUT.txt"
