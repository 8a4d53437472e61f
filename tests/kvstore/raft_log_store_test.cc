// RaftLogStore unit tests: randomized comparison against raft::MemoryStorage, persistence,
// corruption detection, CRC32C and concurrent reads during writes.
#include "kvstore/raft_log_store.h"

#include <rocksdb/db.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "raft/codec.h"
#include "raft/raw_node.h"
#include "tests/kvstore/raft_log_test_util.h"

using raftlogtest::Diff;
using raftlogtest::OpenLog;
using raftlogtest::Str;
using raftlogtest::TempDir;

namespace {

raft::Entry MakeEntry(uint64_t term, uint64_t index, std::string data = "") {
  if (data.empty()) {
    data = "i=" + std::to_string(index) + " t=" + std::to_string(term);
  }
  return raft::Entry{term, index, raft::EntryType::kNormal, std::move(data)};
}

std::vector<raft::Entry> MakeEntries(uint64_t term, uint64_t from, uint64_t to) {
  std::vector<raft::Entry> out;
  for (uint64_t i = from; i <= to; ++i) {
    out.push_back(MakeEntry(term, i));
  }
  return out;
}

std::string EntryKey(uint64_t index) {
  std::string k(1, 'e');
  for (int shift = 56; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>((index >> shift) & 0xFF));
  }
  return k;
}

uint64_t EnvU64(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v == nullptr ? dflt : std::strtoull(v, nullptr, 10);
}

// Maps the store's write errors to the model's codes so the two can be compared.
raft::Code ModelCode(const kvstore::Status& s) {
  switch (s.code()) {
    case kvstore::Code::kOk:
      return raft::Code::kOk;
    case kvstore::Code::kFailedPrecondition:
      return raft::Code::kSnapshotOutOfDate;
    case kvstore::Code::kOutOfRange:
      return raft::Code::kCompacted;
    default:
      return raft::Code::kCorrupt;  // never produced by the model
  }
}

