// kvstore::MvccStore: etcd's MVCC key-value store (revisions, ranges, txns, compaction), its
// lease table and the apply path for committed raft entries, on top of the Engine's RocksDB.
// Layout, crash-safety and checkpoint format: docs/storage.md.
//
// Thread-safety:
//  * Apply, CompactStep, RestoreCheckpoint, Defragment and SetObserver: ONE thread (the apply
//    thread) only.
//  * Range, HashKV, ReadEvents, CurrentRevision, CompactRevision, AppliedIndex, WriteCheckpoint,
//    CheckRequest, the size figures and every lease query/renew method: any thread, concurrently
//    with each other and with the apply thread. Reads see a consistent revision.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvstore/engine.h"
#include "kvstore/history.h"
#include "kvstore/status.h"
#include "proto/kvd_internal.pb.h"
#include "proto/rpc.pb.h"

namespace rocksdb {
class Snapshot;
}  // namespace rocksdb

namespace kvstore {

// Engine options for a store's Engine: the defaults plus a memtable bloom filter on the family
// of latest versions, which every put and every single-key range reads with a point lookup.
EngineOptions StoreEngineOptions();

struct StoreOptions {
  // Leases granted with a shorter TTL get this one (etcd: ceil(1.5 x election timeout)).
  int64_t min_lease_ttl_seconds = 2;
  // Largest TTL a lease may ask for (etcd's MaxLeaseTTL).
  int64_t max_lease_ttl_seconds = 9'000'000'000;
  // Max ops in each of compare/success/failure of a Txn; nested txns share the budget.
  int64_t max_txn_ops = 128;
  // Largest serialized request accepted (etcd --max-request-bytes).
  size_t max_request_bytes = 1'572'864;
  // Size quota: CheckRequest refuses writes that would go above it (etcd --quota-backend-bytes).
  int64_t quota_backend_bytes = int64_t{2} << 30;
  // fsync the WAL on every Apply batch. Off by default: the raft log is synced first and
  // replays whatever a power loss takes away; a SIGKILL loses nothing either way.
  bool sync_writes = false;
  // Loop limit of one ReadEvents call: rev CF entries examined (stops at a revision boundary).
  size_t read_events_scan_max = 1u << 16;
  // Loop limit for leases: max keys deleted by one revoke is unbounded by design (one
  // revision), but one Apply batch may hold at most this many entries.
  size_t apply_batch_entries_max = 10'000;
  // Values longer than this (bytes) are not copied into the latest CF: its record then points
  // at the kv CF's record of the same revision, which a read at the newest revision fetches
  // with one more point lookup. Why: every byte of the latest CF is written again to the WAL,
  // by a flush and by compactions, so a big value cost three more copies per put (leaving it
  // out: 28 % fewer bytes written per 1 KiB put, docs/performance.md). Small values stay,
  // so that reads of them remain one lookup. Each store decides alone (the latest CF is a local
  // index; HashKV reads the kv CF), and records of both kinds may coexist.
  size_t latest_value_bytes_max = 512;
  EngineOptions engine = StoreEngineOptions();
};

// One committed raft entry handed to Apply.
struct ApplyEntry {
  uint64_t index = 0;
  const kvdpb::InternalRequest* request = nullptr;
};

struct ApplyResult {
  uint64_t index = 0;
  bool skipped = false;  // index <= applied index: nothing done, nothing to answer
  Status status;         // the request's own outcome (bad request, lease not found, ...)
  kvdpb::InternalResponse response;
};

class MvccStore : public History {
 public:
  // The column families MvccStore owns in the Engine.
  static std::vector<std::string> ColumnFamilies();

  // Opens a store on `engine` (which must have been opened with ColumnFamilies(); it must
  // outlive the store). Fails with a clear status if a checkpoint restore was interrupted or
  // the metadata is unreadable.
  static Status Open(Engine* engine, const StoreOptions& options, std::unique_ptr<MvccStore>* out);
  // Convenience for tests and tools: opens an Engine in `dir` plus the store.
  static Status OpenDir(const std::string& dir, const StoreOptions& options,
                        std::unique_ptr<Engine>* engine, std::unique_ptr<MvccStore>* out);
  ~MvccStore() override;
  MvccStore(const MvccStore&) = delete;
  MvccStore& operator=(const MvccStore&) = delete;

