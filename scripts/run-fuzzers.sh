#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan) and runs each one for a
# bounded number of inputs over its checked-in seed corpus. Any crash, leak, sanitizer report
# or timeout fails the script. New inputs go to a scratch directory, never into the repo.
# Usage: scripts/run-fuzzers.sh [runs-per-target]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20000}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
bin=build/fuzz/bin
shopt -s nullglob
targets=("$bin"/fuzz_*)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "run-fuzzers: no fuzz targets built"
  exit 0
fi
for t in "${targets[@]}"; do
  name=$(basename "$t"); name=${name#fuzz_}
  scratch=$(mktemp -d)
  seeds=tests/fuzz/corpus/$name
  echo "== fuzz_$name: $runs runs, seeds from $seeds"
  "$t" -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
       "$scratch" "$seeds" 2>&1 | tail -n 12
  rm -rf "$scratch"
done
echo "run-fuzzers: ${#targets[@]} targets, $runs runs each, no crashes"