// One seeded run of random Save / Compact / CreateSnapshot / SetConfState / reopen steps, each
// applied to the store and to a MemoryStorage model, compared after every step. Returns "" or
// a description of the first divergence.
std::string RunModelSeed(uint64_t seed, int steps) {
  std::mt19937_64 rng(seed);
  auto rand = [&](uint64_t lo, uint64_t hi) {  // uniform in [lo, hi]
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  TempDir dir;
  kvstore::RaftLogStoreOptions options;
  const uint64_t cache_choices[] = {0, 100, 700, 1u << 20};
  options.cache_bytes_max = cache_choices[rand(0, 3)];
  OpenLog log;
  if (kvstore::Status s = log.Reopen(dir.str(), options); !s.ok()) {
    return "open: " + s.ToString();
  }
  raft::MemoryStorage model;
  uint64_t term = 1;

  for (int step = 0; step < steps; ++step) {
    const std::string at = "step " + std::to_string(step) + ": ";
    kvstore::RaftLogStore& store = *log.store;
    const uint64_t op = rand(0, 99);
    std::string what;
    if (op < 60) {
      // A Ready: optional snapshot, entries, hard state.
      std::optional<raft::Snapshot> snap;
      if (rand(0, 99) < 8) {
        snap.emplace();
        const uint64_t cur = model.FirstIndex() - 1;
        snap->metadata.index = rand(cur >= 2 ? cur - 2 : 0, model.LastIndex() + 10);
        if (snap->metadata.index == 0) {
          snap->metadata.index = 1;
        }
        raft::Snapshot held;
        (void)model.Snapshot(&held);
        if (snap->metadata.index > held.metadata.index) {
          // Raft only installs a snapshot beyond its commit index.
          snap->metadata.index = std::max(snap->metadata.index, model.hard_state().commit + 1);
        }
        term += rand(0, 1);
        snap->metadata.term = term;
        snap->metadata.conf_state.voters = {1, rand(2, 5)};
        snap->data = "snap@" + std::to_string(snap->metadata.index);
        raft::Snapshot current;
        (void)model.Snapshot(&current);
        if (snap->metadata.index <= current.metadata.index) {
          kvstore::Status s = store.Save(nullptr, MakeEntries(term, 1, 1), &*snap);
          if (s.code() != kvstore::Code::kFailedPrecondition) {
            return at + "out-of-date snapshot: " + s.ToString();
          }
          what = "rejected snapshot";
          snap.reset();
        } else if (!model.ApplySnapshot(*snap).ok()) {
          return at + "model rejected the snapshot";
        }
      }
      std::vector<raft::Entry> ents;
      if (what.empty() && rand(0, 99) < 80) {
        const uint64_t first = model.FirstIndex();
        // Never replaces committed entries (raft never does; the store checks it).
        const uint64_t lowest = std::max(first > 3 ? first - 3 : 1, model.hard_state().commit + 1);
        const uint64_t start = rand(lowest, model.LastIndex() + 1);
        const uint64_t n = rand(1, 6);
        if (start <= model.LastIndex()) {
          term += rand(0, 1);  // a new leader overwrites
        }
        for (uint64_t k = 0; k < n; ++k) {
          std::string data(rand(0, 80), static_cast<char>('a' + rand(0, 25)));
          raft::Entry e{term, start + k, raft::EntryType::kNormal, data};
          if (rand(0, 9) == 0) {
            e.type = raft::EntryType::kConfChange;
          }
          ents.push_back(std::move(e));
        }
        model.Append(ents);
      }
      std::optional<raft::HardState> hs;
      if (what.empty() && rand(0, 1) == 0) {
        hs = raft::HardState{term, rand(0, 3), rand(0, model.LastIndex())};
        model.SetHardState(*hs);
      }
      if (what.empty()) {
        kvstore::Status s = store.Save(hs ? &*hs : nullptr, ents, snap ? &*snap : nullptr);
        if (!s.ok()) {
          return at + "save: " + s.ToString();
        }
        what = "save";
      }
    } else if (op < 72) {
      const uint64_t dummy = model.FirstIndex() - 1;
      const uint64_t ci = rand(dummy >= 1 ? dummy - 1 : 0, model.LastIndex());
      raft::Status ms = model.Compact(ci);
      kvstore::Status s = store.Compact(ci);
      if (ms.code() != ModelCode(s)) {
        return at + "compact " + std::to_string(ci) + ": " + s.ToString();
      }
      what = "compact " + std::to_string(ci);
    } else if (op < 82) {
      raft::Snapshot current;
      (void)model.Snapshot(&current);
      const uint64_t lo = std::max(model.FirstIndex() - 1,
                                   current.metadata.index > 0 ? current.metadata.index - 1 : 0);
      if (lo > model.LastIndex()) {
        continue;  // a truncation went below the snapshot
      }
      const uint64_t i = rand(lo, model.LastIndex());
      raft::ConfState cs;
      cs.voters = {1, 2, rand(3, 9)};
      const std::string data = "app@" + std::to_string(i);
      raft::Snapshot ms_out, s_out;
      raft::Status ms = model.CreateSnapshot(i, cs, data, &ms_out);
      kvstore::Status s = store.CreateSnapshot(i, cs, data, &s_out);
      if (ms.code() != ModelCode(s)) {
        return at + "create snapshot: " + s.ToString();
      }
      if (s.ok() && !(ms_out == s_out)) {
        return at + "create snapshot returned a different snapshot";
      }
      what = "create snapshot " + std::to_string(i);
    } else if (op < 85) {
      raft::ConfState cs;
      cs.voters = {rand(1, 3)};
      cs.learners = {rand(4, 6)};
      model.SetConfState(cs);
      if (kvstore::Status s = store.SetConfState(cs); !s.ok()) {
        return at + "conf: " + s.ToString();
      }
      what = "set conf state";
    } else if (op < 88) {
      if (kvstore::Status s = log.Reopen(dir.str(), options); !s.ok()) {
        return at + "reopen: " + s.ToString();
      }
      what = "reopen";
    } else {
      what = "reads";
    }
    const kvstore::RaftLogStore& st = *log.store;
    if (std::string d = Diff(model, st); !d.empty()) {
      return at + what + ": " + std::move(d);
    }
    // Random Entries() queries, including error cases and byte limits.
    const uint64_t limits[] = {0, 30, 100, 250, raft::kNoLimit};
    for (int q = 0; q < 6; ++q) {
      const uint64_t first = model.FirstIndex();
      const uint64_t lo = rand(first > 2 ? first - 2 : 0, model.LastIndex() + 2);
      const uint64_t hi = rand(lo, model.LastIndex() + 3);
      const uint64_t max_bytes = limits[rand(0, 4)];
      std::vector<raft::Entry> want{MakeEntry(9, 9)}, got{MakeEntry(9, 9)};  // appended to
      raft::Status ws = model.Entries(lo, hi, max_bytes, &want);
      raft::Status gs = st.Entries(lo, hi, max_bytes, &got);
      if (ws.code() != gs.code() || want != got) {
        return at + what + ": Entries(" + std::to_string(lo) + ", " + std::to_string(hi) + ", " +
               std::to_string(max_bytes) + "): want " + Str(ws) + " " + raftlogtest::Str(want) +
               " got " + Str(gs) + " " + raftlogtest::Str(got);
      }
    }
  }
  return "";
}

}  // namespace

