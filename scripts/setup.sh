#!/usr/bin/env bash
# Installs every Debian 12 package kvd needs to build, test and benchmark. Idempotent: packages
# already present are not touched, so a second run costs one dpkg query.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  librocksdb-dev catch2 libspdlog-dev libcli11-dev nlohmann-json3-dev libssl-dev
  clang-format clang-tidy
  etcd-server etcd-client   # the real etcd 3.4.23: test oracle and benchmark baseline
  nodejs npm                # the npm etcd3 client in compatibility tests
  iproute2 procps psmisc curl python3
  shellcheck                # lints the shell scripts the container image ships
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

# npm packages pinned by package-lock.json files: the Kubernetes schema validator (tests/deploy)
# and the etcd3 client (tests/node). `npm ci` runs only when a lock file changed since the last
# install, so tests never download.
install_npm_packages() {
  local root dir
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for dir in "$root/tests/deploy" "$root/tests/node"; do
    [ -f "$dir/package-lock.json" ] || continue
    if [ -f "$dir/node_modules/.package-lock.json" ] &&
      cmp -s <(sha256sum <"$dir/package-lock.json") "$dir/node_modules/.kvd-lock.sha256"; then
      continue
    fi
    echo "setup: npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    sha256sum <"$dir/package-lock.json" >"$dir/node_modules/.kvd-lock.sha256"
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  install_npm_packages
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
install_npm_packages
echo "setup: done"
