// MemoryStorage: the reference Storage used by tests, the simulator and the benchmark.
#include "raft/storage.h"

#include <catch2/catch.hpp>

namespace {

std::vector<raft::Entry> Ents(uint64_t from, uint64_t to, uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = from; i <= to; ++i) {
    out.push_back(raft::Entry{term, i, raft::EntryType::kNormal, "e" + std::to_string(i)});
  }
  return out;
}

}  // namespace

// Goal: append, truncate-on-overwrite, bounded reads, terms and error codes behave as documented.
TEST_CASE("MemoryStorage append, entries, term", "[raft][storage]") {
  raft::MemoryStorage s;
  REQUIRE(s.FirstIndex() == 1);
  REQUIRE(s.LastIndex() == 0);
  s.Append(Ents(1, 5, 1));
  REQUIRE(s.LastIndex() == 5);
  s.Append(Ents(4, 6, 2));  // overwrites 4 and 5
  REQUIRE(s.LastIndex() == 6);
  uint64_t t = 0;
  REQUIRE(s.Term(3, &t).ok());
  REQUIRE(t == 1);
  REQUIRE(s.Term(4, &t).ok());
  REQUIRE(t == 2);
  REQUIRE(s.Term(7, &t).code() == raft::Code::kUnavailable);
  std::vector<raft::Entry> out;
  REQUIRE(s.Entries(2, 7, raft::kNoLimit, &out).ok());
  REQUIRE(out.size() == 5);
  out.clear();
  // The byte limit stops early but returns at least one entry.
  REQUIRE(s.Entries(2, 7, 1, &out).ok());
  REQUIRE(out.size() == 1);
  out.clear();
  REQUIRE(s.Entries(2, 8, raft::kNoLimit, &out).code() == raft::Code::kUnavailable);
}

// Goal: snapshots and compaction move FirstIndex and keep the compaction point's term.
TEST_CASE("MemoryStorage snapshot and compact", "[raft][storage]") {
  raft::MemoryStorage s;
  s.Append(Ents(1, 10, 3));
  raft::Snapshot snap;
  REQUIRE(s.CreateSnapshot(6, raft::ConfState{{1, 2, 3}, {}}, "data", &snap).ok());
  REQUIRE(snap.metadata.index == 6);
  REQUIRE(snap.metadata.term == 3);
  REQUIRE(s.Compact(6).ok());
  REQUIRE(s.FirstIndex() == 7);
  uint64_t t = 0;
  REQUIRE(s.Term(6, &t).ok());
  REQUIRE(t == 3);
  REQUIRE(s.Term(5, &t).code() == raft::Code::kCompacted);
  std::vector<raft::Entry> out;
  REQUIRE(s.Entries(6, 8, raft::kNoLimit, &out).code() == raft::Code::kCompacted);
  REQUIRE(s.Compact(4).code() == raft::Code::kCompacted);
  REQUIRE(s.CreateSnapshot(5, {}, "", nullptr).code() == raft::Code::kSnapshotOutOfDate);

  raft::MemoryStorage f;
  f.Append(Ents(1, 3, 1));
  REQUIRE(f.ApplySnapshot(snap).ok());
  REQUIRE(f.FirstIndex() == 7);
  REQUIRE(f.LastIndex() == 6);
  REQUIRE(f.ApplySnapshot(snap).code() == raft::Code::kSnapshotOutOfDate);
  raft::HardState hs;
  raft::ConfState cs;
  REQUIRE(f.InitialState(&hs, &cs).ok());
  REQUIRE(cs.voters == std::vector<uint64_t>{1, 2, 3});
}

// Goal: the bootstrap log holds one committed AddNode per voter at term 1.
TEST_CASE("BootstrapStorage writes the initial membership into the log", "[raft][storage]") {
  raft::MemoryStorage s;
  raft::BootstrapStorage(&s, {1, 2, 3});
  REQUIRE(s.LastIndex() == 3);
  REQUIRE(s.hard_state() == raft::HardState{1, raft::kNone, 3});
}
