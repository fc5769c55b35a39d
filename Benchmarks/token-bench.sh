#!/usr/bin/env bash
# The token figures (issue #4) in one invocation: the token service's evaluations per
# second over mTLS with batches of 100; per-core cryptography against swift-crypto's
# public P384._VOPRF measured in the same run (Benchmarks/TokenCrypto); and the agent's
# end-to-end upload of N studies (default 100 000) with the time split between tokenizing
# and uploading. Not a test.
#
# usage: Benchmarks/token-bench.sh        STUDIES=100000 DURATION=10 SECONDS_PER_CASE=5
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/Benchmarks/out/token-bench
studies=${STUDIES:-100000}
duration=${DURATION:-10}
port=19743; plain=19780
swift build -c release --product imaging-gateway >/dev/null
swift build -c release --product gateway-bench >/dev/null
swift build -c release --product gateway-agent >/dev/null
(cd Benchmarks/TokenCrypto && swift build -c release >/dev/null)
gw=$root/.build/release/imaging-gateway
bench=$root/.build/release/gateway-bench
agent=$root/.build/release/gateway-agent
rm -rf "$out"
mkdir -p "$out"
"$gw" serve --data-dir "$out/node" --listen "127.0.0.1:$port" --plain-listen "127.0.0.1:$plain" --log-level warning \
  --token-service 2>>"$out/gateway.log" &
gw_pid=$!
trap 'kill $gw_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$plain/readyz" >/dev/null && break; sleep 0.1; done
c=$out/node/dev-certs

echo "== per core (one thread), ours against swift-crypto in this run"
Benchmarks/TokenCrypto/.build/release/token-crypto-bench "${SECONDS_PER_CASE:-5}" | tee "$out/crypto.txt"

echo "== the token service over mTLS, batches of 100, closed loop"
for conns in 2 4 8; do
  $bench "https://127.0.0.1:$port" --scenario token-evaluate-100 --mode closed --connections $conns \
    --duration "$duration" --warmup 2 --ca "$c/ca.pem" --cert "$c/token-client.pem" --key "$c/token-client-key.pem" \
    --server-pid "$gw_pid" --out "$out/evaluate-$conns" >/dev/null 2>&1
  python3 -c "
import json,sys; s=json.load(open(sys.argv[1]))['stages'][0]
print(f\"{sys.argv[2]} connections: {s['achievedRate']*100:.0f} tokens/s ({s['achievedRate']:.0f} requests/s), p99 {s['latencyMs']['p99']:.1f} ms\")
" "$out/evaluate-$conns/results.json" "$conns" | tee -a "$out/service.txt"
done

echo "== the agent: $studies studies, tokenized and uploaded"
python3 - "$studies" "$out/studies.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
with open(path, "w") as f:
    f.write("residentId,birthDate,sex,studyInstanceUID,studyDate,modalitiesInStudy,storageUnit,retrieveURL,region\n")
    for i in range(n):
        p = i // 3
        born = f"19{40 + p % 50:02d}{p % 12 + 1:02d}{p % 28 + 1:02d}"
        seventeen = f"610113{born}{p % 1000:03d}"
        check = "10X98765432"[sum(int(a) * b for a, b in zip(seventeen, weights)) % 11]
        sex = "M" if int(seventeen[16]) % 2 else "F"
        f.write(f"{seventeen}{check},{born},{sex},1.2.156.700.{i + 1},20{16 + i % 9:02d}{i % 12 + 1:02d}{i % 28 + 1:02d},"
                f"CT,91610000MA6TG0001A,https://pacs.example/dicomweb,610100\n")
PY
"$agent" init --node "https://127.0.0.1:$port" --certificate "$c/hospital.pem" --private-key "$c/hospital-key.pem" \
  --trusted-ca "$c/ca.pem" --token-certificate "$c/token-client.pem" --token-private-key "$c/token-client-key.pem" \
  --output "$out/agent.json" >/dev/null
start=$(date +%s.%N)
"$agent" upload --config "$out/agent.json" "$out/studies.csv" --json > "$out/upload.json"
end=$(date +%s.%N)
python3 - "$out/upload.json" "$start" "$end" <<'PY' | tee "$out/agent.txt"
import json, sys
s = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"{s['records']} records: accepted {s['accepted']}, updated {s['updated']}, rejected {s['rejected']}")
print(f"wall {wall:.1f} s ({s['records']/wall:.0f} studies/s): tokenizing {s['tokenizeSeconds']:.1f} s, uploading {s['uploadSeconds']:.1f} s")
PY
