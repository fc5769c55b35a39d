#!/usr/bin/env bash
# Prior-exam checks (issue #10) against the plain token lookup, in one invocation:
# 1. one node seeded to STUDIES (default 1 000 000), scope local: token-lookup-local and
#    prior-check-local alternately, three rounds each, closed loop (CONNECTIONS, default 64);
# 2. Benchmarks/dev-cluster.sh's four nodes, CLUSTER_STUDIES (default 100 000) uploaded at
#    region 610000 and gathered: token-lookup and prior-check at region 110000, scope all
#    (its store and the national node), alternately, three rounds each.
# Medians and the ratio (target >= 0.8). Not a test.
#
# usage: Benchmarks/priors-bench.sh        STUDIES=1000000 CLUSTER_STUDIES=100000 DURATION=10
#        KEEP=1 reuses the node seeded by the previous run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/Benchmarks/out/priors-bench
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
gw=$root/.build/release/imaging-gateway
bench=$root/.build/release/gateway-bench
if [ "${KEEP:-0}" = 1 ] && [ -d "$out/node" ]; then
  find "$out" -mindepth 1 -maxdepth 1 ! -name node -exec rm -rf {} +
else
  rm -rf "$out"
fi
mkdir -p "$out"
gw_pid=
cleanup() { [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true; [ -n "${DIR:-}" ] && Benchmarks/dev-cluster.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
rate() { python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]; print(s['achievedRate'], s['latencyMs']['p99'], s['errors']['status4xx'] + s['errors']['status5xx'])" "$1/results.json"; }
run() { # name url scenario certs
  "$bench" "$2" --scenario "$3" --mode closed --connections "$connections" --duration "$duration" --warmup 2 \
    --ca "$4/ca.pem" --cert "$4/clinic.pem" --key "$4/clinic-key.pem" --out "$out/$1" >/dev/null 2>&1
  rate "$out/$1"
}
rounds() { # label url plain-scenario check-scenario certs
  local plain=() check=() errors=0
  for round in 1 2 3; do
    read -r r _ e <<<"$(run "$1-lookup-$round" "$2" "$3" "$5")"; plain+=("$r"); errors=$((errors + e))
    read -r r _ e <<<"$(run "$1-priors-$round" "$2" "$4" "$5")"; check+=("$r"); errors=$((errors + e))
  done
  python3 - "$1" "${plain[*]}" "${check[*]}" "$errors" <<'PY'
import statistics, sys
label, plain, check, errors = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()], sys.argv[4]
mp, mc = statistics.median(plain), statistics.median(check)
print(f"{label}: token lookup " + ", ".join(f"{x:.0f}" for x in plain) + f" req/s (median {mp:.0f}); prior check "
      + ", ".join(f"{x:.0f}" for x in check) + f" (median {mc:.0f}): {mc/mp:.2f} x the lookup (target >= 0.8); error answers {errors}")
PY
}

studies=${STUDIES:-1000000}
"$gw" serve --data-dir "$out/node" --listen 127.0.0.1:19743 --plain-listen 127.0.0.1:19780 --log-level warning 2>>"$out/gateway.log" &
gw_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19780/readyz >/dev/null && break; sleep 0.1; done
c=$out/node/dev-certs
if [ "${KEEP:-0}" != 1 ]; then
  echo "seeding $studies studies"
  "$bench" seed https://127.0.0.1:19743 --count "$studies" --ca "$c/ca.pem" --cert "$c/node.pem" --key "$c/node-key.pem" 2>/dev/null | tail -1
fi
rounds "one node, $studies studies, scope local" https://127.0.0.1:19743 token-lookup-local prior-check-local "$c" | tee "$out/summary.txt"
kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; gw_pid=

export DIR=$out/cluster BIN=$gw
Benchmarks/dev-cluster.sh start >/dev/null
c=$DIR/national/dev-certs
"$bench" seed https://127.0.0.1:9444 --count "${CLUSTER_STUDIES:-100000}" --ca "$c/ca.pem" --cert "$c/node.pem" --key "$c/node-key.pem" 2>/dev/null | tail -1
lag() { curl -sf --cacert "$c/ca.pem" https://localhost:9444/readyz | python3 -c "import json,sys; print(json.load(sys.stdin)['gathering']['lagRecords'])"; }
while [ "$(lag)" != 0 ]; do sleep 0.2; done
rounds "4-node cluster, at 110000, scope all" https://127.0.0.1:9445 token-lookup prior-check "$c" | tee -a "$out/summary.txt"
