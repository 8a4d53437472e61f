#!/usr/bin/env bash
# kvd's container entrypoint for a StatefulSet. It derives the member's flags from the pod's
# stable hostname (<statefulset>-<ordinal>) and the core cluster size, then execs kvd.
#
#   entrypoint.sh [run] [extra kvd flags...]   start (or restart, or join) this member
#   entrypoint.sh pre-stop                     preStop hook: an elastic member leaves the cluster
#   entrypoint.sh print-flags                  print the flags a fresh start would use, one a line
#
# Members 0..KVD_REPLICAS-1 form the core: they bootstrap the cluster together
# (podManagementPolicy: Parallel) and are never removed by this script. Members with a higher
# ordinal are elastic: with no data they join through MemberAdd as a learner and are promoted
# once caught up; their preStop hook removes them (StatefulSet scale-down stops the highest
# ordinals first), and one that finds itself no longer a member on start rejoins from scratch.
# A member that finds its data on the volume restarts with it (same name, same URLs).
#
# Environment (defaults in brackets):
#   KVD_HOSTNAME           the pod's hostname [$HOSTNAME or `hostname`]
#   KVD_REPLICAS           core cluster size [3]
#   KVD_SERVICE            headless Service name [kvd]
#   POD_NAMESPACE          namespace [default]
#   KVD_CLUSTER_DOMAIN     cluster DNS domain [cluster.local]
#   KVD_PEER_HOST_FORMAT   printf format of member i's host name, given i + KVD_HOST_OFFSET
#                          [<statefulset>-%d.<service>.<namespace>.svc.<domain>]
#   KVD_HOST_OFFSET        added to the ordinal for KVD_PEER_HOST_FORMAT [0]
#   KVD_LISTEN_HOST        address to listen on [0.0.0.0]
#   KVD_CLIENT_PORT, KVD_PEER_PORT, KVD_METRICS_PORT   [2379, 2380, 2381]
#   KVD_DATA_DIR           data directory [/var/lib/kvd/data]
#   KVD_CLUSTER_TOKEN      --initial-cluster-token [the StatefulSet name]
#   KVD_BIN, KVCTL_BIN     the server and the CLI [kvd, kvctl] (etcd / etcdctl work too)
#   KVD_JOIN_TIMEOUT_SECONDS     how long a new member tries MemberAdd [120]
#   KVD_PROMOTE_TIMEOUT_SECONDS  how long the promoter retries MemberPromote [300]
#   KVD_RESTORE_FROM       a snapshot file (`kvctl snapshot save`) that core members bootstrapping
#                          with an empty volume restore from (kvd --restore) [none]
set -euo pipefail

mode=run
case "${1:-}" in
  run | pre-stop | print-flags)
    mode=$1
    shift
    ;;
esac

log() { echo "entrypoint: $*" >&2; }

hostname_=${KVD_HOSTNAME:-${HOSTNAME:-$(hostname)}}
if [[ ! $hostname_ =~ ^(.+)-([0-9]+)$ ]]; then
  log "hostname '$hostname_' is not <statefulset>-<ordinal>"
  exit 1
fi
set_name=${BASH_REMATCH[1]}
ordinal=${BASH_REMATCH[2]}
replicas=${KVD_REPLICAS:-3}
service=${KVD_SERVICE:-kvd}
namespace=${POD_NAMESPACE:-default}
domain=${KVD_CLUSTER_DOMAIN:-cluster.local}
host_format=${KVD_PEER_HOST_FORMAT:-${set_name}-%d.${service}.${namespace}.svc.${domain}}
host_offset=${KVD_HOST_OFFSET:-0}
listen_host=${KVD_LISTEN_HOST:-0.0.0.0}
client_port=${KVD_CLIENT_PORT:-2379}
peer_port=${KVD_PEER_PORT:-2380}
metrics_port=${KVD_METRICS_PORT:-2381}
data_dir=${KVD_DATA_DIR:-/var/lib/kvd/data}
token=${KVD_CLUSTER_TOKEN:-$set_name}
kvd_bin=${KVD_BIN:-kvd}
kvctl_bin=${KVCTL_BIN:-kvctl}
join_timeout=${KVD_JOIN_TIMEOUT_SECONDS:-120}
promote_timeout=${KVD_PROMOTE_TIMEOUT_SECONDS:-300}

if ! [[ $replicas =~ ^[1-9][0-9]*$ && $host_offset =~ ^[0-9]+$ ]]; then
  log "KVD_REPLICAS and KVD_HOST_OFFSET must be numbers"
  exit 1
fi

# shellcheck disable=SC2059 # the format is the point: KVD_PEER_HOST_FORMAT
host_of() { printf "$host_format" $(($1 + host_offset)); }
name_of() { echo "${set_name}-$1"; }
peer_url_of() { echo "http://$(host_of "$1"):${peer_port}"; }
client_url_of() { echo "http://$(host_of "$1"):${client_port}"; }

name=$(name_of "$ordinal")
my_peer_url=$(peer_url_of "$ordinal")
my_client_url=$(client_url_of "$ordinal")
# Where a new or leaving member reaches the cluster: the core members.
core_endpoints=""
for ((i = 0; i < replicas; i++)); do
  [[ $i -eq $ordinal ]] && continue
  core_endpoints+="${core_endpoints:+,}$(client_url_of "$i")"
