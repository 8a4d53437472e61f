// Unit tests of server::RaftWal, the interim durable raft log: it must reopen exactly as it was
// saved, survive a torn tail, and keep its retained log across compaction rewrites.
#include "server/raft_wal.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "tests/support/temp_dir.h"

namespace {

std::vector<raft::Entry> MakeEntries(uint64_t lo, uint64_t hi, uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) {
    out.push_back(raft::Entry{term, i, raft::EntryType::kNormal, "data-" + std::to_string(i)});
  }
  return out;
}

std::vector<raft::Entry> ReadAll(const server::RaftWal& wal) {
  std::vector<raft::Entry> out;
  if (wal.LastIndex() < wal.FirstIndex()) return out;
  REQUIRE(wal.Entries(wal.FirstIndex(), wal.LastIndex() + 1, raft::kNoLimit, &out).ok());
  return out;
}

}  // namespace

TEST_CASE("RaftWal reopens with the same hard state, entries and conflicting-suffix replacement",
          "[unit]") {
  // Goal: what Save acknowledged is what Open replays, including a replaced suffix.
  kvtest::TempDir dir("raftwal");
  {
    std::unique_ptr<server::RaftWal> wal;
    REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
    CHECK(wal->IsEmpty());
    raft::HardState hs{2, 1, 3};
    REQUIRE(wal->Save(&hs, MakeEntries(1, 5, 1), nullptr).ok());
    // A new leader's entries replace 4..5 with term-2 entries 4..6.
    hs = raft::HardState{2, 1, 5};
    REQUIRE(wal->Save(&hs, MakeEntries(4, 6, 2), nullptr).ok());
  }
  std::unique_ptr<server::RaftWal> wal;
  REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
  CHECK_FALSE(wal->IsEmpty());
  raft::HardState hs;
  raft::ConfState cs;
  REQUIRE(wal->InitialState(&hs, &cs).ok());
  CHECK(hs == raft::HardState{2, 1, 5});
  std::vector<raft::Entry> want = MakeEntries(1, 3, 1);
  for (auto& e : MakeEntries(4, 6, 2)) want.push_back(e);
  CHECK(ReadAll(*wal) == want);
}

TEST_CASE("RaftWal cuts a torn last record and keeps everything before it", "[unit]") {
  // Goal: a crash in the middle of a write leaves a valid prefix, and later appends follow it.
  kvtest::TempDir dir("raftwal");
  const std::string path = (dir.path() / "raft.wal").string();
  {
    std::unique_ptr<server::RaftWal> wal;
    REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
    REQUIRE(wal->Save(nullptr, MakeEntries(1, 4, 1), nullptr).ok());
  }
  const auto full = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, full - 3);  // tear the last entry's record
  {
    std::unique_ptr<server::RaftWal> wal;
    REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
    CHECK(wal->LastIndex() == 3);
    REQUIRE(wal->Save(nullptr, MakeEntries(4, 5, 1), nullptr).ok());
  }
  std::unique_ptr<server::RaftWal> wal;
  REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
  CHECK(ReadAll(*wal) == MakeEntries(1, 5, 1));
}

TEST_CASE("RaftWal keeps snapshot, compaction point and retained entries across a rewrite",
          "[unit]") {
  // Goal: Compact rewrites the file to the retained log only, and it reopens identically.
  kvtest::TempDir dir("raftwal");
  raft::ConfState cs{{1, 2, 3}, {}};
  uint64_t bytes_before = 0;
  {
    std::unique_ptr<server::RaftWal> wal;
    REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
    raft::HardState hs{3, 2, 100};
    REQUIRE(wal->Save(&hs, MakeEntries(1, 100, 3), nullptr).ok());
    REQUIRE(wal->CreateSnapshot(90, cs, "").ok());
    bytes_before = wal->FileBytes();
    REQUIRE(wal->Compact(80).ok());
    CHECK(wal->FileBytes() < bytes_before);
  }
  std::unique_ptr<server::RaftWal> wal;
  REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
  CHECK(wal->FirstIndex() == 81);
  CHECK(wal->LastIndex() == 100);
  uint64_t term = 0;
  REQUIRE(wal->Term(80, &term).ok());
  CHECK(term == 3);
  raft::Snapshot snap;
  REQUIRE(wal->Snapshot(&snap).ok());
  CHECK(snap.metadata.index == 90);
  CHECK(snap.metadata.conf_state == cs);
  raft::HardState hs;
  raft::ConfState got_cs;
  REQUIRE(wal->InitialState(&hs, &got_cs).ok());
  CHECK(hs == raft::HardState{3, 2, 100});
  CHECK(got_cs == cs);
  CHECK(ReadAll(*wal) == MakeEntries(81, 100, 3));
}

TEST_CASE("RaftWal replaces its log with a snapshot received from the leader", "[unit]") {
  // Goal: a follower's Save(snapshot) discards the old log durably.
  kvtest::TempDir dir("raftwal");
  {
    std::unique_ptr<server::RaftWal> wal;
    REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
    REQUIRE(wal->Save(nullptr, MakeEntries(1, 10, 1), nullptr).ok());
    raft::Snapshot snap;
    snap.metadata = raft::SnapshotMetadata{500, 4, raft::ConfState{{1, 2}, {}}};
    raft::HardState hs{4, 0, 500};
    REQUIRE(wal->Save(&hs, {}, &snap).ok());
    REQUIRE(wal->Save(nullptr, MakeEntries(501, 502, 4), nullptr).ok());
  }
  std::unique_ptr<server::RaftWal> wal;
  REQUIRE(server::RaftWal::Open(dir.path().string(), &wal).ok());
  CHECK(wal->FirstIndex() == 501);
  CHECK(ReadAll(*wal) == MakeEntries(501, 502, 4));
}
