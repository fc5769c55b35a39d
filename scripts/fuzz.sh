#!/usr/bin/env bash
# Runs the libFuzzer targets of Tests/Fuzz, each for FUZZ_SECONDS (default 600), from its
# committed seeds (Tests/Fuzz/seeds-*) and a corpus kept in .build-fuzz/. Names on the
# command line pick targets (http, gzip, record, token, ups); none means all. A crash leaves
# its input as Tests/Fuzz/crash-* and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
export SWIFT_BACKTRACE=enable=no
mkdir -p .build-fuzz
if ! swift build --package-path Tests/Fuzz --scratch-path .build-fuzz --sanitize=fuzzer -c debug > .build-fuzz/build.log 2>&1; then
  tail -n 40 .build-fuzz/build.log >&2
  exit 1
fi
declare -A binary=([http]=HTTPParserFuzz [gzip]=GzipFuzz [record]=RecordFuzz [token]=TokenFuzz [ups]=UPSFuzz)
declare -A maxlen=([http]=4096 [gzip]=8192 [record]=4096 [token]=2048 [ups]=2048)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http gzip record token ups)
for t in "${targets[@]}"; do
  [ -n "${binary[$t]:-}" ] || { echo "unknown target $t (http, gzip, record, token, ups)" >&2; exit 2; }
  corpus=.build-fuzz/corpus-$t
  mkdir -p "$corpus"
  echo "fuzzing $t (${binary[$t]}) for ${seconds}s"
  .build-fuzz/debug/"${binary[$t]}" "$corpus" "Tests/Fuzz/seeds-$t" -max_total_time="$seconds" -max_len="${maxlen[$t]}" \
    -artifact_prefix=Tests/Fuzz/ -print_final_stats=1 2>&1 | grep -E "^stat::number_of_executed_units|^stat::peak_rss|ERROR|crash|Done" || true
  if ls Tests/Fuzz/crash-* >/dev/null 2>&1; then echo "crash in $t: $(ls Tests/Fuzz/crash-*)" >&2; exit 1; fi
done
