#!/usr/bin/env bash
# The README's main command: installs what is missing, builds kvd and kvctl, and starts a local
# 3-node cluster on 127.0.0.1 (client ports 2379/22379/32379, peer ports 2380/22380/32380).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
if [ ! -x "$root/build/server/kvd" ]; then
  echo "quickstart: kvd is not built yet: the server (server/) is still missing." >&2
  echo "quickstart: the storage engine and raft library were built; run scripts/test.sh." >&2
  exit 0
fi
exec "$root/scripts/cluster.sh" start
