// kvstore::Engine: the node's one RocksDB instance, opened with a list of column families. The
// MVCC store, the lease table and (later) the raft log store each own column families in it, so
// one WriteBatch can update several of them atomically.
//
// Thread-safety: Open/AddColumnFamily/RecreateColumnFamily are for the owning thread only; db()
// and Cf() may be called from any thread once the families they name exist.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kvstore/status.h"

// Forward declarations only: callers outside kvstore/ never see RocksDB headers.
namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Status;
}  // namespace rocksdb

namespace kvstore {

struct EngineOptions {
  // Shared block cache for every family (bytes). Small by default: the layout needs no index in
  // memory, so RSS stays near this figure plus memtables.
  size_t block_cache_bytes = 32u << 20;
  // Memtable size per family (bytes).
  size_t write_buffer_bytes = 16u << 20;
  // WAL size that forces a flush of the column families still holding old WAL data. The meta
  // family gets a tiny write per apply batch and would otherwise pin every WAL file.
  uint64_t max_total_wal_bytes = 64u << 20;
  // Read every SST file's checksums when opening (detects corruption up front instead of on the
  // first read that touches the damaged block).
  bool verify_checksums_on_open = true;
  // Families read mostly by point lookups (Get): their memtables keep a whole-key bloom filter of
  // memtable_bloom_bits_per_byte x write_buffer_bytes bits, so that a Get of a key the memtable
  // does not hold skips the skiplist search (a chain of dependent loads across the memtable's
  // arena). Writes to such a family pay one filter update.
  std::vector<std::string> memtable_bloom_families;
  double memtable_bloom_bits_per_byte = 0.08;
};

class Engine {
 public:
  // Opens (creating if needed) the database in `dir` with `families` (created when missing).
  // Families that exist on disk but are not listed are opened too. Corrupt files give a
  // kDataLoss status whose message names the file (RocksDB's own message).
  static Status Open(const std::string& dir, const EngineOptions& options,
                     const std::vector<std::string>& families, std::unique_ptr<Engine>* out);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Creates `name` if it does not exist yet.
  Status AddColumnFamily(const std::string& name);
  // Drops `name` with all its data and creates it empty (used by checkpoint restore). Any
  // handle from an earlier Cf(name) becomes invalid.
  Status RecreateColumnFamily(const std::string& name);

  const std::string& dir() const { return dir_; }
  rocksdb::DB* db() const;
  // The handle of an existing family; aborts on an unknown name (a programming error).
  rocksdb::ColumnFamilyHandle* Cf(const std::string& name) const;
  bool HasColumnFamily(const std::string& name) const;

  // Total on-disk size of SST files plus memtables (bytes), and the estimate of live data.
  int64_t SizeBytes() const;
  int64_t SizeInUseBytes() const;
  // Flushes memtables and compacts every family (etcd's Defragment).
  Status CompactAll();

 private:
  Engine() = default;
  struct Rep;
  std::unique_ptr<Rep> rep_;
  std::string dir_;
};

// Converts a RocksDB status into ours. Corruption -> kDataLoss, others -> kInternal; the message
// keeps RocksDB's text, which names the file involved.
Status FromRocks(const rocksdb::Status& s, const std::string& context);

}  // namespace kvstore
