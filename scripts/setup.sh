#!/usr/bin/env bash
# Installs every Debian 12 package kvd needs to build, test and benchmark. Idempotent: packages
# already present are not touched, so a second run costs one dpkg query.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev catch2 libspdlog-dev libcli11-dev nlohmann-json3-dev libssl-dev
  clang-format clang-tidy
  etcd-server etcd-client   # the real etcd 3.4.23: test oracle and benchmark baseline
  nodejs npm                # the npm etcd3 client in compatibility tests
  iproute2 procps psmisc curl python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # A package may be satisfied by another that provides the same command (e.g. a newer
    # nodejs); only the command matters for those.
    case "$p" in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
      python3) command -v python3 >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done

# The npm etcd3 client used by tests/compat (pinned by tests/node/package-lock.json). `npm ci`
# runs only when node_modules is missing or older than the lock file, so tests never download.
install_node_modules() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in tests/node"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  install_node_modules
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
# Debian's etcd-server starts a system etcd on 2379; our tests pick their own ports, but a
# stray daemon would confuse users, so stop it where systemd runs it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  "${sudo_cmd[@]}" systemctl disable --now etcd || true
fi
install_node_modules
echo "setup: done"