TEST_CASE("RaftLogStore matches MemoryStorage under random operations", "[raft_log][model]") {
  // Goal: every observable result equals the reference MemoryStorage's, step by step.
  const uint64_t one_seed = EnvU64("KV_RAFT_LOG_SEED", 0);
  const uint64_t seeds = EnvU64("KV_RAFT_LOG_SEEDS", 12);
  const int steps = static_cast<int>(EnvU64("KV_RAFT_LOG_STEPS", 150));
  for (uint64_t k = 0; k < (one_seed != 0 ? 1 : seeds); ++k) {
    const uint64_t seed = one_seed != 0 ? one_seed : 1000 + k;
    const std::string failure = RunModelSeed(seed, steps);
    INFO("seed " << seed << ": " << failure << "\nreplay: KV_RAFT_LOG_SEED=" << seed << " "
                 << raftlogtest::SelfExe() << " '[model]'");
    REQUIRE(failure.empty());
  }
}

TEST_CASE("RaftLogStore reopens with the same state", "[raft_log]") {
  // Goal: hard state, conf state, snapshot, log start and entries survive close and reopen.
  TempDir dir;
  kvstore::RaftLogStoreOptions options;
  OpenLog log;
  REQUIRE(log.Reopen(dir.str(), options).ok());
  REQUIRE(log.store->Bootstrap({1, 2, 3}).ok());
  raft::HardState hs{3, 2, 20};
  REQUIRE(log.store->Save(&hs, MakeEntries(3, 4, 30), nullptr).ok());
  raft::Snapshot snap;
  raft::ConfState cs{{1, 2, 3}, {4}};
  REQUIRE(log.store->CreateSnapshot(15, cs, "checkpoint-15", &snap).ok());
  REQUIRE(log.store->Compact(12).ok());

  raft::MemoryStorage model;
  raft::BootstrapStorage(&model, {1, 2, 3});
  model.Append(MakeEntries(3, 4, 30));
  model.SetHardState(hs);
  REQUIRE(model.CreateSnapshot(15, cs, "checkpoint-15", nullptr).ok());
  REQUIRE(model.Compact(12).ok());
  REQUIRE(Diff(model, *log.store).empty());

  REQUIRE(log.Reopen(dir.str(), options).ok());
  CHECK(log.store->FirstIndex() == 13);
  CHECK(log.store->LastIndex() == 30);
  const std::string d = Diff(model, *log.store);
  INFO(d);
  CHECK(d.empty());
  raft::HardState got_hs;
  raft::ConfState got_cs;
  REQUIRE(log.store->InitialState(&got_hs, &got_cs).ok());
  CHECK(got_hs == hs);
  CHECK(got_cs == cs);
  uint64_t term = 0;
  REQUIRE(log.store->Term(12, &term).ok());
  CHECK(term == 3);
}

namespace {

// Opens `log` in `dir` with a cache of ten entries of 8 data bytes (32 bytes each, counted by
// raft::EntrySizeBytes) and appends entries 1..50 of that size: the cache then holds 41..50.
std::vector<raft::Entry> OpenWithTenEntryCache(const TempDir& dir, OpenLog* log) {
  kvstore::RaftLogStoreOptions options;
  options.cache_bytes_max = uint64_t{10} * (24 + 8);
  REQUIRE(log->Reopen(dir.str(), options).ok());
  std::vector<raft::Entry> ents;
  for (uint64_t i = 1; i <= 50; ++i) ents.push_back(MakeEntry(1, i, "12345678"));
  REQUIRE(log->store->Append(ents).ok());
  return ents;
}

}  // namespace

