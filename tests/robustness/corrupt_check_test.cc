// The cross-member corruption check (server/corrupt_check.h) on real 3-member kvd clusters: a
// healthy cluster under writes and compactions runs checks and raises nothing; a member whose
// MVCC data was rewritten offline gets the CORRUPT alarm on every member, writes are refused
// with etcd's "etcdserver: corrupt cluster", and etcdctl's `alarm disarm` restores them. Every
// RPC has a deadline and every wait polls with a bound; the cluster object kills its members
// and removes their data even when an assertion fails.
#include <grpcpp/grpcpp.h>
#include <rocksdb/db.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kvstore/codec.h"
#include "kvstore/mvcc_store.h"
#include "proto/rpc.grpc.pb.h"
#include "tests/server/kvd_test_util.h"
#include "tests/support/cluster.h"
#include "tests/support/etcd_grpc.h"

namespace {

namespace pb = etcdserverpb;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kRpcTimeout{10000};
const std::string kCorrupt = "etcdserver: corrupt cluster";
// The line CorruptChecker writes after every check it completed as leader.
const std::string kCheckLine = "corruption check at revision ";

struct Member {
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
};

std::vector<Member> Connect(kvtest::EtcdLikeCluster& c) {
  std::vector<Member> out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    auto ch = kvtest::MakeChannel(c.endpoint(i));
    out.push_back(Member{pb::KV::NewStub(ch), pb::Maintenance::NewStub(ch)});
  }
  return out;
}

grpc::Status Put(Member& m, const std::string& key, const std::string& value,
                 pb::PutResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  return m.kv->Put(&ctx, req, resp);
}

grpc::Status Compact(Member& m, std::int64_t revision) {
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
  pb::CompactionRequest req;
  req.set_revision(revision);
  pb::CompactionResponse resp;
  return m.kv->Compact(&ctx, req, &resp);
}

grpc::Status Status(Member& m, pb::StatusResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
  return m.maintenance->Status(&ctx, pb::StatusRequest(), resp);
}

std::vector<pb::AlarmMember> Alarms(Member& m) {
  grpc::ClientContext ctx;
  ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
  pb::AlarmRequest req;
  req.set_action(pb::AlarmRequest::GET);
  pb::AlarmResponse resp;
  const grpc::Status s = m.maintenance->Alarm(&ctx, req, &resp);
  INFO("Alarm GET: " << s.error_message());
  REQUIRE(s.ok());
  return {resp.alarms().begin(), resp.alarms().end()};
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Lines of every member's log containing `needle`.
std::vector<std::string> LogLines(const kvtest::EtcdLikeCluster& c, const std::string& needle) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    std::istringstream in(ReadFile(c.log_path(i)));
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(needle) != std::string::npos) out.push_back(line);
    }
  }
  return out;
}

