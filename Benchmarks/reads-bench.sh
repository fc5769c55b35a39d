#!/usr/bin/env bash
# Read-queue throughput (issue #7): full cycles per second — a clinic creates a workitem,
# the node's AI stage (stub engine) triages it, one of READERS (default 8) readers claims
# it with POST /v1/reads/next and completes it — every step durable. The reference in the
# same invocation is the node's plain token lookup (one durable audit leaf per request),
# run closed-loop with as many connections as the cycle uses. Alternates three rounds of
# each and reports medians and the reads/next p99. Not a test.
#
# usage: Benchmarks/reads-bench.sh        DURATION=10 READERS=8 CREATORS=16 AI_WORKERS=16
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_out reads-bench
duration=${DURATION:-10}
readers=${READERS:-8}
creators=${CREATORS:-16}
port=19943; plain=19980
cat >"$out/config.json" <<JSON
{"reads": {"aiStage": "node", "aiWorkers": ${AI_WORKERS:-16}, "engine": {"kind": "stub"}}}
JSON
start_node "$port" "$plain" --config "$out/config.json"
"$bench" seed "https://127.0.0.1:$port" --count 1000 --ca "$c/ca.pem" --cert "$c/node.pem" --key "$c/node-key.pem" >/dev/null 2>&1

cycles=(); nexts=(); lookups=()
for round in 1 2 3; do
  "$bench" reads "https://127.0.0.1:$port" --certs "$c" --readers "$readers" --creators "$creators" --duration "$duration" \
    --out "$out/reads-$round.json" | tee -a "$out/summary.txt"
  read -r r p <<<"$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['cyclesPerSecond'], d['nextP99Ms'])" "$out/reads-$round.json")"
  cycles+=("$r"); nexts+=("$p")
  "$bench" "https://127.0.0.1:$port" --scenario token-lookup --mode closed --connections $((readers + creators)) \
    --duration "$duration" --warmup 2 --ca "$c/ca.pem" --cert "$c/clinic.pem" --key "$c/clinic-key.pem" \
    --server-pid "$gw_pid" --out "$out/lookup-$round" >/dev/null 2>&1
  lookups+=("$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['stages'][0]['achievedRate'])" "$out/lookup-$round/results.json")")
done
python3 - "${cycles[*]}" "${nexts[*]}" "${lookups[*]}" <<'PY'
import statistics, sys
cycles, nexts, lookups = ([float(x) for x in a.split()] for a in sys.argv[1:4])
mc, ml = statistics.median(cycles), statistics.median(lookups)
print("read cycles/s  " + ", ".join(f"{x:.0f}" for x in cycles) + f" (median {mc:.0f}; target >= 5000)")
print("reads/next p99 " + ", ".join(f"{x:.2f}" for x in nexts) + f" ms (median {statistics.median(nexts):.2f} ms)")
print("token lookup   " + ", ".join(f"{x:.0f}" for x in lookups) + f" req/s (median {ml:.0f})")
print(f"a cycle is 3 client requests and 4 durable transitions: {3 * mc / ml:.2f} x the lookup's request rate")
PY
