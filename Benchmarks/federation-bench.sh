#!/usr/bin/env bash
# Federation figures (issue #6) in one invocation, on scripts/dev-cluster.sh's four nodes:
# gathering throughput (region 610000 ingests N studies, default 100 000; how fast they
# reach the national node against the regional ingest rate); lookups of those patients
# at region 110000, which holds nothing itself (scope all: its store and the national
# node), against local lookups at 610000 in the same run; then the same cross-region
# lookup with the national node stalled (SIGSTOP). Last, capacities apart: while the
# national node is still stopped the region ingests N more studies (its ingest rate with
# the machine to itself, the outbox filling), then the national node resumes and the
# outbox drains with the machine to itself (the rate from the first acknowledged batch to
# an empty outbox). The first figure has the region, the national node and the generator
# sharing two cores at once; the second is what "the outbox never grows without bound"
# asks of nodes on machines of their own. Not a test.
#
# usage: Benchmarks/federation-bench.sh        STUDIES=100000 DURATION=10
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/Benchmarks/out/federation-bench
studies=${STUDIES:-100000}
duration=${DURATION:-10}
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
bench=$root/.build/release/gateway-bench
rm -rf "$out"
mkdir -p "$out"
export DIR=$out/cluster BIN=$root/.build/release/imaging-gateway
scripts/dev-cluster.sh start >/dev/null
trap 'kill -CONT "$(cat "$DIR/national.pid")" 2>/dev/null || true; scripts/dev-cluster.sh stop' EXIT
c=$DIR/national/dev-certs
as() { echo "--ca $c/ca.pem --cert $c/$1.pem --key $c/$1-key.pem"; }
lag() { curl -sf --cacert "$c/ca.pem" https://localhost:9444/readyz | python3 -c "import json,sys; print(json.load(sys.stdin)['gathering']['lagRecords'])"; }

start=$(date +%s.%N)
"$bench" seed https://127.0.0.1:9444 --count "$studies" $(as node) 2>/dev/null | tail -1 | tee "$out/ingest.txt"
ingested=$(date +%s.%N)
while [ "$(lag)" != 0 ]; do sleep 0.2; done
gathered=$(date +%s.%N)

run() { # name url scenario extra...
  local name=$1 url=$2 scenario=$3; shift 3
  "$bench" "$url" --scenario "$scenario" --duration "$duration" --warmup 2 $(as clinic) --out "$out/$name" "$@" >/dev/null 2>&1
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]; print(s['achievedRate'], s['latencyMs']['p99'])" "$out/$name/results.json"
}
read -r local_rate local_p99 <<<"$(run local https://127.0.0.1:9444 token-lookup-local --mode closed --connections 32)"
read -r cross_rate cross_p99 <<<"$(run cross https://127.0.0.1:9445 token-lookup --mode closed --connections 32)"
kill -STOP "$(cat "$DIR/national.pid")"
read -r stalled_rate stalled_p99 <<<"$(run stalled https://127.0.0.1:9445 token-lookup --mode open --rate 50)"
"$bench" seed https://127.0.0.1:9444 --from "$studies" --count "$studies" $(as node) 2>/dev/null | tail -1 | tee "$out/ingest-alone.txt"
alone_ingest=$(grep -oE '[0-9]+ studies/s' "$out/ingest-alone.txt" | grep -oE '^[0-9]+')
backlog=$(lag)
kill -CONT "$(cat "$DIR/national.pid")"
while [ "$(lag)" -ge "$backlog" ]; do sleep 0.05; done
drain_start=$(date +%s.%N); drain_from=$(lag)
while [ "$(lag)" != 0 ]; do sleep 0.05; done
drain_end=$(date +%s.%N)
python3 - "$studies" "$start" "$ingested" "$gathered" "$local_rate" "$local_p99" "$cross_rate" "$cross_p99" "$stalled_rate" "$stalled_p99" \
  "$alone_ingest" "$drain_from" "$drain_start" "$drain_end" <<'PY'
import sys
n = int(sys.argv[1]); start, ingested, gathered = map(float, sys.argv[2:5])
lr, lp, cr, cp, sr, sp = map(float, sys.argv[5:11])
alone, drained, d0, d1 = float(sys.argv[11]), int(sys.argv[12]), float(sys.argv[13]), float(sys.argv[14])
ingest = n / (ingested - start); gather = n / (gathered - start)
print(f"gathering  {n} studies: regional ingest {ingest:.0f}/s, at the national node after {gathered - start:.1f} s = {gather:.0f}/s ({gather/ingest:.2f} x ingest; target >= 1, the outbox drained {gathered - ingested:.1f} s after the last upload)")
print(f"lookup     local (610000, scope local) {lr:.0f} req/s p99 {lp:.2f} ms")
print(f"lookup     cross-region (110000 -> national) {cr:.0f} req/s p99 {cp:.2f} ms: {cr/lr:.2f} x local (target >= 0.4), p99 {cp/lp:.1f} x local (target <= 3)")
print(f"lookup     national stalled, 50/s open loop: p99 {sp:.1f} ms (deadline 800 ms; target <= 810)")
print(f"capacity   regional ingest alone {alone:.0f}/s; outbox drained alone {drained / (d1 - d0):.0f}/s ({drained} records in {d1 - d0:.1f} s): "
      f"{drained / (d1 - d0) / alone:.2f} x ingest (target >= 1)")
PY
