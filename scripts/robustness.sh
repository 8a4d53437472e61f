#!/usr/bin/env bash
# Long robustness runs: seeded rounds of tests/robustness (a fresh 3-member kvd cluster per
# round behind fault-injecting peer proxies; kill -9, SIGSTOP, partitions, leader moves,
# compaction; then the linearizability, watch, acknowledged-write and HashKV checkers).
#   scripts/robustness.sh --duration 1h --seed 7       rounds until an hour has passed
#   scripts/robustness.sh --seed 7 --rounds 1          one round (replay a seed)
#   scripts/robustness.sh --check DIR/history.json     re-check a kept history
# Other flags: --round-seconds N (workload per round, default 60), --artifacts DIR (where a
# failing round keeps history.json, member logs, schedule.log, summary.txt, replay.txt),
# --keep (keep passing rounds too). Prints one line per round and a final summary; exits 1
# if any round failed. Builds robustness_runner and kvd first (build dir: $KV_BUILD_DIR or
# build/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KV_BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DKV_WERROR=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
nice ninja -C "$build" -j "${KV_JOBS:-2}" robustness_runner kvd >/dev/null
exec "$build/tests/robustness/robustness_runner" "$@"
