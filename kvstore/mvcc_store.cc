#include "kvstore/mvcc_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "kvstore/codec.h"
#include "kvstore/crc32c.h"
#include "kvstore/failpoint.h"

namespace kvstore {

namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

constexpr const char* kCfKv = "mvcc_kv";
constexpr const char* kCfLatest = "mvcc_latest";
constexpr const char* kCfRev = "mvcc_rev";
constexpr const char* kCfLeaseKeys = "lease_keys";
constexpr const char* kCfMeta = "meta";

// meta CF keys.
constexpr const char* kMetaApplied = "applied_index";
constexpr const char* kMetaRev = "current_rev";
constexpr const char* kMetaCompact = "compact_rev";
constexpr const char* kMetaCompactPhys = "compact_phys_rev";
constexpr const char* kMetaCompactCursor = "compact_cursor";
constexpr const char* kMetaLeasePrefix = "lease/";
constexpr const char* kMetaAlarmPrefix = "alarm/";
// default CF key present only while a checkpoint restore is in progress.
constexpr const char* kRestoreMarker = "kvstore.restore_in_progress";

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxRev = std::numeric_limits<int64_t>::max();

constexpr char kCheckpointMagic[] = "KVDCKPT1";
constexpr char kCheckpointEndMagic[] = "KVDCKEND";
constexpr size_t kMagicBytes = 8;
// A single checkpoint record may not exceed this (keys and values are bounded by
// max_request_bytes, so anything bigger is corruption).
constexpr uint64_t kCheckpointRecordBytesMax = 64u << 20;
// Restore writes in batches of this many bytes.
constexpr size_t kRestoreBatchBytes = 4u << 20;

std::string Be64(uint64_t v) {
  std::string s;
  codec::PutBe64(&s, v);
  return s;
}

Status CorruptMeta(const std::string& what) {
  return {Code::kDataLoss, "kvstore: corrupt metadata: " + what};
}

// A read view: RocksDB at a snapshot, optionally overlaid with the apply batch being built.
struct View {
  rocksdb::DB* db = nullptr;
  const rocksdb::Snapshot* snap = nullptr;
  rocksdb::WriteBatchWithIndex* batch = nullptr;

  // A point lookup of `key` in `cf` at this view (through the batch when there is one).
  rocksdb::Status Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                      std::string* out) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    const rocksdb::Slice k(key.data(), key.size());
    return batch != nullptr ? batch->GetFromBatchAndDB(db, ro, cf, k, out)
                            : db->Get(ro, cf, k, out);
  }

  std::unique_ptr<rocksdb::Iterator> Iter(rocksdb::ColumnFamilyHandle* cf) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    ro.verify_checksums = true;
    rocksdb::Iterator* base = db->NewIterator(ro, cf);
    if (batch == nullptr) return std::unique_ptr<rocksdb::Iterator>(base);
    return std::unique_ptr<rocksdb::Iterator>(batch->NewIteratorWithBase(cf, base, &ro));
  }
};

// Orders readers (any thread) against a snapshot restore (apply thread), which drops and
// recreates the store's column families: no reader may hold a handle of a dropped family.
// Writer-preferring, so a steady stream of reads cannot hold a restore off; a thread already
// reading enters again without locking (a nested read must not queue behind a waiting restore).
class RestoreGate {
 public:
  RestoreGate() {
    pthread_rwlockattr_t attr;
    KV_CHECK(pthread_rwlockattr_init(&attr) == 0, "rwlockattr init");
    KV_CHECK(
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) == 0,
        "rwlockattr kind");
    KV_CHECK(pthread_rwlock_init(&lock_, &attr) == 0, "rwlock init");
    (void)pthread_rwlockattr_destroy(&attr);
  }
  ~RestoreGate() { (void)pthread_rwlock_destroy(&lock_); }
  RestoreGate(const RestoreGate&) = delete;
  RestoreGate& operator=(const RestoreGate&) = delete;

  class Read {
   public:
    explicit Read(RestoreGate& g) : gate_(g), prev_(reading_) {
      if (prev_ == &gate_) return;  // nested on this thread: already held
      KV_CHECK(pthread_rwlock_rdlock(&gate_.lock_) == 0, "rwlock rdlock");
      reading_ = &gate_;
      owns_ = true;
    }
    ~Read() {
      if (!owns_) return;
      reading_ = prev_;
      KV_CHECK(pthread_rwlock_unlock(&gate_.lock_) == 0, "rwlock unlock");
    }
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;

   private:
    RestoreGate& gate_;
    const RestoreGate* prev_;
    bool owns_ = false;
  };

  class Write {
   public:
    explicit Write(RestoreGate& g) : gate_(g) {
      KV_CHECK(reading_ != &gate_, "restore while reading the store on the same thread");
      KV_CHECK(pthread_rwlock_wrlock(&gate_.lock_) == 0, "rwlock wrlock");
    }
    ~Write() { KV_CHECK(pthread_rwlock_unlock(&gate_.lock_) == 0, "rwlock unlock"); }
    Write(const Write&) = delete;
    Write& operator=(const Write&) = delete;

   private:
    RestoreGate& gate_;
  };

 private:
  static thread_local const RestoreGate* reading_;
  pthread_rwlock_t lock_;
};

thread_local const RestoreGate* RestoreGate::reading_ = nullptr;

