#!/usr/bin/env bash
# Fuzzes the HTTP request parser with libFuzzer for FUZZ_SECONDS (default 600).
# A crash leaves its input as Tests/Fuzz/crash-* and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
export SWIFT_BACKTRACE=enable=no
mkdir -p .build-fuzz
if ! swift build --package-path Tests/Fuzz --scratch-path .build-fuzz --sanitize=fuzzer -c debug > .build-fuzz/build.log 2>&1; then
  tail -n 40 .build-fuzz/build.log >&2
  exit 1
fi
corpus=.build-fuzz/corpus
mkdir -p "$corpus"
echo "fuzzing the HTTP parser for ${seconds}s"
.build-fuzz/debug/HTTPParserFuzz "$corpus" Tests/Fuzz/seeds -max_total_time="$seconds" -max_len=4096 \
  -artifact_prefix=Tests/Fuzz/ -print_final_stats=1 2>&1 | tail -n 12
