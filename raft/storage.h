// raft::Storage: read access to the durable Raft log, written by the application. The Raft
// library never writes to Storage itself: the application appends entries, the hard state and
// snapshots it receives in a Ready (raw_node.h), then calls RawNode::Advance().
//
// kvstore implements Storage on RocksDB; MemoryStorage below is the in-memory reference
// implementation used by tests, the simulator and the benchmark.
#pragma once

#include <cstdint>
#include <vector>

#include "raft/types.h"

namespace raft {

// The log held by storage is: an optional snapshot covering [1, snapshot index], followed by
// the entries [FirstIndex(), LastIndex()], where FirstIndex() = snapshot index + 1. The entry
// at index FirstIndex() - 1 (the "dummy" entry) is no longer retained but its term must still
// be answered by Term() (it is the snapshot's or compaction point's term).
//
// Thread-safety: RawNode calls Storage only from the thread that drives it; an implementation
// that is written by another thread at the same time must synchronize internally.
//
// Errors other than the ones listed are storage failures: RawNode aborts on them (a node that
// cannot read its own log must not keep participating).
class Storage {
 public:
  virtual ~Storage() = default;

  // The persisted HardState and the ConfState of the latest snapshot/applied configuration.
  virtual Status InitialState(HardState* hard_state, ConfState* conf_state) const = 0;

  // Appends to *out the entries in [lo, hi), stopping before the total EntrySizeBytes exceeds
  // max_bytes, but always at least one entry when lo < hi.
  // Errors: kCompacted when lo < FirstIndex(); kUnavailable when hi > LastIndex() + 1.
  virtual Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                         std::vector<Entry>* out) const = 0;

  // The term of entry i, for i in [FirstIndex() - 1, LastIndex()].
  // Errors: kCompacted when i < FirstIndex() - 1; kUnavailable when i > LastIndex().
  virtual Status Term(uint64_t i, uint64_t* term) const = 0;

  // Index of the first retained entry (snapshot index + 1; 1 for a fresh log). Implementations
  // keep it in memory: it cannot fail.
  virtual uint64_t FirstIndex() const = 0;
  // Index of the last entry (FirstIndex() - 1 when no entries are retained).
  virtual uint64_t LastIndex() const = 0;

  // The most recent snapshot. Errors: kSnapshotTemporarilyUnavailable when it is being built;
  // the leader then retries on a later heartbeat.
  virtual Status Snapshot(raft::Snapshot* out) const = 0;
};

// An in-memory Storage. Not thread-safe: one thread drives both RawNode and the MemoryStorage.
class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  Status InitialState(HardState* hard_state, ConfState* conf_state) const override;
  Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                 std::vector<Entry>* out) const override;
  Status Term(uint64_t i, uint64_t* term) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  Status Snapshot(raft::Snapshot* out) const override;

  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }
  // Sets the ConfState reported by InitialState() for a fresh log (bootstrapping a cluster
  // whose membership never changes; see BootstrapStorage for clusters that add nodes later).
  void SetConfState(const ConfState& cs) { snapshot_.metadata.conf_state = cs; }

  // Appends entries from a Ready. Entries must be contiguous and start at or before
  // LastIndex() + 1; any existing entries at and after the first new index are replaced (a
  // follower truncating a conflicting suffix). Entries at or before the snapshot are ignored.
  void Append(const std::vector<Entry>& entries);

  // Replaces the whole log with a snapshot from a Ready.
  // Errors: kSnapshotOutOfDate when it is not newer than the current snapshot.
  Status ApplySnapshot(const raft::Snapshot& snap);

  // Records a snapshot of the application state at applied index i (i <= LastIndex()), with
  // the configuration at that point. Does not compact: call Compact() afterwards if wanted.
  // Errors: kSnapshotOutOfDate when i <= the current snapshot's index.
  Status CreateSnapshot(uint64_t i, const ConfState& cs, std::string data, raft::Snapshot* out);

  // Drops entries up to and including compact_index (as etcd does): FirstIndex() becomes
  // compact_index + 1 and Term(compact_index) stays answerable. The application must not
  // compact past its applied index. Precondition: compact_index <= LastIndex() (checked).
  // Errors: kCompacted when compact_index <= FirstIndex() - 1 (already compacted that far).
  Status Compact(uint64_t compact_index);

 private:
  HardState hard_state_;
  raft::Snapshot snapshot_;
  // ents_[0] is the dummy entry at FirstIndex() - 1 (its term is the snapshot/compaction term).
  std::vector<Entry> ents_;
};

// The log every initial member starts with, as etcd bootstraps: one committed kAddNode
// ConfChange entry per voter at term 1, indexes 1..n. Because the initial membership is in the
// log, a node that joins later learns it by replaying the log. The host appends these entries
// and persists HardState{term 1, vote 0, commit n}; the node then hands them out as committed
// entries, and the host applies them with RawNode::ApplyConfChange like any other.
std::vector<Entry> BootstrapEntries(const std::vector<uint64_t>& voters);
// Writes BootstrapEntries(voters) and the matching HardState into an empty MemoryStorage.
void BootstrapStorage(MemoryStorage* storage, const std::vector<uint64_t>& voters);

}  // namespace raft