  // ---- reads (any thread) ----
  // Serves a RangeRequest at the latest or a retained revision, filling header.revision.
  Status Range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp) const;
  // Serves a Txn whose branches hold only ranges (IsReadOnlyTxn) at the latest revision, like
  // Range: the compares and every range see one consistent revision, and the response is what
  // applying it would have answered (etcd serves such txns the same way, without the log).
  // Precondition: IsReadOnlyTxn(req) (checked).
  Status ReadOnlyTxn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp) const;
  // True when no branch of `req` (nested txns included) puts or deletes.
  static bool IsReadOnlyTxn(const etcdserverpb::TxnRequest& req);
  // Hash of the logical history up to `rev` (0 = latest); equal on replicas with the same
  // history whatever their physical compaction progress. Sets *hashed_rev to the revision used.
  Status HashKV(int64_t rev, uint32_t* hash, int64_t* compact_revision, int64_t* hashed_rev) const;

  int64_t CurrentRevision() const override;
  int64_t CompactRevision() const override;
  Status ReadEvents(const KeyRange& range, int64_t from_rev, int64_t to_rev, size_t max_events,
                    bool want_prev_kv, std::vector<mvccpb::Event>* out,
                    int64_t* next_rev) const override;
  uint64_t AppliedIndex() const { return applied_index_.load(); }
  // True when the last Compact has been physically carried out by CompactStep.
  bool PhysicalCompactionDone() const;

  // Checks done before proposing a request: size, validation (etcd's gRPC-layer checks), the
  // CORRUPT alarm (refuses Range, Put, DeleteRange, Txn, Compaction and LeaseGrant with
  // errors::Corrupt) and the size quota for requests that add data. Apply repeats the
  // deterministic ones (so every member refuses the same entries).
  Status CheckRequest(const kvdpb::InternalRequest& req) const;
  int64_t SizeBytes() const { return engine_->SizeBytes(); }
  // SizeBytes() as of the last refresh: the quota check reads this instead of asking RocksDB
  // for ~20 properties per request (1.3-1.5 % of a member's samples at 1,000 clients). It covers
  // every family of the Engine (the raft log's too, once its store opened it). Refreshed after
  // every apply batch (unless the quota is unlimited), compaction step, defragment and restore,
  // at open, and by RefreshSizeEstimate, which the node calls every tick: raft log appends and
  // RocksDB's background flushes and compactions show within a tick. etcd's quota reads
  // bbolt's size, which also moves only at its commits. Any thread.
  int64_t SizeEstimateBytes() const { return size_estimate_bytes_.load(); }
  // Any thread; the read and the store are one step, so a slow refresh never overwrites a
  // newer one with an older size.
  int64_t RefreshSizeEstimate() {
    std::lock_guard<std::mutex> lock(size_estimate_mu_);
    const int64_t b = engine_->SizeBytes();
    size_estimate_bytes_.store(b);
    return b;
  }
  int64_t SizeInUseBytes() const { return engine_->SizeInUseBytes(); }
  // Active alarms (persisted, replicated through AlarmRequest entries).
  std::vector<etcdserverpb::AlarmMember> Alarms() const;
  // True while a CORRUPT alarm (any member's) is active: reads are refused too (Range and
  // ReadOnlyTxn callers check it; the store's read methods do not).
  bool CorruptAlarmActive() const;

  // ---- leases (any thread; deadlines are local, not replicated) ----
  // KeepAlive: resets the deadline to now + TTL and returns the granted TTL; LeaseNotFound for
  // unknown leases (the server answers TTL 0).
  Status LeaseRenew(int64_t id, int64_t now_ms, int64_t* ttl_seconds);
  // TimeToLive: unknown -> ok with TTL -1 and grantedTTL 0.
  Status LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req, int64_t now_ms,
                         etcdserverpb::LeaseTimeToLiveResponse* resp) const;
  void LeaseLeases(etcdserverpb::LeaseLeasesResponse* resp) const;
  // Up to `max` leases whose deadline is <= now_ms, soonest first (the leader proposes revokes).
  std::vector<int64_t> ExpiredLeases(int64_t now_ms, size_t max) const;
  // Becoming leader: every lease expires at now + (checkpointed remaining TTL or TTL) + extend.
  void Promote(int64_t now_ms, int64_t extend_ms);
  // Losing leadership: nothing expires until the next Promote.
  void Demote();

  // ---- apply thread ----
  // Applies committed entries in order. Their state and the applied index go to RocksDB in as
  // few WriteBatches as possible: one for the whole call, unless a bulk delete or an entry that
  // reads keys after plain puts (docs/storage.md) makes Apply write what it has first; each
  // write carries the applied index of its last entry, so a crash between two leaves a prefix.
  // Entries with index <= AppliedIndex() are skipped. `now_ms` seeds the deadlines of leases
  // granted here. A non-ok return is an I/O failure: the entries after the last completed write
  // are not applied, and the store refuses further writes (reopen it).
  Status Apply(std::span<const ApplyEntry> entries, int64_t now_ms,
               std::vector<ApplyResult>* results);
  // Carries out at most `max_keys` keys' worth of the pending physical compaction. *done is set
  // when nothing is left.
  Status CompactStep(size_t max_keys, bool* done);
  // Defragment: lets RocksDB rewrite every file. Any thread.
  Status Defragment();
  // Told of every committed revision and compaction (may be null). Set before applying.
  void SetObserver(HistoryObserver* observer) { observer_ = observer; }

  // ---- checkpoints ----
  // Writes a consistent image of the store (one byte stream, checksummed, applied index
  // included) to `sink` in chunks of at most `chunk_bytes`. Any thread. A restore waits until
  // it returns, so `sink` must not block without bound.
  Status WriteCheckpoint(const std::function<Status(std::string_view)>& sink,
                         size_t chunk_bytes = 1u << 20) const;
  Status WriteCheckpointFile(const std::string& path) const;
  // Replaces the store's whole content with the checkpoint in `path` (verified first). A crash
  // in the middle is detected by the next Open. Apply thread only; reads on other threads wait
  // for it (they never see the families half restored).
  Status RestoreCheckpointFile(const std::string& path);
  // True after an Apply or a restore failed part-way: the store's content is not one the
  // raft log describes, and it refuses to apply more until reopened. Apply thread only.
  bool Poisoned() const;
  // The same on an Engine without an open store: the way back after Open reported an
  // interrupted restore. Open a store on the engine afterwards.
  static Status RestoreCheckpoint(Engine* engine, const std::string& path);
  // Before Open: if a restore was interrupted (crash) and the checkpoint file it named still
  // exists, runs that restore again to completion and sets *resumed_from to the file;
  // otherwise does nothing (*resumed_from empty; Open then reports a marker left without its
  // file). A file that fails verification gives its error and leaves the marker.
  static Status ResumeInterruptedRestore(Engine* engine, std::string* resumed_from);

 private:
  // RestoreCheckpoint after VerifyCheckpoint(path) passed: marker, drop, load, clear marker.
  static Status LoadVerifiedCheckpoint(Engine* engine, const std::string& path);
  struct Impl;
  explicit MvccStore(std::unique_ptr<Impl> impl);
  // The current revision as stored in `snap` (every apply batch writes it); leaves *cur alone
  // when the store is empty.
  Status CurrentRevisionIn(const rocksdb::Snapshot* snap, int64_t* cur) const;
  std::unique_ptr<Impl> impl_;
  Engine* engine_ = nullptr;
  std::atomic<int64_t> current_rev_{1};
  std::atomic<int64_t> compact_rev_{0};
  std::atomic<uint64_t> applied_index_{0};
  std::atomic<int64_t> size_estimate_bytes_{0};  // SizeEstimateBytes()
  std::mutex size_estimate_mu_;                  // RefreshSizeEstimate
  HistoryObserver* observer_ = nullptr;
};

}  // namespace kvstore