TEST_CASE("RaftLogStore serves recent entries from its cache and older ones from RocksDB",
          "[raft_log]") {
  // Goal: the bounded cache holds the tail; reads below it go to disk and still match.
  TempDir dir;
  OpenLog log;
  const std::vector<raft::Entry> ents = OpenWithTenEntryCache(dir, &log);

  std::vector<raft::Entry> got;
  REQUIRE(log.store->Entries(41, 51, raft::kNoLimit, &got).ok());
  CHECK(got == std::vector<raft::Entry>(ents.begin() + 40, ents.end()));
  CHECK(log.store->stats().entries_read_from_cache == 10);
  CHECK(log.store->stats().entries_read_from_disk == 0);

  got.clear();
  REQUIRE(log.store->Entries(1, 51, raft::kNoLimit, &got).ok());
  CHECK(got == ents);
  CHECK(log.store->stats().entries_read_from_disk == 40);

  // The byte limit cuts across the disk/cache boundary: 3 entries of 32 bytes fit in 100.
  got.clear();
  REQUIRE(log.store->Entries(39, 51, 100, &got).ok());
  CHECK(got == std::vector<raft::Entry>(ents.begin() + 38, ents.begin() + 41));
}

TEST_CASE("RaftLogStore::IndexKeepingBytes finds the shortest suffix of at least N bytes",
          "[raft_log]") {
  // Goal: the byte-based compaction point keeps at least the asked bytes, no more than one
  // entry beyond them, and answers 0 whenever the cache cannot tell.
  TempDir dir;
  OpenLog log;
  (void)OpenWithTenEntryCache(dir, &log);  // the cache holds 41..50

  CHECK(log.store->IndexKeepingBytes(50, 32) == 49);   // one entry is enough
  CHECK(log.store->IndexKeepingBytes(50, 33) == 48);   // 33 bytes need two
  CHECK(log.store->IndexKeepingBytes(50, 64) == 48);   // exactly two
  CHECK(log.store->IndexKeepingBytes(45, 96) == 42);   // 43..45
  CHECK(log.store->IndexKeepingBytes(50, 320) == 40);  // the whole cache, 41..50
  CHECK(log.store->IndexKeepingBytes(50, 321) == 0);   // older than the cache: unknown
  CHECK(log.store->IndexKeepingBytes(40, 1) == 0);     // upto itself is not cached
  CHECK(log.store->IndexKeepingBytes(50, 0) == 0);     // nothing asked: keep everything

  // Entries of different sizes are summed as raft::EntrySizeBytes counts them; the cache
  // trims to 45..51 (6 x 32 + 124 bytes).
  REQUIRE(log.store->Append({MakeEntry(1, 51, std::string(100, 'x'))}).ok());
  CHECK(log.store->IndexKeepingBytes(51, 124) == 50);
  CHECK(log.store->IndexKeepingBytes(51, 125) == 49);
  CHECK(log.store->IndexKeepingBytes(51, 124 + 6 * 32) == 44);
  CHECK(log.store->IndexKeepingBytes(51, 124 + 6 * 32 + 1) == 0);

  // A compaction drops entries from the cache: they no longer count.
  REQUIRE(log.store->Compact(48).ok());
  CHECK(log.store->IndexKeepingBytes(51, 124 + 2 * 32) == 48);
  CHECK(log.store->IndexKeepingBytes(51, 124 + 2 * 32 + 1) == 0);
}

namespace {

// Opens a log with entries 1..10 (term 2) and commit 10, then closes it.
void WriteTenEntries(const std::string& dir) {
  OpenLog log;
  REQUIRE(log.Reopen(dir, {}).ok());
  raft::HardState hs{2, 1, 10};
  REQUIRE(log.store->Save(&hs, MakeEntries(2, 1, 10), nullptr).ok());
}

// Applies `mutate` to the raw value of entry `index` through RocksDB, then closes.
template <typename Fn>
void MutateRawEntry(const std::string& dir, uint64_t index, Fn mutate) {
  std::unique_ptr<kvstore::Engine> engine;
  REQUIRE(kvstore::Engine::Open(dir, {}, {}, &engine).ok());
  rocksdb::ColumnFamilyHandle* cf = engine->Cf("raft_log");
  std::string value;
  REQUIRE(engine->db()->Get(rocksdb::ReadOptions(), cf, EntryKey(index), &value).ok());
  mutate(&value);
  REQUIRE(engine->db()->Put(rocksdb::WriteOptions(), cf, EntryKey(index), value).ok());
}

}  // namespace

