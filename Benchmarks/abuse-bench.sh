#!/usr/bin/env bash
# Abuse (issue #9): a normal client's p99 with and without 2 000 slowloris connections and
# 200 idle TLS handshakes held open against the same node, in one invocation, and the
# node's descriptors and RSS while they are held (Benchmarks/abuse_attackers.py). The
# normal client is gateway-bench, open loop at RATE (default 200/s) token lookups. Then
# gzip bombs, endless chunked bodies and terabyte Content-Lengths, BODIES (default 8) at
# once for five rounds, with the node's RSS around them (Benchmarks/abuse_bodies.py).
# Between the two, a control: the same attack on a second node while the client stays on
# the first, which tells the machine's share of the client's loss from the node's.
# The slowloris connections open over RAMP seconds (default 60, the node's header timeout)
# and the client is measured once they are all open, so the window holds the node's steady
# reopening rate (connections / header timeout), not the first wave or none.
# Not a test.
#
# The attackers stand in for other machines, so they run at SCHED_IDLE: on these two cores
# they get CPU only when the node and the client leave it, and what the client loses is
# what handling the attack costs the node (its handshakes, reads and closes), plus what
# the control shows the machine loses anyway. PIN=1 goes further: the nodes and the normal
# client run on CPU 0, the attackers on CPU 1. Baseline and control are run the same way.
#
# usage: Benchmarks/abuse-bench.sh        RATE=200 DURATION=30 RAMP=60 SLOWLORIS=2000 IDLE=200 BODIES=8 PIN=0
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_out abuse-bench
rate=${RATE:-200}
duration=${DURATION:-30}
ramp=${RAMP:-60}
attack_seconds=$((ramp + duration + 15))
port=19443; plain=19480
start_node "$port" "$plain"
node_cpus=0-1; attacker_cpus=0-1
if [ "${PIN:-0}" = 1 ]; then node_cpus=0; attacker_cpus=1; fi
taskset -a -p -c "$node_cpus" "$gw_pid" >/dev/null
"$bench" seed "https://127.0.0.1:$port" --count 20000 --ca "$c/ca.pem" --cert "$c/node.pem" --key "$c/node-key.pem" >/dev/null 2>&1
lookups() {
  taskset -c "$node_cpus" "$bench" "https://127.0.0.1:$port" --scenario token-lookup --mode open --rate "$rate" --duration "$duration" --warmup 2 \
    --ca "$c/ca.pem" --cert "$c/clinic.pem" --key "$c/clinic-key.pem" --out "$out/$1" >/dev/null 2>&1
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]; print(s['latencyMs']['p99'], s['achievedRate'], s['errors']['status4xx'] + s['errors']['status5xx'] + s['errors']['timeout'] + s['errors']['connect'] + s['errors']['other'])" "$out/$1/results.json"
}
# attack PORT CA PID OUT: the attackers against one node, in the background (attack_pid),
# returning once their slowloris connections have all opened.
attack() {
  taskset -c "$attacker_cpus" chrt --idle 0 python3 "$root/Benchmarks/abuse_attackers.py" --port "$1" --ca "$2" --pid "$3" \
    --slowloris "${SLOWLORIS:-2000}" --idle "${IDLE:-200}" --seconds "$attack_seconds" --ramp "$ramp" >"$4" 2>>"$out/attack.err" &
  attack_pid=$!
  sleep $((ramp + 5))
}
read -r fds0 rss0 <<<"$(probe)"
read -r base_p99 base_rate base_errors <<<"$(lookups baseline)"
attack "$port" "$c/ca.pem" "$gw_pid" "$out/attack.jsonl"
window_start=$(date +%s)
read -r attack_p99 attack_rate attack_errors <<<"$(lookups attacked)"
window_end=$(date +%s)
wait "$attack_pid" || true
sleep 3
read -r fds1 rss1 <<<"$(probe)"
# Control: the same attack on a second node of the same build, the normal client still on
# the first. What the client loses here is the machine's (both nodes, the attacker and
# the client share two cores), not the attacked node's handling.
taskset -c "$node_cpus" "$gw" serve --data-dir "$out/control-node" --listen "127.0.0.1:$((port + 1))" --plain-listen "127.0.0.1:$((plain + 1))" \
  --log-level warning 2>>"$out/control.log" &
control_pid=$!
trap 'kill "$control_pid" 2>/dev/null || true; stop_node' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((plain + 1))/readyz" >/dev/null && break; sleep 0.1; done
attack "$((port + 1))" "$out/control-node/dev-certs/ca.pem" "$control_pid" /dev/null
read -r control_p99 _ _ <<<"$(lookups control)"
wait "$attack_pid" || true
kill "$control_pid"
python3 - "$out/attack.jsonl" "$base_p99" "$base_rate" "$base_errors" "$attack_p99" "$attack_rate" "$attack_errors" "$fds0" "$rss0" "$fds1" "$rss1" "$control_p99" "$window_start" "$window_end" <<'PY'
import json, sys
samples = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bp, br, be, ap, ar, ae = map(float, sys.argv[2:8])
fds0, rss0, fds1, rss1 = map(int, sys.argv[8:12])
cp = float(sys.argv[12])
t0, t1 = float(sys.argv[13]), float(sys.argv[14])
held = max((s["slow_open"] + s["idle_open"] for s in samples), default=0)
inside = [s for s in samples if t0 <= s["t"] <= t1]
reopened = (inside[-1]["slow_opened"] - inside[0]["slow_opened"]) / max(1, inside[-1]["t"] - inside[0]["t"]) if len(inside) > 1 else 0
print(f"normal client, {br:.0f} req/s open loop: p99 {bp:.2f} ms alone, {ap:.2f} ms under attack = {ap/bp:.2f} x (target <= 2); errors {be:.0f} / {ae:.0f}")
print(f"control, the same attack on a second node: the client's p99 {cp:.2f} ms = {cp/bp:.2f} x; the attacked node's own share: {ap/cp:.2f} x")
print(f"attack: up to {held} connections held at once (slowloris and idle handshakes; the node closes them at its header and handshake timeouts, they reopen); "
      f"{reopened:.0f} slowloris TLS connections opened a second while the client was measured")
print(f"node fds: {fds0} before, max {max(s['fds'] for s in samples)} during, {fds1} after; RSS {rss0} KiB before, max {max(s['rssKiB'] for s in samples)} during, {rss1} after")
PY
python3 "$root/Benchmarks/abuse_bodies.py" --port "$port" --pid "$gw_pid" --ca "$c/ca.pem" --cert "$c/hospital.pem" \
  --key "$c/hospital-key.pem" --concurrent "${BODIES:-8}" --rounds 5 >"$out/bodies.json"
python3 - "$out/bodies.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["rssKiB"]
print("refused bodies (5 rounds, each kind sent by several connections at once): "
      + "; ".join(f"{kind}: {statuses}" for kind, statuses in r["statuses"].items()))
print(f"node RSS around them: {m['before']} KiB before, max {m['max']} during, {m['after']} after 5 s")
PY
