# Sourced by the single-node Benchmarks/*-bench.sh scripts after `set -euo pipefail`:
# builds the release binaries and sets root, gw (GW=PATH runs another build of the node,
# for an A/B) and bench; `bench_out NAME` empties Benchmarks/out/NAME into $out;
# `start_node PORT PLAIN [serve options]` starts one node on $out/node (prefix it with
# environment settings as needed), waits until it is ready and sets gw_pid and c (its
# dev-certs directory); `stop_node` stops it; `probe` prints its open descriptors and RSS
# in KiB. A node left running is killed on exit.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
gw=${GW:-$root/.build/release/imaging-gateway}
bench=$root/.build/release/gateway-bench
gw_pid=
trap 'stop_node' EXIT

bench_out() {
  out=$root/Benchmarks/out/$1
  rm -rf "$out"
  mkdir -p "$out"
}

start_node() {
  local port=$1 plain=$2
  shift 2
  "$gw" serve --data-dir "$out/node" --listen "127.0.0.1:$port" --plain-listen "127.0.0.1:$plain" --log-level warning \
    "$@" 2>>"$out/gateway.log" &
  gw_pid=$!
  c=$out/node/dev-certs
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$plain/readyz" >/dev/null && return; sleep 0.1; done
  echo "the node did not become ready; see $out/gateway.log" >&2
  exit 1
}

stop_node() {
  [ -n "$gw_pid" ] || return 0
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=
}

probe() {
  python3 -c "import os,sys; p=sys.argv[1]; print(len(os.listdir(f'/proc/{p}/fd')), next(l.split()[1] for l in open(f'/proc/{p}/status') if l.startswith('VmRSS')))" "$gw_pid"
}
