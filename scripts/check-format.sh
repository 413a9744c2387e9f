#!/usr/bin/env bash
# Fails (exit 1) if any C++ source differs from what clang-format produces.
# Usage: scripts/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-clang-format}
mapfile -t files < <(git ls-files -- '*.hpp' '*.cpp' '*.h' '*.cc' '*.hpp.in' | grep -v '^tests/data/')
if [[ "${1:-}" == "--fix" ]]; then
  "$CF" -i "${files[@]}"
  exit 0
fi
"$CF" --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
