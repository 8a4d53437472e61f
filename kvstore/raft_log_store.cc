#include "kvstore/raft_log_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/write_batch.h>

#include <map>

#include "kvstore/failpoint.h"
#include "raft/codec.h"

namespace kvstore {

// ---- Record layout --------------------------------------------------------------------------

namespace {

constexpr char kEntryPrefix = 'e';
constexpr char kMetaPrefix = 'm';
constexpr size_t kEntryKeyBytes = 9;
constexpr size_t kCrcBytes = 4;

const std::string kHardStateKey = std::string(1, kMetaPrefix) + "hard_state";
const std::string kSnapshotKey = std::string(1, kMetaPrefix) + "snapshot";
const std::string kSnapshotDataKey = std::string(1, kMetaPrefix) + "snapshot_data";
const std::string kLogStartKey = std::string(1, kMetaPrefix) + "log_start";

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xFFu));
  }
}

uint64_t GetBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (size_t k = 0; k < 8; ++k) {
    v = (v << 8) | static_cast<unsigned char>(in[k]);
  }
  return v;
}

std::string EntryKey(uint64_t index) {
  std::string k(1, kEntryPrefix);
  PutBigEndian64(&k, index);
  return k;
}

// Upper bound of every entry key (exclusive).
const std::string kEntryKeyEnd(1, static_cast<char>(kEntryPrefix + 1));

// CRC32C over key + payload, then the payload: a value moved under another key fails too.
std::string Seal(std::string_view key, std::string_view payload) {
  const uint32_t crc = Crc32c(payload, Crc32c(key));
  std::string v;
  v.reserve(kCrcBytes + payload.size());
  for (int shift = 0; shift < 32; shift += 8) {
    v.push_back(static_cast<char>((crc >> shift) & 0xFF));
  }
  v.append(payload.data(), payload.size());
  return v;
}

// The payload of a sealed value, or false when the checksum does not match.
bool Unseal(std::string_view key, std::string_view value, std::string_view* payload) {
  if (value.size() < kCrcBytes) {
    return false;
  }
  uint32_t stored = 0;
  for (size_t k = 0; k < kCrcBytes; ++k) {
    stored |= static_cast<uint32_t>(static_cast<unsigned char>(value[k])) << (8 * k);
  }
  *payload = value.substr(kCrcBytes);
  return Crc32c(*payload, Crc32c(key)) == stored;
}

std::string EncodeLogStart(uint64_t index, uint64_t term) {
  std::string s;
  PutBigEndian64(&s, index);
  PutBigEndian64(&s, term);
  return s;
}

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

raft::Status ToRaft(const Status& s) {
  // raft::Storage has no I/O or data-loss code: any failure other than kCompacted /
  // kUnavailable is fatal to RawNode anyway, and the message says what happened.
  return {raft::Code::kCorrupt, s.message()};
}

}  // namespace

// ---- RaftLogStore ---------------------------------------------------------------------------

RaftLogStore::RaftLogStore(Engine* engine, const RaftLogStoreOptions& options)
    : engine_(engine), options_(options) {}

RaftLogStore::~RaftLogStore() {
  if (read_snapshot_ != nullptr) {
    engine_->db()->ReleaseSnapshot(read_snapshot_);
  }
}

Status RaftLogStore::Open(Engine* engine, const RaftLogStoreOptions& options,
                          std::unique_ptr<RaftLogStore>* out) {
  KV_CHECK(engine != nullptr, "RaftLogStore::Open without an engine");
  if (!engine->HasColumnFamily(options.column_family)) {
    Status s = engine->AddColumnFamily(options.column_family);
    if (!s.ok()) {
      return s;
    }
  }
  std::unique_ptr<RaftLogStore> store(new RaftLogStore(engine, options));
  Status s = store->Load();
  if (!s.ok()) {
    return s;
  }
  store->read_snapshot_ = engine->db()->GetSnapshot();
  *out = std::move(store);
  return Status::Ok();
}

std::string RaftLogStore::Where(uint64_t index) const {
  return "raft log entry at index " + std::to_string(index) + " in column family " +
         options_.column_family;
}

