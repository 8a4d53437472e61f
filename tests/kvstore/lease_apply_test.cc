// Unit tests of leases, the apply path (batches, idempotence, restart), checkpoints, the size
// quota and bad input (oversized requests, corrupt files).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/kvstore/test_util.h"

using kvstore::Code;
using kvstore::Status;
using kvtest::DelReq;
using kvtest::GrantReq;
using kvtest::PutReq;
using kvtest::RevokeReq;
using kvtest::TestStore;
namespace errors = kvstore::errors;
namespace fs = std::filesystem;

TEST_CASE("lease grant: TTL clamp, too large, duplicate ID, generated IDs agree", "[lease]") {
  // Goal: etcd's LeaseGrant rules and a deterministic ID for ID 0.
  TestStore s;
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(GrantReq(1, 0), &out).ok());
  CHECK(out.lease_grant().ttl() == 2);
  CHECK(out.lease_grant().id() == 1);
  REQUIRE(s.Do(GrantReq(2, 1), &out).ok());
  CHECK(out.lease_grant().ttl() == 2);
  REQUIRE(s.Do(GrantReq(3, 30), &out).ok());
  CHECK(out.lease_grant().ttl() == 30);
  CHECK(out.lease_grant().header().revision() == 1);  // no bump
  CHECK(s.Do(GrantReq(3, 30)) == errors::LeaseExists());
  CHECK(errors::LeaseExists().code() == Code::kFailedPrecondition);
  CHECK(s.Do(GrantReq(4, 9'000'000'001)) == errors::LeaseTtlTooLarge());
  REQUIRE(s.Do(GrantReq(5, 9'000'000'000)).ok());
  TestStore other;
  kvdpb::InternalResponse o1, o2;
  REQUIRE(s.Do(GrantReq(0, 10), &o1).ok());  // both at raft index 7
  for (int i = 0; i < 6; ++i) REQUIRE(other.Do(kvtest::CompactReq(5)).code() == Code::kOutOfRange);
  REQUIRE(other.Do(GrantReq(0, 10), &o2).ok());
  CHECK(o1.lease_grant().id() > 0);
  CHECK(o1.lease_grant().id() == o2.lease_grant().id());
}

TEST_CASE("lease revoke: attached keys deleted in one revision in key order", "[lease]") {
  // Goal: revoke = one revision with one DELETE event per key, sorted; unknown lease errors.
  TestStore s;
  REQUIRE(s.Do(GrantReq(9, 60)).ok());
  for (std::string k : {"c", "a", "b"}) REQUIRE(s.Do(PutReq(k, "v", 9)).ok());  // revs 2..4
  REQUIRE(s.Do(PutReq("b", "detached")).ok());                                  // rev 5
  REQUIRE(s.Do(PutReq("d", "free")).ok());                                      // rev 6
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(RevokeReq(9), &out).ok());
  CHECK(out.lease_revoke().header().revision() == 7);
  CHECK(s.Get("a", "z").count() == 2);  // b (detached) and d
  std::vector<mvccpb::Event> evs;
  int64_t next = 0;
  REQUIRE(s->ReadEvents({"a", "z"}, 7, 7, 100, false, &evs, &next).ok());
  REQUIRE(evs.size() == 2);
  CHECK(evs[0].kv().key() == "a");
  CHECK(evs[1].kv().key() == "c");
  CHECK(s.Do(RevokeReq(9)) == errors::LeaseNotFound());
  REQUIRE(s.Do(GrantReq(10, 60)).ok());
  REQUIRE(s.Do(RevokeReq(10), &out).ok());  // no keys: no new revision
  CHECK(out.lease_revoke().header().revision() == 7);
  CHECK(s->CurrentRevision() == 7);
}

TEST_CASE("lease timing: keep-alive, time-to-live, expiry and promote", "[lease]") {
  // Goal: deadlines come from now_ms arguments; TTL truncates; unknown leases per etcd.
  TestStore s;
  REQUIRE(s.Do(GrantReq(1, 30), nullptr, 1000).ok());
  REQUIRE(s.Do(GrantReq(2, 10), nullptr, 1000).ok());
  CHECK(s->ExpiredLeases(1'000'000, 10).empty());  // not primary: nothing expires
  s->Promote(1000, 0);
  etcdserverpb::LeaseTimeToLiveRequest q;
  q.set_id(1);
  etcdserverpb::LeaseTimeToLiveResponse r;
  REQUIRE(s->LeaseTimeToLive(q, 1500, &r).ok());
  CHECK(r.ttl() == 29);
  CHECK(r.grantedttl() == 30);
  q.set_id(77);
  r.Clear();
  REQUIRE(s->LeaseTimeToLive(q, 1500, &r).ok());
  CHECK(r.ttl() == -1);
  CHECK(r.grantedttl() == 0);
  CHECK(s->ExpiredLeases(10'999, 10).empty());
  CHECK(s->ExpiredLeases(11'000, 10) == std::vector<int64_t>{2});
  CHECK(s->ExpiredLeases(40'000, 10) == std::vector<int64_t>{2, 1});
  CHECK(s->ExpiredLeases(40'000, 1) == std::vector<int64_t>{2});
  int64_t ttl = 0;
  REQUIRE(s->LeaseRenew(2, 20'000, &ttl).ok());
  CHECK(ttl == 10);
  CHECK(s->ExpiredLeases(29'999, 10).empty());
  CHECK(s->LeaseRenew(77, 0, &ttl) == errors::LeaseNotFound());
  s->Promote(100'000, 5'000);
  CHECK(s->ExpiredLeases(114'999, 10).empty());
  CHECK(s->ExpiredLeases(115'000, 10) == std::vector<int64_t>{2});
  s->Demote();
  CHECK(s->ExpiredLeases(1'000'000, 10).empty());
  etcdserverpb::LeaseLeasesResponse l;
  s->LeaseLeases(&l);
  REQUIRE(l.leases_size() == 2);
  CHECK(l.leases(0).id() == 1);
}

TEST_CASE("leases survive restart with their keys and checkpointed TTLs", "[lease]") {
  // Goal: the lease table is persisted; LeaseCheckpoint's remaining TTL is used on Promote.
  TestStore s;
  REQUIRE(s.Do(GrantReq(5, 100)).ok());
  REQUIRE(s.Do(PutReq("x", "1", 5)).ok());
  REQUIRE(s.Do(PutReq("y", "1", 5)).ok());
  kvdpb::InternalRequest cp;
  auto* c = cp.mutable_lease_checkpoint()->add_checkpoints();
  c->set_id(5);
  c->set_remaining_ttl(40);
  REQUIRE(s.Do(cp).ok());
  s.Reopen();
  etcdserverpb::LeaseTimeToLiveRequest q;
  q.set_id(5);
  q.set_keys(true);
  etcdserverpb::LeaseTimeToLiveResponse r;
  REQUIRE(s->LeaseTimeToLive(q, 0, &r).ok());
  CHECK(r.grantedttl() == 100);
  REQUIRE(r.keys_size() == 2);
  CHECK(r.keys(0) == "x");
  s->Promote(0, 0);
  CHECK(s->ExpiredLeases(39'999, 10).empty());
  CHECK(s->ExpiredLeases(40'000, 10) == std::vector<int64_t>{5});
  REQUIRE(s.Do(RevokeReq(5)).ok());
  CHECK(s.Get("x", "z").count() == 0);
}

TEST_CASE("apply: one batch, per-entry results, re-applied indexes are no-ops, restart resumes",
          "[apply]") {
  // Goal: the apply contract: batch atomicity, idempotence by raft index, persisted index.
  TestStore s;
  kvdpb::InternalRequest reqs[] = {PutReq("a", "1"), PutReq("", "bad"), PutReq("b", "2"),
                                   DelReq("a")};
  std::vector<kvstore::ApplyEntry> entries;
  for (uint64_t i = 0; i < 4; ++i) entries.push_back({10 + i, &reqs[i]});
  std::vector<kvstore::ApplyResult> res;
  REQUIRE(s->Apply(entries, 0, &res).ok());
  REQUIRE(res.size() == 4);
  CHECK(res[0].status.ok());
  CHECK(res[0].response.put().header().revision() == 2);
  CHECK(res[1].status == errors::KeyNotProvided());
  CHECK(res[2].response.put().header().revision() == 3);
  CHECK(res[3].response.delete_range().deleted() == 1);  // sees the put of the same batch
  CHECK(s->AppliedIndex() == 13);
  REQUIRE(s->Apply(entries, 0, &res).ok());
  for (const auto& r : res) CHECK(r.skipped);
  CHECK(s->CurrentRevision() == 4);
  s.Reopen();
  CHECK(s->AppliedIndex() == 13);
  CHECK(s->CurrentRevision() == 4);
  REQUIRE(s->Apply(entries, 0, &res).ok());
  CHECK(res[3].skipped);
  CHECK(s->CurrentRevision() == 4);
  CHECK(s.Get("b").kvs(0).value() == "2");
}

TEST_CASE("checkpoint: round trip into another store, corrupt checkpoints rejected",
          "[checkpoint]") {
  // Goal: one checksummed stream holds the whole state incl. applied index and leases.
  TestStore a;
  REQUIRE(a.Do(GrantReq(3, 50)).ok());
  for (int i = 0; i < 50; ++i) {
    REQUIRE(a.Do(PutReq("k" + std::to_string(i % 13), std::string(static_cast<size_t>(i), 'x'),
                        i % 2 ? 3 : 0))
                .ok());
  }
  REQUIRE(a.Do(kvtest::CompactReq(20)).ok());
  const std::string ck = a.dir().Sub("ck");
  REQUIRE(a->WriteCheckpointFile(ck).ok());
  TestStore b;
  REQUIRE(b.Do(PutReq("junk", "gone")).ok());
  Status restored = b->RestoreCheckpointFile(ck);
  INFO(restored.ToString());
  REQUIRE(restored.ok());
  CHECK(b->AppliedIndex() == a->AppliedIndex());
  CHECK(b->CurrentRevision() == a->CurrentRevision());
  CHECK(b->CompactRevision() == 20);
  CHECK(b.Get("junk").count() == 0);
  uint32_t ha = 0, hb = 0;
  int64_t ca = 0, cb = 0, r = 0;
  REQUIRE(a->HashKV(0, &ha, &ca, &r).ok());
  REQUIRE(b->HashKV(0, &hb, &cb, &r).ok());
  CHECK(ha == hb);
  CHECK(b.Get("k", "l", 25).SerializeAsString() == a.Get("k", "l", 25).SerializeAsString());
  etcdserverpb::LeaseLeasesResponse l;
  b->LeaseLeases(&l);
  CHECK(l.leases_size() == 1);
  b.Reopen();
  CHECK(b->AppliedIndex() == a->AppliedIndex());
  // flip one byte in the middle: restore refuses and names the file; b is untouched
  std::string bytes;
  {
    std::ifstream f(ck, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  bytes[bytes.size() / 2] ^= 0x40;
  const std::string bad = a.dir().Sub("bad");
  {
    std::ofstream f(bad, std::ios::binary);
    f << bytes;
  }
  Status st = b->RestoreCheckpointFile(bad);
  CHECK(st.code() == Code::kDataLoss);
  CHECK(st.message().find(bad) != std::string::npos);
  CHECK(b->CurrentRevision() == a->CurrentRevision());
  bytes.resize(bytes.size() - 3);
  {
    std::ofstream f(bad, std::ios::binary | std::ios::trunc);
    f << bytes;
  }
  CHECK(b->RestoreCheckpointFile(bad).code() == Code::kDataLoss);
  // streaming chunks add up to the file
  size_t total = 0, chunks = 0;
  REQUIRE(a->WriteCheckpoint(
               [&](std::string_view c) {
                 total += c.size();
                 ++chunks;
                 return Status::Ok();
               },
               512)
              .ok());
  CHECK(total == fs::file_size(ck));
  CHECK(chunks > 1);
}

TEST_CASE("quota: over-quota writes refused whole, deletes/reads/compaction still work",
          "[quota]") {
  // Goal: NOSPACE before proposal (CheckRequest) and while the alarm is active (Apply).
  kvstore::StoreOptions o;
  o.quota_backend_bytes = 64 * 1024;
  TestStore s(o);
  REQUIRE(s.Do(PutReq("a", "1")).ok());
  REQUIRE(s.Do(PutReq("b", "1")).ok());
  auto big = PutReq("big", std::string(100 * 1024, 'x'));
  CHECK(s->CheckRequest(big) == errors::NoSpace());
  CHECK(errors::NoSpace().message() == "etcdserver: mvcc: database space exceeded");
  CHECK(s->CheckRequest(DelReq("a")).ok());
  kvdpb::InternalRequest alarm;
  alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm.mutable_alarm()->set_memberid(42);
  alarm.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  REQUIRE(s.Do(alarm).ok());
  const int64_t rev = s->CurrentRevision();
  CHECK(s.Do(PutReq("c", "1")) == errors::NoSpace());
  etcdserverpb::TxnRequest t;
  t.add_success()->mutable_request_delete_range()->set_key("a");
  auto* p = t.add_success()->mutable_request_put();
  p->set_key("c");
  CHECK(s.Do(kvtest::TxnReq(t)) == errors::NoSpace());
  CHECK(s.Get("a").count() == 1);  // the txn's delete was not half done
  CHECK(s.Do(GrantReq(1, 10)) == errors::NoSpace());
  CHECK(s->CurrentRevision() == rev);
  CHECK(s->CheckRequest(PutReq("c", "1")) == errors::NoSpace());
  REQUIRE(s.Do(DelReq("a")).ok());
  REQUIRE(s.Do(kvtest::CompactReq(2)).ok());
  CHECK(s.Get("b").count() == 1);
  s.Reopen();
  REQUIRE(s->Alarms().size() == 1);
  CHECK(s->Alarms()[0].memberid() == 42);
  alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(alarm, &out).ok());
  CHECK(out.alarm().alarms_size() == 1);
  REQUIRE(s.Do(PutReq("c", "1")).ok());
  CHECK(s->SizeBytes() > 0);
}

TEST_CASE("bad input: oversized requests", "[badinput]") {
  // Goal: requests above max_request_bytes fail with etcd's message at check and apply time.
  kvstore::StoreOptions o;
  o.max_request_bytes = 1000;
  TestStore s(o);
  auto big = PutReq("k", std::string(2000, 'v'));
  CHECK(s->CheckRequest(big) == errors::RequestTooLarge());
  CHECK(s.Do(big) == errors::RequestTooLarge());
  CHECK(s->CurrentRevision() == 1);
  kvdpb::InternalRequest empty;
  CHECK(s.Do(empty).code() == Code::kInvalidArgument);
}

namespace {
void FlipMiddle(const fs::path& p) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  auto size = static_cast<std::streamoff>(fs::file_size(p));
  for (std::streamoff off = size / 3; off < size / 3 + 64 && off < size; ++off) {
    f.seekg(off);
    char c = 0;
    f.get(c);
    f.seekp(off);
    f.put(static_cast<char>(c ^ 0x5a));
  }
}

std::vector<fs::path> FilesMatching(const std::string& dir, const std::string& part) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(part) != std::string::npos) out.push_back(e.path());
  }
  return out;
}
}  // namespace

TEST_CASE("quota: the cached size follows applied writes and space freed by defragment",
          "[quota]") {
  // Goal: CheckRequest reads a size refreshed per apply batch, not per request; writes must still
  // reach NOSPACE, and freed space must let writes in again.
  kvstore::StoreOptions o;
  o.quota_backend_bytes = 8 << 20;
  TestStore s(o);
  const int64_t at_open = s->SizeEstimateBytes();
  CHECK(at_open > 0);
  CHECK(at_open < o.quota_backend_bytes);
  // Incompressible values: RocksDB compresses SST files, and the drop below must come from the
  // compaction, not from compressing repeated bytes.
  std::mt19937_64 rng(7);
  const auto random_value = [&rng] {
    std::string v(4096, '\0');
    for (char& c : v) c = static_cast<char>(rng());
    return v;
  };
  bool refused = false;
  int written = 0;
  for (; written < 10'000; ++written) {
    auto req = PutReq("k" + std::to_string(written), random_value());
    if (s->CheckRequest(req) == errors::NoSpace()) {
      refused = true;
      CHECK(s->SizeEstimateBytes() + static_cast<int64_t>(req.ByteSizeLong()) >
            o.quota_backend_bytes);
      break;
    }
    REQUIRE(s.Do(req).ok());
  }
  REQUIRE(refused);  // without a refresh per apply the estimate would stay at its open value
  CHECK(written > 100);
  CHECK(s->SizeEstimateBytes() == s->SizeBytes());  // refreshed by the last apply
  // Delete everything, compact the history away (the physical steps), then defragment.
  REQUIRE(s.Do(DelReq("k", "l")).ok());
  REQUIRE(s.Do(kvtest::CompactReq(s->CurrentRevision())).ok());
  for (bool done = false; !done;) REQUIRE(s->CompactStep(1000, &done).ok());
  REQUIRE(s->Defragment().ok());
  INFO("after defragment: " << s->SizeEstimateBytes() << " bytes");
  CHECK(s->SizeEstimateBytes() < o.quota_backend_bytes / 2);
  CHECK(s->CheckRequest(PutReq("k0", random_value())).ok());
}

TEST_CASE("bad input: corrupt SST or MANIFEST gives a clear status naming the file", "[badinput]") {
  // Goal: damage in the data dir is reported at open with the file name, never a crash.
  const bool manifest = GENERATE(false, true);
  TestStore s;
  for (int i = 0; i < 200; ++i) {
    REQUIRE(s.Do(PutReq("key" + std::to_string(i), std::string(100, 'v'))).ok());
  }
  REQUIRE(s->Defragment().ok());  // flushes memtables into SST files
  s.Close();
  auto files = FilesMatching(s.db_path(), manifest ? "MANIFEST" : ".sst");
  REQUIRE_FALSE(files.empty());
  for (const auto& f : files) FlipMiddle(f);
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  Status st = kvstore::MvccStore::OpenDir(s.db_path(), {}, &engine, &store);
  INFO(st.ToString());
  CHECK_FALSE(st.ok());
  CHECK(st.code() == Code::kDataLoss);
  bool named = false;
  for (const auto& f : files)
    named |= st.message().find(f.filename().string()) != std::string::npos;
  CHECK(named);
}

TEST_CASE("engine: families added later survive reopen next to the MVCC ones", "[engine]") {
  // Goal: another kvstore class (the raft log store) can add its column family to the one DB.
  kvtest::TempDir dir;
  {
    std::unique_ptr<kvstore::Engine> engine;
    REQUIRE(kvstore::Engine::Open(dir.Sub("db"), {}, kvstore::MvccStore::ColumnFamilies(), &engine)
                .ok());
    CHECK_FALSE(engine->HasColumnFamily("raft_log"));
    REQUIRE(engine->AddColumnFamily("raft_log").ok());
    CHECK(engine->Cf("raft_log") != nullptr);
    CHECK(engine->db() != nullptr);
  }
  std::unique_ptr<kvstore::Engine> engine;
  std::unique_ptr<kvstore::MvccStore> store;
  REQUIRE(kvstore::MvccStore::OpenDir(dir.Sub("db"), {}, &engine, &store).ok());
  CHECK(engine->HasColumnFamily("raft_log"));
  CHECK(engine->HasColumnFamily("mvcc_kv"));
}

TEST_CASE("alarms: GET lists active alarms, filtered by type", "[quota]") {
  // Goal: AlarmRequest GET/ACTIVATE/DEACTIVATE answers like etcd's alarm store.
  TestStore s;
  auto alarm = [](etcdserverpb::AlarmRequest::AlarmAction a, uint64_t member,
                  etcdserverpb::AlarmType t) {
    kvdpb::InternalRequest r;
    r.mutable_alarm()->set_action(a);
    r.mutable_alarm()->set_memberid(member);
    r.mutable_alarm()->set_alarm(t);
    return r;
  };
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::ACTIVATE, 1, etcdserverpb::NOSPACE)).ok());
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::ACTIVATE, 2, etcdserverpb::CORRUPT)).ok());
  kvdpb::InternalResponse out;
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NONE), &out).ok());
  CHECK(out.alarm().alarms_size() == 2);
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::CORRUPT), &out).ok());
  REQUIRE(out.alarm().alarms_size() == 1);
  CHECK(out.alarm().alarms(0).memberid() == 2);
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::DEACTIVATE, 9, etcdserverpb::CORRUPT), &out).ok());
  CHECK(out.alarm().alarms_size() == 0);  // nothing to deactivate
  CHECK(s->Alarms().size() == 2);
}

TEST_CASE("corrupt alarm: writes, ranges, compaction and grants refused until disarmed",
          "[quota]") {
  // Goal: etcd's applierV3Corrupt: DataLoss "etcdserver: corrupt cluster" before proposal and at
  // apply for Range/Put/DeleteRange/Txn/Compaction/LeaseGrant; revokes and alarms still apply.
  TestStore s;
  REQUIRE(s.Do(PutReq("a", "1")).ok());
  REQUIRE(s.Do(GrantReq(7, 60)).ok());
  auto alarm = [](etcdserverpb::AlarmRequest::AlarmAction a, etcdserverpb::AlarmType t) {
    kvdpb::InternalRequest r;
    r.mutable_alarm()->set_action(a);
    r.mutable_alarm()->set_memberid(5);
    r.mutable_alarm()->set_alarm(t);
    return r;
  };
  CHECK_FALSE(s->CorruptAlarmActive());
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::ACTIVATE, etcdserverpb::NOSPACE)).ok());
  CHECK_FALSE(s->CorruptAlarmActive());
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::ACTIVATE, etcdserverpb::CORRUPT)).ok());
  CHECK(s->CorruptAlarmActive());
  CHECK(errors::Corrupt().code() == Code::kDataLoss);
  CHECK(errors::Corrupt().message() == "etcdserver: corrupt cluster");
  const int64_t rev = s->CurrentRevision();
  kvdpb::InternalRequest range;
  *range.mutable_range() = kvtest::RangeOf("a");
  etcdserverpb::TxnRequest t;
  t.add_success()->mutable_request_delete_range()->set_key("a");
  // CORRUPT wins over NOSPACE (etcd's corrupt applier is the outer one).
  for (const auto& req : {PutReq("b", "1"), DelReq("a"), kvtest::TxnReq(t), kvtest::CompactReq(1),
                          GrantReq(8, 60), range}) {
    INFO(req.ShortDebugString());
    CHECK(s->CheckRequest(req) == errors::Corrupt());
    CHECK(s.Do(req) == errors::Corrupt());
  }
  CHECK(s->CurrentRevision() == rev);
  CHECK(s.Get("a").count() == 1);
  REQUIRE(s.Do(RevokeReq(7)).ok());  // not refused: expiring leases must still go
  s.Reopen();                        // the alarm is persisted
  CHECK(s->CorruptAlarmActive());
  CHECK(s.Do(PutReq("b", "1")) == errors::Corrupt());
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::DEACTIVATE, etcdserverpb::CORRUPT)).ok());
  CHECK_FALSE(s->CorruptAlarmActive());
  CHECK(s.Do(PutReq("b", "1")) == errors::NoSpace());
  REQUIRE(s.Do(alarm(etcdserverpb::AlarmRequest::DEACTIVATE, etcdserverpb::NOSPACE)).ok());
  CHECK(s.Do(PutReq("b", "1")).ok());
}
