#!/usr/bin/env bash
# Where a write's CPU goes, by pipeline stage: starts a local 3-member kvd (scripts/cluster.sh, in
# a temp dir, client ports 2379/22379/32379), warms it with 10,000 puts, runs N puts of 256 B
# (kvbench, 100 clients over all members) and prints, per thread name (kvd-apply, kvd-persist,
# kvd-raft, kvd-send, gRPC's threads, RocksDB's background threads), the CPU microseconds and the
# context switches per write of the leader (L) and of the two followers together (F), from
# /proc/<pid>/task/*/{stat,status}.
# Usage: bench/write-cpu-by-thread.sh [N]     (default 50000)
#        CLIENTS=1 bench/write-cpu-by-thread.sh 5000   (one client, one connection, to the leader)
#        CLIENTS=1000 CONNS=100 bench/write-cpu-by-thread.sh 200000   (connections: default
#        min(CLIENTS, 10))
# Binaries: $KVD_BIN (build/server/kvd), $KVBENCH_BIN (build/bench/kvbench/kvbench), etcdctl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvd=${KVD_BIN:-$root/build/server/kvd}
kvbench=${KVBENCH_BIN:-$root/build/bench/kvbench/kvbench}
n=${1:-50000}
dir=$(mktemp -d /tmp/kvd-cpu-by-thread-XXXXXX)
cluster() { KVD_BIN=$kvd KVD_CLUSTER_DIR=$dir "$root/scripts/cluster.sh" "$@"; }
trap 'cluster clean >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
cluster start >/dev/null
ep=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379
clients=${CLIENTS:-100}
conns=${CONNS:-$((clients < 10 ? clients : 10))}
put() {  # total [endpoints]
  "$kvbench" put --endpoints "${2:-$ep}" --clients "$clients" --conns "$conns" \
    --key-size 8 --val-size 256 --key-space-size 100000 --no-progress --total "$1"
}
put 10000 >/dev/null
lead_port=$(ETCDCTL_API=3 etcdctl --endpoints=$ep endpoint status |
  awk -F', ' '$5 == "true" {split($1, a, ":"); print a[2]}')
# Fewer than 10 clients talk to the leader only (a follower would add the forwarding hop).
bench_ep=$ep
((clients >= 10)) || bench_ep=127.0.0.1:$lead_port
snapshot() {  # role thread-name ticks, one line per thread of every member
  local f p role t
  for f in "$dir"/*.pid; do
    p=$(cat "$f")
    role=F
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "listen-client-urls http://127.0.0.1:$lead_port " &&
      role=L
    for t in /proc/"$p"/task/*; do
      echo "$role $(tr ' ' _ <"$t/comm") $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)" \
        "$(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "$t/status" 2>/dev/null || echo 0)"
    done
  done
}
snapshot >"$dir/before"
put "$n" "$bench_ep" | grep -E 'Requests/sec' || true
snapshot >"$dir/after"
awk -v n="$n" -v hz="$(getconf CLK_TCK)" '
  NR == FNR { a[$1 " " $2] += $3; sa[$1 " " $2] += $4; next }
  { b[$1 " " $2] += $3; sb[$1 " " $2] += $4 }
  END {
    for (k in b) {
      d = (b[k] - a[k]) / hz * 1e6 / n
      s = (sb[k] - sa[k]) / n
      if (d > 0 || s >= 0.01) printf "%-3s %-18s %7.1f us %6.2f switches\n", substr(k, 1, 1), substr(k, 3), d, s
    }
  }' "$dir/before" "$dir/after" | sort -k3 -nr |
  awk '{ print; t += $3; w += $5 } END { printf "all threads of the 3 members, per write: %.1f us of CPU, %.1f context switches\n", t, w }'