Status RaftLogStore::Load() {
  rocksdb::DB* db = engine_->db();
  rocksdb::ColumnFamilyHandle* cf = engine_->Cf(options_.column_family);
  const std::string family = " in column family " + options_.column_family;
  auto data_loss = [](std::string what) { return Status(Code::kDataLoss, std::move(what)); };

  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;  // a one-pass scan; keep the block cache for the MVCC store
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  std::map<std::string, std::string, std::less<>> meta;
  uint64_t first_entry = 0;  // 0: no entry seen yet
  uint64_t prev_entry = 0;
  // One pass over the family: bounded by the number of records it holds.
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view key = ToView(it->key());
    std::string_view payload;
    if (!key.empty() && key[0] == kMetaPrefix) {
      if (key != kHardStateKey && key != kSnapshotKey && key != kSnapshotDataKey &&
          key != kLogStartKey) {
        return data_loss("unknown raft log record '" + std::string(key) + "'" + family);
      }
      if (!Unseal(key, ToView(it->value()), &payload)) {
        return data_loss("checksum mismatch in raft log record '" + std::string(key.substr(1)) +
                         "'" + family);
      }
      meta.emplace(std::string(key), std::string(payload));
      continue;
    }
    if (key.size() != kEntryKeyBytes || key[0] != kEntryPrefix) {
      return data_loss("unknown raft log record key of " + std::to_string(key.size()) + " bytes" +
                       family);
    }
    const uint64_t index = GetBigEndian64(key.substr(1));
    if (!Unseal(key, ToView(it->value()), &payload)) {
      return data_loss("checksum mismatch in " + Where(index));
    }
    raft::Entry e;
    if (raft::Status ds = raft::DecodeEntry(payload, &e); !ds.ok()) {
      return data_loss("undecodable " + Where(index) + ": " + ds.message());
    }
    if (e.index != index) {
      return data_loss(Where(index) + " holds index " + std::to_string(e.index));
    }
    if (first_entry == 0) {
      first_entry = index;
    } else if (index != prev_entry + 1) {
      return data_loss("raft log entries " + std::to_string(prev_entry + 1) + " to " +
                       std::to_string(index - 1) + " are missing" + family);
    }
    prev_entry = index;
    cache_bytes_ += raft::EntrySizeBytes(e);
    cache_.push_back(std::move(e));
    TrimCache();
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), "scan raft log" + family);
  }

  if (auto m = meta.find(kLogStartKey); m != meta.end()) {
    if (m->second.size() != 16) {
      return data_loss("malformed raft log start record" + family);
    }
    dummy_index_ = GetBigEndian64(m->second);
    dummy_term_ = GetBigEndian64(std::string_view(m->second).substr(8));
  }
  if (auto m = meta.find(kHardStateKey); m != meta.end()) {
    if (raft::Status ds = raft::DecodeHardState(m->second, &hard_state_); !ds.ok()) {
      return data_loss("undecodable raft hard state" + family + ": " + ds.message());
    }
  }
  if (auto m = meta.find(kSnapshotKey); m != meta.end()) {
    if (raft::Status ds = raft::DecodeSnapshotMetadata(m->second, &snapshot_.metadata); !ds.ok()) {
      return data_loss("undecodable raft snapshot metadata" + family + ": " + ds.message());
    }
  }
  if (auto m = meta.find(kSnapshotDataKey); m != meta.end()) {
    snapshot_.data = m->second;
  }

  if (first_entry != 0 && first_entry != dummy_index_ + 1) {
    return data_loss("raft log starts at " + std::to_string(dummy_index_ + 1) +
                     " but its first entry is " + std::to_string(first_entry) + family);
  }
  last_index_ = first_entry == 0 ? dummy_index_ : prev_entry;
  if (hard_state_.commit > last_index_) {
    return data_loss("raft hard state commit " + std::to_string(hard_state_.commit) +
                     " is beyond the last log index " + std::to_string(last_index_) + family +
                     " (log tail lost)");
  }
  return Status::Ok();
}

void RaftLogStore::TrimCache() {
  while (!cache_.empty() && cache_bytes_ > options_.cache_bytes_max) {
    cache_bytes_ -= raft::EntrySizeBytes(cache_.front());
    cache_.pop_front();
  }
}

