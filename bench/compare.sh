#!/usr/bin/env bash
# Side by side: a 3-member etcd 3.4.23 and a 3-member kvd on loopback, same flags, data dirs
# under one temp dir (same disk), both running for the whole run. Each workload of issue #6 runs
# against etcd, then kvd, then the next workload; prints a markdown table (etcd, kvd, kvd/etcd).
#
# Usage: bench/compare.sh [--quick] [--repeat N] [--failover-runs N] [--cpu-clients N]
#                         [--keys N] [--only LIST] [--shapes LIST] [--keep DIR]
#   --quick          small sizes, a few seconds per workload (about 5 minutes in all)
#   --repeat         run each write, read and cpu workload N times, alternating etcd and kvd;
#                    those cells show "median [min-max]" and the ratio is of the medians
#                    (default 1: this VM's identical runs differ by 10-25 %)
#   --failover-runs  kill -9 of the leader, median of N (default 10; quick: 3)
#   --cpu-clients    clients of the cpu workload (default 100; 1000 shows the batched path)
#   --keys           keys of 256 B loaded for the memory/disk/restart rows (default 1000000)
#   --only           comma list of workloads:
#                    write,checkperf,read,watch,slowwatch,cpu,split,memory,restart,failover
#                    (split: CPU per operation of the members and of kvbench and the bytes
#                    the members write to storage per operation, four shapes;
#                    checkperf also reports the members' and etcdctl's CPU per write)
#   --shapes         comma list of the split workload's shapes: w1000,w500,wbig,rs1000 (all)
#   --keep DIR       copy kvbench JSON reports and server logs to DIR
# Binaries: $KVD_BIN (build/server/kvd), $ETCD_BIN (/usr/bin/etcd), $KVBENCH_BIN
# (build/bench/kvbench/kvbench), etcdctl from PATH. Ports: $BASE_PORT (default 27000) upward,
# below Linux's ephemeral range (32768-60999), where a client socket of the other cluster could
# already hold a member's port (a kvd member once failed to bind 47120 that way).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvd=${KVD_BIN:-$root/build/server/kvd}
etcd=${ETCD_BIN:-/usr/bin/etcd}
kvbench=${KVBENCH_BIN:-$root/build/bench/kvbench/kvbench}
base_port=${BASE_PORT:-27000}
quick=0 repeat=1 failover_runs="" keys="" keep="" cpu_clients=100
only="write,checkperf,read,watch,slowwatch,cpu,split,memory,restart,failover"
shapes="w1000,w500,wbig,rs1000"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) quick=1 ;;
    --repeat) repeat=$2; shift ;;
    --failover-runs) failover_runs=$2; shift ;;
    --cpu-clients) cpu_clients=$2; shift ;;
    --keys) keys=$2; shift ;;
    --only) only=$2; shift ;;
    --shapes) shapes=$2; shift ;;
    --keep) keep=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for b in "$kvd" "$etcd" "$kvbench"; do [[ -x $b ]] || { echo "missing binary $b" >&2; exit 2; }; done
command -v etcdctl >/dev/null && command -v jq >/dev/null || { echo "need etcdctl and jq" >&2; exit 2; }

if ((quick)); then
  dur=3 keys=${keys:-20000} failover_runs=${failover_runs:-3} perf_loads="s" watchers=1000
  cpu_writes=10000 watch_puts=200 slow_puts=10000
else
  dur=10 keys=${keys:-1000000} failover_runs=${failover_runs:-10} perf_loads="l xl" watchers=10000
  cpu_writes=50000 watch_puts=500 slow_puts=40000
fi

