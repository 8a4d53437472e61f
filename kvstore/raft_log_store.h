// kvstore::RaftLogStore: the durable Raft log (raft::Storage) in a column family of the node's
// Engine, next to the MVCC store. Layout of the family (all keys are ours alone):
//
//   "e" + big-endian u64 index  -> entry record      (one per retained entry)
//   "m" + "hard_state"          -> HardState record
//   "m" + "snapshot"            -> SnapshotMetadata record (index, term, ConfState)
//   "m" + "snapshot_data"       -> the snapshot's small opaque blob (see Options)
//   "m" + "log_start"           -> dummy index and term (16 bytes, big-endian)
//
// Every record is 4 bytes of CRC32C (little-endian) over key + payload, then the payload (raft
// codec encodings, raft/codec.h). Every read from RocksDB checks it; Open() reads and checks the
// whole retained log, so damage is reported once, as a kDataLoss Open error naming the index
// and family, instead of as a RawNode abort later (raft::Storage read errors are fatal).
//
// Durability: each Save() is ONE WriteBatch (synced unless the caller says otherwise), so a
// Ready's snapshot, entries and hard state become durable together or not at all. The Engine
// sets RocksDB's WALRecoveryMode to kTolerateCorruptedTailRecords: only a torn last record is
// dropped (damage before it fails the open), so a process killed (or a machine losing power)
// mid-write reopens at the state after the last complete batch, i.e. a prefix of the writes;
// every synced Save that returned Ok is in it, and so is every write made before it.
//
// Thread-safety: every method may be called from any thread. Readers (the raft::Storage
// methods, stats()) share a reader lock and never wait for an fsync; writers (Save, Compact,
// CreateSnapshot, SetConfState) are serialized among themselves, write RocksDB without the
// reader lock, then publish the new in-memory state together with a RocksDB snapshot of the
// new data under the exclusive lock. A reader thus sees the log as it was before or after a
// write, never in between. This lets the server persist a Ready on its own thread while the
// raft thread keeps reading (Ready contract step 3a).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kvstore/crc32c.h"
#include "kvstore/engine.h"
#include "kvstore/status.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace rocksdb {
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace kvstore {

struct RaftLogStoreOptions {
  // The column family holding the log; created on Open() when missing.
  std::string column_family = "raft_log";
  // Upper bound of the in-memory cache of the most recent entries (bytes, counted with
  // raft::EntrySizeBytes). The leader's replication reads are near the tail, so they mostly hit
  // memory; older entries are read from RocksDB. 0 disables the cache.
  uint64_t cache_bytes_max = 16u << 20;
  // Upper bound of the opaque snapshot blob stored with the snapshot metadata (bytes). The
  // application's state image does not belong here: store a reference to it (checkpoint id).
  uint64_t snapshot_data_bytes_max = 1u << 20;
};

// Counters for tests, benchmarks and metrics; monotonically increasing.
struct RaftLogStoreStats {
  uint64_t entries_read_from_cache = 0;
  uint64_t entries_read_from_disk = 0;
};

class RaftLogStore final : public raft::Storage {
 public:
  // Opens the log in `engine` (which must outlive the store), creating the family if missing,
  // and verifies every retained record: checksums, decoding, contiguous indexes from the log
  // start, hard-state commit <= last index. Errors: kDataLoss naming the index or record and
  // the family; kInternal for I/O errors. Call from the engine's owning thread (it may create a
  // column family).
  static Status Open(Engine* engine, const RaftLogStoreOptions& options,
                     std::unique_ptr<RaftLogStore>* out);
  ~RaftLogStore() override;
  RaftLogStore(const RaftLogStore&) = delete;
  RaftLogStore& operator=(const RaftLogStore&) = delete;

  // ---- raft::Storage (same results as raft::MemoryStorage) -----------------------------------
  // A record that fails its checksum or does not decode is never returned: the read fails with
  // raft::Code::kCorrupt whose message names the index and family (RawNode then aborts).
  raft::Status InitialState(raft::HardState* hard_state,
                            raft::ConfState* conf_state) const override;
  raft::Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                       std::vector<raft::Entry>* out) const override;
  raft::Status Term(uint64_t i, uint64_t* term) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  raft::Status Snapshot(raft::Snapshot* out) const override;

  // ---- Writes ---------------------------------------------------------------------------------
  // Persists one Ready (contract step 1) in one synced WriteBatch: `snap` (if non-null and not
  // empty) replaces the whole log, then `entries` are appended (entries at and after the first
  // new index are replaced; entries covered by the log start are ignored), then `hard_state`
  // (if non-null) is set. Null / empty arguments are skipped.
  // Preconditions (checked, abort): entries are contiguous and the first one that is not
  // covered by the log start is at most LastIndex() + 1; the (new or current) hard state's
  // commit <= the resulting LastIndex(), i.e. committed entries are never replaced. Errors (nothing
  // written): kFailedPrecondition when `snap` is not newer than the current snapshot (raft's
  // kSnapshotOutOfDate), kInvalidArgument when the snapshot data exceeds snapshot_data_bytes_max,
  // kInternal / kDataLoss from RocksDB.
  // `sync` = false writes the batch without an fsync (for a Ready whose must_sync is false): it
  // is durable once any later synced write of the Engine returned, since all families share one
  // WAL and a crash keeps a prefix of the writes; until then power loss may drop it.
  Status Save(const raft::HardState* hard_state, const std::vector<raft::Entry>& entries,
              const raft::Snapshot* snap, bool sync = true);
  // Shorthands for Save().
  Status Append(const std::vector<raft::Entry>& entries) { return Save(nullptr, entries, nullptr); }
  Status SetHardState(const raft::HardState& hs) { return Save(&hs, {}, nullptr); }
  Status ApplySnapshot(const raft::Snapshot& snap) { return Save(nullptr, {}, &snap); }

  // Writes raft::BootstrapEntries(voters) and HardState{term 1, no vote, commit n} (as
  // raft::BootstrapStorage does). Precondition: the log is empty (checked).
  Status Bootstrap(const std::vector<uint64_t>& voters);
  // Sets the ConfState reported by InitialState() for a fresh log, like
  // MemoryStorage::SetConfState (a cluster whose membership is not in the log). Synced.
  Status SetConfState(const raft::ConfState& cs);

  // Records a snapshot of the application state at applied index i with configuration `cs`
  // and the opaque blob `data`, as MemoryStorage::CreateSnapshot (does not compact). Synced
  // unless `sync` is false (then durable with the next synced write of the Engine, as Save's).
  // Preconditions (checked): FirstIndex() - 1 <= i <= LastIndex(). Errors: kFailedPrecondition
  // when i <= the current snapshot index (out of date), kInvalidArgument when `data` is larger
  // than snapshot_data_bytes_max, RocksDB errors (also a corrupt entry i: kDataLoss).
  Status CreateSnapshot(uint64_t i, const raft::ConfState& cs, std::string data,
                        raft::Snapshot* out, bool sync = true);

  // Drops the entries up to and including compact_index with one range deletion (constant
  // cost whatever the number of entries); Term(compact_index) stays answerable. The
  // application must not compact past its applied index. Precondition (checked):
  // compact_index <= LastIndex(). Errors: kOutOfRange when compact_index <= FirstIndex() - 1
  // (raft's kCompacted), RocksDB errors. Not synced: losing a compaction in a crash only
  // leaves a longer log, and the next synced write makes it durable (the WAL is ordered).
  Status Compact(uint64_t compact_index);

  // The index c such that the entries (c, upto] are the shortest suffix ending at `upto` that
  // holds at least `bytes_min` bytes (raft::EntrySizeBytes), i.e. the compaction point that keeps
  // about `bytes_min` of log behind `upto`. Looks only at the in-memory cache of recent entries:
  // returns 0 (keep everything) when the cache does not reach back far enough to tell, when it
  // does not hold `upto`, or when bytes_min is 0. Cost: one step per entry walked (bounded by
  // the cache). Precondition: upto <= LastIndex() (checked).
  uint64_t IndexKeepingBytes(uint64_t upto, uint64_t bytes_min) const;

  RaftLogStoreStats stats() const;
  const std::string& column_family() const { return options_.column_family; }

 private:
  RaftLogStore(Engine* engine, const RaftLogStoreOptions& options);

  // Reads and verifies every record of the family; fills the in-memory state. Open() only.
  Status Load();
  // Entry i from RocksDB through the published snapshot. Requires a reader or writer lock.
  Status ReadEntryFromDisk(uint64_t i, raft::Entry* out) const;
  // Term of i in [first - 1, last] from the cache, the log start or RocksDB. Requires a lock.
  Status TermLocked(uint64_t i, uint64_t* term) const;
  // Writes `batch` to RocksDB. Called with write_mu_ held and mu_ not held.
  Status Write(rocksdb::WriteBatch* batch, bool sync, const std::string& what);
  // Replaces read_snapshot_ with one taken now (after a write). Exclusive lock held.
  void RenewReadSnapshot();
  // Trims the cache to cache_bytes_max by dropping its oldest entries. Exclusive lock held.
  void TrimCache();
  Status CheckSnapshotData(const std::string& data) const;
  std::string Where(uint64_t index) const;

  Engine* const engine_;
  const RaftLogStoreOptions options_;

  // Serializes writers; held across the RocksDB write. Lock order: write_mu_, then mu_.
  std::mutex write_mu_;
  // Guards everything below: shared by readers, exclusive when a writer publishes.
  mutable std::shared_mutex mu_;
  raft::HardState hard_state_;
  raft::Snapshot snapshot_;
  uint64_t dummy_index_ = 0;  // FirstIndex() - 1
  uint64_t dummy_term_ = 0;
  uint64_t last_index_ = 0;
  // The most recent entries, contiguous, ending at last_index_ when non-empty.
  std::deque<raft::Entry> cache_;
  uint64_t cache_bytes_ = 0;
  // RocksDB snapshot taken after Open and after every write; readers read through it so that
  // what they read from RocksDB always agrees with the in-memory state above, even while a
  // writer has already written the next batch but not yet published it.
  const rocksdb::Snapshot* read_snapshot_ = nullptr;

  mutable std::atomic<uint64_t> cache_reads_{0};
  mutable std::atomic<uint64_t> disk_reads_{0};
};

}  // namespace kvstore
