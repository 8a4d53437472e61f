#!/usr/bin/env bash
# Checks the container and entrypoint files without Docker or Kubernetes:
#  - the Dockerfile's contract (multi-stage, setup.sh in the builder, debian:12-slim runtime,
#    non-root user, ports, volume, /livez health check);
#  - scripts/runtime-packages.sh on the built kvd and kvctl: runtime library packages only;
#  - shellcheck on the shell scripts the image ships;
#  - entrypoint.sh print-flags: the flags derived from a hostname and the core size.
# Usage: container_files_test.sh REPO_ROOT KVD KVCTL. Prints "N passed, M failed".
set -uo pipefail
root=$1
kvd=$2
kvctl=$3
passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}
df=$root/Dockerfile
check "Dockerfile: builder on debian:12 runs scripts/setup.sh" \
  bash -c "grep -q '^FROM debian:12 AS builder' '$df' && grep -q 'scripts/setup.sh' '$df'"
check "Dockerfile: runtime on debian:12-slim" grep -q '^FROM debian:12-slim' "$df"
check "Dockerfile: non-root user" bash -c "grep -Eq '^USER [1-9][0-9]*' '$df'"
check "Dockerfile: exposes 2379 and 2380" bash -c "grep -Eq '^EXPOSE .*2379.*2380' '$df'"
check "Dockerfile: data volume" grep -q '^VOLUME /var/lib/kvd' "$df"
check "Dockerfile: health check on /livez" bash -c "grep -A2 '^HEALTHCHECK' '$df' | grep -q /livez"
check "Dockerfile: ships kvd, kvctl and the entrypoint" \
  bash -c "grep -q '/out/kvd /out/kvctl /usr/local/bin/' '$df' && grep -q kvd-k8s-entrypoint '$df'"
check ".dockerignore keeps build trees and .git out" \
  bash -c "grep -qx build '$root/.dockerignore' && grep -qx .git '$root/.dockerignore'"

pkgs=$(bash "$root/scripts/runtime-packages.sh" "$kvd" "$kvctl")
echo "runtime packages: $(echo "$pkgs" | tr '\n' ' ')"
# RocksDB is linked statically (kvstore/CMakeLists.txt); its compression libraries stay shared.
check "runtime packages include gRPC++ and RocksDB's compression libraries" \
  bash -c "grep -qx 'libgrpc++1.51' <<<'$pkgs' && grep -qx libsnappy1v5 <<<'$pkgs' && grep -qx libzstd1 <<<'$pkgs'"
check "runtime packages: no -dev package, no compiler" \
  bash -c "! grep -Eq -- '-dev$|^g\+\+|^gcc-12$' <<<'$pkgs'"
check "runtime packages: nothing for another architecture" bash -c "! grep -q i386 <<<'$pkgs'"
check "runtime-packages.sh fails on a file with no package" \
  bash -c "! bash '$root/scripts/runtime-packages.sh' /nonexistent"

if command -v shellcheck >/dev/null; then
  check "shellcheck entrypoint.sh runtime-packages.sh setup.sh" shellcheck \
    "$root/deploy/kubernetes/entrypoint.sh" "$root/scripts/runtime-packages.sh" \
    "$root/scripts/setup.sh"
fi

flags=$(KVD_HOSTNAME=kvd-2 KVD_REPLICAS=3 POD_NAMESPACE=prod bash \
  "$root/deploy/kubernetes/entrypoint.sh" print-flags)
echo "$flags"
check "entrypoint: name and advertised URLs from the hostname" bash -c "
  grep -qx -- '--name=kvd-2' <<<'$flags' &&
  grep -qx -- '--initial-advertise-peer-urls=http://kvd-2.kvd.prod.svc.cluster.local:2380' <<<'$flags' &&
  grep -qx -- '--advertise-client-urls=http://kvd-2.kvd.prod.svc.cluster.local:2379' <<<'$flags'"
check "entrypoint: initial cluster of the 3 core members" grep -qx -- \
  '--initial-cluster=kvd-0=http://kvd-0.kvd.prod.svc.cluster.local:2380,kvd-1=http://kvd-1.kvd.prod.svc.cluster.local:2380,kvd-2=http://kvd-2.kvd.prod.svc.cluster.local:2380' \
  <<<"$flags"
check "entrypoint: refuses a hostname without an ordinal" \
  bash -c "! KVD_HOSTNAME=kvd bash '$root/deploy/kubernetes/entrypoint.sh' print-flags"
check "entrypoint: loopback host format for tests" bash -c "
  KVD_HOSTNAME=kvd-1 KVD_PEER_HOST_FORMAT=127.0.0.%d KVD_HOST_OFFSET=11 \
    bash '$root/deploy/kubernetes/entrypoint.sh' print-flags |
    grep -qx -- '--initial-advertise-peer-urls=http://127.0.0.12:2380'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