class SnapshotHolder {
 public:
  explicit SnapshotHolder(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~SnapshotHolder() { db_->ReleaseSnapshot(snap_); }
  SnapshotHolder(const SnapshotHolder&) = delete;
  SnapshotHolder& operator=(const SnapshotHolder&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

std::string_view Sv(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// One version of one key as read from the kv CF.
struct Version {
  std::string key;
  int64_t main = 0;
  int64_t sub = 0;
  codec::Record rec;
  // The value is in the kv CF only and was not read yet (a scan that reads it later, for the
  // keys it returns: ScanLive's defer_kv_values). FillKv refuses such a version with its value.
  bool value_in_kv = false;
  bool live() const { return !rec.tombstone; }
};

void FillKv(const Version& v, bool with_value, mvccpb::KeyValue* kv) {
  KV_CHECK(!with_value || !v.value_in_kv, "a value left in the kv CF was never read");
  kv->set_key(v.key);
  kv->set_create_revision(v.rec.create_revision);
  kv->set_mod_revision(v.main);
  kv->set_version(v.rec.version);
  kv->set_lease(v.rec.lease);
  if (with_value) kv->set_value(v.rec.value);
}

// ---- request validation (etcd's v3rpc/key.go checks) ----

Status CheckRange(const RangeRequest& r) {
  if (r.key().empty()) return errors::KeyNotProvided();
  if (!RangeRequest::SortOrder_IsValid(r.sort_order()) ||
      !RangeRequest::SortTarget_IsValid(r.sort_target())) {
    return {Code::kInvalidArgument, "etcdserver: invalid sort option"};
  }
  return Status::Ok();
}

Status CheckPut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return errors::KeyNotProvided();
  if (r.ignore_value() && !r.value().empty()) return errors::ValueProvided();
  if (r.ignore_lease() && r.lease() != 0) return errors::LeaseProvided();
  return Status::Ok();
}

Status CheckDelete(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return errors::KeyNotProvided();
  return Status::Ok();
}

Status CheckTxn(const TxnRequest& r, int64_t max_ops);

Status CheckOp(const RequestOp& op, int64_t max_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return CheckRange(op.request_range());
    case RequestOp::kRequestPut:
      return CheckPut(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return CheckDelete(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return CheckTxn(op.request_txn(), max_ops);
    default:
      return errors::KeyNotFound();  // etcd's answer to an empty RequestOp
  }
}

Status CheckTxn(const TxnRequest& r, int64_t max_ops) {
  int64_t opc =
      std::max({static_cast<int64_t>(r.compare_size()), static_cast<int64_t>(r.success_size()),
                static_cast<int64_t>(r.failure_size())});
  if (opc > max_ops) return errors::TooManyOps();
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return errors::KeyNotProvided();
  }
  for (const auto& op : r.success()) {
    if (Status s = CheckOp(op, max_ops - opc); !s.ok()) return s;
  }
  for (const auto& op : r.failure()) {
    if (Status s = CheckOp(op, max_ops - opc); !s.ok()) return s;
  }
  return Status::Ok();
}

// A delete interval as etcd's duplicate check sees it: a point, or [key, range_end) compared
// bytewise (so etcd's "\0" open end covers nothing here, exactly like etcd 3.4).
struct Interval {
  std::string key;
  std::string end;  // empty = point
  bool Contains(const std::string& k) const {
    if (end.empty()) return k == key;
    return key <= k && k < end;
  }
};

bool AnyContains(const std::vector<Interval>& dels, const std::string& k) {
  return std::any_of(dels.begin(), dels.end(), [&](const Interval& i) { return i.Contains(k); });
}

// etcd's checkIntervals: puts may not repeat a key nor fall in a delete of the same branch,
// including nested txns (then/else of one nested txn may share keys).
Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                      std::set<std::string>* puts, std::vector<Interval>* dels) {
  for (const auto& op : ops) {
    if (op.request_case() != RequestOp::kRequestDeleteRange) continue;
    const auto& d = op.request_delete_range();
    dels->push_back({d.key(), d.range_end()});
  }
  for (const auto& op : ops) {
    if (op.request_case() != RequestOp::kRequestTxn) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    if (Status s = CheckIntervals(op.request_txn().success(), &puts_then, &dels_then); !s.ok()) {
      return s;
    }
    if (Status s = CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else); !s.ok()) {
      return s;
    }
    for (const auto& k : puts_then) {
      if (puts->count(k) != 0 || AnyContains(*dels, k)) return errors::DuplicateKey();
      puts->insert(k);
    }
    for (const auto& k : puts_else) {
      if (puts->count(k) != 0 && puts_then.count(k) == 0) return errors::DuplicateKey();
      if (AnyContains(*dels, k)) return errors::DuplicateKey();
      puts->insert(k);
    }
    dels->insert(dels->end(), dels_then.begin(), dels_then.end());
    dels->insert(dels->end(), dels_else.begin(), dels_else.end());
  }
  for (const auto& op : ops) {
    if (op.request_case() != RequestOp::kRequestPut) continue;
    const std::string& k = op.request_put().key();
    if (puts->count(k) != 0 || AnyContains(*dels, k)) return errors::DuplicateKey();
    puts->insert(k);
  }
  return Status::Ok();
}

bool TxnHasPut(const TxnRequest& r) {
  for (const auto* branch : {&r.success(), &r.failure()}) {
    for (const auto& op : *branch) {
      if (op.request_case() == RequestOp::kRequestPut) return true;
      if (op.request_case() == RequestOp::kRequestTxn && TxnHasPut(op.request_txn())) return true;
    }
  }
  return false;
}

bool AddsData(const kvdpb::InternalRequest& req) {
  switch (req.request_case()) {
    case kvdpb::InternalRequest::kPut:
    case kvdpb::InternalRequest::kLeaseGrant:
      return true;
    case kvdpb::InternalRequest::kTxn:
      return TxnHasPut(req.txn());
    default:
      return false;
  }
}

// The requests etcd's applierV3Corrupt refuses while a CORRUPT alarm is active: everything but
// lease revokes/checkpoints and alarms (so that an operator can disarm it).
bool RefusedWhenCorrupt(const kvdpb::InternalRequest& req) {
  switch (req.request_case()) {
    case kvdpb::InternalRequest::kRange:
    case kvdpb::InternalRequest::kPut:
    case kvdpb::InternalRequest::kDeleteRange:
    case kvdpb::InternalRequest::kTxn:
    case kvdpb::InternalRequest::kCompaction:
    case kvdpb::InternalRequest::kLeaseGrant:
      return true;
    default:
      return false;
  }
}

int CompareBytes(const std::string& a, const std::string& b) {
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

int CompareInt(int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

// etcd's compareKV against one key value (a zero KeyValue when the key is missing).
bool CompareKv(const Compare& c, const mvccpb::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE:
      result = CompareBytes(kv.value(), c.target_union_case() == Compare::kValue ? c.value() : "");
      break;
    case Compare::CREATE:
      result =
          CompareInt(kv.create_revision(),
                     c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = CompareInt(kv.mod_revision(),
                          c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result =
          CompareInt(kv.version(), c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = CompareInt(kv.lease(), c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Impl

struct MvccStore::Impl {
  struct Lease {
    int64_t ttl_seconds = 0;
    int64_t remaining_ttl_seconds = 0;  // from LeaseCheckpoint; 0 = none
    int64_t expiry_ms = kForever;
  };

  // The write txn of one applied entry.
  struct TxnWrite {
    int64_t begin_rev = 0;    // store revision before this entry
    int64_t changes = 0;      // sub-revisions used so far
    bool want_events = true;  // build `events` (the observer wants them)
    std::vector<mvccpb::Event> events;
    int64_t Rev() const { return changes > 0 ? begin_rev + 1 : begin_rev; }
    int64_t WriteRev() const { return begin_rev + 1; }
  };

  Engine* engine = nullptr;
  StoreOptions opts;
  rocksdb::ColumnFamilyHandle* kv = nullptr;
  rocksdb::ColumnFamilyHandle* latest = nullptr;
  rocksdb::ColumnFamilyHandle* rev = nullptr;
  rocksdb::ColumnFamilyHandle* lk = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;

  // Apply-thread state.
  int64_t pending_rev = 1;
  int64_t pending_compact = 0;
  std::atomic<int64_t> compact_phys{0};  // revision whose physical compaction is complete
  std::optional<std::string> cursor;     // next user key for CompactStep (none = from the start)
  bool rev_cf_compacted = false;         // the rev CF range delete for pending_compact was written
  bool poisoned = false;
  rocksdb::WriteBatchWithIndex* wb = nullptr;  // the batch being built by Apply
  // Set by an entry that wrote past wb's index (a bulk delete, see DoDelete): reads through wb
  // no longer see every write, so Apply commits wb right after that entry and starts afresh.
  bool unindexed_writes = false;
  // Plain puts (entries that are one Put) write past wb's index too: indexing their 3-4 writes
  // was a quarter of an applied put's instructions (callgrind, docs/performance.md). The
  // newest version of every key they wrote since the last commit is kept here instead, and the
  // next plain puts read it first. An entry that reads keys (txn, delete, range, revoke) reads
  // through wb's index and RocksDB only, so Apply commits before such an entry while this is not
  // empty. Cleared by every commit (only when not empty: clear() zeroes every bucket, and the
  // bucket array keeps the size of the largest batch).
  std::unordered_map<std::string, Version> put_overlay;
  bool in_plain_put = false;  // the entry being applied is a plain put
  // A bulk delete (DeleteKeys) writes into this batch instead of wb's: a copy of wb's records
  // so far, with room reserved up front for the delete's own. wb's batch would grow by
  // doubling, copying everything so far onto fresh pages at every step (about a tenth of a
  // 150,000-key delete's time, docs/performance.md). Set only between a bulk delete and the
  // commit that follows its entry, which writes this batch in place of wb's.
  std::optional<rocksdb::WriteBatch> bulk_batch;

  // Held for reading by every read that touches RocksDB off the apply thread, for writing by
  // RestoreCheckpointFile.
  mutable RestoreGate restore_gate;

  mutable std::mutex lease_mu;  // guards leases, primary, alarms
  std::map<int64_t, Lease> leases;
  bool primary = false;
  std::set<std::pair<uint64_t, int>> alarms;

  rocksdb::DB* db() const { return engine->db(); }

  void BindHandles() {
    kv = engine->Cf(kCfKv);
    latest = engine->Cf(kCfLatest);
    rev = engine->Cf(kCfRev);
    lk = engine->Cf(kCfLeaseKeys);
    meta = engine->Cf(kCfMeta);
  }

  // ---- low-level reads ----

  // Decodes a latest CF value (rev key + record) into *ver; a value the record left out
  // (codec::kKindPutValueInKv) is read from the kv CF through `v` when want_value, or, with
  // defer_kv_value, only marked (Version::value_in_kv) for ReadKvValue later.
  Status DecodeLatest(const View& v, std::string_view raw, Version* ver, bool want_value,
                      bool defer_kv_value = false) const {
    bool value_in_kv = false;
    ver->value_in_kv = false;
    if (raw.size() < 12 || !codec::DecodeRevKey(raw.substr(0, 12), &ver->main, &ver->sub) ||
        !codec::DecodeRecord(raw.substr(12), &ver->rec, want_value, &value_in_kv)) {
      return CorruptMeta("bad latest entry");
    }
    if (!value_in_kv || !want_value) return Status::Ok();
    ver->value_in_kv = true;
    return defer_kv_value ? Status::Ok() : ReadKvValue(v, ver);
  }

  // Reads the value of *ver (a live put) from its kv CF record through `v`; clears value_in_kv.
  Status ReadKvValue(const View& v, Version* ver) const {
    std::string kv_raw;
    rocksdb::Status s = v.Get(kv, codec::KvKey(ver->key, ver->main, ver->sub), &kv_raw);
    if (s.IsNotFound()) return CorruptMeta("latest entry without its kv record");
    if (!s.ok()) return FromRocks(s, "read kv");
    codec::Record full;
    if (!codec::DecodeRecord(kv_raw, &full, true) || full.tombstone) {
      return CorruptMeta("bad kv record for a latest entry");
    }
    ver->rec.value = std::move(full.value);
    ver->value_in_kv = false;
    return Status::Ok();
  }

  // The newest version of `key` with main <= at_rev; nullopt when none. With at_rev == kMaxRev
  // (the view's newest revision) it is one point lookup in the latest CF and only live versions
  // are returned; otherwise tombstones come back too.
  Status Newest(const View& v, std::string_view key, int64_t at_rev, bool want_value,
                std::optional<Version>* out) const {
    out->reset();
    if (at_rev >= kMaxRev) {
      std::string raw;
      rocksdb::Status s = v.Get(latest, key, &raw);
      if (s.IsNotFound()) return Status::Ok();
      if (!s.ok()) return FromRocks(s, "read latest");
      Version ver;
      ver.key.assign(key);
      if (Status ds = DecodeLatest(v, raw, &ver, want_value); !ds.ok()) return ds;
      *out = std::move(ver);
      return Status::Ok();
    }
    auto it = v.Iter(kv);
    std::string prefix = codec::KeyPrefix(key);
    it->Seek(at_rev >= kMaxRev ? rocksdb::Slice(prefix)
                               : rocksdb::Slice(codec::KvKeyAtOrBefore(key, at_rev)));
    if (it->Valid() && StartsWith(Sv(it->key()), prefix)) {
      Version ver;
      if (!codec::DecodeKvKey(Sv(it->key()), &ver.key, &ver.main, &ver.sub) ||
          !codec::DecodeRecord(Sv(it->value()), &ver.rec, want_value)) {
        return CorruptMeta("bad kv entry for key of " + std::to_string(key.size()) + " bytes");
      }
      *out = std::move(ver);
    }
    return FromRocks(it->status(), "read kv");
  }

  // Calls fn(version) for every key in `range` live at revision at_rev, in key order, until fn
  // returns false. Values are decoded only when want_value; with defer_kv_values, a value kept
  // in the kv CF only is not read but marked (Version::value_in_kv; the caller reads it with
  // ReadKvValue for the versions it keeps).
  Status ScanLive(const View& v, const KeyRange& range, int64_t at_rev, bool want_value,
                  const std::function<bool(const Version&)>& fn,
                  bool defer_kv_values = false) const {
    if (range.range_end.empty()) {
      std::optional<Version> ver;
      if (Status s = Newest(v, range.key, at_rev, want_value, &ver); !s.ok()) return s;
      if (ver && ver->live()) fn(*ver);
      return Status::Ok();
    }
    if (range.IsEmpty()) return Status::Ok();
    const bool open_end = range.range_end == std::string(1, '\0');
    if (at_rev >= kMaxRev) {
      // The view's newest revision: the latest CF holds exactly the live keys.
      auto it = v.Iter(latest);
      Version ver;
      for (it->Seek(range.key); it->Valid(); it->Next()) {
        std::string_view k = Sv(it->key());
        if (!open_end && k >= std::string_view(range.range_end)) break;
        ver.key.assign(k);
        if (Status ds = DecodeLatest(v, Sv(it->value()), &ver, want_value, defer_kv_values);
            !ds.ok()) {
          return ds;
        }
        if (!fn(ver)) break;
      }
      return FromRocks(it->status(), "scan latest");
    }
    auto it = v.Iter(kv);
    it->Seek(codec::KeySeek(range.key));
    Version ver;
    while (it->Valid()) {
      if (!codec::DecodeKvKey(Sv(it->key()), &ver.key, &ver.main, &ver.sub)) {
        return CorruptMeta("bad kv CF key");
      }
      if (!open_end && ver.key >= range.range_end) break;
      if (ver.main > at_rev) {
        it->Seek(codec::KvKeyAtOrBefore(ver.key, at_rev));
        if (!it->Valid()) break;
        std::string k2;
        int64_t m2 = 0, s2 = 0;
        if (!codec::DecodeKvKey(Sv(it->key()), &k2, &m2, &s2)) return CorruptMeta("bad kv CF key");
        if (k2 != ver.key) continue;  // no version <= at_rev: re-examine the next key
        ver.main = m2;
        ver.sub = s2;
      }
      std::string_view raw_value = Sv(it->value());
      if (raw_value.empty()) return CorruptMeta("empty kv record");
      if (raw_value.front() != codec::kKindTombstone) {
        if (!codec::DecodeRecord(raw_value, &ver.rec, want_value)) {
          return CorruptMeta("bad kv record");
        }
        if (!fn(ver)) return FromRocks(it->status(), "scan kv");
      }
      // Skip the older versions of this key: a few Next()s, then one Seek.
      std::string prefix(Sv(it->key()).substr(0, codec::KvPrefixLen(Sv(it->key()))));
      it->Next();
      for (int steps = 0; it->Valid() && StartsWith(Sv(it->key()), prefix); ++steps) {
        if (steps >= 2) {
          it->Seek(codec::KvKeyAfterAll(ver.key));
          break;
        }
        it->Next();
      }
    }
    return FromRocks(it->status(), "scan kv");
  }

  // etcd's applyRange over a view whose newest revision is cur_rev.
  Status DoRange(const View& v, const RangeRequest& r, int64_t cur_rev, int64_t compact_rev,
                 etcdserverpb::RangeResponse* resp) const {
    if (Status s = CheckRange(r); !s.ok()) return s;
    int64_t at = r.revision() <= 0 ? cur_rev : r.revision();
    if (at > cur_rev) return errors::FutureRev();
    if (at < compact_rev) return errors::Compacted();
    int64_t limit = r.limit();
    const bool filtered = r.min_mod_revision() != 0 || r.max_mod_revision() != 0 ||
                          r.min_create_revision() != 0 || r.max_create_revision() != 0;
    if (r.sort_order() != RangeRequest::NONE || filtered) limit = 0;
    if (limit > 0) ++limit;  // one extra to learn `more`
    int64_t count = 0;
    std::vector<Version> found;
    // Sorting by value needs values even for keys_only (etcd drops them after sorting).
    const bool want_value =
        !r.count_only() && (!r.keys_only() || r.sort_target() == RangeRequest::VALUE);
    // Values kept in the kv CF only are read for the keys returned, after filters and limit
    // (count visits every key), unless the sort needs them all.
    const bool defer_kv_values = r.sort_target() != RangeRequest::VALUE;
    Status s = ScanLive(
        v, KeyRange{r.key(), r.range_end()}, at == cur_rev ? kMaxRev : at, want_value,
        [&](const Version& ver) {
          ++count;
          if (!r.count_only() && (limit == 0 || static_cast<int64_t>(found.size()) < limit)) {
            found.push_back(ver);
          }
          return true;
        },
        defer_kv_values);
    if (!s.ok()) return s;
    auto drop = [&](auto pred) {
      found.erase(std::remove_if(found.begin(), found.end(), pred), found.end());
    };
    if (r.max_mod_revision() != 0)
      drop([&](const Version& x) { return x.main > r.max_mod_revision(); });
    if (r.min_mod_revision() != 0)
      drop([&](const Version& x) { return x.main < r.min_mod_revision(); });
    if (r.max_create_revision() != 0) {
      drop([&](const Version& x) { return x.rec.create_revision > r.max_create_revision(); });
    }
    if (r.min_create_revision() != 0) {
      drop([&](const Version& x) { return x.rec.create_revision < r.min_create_revision(); });
    }
    auto order = r.sort_order();
    if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
      order = RangeRequest::ASCEND;
    }
    if (order != RangeRequest::NONE) {
      auto less = [&](const Version& a, const Version& b) {
        switch (r.sort_target()) {
          case RangeRequest::VERSION:
            return a.rec.version < b.rec.version;
          case RangeRequest::CREATE:
            return a.rec.create_revision < b.rec.create_revision;
          case RangeRequest::MOD:
            return a.main < b.main;
          case RangeRequest::VALUE:
            return a.rec.value < b.rec.value;
          default:
            return a.key < b.key;
        }
      };
      if (order == RangeRequest::ASCEND) {
        std::stable_sort(found.begin(), found.end(), less);
      } else {
        std::stable_sort(found.begin(), found.end(),
                         [&](const Version& a, const Version& b) { return less(b, a); });
      }
    }
    if (r.limit() > 0 && static_cast<int64_t>(found.size()) > r.limit()) {
      found.resize(static_cast<size_t>(r.limit()));
      resp->set_more(true);
    }
    for (auto& ver : found) {
      if (ver.value_in_kv && !r.keys_only()) {
        if (Status rs = ReadKvValue(v, &ver); !rs.ok()) return rs;
      }
      FillKv(ver, !r.keys_only(), resp->add_kvs());
    }
    resp->set_count(count);
    resp->mutable_header()->set_revision(cur_rev);
    return Status::Ok();
  }

  // ---- writes (apply thread; wb != nullptr) ----

  View ApplyView() const {
    KV_CHECK(put_overlay.empty() || in_plain_put,
             "an entry other than a plain put would read past %zu uncommitted plain puts",
             put_overlay.size());
    return View{db(), nullptr, wb};
  }

  bool LeaseExists(int64_t id) const {
    std::lock_guard<std::mutex> g(lease_mu);
    return leases.count(id) != 0;
  }

  static std::string LeaseKeyKey(int64_t lease, std::string_view key) {
    std::string s = Be64(static_cast<uint64_t>(lease));
    s.append(key);
    return s;
  }

  // `unindexed`: append to wb's WriteBatch (a bulk delete's batch while there is one) without
  // indexing: later reads through wb do not see the write (plain puts keep put_overlay, a bulk
  // delete sets unindexed_writes so that Apply commits right after the entry).
  // `latest_done`: a tombstone whose key the caller already removed from the latest CF (a bulk
  // delete's range tombstone).
  void WriteVersion(TxnWrite* t, const std::string& key, const codec::Record& rec,
                    const std::optional<Version>& prev, bool unindexed = false,
                    bool latest_done = false) {
    // While a bulk delete's batch exists, the commit writes it in place of wb's: an indexed
    // write to wb now would be lost.
    KV_CHECK(unindexed || !bulk_batch, "an indexed write after a bulk delete's batch was made");
    rocksdb::WriteBatch* const plain = bulk_batch ? &*bulk_batch : wb->GetWriteBatch();
    const auto put = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& k,
                         const std::string& v) {
      const rocksdb::Status st = unindexed ? plain->Put(cf, k, v) : wb->Put(cf, k, v);
      KV_CHECK(st.ok(), "wb put: %s", st.ToString().c_str());
    };
    const auto del = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& k) {
      const rocksdb::Status st = unindexed ? plain->Delete(cf, k) : wb->Delete(cf, k);
      KV_CHECK(st.ok(), "wb delete: %s", st.ToString().c_str());
    };
    const int64_t r = t->WriteRev();
    const int64_t sub = t->changes++;
    KV_CHECK(sub <= std::numeric_limits<uint32_t>::max(), "too many changes in one revision");
    put(kv, codec::KvKey(key, r, sub), codec::EncodeRecord(rec));
    std::string rv(1, rec.tombstone ? codec::kKindTombstone : codec::kKindPut);
    rv.append(key);
    put(rev, codec::RevKey(r, sub), rv);
    if (rec.tombstone) {
      if (!latest_done) del(latest, key);
    } else {
      std::string lv = codec::RevKey(r, sub);
      lv.append(rec.value.size() > opts.latest_value_bytes_max
                    ? codec::EncodeRecordWithoutValue(rec)
                    : codec::EncodeRecord(rec));
      put(latest, key, lv);
    }
    const int64_t old_lease = prev && prev->live() ? prev->rec.lease : 0;
    const int64_t new_lease = rec.tombstone ? 0 : rec.lease;
    if (old_lease != 0 && old_lease != new_lease) del(lk, LeaseKeyKey(old_lease, key));
    if (new_lease != 0 && new_lease != old_lease) put(lk, LeaseKeyKey(new_lease, key), "");
    if (!t->want_events) return;
    mvccpb::Event ev;
    if (rec.tombstone) {
      ev.set_type(mvccpb::Event::DELETE);
      ev.mutable_kv()->set_key(key);
      ev.mutable_kv()->set_mod_revision(r);
    } else {
      ev.set_type(mvccpb::Event::PUT);
      Version cur{key, r, sub, rec};
      FillKv(cur, true, ev.mutable_kv());
    }
    if (prev && prev->live()) FillKv(*prev, true, ev.mutable_prev_kv());
    t->events.push_back(std::move(ev));
  }

  Status DoPut(TxnWrite* t, const etcdserverpb::PutRequest& p, etcdserverpb::PutResponse* resp) {
    if (p.lease() != 0 && !LeaseExists(p.lease())) return errors::LeaseNotFound();
    // The previous value is read only for prev_kv (response and events) and ignore_value: a
    // value kept in the kv CF alone (latest_value_bytes_max) costs one more lookup.
    std::optional<Version> prev;
    const auto pending = in_plain_put ? put_overlay.find(p.key()) : put_overlay.end();
    if (pending != put_overlay.end()) {
      prev = pending->second;
    } else if (Status s = Newest(ApplyView(), p.key(), kMaxRev,
                                 p.prev_kv() || p.ignore_value() || t->want_events, &prev);
               !s.ok()) {
      return s;
    }
    const bool had = prev && prev->live();
    if ((p.ignore_value() || p.ignore_lease()) && !had) return errors::KeyNotFound();
    codec::Record rec;
    rec.value = p.ignore_value() ? prev->rec.value : p.value();
    rec.lease = p.ignore_lease() ? prev->rec.lease : p.lease();
    rec.create_revision = had ? prev->rec.create_revision : t->WriteRev();
    rec.version = had ? prev->rec.version + 1 : 1;
    WriteVersion(t, p.key(), rec, prev, /*unindexed=*/in_plain_put);
    if (in_plain_put) {  // WriteVersion took sub-revision t->changes - 1
      put_overlay.insert_or_assign(p.key(),
                                   Version{p.key(), t->WriteRev(), t->changes - 1, std::move(rec)});
    }
    if (p.prev_kv() && had) FillKv(*prev, true, resp->mutable_prev_kv());
    resp->mutable_header()->set_revision(t->Rev());
    return Status::Ok();
  }

  // `victims` are in key order. `bulk`: write past wb's index (see kBulkDeleteKeysMin), and
  // remove the victims from the latest CF with one range tombstone from the first victim to just
  // after the last instead of one point delete each: the latest CF holds exactly the live keys,
  // and every live key in that span is a victim (a third of a bulk delete's writes, bytes and
  // memtable inserts; docs/performance.md).
  Status DeleteKeys(TxnWrite* t, const std::vector<Version>& victims, bool bulk = false) {
    if (bulk && !victims.empty()) {
      KV_CHECK(!bulk_batch.has_value(), "two bulk deletes in one commit");
      // Per victim: the kv tombstone (escaped key + 12 + a few record bytes), the rev record
      // (12 + 1 + key), a lease_keys delete (8 + key) and each record's tag and lengths.
      const std::string& so_far = wb->GetWriteBatch()->Data();
      size_t bytes = so_far.size() + 2 * victims.front().key.size() + 256;
      for (const auto& v : victims) {
        bytes += 2 * v.key.size() + 64 + (v.rec.lease != 0 ? v.key.size() + 24 : 0);
      }
      std::string rep;
      rep.reserve(bytes);
      rep.assign(so_far);
      bulk_batch.emplace(std::move(rep));
      std::string end = victims.back().key;
      end.push_back('\0');  // the smallest key after the last victim
      const rocksdb::Status st = bulk_batch->DeleteRange(latest, victims.front().key, end);
      KV_CHECK(st.ok(), "wb delete range: %s", st.ToString().c_str());
    }
    for (const auto& v : victims) {
      codec::Record tomb;
      tomb.tombstone = true;
      WriteVersion(t, v.key, tomb, std::optional<Version>(v), bulk, /*latest_done=*/bulk);
    }
    return Status::Ok();
  }

  // A DeleteRange of at least this many keys that is a whole entry (not inside a txn) writes its
  // tombstones unindexed: indexing every write in the WriteBatchWithIndex was ~30 % of such a
  // delete's apply (profile in docs/performance.md), and nothing in the entry reads after it.
  static constexpr size_t kBulkDeleteKeysMin = 1024;

  // `whole_entry`: the delete is the entry's only operation, so it may write unindexed.
  Status DoDelete(TxnWrite* t, const etcdserverpb::DeleteRangeRequest& d,
                  etcdserverpb::DeleteRangeResponse* resp, bool whole_entry = false) {
    std::vector<Version> victims;
    // Values are only copied for the events (prev_kv) and the response's prev_kvs.
    const bool want_values = t->want_events || d.prev_kv();
    Status s = ScanLive(ApplyView(), KeyRange{d.key(), d.range_end()}, kMaxRev, want_values,
                        [&](const Version& v) {
                          victims.push_back(v);
                          return true;
                        });
    if (!s.ok()) return s;
    const bool bulk = whole_entry && victims.size() >= kBulkDeleteKeysMin;
    if (Status s2 = DeleteKeys(t, victims, bulk); !s2.ok()) return s2;
    if (bulk) unindexed_writes = true;
    resp->set_deleted(static_cast<int64_t>(victims.size()));
    if (d.prev_kv()) {
      for (const auto& v : victims) FillKv(v, true, resp->add_prev_kvs());
    }
    resp->mutable_header()->set_revision(t->Rev());
    return Status::Ok();
  }

  // Evaluates the compares of `r` (and of the nested txns on the chosen path) against the view
  // before the txn writes anything, like etcd 3.4's newTxnPath.
  Status TxnPath(const View& v, const TxnRequest& r, std::vector<bool>* path) const {
    bool ok = true;
    for (const auto& c : r.compare()) {
      bool all = true;
      bool any = false;
      // Values only for a value compare (one more lookup each when kept in the kv CF only).
      Status s = ScanLive(v, KeyRange{c.key(), c.range_end()}, kMaxRev,
                          c.target() == Compare::VALUE, [&](const Version& ver) {
                            any = true;
                            mvccpb::KeyValue kvp;
                            FillKv(ver, true, &kvp);
                            if (!CompareKv(c, kvp)) all = false;
                            return all;
                          });
      if (!s.ok()) return s;
      if (!any) all = c.target() != Compare::VALUE && CompareKv(c, mvccpb::KeyValue());
      if (!all) {
        ok = false;
        break;
      }
    }
    path->push_back(ok);
    for (const auto& op : ok ? r.success() : r.failure()) {
      if (op.request_case() != RequestOp::kRequestTxn) continue;
      if (Status s = TxnPath(v, op.request_txn(), path); !s.ok()) return s;
    }
    return Status::Ok();
  }

  // etcd's checkRequests on the chosen path: lease existence and ignore_* on puts, revisions of
  // ranges, all against the state before the txn.
  Status TxnCheck(const View& v, const TxnRequest& r, const std::vector<bool>& path, size_t* at,
                  int64_t begin_rev) const {
    const bool ok = path[(*at)++];
    for (const auto& op : ok ? r.success() : r.failure()) {
      switch (op.request_case()) {
        case RequestOp::kRequestPut: {
          const auto& p = op.request_put();
          if (p.lease() != 0 && !LeaseExists(p.lease())) return errors::LeaseNotFound();
          if (p.ignore_value() || p.ignore_lease()) {
            std::optional<Version> prev;
            if (Status s = Newest(v, p.key(), kMaxRev, false, &prev); !s.ok()) return s;
            if (!prev || !prev->live()) return errors::KeyNotFound();
          }
          break;
        }
        case RequestOp::kRequestRange: {
          int64_t rv = op.request_range().revision();
          if (rv > begin_rev) return errors::FutureRev();
          if (rv > 0 && rv < pending_compact) return errors::Compacted();
          break;
        }
        case RequestOp::kRequestTxn:
          if (Status s = TxnCheck(v, op.request_txn(), path, at, begin_rev); !s.ok()) return s;
          break;
        default:
          break;
      }
    }
    return Status::Ok();
  }

  Status TxnExec(TxnWrite* t, const TxnRequest& r, const std::vector<bool>& path, size_t* at,
                 etcdserverpb::TxnResponse* resp) {
    const bool ok = path[(*at)++];
    resp->set_succeeded(ok);
    for (const auto& op : ok ? r.success() : r.failure()) {
      auto* out = resp->add_responses();
      Status s;
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          s = DoRange(ApplyView(), op.request_range(), t->Rev(), pending_compact,
                      out->mutable_response_range());
          break;
        case RequestOp::kRequestPut:
          s = DoPut(t, op.request_put(), out->mutable_response_put());
          break;
        case RequestOp::kRequestDeleteRange:
          s = DoDelete(t, op.request_delete_range(), out->mutable_response_delete_range());
          break;
        case RequestOp::kRequestTxn:
          s = TxnExec(t, op.request_txn(), path, at, out->mutable_response_txn());
          break;
        default:
          s = errors::KeyNotFound();
          break;
      }
      if (!s.ok()) return s;
    }
    resp->mutable_header()->set_revision(t->Rev());
    return Status::Ok();
  }

  // TxnExec for a txn without writes, against a read view at revision cur_rev.
  Status TxnRead(const View& v, const TxnRequest& r, const std::vector<bool>& path, size_t* at,
                 int64_t cur_rev, int64_t compact_rev, etcdserverpb::TxnResponse* resp) const {
    const bool ok = path[(*at)++];
    resp->set_succeeded(ok);
    for (const auto& op : ok ? r.success() : r.failure()) {
      auto* out = resp->add_responses();
      Status s;
      switch (op.request_case()) {
        case RequestOp::kRequestRange:
          s = DoRange(v, op.request_range(), cur_rev, compact_rev, out->mutable_response_range());
          break;
        case RequestOp::kRequestTxn:
          s = TxnRead(v, op.request_txn(), path, at, cur_rev, compact_rev,
                      out->mutable_response_txn());
          break;
        default:
          s = errors::KeyNotFound();
          break;
      }
      if (!s.ok()) return s;
    }
    resp->mutable_header()->set_revision(cur_rev);
    return Status::Ok();
  }

  Status DoTxn(TxnWrite* t, const TxnRequest& r, etcdserverpb::TxnResponse* resp) {
    std::vector<bool> path;
    View v = ApplyView();
    if (Status s = TxnPath(v, r, &path); !s.ok()) return s;
    size_t at = 0;
    if (Status s = TxnCheck(v, r, path, &at, t->begin_rev); !s.ok()) return s;
    at = 0;
    return TxnExec(t, r, path, &at, resp);
  }

  Status DoCompact(const etcdserverpb::CompactionRequest& c,
                   etcdserverpb::CompactionResponse* resp) {
    if (c.revision() <= pending_compact) return errors::Compacted();
    if (c.revision() > pending_rev) return errors::FutureRev();
    pending_compact = c.revision();
    cursor.reset();
    rev_cf_compacted = false;
    KV_CHECK(wb->Put(meta, kMetaCompact, Be64(static_cast<uint64_t>(pending_compact))).ok(), "wb");
    KV_CHECK(wb->Delete(meta, kMetaCompactCursor).ok(), "wb");
    resp->mutable_header()->set_revision(pending_rev);
    return Status::Ok();
  }

  static std::string EncodeLease(const Lease& l) {
    std::string s;
    codec::PutVarint(&s, static_cast<uint64_t>(l.ttl_seconds));
    codec::PutVarint(&s, static_cast<uint64_t>(l.remaining_ttl_seconds));
    return s;
  }

  Status DoLeaseGrant(uint64_t index, int64_t now_ms, const etcdserverpb::LeaseGrantRequest& g,
                      etcdserverpb::LeaseGrantResponse* resp) {
    if (g.ttl() > opts.max_lease_ttl_seconds) return errors::LeaseTtlTooLarge();
    int64_t id = g.id();
    std::lock_guard<std::mutex> lock(lease_mu);
    if (id == 0) {
      // kvd picks the ID before proposing (Node::NewLeaseId); an entry without one (written by
      // an older kvd, or a direct store user) gets one deterministic from the raft index, so
      // every replica picks the same ID.
      uint64_t x = SplitMix64(index);
      for (int tries = 0; tries < 64; ++tries, x = SplitMix64(x)) {
        auto cand = static_cast<int64_t>(x & 0x7fffffffffffffffull);
        if (cand != 0 && leases.count(cand) == 0) {
          id = cand;
          break;
        }
      }
      if (id == 0) return {Code::kInternal, "kvstore: could not pick a free lease ID"};
    } else if (id < 0) {
      return errors::LeaseNotFound();
    }
    if (leases.count(id) != 0) return errors::LeaseExists();
    Lease l;
    l.ttl_seconds = std::max(g.ttl(), opts.min_lease_ttl_seconds);
    l.expiry_ms = primary ? now_ms + l.ttl_seconds * 1000 : kForever;
    KV_CHECK(wb->Put(meta, kMetaLeasePrefix + Be64(static_cast<uint64_t>(id)), EncodeLease(l)).ok(),
             "wb");
    leases[id] = l;
    resp->set_id(id);
    resp->set_ttl(l.ttl_seconds);
    resp->mutable_header()->set_revision(pending_rev);
    return Status::Ok();
  }

  Status DoLeaseRevoke(TxnWrite* t, int64_t id, etcdserverpb::LeaseRevokeResponse* resp) {
    if (!LeaseExists(id)) return errors::LeaseNotFound();
    std::vector<std::string> keys;
    {
      auto it = ApplyView().Iter(lk);
      std::string prefix = Be64(static_cast<uint64_t>(id));
      for (it->Seek(prefix); it->Valid() && StartsWith(Sv(it->key()), prefix); it->Next()) {
        keys.emplace_back(Sv(it->key()).substr(8));
      }
      if (Status s = FromRocks(it->status(), "scan lease keys"); !s.ok()) return s;
    }
    std::vector<Version> victims;
    for (const auto& k : keys) {
      std::optional<Version> v;
      // Values only for the events' prev_kv (a revoke answers none).
      if (Status s = Newest(ApplyView(), k, kMaxRev, t->want_events, &v); !s.ok()) return s;
      if (v && v->live() && v->rec.lease == id) victims.push_back(std::move(*v));
    }
    if (Status s = DeleteKeys(t, victims); !s.ok()) return s;
    KV_CHECK(wb->Delete(meta, kMetaLeasePrefix + Be64(static_cast<uint64_t>(id))).ok(), "wb");
    {
      std::lock_guard<std::mutex> lock(lease_mu);
      leases.erase(id);
    }
    resp->mutable_header()->set_revision(t->Rev());
    return Status::Ok();
  }

  Status DoLeaseCheckpoint(const etcdserverpb::LeaseCheckpointRequest& c,
                           etcdserverpb::LeaseCheckpointResponse* resp) {
    std::lock_guard<std::mutex> lock(lease_mu);
    for (const auto& cp : c.checkpoints()) {
      auto it = leases.find(cp.id());
      if (it == leases.end()) continue;
      it->second.remaining_ttl_seconds = std::max<int64_t>(cp.remaining_ttl(), 0);
      KV_CHECK(wb->Put(meta, kMetaLeasePrefix + Be64(static_cast<uint64_t>(cp.id())),
                       EncodeLease(it->second))
                   .ok(),
               "wb");
    }
    resp->mutable_header()->set_revision(pending_rev);
    return Status::Ok();
  }

  static std::string AlarmKey(uint64_t member, int type) {
    std::string s = kMetaAlarmPrefix + Be64(member);
    s.push_back(static_cast<char>(type));
    return s;
  }

  Status DoAlarm(const etcdserverpb::AlarmRequest& a, etcdserverpb::AlarmResponse* resp) {
    std::lock_guard<std::mutex> lock(lease_mu);
    auto add = [&](uint64_t m, int t) {
      auto* am = resp->add_alarms();
      am->set_memberid(m);
      am->set_alarm(static_cast<etcdserverpb::AlarmType>(t));
    };
    const int type = static_cast<int>(a.alarm());
    switch (a.action()) {
      case etcdserverpb::AlarmRequest::GET:
        for (const auto& [m, t] : alarms) {
          if (a.alarm() == etcdserverpb::NONE || t == type) add(m, t);
        }
        break;
      case etcdserverpb::AlarmRequest::ACTIVATE:
        if (a.alarm() == etcdserverpb::NONE) break;
        alarms.insert({a.memberid(), type});
        KV_CHECK(wb->Put(meta, AlarmKey(a.memberid(), type), "").ok(), "wb");
        add(a.memberid(), type);
        break;
      case etcdserverpb::AlarmRequest::DEACTIVATE:
        if (alarms.erase({a.memberid(), type}) != 0) {
          KV_CHECK(wb->Delete(meta, AlarmKey(a.memberid(), type)).ok(), "wb");
          add(a.memberid(), type);
        }
        break;
      default:
        return {Code::kInvalidArgument, "etcdserver: invalid alarm action"};
    }
    resp->mutable_header()->set_revision(pending_rev);
    return Status::Ok();
  }

  bool NoSpaceAlarm() const { return HasAlarm(etcdserverpb::NOSPACE); }
  bool CorruptAlarm() const { return HasAlarm(etcdserverpb::CORRUPT); }
  bool HasAlarm(etcdserverpb::AlarmType type) const {
    std::lock_guard<std::mutex> lock(lease_mu);
    return std::any_of(alarms.begin(), alarms.end(),
                       [type](const auto& a) { return a.second == static_cast<int>(type); });
  }

  Status Validate(const kvdpb::InternalRequest& req) const {
    if (req.ByteSizeLong() > opts.max_request_bytes) return errors::RequestTooLarge();
    switch (req.request_case()) {
      case kvdpb::InternalRequest::kRange:
        return CheckRange(req.range());
      case kvdpb::InternalRequest::kPut:
        return CheckPut(req.put());
      case kvdpb::InternalRequest::kDeleteRange:
        return CheckDelete(req.delete_range());
      case kvdpb::InternalRequest::kTxn: {
        if (Status s = CheckTxn(req.txn(), opts.max_txn_ops); !s.ok()) return s;
        std::set<std::string> puts;
        std::vector<Interval> dels;
        if (Status s = CheckIntervals(req.txn().success(), &puts, &dels); !s.ok()) return s;
        puts.clear();
        dels.clear();
        return CheckIntervals(req.txn().failure(), &puts, &dels);
      }
      case kvdpb::InternalRequest::REQUEST_NOT_SET:
        return {Code::kInvalidArgument, "kvstore: empty internal request"};
      default:
        return Status::Ok();
    }
  }

  // Applies one entry into wb. On error the caller rolls wb back to its save point.
  Status ApplyOne(uint64_t index, int64_t now_ms, const kvdpb::InternalRequest& req, TxnWrite* t,
                  kvdpb::InternalResponse* out) {
    if (Status s = Validate(req); !s.ok()) return s;
    // CORRUPT first, like etcd (its corrupt applier wraps the capped one).
    if (RefusedWhenCorrupt(req) && CorruptAlarm()) return errors::Corrupt();
    if (AddsData(req) && NoSpaceAlarm()) return errors::NoSpace();
    switch (req.request_case()) {
      case kvdpb::InternalRequest::kRange:
        return DoRange(ApplyView(), req.range(), pending_rev, pending_compact,
                       out->mutable_range());
      case kvdpb::InternalRequest::kPut:
        return DoPut(t, req.put(), out->mutable_put());
      case kvdpb::InternalRequest::kDeleteRange:
        return DoDelete(t, req.delete_range(), out->mutable_delete_range(), /*whole_entry=*/true);
      case kvdpb::InternalRequest::kTxn:
        return DoTxn(t, req.txn(), out->mutable_txn());
      case kvdpb::InternalRequest::kCompaction:
        return DoCompact(req.compaction(), out->mutable_compaction());
      case kvdpb::InternalRequest::kLeaseGrant:
        return DoLeaseGrant(index, now_ms, req.lease_grant(), out->mutable_lease_grant());
      case kvdpb::InternalRequest::kLeaseRevoke:
        return DoLeaseRevoke(t, req.lease_revoke().id(), out->mutable_lease_revoke());
      case kvdpb::InternalRequest::kLeaseCheckpoint:
        return DoLeaseCheckpoint(req.lease_checkpoint(), out->mutable_lease_checkpoint());
      case kvdpb::InternalRequest::kAlarm:
        return DoAlarm(req.alarm(), out->mutable_alarm());
      default:
        return {Code::kInvalidArgument, "kvstore: unknown internal request"};
    }
  }

  // ---- state loading ----

  Status GetMeta(const char* key, uint64_t* v, bool* found) const {
    std::string raw;
    rocksdb::Status s = db()->Get(rocksdb::ReadOptions(), meta, key, &raw);
    *found = false;
    if (s.IsNotFound()) return Status::Ok();
    if (!s.ok()) return FromRocks(s, std::string("read meta ") + key);
    if (raw.size() != 8) return CorruptMeta(key);
    *v = codec::GetBe64(raw.data());
    *found = true;
    return Status::Ok();
  }

  Status Load(int64_t* cur, int64_t* compact, uint64_t* applied) {
    uint64_t v = 0;
    bool found = false;
    *cur = 1;
    *compact = 0;
    *applied = 0;
    if (Status s = GetMeta(kMetaRev, &v, &found); !s.ok()) return s;
    if (found) *cur = static_cast<int64_t>(v);
    if (Status s = GetMeta(kMetaCompact, &v, &found); !s.ok()) return s;
    if (found) *compact = static_cast<int64_t>(v);
    if (Status s = GetMeta(kMetaApplied, &v, &found); !s.ok()) return s;
    if (found) *applied = v;
    compact_phys = 0;
    if (Status s = GetMeta(kMetaCompactPhys, &v, &found); !s.ok()) return s;
    if (found) compact_phys = static_cast<int64_t>(v);
    pending_rev = *cur;
    pending_compact = *compact;
    cursor.reset();
    rev_cf_compacted = false;
    std::string raw;
    rocksdb::Status rs = db()->Get(rocksdb::ReadOptions(), meta, kMetaCompactCursor, &raw);
    if (rs.ok()) {
      cursor = raw;
      rev_cf_compacted = true;  // a cursor is only written after the rev CF delete
    } else if (!rs.IsNotFound()) {
      return FromRocks(rs, "read compaction cursor");
    }
    std::lock_guard<std::mutex> lock(lease_mu);
    leases.clear();
    alarms.clear();
    auto it = View{db(), nullptr, nullptr}.Iter(meta);
    std::string lp = kMetaLeasePrefix;
    for (it->Seek(lp); it->Valid() && StartsWith(Sv(it->key()), lp); it->Next()) {
      std::string_view k = Sv(it->key()).substr(lp.size());
      std::string_view val = Sv(it->value());
      uint64_t ttl = 0, rem = 0;
      if (k.size() != 8 || !codec::GetVarint(&val, &ttl) || !codec::GetVarint(&val, &rem)) {
        return CorruptMeta("lease record");
      }
      Lease l;
      l.ttl_seconds = static_cast<int64_t>(ttl);
      l.remaining_ttl_seconds = static_cast<int64_t>(rem);
      leases[static_cast<int64_t>(codec::GetBe64(k.data()))] = l;
    }
    std::string ap = kMetaAlarmPrefix;
    for (it->Seek(ap); it->Valid() && StartsWith(Sv(it->key()), ap); it->Next()) {
      std::string_view k = Sv(it->key()).substr(ap.size());
      if (k.size() != 9) return CorruptMeta("alarm record");
      alarms.insert({codec::GetBe64(k.data()), static_cast<uint8_t>(k[8])});
    }
    return FromRocks(it->status(), "read meta");
  }
};

// ------------------------------------------------------------------------------------------

EngineOptions StoreEngineOptions() {
  EngineOptions e;
  e.memtable_bloom_families = {kCfLatest};
  return e;
}

std::vector<std::string> MvccStore::ColumnFamilies() {
  return {kCfKv, kCfLatest, kCfRev, kCfLeaseKeys, kCfMeta};
}

MvccStore::MvccStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  engine_ = impl_->engine;
}

MvccStore::~MvccStore() = default;

Status MvccStore::Open(Engine* engine, const StoreOptions& options,
                       std::unique_ptr<MvccStore>* out) {
  std::string marker;
  rocksdb::Status rs = engine->db()->Get(
      rocksdb::ReadOptions(), engine->db()->DefaultColumnFamily(), kRestoreMarker, &marker);
  if (rs.ok()) {
    return {Code::kDataLoss, "kvstore: data dir " + engine->dir() +
                                 " holds an interrupted checkpoint restore (marker " +
                                 kRestoreMarker + "); restore the checkpoint again"};
  }
  if (!rs.IsNotFound()) return FromRocks(rs, "read restore marker");
  for (const auto& cf : ColumnFamilies()) {
    if (Status s = engine->AddColumnFamily(cf); !s.ok()) return s;
  }
  auto impl = std::make_unique<Impl>();
  impl->engine = engine;
  impl->opts = options;
  impl->BindHandles();
  int64_t cur = 1, compact = 0;
  uint64_t applied = 0;
  if (Status s = impl->Load(&cur, &compact, &applied); !s.ok()) return s;
  std::unique_ptr<MvccStore> store(new MvccStore(std::move(impl)));
  store->current_rev_ = cur;
  store->compact_rev_ = compact;
  store->applied_index_ = applied;
  store->RefreshSizeEstimate();
  *out = std::move(store);
  return Status::Ok();
}

Status MvccStore::ResumeInterruptedRestore(Engine* engine, std::string* resumed_from) {
  resumed_from->clear();
  std::string marker;
  rocksdb::Status rs = engine->db()->Get(
      rocksdb::ReadOptions(), engine->db()->DefaultColumnFamily(), kRestoreMarker, &marker);
  if (rs.IsNotFound()) return Status::Ok();
  if (!rs.ok()) return FromRocks(rs, "read restore marker");
  std::error_code ec;
  if (!std::filesystem::exists(marker, ec)) return Status::Ok();  // Open reports the marker
  // RestoreCheckpoint verifies the whole file before it touches the store again.
  if (Status s = RestoreCheckpoint(engine, marker); !s.ok()) return s;
  *resumed_from = marker;
  return Status::Ok();
}

Status MvccStore::OpenDir(const std::string& dir, const StoreOptions& options,
                          std::unique_ptr<Engine>* engine, std::unique_ptr<MvccStore>* out) {
  if (Status s = Engine::Open(dir, options.engine, ColumnFamilies(), engine); !s.ok()) return s;
  return Open(engine->get(), options, out);
}

int64_t MvccStore::CurrentRevision() const { return current_rev_.load(); }
int64_t MvccStore::CompactRevision() const { return compact_rev_.load(); }

bool MvccStore::PhysicalCompactionDone() const {
  return impl_->compact_phys >= compact_rev_.load();
}

Status MvccStore::CurrentRevisionIn(const rocksdb::Snapshot* snap, int64_t* cur) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string raw;
  rocksdb::Status s = impl_->db()->Get(ro, impl_->meta, kMetaRev, &raw);
  if (s.ok() && raw.size() == 8) {
    *cur = static_cast<int64_t>(codec::GetBe64(raw.data()));
  } else if (!s.IsNotFound()) {
    return s.ok() ? CorruptMeta(kMetaRev) : FromRocks(s, "read current revision");
  }
  return Status::Ok();
}

Status MvccStore::Range(const etcdserverpb::RangeRequest& req,
                        etcdserverpb::RangeResponse* resp) const {
  RestoreGate::Read read_gate(impl_->restore_gate);
  // The revision is the one stored in the snapshot itself (every apply batch writes it), so
  // reads at the latest revision can use the latest CF. The compact revision is read after the
  // snapshot: physical removal only starts after the compact revision is published.
  SnapshotHolder snap(impl_->db());
  const int64_t compact = compact_rev_.load();
  int64_t cur = 1;
  if (Status s = CurrentRevisionIn(snap.get(), &cur); !s.ok()) return s;
  View v{impl_->db(), snap.get(), nullptr};
  return impl_->DoRange(v, req, cur, compact, resp);
}

bool MvccStore::IsReadOnlyTxn(const TxnRequest& req) {
  for (const auto* branch : {&req.success(), &req.failure()}) {
    for (const auto& op : *branch) {
      if (op.request_case() == RequestOp::kRequestTxn) {
        if (!IsReadOnlyTxn(op.request_txn())) return false;
      } else if (op.request_case() != RequestOp::kRequestRange) {
        return false;
      }
    }
  }
  return true;
}

Status MvccStore::ReadOnlyTxn(const TxnRequest& req, etcdserverpb::TxnResponse* resp) const {
  RestoreGate::Read read_gate(impl_->restore_gate);
  KV_CHECK(IsReadOnlyTxn(req), "ReadOnlyTxn with a write");
  kvdpb::InternalRequest wrapped;
  *wrapped.mutable_txn() = req;
  if (Status s = CheckRequest(wrapped); !s.ok()) return s;
  // As in Range: the revision stored in the snapshot itself, the compact revision after it.
  SnapshotHolder snap(impl_->db());
  const int64_t compact = compact_rev_.load();
  int64_t cur = 1;
  if (Status s = CurrentRevisionIn(snap.get(), &cur); !s.ok()) return s;
  View v{impl_->db(), snap.get(), nullptr};
  std::vector<bool> path;
  if (Status s = impl_->TxnPath(v, req, &path); !s.ok()) return s;
  size_t at = 0;
  return impl_->TxnRead(v, req, path, &at, cur, compact, resp);
}

Status MvccStore::HashKV(int64_t rev, uint32_t* hash, int64_t* compact_revision,
                         int64_t* hashed_rev) const {
  RestoreGate::Read read_gate(impl_->restore_gate);
  const int64_t cur = current_rev_.load();
  SnapshotHolder snap(impl_->db());
  const int64_t compact = compact_rev_.load();
  if (rev > cur) return errors::FutureRev();
  if (rev != 0 && rev <= compact) return errors::Compacted();
  const int64_t at = rev == 0 ? cur : rev;
  auto it = View{impl_->db(), snap.get(), nullptr}.Iter(impl_->kv);
  uint32_t crc = 0;
  std::string key;
  std::string last_prefix;
  bool kept_le_compact = false;  // the newest version <= compact of the current key was seen
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    int64_t main = 0, sub = 0;
    std::string_view raw = Sv(it->key());
    if (!codec::DecodeKvKey(raw, &key, &main, &sub)) return CorruptMeta("bad kv CF key");
    std::string_view prefix = raw.substr(0, codec::KvPrefixLen(raw));
    if (prefix != last_prefix) {
      last_prefix.assign(prefix);
      kept_le_compact = false;
    }
    if (main > at) continue;
    if (main <= compact) {
      // The logical rule CompactStep applies: keep only the newest version <= compact, and not
      // even that one when it is a tombstone older than compact.
      if (kept_le_compact) continue;
      kept_le_compact = true;
      std::string_view val = Sv(it->value());
      if (!val.empty() && val.front() == codec::kKindTombstone && main < compact) continue;
    }
    crc = Crc32c(raw, crc);
    crc = Crc32c(Sv(it->value()), crc);
  }
  if (Status s = FromRocks(it->status(), "hash kv"); !s.ok()) return s;
  *hash = crc;
  *compact_revision = compact;
  *hashed_rev = at;
  return Status::Ok();
}

Status MvccStore::ReadEvents(const KeyRange& range, int64_t from_rev, int64_t to_rev,
                             size_t max_events, bool want_prev_kv, std::vector<mvccpb::Event>* out,
                             int64_t* next_rev) const {
  RestoreGate::Read read_gate(impl_->restore_gate);
  const int64_t cur = current_rev_.load();
  SnapshotHolder snap(impl_->db());
  const int64_t compact = compact_rev_.load();
  if (from_rev < compact) return errors::Compacted();
  const int64_t to = std::min(to_rev, cur);
  *next_rev = std::max(from_rev, to + 1);
  if (from_rev > to) return Status::Ok();
  View v{impl_->db(), snap.get(), nullptr};
  auto it = v.Iter(impl_->rev);
  auto kvit = v.Iter(impl_->kv);
  size_t scanned = 0;
  size_t added = 0;
  int64_t last_main = -1;
  std::string key;
  for (it->Seek(codec::RevKey(std::max<int64_t>(from_rev, 0), 0)); it->Valid(); it->Next()) {
    int64_t main = 0, sub = 0;
    if (!codec::DecodeRevKey(Sv(it->key()), &main, &sub)) return CorruptMeta("bad rev CF key");
    if (main > to) break;
    if (main != last_main) {
      // A revision boundary: the only place where we may stop.
      if (added >= max_events || scanned >= impl_->opts.read_events_scan_max) {
        *next_rev = main;
        return Status::Ok();
      }
      last_main = main;
    }
    ++scanned;
    std::string_view val = Sv(it->value());
    if (val.empty()) return CorruptMeta("empty rev CF value");
    key.assign(val.substr(1));
    if (!range.Contains(key)) continue;
    mvccpb::Event ev;
    const std::string kvkey = codec::KvKey(key, main, sub);
    kvit->Seek(kvkey);
    if (!kvit->Valid() || Sv(kvit->key()) != kvkey) {
      if (Status s = FromRocks(kvit->status(), "read event"); !s.ok()) return s;
      return {Code::kDataLoss,
              "kvstore: rev CF entry without kv CF version at revision " + std::to_string(main)};
    }
    Version cur_ver{key, main, sub, {}};
    if (!codec::DecodeRecord(Sv(kvit->value()), &cur_ver.rec)) return CorruptMeta("bad record");
    if (cur_ver.rec.tombstone) {
      ev.set_type(mvccpb::Event::DELETE);
      ev.mutable_kv()->set_key(key);
      ev.mutable_kv()->set_mod_revision(main);
    } else {
      ev.set_type(mvccpb::Event::PUT);
      FillKv(cur_ver, true, ev.mutable_kv());
    }
    const bool is_create = !cur_ver.rec.tombstone && cur_ver.rec.version == 1;
    if (want_prev_kv && !is_create && main - 1 >= compact) {
      kvit->Next();
      std::string_view prefix(kvkey.data(), codec::KvPrefixLen(kvkey));
      if (kvit->Valid() && StartsWith(Sv(kvit->key()), prefix)) {
        Version prev{key, 0, 0, {}};
        std::string k2;
        if (!codec::DecodeKvKey(Sv(kvit->key()), &k2, &prev.main, &prev.sub) ||
            !codec::DecodeRecord(Sv(kvit->value()), &prev.rec)) {
          return CorruptMeta("bad record");
        }
        if (prev.live()) FillKv(prev, true, ev.mutable_prev_kv());
      }
    }
    out->push_back(std::move(ev));
    ++added;
  }
  if (Status s = FromRocks(it->status(), "read events"); !s.ok()) return s;
  if (Status s = FromRocks(kvit->status(), "read events"); !s.ok()) return s;
  *next_rev = to + 1;
  return Status::Ok();
}

Status MvccStore::CheckRequest(const kvdpb::InternalRequest& req) const {
  if (Status s = impl_->Validate(req); !s.ok()) return s;
  if (RefusedWhenCorrupt(req) && impl_->CorruptAlarm()) return errors::Corrupt();
  if (AddsData(req)) {
    if (impl_->NoSpaceAlarm()) return errors::NoSpace();
    if (SizeEstimateBytes() + static_cast<int64_t>(req.ByteSizeLong()) >
        impl_->opts.quota_backend_bytes) {
      return errors::NoSpace();
    }
  }
  return Status::Ok();
}

bool MvccStore::CorruptAlarmActive() const { return impl_->CorruptAlarm(); }

std::vector<etcdserverpb::AlarmMember> MvccStore::Alarms() const {
  std::lock_guard<std::mutex> lock(impl_->lease_mu);
  std::vector<etcdserverpb::AlarmMember> out;
  for (const auto& [m, t] : impl_->alarms) {
    etcdserverpb::AlarmMember a;
    a.set_memberid(m);
    a.set_alarm(static_cast<etcdserverpb::AlarmType>(t));
    out.push_back(a);
  }
  return out;
}

// ---- leases ----

Status MvccStore::LeaseRenew(int64_t id, int64_t now_ms, int64_t* ttl_seconds) {
  std::lock_guard<std::mutex> lock(impl_->lease_mu);
  auto it = impl_->leases.find(id);
  if (it == impl_->leases.end()) return errors::LeaseNotFound();
  it->second.remaining_ttl_seconds = 0;
  it->second.expiry_ms = now_ms + it->second.ttl_seconds * 1000;
  *ttl_seconds = it->second.ttl_seconds;
  return Status::Ok();
}

Status MvccStore::LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req, int64_t now_ms,
                                  etcdserverpb::LeaseTimeToLiveResponse* resp) const {
  resp->mutable_header()->set_revision(CurrentRevision());
  resp->set_id(req.id());
  {
    std::lock_guard<std::mutex> lock(impl_->lease_mu);
    auto it = impl_->leases.find(req.id());
    if (it == impl_->leases.end()) {
      resp->set_ttl(-1);
      resp->set_grantedttl(0);
      return Status::Ok();
    }
    const auto& l = it->second;
    int64_t remaining = l.expiry_ms == kForever ? l.ttl_seconds : (l.expiry_ms - now_ms) / 1000;
    resp->set_ttl(std::max<int64_t>(remaining, 0));
    resp->set_grantedttl(l.ttl_seconds);
  }
  if (req.keys()) {
    RestoreGate::Read read_gate(impl_->restore_gate);
    auto it = View{impl_->db(), nullptr, nullptr}.Iter(impl_->lk);
    std::string prefix = Be64(static_cast<uint64_t>(req.id()));
    for (it->Seek(prefix); it->Valid() && StartsWith(Sv(it->key()), prefix); it->Next()) {
      resp->add_keys(std::string(Sv(it->key()).substr(8)));
    }
    return FromRocks(it->status(), "scan lease keys");
  }
  return Status::Ok();
}

