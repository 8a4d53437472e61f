#!/usr/bin/env bash
# Configures and builds kvd. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Default BUILD_DIR is build/. Warnings are errors (-DKV_WERROR=ON) in every scripted build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build}
shift || true
jobs=${KV_JOBS:-$(nproc)}
cmake -S "$root" -B "$build_dir" -G Ninja -DKV_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
