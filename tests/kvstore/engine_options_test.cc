// Engine column family options: the memtable bloom filter is set on exactly the families named
// in EngineOptions::memtable_bloom_families (at open, when added, when recreated), a store's
// Engine puts it on the latest-version family, and Gets through it stay exact.
#include <rocksdb/db.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "kvstore/engine.h"
#include "kvstore/mvcc_store.h"
#include "tests/support/temp_dir.h"

namespace {

bool HasMemtableBloom(kvstore::Engine& e, const std::string& family) {
  const rocksdb::Options o = e.db()->GetOptions(e.Cf(family));
  return o.memtable_whole_key_filtering && o.memtable_prefix_bloom_size_ratio > 0;
}

}  // namespace

TEST_CASE("engine: memtable bloom only on the named families, kept across reopen and recreate",
          "[engine]") {
  kvtest::TempDir dir("engine-bloom");
  kvstore::EngineOptions eo;
  eo.memtable_bloom_families = {"points"};
  {
    std::unique_ptr<kvstore::Engine> e;
    REQUIRE(kvstore::Engine::Open(dir.str(), eo, {"points", "scans"}, &e).ok());
    CHECK(HasMemtableBloom(*e, "points"));
    CHECK_FALSE(HasMemtableBloom(*e, "scans"));
    CHECK_FALSE(HasMemtableBloom(*e, rocksdb::kDefaultColumnFamilyName));
    REQUIRE(e->RecreateColumnFamily("points").ok());
    CHECK(HasMemtableBloom(*e, "points"));
  }
  std::unique_ptr<kvstore::Engine> e;
  REQUIRE(kvstore::Engine::Open(dir.str(), eo, {}, &e).ok());  // families found on disk
  CHECK(HasMemtableBloom(*e, "points"));
  CHECK_FALSE(HasMemtableBloom(*e, "scans"));
}

TEST_CASE("engine: a store's latest-version family has the bloom; Gets through it are exact",
          "[engine]") {
  kvtest::TempDir dir("engine-bloom-store");
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  REQUIRE(
      kvstore::MvccStore::OpenDir(dir.Sub("store"), kvstore::StoreOptions{}, &engine, &store).ok());
  CHECK(HasMemtableBloom(*engine, "mvcc_latest"));
  CHECK_FALSE(HasMemtableBloom(*engine, "mvcc_kv"));

  // Present keys are found and absent ones are not, and the absent ones are answered by the
  // filter (RocksDB counts a memtable bloom miss per Get it spares the skiplist search).
  kvstore::EngineOptions eo;
  eo.memtable_bloom_families = {"points"};
  std::unique_ptr<kvstore::Engine> e;
  REQUIRE(kvstore::Engine::Open(dir.Sub("plain"), eo, {"points"}, &e).ok());
  for (int i = 0; i < 1000; i += 2) {
    REQUIRE(e->db()->Put({}, e->Cf("points"), "k" + std::to_string(i), std::to_string(i)).ok());
  }
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  int found = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string v;
    const rocksdb::Status s = e->db()->Get({}, e->Cf("points"), "k" + std::to_string(i), &v);
    if (i % 2 == 0) {
      REQUIRE(s.ok());
      CHECK(v == std::to_string(i));
      ++found;
    } else {
      REQUIRE(s.IsNotFound());
    }
  }
  const uint64_t misses = rocksdb::get_perf_context()->bloom_memtable_miss_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  CHECK(found == 500);
  CHECK(misses >= 450);  // 500 absent keys; the filter may let a few false positives through
}
