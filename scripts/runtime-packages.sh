#!/usr/bin/env bash
# Prints, one per line and sorted, the Debian packages that own the shared libraries the given
# executables load (what a runtime image must install to run them). Used by the Dockerfile's
# builder stage. Usage: scripts/runtime-packages.sh BINARY...
# Fails when a library belongs to no package (it would be missing at run time).
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 BINARY..." >&2
  exit 2
fi
libs=$(ldd "$@" | awk '/=> \// { print $3 }' | sort -u)
for lib in $libs; do
  # dpkg knows the path it installed, which on merged-/usr systems may differ from ldd's
  # (/lib vs /usr/lib), and symlinks may point elsewhere: try each spelling, exact paths only
  # (a file-name pattern would also match e.g. the i386 libc).
  owner=""
  real=$(readlink -f "$lib")
  for candidate in "$lib" "/usr$lib" "${lib#/usr}" "$real" "/usr$real" "${real#/usr}"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    [ -n "$owner" ] && break
  done
  if [ -z "$owner" ]; then
    echo "runtime-packages: no Debian package owns $lib" >&2
    exit 1
  fi
  echo "$owner"
done | sort -u