void MvccStore::LeaseLeases(etcdserverpb::LeaseLeasesResponse* resp) const {
  resp->mutable_header()->set_revision(CurrentRevision());
  std::lock_guard<std::mutex> lock(impl_->lease_mu);
  for (const auto& [id, l] : impl_->leases) resp->add_leases()->set_id(id);
}

std::vector<int64_t> MvccStore::ExpiredLeases(int64_t now_ms, size_t max) const {
  std::vector<std::pair<int64_t, int64_t>> due;
  {
    std::lock_guard<std::mutex> lock(impl_->lease_mu);
    for (const auto& [id, l] : impl_->leases) {
      if (l.expiry_ms <= now_ms) due.emplace_back(l.expiry_ms, id);
    }
  }
  std::sort(due.begin(), due.end());
  std::vector<int64_t> out;
  for (size_t i = 0; i < due.size() && i < max; ++i) out.push_back(due[i].second);
  return out;
}

void MvccStore::Promote(int64_t now_ms, int64_t extend_ms) {
  std::lock_guard<std::mutex> lock(impl_->lease_mu);
  impl_->primary = true;
  for (auto& [id, l] : impl_->leases) {
    int64_t ttl = l.remaining_ttl_seconds > 0 ? l.remaining_ttl_seconds : l.ttl_seconds;
    l.expiry_ms = now_ms + ttl * 1000 + extend_ms;
  }
}