TEST_CASE("RaftLogStore Open reports a corrupt entry as kDataLoss naming it", "[raft_log]") {
  // Goal: a flipped byte, a truncated value or a value under the wrong key fail Open cleanly.
  TempDir dir;
  WriteTenEntries(dir.str());
  OpenLog log;
  SECTION("flipped payload byte") {
    MutateRawEntry(dir.str(), 7, [](std::string* v) { (*v)[v->size() - 2] ^= 0x20; });
  }
  SECTION("flipped checksum byte") {
    MutateRawEntry(dir.str(), 7, [](std::string* v) { (*v)[1] ^= 0x01; });
  }
  SECTION("truncated value") {
    MutateRawEntry(dir.str(), 7, [](std::string* v) { v->resize(3); });
  }
  SECTION("entry 6's record copied under key 7") {
    std::unique_ptr<kvstore::Engine> engine;
    REQUIRE(kvstore::Engine::Open(dir.str(), {}, {}, &engine).ok());
    std::string six;
    rocksdb::ColumnFamilyHandle* cf = engine->Cf("raft_log");
    REQUIRE(engine->db()->Get(rocksdb::ReadOptions(), cf, EntryKey(6), &six).ok());
    REQUIRE(engine->db()->Put(rocksdb::WriteOptions(), cf, EntryKey(7), six).ok());
  }
  kvstore::Status s = log.Reopen(dir.str(), {});
  INFO(s.ToString());
  CHECK(s.code() == kvstore::Code::kDataLoss);
  CHECK(s.message().find("index 7 ") != std::string::npos);
  CHECK(s.message().find("raft_log") != std::string::npos);
}

TEST_CASE("RaftLogStore Open reports a missing entry and a lost tail", "[raft_log]") {
  // Goal: holes in the log and a commit index beyond the last entry are reported at Open.
  TempDir dir;
  WriteTenEntries(dir.str());
  std::string expect;
  {
    std::unique_ptr<kvstore::Engine> engine;
    REQUIRE(kvstore::Engine::Open(dir.str(), {}, {}, &engine).ok());
    rocksdb::ColumnFamilyHandle* cf = engine->Cf("raft_log");
    SECTION("hole") {
      REQUIRE(engine->db()->Delete(rocksdb::WriteOptions(), cf, EntryKey(5)).ok());
      expect = "entries 5 to 5 are missing";
    }
    SECTION("lost tail") {
      REQUIRE(engine->db()->Delete(rocksdb::WriteOptions(), cf, EntryKey(10)).ok());
      expect = "commit 10 is beyond the last log index 9";
    }
  }
  OpenLog log;
  kvstore::Status s = log.Reopen(dir.str(), {});
  INFO(s.ToString());
  CHECK(s.code() == kvstore::Code::kDataLoss);
  CHECK(s.message().find(expect) != std::string::npos);
}

TEST_CASE("RaftLogStore reads never return a corrupt entry", "[raft_log]") {
  // Goal: damage after Open is caught on read (checksum checked on every disk read).
  TempDir dir;
  kvstore::RaftLogStoreOptions options;
  options.cache_bytes_max = 0;  // every read goes to RocksDB
  OpenLog log;
  REQUIRE(log.Reopen(dir.str(), options).ok());
  REQUIRE(log.store->Append(MakeEntries(2, 1, 10)).ok());
  rocksdb::ColumnFamilyHandle* cf = log.engine->Cf("raft_log");
  std::string value;
  REQUIRE(log.engine->db()->Get(rocksdb::ReadOptions(), cf, EntryKey(4), &value).ok());
  value.back() ^= 0x01;
  REQUIRE(log.engine->db()->Put(rocksdb::WriteOptions(), cf, EntryKey(4), value).ok());
  // Reads go through the snapshot published by the last write: write once more to publish.
  raft::HardState hs{2, 0, 1};
  REQUIRE(log.store->SetHardState(hs).ok());

  std::vector<raft::Entry> got;
  raft::Status s = log.store->Entries(2, 8, raft::kNoLimit, &got);
  INFO(Str(s));
  CHECK(s.code() == raft::Code::kCorrupt);
  CHECK(s.message().find("index 4 in column family raft_log") != std::string::npos);
  CHECK(got.empty());
  uint64_t term = 0;
  CHECK(log.store->Term(4, &term).code() == raft::Code::kCorrupt);
  CHECK(log.store->Term(5, &term).ok());
  CHECK(log.store->CreateSnapshot(4, {}, "", nullptr).code() == kvstore::Code::kDataLoss);
}

