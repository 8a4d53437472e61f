#!/usr/bin/env bash
# A local 3-member kvd cluster on 127.0.0.1, for trying kvd out.
#   scripts/cluster.sh start    start the members in the background (data in $KVD_CLUSTER_DIR)
#   scripts/cluster.sh status   show each member's status
#   scripts/cluster.sh stop     stop the members (SIGTERM: the leader hands leadership over)
#   scripts/cluster.sh clean    stop, then delete the data dirs
# Client ports 2379, 22379, 32379; peer ports 2380, 22380, 32380 (as etcd's Procfile uses).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kvd=${KVD_BIN:-$root/build/server/kvd}
dir=${KVD_CLUSTER_DIR:-$root/.cluster}
names=(kvd1 kvd2 kvd3)
client_ports=(2379 22379 32379)
peer_ports=(2380 22380 32380)
endpoints="127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
initial_cluster=""
for i in 0 1 2; do
  initial_cluster+="${initial_cluster:+,}${names[$i]}=http://127.0.0.1:${peer_ports[$i]}"
done

running_pid() {  # prints the pid of member $1 if it is running
  local f="$dir/${names[$1]}.pid"
  [ -f "$f" ] || return 1
  local pid
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  [ -x "$kvd" ] || { echo "cluster: $kvd is not built (run scripts/build.sh)" >&2; exit 1; }
  mkdir -p "$dir"
  for i in 0 1 2; do
    if running_pid "$i" >/dev/null; then
      echo "cluster: ${names[$i]} already running"
      continue
    fi
    local state=new
    [ -d "$dir/${names[$i]}.data" ] && state=existing
    nohup "$kvd" --name "${names[$i]}" --data-dir "$dir/${names[$i]}.data" \
      --listen-client-urls "http://127.0.0.1:${client_ports[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${client_ports[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
      --initial-cluster "$initial_cluster" --initial-cluster-state "$state" \
      --initial-cluster-token kvd-local >"$dir/${names[$i]}.log" 2>&1 &
    echo $! >"$dir/${names[$i]}.pid"
  done
  # Wait (bounded) until a linearizable read succeeds, i.e. there is a leader.
  for _ in $(seq 1 100); do
    if ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --command-timeout=1s get health \
      >/dev/null 2>&1; then
      cat <<MSG
kvd: a 3-member cluster is running (data and logs in $dir).
  export ETCDCTL_API=3 ENDPOINTS=$endpoints
  etcdctl --endpoints=\$ENDPOINTS put greeting hello
  etcdctl --endpoints=\$ENDPOINTS get greeting
  etcdctl --endpoints=\$ENDPOINTS endpoint status -w table
  scripts/cluster.sh status | stop | clean
MSG
      return 0
    fi
    sleep 0.2
  done
  echo "cluster: no leader after 20 s; see the logs in $dir" >&2
  exit 1
}

stop() {
  for i in 0 1 2; do
    local pid
    if pid=$(running_pid "$i"); then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "cluster: stopped ${names[$i]}"
    fi
    rm -f "$dir/${names[$i]}.pid"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint status -w table ;;
  clean) stop; rm -rf "$dir" ;;
  *) echo "usage: $0 start|status|stop|clean" >&2; exit 2 ;;
esac
