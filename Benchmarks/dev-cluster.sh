#!/usr/bin/env bash
# A national node and three regional nodes on loopback, sharing the national node's
# development certificates: regional nodes gather to the national node and ask it in
# lookups (scope all). Not for production.
#
# usage: Benchmarks/dev-cluster.sh start|stop|status      DIR=./dev-cluster BIN=.build/release/imaging-gateway
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DIR:-./dev-cluster}
bin=${BIN:-.build/release/imaging-gateway}
national_port=9443
regions=(610000:9444 110000:9445 440000:9446)

# Starts "$@" in the background with its output in $1's log and no inherited descriptor
# beyond 0-2: a caller that watches a pipe or socket for this script's end (Foundation's
# Process does) would otherwise wait for the nodes too.
launch() {
  local log=$1 pidfile=$2; shift 2
  (
    for fd in /proc/$BASHPID/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done
    exec "$@"
  ) >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

wait_ready() {
  for _ in $(seq 100); do curl -sf --cacert "$dir/national/dev-certs/ca.pem" "https://localhost:$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "the node on port $1 did not come up; see $dir/*.log" >&2
  return 1
}

start() {
  [ -x "$bin" ] || swift build -c release --product imaging-gateway
  mkdir -p "$dir"
  launch "$dir/national.log" "$dir/national.pid" \
    env IMAGING_GATEWAY_ROLE=national "$bin" serve --data-dir "$dir/national" --listen "127.0.0.1:$national_port" --region 100000 --token-service
  wait_ready "$national_port"
  certs=$(cd "$dir/national/dev-certs" && pwd)
  for entry in "${regions[@]}"; do
    region=${entry%%:*} port=${entry##*:}
    cat >"$dir/$region.json" <<JSON
{
  "region": "$region",
  "role": "regional",
  "dataDirectory": "$dir/$region",
  "listen": ["127.0.0.1:$port"],
  "tls": {"certificate": "$certs/node.pem", "privateKey": "$certs/node-key.pem", "clientCA": "$certs/ca.pem"},
  "federation": {"gatherTo": "https://localhost:$national_port",
                 "peers": [{"region": "100000", "url": "https://localhost:$national_port"}]}
}
JSON
    launch "$dir/$region.log" "$dir/$region.pid" "$bin" serve --config "$dir/$region.json"
    wait_ready "$port"
  done
  cat <<TEXT
cluster up: national 100000 on :$national_port (token service), regions ${regions[*]}
certificates: $certs (role files: hospital.pem, clinic.pem, operator.pem …)

  C="--cacert $certs/ca.pem"
  T="v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
  echo '{"patientToken":"'\$T'","studyInstanceUID":"1.2.156.1.1","studyDate":"20241122","modalitiesInStudy":["CT"],"storageUnit":"91610000MA6TG0001A","retrieveURL":"https://pacs.example/dicomweb","region":"610100"}' |
    curl \$C --cert $certs/hospital.pem --key $certs/hospital-key.pem -H 'Content-Type: application/x-ndjson' --data-binary @- https://localhost:9444/v1/index/studies
  curl \$C --cert $certs/clinic.pem --key $certs/clinic-key.pem "https://localhost:9445/v1/patients/\$T/studies?purpose=TREAT"

stop with: Benchmarks/dev-cluster.sh stop
TEXT
}

# Returns once every node has exited (30 s at most): a node still stopping holds its port
# and its data directory's lock, and a `start` right after would find them taken.
stop() {
  local pids=() pidfile pid
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$pidfile"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 300); do gone "$pid" && break; sleep 0.1; done
  done
}

# Whether process $1 has exited (a zombie has: its port and lock are released).
gone() {
  local state
  state=$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 0
  [ -z "$state" ] || [ "$state" = Z ]
}

status() {
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$name running"; else echo "$name stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