void MvccStore::Demote() {
  std::lock_guard<std::mutex> lock(impl_->lease_mu);
  impl_->primary = false;
  for (auto& [id, l] : impl_->leases) l.expiry_ms = kForever;
}

// ---- apply ----

Status MvccStore::Apply(std::span<const ApplyEntry> entries, int64_t now_ms,
                        std::vector<ApplyResult>* results) {
  Impl& m = *impl_;
  if (m.poisoned) return {Code::kInternal, "kvstore: an earlier apply failed; reopen the store"};
  if (entries.size() > m.opts.apply_batch_entries_max) {
    return {Code::kInvalidArgument, "kvstore: apply batch too large"};
  }
  rocksdb::WriteBatchWithIndex wb(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  m.wb = &wb;
  m.unindexed_writes = false;
  // Every way out (a failed commit too) leaves no batch and no plain-put state behind.
  struct ApplyState {
    Impl& m;
    ~ApplyState() {
      m.wb = nullptr;
      m.in_plain_put = false;
      if (!m.put_overlay.empty()) m.put_overlay.clear();
      m.bulk_batch.reset();
    }
  } apply_state{m};
  int64_t rev_before = m.pending_rev;
  int64_t compact_before = m.pending_compact;
  std::vector<std::pair<int64_t, std::vector<mvccpb::Event>>> revisions;
  uint64_t applied = applied_index_.load();
  results->clear();
  results->reserve(entries.size());
  // Without watchers nobody reads the events: skip copying every key and value into them.
  const bool want_events = observer_ != nullptr && observer_->WantsEvents();
  // Writes wb with the applied index and revision as ONE RocksDB write, publishes them and tells
  // the observer. Normally once per call; also right after an entry that wrote unindexed.
  const auto commit = [&]() -> Status {
    // A bulk delete's batch holds wb's records too (DeleteKeys).
    rocksdb::WriteBatch* out = m.bulk_batch ? &*m.bulk_batch : wb.GetWriteBatch();
    KV_CHECK(out->Put(m.meta, kMetaApplied, Be64(applied)).ok(), "wb");
    KV_CHECK(out->Put(m.meta, kMetaRev, Be64(static_cast<uint64_t>(m.pending_rev))).ok(), "wb");
    rocksdb::WriteOptions wo;
    wo.sync = m.opts.sync_writes;
    rocksdb::Status ws = rocksdb::Status::OK();
    if (Status fs = failpoint::Eval("backendBeforeCommit"); !fs.ok()) {
      ws = rocksdb::Status::IOError(fs.message());
    } else {
      ws = m.db()->Write(wo, out);
    }
    m.bulk_batch.reset();
    if (!ws.ok()) {
      m.poisoned = true;
      m.pending_rev = rev_before;
      m.pending_compact = compact_before;
      return FromRocks(ws, "apply batch");
    }
    if (!m.put_overlay.empty()) m.put_overlay.clear();
    current_rev_.store(m.pending_rev);
    compact_rev_.store(m.pending_compact);
    applied_index_.store(applied);
    if (m.opts.quota_backend_bytes != std::numeric_limits<int64_t>::max()) RefreshSizeEstimate();
    if (observer_ != nullptr) {
      for (const auto& [r, evs] : revisions) {
        if (want_events) {
          observer_->OnRevision(r, evs);
        } else {
          observer_->OnRevisionWithoutEvents(r);
        }
      }
      if (m.pending_compact != compact_before) observer_->OnCompacted(m.pending_compact);
    }
    revisions.clear();
    rev_before = m.pending_rev;
    compact_before = m.pending_compact;
    wb.Clear();
    return Status::Ok();
  };
  bool committed_all = false;  // nothing was added to wb since the last commit
  for (const auto& e : entries) {
    ApplyResult res;
    res.index = e.index;
    if (e.index <= applied) {
      res.skipped = true;
      results->push_back(std::move(res));
      continue;
    }
    KV_CHECK(e.request != nullptr, "apply entry %llu without request",
             static_cast<unsigned long long>(e.index));
    const kvdpb::InternalRequest::RequestCase kind = e.request->request_case();
    m.in_plain_put = kind == kvdpb::InternalRequest::kPut;
    // Lease grants and checkpoints, alarms and compaction requests read no keys, so the plain
    // puts before them may stay unwritten (ApplyView() would abort if one did read).
    const bool reads_keys = !m.in_plain_put && kind != kvdpb::InternalRequest::kLeaseGrant &&
                            kind != kvdpb::InternalRequest::kLeaseCheckpoint &&
                            kind != kvdpb::InternalRequest::kAlarm &&
                            kind != kvdpb::InternalRequest::kCompaction;
    if (reads_keys && !m.put_overlay.empty()) {
      // This entry reads through wb's index, which does not hold the plain puts before it.
      if (Status cs = commit(); !cs.ok()) return cs;
    }
    Impl::TxnWrite t;
    t.begin_rev = m.pending_rev;
    t.want_events = want_events;
    wb.SetSavePoint();
    res.status = m.ApplyOne(e.index, now_ms, *e.request, &t, &res.response);
    if (!res.status.ok()) {
      if (m.in_plain_put) {
        // A plain put fails before it writes anything: nothing to undo in wb or put_overlay,
        // and a rollback would rebuild wb's whole index (plain puts' writes included).
        KV_CHECK(t.changes == 0, "a failed plain put wrote %lld versions",
                 static_cast<long long>(t.changes));
        KV_CHECK(wb.PopSavePoint().ok(), "pop save point");
      } else {
        KV_CHECK(wb.RollbackToSavePoint().ok(), "rollback");  // rebuilds the index
      }
      m.bulk_batch.reset();  // a copy of wb's records before this entry, plus the entry's
      m.unindexed_writes = false;
      res.response.Clear();
    } else {
      KV_CHECK(wb.PopSavePoint().ok(), "pop save point");
      if (t.changes > 0) {
        m.pending_rev = t.WriteRev();
        revisions.emplace_back(m.pending_rev, std::move(t.events));
      }
    }
    applied = e.index;
    results->push_back(std::move(res));
    committed_all = false;
    if (m.unindexed_writes) {
      // Later entries must read what this one wrote: commit it now and go on with a fresh wb.
      m.unindexed_writes = false;
      Status cs = commit();
      if (!cs.ok()) {
        m.wb = nullptr;
        return cs;
      }
      committed_all = true;
    }
  }
  Status cs = committed_all ? Status::Ok() : commit();
  m.wb = nullptr;
  return cs;
}

Status MvccStore::CompactStep(size_t max_keys, bool* done) {
  Impl& m = *impl_;
  const int64_t c = m.pending_compact;
  *done = m.compact_phys >= c;
  if (*done) return Status::Ok();
  rocksdb::WriteBatch wb;
  if (!m.rev_cf_compacted) {
    // Revisions below c are never read again: one range delete removes them all.
    KV_CHECK(wb.DeleteRange(m.rev, codec::RevKey(0, 0), codec::RevKey(c, 0)).ok(), "wb");
  }
  auto it = View{m.db(), nullptr, nullptr}.Iter(m.kv);
  it->Seek(m.cursor ? codec::KeySeek(*m.cursor) : std::string());
  size_t keys = 0;
  std::string key;
  std::optional<std::string> next_cursor;
  while (it->Valid()) {
    int64_t main = 0, sub = 0;
    if (!codec::DecodeKvKey(Sv(it->key()), &key, &main, &sub)) return CorruptMeta("bad kv CF key");
    if (keys >= max_keys) {
      next_cursor = key;
      break;
    }
    ++keys;
    const std::string prefix = codec::KeyPrefix(key);
    it->Seek(codec::KvKeyAtOrBefore(key, c));
    if (!it->Valid() || !StartsWith(Sv(it->key()), prefix)) continue;  // nothing <= c
    const std::string keep(Sv(it->key()));
    std::string_view val = Sv(it->value());
    const bool drop_keep = !val.empty() && val.front() == codec::kKindTombstone &&
                           static_cast<int64_t>(~codec::GetBe64(keep.data() + prefix.size())) < c;
    it->Next();
    if (it->Valid() && StartsWith(Sv(it->key()), prefix)) {
      const std::string first_old(Sv(it->key()));
      it->Next();
      if (it->Valid() && StartsWith(Sv(it->key()), prefix)) {
        KV_CHECK(wb.DeleteRange(m.kv, first_old, codec::KvKeyAfterAll(key)).ok(), "wb");
      } else {
        KV_CHECK(wb.Delete(m.kv, first_old).ok(), "wb");
      }
    }
    if (drop_keep) KV_CHECK(wb.Delete(m.kv, keep).ok(), "wb");
    it->Seek(codec::KvKeyAfterAll(key));
  }
  if (Status s = FromRocks(it->status(), "compaction scan"); !s.ok()) return s;
  if (next_cursor) {
    KV_CHECK(wb.Put(m.meta, kMetaCompactCursor, *next_cursor).ok(), "wb");
  } else {
    KV_CHECK(wb.Delete(m.meta, kMetaCompactCursor).ok(), "wb");
    KV_CHECK(wb.Put(m.meta, kMetaCompactPhys, Be64(static_cast<uint64_t>(c))).ok(), "wb");
  }
  rocksdb::WriteOptions wo;
  wo.sync = m.opts.sync_writes;
  if (Status s = FromRocks(m.db()->Write(wo, &wb), "compaction step"); !s.ok()) return s;
  m.rev_cf_compacted = true;
  m.cursor = next_cursor;
  if (!next_cursor) m.compact_phys = c;
  *done = !next_cursor.has_value();
  RefreshSizeEstimate();
  return Status::Ok();
}

// ---- checkpoints ----
//
// Format: "KVDCKPT1" | varint n | n x (varint len, family name) | records | 0x00 |
//         be64 record count | be32 crc32c(all previous bytes) | "KVDCKEND".
// record = byte (family index + 1) | varint key len | key | varint value len | value.

Status MvccStore::WriteCheckpoint(const std::function<Status(std::string_view)>& sink,
                                  size_t chunk_bytes) const {
  RestoreGate::Read read_gate(impl_->restore_gate);
  SnapshotHolder snap(impl_->db());
  View v{impl_->db(), snap.get(), nullptr};
  std::string buf;
  uint32_t crc = 0;
  auto flush = [&](bool force) -> Status {
    if (buf.empty() || (!force && buf.size() < chunk_bytes)) return Status::Ok();
    crc = Crc32c(buf, crc);
    Status s = sink(buf);
    buf.clear();
    return s;
  };
  buf.append(kCheckpointMagic, kMagicBytes);
  const auto families = ColumnFamilies();
  codec::PutVarint(&buf, families.size());
  for (const auto& f : families) {
    codec::PutVarint(&buf, f.size());
    buf.append(f);
  }
  uint64_t count = 0;
  std::string full_latest;
  for (size_t i = 0; i < families.size(); ++i) {
    const bool latest = families[i] == kCfLatest;
    auto it = v.Iter(impl_->engine->Cf(families[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice value = it->value();
      if (latest && value.size() > 12 && value[12] == codec::kKindPutValueInKv) {
        // A checkpoint carries whole latest records (the format kvd had before values could
        // stay in the kv CF only), so that any kvd can restore it; the restored store simply
        // holds those values in both families.
        Version ver;
        ver.key.assign(it->key().data(), it->key().size());
        if (Status s = impl_->DecodeLatest(v, Sv(value), &ver, true); !s.ok()) return s;
        full_latest = codec::RevKey(ver.main, ver.sub);
        full_latest.append(codec::EncodeRecord(ver.rec));
        value = rocksdb::Slice(full_latest);
      }
      buf.push_back(static_cast<char>(i + 1));
      codec::PutVarint(&buf, it->key().size());
      buf.append(it->key().data(), it->key().size());
      codec::PutVarint(&buf, value.size());
      buf.append(value.data(), value.size());
      ++count;
      if (Status s = flush(false); !s.ok()) return s;
    }
    if (Status s = FromRocks(it->status(), "checkpoint " + families[i]); !s.ok()) return s;
  }
  buf.push_back('\0');
  codec::PutBe64(&buf, count);
  crc = Crc32c(buf, crc);
  for (int i = 3; i >= 0; --i) buf.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  buf.append(kCheckpointEndMagic, kMagicBytes);
  Status s = sink(buf);
  return s;
}

Status MvccStore::Defragment() {
  RestoreGate::Read read_gate(impl_->restore_gate);
  Status s = engine_->CompactAll();
  RefreshSizeEstimate();
  return s;
}

Status MvccStore::WriteCheckpointFile(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  if (!f) return {Code::kInternal, "kvstore: cannot create " + tmp + ": " + std::strerror(errno)};
  Status s = WriteCheckpoint([&](std::string_view chunk) -> Status {
    f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!f) return {Code::kInternal, "kvstore: write " + tmp + " failed"};
    return Status::Ok();
  });
  f.close();
  if (s.ok() && !f) s = {Code::kInternal, "kvstore: close " + tmp + " failed"};
  if (!s.ok()) {
    std::remove(tmp.c_str());
    return s;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return {Code::kInternal, "kvstore: rename " + tmp + ": " + std::strerror(errno)};
  }
  return Status::Ok();
}

namespace {

// Streaming reader of a checkpoint file that tracks the CRC of everything consumed.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& path) : path_(path), f_(path, std::ios::binary) {}
  bool is_open() const { return f_.is_open(); }
  uint32_t crc() const { return crc_; }

  Status Bytes(size_t n, std::string* out, bool track = true) {
    out->resize(n);
    if (n == 0) return Status::Ok();
    f_.read(out->data(), static_cast<std::streamsize>(n));
    if (!f_ || static_cast<size_t>(f_.gcount()) != n) return Bad("truncated");
    if (track) crc_ = Crc32c(*out, crc_);
    return Status::Ok();
  }
  Status Byte(uint8_t* b) {
    std::string s;
    if (Status st = Bytes(1, &s); !st.ok()) return st;
    *b = static_cast<uint8_t>(s[0]);
    return Status::Ok();
  }
  Status Varint(uint64_t* v) {
    uint64_t result = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      uint8_t b = 0;
      if (Status s = Byte(&b); !s.ok()) return s;
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return Status::Ok();
      }
    }
    return Bad("bad varint");
  }
  Status Bad(const std::string& why) const {
    return {Code::kDataLoss, "kvstore: checkpoint " + path_ + " is corrupt: " + why};
  }
  bool AtEof() { return f_.peek() == std::char_traits<char>::eof(); }

 private:
  std::string path_;
  std::ifstream f_;
  uint32_t crc_ = 0;
};

