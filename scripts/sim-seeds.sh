#!/usr/bin/env bash
# Runs the Raft simulator over N seeds starting at START (default 1) in the background and
# reports the failing seeds, each with the one command that replays it.
#   scripts/sim-seeds.sh N [START]         background; prints where the report will be
#   SIM_WAIT=1 scripts/sim-seeds.sh N ...  same, in the foreground
# Env: BUILD_DIR (default build), SIM_JOBS (parallel processes, default 1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:?usage: sim-seeds.sh N [START]}
start=${2:-1}
build_dir=${BUILD_DIR:-$root/build}
bin=$build_dir/tests/raft/raft_sim_test
jobs=${SIM_JOBS:-1}
if [ ! -x "$bin" ]; then
  echo "missing $bin: build it first (ninja -C $build_dir raft_sim_test)" >&2
  exit 2
fi
out_dir=$(mktemp -d "${TMPDIR:-/tmp}/sim-seeds.XXXXXX")
report=$out_dir/report.txt

run() {
  local per=$(((n + jobs - 1) / jobs))
  local pids=()
  for ((j = 0; j < jobs; j++)); do
    local first=$((start + j * per))
    local count=$per
    if ((j * per + count > n)); then count=$((n - j * per)); fi
    ((count > 0)) || continue
    KV_SIM_SEEDS=$count KV_SIM_FIRST_SEED=$first "$bin" "sim seeds*" >"$out_dir/job$j.log" 2>&1 &
    pids+=($!)
  done
  local status=0
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  {
    echo "seeds $start..$((start + n - 1)) with $jobs job(s)"
    if grep -h -E "^(SIM FAILURE|REPLAY:)" "$out_dir"/job*.log; then
      echo "FAILED (logs in $out_dir)"
    elif [ "$status" -ne 0 ]; then
      echo "FAILED: a simulator process crashed (logs in $out_dir)"
      tail -n 20 "$out_dir"/job*.log
    else
      echo "all seeds passed"
    fi
  } >"$report"
  cat "$report"
  grep -q "all seeds passed" "$report"
}

if [ "${SIM_WAIT:-0}" = 1 ]; then
  run
else
  (run >/dev/null 2>&1 || true) &
  echo "running $n seeds from $start in the background (pid $!); report: $report"
fi
