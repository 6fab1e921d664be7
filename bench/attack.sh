#!/usr/bin/env bash
# The attack scenarios of issues 10 and 21 against a release build of
# webpubsub-emulator: one fresh emulator process per scenario, on 127.0.0.1,
# one after the other.
# Prints a markdown table: scenario | RSS before | peak | after | still serving | notes.
#
#   bash bench/attack.sh                    # every scenario
#   bash bench/attack.sh idle-sockets       # one (or several) by name
#   bash bench/attack.sh issue21            # issue 21's scenarios (issue10: issue 10's)
#   EMULATOR_BIN=/abs/path/webpubsub-emulator bash bench/attack.sh   # another build
#   SOCKETS=500 UPGRADES=20000 bash bench/attack.sh                  # a quick run
#
# Knobs (environment):
#   EMULATOR_BIN   emulator to attack; unset: build this checkout's (release)
#   PORT           first port; scenario i uses PORT+i (default 18300)
#   SETTLE         seconds between the attacker's exit and the "after" sample (5)
#   RSS_LIMIT_MIB  the emulator is killed if its RSS passes this (6144)
#   NOFILE         file-descriptor limit of the emulator and the attacker (20000,
#                  or the hard limit if lower)
#   SLOW_NOFILE    the emulator's limit in slow-headers (1024, as in the issue)
#   EMULATOR_LOG   RUST_LOG of the emulator (info)
#   EMULATOR_ARGS  extra flags for the emulator, e.g. to raise its caps and
#                  measure what every socket costs:
#                  EMULATOR_ARGS="--max-connections 6000 --max-connections-per-user 6000"
#   OUT            where the logs and the table go (bench/attack/target/runs/<time>)
#   UPSTREAM_OFFSET  the scenarios that need an event handler (invoke-payloads,
#                  mqtt-user-props-panic) get the attacker's, on port
#                  PORT+i+UPSTREAM_OFFSET (1000), as hub `upstreamed`
#   and each scenario's counts and durations: see the top of
#   bench/attack/src/scenarios/<scenario>.rs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ISSUE10=(unauth-upgrades idle-sockets partial-frames non-reader many-groups slow-headers)
ISSUE21=(mqtt-takeover entra-default-secret mqtt-user-props-panic mqtt-server-subs mqtt-inflight
         detached-sessions connect-user-props invoke-payloads stream-group-names mqtt-keepalive-zero)
ALL=("${ISSUE10[@]}" "${ISSUE21[@]}")
SCENARIOS=()
for arg in "$@"; do
  case $arg in
    issue10) SCENARIOS+=("${ISSUE10[@]}") ;;
    issue21) SCENARIOS+=("${ISSUE21[@]}") ;;
    *) SCENARIOS+=("$arg") ;;
  esac
done
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=("${ALL[@]}")
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || { echo "unknown scenario '$s' (one of: ${ALL[*]})" >&2; exit 2; }
done

PORT=${PORT:-18300}
SETTLE=${SETTLE:-5}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-6144}
SLOW_NOFILE=${SLOW_NOFILE:-1024}
UPSTREAM_OFFSET=${UPSTREAM_OFFSET:-1000}
EMULATOR_LOG=${EMULATOR_LOG:-info}
read -r -a EMULATOR_ARGS <<<"${EMULATOR_ARGS:-}"
KEY=${ATTACK_KEY:-attackBenchAccessKey0123456789abcdef}
OUT=${OUT:-$ROOT/bench/attack/target/runs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=65536
NOFILE=${NOFILE:-$(( hard < 20000 ? hard : 20000 ))}
ulimit -n "$NOFILE"

if [[ -z ${EMULATOR_BIN:-} ]]; then
  echo "building the emulator (release)…" >&2
  (cd "$ROOT" && cargo build --release -p webpubsub-emulator >&2)
  EMULATOR_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/webpubsub-emulator
fi
[[ -x $EMULATOR_BIN ]] || { echo "no emulator at $EMULATOR_BIN" >&2; exit 1; }
echo "building the attacker…" >&2
CARGO_TARGET_DIR=$ROOT/bench/attack/target \
  cargo build --release --quiet --manifest-path "$ROOT/bench/attack/Cargo.toml" >&2
ATTACK=$ROOT/bench/attack/target/release/attack

# A /proc/<pid>/status field (VmRSS, VmHWM) in MiB, or "-" once the process is gone.
mib() {
  awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024; found = 1 } END { if (!found) print "-" }' \
    "/proc/$1/status" 2>/dev/null || echo "-"
}

