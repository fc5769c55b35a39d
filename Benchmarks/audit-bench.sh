#!/usr/bin/env bash
# What auditing costs (issue #5), in one invocation: one node's data directory, seeded to
# N studies (default 200 000), measured twice — audit on, then the same node restarted
# with IMAGING_GATEWAY_AUDIT=off — for the token lookup (closed loop, 64 connections)
# and for ingest (100 000 more studies, 1 000 per batch). Not a test.
#
# usage: Benchmarks/audit-bench.sh        STUDIES=200000 DURATION=10 LOOPS=1
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/Benchmarks/out/audit-bench
studies=${STUDIES:-200000}
duration=${DURATION:-10}
port=19843; plain=19880
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
gw=$root/.build/release/imaging-gateway
bench=$root/.build/release/gateway-bench
rm -rf "$out"
mkdir -p "$out"
gw_pid=
start() { # audit on|off
  IMAGING_GATEWAY_AUDIT=$1 "$gw" serve --data-dir "$out/node" --listen "127.0.0.1:$port" --plain-listen "127.0.0.1:$plain" \
    --log-level warning --loops "${LOOPS:-1}" 2>>"$out/gateway.log" &
  gw_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$plain/readyz" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; }
trap 'kill $gw_pid 2>/dev/null || true' EXIT
c=$out/node/dev-certs
as() { echo "--ca $c/ca.pem --cert $c/$1.pem --key $c/$1-key.pem"; }
rate() { python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]; print(s['achievedRate'], s['latencyMs']['p99'])" "$1/results.json"; }
ingest() { "$bench" seed "https://127.0.0.1:$port" --from "$1" --count 100000 $(as node) 2>/dev/null | tail -1 | grep -oE '[0-9]+ studies/s' | grep -oE '^[0-9]+'; }
lookup() {
  "$bench" "https://127.0.0.1:$port" --scenario token-lookup --mode closed --connections 64 --duration "$duration" --warmup 2 \
    $(as clinic) --server-pid "$gw_pid" --out "$out/$1" >/dev/null 2>&1
  rate "$out/$1"
}

start off
echo "seeding $studies studies (audit off, so both runs start from the same index)"
"$bench" seed "https://127.0.0.1:$port" --count "$studies" $(as node) >/dev/null 2>&1
stop

start on
read -r on_rate on_p99 <<<"$(lookup lookup-audit-on)"
on_ingest=$(ingest "$studies")
stop
start off
read -r off_rate off_p99 <<<"$(lookup lookup-audit-off)"
off_ingest=$(ingest $((studies + 100000)))
stop
python3 - "$on_rate" "$on_p99" "$off_rate" "$off_p99" "$on_ingest" "$off_ingest" <<'PY'
import sys
on, onp, off, offp, ion, ioff = map(float, sys.argv[1:])
print(f"lookup  audit on  {on:.0f} req/s p99 {onp:.2f} ms | audit off {off:.0f} req/s p99 {offp:.2f} ms | cost {100*(1-on/off):.1f} % (target <= 15 %)")
print(f"ingest  audit on  {ion:.0f} studies/s | audit off {ioff:.0f} studies/s | cost {100*(1-ion/ioff):.1f} %")
PY
