#!/usr/bin/env bash
# Installs everything dsv4 needs to build, test and benchmark, from Debian 12 packages.
# Idempotent: does nothing (not even `apt-get update`) when all packages are present.
# Run as root, or as a user with sudo.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build git pkg-config   # toolchain (GCC 12, CMake 3.25)
  clang clang-format libclang-rt-14-dev libomp-dev       # Clang 14 build, libFuzzer, format check
  libxsimd-dev libsimdjson-dev libeigen3-dev             # library dependencies (private)
  catch2 libbenchmark-dev                                # tests and benchmarks
  libpcre2-dev                                           # tokenizer regexes (private)
  python3 unicode-data manpages-zh manpages-ja           # tokenizer reference corpus
  python3-torch python3-numpy bible-kjv                  # tools/train (default model): PyTorch, KJV corpus
  libopenblas0-pthread                                   # torch CPU matmuls ~4x faster than reference BLAS
)
# The tokenizer reference tests run the JS implementation of HF tokenizers (npm ci); take
# Debian's Node.js only when no node is on PATH (a newer one may already be installed).
if ! command -v node >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