// Runs etcdctl 3.4.23 against member i; its own timeouts bound the call.
std::string Etcdctl(const kvtest::EtcdLikeCluster& c, std::size_t i, const std::string& args) {
  const std::string cmd =
      "env ETCDCTL_API=3 /usr/bin/etcdctl --dial-timeout=3s --command-timeout=10s --endpoints=" +
      c.endpoint(i) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// etcd's member ID text (types.ID.String()): lowercase hex without leading zeros.
std::string HexId(std::uint64_t id) {
  std::ostringstream ss;
  ss << std::hex << id;
  return ss.str();
}

std::uint64_t MemberId(Member& m) {
  pb::StatusResponse st;
  REQUIRE(Status(m, &st).ok());
  return st.header().member_id();
}

TEST_CASE("a healthy cluster under writes and compactions: checks run, no alarm",
          "[robustness][storage][corrupt]") {
  // Goal: the leader's periodic and post-compaction checks compare every peer and find nothing
  // to complain about (no false CORRUPT alarm while compactions race with the checks).
  kvtest::ClusterOptions o = kvdtest::KvdOptions(3);
  o.extra_args = {"--experimental-corrupt-check-time=500ms"};
  auto cluster = kvtest::StartEtcdLikeCluster(o);
  auto members = Connect(*cluster);

  // Keep writing and compacting until several checks compared both peers (bounded).
  const std::string clean_line = ": 2 peer(s) compared, 0 mismatched";
  constexpr std::size_t kChecksWanted = 5;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  int round = 0;
  while (LogLines(*cluster, clean_line).size() < kChecksWanted && Clock::now() < deadline) {
    pb::PutResponse resp;
    for (int i = 0; i < 20; ++i) {
      const std::string key = "k/" + std::to_string(i % 7);
      const auto s = Put(members[static_cast<std::size_t>(i) % 3], key,
                         "r" + std::to_string(round) + "-" + std::to_string(i), &resp);
      INFO(s.error_message());
      REQUIRE(s.ok());
    }
    // Compact all but the last few revisions (some keys keep several versions).
    const auto s =
        Compact(members[static_cast<std::size_t>(round) % 3], resp.header().revision() - 3);
    INFO(s.error_message());
    REQUIRE(s.ok());
    ++round;
    std::this_thread::sleep_for(milliseconds(100));  // pacing only; the loop polls the logs
  }
  const auto checks = LogLines(*cluster, kCheckLine);
  INFO(cluster->LogTails());
  CHECK(LogLines(*cluster, clean_line).size() >= kChecksWanted);
  for (const auto& line : checks) {
    INFO(line);
    CHECK(line.find(", 0 mismatched") != std::string::npos);
  }
  CHECK(LogLines(*cluster, "error: corruption check").empty());
  for (auto& m : members) CHECK(Alarms(m).empty());
  pb::PutResponse resp;
  CHECK(Put(members[1], "after", "ok", &resp).ok());
}

TEST_CASE("a member with tampered MVCC data: CORRUPT for it everywhere, disarm restores writes",
          "[robustness][storage][corrupt]") {
  // Goal: the check after a compaction finds the member whose stored value was rewritten
  // offline, raises CORRUPT with its ID on every member, every member refuses writes with
  // etcd's DataLoss error, and etcdctl alarm disarm makes writes work again.
  kvtest::ClusterOptions o = kvdtest::KvdOptions(3);
  // No periodic check during the test: only compactions trigger one (and nothing re-raises
  // the alarm right after the disarm below while the tampering is still there).
  o.extra_args = {"--experimental-corrupt-check-time=1h"};
  auto cluster = kvtest::StartEtcdLikeCluster(o);
  auto members = Connect(*cluster);
  std::vector<std::uint64_t> ids;
  for (auto& m : members) ids.push_back(MemberId(m));

  pb::PutResponse resp;
  REQUIRE(Put(members[0], "victim", "original", &resp).ok());
  const std::int64_t victim_rev = resp.header().revision();
  for (int i = 0; i < 10; ++i)
    REQUIRE(
        Put(members[static_cast<std::size_t>(i) % 3], "k/" + std::to_string(i), "v", &resp).ok());
  {
    // Member 2 has applied everything acknowledged so far (a linearizable read on it).
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
    pb::RangeRequest req;
    req.set_key("k/9");
    pb::RangeResponse rr;
    REQUIRE(members[2].kv->Range(&ctx, req, &rr).ok());
    REQUIRE(rr.kvs_size() == 1);
  }
  const auto exit = cluster->Stop(2, milliseconds(30000));
  INFO("member 2 stopped: " << exit.ToString());

  // Offline: rewrite the value stored for "victim" at its revision, without raft.
  {
    std::unique_ptr<kvstore::Engine> engine;
    std::unique_ptr<kvstore::MvccStore> store;
    const std::string dir = (cluster->data_dir(2) / "member" / "kv").string();
    const kvstore::Status os = kvstore::MvccStore::OpenDir(dir, {}, &engine, &store);
    INFO(os.ToString());
    REQUIRE(os.ok());
    uint32_t before = 0, after = 0;
    int64_t compact = 0, hashed = 0;
    REQUIRE(store->HashKV(0, &before, &compact, &hashed).ok());
    const std::string kvkey = kvstore::codec::KvKey("victim", victim_rev, 0);
    std::string raw;
    REQUIRE(engine->db()->Get(rocksdb::ReadOptions(), engine->Cf("mvcc_kv"), kvkey, &raw).ok());
    kvstore::codec::Record rec;
    REQUIRE(kvstore::codec::DecodeRecord(raw, &rec));
    REQUIRE(rec.value == "original");
    rec.value = "tampered";
    REQUIRE(engine->db()
                ->Put(rocksdb::WriteOptions(), engine->Cf("mvcc_kv"), kvkey,
                      kvstore::codec::EncodeRecord(rec))
                .ok());
    REQUIRE(store->HashKV(0, &after, &compact, &hashed).ok());
    REQUIRE(before != after);  // the tampering is visible to HashKV
    store.reset();
    engine.reset();
  }
  cluster->Restart(2);

  // The checker runs on the leader and blames whoever differs from it: keep member 2 a
  // follower (it rarely wins an election right after its restart, but it may).
  const auto leader_of = [&](std::size_t i) {
    pb::StatusResponse st;
    return Status(members[i], &st).ok() ? st.leader() : 0;
  };
  for (int attempt = 0; attempt < 100 && leader_of(0) == ids[2]; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
    pb::MoveLeaderRequest req;
    req.set_targetid(ids[0]);
    pb::MoveLeaderResponse mr;
    (void)members[2].maintenance->MoveLeader(&ctx, req, &mr);
    std::this_thread::sleep_for(milliseconds(100));
  }
  REQUIRE(leader_of(0) != ids[2]);

  // Compact (which triggers a check); repeat a few times if a leader change swallowed one.
  bool raised = false;
  for (int attempt = 0; attempt < 5 && !raised; ++attempt) {
    REQUIRE(Put(members[0], "more", std::to_string(attempt), &resp).ok());
    const auto cs =
        Compact(members[static_cast<std::size_t>(attempt) % 2], resp.header().revision());
    INFO(cs.error_message());
    REQUIRE(cs.ok());
    const auto until = Clock::now() + std::chrono::seconds(20);
    while (!raised && Clock::now() < until) {
      for (const auto& a : Alarms(members[0])) {
        raised = raised || (a.alarm() == pb::CORRUPT && a.memberid() == ids[2]);
      }
      if (!raised) std::this_thread::sleep_for(milliseconds(100));
    }
  }
  INFO(cluster->LogTails(4096));
  REQUIRE(raised);
  // One log line names the member, the revision and both hashes.
  const auto blame = LogLines(*cluster, "error: corruption check: member " + HexId(ids[2]));
  CHECK(!blame.empty());

  for (std::size_t i = 0; i < members.size(); ++i) {
    INFO("member " << i);
    bool listed = false;
    for (int attempt = 0; attempt < 100 && !listed; ++attempt) {  // replication is async
      const auto alarms = Alarms(members[i]);
      for (const auto& a : alarms)
        listed = listed || (a.alarm() == pb::CORRUPT && a.memberid() == ids[2]);
      if (listed) {
        // Only member 2 is blamed.
        CHECK(alarms.size() == 1);
      } else {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
    CHECK(listed);
    const grpc::Status s = Put(members[i], "refused", "x", &resp);
    CHECK(s.error_code() == grpc::StatusCode::DATA_LOSS);
    CHECK(s.error_message() == kCorrupt);
    pb::StatusResponse st;
    REQUIRE(Status(members[i], &st).ok());
    bool in_errors = false;
    for (const auto& e : st.errors()) {
      in_errors = in_errors || e == "memberID:" + std::to_string(ids[2]) + " alarm:CORRUPT ";
    }
    CHECK(in_errors);
  }
  {
    // Compaction is refused (etcd's applierV3Corrupt); client reads are still served, as etcd
    // 3.4 answers them outside the corrupt applier.
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(kRpcTimeout));
    pb::RangeRequest req;
    req.set_key("victim");
    pb::RangeResponse rr;
    const grpc::Status s = members[1].kv->Range(&ctx, req, &rr);
    CHECK(s.ok());
    CHECK(rr.count() == 1);
    CHECK(Compact(members[0], 2).error_message() == kCorrupt);
  }

  // etcdctl prints etcd's format, and its disarm clears the alarm on every member.
  const std::string listed = Etcdctl(*cluster, 1, "alarm list");
  CHECK(listed.find("memberID:" + std::to_string(ids[2]) + " alarm:CORRUPT") != std::string::npos);
  const std::string disarmed = Etcdctl(*cluster, 0, "alarm disarm");
  INFO("etcdctl alarm disarm: " << disarmed);
  CHECK(disarmed.find("alarm:CORRUPT") != std::string::npos);
  for (std::size_t i = 0; i < members.size(); ++i) {
    INFO("member " << i);
    bool clear = false;
    for (int attempt = 0; attempt < 100 && !clear; ++attempt) {
      clear = Alarms(members[i]).empty();
      if (!clear) std::this_thread::sleep_for(milliseconds(50));
    }
    CHECK(clear);
    const grpc::Status s = Put(members[i], "after/" + std::to_string(i), "ok", &resp);
    INFO(s.error_message());
    CHECK(s.ok());
  }
}

}  // namespace