# Kills the emulator if its RSS passes RSS_LIMIT_MIB; leaves the RSS seen in $2.
watchdog() {
  local pid=$1 flag=$2 kib
  while kill -0 "$pid" 2>/dev/null; do
    kib=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    if (( ${kib:-0} > RSS_LIMIT_MIB * 1024 )); then
      echo "$(( kib / 1024 ))" >"$flag"
      kill -9 "$pid"
      return
    fi
    sleep 0.2
  done
}

wait_ready() {
  local port=$1 pid=$2
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

TABLE=$OUT/table.md
{
  echo "| scenario | RSS before (MiB) | peak (MiB) | after (MiB) | still serving | notes |"
  echo "|---|---|---|---|---|---|"
} | tee "$TABLE"

i=0
for scenario in "${SCENARIOS[@]}"; do
  port=$(( PORT + i )); i=$(( i + 1 ))
  nofile=$NOFILE
  [[ $scenario == slow-headers ]] && nofile=$SLOW_NOFILE
  # The attacker's event handler, for the scenarios that need one.
  hub_args=() up_args=()
  case $scenario in
    invoke-payloads|mqtt-user-props-panic)
      up=$(( port + UPSTREAM_OFFSET ))
      hub_args=(--hub "upstreamed=http://127.0.0.1:$up/upstream")
      up_args=(--upstream "127.0.0.1:$up") ;;
  esac
  echo "== $scenario (port $port, emulator fd limit $nofile)" >&2
  (ulimit -n "$nofile"; RUST_LOG=$EMULATOR_LOG exec "$EMULATOR_BIN" --port "$port" --access-key "$KEY" \
     ${hub_args[@]+"${hub_args[@]}"} ${EMULATOR_ARGS[@]+"${EMULATOR_ARGS[@]}"}) \
    >"$OUT/$scenario.emulator.log" 2>&1 &
  pid=$!
  if ! wait_ready "$port" "$pid"; then
    stop "$pid"
    echo "| $scenario | - | - | - | no | the emulator did not start: see $OUT/$scenario.emulator.log |" | tee -a "$TABLE"
    continue
  fi
  sleep 1
  before=$(mib "$pid" VmRSS)
  flag=$OUT/$scenario.aborted
  watchdog "$pid" "$flag" &
  dog=$!

  notes=$("$ATTACK" "$scenario" --addr "127.0.0.1:$port" --key "$KEY" --pid "$pid" ${up_args[@]+"${up_args[@]}"} \
            2> >(tee "$OUT/$scenario.attack.log" >&2) | tail -n 1) || notes="the attacker failed (see $scenario.attack.log)"
  sleep "$SETTLE"
  after=$(mib "$pid" VmRSS)
  # The high-water mark over the emulator's life: the attack and the cleanup after it.
  peak=$(mib "$pid" VmHWM)
  if probe=$("$ATTACK" probe --addr "127.0.0.1:$port" --key "$KEY" 2>/dev/null); then
    serving=yes
  else
    serving=no
  fi
  kill "$dog" 2>/dev/null || true
  wait "$dog" 2>/dev/null || true
  stop "$pid"

  [[ -e $flag ]] && notes="ABORTED: RSS passed $RSS_LIMIT_MIB MiB ($(cat "$flag") MiB), emulator killed; $notes"
  full=$(grep -c 'send queue full' "$OUT/$scenario.emulator.log" || true)
  (( full > 0 )) && notes="$notes; log: 'send queue full' ×$full"
  panics=$(grep -c 'panicked' "$OUT/$scenario.emulator.log" || true)
  (( panics > 0 )) && notes="$notes; log: 'panicked' ×$panics"
  notes="$notes; probe: ${probe:-none}"
  echo "| $scenario | $before | $peak | $after | $serving | ${notes//|//} |" | tee -a "$TABLE"
done
echo "table: $TABLE" >&2
