#include "kvstore/engine.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <shared_mutex>

namespace kvstore {

struct Engine::Rep {
  rocksdb::DBOptions db_options;
  rocksdb::ColumnFamilyOptions cf_options;
  std::vector<std::string> bloom_families;  // EngineOptions::memtable_bloom_families
  double bloom_bits_per_byte = 0;
  std::unique_ptr<rocksdb::DB> db;
  // Guards `handles` (the map itself): the raft log store looks families up on the raft and
  // persist threads while a snapshot restore recreates the store's families on the apply thread.
  mutable std::shared_mutex handles_mu;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> handles;

  // cf_options, plus the memtable bloom filter for the families that want it.
  rocksdb::ColumnFamilyOptions OptionsFor(const std::string& family) const {
    rocksdb::ColumnFamilyOptions o = cf_options;
    if (std::find(bloom_families.begin(), bloom_families.end(), family) != bloom_families.end()) {
      // RocksDB sizes the filter as write_buffer_size x this ratio bytes.
      o.memtable_prefix_bloom_size_ratio = bloom_bits_per_byte / 8;
      o.memtable_whole_key_filtering = true;
    }
    return o;
  }

  ~Rep() {
    if (db) {
      for (auto& [name, h] : handles) {
        (void)db->DestroyColumnFamilyHandle(h);
      }
      (void)db->Close();
    }
  }
};

Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::Ok();
  Code code = s.IsCorruption() ? Code::kDataLoss : Code::kInternal;
  return {code, "rocksdb: " + context + ": " + s.ToString()};
}

namespace {

// The last "<file>.log: dropping N bytes; Corruption: ..." line of RocksDB's info log in `dir`
// (from its db_impl_open.cc), without the timestamp prefix; empty when there is none.
std::string LastWalCorruption(const std::string& dir) {
  std::ifstream in(dir + "/LOG");
  std::string line;
  std::string found;
  for (int lines = 0; lines < 100000 && std::getline(in, line); ++lines) {
    const size_t at = line.find(".log: dropping ");
    if (at == std::string::npos) continue;
    const size_t start = line.rfind(' ', at);
    found = line.substr(start == std::string::npos ? 0 : start + 1);
  }
  return found;
}

}  // namespace

Status Engine::Open(const std::string& dir, const EngineOptions& options,
                    const std::vector<std::string>& families, std::unique_ptr<Engine>* out) {
  std::unique_ptr<Engine> e(new Engine());
  e->dir_ = dir;
  e->rep_ = std::make_unique<Rep>();
  Rep& r = *e->rep_;
  r.db_options.create_if_missing = true;
  r.db_options.create_missing_column_families = true;
  r.db_options.paranoid_checks = true;
  // The WAL holds acknowledged raft entries: damage in the middle must stop the member (the
  // default, point-in-time recovery, would silently replay up to it and start with a shorter
  // log). Only an incomplete last record, a write cut short by power loss, is dropped.
  r.db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  r.db_options.max_background_jobs = 2;
  r.db_options.keep_log_file_num = 4;
  r.db_options.max_total_wal_size = options.max_total_wal_bytes;
  r.db_options.max_manifest_file_size = 64u << 20;
  rocksdb::BlockBasedTableOptions table;
  // Few shards: a shard must hold the biggest block we cache. Index and filter blocks are
  // partitioned so that big SST files never need one huge block per lookup.
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes, /*num_shard_bits=*/4);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.pin_top_level_index_and_filter = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.format_version = 5;
  r.cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  r.cf_options.write_buffer_size = options.write_buffer_bytes;
  r.cf_options.max_write_buffer_number = 2;
  r.cf_options.paranoid_file_checks = false;
  r.bloom_families = options.memtable_bloom_families;
  r.bloom_bits_per_byte = options.memtable_bloom_bits_per_byte;

  std::vector<std::string> names;
  std::vector<std::string> existing;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(r.db_options, dir, &existing);
  if (ls.ok()) {
    names = existing;
  } else if (!ls.IsIOError() && !ls.IsPathNotFound()) {
    // A missing CURRENT is a new dir (IOError/PathNotFound); anything else is damage.
    return FromRocks(ls, "list column families in " + dir);
  }
  if (names.empty()) names.push_back(rocksdb::kDefaultColumnFamilyName);
  for (const auto& f : families) {
    if (std::find(names.begin(), names.end(), f) == names.end()) names.push_back(f);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.reserve(names.size());
  for (const auto& n : names) descs.emplace_back(n, r.OptionsFor(n));
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(r.db_options, dir, descs, &handles, &raw);
  if (!s.ok()) {
    Status st = FromRocks(s, "open " + dir);
    // RocksDB's status for a damaged WAL does not say which file; its info log does.
    const std::string where = LastWalCorruption(dir);
    if (!where.empty()) st = Status(st.code(), st.message() + " (" + where + ")");
    return st;
  }
  r.db.reset(raw);
  for (size_t i = 0; i < names.size(); ++i) r.handles[names[i]] = handles[i];
  if (options.verify_checksums_on_open) {
    s = r.db->VerifyChecksum();
    if (!s.ok()) return FromRocks(s, "verify checksums in " + dir);
  }
  *out = std::move(e);
  return Status::Ok();
}