TEST_CASE("RaftLogStore rejects oversized snapshot data and out-of-date snapshots", "[raft_log]") {
  // Goal: rejected writes return a status and leave the log unchanged.
  TempDir dir;
  kvstore::RaftLogStoreOptions options;
  options.snapshot_data_bytes_max = 16;
  OpenLog log;
  REQUIRE(log.Reopen(dir.str(), options).ok());
  REQUIRE(log.store->Append(MakeEntries(1, 1, 5)).ok());
  raft::Snapshot snap;
  snap.metadata = raft::SnapshotMetadata{8, 2, raft::ConfState{{1}, {}}};
  snap.data = std::string(17, 'x');
  CHECK(log.store->ApplySnapshot(snap).code() == kvstore::Code::kInvalidArgument);
  CHECK(log.store->CreateSnapshot(3, {}, std::string(17, 'x'), nullptr).code() ==
        kvstore::Code::kInvalidArgument);
  snap.data = "ok";
  raft::HardState hs{2, 0, 9};
  REQUIRE(log.store->Save(&hs, MakeEntries(2, 9, 9), &snap).ok());
  CHECK(log.store->FirstIndex() == 9);
  CHECK(log.store->LastIndex() == 9);
  raft::HardState hs2{3, 0, 9};
  snap.metadata.index = 8;
  CHECK(log.store->Save(&hs2, {}, &snap).code() == kvstore::Code::kFailedPrecondition);
  raft::HardState got_hs;
  raft::ConfState got_cs;
  REQUIRE(log.store->InitialState(&got_hs, &got_cs).ok());
  CHECK(got_hs == hs);
  CHECK(got_cs == snap.metadata.conf_state);
}

TEST_CASE("Crc32c matches the standard check value in both implementations", "[raft_log]") {
  // Goal: CRC32C is the Castagnoli CRC (RFC 3720 check value) and hardware == table.
  CHECK(kvstore::Crc32c("123456789") == 0xE3069283u);
  CHECK(kvstore::Crc32cPortable("123456789") == 0xE3069283u);
  CHECK(kvstore::Crc32c("") == 0u);
  std::mt19937_64 rng(7);
  for (size_t n = 0; n < 70; ++n) {
    std::string s(n, '\0');
    for (auto& c : s) {
      c = static_cast<char>(rng());
    }
    REQUIRE(kvstore::Crc32c(s) == kvstore::Crc32cPortable(s));
    const size_t cut = n / 3;
    REQUIRE(kvstore::Crc32c(s.substr(cut), kvstore::Crc32c(s.substr(0, cut))) ==
            kvstore::Crc32c(s));
  }
}

TEST_CASE("RaftLogStore readers see a consistent log while another thread writes", "[raft_log]") {
  // Goal: reads concurrent with Save/Compact (truncations included) never see a torn state.
  TempDir dir;
  kvstore::RaftLogStoreOptions options;
  options.cache_bytes_max = 400;  // most reads below the tail go to RocksDB
  OpenLog log;
  REQUIRE(log.Reopen(dir.str(), options).ok());
  kvstore::RaftLogStore* store = log.store.get();
  std::atomic<bool> done{false};
  std::string writer_error;
  std::thread writer([&] {
    std::mt19937_64 rng(42);
    uint64_t term = 1;
    for (int round = 0; round < 300 && writer_error.empty(); ++round) {
      const uint64_t last = store->LastIndex();
      uint64_t start = last + 1;
      if (rng() % 5 == 0 && last > store->FirstIndex() + 3) {
        start = last - rng() % 3;  // truncate a suffix under a new term
        ++term;
      }
      kvstore::Status s = store->Append(MakeEntries(term, start, start + rng() % 4));
      if (s.ok() && round % 40 == 39) {
        s = store->Compact(store->LastIndex() - 5);
      }
      if (!s.ok()) {
        writer_error = s.ToString();
      }
    }
    done = true;
  });
  std::string reader_error;
  uint64_t reads = 0;
  // Bounded: stops when the writer is done, or after a fixed number of reads.
  for (; !done && reads < 2000000 && reader_error.empty(); ++reads) {
    const uint64_t first = store->FirstIndex();
    const uint64_t last = store->LastIndex();
    std::vector<raft::Entry> got;
    raft::Status s = store->Entries(first, last + 1, raft::kNoLimit, &got);
    if (s.code() == raft::Code::kCompacted || s.code() == raft::Code::kUnavailable) {
      continue;
    }
    if (!s.ok()) {
      reader_error = Str(s);
      break;
    }
    for (size_t k = 0; k < got.size(); ++k) {
      const raft::Entry& e = got[k];
      if (e.index != first + k || e.data != MakeEntry(e.term, e.index).data ||
          (k > 0 && e.term < got[k - 1].term)) {
        reader_error = "inconsistent read at " + raft::Describe(e);
        break;
      }
    }
  }
  writer.join();
  INFO("writer: " << writer_error << " reader: " << reader_error << " after " << reads);
  CHECK(writer_error.empty());
  CHECK(reader_error.empty());
  CHECK(log.store->stats().entries_read_from_disk > 0);
}

