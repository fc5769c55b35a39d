#!/usr/bin/env bash
# GatewayNet against nginx, in one invocation, on loopback: TLS 1.3 keep-alive, the same
# JSON body, `wrk -t1 -c64 -d10s --latency` against each, then the ratios.
# Then the gateway's RSS after 100 k and after 1 M requests, and the cost of 10 k idle
# TLS connections. Not a test: figures vary by machine; compare only within one run.
#
# usage: Benchmarks/nginx-compare.sh            (builds release first)
#   LOOPS=N      gateway event loops (default 1: wrk needs the other core)
#   DURATION=10s wrk duration; RUNS=3 runs each, median reported
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-$root/Benchmarks/out/nginx-compare}
duration=${DURATION:-10s}
runs=${RUNS:-3}
gw_port=19443; ng_port=19444; gw_plain=19080
rm -rf "$out"; mkdir -p "$out"

for tool in wrk nginx python3; do
  command -v $tool >/dev/null || { echo "needs $tool: apt-get install wrk nginx-light" >&2; exit 1; }
done
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
bin=$root/.build/release/imaging-gateway

cleanup() { [ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null; [ -f "$out/nginx.pid" ] && kill "$(cat "$out/nginx.pid")" 2>/dev/null; true; }
trap cleanup EXIT

start_gateway() {
  [ -n "${gw_pid:-}" ] && kill "$gw_pid" && wait "$gw_pid" 2>/dev/null || true
  "$bin" serve --data-dir "$out/gw" --listen "127.0.0.1:$gw_port" --plain-listen "127.0.0.1:$gw_plain" \
    --log-level warning --loops "${LOOPS:-1}" 2>>"$out/gateway.log" &
  gw_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$gw_plain/healthz" >/dev/null && break; sleep 0.1; done
}
start_gateway
certs=$out/gw/dev-certs
body=$(curl -sf "http://127.0.0.1:$gw_plain/healthz")

cat > "$out/nginx.conf" <<CONF
worker_processes 1;
pid $out/nginx.pid;
error_log $out/nginx-error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$ng_port ssl;
    ssl_certificate $certs/node.pem;
    ssl_certificate_key $certs/node-key.pem;
    ssl_protocols TLSv1.3;
    location = /healthz { default_type application/json; return 200 '$body'; }
  }
}
CONF
nginx -c "$out/nginx.conf" -p "$out"
sleep 0.5

# One wrk run; prints "req/s p99_ms".
measure() {
  wrk -t1 -c64 -d"$duration" --latency "$1" > "$out/wrk.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk.txt")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' "$out/wrk.txt")
  cat "$out/wrk.txt" >> "$out/wrk-all.txt"
  echo "$rps $p99"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A rps p99
for target in nginx gateway; do
  port=$ng_port; [ $target = gateway ] && port=$gw_port
  url="https://127.0.0.1:$port/healthz"
  wrk -t1 -c64 -d2s "$url" >/dev/null   # warm-up
  : > "$out/$target.runs"
  for _ in $(seq "$runs"); do measure "$url" >> "$out/$target.runs"; done
  rps[$target]=$(awk '{print $1}' "$out/$target.runs" | median)
  p99[$target]=$(awk '{print $2}' "$out/$target.runs" | median)
  printf '%-8s req/s %10.0f   p99 %7.2f ms   (runs: %s)\n' "$target" "${rps[$target]}" "${p99[$target]}" "$(awk '{printf "%s/%sms ", $1, $2}' "$out/$target.runs")"
done
python3 - "${rps[gateway]}" "${rps[nginx]}" "${p99[gateway]}" "${p99[nginx]}" <<'PY'
import sys
g, n, gp, np_ = map(float, sys.argv[1:])
print(f"ratio    req/s gateway/nginx = {g/n:.2f} (target >= 0.80)   p99 gateway/nginx = {gp/np_:.2f} (target <= 2.00)")
PY

# The harness's own client against nginx, beside wrk's figure from above: gateway-bench
# must reach 0.9 x wrk's rate (issue #8).
"$root/.build/release/gateway-bench" "https://127.0.0.1:$ng_port" --mode closed --connections 64 \
  --duration "${duration%s}" --warmup 2 --ca "$certs/ca.pem" --out "$out/bench-vs-wrk" 2>/dev/null > /dev/null
bench=$(python3 -c "import json; print(json.load(open('$out/bench-vs-wrk/results.json'))['stages'][0]['achievedRate'])")
python3 - "$bench" "${rps[nginx]}" <<'PY'
import sys
b, w = map(float, sys.argv[1:])
print(f"client   gateway-bench closed-64c against nginx {b:.0f} req/s, wrk {w:.0f}: ratio {b/w:.2f} (target >= 0.90)")
PY

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status"; }
requests() { curl -sf "http://127.0.0.1:$gw_plain/metrics" | awk '$1=="gateway_http_requests_total" {printf "%d", $2}'; }
run_until() { # total requests
  while [ "$(requests)" -lt "$1" ]; do wrk -t1 -c64 -d1s "https://127.0.0.1:$gw_port/healthz" >/dev/null; done
}
start_gateway   # a fresh process, so the 100 k mark is really 100 k
run_until 100000; rss100k=$(rss_kib); n100k=$(requests)
run_until 1000000; rss1m=$(rss_kib); n1m=$(requests)
python3 - "$rss100k" "$n100k" "$rss1m" "$n1m" <<'PY'
import sys
a, na, b, nb = map(int, sys.argv[1:])
print(f"RSS      {a} KiB after {na} requests, {b} KiB after {nb}: ratio {b/a:.2f} (target <= 1.20)")
PY

python3 "$root/Benchmarks/idle_tls.py" --port "$gw_port" --ca "$certs/ca.pem" --pid "$gw_pid" --count 10000