// Parses a checkpoint, calling fn(family, key, value) per record (fn may be null: verify only).
Status ParseCheckpoint(
    const std::string& path, std::vector<std::string>* families,
    const std::function<Status(size_t, const std::string&, const std::string&)>& fn) {
  CheckpointReader r(path);
  if (!r.is_open()) {
    return {Code::kNotFound,
            "kvstore: cannot open checkpoint " + path + ": " + std::strerror(errno)};
  }
  std::string s;
  if (Status st = r.Bytes(kMagicBytes, &s); !st.ok()) return st;
  if (s != std::string(kCheckpointMagic, kMagicBytes)) return r.Bad("bad magic");
  uint64_t n = 0;
  if (Status st = r.Varint(&n); !st.ok()) return st;
  if (n == 0 || n > 64) return r.Bad("bad family count");
  families->clear();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = 0;
    if (Status st = r.Varint(&len); !st.ok()) return st;
    if (len > 256) return r.Bad("bad family name");
    if (Status st = r.Bytes(len, &s); !st.ok()) return st;
    families->push_back(s);
  }
  uint64_t count = 0;
  std::string key, value;
  while (true) {
    uint8_t tag = 0;
    if (Status st = r.Byte(&tag); !st.ok()) return st;
    if (tag == 0) break;
    if (tag > n) return r.Bad("bad family index");
    uint64_t len = 0;
    if (Status st = r.Varint(&len); !st.ok()) return st;
    if (len > kCheckpointRecordBytesMax) return r.Bad("record too large");
    if (Status st = r.Bytes(len, &key); !st.ok()) return st;
    if (Status st = r.Varint(&len); !st.ok()) return st;
    if (len > kCheckpointRecordBytesMax) return r.Bad("record too large");
    if (Status st = r.Bytes(len, &value); !st.ok()) return st;
    ++count;
    if (fn) {
      if (Status st = fn(tag - 1u, key, value); !st.ok()) return st;
    }
  }
  if (Status st = r.Bytes(8, &s); !st.ok()) return st;
  if (codec::GetBe64(s.data()) != count) return r.Bad("record count mismatch");
  const uint32_t want = r.crc();
  if (Status st = r.Bytes(4, &s, false); !st.ok()) return st;
  uint32_t got = 0;
  for (char c : s) got = (got << 8) | static_cast<uint8_t>(c);
  if (got != want) return r.Bad("checksum mismatch");
  if (Status st = r.Bytes(kMagicBytes, &s, false); !st.ok()) return st;
  if (s != std::string(kCheckpointEndMagic, kMagicBytes)) return r.Bad("bad end magic");
  return Status::Ok();
}