Engine::~Engine() = default;

rocksdb::DB* Engine::db() const { return rep_->db.get(); }

rocksdb::ColumnFamilyHandle* Engine::Cf(const std::string& name) const {
  std::shared_lock lock(rep_->handles_mu);
  auto it = rep_->handles.find(name);
  KV_CHECK(it != rep_->handles.end(), "unknown column family %s", name.c_str());
  return it->second;
}

bool Engine::HasColumnFamily(const std::string& name) const {
  std::shared_lock lock(rep_->handles_mu);
  return rep_->handles.count(name) != 0;
}

Status Engine::AddColumnFamily(const std::string& name) {
  if (HasColumnFamily(name)) return Status::Ok();
  rocksdb::ColumnFamilyHandle* h = nullptr;
  rocksdb::Status s = rep_->db->CreateColumnFamily(rep_->OptionsFor(name), name, &h);
  if (!s.ok()) return FromRocks(s, "create column family " + name);
  std::unique_lock lock(rep_->handles_mu);
  rep_->handles[name] = h;
  return Status::Ok();
}

Status Engine::RecreateColumnFamily(const std::string& name) {
  rocksdb::ColumnFamilyHandle* old = nullptr;
  {
    std::shared_lock lock(rep_->handles_mu);
    auto it = rep_->handles.find(name);
    if (it != rep_->handles.end()) old = it->second;
  }
  if (old != nullptr) {
    // A failed drop leaves the family and its handle as they were (still usable, still
    // mapped); only a dropped family's handle leaves the map and is destroyed.
    if (rocksdb::Status s = rep_->db->DropColumnFamily(old); !s.ok()) {
      return FromRocks(s, "drop column family " + name);
    }
    {
      std::unique_lock lock(rep_->handles_mu);
      rep_->handles.erase(name);
    }
    if (rocksdb::Status d = rep_->db->DestroyColumnFamilyHandle(old); !d.ok()) {
      return FromRocks(d, "destroy column family handle " + name);
    }
  }
  return AddColumnFamily(name);
}

int64_t Engine::SizeBytes() const {
  std::shared_lock lock(rep_->handles_mu);
  uint64_t total = 0;
  for (auto& [name, h] : rep_->handles) {
    uint64_t v = 0;
    if (rep_->db->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
    if (rep_->db->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) total += v;
  }
  return static_cast<int64_t>(total);
}

int64_t Engine::SizeInUseBytes() const {
  std::shared_lock lock(rep_->handles_mu);
  uint64_t total = 0;
  for (auto& [name, h] : rep_->handles) {
    uint64_t v = 0;
    if (rep_->db->GetIntProperty(h, "rocksdb.estimate-live-data-size", &v)) total += v;
    if (rep_->db->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) total += v;
  }
  return static_cast<int64_t>(total);
}

Status Engine::CompactAll() {
  std::shared_lock lock(rep_->handles_mu);
  for (auto& [name, h] : rep_->handles) {
    rocksdb::Status s = rep_->db->Flush(rocksdb::FlushOptions(), h);
    if (!s.ok()) return FromRocks(s, "flush " + name);
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    s = rep_->db->CompactRange(o, h, nullptr, nullptr);
    if (!s.ok()) return FromRocks(s, "compact " + name);
  }
  return Status::Ok();
}

}  // namespace kvstore