done
# The bootstrap record: the cluster flags this member first started with, reused on restart.
bootstrap_file=${data_dir%/}.bootstrap.env

common_flags=(
  "--name=$name"
  "--data-dir=$data_dir"
  "--listen-peer-urls=http://${listen_host}:${peer_port}"
  "--listen-client-urls=http://${listen_host}:${client_port}"
  "--listen-metrics-urls=http://${listen_host}:${metrics_port}"
  "--initial-advertise-peer-urls=$my_peer_url"
  "--advertise-client-urls=$my_client_url"
  "--initial-cluster-token=$token"
)

core_cluster() {
  local list="" i
  for ((i = 0; i < replicas; i++)); do
    list+="${list:+,}$(name_of "$i")=$(peer_url_of "$i")"
  done
  echo "$list"
}

ctl() { "$kvctl_bin" --endpoints="$core_endpoints" --command-timeout=5s "$@"; }

# This member's ID in the cluster's member list (matched by peer URL, since an added member that
# has not started yet has no name), or nothing.
member_id() {
  ctl member list -w simple 2>/dev/null |
    awk -F', ' -v url="$my_peer_url" '{ n = split($4, urls, ","); for (i = 1; i <= n; i++) if (urls[i] == url) print $1 }'
}

# Adds this member as a learner; sets initial_cluster from MemberAdd's answer (the etcdctl lines
# ETCD_INITIAL_CLUSTER="..."), retrying until join_timeout.
join_as_learner() {
  local deadline=$((SECONDS + join_timeout)) out=""
  while true; do
    if out=$(ctl member add "$name" --peer-urls="$my_peer_url" --learner 2>&1); then
      break
    fi
    # etcdctl says "code = Unimplemented"; kvctl prints gRPC's empty message as nothing. Either
    # way retrying cannot help: exit, and the kubelet restarts the pod with a back-off.
    if [[ -z $out || $out == *"nimplemented"* ]]; then
      log "the cluster does not implement MemberAdd: cannot join (${out:-no reason given})"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "MemberAdd failed for ${join_timeout}s: $out"
      exit 1
    fi
    log "MemberAdd not accepted yet ($out); retrying"
    sleep 2
  done
  initial_cluster=$(echo "$out" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
  if [[ -z $initial_cluster ]]; then
    log "no ETCD_INITIAL_CLUSTER in MemberAdd's answer: $out"
    exit 1
  fi
}

# Background: promote this learner once it has caught up (the leader refuses before that).
promote_later() {
  local deadline=$((SECONDS + promote_timeout)) id out
  while ((SECONDS < deadline)); do
    sleep 2
    id=$(member_id) || true
    [[ -z $id ]] && continue
    if out=$(ctl member promote "$id" 2>&1); then
      log "promoted $name ($id)"
      return 0
    fi
    [[ $out == *"not a learner"* ]] && return 0
  done
  log "could not promote $name within ${promote_timeout}s: $out"
}

case "$mode" in
  print-flags)
    printf '%s\n' "${common_flags[@]}" "--initial-cluster=$(core_cluster)" \
      "--initial-cluster-state=new"
    exit 0
    ;;
  pre-stop)
    if ((ordinal < replicas)); then
      log "core member $name stays in the cluster"
      exit 0
    fi
    id=$(member_id) || true
    if [[ -z $id ]]; then
      log "$name is not a member (already removed)"
      exit 0
    fi
    ctl member remove "$id"
    log "removed $name ($id) before stopping"
    exit 0
    ;;
esac

mkdir -p "$data_dir"
chmod 700 "$data_dir" 2>/dev/null || true
promote=false
restore_flags=()
if [[ -f $bootstrap_file && -d $data_dir/member ]] && ((ordinal >= replicas)) &&
  ctl member list >/dev/null 2>&1 && [[ -z $(member_id) ]]; then
  # An elastic member removed while it was down (scale-down, or a preStop that ran): its data
  # belongs to a former member. Start over as a new one.
  log "$name was removed from the cluster: discarding its old data and joining again"
  rm -rf "${data_dir:?}/member" "$bootstrap_file"
fi
if [[ -f $bootstrap_file && -d $data_dir/member ]]; then
  # shellcheck source=/dev/null
  source "$bootstrap_file"
  log "restarting $name with its data in $data_dir"
elif ((ordinal < replicas)); then
  initial_cluster=$(core_cluster)
  initial_state=new
  log "bootstrapping core member $name of a $replicas-member cluster"
  if [[ -n ${KVD_RESTORE_FROM:-} ]]; then
    restore_flags=("--restore=$KVD_RESTORE_FROM")
    log "restoring $name from $KVD_RESTORE_FROM"
  fi
else
  rm -rf "${data_dir:?}/member"
  join_as_learner
  initial_state=existing
  promote=true
  log "joining as learner $name"
fi
if [[ ! -f $bootstrap_file ]]; then
  printf 'initial_cluster=%q\ninitial_state=%q\n' "$initial_cluster" "$initial_state" \
    >"$bootstrap_file.tmp"
  mv "$bootstrap_file.tmp" "$bootstrap_file"
fi
if $promote; then
  promote_later &
fi
exec "$kvd_bin" "${common_flags[@]}" "--initial-cluster=$initial_cluster" \
  "--initial-cluster-state=$initial_state" ${restore_flags[@]+"${restore_flags[@]}"} "$@"
