#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test.
#   1. clang-format check of every C++ file;
#   2. the full build (warnings are errors) and every CTest test;
#   3. an ASan+UBSan build of raft/ and kvstore/ running the unit and simulator tests.
# Set KV_SKIP_SANITIZERS=1 to skip step 3 while iterating locally.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${KV_JOBS:-$(nproc)}

"$root/scripts/setup.sh"

echo "== clang-format"
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.cpp' '*.hpp' 2>/dev/null || true)
if [ ${#files[@]} -gt 0 ]; then
  clang-format --dry-run --Werror "${files[@]}"
fi

echo "== build (warnings are errors)"
"$root/scripts/build.sh" "$root/build/ci"

echo "== tests"
(cd "$root/build/ci" && ctest -j "$jobs" --output-on-failure --timeout 900)

if [ "${KV_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== ASan+UBSan: unit and simulator tests"
  "$root/scripts/build.sh" "$root/build/asan" -DKV_SANITIZE=address -DKV_BUILD_SERVER_STACK=OFF \
    -DCMAKE_BUILD_TYPE=Debug
  (cd "$root/build/asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest -j "$jobs" -L 'unit|sim' --output-on-failure --timeout 900)
fi
echo "== all tests passed"
