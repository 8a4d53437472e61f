// Restoring a member's data dir from a snapshot file, the way `etcdctl snapshot restore` builds
// a new cluster from a backup.
//
// The snapshot file is what `kvctl snapshot save` / `etcdctl snapshot save` write from kvd's
// Maintenance.Snapshot stream: the store checkpoint (MvccStore::WriteCheckpoint), zero-padded to
// a multiple of 512 bytes, then the 32-byte SHA-256 of everything before it.
//
// The restored member belongs to a NEW cluster (the IDs come from --name, --initial-cluster and
// --initial-cluster-token, as for any new cluster): every member of it is restored from the same
// file, and they all start at the same raft index, the source's applied index, under a raft
// snapshot whose configuration is --initial-cluster. Keys, revisions, leases and the compaction
// point are the source's, so HashKV at the snapshot's revision matches the source's.
#pragma once

#include <string>

#include "server/config.h"
#include "server/status.h"

namespace server {

// Checks the SHA-256 trailer and the 512-byte alignment of `snapshot_path` and writes the
// checkpoint part (without the trailer) to `checkpoint_path`. Errors: exit code 1 with the
// reason (unreadable, too short, misaligned, hash mismatch).
[[nodiscard]] Status ExtractSnapshotCheckpoint(const std::string& snapshot_path,
                                               const std::string& checkpoint_path);

// Builds config.data_dir/member from `snapshot_path` for member config.name of the new cluster
// config.initial_cluster. When config.data_dir/member already exists nothing is touched and
// *restored is false (so a container may keep --restore on every start); otherwise *restored
// is true on success. The member dir appears atomically (built aside, then renamed): a crash
// leaves either no member dir or a complete one. Errors (exit code 1): a bad snapshot, this
// member not in --initial-cluster, --initial-cluster-state=existing, I/O.
[[nodiscard]] Status RestoreSnapshotFile(const Config& config, const std::string& snapshot_path,
                                         bool* restored);

}  // namespace server