// fsync of `path` and of the directory holding it (so its name survives a power loss too).
Status SyncFileAndDir(const std::string& path) {
  auto sync_one = [](const std::string& p, int flags) -> Status {
    const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return {Code::kInternal, "kvstore: open " + p + ": " + std::strerror(errno)};
    const bool ok = ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) return {Code::kInternal, "kvstore: fsync " + p + ": " + std::strerror(err)};
    return Status::Ok();
  };
  if (Status s = sync_one(path, O_RDONLY); !s.ok()) return s;
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return sync_one(dir, O_RDONLY | O_DIRECTORY);
}

// Pass 1 of a restore: the whole file parses, its checksum matches, and it holds only families
// of ours. Touches nothing.
Status VerifyCheckpoint(const std::string& path) {
  std::vector<std::string> families;
  if (Status s = ParseCheckpoint(path, &families, nullptr); !s.ok()) return s;
  const auto ours = MvccStore::ColumnFamilies();
  for (const auto& f : families) {
    if (std::find(ours.begin(), ours.end(), f) == ours.end()) {
      return {Code::kInvalidArgument, "kvstore: checkpoint " + path + " has unknown family " + f};
    }
  }
  return Status::Ok();
}

}  // namespace

Status MvccStore::RestoreCheckpoint(Engine* engine, const std::string& path) {
  if (Status s = VerifyCheckpoint(path); !s.ok()) return s;
  return LoadVerifiedCheckpoint(engine, path);
}