Status RaftLogStore::ReadEntryFromDisk(uint64_t i, raft::Entry* out) const {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.snapshot = read_snapshot_;
  const std::string key = EntryKey(i);
  rocksdb::PinnableSlice value;
  rocksdb::Status rs =
      engine_->db()->Get(ro, engine_->Cf(options_.column_family), ToSlice(key), &value);
  if (rs.IsNotFound()) {
    return {Code::kDataLoss, "missing " + Where(i)};
  }
  if (!rs.ok()) {
    return FromRocks(rs, "read " + Where(i));
  }
  std::string_view payload;
  if (!Unseal(key, ToView(value), &payload)) {
    return {Code::kDataLoss, "checksum mismatch in " + Where(i)};
  }
  if (raft::Status ds = raft::DecodeEntry(payload, out); !ds.ok()) {
    return {Code::kDataLoss, "undecodable " + Where(i) + ": " + ds.message()};
  }
  if (out->index != i) {
    return {Code::kDataLoss, Where(i) + " holds index " + std::to_string(out->index)};
  }
  disk_reads_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status RaftLogStore::TermLocked(uint64_t i, uint64_t* term) const {
  KV_CHECK(i >= dummy_index_ && i <= last_index_, "term of %llu outside [%llu, %llu]",
           static_cast<unsigned long long>(i), static_cast<unsigned long long>(dummy_index_),
           static_cast<unsigned long long>(last_index_));
  if (i == dummy_index_) {
    *term = dummy_term_;
    return Status::Ok();
  }
  if (!cache_.empty() && i >= cache_.front().index) {
    *term = cache_[static_cast<size_t>(i - cache_.front().index)].term;
    cache_reads_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  raft::Entry e;
  Status s = ReadEntryFromDisk(i, &e);
  if (!s.ok()) {
    return s;
  }
  *term = e.term;
  return Status::Ok();
}

raft::Status RaftLogStore::InitialState(raft::HardState* hard_state,
                                        raft::ConfState* conf_state) const {
  std::shared_lock lock(mu_);
  *hard_state = hard_state_;
  *conf_state = snapshot_.metadata.conf_state;
  return raft::Status::Ok();
}

uint64_t RaftLogStore::FirstIndex() const {
  std::shared_lock lock(mu_);
  return dummy_index_ + 1;
}

uint64_t RaftLogStore::LastIndex() const {
  std::shared_lock lock(mu_);
  return last_index_;
}

raft::Status RaftLogStore::Snapshot(raft::Snapshot* out) const {
  std::shared_lock lock(mu_);
  *out = snapshot_;
  return raft::Status::Ok();
}

raft::Status RaftLogStore::Term(uint64_t i, uint64_t* term) const {
  std::shared_lock lock(mu_);
  if (i < dummy_index_) {
    return {raft::Code::kCompacted, "requested index is compacted"};
  }
  if (i > last_index_) {
    return {raft::Code::kUnavailable, "requested entry is unavailable"};
  }
  Status s = TermLocked(i, term);
  if (!s.ok()) {
    return ToRaft(s);
  }
  return raft::Status::Ok();
}

raft::Status RaftLogStore::Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                                   std::vector<raft::Entry>* out) const {
  std::shared_lock lock(mu_);
  if (lo <= dummy_index_) {
    return {raft::Code::kCompacted, "requested index is compacted"};
  }
  if (hi > last_index_ + 1) {
    return {raft::Code::kUnavailable, "requested entry is unavailable"};
  }
  RAFT_CHECK(lo <= hi, "lo=" + std::to_string(lo) + " hi=" + std::to_string(hi));
  const uint64_t cache_first = cache_.empty() ? last_index_ + 1 : cache_.front().index;
  std::vector<raft::Entry> got;
  uint64_t size_bytes = 0;
  uint64_t i = lo;
  bool full = false;
  // Older part from RocksDB: one iterator over [lo, min(hi, cache_first)).
  if (i < std::min(hi, cache_first)) {
    const uint64_t disk_end = std::min(hi, cache_first);
    const std::string upper = EntryKey(disk_end);
    const rocksdb::Slice upper_slice = ToSlice(upper);
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.snapshot = read_snapshot_;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(
        engine_->db()->NewIterator(ro, engine_->Cf(options_.column_family)));
    it->Seek(ToSlice(EntryKey(lo)));
    // Bounded by disk_end - lo iterations, and by max_bytes.
    for (; i < disk_end; ++i, it->Next()) {
      if (!it->Valid()) {
        break;
      }
      const std::string_view key = ToView(it->key());
      if (key != EntryKey(i)) {
        break;  // a gap: reported below
      }
      std::string_view payload;
      if (!Unseal(key, ToView(it->value()), &payload)) {
        return ToRaft({Code::kDataLoss, "checksum mismatch in " + Where(i)});
      }
      raft::Entry e;
      if (raft::Status ds = raft::DecodeEntry(payload, &e); !ds.ok()) {
        return ToRaft({Code::kDataLoss, "undecodable " + Where(i) + ": " + ds.message()});
      }
      if (e.index != i) {
        return ToRaft({Code::kDataLoss, Where(i) + " holds index " + std::to_string(e.index)});
      }
      size_bytes += raft::EntrySizeBytes(e);
      if (i > lo && size_bytes > max_bytes) {
        full = true;
        break;
      }
      got.push_back(std::move(e));
      disk_reads_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!it->status().ok()) {
      return ToRaft(FromRocks(it->status(), "read " + Where(i)));
    }
    if (!full && i < disk_end) {
      return ToRaft({Code::kDataLoss, "missing " + Where(i)});
    }
  }
  // Newer part from the cache.
  for (; !full && i < hi; ++i) {
    const raft::Entry& e = cache_[static_cast<size_t>(i - cache_first)];
    size_bytes += raft::EntrySizeBytes(e);
    if (i > lo && size_bytes > max_bytes) {
      break;
    }
    got.push_back(e);
    cache_reads_.fetch_add(1, std::memory_order_relaxed);
  }
  out->insert(out->end(), std::make_move_iterator(got.begin()), std::make_move_iterator(got.end()));
  return raft::Status::Ok();
}

RaftLogStoreStats RaftLogStore::stats() const {
  RaftLogStoreStats s;
  s.entries_read_from_cache = cache_reads_.load(std::memory_order_relaxed);
  s.entries_read_from_disk = disk_reads_.load(std::memory_order_relaxed);
  return s;
}

// ---- Writes ---------------------------------------------------------------------------------

Status RaftLogStore::Write(rocksdb::WriteBatch* batch, bool sync, const std::string& what) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(engine_->db()->Write(wo, batch),
                   what + " in column family " + options_.column_family);
}

