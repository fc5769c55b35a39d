#!/usr/bin/env bash
# What auditing costs (issue #5), in one invocation: one node's data directory, seeded to
# N studies (default 200 000), restarted alternately with audit on and off
# (IMAGING_GATEWAY_AUDIT), three times each: the token lookup in a closed loop with
# CONNECTIONS (default 256, enough to keep the node's CPU busy, so the figure is
# throughput rather than latency), medians compared; then ingest of 100 000 more studies
# (1 000 per batch) once each way. Not a test.
#
# The node runs with its default event loops (one per core) unless LOOPS says otherwise:
# lookups run their handlers on the loops (RouteHandler.awaiting), so one loop on two
# cores would measure a node configured below its default.
#
# usage: Benchmarks/audit-bench.sh        STUDIES=200000 DURATION=10 [LOOPS=N]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_out audit-bench
studies=${STUDIES:-200000}
duration=${DURATION:-10}
port=19843; plain=19880
start() { IMAGING_GATEWAY_AUDIT=$1 start_node "$port" "$plain" ${LOOPS:+--loops "$LOOPS"}; } # audit on|off
as() { echo "--ca $c/ca.pem --cert $c/$1.pem --key $c/$1-key.pem"; }
rate() { python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]; print(s['achievedRate'], s['latencyMs']['p99'])" "$1/results.json"; }
ingest() { "$bench" seed "https://127.0.0.1:$port" --from "$1" --count 100000 $(as node) 2>/dev/null | tail -1 | grep -oE '[0-9]+ studies/s' | grep -oE '^[0-9]+'; }
lookup() {
  "$bench" "https://127.0.0.1:$port" --scenario token-lookup --mode closed --connections "${CONNECTIONS:-256}" \
    --duration "$duration" --warmup 2 \
    $(as clinic) --server-pid "$gw_pid" --out "$out/$1" >/dev/null 2>&1
  rate "$out/$1"
}

start off
echo "seeding $studies studies (audit off, so both runs start from the same index)"
"$bench" seed "https://127.0.0.1:$port" --count "$studies" $(as node) >/dev/null 2>&1
stop_node

on_rates=(); off_rates=(); on_p99s=(); off_p99s=()
for round in 1 2 3; do
  start on
  read -r r p <<<"$(lookup "lookup-on-$round")"; on_rates+=("$r"); on_p99s+=("$p")
  stop_node
  start off
  read -r r p <<<"$(lookup "lookup-off-$round")"; off_rates+=("$r"); off_p99s+=("$p")
  stop_node
done
start on
on_ingest=$(ingest "$studies")
stop_node
start off
off_ingest=$(ingest $((studies + 100000)))
stop_node
python3 - "${on_rates[*]}" "${off_rates[*]}" "${on_p99s[*]}" "${off_p99s[*]}" "$on_ingest" "$off_ingest" <<'PY'
import statistics, sys
on, off, onp, offp = ([float(x) for x in a.split()] for a in sys.argv[1:5])
ion, ioff = float(sys.argv[5]), float(sys.argv[6])
m_on, m_off = statistics.median(on), statistics.median(off)
print("lookup  audit on  " + ", ".join(f"{x:.0f}" for x in on) + f" req/s (median {m_on:.0f}, p99 median {statistics.median(onp):.1f} ms)")
print("lookup  audit off " + ", ".join(f"{x:.0f}" for x in off) + f" req/s (median {m_off:.0f}, p99 median {statistics.median(offp):.1f} ms)")
print(f"lookup  audit cost {100*(1-m_on/m_off):.1f} % of throughput (target <= 15 %)")
print(f"ingest  audit on {ion:.0f} studies/s, off {ioff:.0f} studies/s: cost {100*(1-ion/ioff):.1f} %")
PY
