#!/usr/bin/env bash
# Runs `etcdctl check perf --load LOAD` against a 3-member etcd 3.4.23 and a 3-member kvd, one
# after the other, on loopback with the same flags, temp data dirs on the same disk, and prints
# both results. Usage: bench/check-perf-vs-etcd.sh [s|m|l|xl]   (default s; ~70 s per server)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
load=${1:-s}
kvd=${KVD_BIN:-$root/build/server/kvd}
etcd=${ETCD_BIN:-/usr/bin/etcd}
work=$(mktemp -d /tmp/kvd-checkperf-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

run_one() {  # $1 = label, $2 = binary, $3 = base port
  local label=$1 bin=$2 base=$3 cluster="" endpoints=""
  for i in 0 1 2; do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 10 * i + 1))"
    endpoints+="${endpoints:+,}127.0.0.1:$((base + 10 * i))"
  done
  pids=()
  for i in 0 1 2; do
    "$bin" --name "m$i" --data-dir "$work/$label-m$i" \
      --listen-client-urls "http://127.0.0.1:$((base + 10 * i))" \
      --advertise-client-urls "http://127.0.0.1:$((base + 10 * i))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 10 * i + 1))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 * i + 1))" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token checkperf >"$work/$label-m$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 100); do
    ETCDCTL_API=3 etcdctl --endpoints="$endpoints" get x >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "== $label ($bin): etcdctl check perf --load $load"
  ETCDCTL_API=3 etcdctl --endpoints="$endpoints" check perf --load "$load" 2>&1 |
    grep -v '^ *[0-9]* / [0-9]* ' | tr '\r' '\n' | grep -E 'PASS|FAIL|Slowest|Stddev|Throughput' || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

run_one etcd "$etcd" 41000
run_one kvd "$kvd" 42000