Status MvccStore::LoadVerifiedCheckpoint(Engine* engine, const std::string& path) {
  std::vector<std::string> families;
  const auto ours = ColumnFamilies();
  // The marker names the file, and a resume after power loss re-reads it: the file must be
  // durable before the marker is, and the name must not depend on the working directory.
  if (Status s = SyncFileAndDir(path); !s.ok()) return s;
  std::error_code ec;
  const std::string marker = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) return {Code::kInternal, "kvstore: absolute path of " + path + ": " + ec.message()};
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::DB* db = engine->db();
  if (Status s = FromRocks(db->Put(sync, db->DefaultColumnFamily(), kRestoreMarker, marker),
                           "write restore marker");
      !s.ok()) {
    return s;
  }
  for (const auto& f : ours) {
    if (Status s = engine->RecreateColumnFamily(f); !s.ok()) return s;
  }
  if (Status s = failpoint::Eval("restoreAfterDrop"); !s.ok()) return s;
  rocksdb::WriteBatch wb;
  auto write = [&]() -> Status {
    Status s = FromRocks(db->Write(rocksdb::WriteOptions(), &wb), "restore batch");
    wb.Clear();
    return s;
  };
  // Pass 2: load. A crash from here on leaves the marker, which Open reports.
  Status s = ParseCheckpoint(path, &families,
                             [&](size_t fam, const std::string& k, const std::string& v) -> Status {
                               KV_CHECK(wb.Put(engine->Cf(families[fam]), k, v).ok(), "wb");
                               if (wb.GetDataSize() >= kRestoreBatchBytes) return write();
                               return Status::Ok();
                             });
  if (s.ok()) s = write();
  if (s.ok()) s = FromRocks(db->FlushWAL(true), "sync restore");
  if (s.ok()) {
    s = FromRocks(db->Delete(sync, db->DefaultColumnFamily(), kRestoreMarker),
                  "clear restore marker");
  }
  return s;
}

bool MvccStore::Poisoned() const { return impl_->poisoned; }

Status MvccStore::RestoreCheckpointFile(const std::string& path) {
  Impl& m = *impl_;
  // Verified before the gate is taken: readers wait only for the drop and the load.
  if (Status s = VerifyCheckpoint(path); !s.ok()) return s;
  // From here to the end, readers wait: the families and the handles bound to them change.
  RestoreGate::Write write_gate(m.restore_gate);
  Status s = LoadVerifiedCheckpoint(m.engine, path);
  m.BindHandles();
  if (!s.ok()) {
    m.poisoned = true;
    return s;
  }
  int64_t cur = 1, compact = 0;
  uint64_t applied = 0;
  if (Status ls = m.Load(&cur, &compact, &applied); !ls.ok()) {
    m.poisoned = true;
    return ls;
  }
  {
    std::lock_guard<std::mutex> lock(m.lease_mu);
    for (auto& [id, l] : m.leases) l.expiry_ms = kForever;
    m.primary = false;
  }
  m.poisoned = false;
  current_rev_ = cur;
  compact_rev_ = compact;
  applied_index_ = applied;
  RefreshSizeEstimate();
  return Status::Ok();
}

}  // namespace kvstore
