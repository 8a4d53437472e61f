#!/usr/bin/env bash
# Configures and builds kvd. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Default BUILD_DIR is build/. Warnings are errors (-DKV_WERROR=ON) in every scripted build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build}
shift || true
jobs=${KV_JOBS:-$(nproc)}
# ccache, when a developer has it, makes rebuilds in fresh clones cheap; CI does not need it.
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build_dir" -G Ninja -DKV_WERROR=ON "${launcher[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
