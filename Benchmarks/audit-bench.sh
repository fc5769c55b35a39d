#!/usr/bin/env bash
# What auditing costs (issue #5), in one invocation. One data directory is seeded to N
# studies (default 200 000) and copied; two nodes then run side by side on the two
# identical copies, one with audit on and one with it off (IMAGING_GATEWAY_AUDIT). Both are
# warmed, then measured in ROUNDS rounds (default 5), the order swapped every round so that
# a drift of the machine falls on both alike: the token lookup in a closed loop with
# CONNECTIONS (default 256, enough to keep the machine's CPU busy, so the figure is
# throughput rather than latency). Reported: the median rates, audit's cost from them and
# the median of the rounds' paired costs, and the node's CPU per lookup each way. Last,
# 100 000 more studies (1 000 per batch) are uploaded to each. Not a test.
#
# Why two warm nodes rather than one restarted each way: a restarted node's first seconds
# run on cold caches, and on this shared 2-core machine three restarts each way gave
# paired costs from 1 % to 32 % within one invocation.
#
# The nodes run with their default event loops (one per core) unless LOOPS says otherwise:
# lookups run their handlers on the loops (RouteHandler.awaiting), so one loop on two
# cores would measure a node configured below its default.
#
# usage: Benchmarks/audit-bench.sh        STUDIES=200000 DURATION=10 ROUNDS=5 [LOOPS=N]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_out audit-bench
studies=${STUDIES:-200000}
duration=${DURATION:-10}
rounds=${ROUNDS:-5}
declare -A port=([on]=19843 [off]=19845) plain=([on]=19880 [off]=19882) pid=()
start() { IMAGING_GATEWAY_AUDIT=$1 node_dir=$out/node-$1 start_node "${port[$1]}" "${plain[$1]}" ${LOOPS:+--loops "$LOOPS"}; pid[$1]=$gw_pid; }
as() { echo "--ca $c/ca.pem --cert $c/$1.pem --key $c/$1-key.pem"; }
ingest() { "$bench" seed "https://127.0.0.1:${port[$1]}" --from "$2" --count 100000 $(as node) 2>/dev/null | tail -1 | grep -oE '[0-9]+ studies/s' | grep -oE '^[0-9]+'; }
# lookup on|off NAME SECONDS: rate, p99 and the node's CPU per lookup in µs.
lookup() {
  "$bench" "https://127.0.0.1:${port[$1]}" --scenario token-lookup --mode closed --connections "${CONNECTIONS:-256}" \
    --duration "$3" --warmup 2 $(as clinic) --server-pid "${pid[$1]}" --out "$out/$2" >/dev/null 2>&1
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]
print(s['achievedRate'], s['latencyMs']['p99'], s['server']['cpuPercent'] * 1e4 / max(s['achievedRate'], 1))" "$out/$2/results.json"
}

start off
echo "seeding $studies studies, then copying them: both nodes start from the same index"
"$bench" seed "https://127.0.0.1:${port[off]}" --count "$studies" $(as node) >/dev/null 2>&1
stop_node
cp -a "$out/node-off" "$out/node-on"
start off
start on
lookup on warm-on 3 >/dev/null
lookup off warm-off 3 >/dev/null

declare -A rates=() p99s=() cpus=()
for round in $(seq "$rounds"); do
  order="on off"
  [ $((round % 2)) -eq 0 ] && order="off on"
  for mode in $order; do
    read -r r p u <<<"$(lookup "$mode" "lookup-$mode-$round" "$duration")"
    rates[$mode]+="$r "; p99s[$mode]+="$p "; cpus[$mode]+="$u "
  done
done
on_ingest=$(ingest on "$studies")
off_ingest=$(ingest off "$studies")
stop_all
python3 - "${rates[on]}" "${rates[off]}" "${p99s[on]}" "${p99s[off]}" "${cpus[on]}" "${cpus[off]}" "$on_ingest" "$off_ingest" <<'PY'
import statistics, sys
on, off, onp, offp, onc, offc = ([float(x) for x in a.split()] for a in sys.argv[1:7])
ion, ioff = float(sys.argv[7]), float(sys.argv[8])
med = statistics.median
print("lookup  audit on  " + ", ".join(f"{x:.0f}" for x in on) + f" req/s (median {med(on):.0f}, p99 median {med(onp):.1f} ms)")
print("lookup  audit off " + ", ".join(f"{x:.0f}" for x in off) + f" req/s (median {med(off):.0f}, p99 median {med(offp):.1f} ms)")
paired = [100 * (1 - a / b) for a, b in zip(on, off)]
print(f"lookup  audit cost {100 * (1 - med(on) / med(off)):.1f} % of throughput from the medians; paired by round "
      + ", ".join(f"{x:.1f}" for x in paired) + f" % (median {med(paired):.1f} %) (target <= 15 %)")
print(f"lookup  node CPU per lookup: audit on {med(onc):.1f} us, off {med(offc):.1f} us (medians)")
print(f"ingest  audit on {ion:.0f} studies/s, off {ioff:.0f} studies/s: cost {100 * (1 - ion / ioff):.1f} %")
PY