void RaftLogStore::RenewReadSnapshot() {
  rocksdb::DB* db = engine_->db();
  if (read_snapshot_ != nullptr) {
    db->ReleaseSnapshot(read_snapshot_);
  }
  read_snapshot_ = db->GetSnapshot();
}

Status RaftLogStore::CheckSnapshotData(const std::string& data) const {
  if (data.size() > options_.snapshot_data_bytes_max) {
    return {Code::kInvalidArgument, "snapshot data of " + std::to_string(data.size()) +
                                        " bytes exceeds the raft log " + "store's limit of " +
                                        std::to_string(options_.snapshot_data_bytes_max) +
                                        " bytes (store a reference to the image, not the image)"};
  }
  return Status::Ok();
}

Status RaftLogStore::Save(const raft::HardState* hard_state,
                          const std::vector<raft::Entry>& entries, const raft::Snapshot* snap,
                          bool sync) {
  std::lock_guard write_lock(write_mu_);
  // Only writers change the state, and we hold write_mu_: reading it without mu_ is safe.
  rocksdb::ColumnFamilyHandle* cf = engine_->Cf(options_.column_family);
  rocksdb::WriteBatch batch;
  uint64_t dummy_index = dummy_index_;
  uint64_t dummy_term = dummy_term_;
  uint64_t last_index = last_index_;
  const bool has_snap = snap != nullptr && !snap->empty();

  // 1. The snapshot replaces the whole log.
  if (has_snap) {
    if (snap->metadata.index <= snapshot_.metadata.index) {
      return {Code::kFailedPrecondition,
              "snapshot is out of date: index " + std::to_string(snap->metadata.index) +
                  " <= current snapshot index " + std::to_string(snapshot_.metadata.index)};
    }
    if (Status s = CheckSnapshotData(snap->data); !s.ok()) {
      return s;
    }
    if (last_index > dummy_index) {
      batch.DeleteRange(cf, EntryKey(dummy_index + 1), EntryKey(last_index + 1));
    }
    dummy_index = snap->metadata.index;
    dummy_term = snap->metadata.term;
    last_index = dummy_index;
    batch.Put(cf, kSnapshotKey, Seal(kSnapshotKey, raft::EncodeSnapshotMetadata(snap->metadata)));
    batch.Put(cf, kSnapshotDataKey, Seal(kSnapshotDataKey, snap->data));
    batch.Put(cf, kLogStartKey, Seal(kLogStartKey, EncodeLogStart(dummy_index, dummy_term)));
  }

  // 2. Entries: skip those covered by the log start, replace from the first new index.
  size_t skip = 0;
  uint64_t start = 0;  // first new index written; 0 when no entry is written
  if (!entries.empty() && entries.back().index > dummy_index) {
    if (entries.front().index <= dummy_index) {
      skip = static_cast<size_t>(dummy_index + 1 - entries.front().index);
    }
    start = entries[skip].index;
    KV_CHECK(
        start <= last_index + 1, "gap in raft log append: first new index %llu, log [%llu, %llu]",
        static_cast<unsigned long long>(start), static_cast<unsigned long long>(dummy_index + 1),
        static_cast<unsigned long long>(last_index));
    for (size_t k = skip; k < entries.size(); ++k) {
      const raft::Entry& e = entries[k];
      KV_CHECK(e.index == start + (k - skip), "raft log append: entry %zu has index %llu, not %llu",
               k, static_cast<unsigned long long>(e.index),
               static_cast<unsigned long long>(start + (k - skip)));
      const std::string key = EntryKey(e.index);
      batch.Put(cf, key, Seal(key, raft::EncodeEntry(e)));
    }
    const uint64_t new_last = entries.back().index;
    // Entries after the new last one belong to the replaced suffix: delete them too.
    if (new_last < last_index) {
      batch.DeleteRange(cf, EntryKey(new_last + 1), EntryKey(last_index + 1));
    }
    last_index = new_last;
  }

  // 3. The hard state. Committed entries are never replaced, so commit <= last always holds;
  // Open() relies on it to detect a lost log tail.
  const uint64_t commit = hard_state != nullptr ? hard_state->commit : hard_state_.commit;
  KV_CHECK(commit <= last_index, "raft hard state commit %llu beyond the last log index %llu",
           static_cast<unsigned long long>(commit), static_cast<unsigned long long>(last_index));
  if (hard_state != nullptr) {
    batch.Put(cf, kHardStateKey, Seal(kHardStateKey, raft::EncodeHardState(*hard_state)));
  }

  if (batch.Count() == 0) {
    return Status::Ok();
  }
  // The failpoints model the synced write (a slow or failing fsync, a crash right after it); an
  // unsynced commit-only save never waits for the disk.
  if (sync) {
    if (Status s = failpoint::Eval("raftBeforeSave"); !s.ok()) return s;
  }
  if (Status s = Write(&batch, sync, "save raft ready"); !s.ok()) {
    return s;
  }
  if (sync) {
    if (Status s = failpoint::Eval("raftAfterSave"); !s.ok()) return s;
  }

  // Publish.
  std::unique_lock lock(mu_);
  if (has_snap) {
    snapshot_ = *snap;
    cache_.clear();
    cache_bytes_ = 0;
  }
  dummy_index_ = dummy_index;
  dummy_term_ = dummy_term;
  if (start != 0) {
    while (!cache_.empty() && cache_.back().index >= start) {
      cache_bytes_ -= raft::EntrySizeBytes(cache_.back());
      cache_.pop_back();
    }
    if (!cache_.empty() && cache_.back().index + 1 != start) {
      cache_.clear();  // cannot happen (start <= last + 1); kept so the cache stays contiguous
      cache_bytes_ = 0;
    }
    for (size_t k = skip; k < entries.size(); ++k) {
      cache_bytes_ += raft::EntrySizeBytes(entries[k]);
      cache_.push_back(entries[k]);
      TrimCache();
    }
  }
  last_index_ = last_index;
  if (hard_state != nullptr) {
    hard_state_ = *hard_state;
  }
  RenewReadSnapshot();
  return Status::Ok();
}

