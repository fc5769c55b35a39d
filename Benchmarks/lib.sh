# Sourced by the single-node Benchmarks/*-bench.sh scripts after `set -euo pipefail`:
# builds the release binaries and sets root, gw (GW=PATH runs another build of the node,
# for an A/B) and bench; `bench_out NAME` empties Benchmarks/out/NAME into $out;
# `start_node PORT PLAIN [serve options]` starts one node on $out/node, or on $node_dir
# when set (prefix it with environment settings as needed), waits until it is ready and
# sets gw_pid and c (its dev-certs directory); `stop_node` stops the node started last;
# `probe` prints its open descriptors and RSS in KiB. Every node still running is killed
# on exit.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
gw=${GW:-$root/.build/release/imaging-gateway}
bench=$root/.build/release/gateway-bench
gw_pid=
started=()
trap 'stop_all' EXIT

bench_out() {
  out=$root/Benchmarks/out/$1
  rm -rf "$out"
  mkdir -p "$out"
}

start_node() {
  local port=$1 plain=$2
  shift 2
  local dir=${node_dir:-$out/node}
  "$gw" serve --data-dir "$dir" --listen "127.0.0.1:$port" --plain-listen "127.0.0.1:$plain" --log-level warning \
    "$@" 2>>"$out/gateway.log" &
  gw_pid=$!
  started+=("$gw_pid")
  c=$dir/dev-certs
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$plain/readyz" >/dev/null && return; sleep 0.1; done
  echo "the node did not become ready; see $out/gateway.log" >&2
  exit 1
}

stop_node() {
  [ -n "$gw_pid" ] || return 0
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  local pid still=()
  for pid in "${started[@]}"; do [ "$pid" = "$gw_pid" ] || still+=("$pid"); done
  started=("${still[@]}")
  gw_pid=
}

stop_all() {
  local pid
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  gw_pid=
}

probe() {
  python3 -c "import os,sys; p=sys.argv[1]; print(len(os.listdir(f'/proc/{p}/fd')), next(l.split()[1] for l in open(f'/proc/{p}/status') if l.startswith('VmRSS')))" "$gw_pid"
}
