#!/usr/bin/env bash
# Instructions one member spends per 256 B put, counted by valgrind's callgrind: repeatable for
# the same binary and inputs whatever else the machine does (wall-clock A/B runs on the 2-core VM
# differ by 10-15 % between identical runs). Starts ONE member (corruption check off) under
# callgrind on 127.0.0.1:${PORT:-2379}/+1, runs `kvbench put` (100 clients, 10 connections,
# 8-byte keys over 100,000, 256 B values), stops it with SIGTERM, and repeats without puts to
# subtract start and stop. Prints instructions per put (all threads: gRPC, raft, persist, apply).
# Usage: bench/instructions-per-put.sh [N]    (default 10000 puts; ~1 minute)
# Binaries: $KVD_BIN (build/server/kvd), $KVBENCH_BIN (build/bench/kvbench/kvbench), etcdctl,
# valgrind. Profiles stay in the temp dir printed first (callgrind_annotate them) if KEEP=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvd=${KVD_BIN:-$root/build/server/kvd}
kvbench=${KVBENCH_BIN:-$root/build/bench/kvbench/kvbench}
n=${1:-10000}
port=${PORT:-2379}
work=$(mktemp -d /tmp/kvd-instructions-XXXXXX)
echo "work dir $work"
# run() executes in a command substitution (a subshell): the member's pid goes to a file so that
# an interrupted run does not leave valgrind and kvd behind.
cleanup() {
  if [ -f "$work/pid" ]; then kill -9 "$(cat "$work/pid")" 2>/dev/null || true; fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
run() {  # label puts: prints the total instructions of one member's life
  local d=$work/$1 ep=127.0.0.1:$port
  mkdir -p "$d"
  valgrind --tool=callgrind --callgrind-out-file="$d/callgrind.out" "$kvd" --name m0 \
    --data-dir "$d/data" --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "m0=http://127.0.0.1:$((port + 1))" \
    --experimental-corrupt-check-time=0s >"$d/log" 2>&1 &
  local pid=$! i healthy=0
  echo "$pid" >"$work/pid"
  for i in $(seq 1 120); do
    if ETCDCTL_API=3 etcdctl --endpoints "$ep" endpoint health >/dev/null 2>&1; then
      healthy=1
      break
    fi
    sleep 1
  done
  if [ "$healthy" != 1 ]; then
    echo "kvd under valgrind did not become healthy (log: $d/log)" >&2
    exit 1
  fi
  if [ "$2" -gt 0 ]; then
    "$kvbench" put --endpoints "$ep" --no-progress --clients 100 --conns 10 --key-size 8 \
      --val-size 256 --key-space-size 100000 --total "$2" >"$d/kvbench.out"
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$work/pid"
  awk '/^summary:/ {print $2}' "$d/callgrind.out"
}
with=$(run puts "$n")
without=$(run idle 0)
echo "instructions: $with with $n puts, $without without"
awk -v a="$with" -v b="$without" -v n="$n" 'BEGIN {printf "instructions per put: %.0f\n", (a - b) / n}'