Status RaftLogStore::Bootstrap(const std::vector<uint64_t>& voters) {
  KV_CHECK(LastIndex() == 0 && FirstIndex() == 1, "bootstrap of a non-empty raft log");
  const raft::HardState hs{1, raft::kNone, voters.size()};
  return Save(&hs, raft::BootstrapEntries(voters), nullptr);
}

Status RaftLogStore::SetConfState(const raft::ConfState& cs) {
  std::lock_guard write_lock(write_mu_);
  raft::SnapshotMetadata md = snapshot_.metadata;
  md.conf_state = cs;
  rocksdb::WriteBatch batch;
  batch.Put(engine_->Cf(options_.column_family), kSnapshotKey,
            Seal(kSnapshotKey, raft::EncodeSnapshotMetadata(md)));
  if (Status s = Write(&batch, /*sync=*/true, "set raft conf state"); !s.ok()) {
    return s;
  }
  std::unique_lock lock(mu_);
  snapshot_.metadata = md;
  RenewReadSnapshot();
  return Status::Ok();
}

Status RaftLogStore::CreateSnapshot(uint64_t i, const raft::ConfState& cs, std::string data,
                                    raft::Snapshot* out, bool sync) {
  std::lock_guard write_lock(write_mu_);
  if (i <= snapshot_.metadata.index) {
    return {Code::kFailedPrecondition, "snapshot is out of date: index " + std::to_string(i) +
                                           " <= current snapshot index " +
                                           std::to_string(snapshot_.metadata.index)};
  }
  KV_CHECK(i <= last_index_, "snapshot index %llu beyond the last log index %llu",
           static_cast<unsigned long long>(i), static_cast<unsigned long long>(last_index_));
  KV_CHECK(i >= dummy_index_, "snapshot index %llu is compacted (log starts at %llu)",
           static_cast<unsigned long long>(i), static_cast<unsigned long long>(dummy_index_ + 1));
  if (Status s = CheckSnapshotData(data); !s.ok()) {
    return s;
  }
  raft::SnapshotMetadata md;
  md.index = i;
  md.conf_state = cs;
  if (Status s = TermLocked(i, &md.term); !s.ok()) {
    return s;
  }
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* cf = engine_->Cf(options_.column_family);
  batch.Put(cf, kSnapshotKey, Seal(kSnapshotKey, raft::EncodeSnapshotMetadata(md)));
  batch.Put(cf, kSnapshotDataKey, Seal(kSnapshotDataKey, data));
  if (Status s = Write(&batch, sync, "create raft snapshot"); !s.ok()) {
    return s;
  }
  std::unique_lock lock(mu_);
  snapshot_.metadata = std::move(md);
  snapshot_.data = std::move(data);
  if (out != nullptr) {
    *out = snapshot_;
  }
  RenewReadSnapshot();
  return Status::Ok();
}

