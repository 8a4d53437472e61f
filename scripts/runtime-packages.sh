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
# dpkg knows the path it installed, which on merged-/usr systems may differ from ldd's (/lib vs
# /usr/lib), and symlinks may point elsewhere: try each spelling, exact paths only (a file-name
# pattern would also match e.g. the i386 libc). ONE dpkg -S for all of them: each call reads the
# whole package database (~0.3 s), and gRPC alone loads dozens of libraries.
declare -A candidates=()
all=()
for lib in $libs; do
  real=$(readlink -f "$lib")
  list=("$lib" "/usr$lib" "${lib#/usr}" "$real" "/usr$real" "${real#/usr}")
  candidates[$lib]="${list[*]}"
  all+=("${list[@]}")
done
declare -A owner_of=()
if [ ${#all[@]} -gt 0 ]; then
  # "pkg[:arch]: /path" per match; unmatched paths only print to stderr (and set the exit code).
  while IFS= read -r line; do
    case $line in diversion\ *) continue ;; esac
    path=${line#*: }
    [ -n "${owner_of[$path]:-}" ] || owner_of[$path]=${line%%:*}
  done < <(dpkg -S "${all[@]}" 2>/dev/null || true)
fi
for lib in $libs; do
  owner=""
  for candidate in ${candidates[$lib]}; do
    owner=${owner_of[$candidate]:-}
    [ -n "$owner" ] && break
  done
  if [ -z "$owner" ]; then
    echo "runtime-packages: no Debian package owns $lib" >&2
    exit 1
  fi
  echo "$owner"
done | sort -u
