#!/usr/bin/env bash
# Federation figures (issue #6) in one invocation, on Benchmarks/dev-cluster.sh's four nodes:
# gathering throughput (region 610000 ingests N studies, default 100 000; how fast they
# reach the national node against the regional ingest rate); lookups of those patients
# at region 110000, which holds nothing itself (scope all: its store and the national
# node), against local lookups at 610000, two rounds alternating; then the same
# cross-region lookup with the national node stalled (SIGSTOP). Last, capacities apart:
# while the national node is still stopped the region ingests N more studies (its ingest
# rate with the machine to itself, the outbox filling), then the national node resumes
# and the outbox drains with the machine to itself (the rate from the first acknowledged
# batch to an empty outbox); and once more with each receiver on a core of its own and its
# sender on the other. The first figure has the region, the national node and the
# generator sharing two cores at once; the last two are what "the outbox never grows
# without bound" asks of nodes on machines of their own. Not a test.
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
Benchmarks/dev-cluster.sh start >/dev/null
trap 'kill -CONT "$(cat "$DIR/national.pid")" 2>/dev/null || true; Benchmarks/dev-cluster.sh stop' EXIT
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
# Two rounds, alternating, so that a swing of the shared machine shows as a difference
# between rounds instead of passing for the ratio. (In the first round the asking node's
# WAL grows into new file blocks, which the kernel zeroes as it goes, 4.5 % of that node's
# CPU in one profile, where the reference node reuses the WAL its ingest grew; the two
# rounds' ratios have not differed by more than their spread.)
rounds=""
for round in 1 2; do
  read -r local_rate local_p99 <<<"$(run local-$round https://127.0.0.1:9444 token-lookup-local --mode closed --connections 32)"
  read -r cross_rate cross_p99 <<<"$(run cross-$round https://127.0.0.1:9445 token-lookup --mode closed --connections 32)"
  rounds="$rounds $local_rate $local_p99 $cross_rate $cross_p99"
done
kill -STOP "$(cat "$DIR/national.pid")"
read -r stalled_rate stalled_p99 <<<"$(run stalled https://127.0.0.1:9445 token-lookup --mode open --rate 50)"
# capacity NAME FROM [PREFIX…]: with the national node stopped, the region ingests N more
# studies from number FROM (the generator run under PREFIX), its outbox filling; then the
# national node resumes and the outbox drains. Prints the ingest rate, the records drained
# from the first acknowledged batch on, and when that drain began and ended.
capacity() {
  local name=$1 from=$2 rate backlog drained t0 t1
  shift 2
  kill -STOP "$(cat "$DIR/national.pid")"
  "$@" "$bench" seed https://127.0.0.1:9444 --from "$from" --count "$studies" $(as node) 2>/dev/null | tail -1 \
    >"$out/ingest-$name.txt"
  rate=$(grep -oE '[0-9]+ studies/s' "$out/ingest-$name.txt" | grep -oE '^[0-9]+')
  backlog=$(lag)
  kill -CONT "$(cat "$DIR/national.pid")"
  while [ "$(lag)" -ge "$backlog" ]; do sleep 0.05; done
  t0=$(date +%s.%N); drained=$(lag)
  while [ "$(lag)" != 0 ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  echo "$rate $drained $t0 $t1"
}
read -r alone_ingest drain_from drain_start drain_end <<<"$(capacity alone "$studies")"
# The same two capacities with each receiver given a core of its own and its sender the
# other: the region's node on CPU 0 taking uploads from the generator on CPU 1, then the
# national node on CPU 1 taking the outbox from the region's node on CPU 0 (the idle
# regions stay on CPU 0). Sharing both cores, the drain above also pays for the region's
# reading, compressing and sending on the national node's cores; here each side of the
# comparison has what a node on a machine of its own has: its sender elsewhere.
pin() { taskset -apc "$1" "$(cat "$DIR/$2.pid")" >/dev/null; }
for node in 610000 110000 440000; do pin 0 "$node"; done
pin 1 national
read -r pinned_ingest pinned_from pinned_start pinned_end <<<"$(capacity pinned $((2 * studies)) taskset -c 1)"
python3 - "$studies" "$start" "$ingested" "$gathered" "$stalled_rate" "$stalled_p99" \
  "$alone_ingest" "$drain_from" "$drain_start" "$drain_end" "$pinned_ingest" "$pinned_from" "$pinned_start" "$pinned_end" \
  $rounds <<'PY'
import sys
n = int(sys.argv[1]); start, ingested, gathered = map(float, sys.argv[2:5])
sr, sp = map(float, sys.argv[5:7])
alone, drained, d0, d1 = float(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9]), float(sys.argv[10])
p_ingest, p_drained, p0, p1 = float(sys.argv[11]), int(sys.argv[12]), float(sys.argv[13]), float(sys.argv[14])
rounds = list(map(float, sys.argv[15:]))
ingest = n / (ingested - start); gather = n / (gathered - start)
print(f"gathering  {n} studies: regional ingest {ingest:.0f}/s, at the national node after {gathered - start:.1f} s = {gather:.0f}/s ({gather/ingest:.2f} x ingest; target >= 1, the outbox drained {gathered - ingested:.1f} s after the last upload)")
for r in range(len(rounds) // 4):
    lr, lp, cr, cp = rounds[4 * r:4 * r + 4]
    print(f"lookup     round {r + 1}: local (610000, scope local) {lr:.0f} req/s p99 {lp:.2f} ms; cross-region (110000 -> national) "
          f"{cr:.0f} req/s p99 {cp:.2f} ms: {cr/lr:.2f} x local (target >= 0.4), p99 {cp/lp:.1f} x local (target <= 3)")
print(f"lookup     national stalled, 50/s open loop: p99 {sp:.1f} ms (deadline 800 ms; target <= 810)")
print(f"capacity   regional ingest alone {alone:.0f}/s; outbox drained alone {drained / (d1 - d0):.0f}/s ({drained} records in {d1 - d0:.1f} s): "
      f"{drained / (d1 - d0) / alone:.2f} x ingest (target >= 1)")
print(f"capacity   a core each: regional ingest {p_ingest:.0f}/s (generator on the other core); outbox drained {p_drained / (p1 - p0):.0f}/s "
      f"({p_drained} records in {p1 - p0:.1f} s, the region sending from the other core): {p_drained / (p1 - p0) / p_ingest:.2f} x ingest (target >= 1)")
PY