Status RaftLogStore::Compact(uint64_t compact_index) {
  std::lock_guard write_lock(write_mu_);
  if (compact_index <= dummy_index_) {
    return {Code::kOutOfRange, "requested index is compacted: " + std::to_string(compact_index) +
                                   " <= " + std::to_string(dummy_index_)};
  }
  KV_CHECK(compact_index <= last_index_, "compact %llu beyond the last log index %llu",
           static_cast<unsigned long long>(compact_index),
           static_cast<unsigned long long>(last_index_));
  uint64_t term = 0;
  if (Status s = TermLocked(compact_index, &term); !s.ok()) {
    return s;
  }
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* cf = engine_->Cf(options_.column_family);
  batch.DeleteRange(cf, EntryKey(dummy_index_ + 1), EntryKey(compact_index + 1));
  batch.Put(cf, kLogStartKey, Seal(kLogStartKey, EncodeLogStart(compact_index, term)));
  if (Status s = Write(&batch, /*sync=*/false, "compact raft log"); !s.ok()) {
    return s;
  }
  std::unique_lock lock(mu_);
  dummy_index_ = compact_index;
  dummy_term_ = term;
  while (!cache_.empty() && cache_.front().index <= compact_index) {
    cache_bytes_ -= raft::EntrySizeBytes(cache_.front());
    cache_.pop_front();
  }
  RenewReadSnapshot();
  return Status::Ok();
}

uint64_t RaftLogStore::IndexKeepingBytes(uint64_t upto, uint64_t bytes_min) const {
  std::shared_lock lock(mu_);
  KV_CHECK(upto <= last_index_, "IndexKeepingBytes(%llu) beyond the last log index %llu",
           static_cast<unsigned long long>(upto), static_cast<unsigned long long>(last_index_));
  if (bytes_min == 0 || cache_.empty() || upto < cache_.front().index) return 0;
  uint64_t kept_bytes = 0;
  // The cache ends at last_index_ and is contiguous: entry i sits at i - front.
  for (size_t at = upto - cache_.front().index + 1; at-- > 0;) {
    kept_bytes += raft::EntrySizeBytes(cache_[at]);
    if (kept_bytes >= bytes_min) return cache_[at].index - 1;
  }
  return 0;
}

}  // namespace kvstore
