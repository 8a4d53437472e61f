#!/usr/bin/env bash
# Runs `etcdctl check perf --load LOAD` against one 3-member cluster of BINARY (kvd or etcd, same
# flags) on loopback and prints the result, the load average before and after, each member's
# raft index and CPU seconds (user + system), so CPU per write can be compared between builds.
# With PERF=1 it also records the leader with `perf record -g` for 20 s, starting 15 s into the
# load (PERF_DELAY overrides), and leaves perf.data in the printed work dir.
# Usage: bench/check-perf-cpu.sh BINARY [s|m|l|xl] [base port]      (~70-90 s)
set -uo pipefail
bin=${1:?binary}
load=${2:-m}
base=${3:-44000}
work=$(mktemp -d /tmp/kvd-checkperf-cpu-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ "${PERF:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
cluster=""
endpoints=""
for i in 0 1 2; do
  cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 10 * i + 1))"
  endpoints+="${endpoints:+,}127.0.0.1:$((base + 10 * i))"
done
for i in 0 1 2; do
  "$bin" --name "m$i" --data-dir "$work/m$i" \
    --listen-client-urls "http://127.0.0.1:$((base + 10 * i))" \
    --advertise-client-urls "http://127.0.0.1:$((base + 10 * i))" \
    --listen-peer-urls "http://127.0.0.1:$((base + 10 * i + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 * i + 1))" \
    --initial-cluster "$cluster" --initial-cluster-state new \
    --initial-cluster-token checkperf >"$work/m$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  ETCDCTL_API=3 etcdctl --endpoints="$endpoints" get x >/dev/null 2>&1 && break
  sleep 0.2
done
status=$(ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint status 2>/dev/null)
leader_pid=""
for i in 0 1 2; do
  if echo "$status" | grep "127.0.0.1:$((base + 10 * i))," | grep -q ", true,"; then
    leader_pid=${pids[$i]}
  fi
done
echo "== $bin: etcdctl check perf --load $load (leader pid $leader_pid)"
echo "before: $(uptime)"
if [ "${PERF:-0}" = 1 ] && [ -n "$leader_pid" ]; then
  (sleep "${PERF_DELAY:-15}"
   timeout 20 perf record -F 499 -g -p "$leader_pid" -o "$work/perf.data" >/dev/null 2>&1) &
fi
ETCDCTL_API=3 etcdctl --endpoints="$endpoints" check perf --load "$load" 2>&1 | tr '\r' '\n' |
  grep -E 'PASS|FAIL|Slowest|Stddev|Throughput|Error' || true
echo "after: $(uptime)"
ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint status 2>&1 | cut -d, -f1,5,8,9
for p in "${pids[@]}"; do
  awk -v p="$p" '{printf "pid %s cpu %.1f s\n", p, ($14 + $15) / 100}' "/proc/$p/stat"
done
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
[ "${PERF:-0}" = 1 ] && echo "perf data: $work/perf.data"