work=$(mktemp -d /tmp/kvd-compare-XXXXXX)
declare -A PID EP CLIENT PEER
bench_pid=""
cleanup() {
  [[ -n $bench_pid ]] && kill -KILL "$bench_pid" 2>/dev/null || true
  for k in "${!PID[@]}"; do kill -KILL "${PID[$k]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $keep ]]; then mkdir -p "$keep" && cp -r "$work"/*.json "$work"/*.log "$keep"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# --- clusters -------------------------------------------------------------------------------
bin_of() { [[ $1 == etcd ]] && echo "$etcd" || echo "$kvd"; }
port_of() { [[ $1 == etcd ]] && echo $((base_port + 10 * $2)) || echo $((base_port + 100 + 10 * $2)); }
initial_cluster() {
  local s="" i
  for i in 0 1 2; do s+="${s:+,}m$i=http://127.0.0.1:$(($(port_of "$1" "$i") + 1))"; done
  echo "$s"
}
start_member() {  # label index
  local l=$1 i=$2 p
  p=$(port_of "$l" "$i")
  "$(bin_of "$l")" --name "m$i" --data-dir "$work/$l-m$i" \
    --listen-client-urls "http://127.0.0.1:$p" --advertise-client-urls "http://127.0.0.1:$p" \
    --listen-peer-urls "http://127.0.0.1:$((p + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((p + 1))" \
    --initial-cluster "$(initial_cluster "$l")" --initial-cluster-state new \
    --initial-cluster-token "compare-$l" --heartbeat-interval 100 --election-timeout 1000 \
    >>"$work/$l-m$i.log" 2>&1 &
  PID[$l$i]=$!
  EP[$l$i]="127.0.0.1:$p"
}
endpoints() {  # label [exclude-index]
  local s="" i
  for i in 0 1 2; do [[ $i == "${2:-}" ]] || s+="${s:+,}${EP[$1$i]}"; done
  echo "$s"
}
ctl() { ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=5s "$@"; }
wait_healthy() {  # endpoints ; polls `endpoint health` (a linearizable get) up to 120 s
  local t0=$SECONDS
  until ctl --endpoints="$1" endpoint health >/dev/null 2>&1; do
    ((SECONDS - t0 < 120)) || { log "not healthy: $1"; return 1; }
    sleep 0.05
  done
}
leader_index() {  # label -> index of the member that is leader
  local st i
  st=$(ctl --endpoints="$(endpoints "$1")" endpoint status -w json 2>/dev/null)
  local lead
  lead=$(jq -r '[.[] | .Status.leader] | map(select(. != 0)) | .[0]' <<<"$st")
  for i in 0 1 2; do
    if [[ $(jq -r --arg ep "${EP[$1$i]}" '.[] | select(.Endpoint | endswith($ep)) | .Status.header.member_id' <<<"$st") == "$lead" ]]; then
      echo "$i"; return
    fi
  done
  echo -1
}
# The 1-client rows talk to the leader of each cluster: one connection to a follower adds the
# forwarding hop (writes) or the read-index round trip (reads), and which member is m0's leader
# is up to the election, which made those rows swing between runs.
one_client_endpoints() {  # label
  local i
  i=$(leader_index "$1")
  if [[ $i -ge 0 ]]; then echo "${EP[$1$i]}"; else endpoints "$1"; fi
}
cpu_ticks() {  # label -> utime+stime of the three members, clock ticks
  local t=0 i s
  for i in 0 1 2; do
    s=$(cut -d' ' -f14,15 "/proc/${PID[$1$i]}/stat" 2>/dev/null || echo "0 0")
    t=$((t + ${s% *} + ${s#* }))
  done
  echo $t
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/${PID[$1$2]}/status"; }
io_write_bytes() {  # label -> bytes the three members sent to storage (/proc/<pid>/io)
  local t=0 i b
  for i in 0 1 2; do
    b=$(awk '/^write_bytes/ {print $2}' "/proc/${PID[$1$i]}/io" 2>/dev/null || echo 0)
    t=$((t + ${b:-0}))
  done
  echo $t
}

# --- kvbench ---------------------------------------------------------------------------------
# children_cpu_s VAR: sets VAR to the CPU seconds (user + system) of this shell's reaped
# children so far (`times`, second line). Must run in this shell, not in $(...): a subshell
# starts with zero children times.
children_cpu_s() {
  local LC_ALL=C  # `times` prints the locale's decimal point
  times >"$work/times.txt"
  printf -v "$1" '%s' "$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times.txt")"
}
# bench label name args... : runs kvbench on all members, JSON to $work/<label>-<name>.json and
# kvbench's own CPU seconds to $work/<label>-<name>.cpu (the only child reaped meanwhile).
bench() {
  local l=$1 name=$2 c0 c1; shift 2
  children_cpu_s c0
  "$kvbench" "$@" --endpoints "${BENCH_EPS:-$(endpoints "$l")}" --no-progress \
    --json "$work/$l-$name.json" >"$work/$l-$name.out" 2>&1 &
  bench_pid=$!
  wait "$bench_pid" || { log "kvbench $name on $l failed:"; tail -5 "$work/$l-$name.out" >&2; }
  bench_pid=""
  children_cpu_s c1
  awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f\n", b - a }' >"$work/$l-$name.cpu"
}
j() { jq -r "$2 // \"n/a\"" "$work/$1.json" 2>/dev/null || echo n/a; }
# Numbers on stdin -> "median" (one number) or "median [min-max]" (several); n/a for none.
median_of() {
  sort -g | awk 'function f(v) { return sprintf(v >= 100 ? "%.0f" : "%.3g", v) }
    $1 ~ /^[0-9.e+-]+$/ { v[++n] = $1 }
    END {
      if (n == 0) { print "n/a"; exit }
      m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      printf "%s", f(m); if (n > 1) printf " [%s-%s]", f(v[1]), f(v[n]); print ""
    }'
}
# med label name key: median_of the key over the repeats (files <label>-<name>.r<k>.json).
med() {
  local f
  for f in "$work/$1-$2".r*.json; do [[ -e $f ]] && jq -r "$3 // empty" "$f" 2>/dev/null; done |
    median_of
}

rows=()
row() {  # workload etcd kvd ; a cell may be "median [min-max]": the ratio is of the first numbers
  local ratio=- num='^[0-9.e+-]+( \[[^]]*\])?$'
  # Only a number or a "median [min-max]" cell has a ratio ("1.35 + 0.45" has none).
  if [[ $2 =~ $num && $3 =~ $num ]]; then
    ratio=$(awk -v a="${2%% *}" -v b="${3%% *}" 'BEGIN { if (a+0 > 0) printf "%.2f", b / a; else print "-" }')
  fi
  rows+=("| $1 | $2 | $3 | $ratio |")
  log "row: $1 | $2 | $3 | $ratio"
}
fmt() { awk -v v="$1" 'BEGIN { if (v ~ /^[0-9.e+-]+$/) printf (v >= 100 ? "%.0f" : "%.3g"), v; else print v }'; }
has() { [[ ",$only," == *",$1,"* ]]; }

log "work dir $work; starting etcd and kvd"
for l in etcd kvd; do for i in 0 1 2; do start_member $l $i; done; done
for l in etcd kvd; do wait_healthy "$(endpoints $l)"; done
log "both clusters healthy"

# --- writes ----------------------------------------------------------------------------------
if has write; then
  for c in 1 1000; do
    conns=$((c < 100 ? c : 100))
    for r in $(seq 1 "$repeat"); do
      for l in etcd kvd; do
        eps=$(if ((c == 1)); then one_client_endpoints $l; else endpoints $l; fi)
        BENCH_EPS=$eps bench $l write$c.r$r put --clients $c --conns $conns --key-size 8 \
          --val-size 256 --key-space-size 100000 --duration $dur
      done
    done
    row "writes/s, 256 B, $c clients" "$(med etcd write$c .throughput_per_s)" "$(med kvd write$c .throughput_per_s)"
    row "write p99 ms, $c clients" "$(med etcd write$c .latency.p99_ms)" "$(med kvd write$c .latency.p99_ms)"
  done
fi

# --- reads -----------------------------------------------------------------------------------
if has read; then
  for l in etcd kvd; do  # make sure every read key exists
    bench $l readload put --clients 100 --conns 10 --key-size 8 --val-size 256 \
      --key-space-size 10000 --sequential-keys --total 10000
  done
  for cons in l s; do
    for c in 1 1000; do
      conns=$((c < 100 ? c : 100))
      for r in $(seq 1 "$repeat"); do
        for l in etcd kvd; do
          eps=$(if ((c == 1)); then one_client_endpoints $l; else endpoints $l; fi)
          BENCH_EPS=$eps bench $l read$cons$c.r$r range --consistency $cons --clients $c \
            --conns $conns --key-size 8 --key-space-size 10000 --duration $dur
        done
      done
      name=$([[ $cons == l ]] && echo linearizable || echo serializable)
      row "$name reads/s, $c clients" "$(med etcd read$cons$c .throughput_per_s)" "$(med kvd read$cons$c .throughput_per_s)"
      row "$name read p99 ms, $c clients" "$(med etcd read$cons$c .latency.p99_ms)" "$(med kvd read$cons$c .latency.p99_ms)"
    done
  done
fi

# --- watch fan-out ---------------------------------------------------------------------------
# A fixed number of puts (not a duration): each put is one event per watcher, and a single
# kvbench process has to receive all of them (watchers x puts events).
if has watch; then
  declare -A WF=()
  for rate in 100 1000; do
    for l in etcd kvd; do
      bench $l watch$rate watch --watchers $watchers --streams 100 --prefix --key-prefix /watch/ \
        --key-size 12 --key-space-size 1000 --val-size 256 --clients 10 --conns 10 \
        --rate $rate --total $watch_puts --drain-timeout 120
    done
    for l in etcd kvd; do
      WF[$l]=$(awk -v r="$(j $l-watch$rate .events_of_acked_puts)" -v e="$(j $l-watch$rate .events_expected)" \
        'BEGIN { if (e > 0) printf "%.4f", r / e; else print "n/a" }')
    done
    w="watch $watchers watchers, $watch_puts puts at $rate/s"
    row "$w: puts acknowledged (5 s deadline)" "$(j etcd-watch$rate .ok)" "$(j kvd-watch$rate .ok)"
    row "$w: events of acked puts delivered / expected" "${WF[etcd]}" "${WF[kvd]}"
    row "$w: put-ack-to-event p99 ms" "$(fmt "$(j etcd-watch$rate .event_latency.p99_ms)")" "$(fmt "$(j kvd-watch$rate .event_latency.p99_ms)")"
    row "$w: put-send-to-event p99 ms" "$(fmt "$(j etcd-watch$rate .event_send_latency.p99_ms)")" "$(fmt "$(j kvd-watch$rate .event_send_latency.p99_ms)")"
    row "$w: puts/s achieved" "$(fmt "$(j etcd-watch$rate .throughput_per_s)")" "$(fmt "$(j kvd-watch$rate .throughput_per_s)")"
  done
fi

# --- slow watchers ---------------------------------------------------------------------------
# Puts of 1 KiB (100 clients, unlimited rate) with one reading watcher on their prefix, then the
# same with 100 more streams whose watcher stops reading once created (slow consumers: the
# server's writes to them back up through HTTP/2 flow control). Issue #6: slow watchers never
# slow writes.
if has slowwatch; then
  declare -A SLOWRSS=()
  for l in etcd kvd; do
    for st in 0 100; do
      bench $l slow$st watch --watchers 1 --streams 1 --prefix --key-prefix "/slow$st/" \
        --key-size 16 --val-size 1024 --clients 100 --conns 10 --key-space-size 100000 \
        --rate 1000000 --total $slow_puts --stalled-streams $st --drain-timeout 60
    done
    m=0
    for i in 0 1 2; do r=$(rss_kib $l $i); ((r > m)) && m=$r; done
    SLOWRSS[$l]=$(awk -v k=$m 'BEGIN { printf "%.0f", k / 1024 }')
  done
  ratio() { awk -v a="$(j "$1-slow100" .throughput_per_s)" -v b="$(j "$1-slow0" .throughput_per_s)" \
    'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
  row "puts/s, 1 KiB, 100 clients, one reading watcher" "$(fmt "$(j etcd-slow0 .throughput_per_s)")" "$(fmt "$(j kvd-slow0 .throughput_per_s)")"
  row "same with 100 stalled watch streams: puts/s" "$(fmt "$(j etcd-slow100 .throughput_per_s)")" "$(fmt "$(j kvd-slow100 .throughput_per_s)")"
  row "same: puts/s with stalled streams / without" "$(ratio etcd)" "$(ratio kvd)"
  row "put p99 ms without / with stalled streams" "$(fmt "$(j etcd-slow0 .latency.p99_ms)") / $(fmt "$(j etcd-slow100 .latency.p99_ms)")" "$(fmt "$(j kvd-slow0 .latency.p99_ms)") / $(fmt "$(j kvd-slow100 .latency.p99_ms)")"
  row "largest member RSS MiB after the stalled run" "${SLOWRSS[etcd]}" "${SLOWRSS[kvd]}"
fi

# --- CPU per 10,000 writes ------------------------------------------------------------------
if has cpu; then
  hz=$(getconf CLK_TCK)
  declare -A CPU=()
  for r in $(seq 1 "$repeat"); do
    for l in etcd kvd; do
      t0=$(cpu_ticks $l)
      bench $l cpu.r$r put --clients "$cpu_clients" --conns 10 --key-size 8 --val-size 256 \
        --key-space-size 100000 --total $cpu_writes
      t1=$(cpu_ticks $l)
      CPU[$l]+=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$(j $l-cpu.r$r .ok)" \
        'BEGIN { if (n + 0 > 0) printf "%.4g", d / hz * 10000 / n; else print "n/a" }')" "
    done
  done
  row "CPU s of 3 members per 10,000 writes ($cpu_clients clients)" \
    "$(tr ' ' '\n' <<<"${CPU[etcd]}" | median_of)" "$(tr ' ' '\n' <<<"${CPU[kvd]}" | median_of)"
fi

# --- CPU split: servers against the load generator, per operation -----------------------------
# The two servers and kvbench share the machine's cores, so a rate is bounded by the servers'
# CPU per operation plus kvbench's. Each shape records both (members: /proc ticks of the three;
# kvbench: its own user + system time) so a ratio can be read against that ceiling.
if has split; then
  hz=$(getconf CLK_TCK)
  if ! has read && [[ ,$shapes, == *,rs1000,* ]]; then
    for l in etcd kvd; do
      bench $l readload put --clients 100 --conns 10 --key-size 8 --val-size 256 \
        --key-space-size 10000 --sequential-keys --total 10000
    done
  fi
  split_writes=$((quick ? 5000 : 30000)) split_reads=$((quick ? 20000 : 100000))
  split_shapes=(
    "w1000|writes 256 B, 1000 clients / 100 conns|put --clients 1000 --conns 100 --key-size 8 --val-size 256 --key-space-size 100000 --total $split_writes"
    "w500|writes 256 B, 500 clients / 500 conns|put --clients 500 --conns 500 --key-size 8 --val-size 256 --key-space-size 100000 --total $split_writes"
    "wbig|writes of check perf's size (256 B key, 1 KiB value), 500 clients / 500 conns|put --clients 500 --conns 500 --key-size 256 --val-size 1024 --key-space-size 1000000 --total $split_writes"
    "rs1000|serializable reads, 1000 clients / 100 conns|range --consistency s --clients 1000 --conns 100 --key-size 8 --key-space-size 10000 --total $split_reads"
  )
  for shape in "${split_shapes[@]}"; do
    IFS='|' read -r id title args <<<"$shape"
    [[ ,$shapes, == *,$id,* ]] || continue
    declare -A SRV=() CLI=() IOW=()
    for r in $(seq 1 "$repeat"); do
      for l in etcd kvd; do
        t0=$(cpu_ticks $l) b0=$(io_write_bytes $l)
        # shellcheck disable=SC2086  # args is a word list
        bench $l split-$id.r$r $args
        t1=$(cpu_ticks $l) b1=$(io_write_bytes $l)
        n=$(j $l-split-$id.r$r .ok)
        IOW[$l]+=$(awk -v d=$((b1 - b0)) -v n="$n" \
          'BEGIN { if (n + 0 > 0) printf "%.2f", d / 1024 / n; else print "n/a" }')" "
        SRV[$l]+=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" \
          'BEGIN { if (n + 0 > 0) printf "%.0f", d / hz * 1e6 / n; else print "n/a" }')" "
        CLI[$l]+=$(awk -v c="$(cat "$work/$l-split-$id.r$r.cpu")" -v n="$n" \
          'BEGIN { if (n + 0 > 0) printf "%.0f", c * 1e6 / n; else print "n/a" }')" "
      done
    done
    row "$title: ops/s" "$(med etcd split-$id .throughput_per_s)" "$(med kvd split-$id .throughput_per_s)"
    row "$title: CPU us per op, 3 members" "$(tr ' ' '\n' <<<"${SRV[etcd]}" | median_of)" \
      "$(tr ' ' '\n' <<<"${SRV[kvd]}" | median_of)"
    row "$title: CPU us per op, kvbench" "$(tr ' ' '\n' <<<"${CLI[etcd]}" | median_of)" \
      "$(tr ' ' '\n' <<<"${CLI[kvd]}" | median_of)"
    row "$title: KiB written to storage per op, 3 members" \
      "$(tr ' ' '\n' <<<"${IOW[etcd]}" | median_of)" "$(tr ' ' '\n' <<<"${IOW[kvd]}" | median_of)"
    unset SRV CLI IOW
  done
fi

# --- memory and disk at N keys, then restart time ---------------------------------------------
if has memory || has restart; then
  declare -A RSS=() DISK=() RESTART=()
  for l in etcd kvd; do
    log "$l: loading $keys keys of 256 B"
    bench $l load put --clients 1000 --conns 100 --key-prefix /m/ --key-size 12 --val-size 256 \
      --key-space-size "$keys" --sequential-keys --total "$keys" --timeout-ms 30000
    sleep 2
    m=0
    for i in 0 1 2; do r=$(rss_kib $l $i); ((r > m)) && m=$r; done
    RSS[$l]=$(awk -v k=$m 'BEGIN { printf "%.0f", k / 1024 }')
    DISK[$l]=$(du -sm "$work/$l-m0" | cut -f1)
    RESTART[$l]="n/a"
    if has restart; then
      lead=$(leader_index $l)
      victim=$(((lead + 1) % 3))
      kill -KILL "${PID[$l$victim]}"; wait "${PID[$l$victim]}" 2>/dev/null || true
      t0=$(date +%s.%N)
      start_member $l $victim
      wait_healthy "${EP[$l$victim]}"
      t1=$(date +%s.%N)
      RESTART[$l]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    fi
  done
  ok_load="$(j etcd-load .ok) / $(j kvd-load .ok)"
  if has memory; then
    row "largest member RSS MiB after $keys keys of 256 B (loaded: $ok_load)" "${RSS[etcd]}" "${RSS[kvd]}"
    row "member data dir MiB after $keys keys" "${DISK[etcd]}" "${DISK[kvd]}"
    row "load of $keys keys, writes/s (1000 clients)" "$(fmt "$(j etcd-load .throughput_per_s)")" "$(fmt "$(j kvd-load .throughput_per_s)")"
  fi
  has restart && row "restart of a member with $keys keys: s until healthy" "${RESTART[etcd]}" "${RESTART[kvd]}"
fi

# --- failover --------------------------------------------------------------------------------
if has failover; then
  declare -A FO=()
  for l in etcd kvd; do
    gaps=()
    for run in $(seq 1 "$failover_runs"); do
      lead=$(leader_index $l)
      ((lead >= 0)) || { log "$l: no leader"; continue; }
      BENCH_EPS=$(endpoints $l "$lead")  # load through the two members that survive
      "$kvbench" put --endpoints "$BENCH_EPS" --clients 100 --conns 10 --key-size 8 --val-size 256 \
        --key-space-size 100000 --duration 8 --timeout-ms 3000 --no-progress \
        --json "$work/$l-failover$run.json" >"$work/$l-failover$run.out" 2>&1 &
      bench_pid=$!
      sleep 3
      kill -KILL "${PID[$l$lead]}"; wait "${PID[$l$lead]}" 2>/dev/null || true
      wait "$bench_pid" || true
      bench_pid=""
      gaps+=("$(j $l-failover$run .max_success_gap_ms)")
      start_member $l "$lead"
      wait_healthy "$(endpoints $l)"
      sleep 1
    done
    FO[$l]=$(printf '%s\n' "${gaps[@]}" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.0f", v[(NR + 1) / 2]; else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    log "$l failover gaps (ms): ${gaps[*]}"
  done
  row "failover: ms without a successful write after kill -9 of the leader (median of $failover_runs)" "${FO[etcd]}" "${FO[kvd]}"
fi

# --- etcdctl check perf ------------------------------------------------------------------------
# Last: --load xl leaves etcd with a ~900 MiB bbolt file (its writes are deleted, the space is
# not returned), which would weigh on every workload after it.
if has checkperf; then
  for load in $perf_loads; do
    declare -A cp=()
    for l in etcd kvd; do
      eps=$(endpoints $l)
      # CPU of the members and of etcdctl itself (the only children reaped meanwhile, with the
      # pipeline's tr and grep), per write: check perf writes for 60 s at the printed rate. Both
      # include check perf's closing prefix delete of everything it wrote.
      t0=$(cpu_ticks $l) w0=$SECONDS
      children_cpu_s c0
      ctl --endpoints="$eps" --command-timeout=300s check perf --load "$load" 2>&1 |
        tr '\r' '\n' | grep -v '^ *[0-9]* / [0-9]* ' >"$work/$l-checkperf-$load.log" || true
      children_cpu_s c1
      t1=$(cpu_ticks $l) w1=$SECONDS
      out=$(grep -E 'PASS|FAIL|Slowest|Throughput' "$work/$l-checkperf-$load.log" || true)
      cp[$l-result]=$(grep -qE '^FAIL' <<<"$out" && echo FAIL || (grep -q 'PASS' <<<"$out" && echo PASS || echo '?'))
      cp[$l-tput]=$(grep -oE '[0-9]+ writes/s' <<<"$out" | grep -oE '^[0-9]+' || echo n/a)
      cp[$l-slow]=$(grep -oE 'Slowest request took[a-z ]*:? [0-9.]+' <<<"$out" | grep -oE '[0-9.]+$' || echo n/a)
      cp[$l-srv]=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v r="${cp[$l-tput]}" \
        'BEGIN { if (r + 0 > 0) printf "%.0f", d / hz * 1e6 / (r * 60); else print "n/a" }')
      cp[$l-ctl]=$(awk -v a="$c0" -v b="$c1" -v r="${cp[$l-tput]}" \
        'BEGIN { if (r + 0 > 0) printf "%.0f", (b - a) * 1e6 / (r * 60); else print "n/a" }')
      cp[$l-cores]=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
        -v a="$c0" -v b="$c1" -v w=$((w1 - w0)) \
        'BEGIN { if (w > 0) printf "%.2f + %.2f", d / hz / w, (b - a) / w; else print "n/a" }')
    done
    row "check perf --load $load: result" "${cp[etcd-result]}" "${cp[kvd-result]}"
    row "check perf --load $load: writes/s" "${cp[etcd-tput]}" "${cp[kvd-tput]}"
    row "check perf --load $load: slowest s" "${cp[etcd-slow]}" "${cp[kvd-slow]}"
    row "check perf --load $load: CPU us per write, 3 members" "${cp[etcd-srv]}" "${cp[kvd-srv]}"
    row "check perf --load $load: CPU us per write, etcdctl" "${cp[etcd-ctl]}" "${cp[kvd-ctl]}"
    row "check perf --load $load: cores busy, members + etcdctl" "${cp[etcd-cores]}" "${cp[kvd-cores]}"
  done
fi

echo
echo "| workload | etcd 3.4.23 | kvd | kvd / etcd |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