namespace {

// Handles Readys as the Ready contract says (persist through the store, apply, advance) until
// the node has none left; bounded. Returns "" or what went wrong.
struct SingleNodeHost {
  kvstore::RaftLogStore* store = nullptr;
  std::vector<std::string> applied;
  uint64_t applied_index = 0;
  raft::ConfState conf_state;

  std::string Run(raft::RawNode& node) {
    for (int k = 0; k < 100 && node.HasReady(); ++k) {
      raft::Ready rd = node.Ready();
      // A commit-only hard state is written unsynced, as kvd does.
      kvstore::Status s = store->Save(rd.hard_state ? &*rd.hard_state : nullptr, rd.entries,
                                      rd.snapshot.empty() ? nullptr : &rd.snapshot, rd.must_sync);
      if (!s.ok()) {
        return s.ToString();
      }
      for (const raft::Entry& e : rd.committed_entries) {
        applied_index = e.index;
        if (e.type == raft::EntryType::kConfChange) {
          raft::ConfChange cc;
          if (!raft::DecodeConfChange(e.data, &cc).ok()) {
            return "bad conf change";
          }
          conf_state = node.ApplyConfChange(cc);
        } else if (!e.data.empty()) {
          applied.push_back(e.data);
        }
      }
      node.Advance();
    }
    return node.HasReady() ? "Ready loop did not settle" : "";
  }
};

}  // namespace

TEST_CASE("RawNode runs on a RaftLogStore and restarts from it", "[raft_log]") {
  // Goal: the store works as RawNode's Storage: commit, snapshot + compact, reopen, resume.
  TempDir dir;
  OpenLog log;
  REQUIRE(log.Reopen(dir.str(), {}).ok());
  REQUIRE(log.store->Bootstrap({1}).ok());
  SingleNodeHost host;
  host.store = log.store.get();
  raft::Config config;
  config.id = 1;
  config.storage = log.store.get();
  {
    raft::RawNode node(config);
    REQUIRE(host.Run(node).empty());
    REQUIRE(node.Campaign().ok());
    REQUIRE(host.Run(node).empty());
    for (int i = 0; i < 20; ++i) {
      REQUIRE(node.Propose("cmd" + std::to_string(i)).ok());
      REQUIRE(host.Run(node).empty());
    }
    REQUIRE(host.applied.size() == 20);
    CHECK(host.applied_index == log.store->LastIndex());
  }
  REQUIRE(host.conf_state == raft::ConfState{{1}, {}});
  REQUIRE(log.store->CreateSnapshot(host.applied_index, host.conf_state, "app", nullptr).ok());
  REQUIRE(log.store->Compact(host.applied_index - 5).ok());

  REQUIRE(log.Reopen(dir.str(), {}).ok());
  host.store = log.store.get();
  config.storage = log.store.get();
  config.applied = host.applied_index;
  raft::HardState hs;
  raft::ConfState cs;
  REQUIRE(log.store->InitialState(&hs, &cs).ok());
  CHECK(hs.commit == host.applied_index);
  CHECK(cs == host.conf_state);
  raft::RawNode node(config);
  REQUIRE(host.Run(node).empty());
  REQUIRE(node.Campaign().ok());
  REQUIRE(host.Run(node).empty());
  REQUIRE(node.Propose("after restart").ok());
  REQUIRE(host.Run(node).empty());
  CHECK(host.applied.size() == 21);
  CHECK(host.applied.back() == "after restart");
  CHECK(host.applied_index == log.store->LastIndex());
}
