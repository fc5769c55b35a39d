#!/usr/bin/env bash
# Runs the libFuzzer targets of Tests/Fuzz, each for FUZZ_SECONDS (default 600), from its
# committed seeds (Tests/Fuzz/seeds-*) and a corpus kept in .build-fuzz/. Names on the
# command line pick targets (http, gzip, record, codes, query, token, ups); none means all.
# A crash leaves its input as Tests/Fuzz/crash-* and fails the script. PARALLEL=1 runs
# all the picked targets at once (for the long runs), each still for FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-600}
export SWIFT_BACKTRACE=enable=no
mkdir -p .build-fuzz
if ! swift build --package-path Tests/Fuzz --scratch-path .build-fuzz --sanitize=fuzzer -c debug > .build-fuzz/build.log 2>&1; then
  tail -n 40 .build-fuzz/build.log >&2
  exit 1
fi
declare -A binary=([http]=HTTPParserFuzz [gzip]=GzipFuzz [record]=RecordFuzz [codes]=CodesFuzz [query]=QueryFuzz
                   [token]=TokenFuzz [ups]=UPSFuzz)
declare -A maxlen=([http]=4096 [gzip]=8192 [record]=4096 [codes]=512 [query]=1024 [token]=2048 [ups]=2048)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http gzip record codes query token ups)
for t in "${targets[@]}"; do
  [ -n "${binary[$t]:-}" ] || { echo "unknown target $t (http, gzip, record, codes, query, token, ups)" >&2; exit 2; }
done
fuzz() {
  local t=$1 log=.build-fuzz/log-$1
  mkdir -p ".build-fuzz/corpus-$t"
  .build-fuzz/debug/"${binary[$t]}" ".build-fuzz/corpus-$t" "Tests/Fuzz/seeds-$t" -max_total_time="$seconds" \
    -max_len="${maxlen[$t]}" -artifact_prefix=Tests/Fuzz/ -print_final_stats=1 >"$log" 2>&1 || true
  echo "$t (${binary[$t]}): ${seconds} s, $(awk '/^stat::number_of_executed_units/ {print $2}' "$log") executions," \
    "peak RSS $(awk '/^stat::peak_rss_mb/ {print $2}' "$log") MB"
  grep -E "^==[0-9]+== ERROR|^SUMMARY" "$log" || true
}
if [ "${PARALLEL:-0}" = 1 ]; then
  for t in "${targets[@]}"; do fuzz "$t" & done
  wait
else
  for t in "${targets[@]}"; do fuzz "$t"; done
fi
if ls Tests/Fuzz/crash-* Tests/Fuzz/leak-* Tests/Fuzz/timeout-* Tests/Fuzz/oom-* >/dev/null 2>&1; then
  echo "failing inputs: $(ls Tests/Fuzz/crash-* Tests/Fuzz/leak-* Tests/Fuzz/timeout-* Tests/Fuzz/oom-* 2>/dev/null)" >&2
  exit 1
fi
