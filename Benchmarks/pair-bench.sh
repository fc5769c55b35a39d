#!/usr/bin/env bash
# Two builds (or two settings) of the node measured at the same time, for a comparison
# that a drifting machine cannot spoil. One data directory is seeded to N studies
# (default 200 000) by build A and copied twice each round; build A starts on one copy
# and build B on the other, both are loaded at once with the same scenario in a closed
# loop, and each node's rate and CPU per request are read over the same seconds. The
# copies change places every round.
# Reported: each round's figures and B/A ratios, and their medians. Not a test.
#
# Why at the same time: on this shared 2-core machine the same build's CPU per lookup
# moved by 30 % between rounds minutes apart, so builds measured one after the other
# differed by whatever the machine did between them. Loaded together, both nodes share
# the machine's state: an A/A run of this script (6 rounds of 10 s) gave CPU ratios of
# 0.990–1.017 a round.
# The nodes contend for the cores, so each one's CPU per request is higher than alone:
# read the ratios, not the absolute figures.
#
# usage: A=PATH B=PATH Benchmarks/pair-bench.sh
#   A_ENV / B_ENV  settings for one side, e.g. B_ENV=IMAGING_GATEWAY_AUDIT=off
#   A, B           node binaries (default: this checkout's release build, both)
#   SCENARIO=token-lookup CONNECTIONS=128 (per node) DURATION=10 ROUNDS=6 STUDIES=200000
#   RATE=N         an open loop at N requests/s on each side instead (for p99 at a load)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_out pair-bench
scenario=${SCENARIO:-token-lookup}
connections=${CONNECTIONS:-128}
duration=${DURATION:-10}
declare -A build=([A]=${A:-$gw} [B]=${B:-$gw}) settings=([A]=${A_ENV:-} [B]=${B_ENV:-})
declare -A port=([A]=19943 [B]=19945) plain=([A]=19980 [B]=19982) pid=()

# Seeded by build A, and copied afresh for both sides every round: a newer B migrates its
# copy when it starts, which an older A could not open in the next round.
gw=${build[A]} node_dir=$out/seed start_node "${port[A]}" "${plain[A]}"
echo "seeding ${STUDIES:-200000} studies, then copying them: both nodes start from the same index"
"$bench" seed "https://127.0.0.1:${port[A]}" --count "${STUDIES:-200000}" --ca "$c/ca.pem" --cert "$c/node.pem" \
  --key "$c/node-key.pem" >/dev/null 2>&1
stop_node

# load SIDE NAME SECONDS WARMUP: one run against one side, in the background (`loads`,
# for `wait`: the nodes are background jobs too).
loads=()
if [ -n "${RATE:-}" ]; then mode=(--mode open --rate "$RATE"); else mode=(--mode closed --connections "$connections"); fi
load() {
  local c=$out/copy-${copy[$1]}/dev-certs
  "$bench" "https://127.0.0.1:${port[$1]}" --scenario "$scenario" "${mode[@]}" \
    --duration "$3" --warmup "$4" --ca "$c/ca.pem" --cert "$c/clinic.pem" --key "$c/clinic-key.pem" \
    --server-pid "${pid[$1]}" --out "$out/$2" >/dev/null 2>&1 &
  loads+=($!)
}

# start_side SIDE: that side's build, with its settings exported to it alone.
start_side() {
  local setting
  for setting in ${settings[$1]}; do declare -x "$setting"; done
  gw=${build[$1]} node_dir=$out/copy-${copy[$1]} start_node "${port[$1]}" "${plain[$1]}"
  pid[$1]=$gw_pid
}

declare -A copy=()
rounds=()
for round in $(seq "${ROUNDS:-6}"); do
  copy=([A]=$(((round % 2) + 1)) [B]=$((2 - (round % 2))))
  for n in 1 2; do rm -rf "$out/copy-$n"; cp -a "$out/seed" "$out/copy-$n"; done
  start_side A
  start_side B
  load A warm-A 3 0; load B warm-B 3 0; wait "${loads[@]}"; loads=()
  load A round-$round-A "$duration" 1; load B round-$round-B "$duration" 1; wait "${loads[@]}"; loads=()
  rounds+=("$out/round-$round-A/results.json" "$out/round-$round-B/results.json")
  stop_all
  started=()
done

python3 - "${rounds[@]}" <<'PY'
import json, statistics, sys
def figures(path):
    s = json.load(open(path))['stages'][0]
    return s['achievedRate'], s['server']['cpuPercent'] * 1e4 / max(s['achievedRate'], 1), s['latencyMs']['p99']
rate_ratios, cpu_ratios = [], []
for i in range(0, len(sys.argv) - 1, 2):
    (ra, ca, pa), (rb, cb, pb) = figures(sys.argv[i + 1]), figures(sys.argv[i + 2])
    rate_ratios.append(rb / ra); cpu_ratios.append(cb / ca)
    print(f"round {i // 2 + 1}: A {ra:.0f} req/s {ca:.0f} us/req p99 {pa:.1f} ms | B {rb:.0f} req/s {cb:.0f} us/req p99 {pb:.1f} ms"
          f" | B/A rate {rb / ra:.3f}, CPU per request {cb / ca:.3f}")
med = statistics.median
print(f"median B/A: rate {med(rate_ratios):.3f}, CPU per request {med(cpu_ratios):.3f}")
PY
