// Wire round trip of the Cluster, Maintenance and Auth services through our generated stubs
// against a real etcd 3.4.23 (or $KV_COMPAT_SERVER), on one member and on three.
#include <catch2/catch.hpp>
#include <csignal>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/proto/etcd_client.h"
#include "tests/proto/sha256.h"

namespace {

using namespace kvcompat;  // NOLINT(google-build-using-namespace): test file
using grpc::StatusCode;

// More chunks than a test database can produce (32 KiB each): a bound on the read loop.
constexpr std::size_t kSnapshotChunksMax = 10000;

void CheckMembers(const Server& s, kvtest::EtcdLikeCluster& cluster,
                  const pb::MemberListResponse& list) {
  REQUIRE(static_cast<std::size_t>(list.members_size()) == cluster.size());
  std::set<std::uint64_t> seen;
  for (const auto& m : list.members()) {
    INFO("member {" << m.ShortDebugString() << "}");
    std::size_t index = cluster.size();
    for (std::size_t i = 0; i < cluster.size(); ++i) {
      if (s.member_id(i) == m.id()) index = i;
    }
    REQUIRE(index < cluster.size());
    seen.insert(m.id());
    CHECK(m.name() == cluster.name(index));
    REQUIRE(m.peerurls_size() == 1);
    CHECK(m.peerurls(0) == cluster.peer_url(index));
    REQUIRE(m.clienturls_size() == 1);
    CHECK(m.clienturls(0) == cluster.client_url(index));
    CHECK_FALSE(m.islearner());
  }
  CHECK(seen.size() == cluster.size());
}

pb::StatusResponse Status(Server& s, std::size_t member) {
  return Call(*s.on(member).maintenance, &pb::Maintenance::Stub::Status, {});
}

}  // namespace

TEST_CASE("Cluster, Maintenance and Auth round trip on one member", "[compat][maintenance]") {
  // Goal: MemberList, Status, Alarm, Defragment, Hash, Snapshot and Authenticate decode with
  // etcd's field numbers, and the snapshot stream has the sha256 trailer etcdctl checks.
  Server s;
  auto& cluster = s.cluster();
  const auto list = Call(*s.on().cluster, &pb::Cluster::Stub::MemberList, {});
  CHECK(list.header().cluster_id() == s.cluster_id());
  CHECK(list.header().member_id() == s.member_id());
  CHECK(list.header().raft_term() >= 1);
  CheckMembers(s, cluster, list);

  const auto before = Status(s, 0);
  s.CheckHeader(before.header(), 1);
  INFO("StatusResponse {" << before.ShortDebugString() << "}");
  CHECK(std::regex_match(before.version(), std::regex(R"(3\.[0-9]+\.[0-9]+)")));
  if (cluster.options().binary == "/usr/bin/etcd") CHECK(before.version() == "3.4.23");
  CHECK(before.dbsize() > 0);
  CHECK(before.dbsizeinuse() > 0);
  CHECK(before.dbsizeinuse() <= before.dbsize());
  CHECK(before.leader() == s.member_id());
  CHECK(before.raftterm() == before.header().raft_term());
  CHECK(before.raftindex() >= 1);
  CHECK(before.raftappliedindex() >= 1);
  CHECK(before.raftappliedindex() <= before.raftindex());
  CHECK(before.errors_size() == 0);
  CHECK_FALSE(before.islearner());
  Put(s, "s/1", std::string(1000, 'x'));  // rev 2
  Put(s, "s/2", "y");                     // rev 3
  const auto after = Status(s, 0);
  s.CheckHeader(after.header(), 3);
  CHECK(after.raftindex() >= before.raftindex() + 2);  // one raft entry per put at least
  CHECK(after.raftappliedindex() >= before.raftappliedindex() + 2);
  CHECK(after.raftterm() == before.raftterm());

  pb::AlarmRequest alarm;
  alarm.set_action(pb::AlarmRequest::GET);
  alarm.set_memberid(0);
  alarm.set_alarm(pb::NONE);
  const auto alarms = Call(*s.on().maintenance, &pb::Maintenance::Stub::Alarm, alarm);
  CHECK(alarms.alarms_size() == 0);
  // Observed: etcd 3.4 sends AlarmResponse and DefragmentResponse without a header. Ours may
  // fill it; if present it must be right.
  if (alarms.has_header()) s.CheckHeader(alarms.header(), 3);
  const auto defrag = Call(*s.on().maintenance, &pb::Maintenance::Stub::Defragment, {});
  if (defrag.has_header()) s.CheckHeader(defrag.header(), 3);

  const auto hash = Call(*s.on().maintenance, &pb::Maintenance::Stub::Hash, {});
  s.CheckHeader(hash.header(), 3);
  CHECK(hash.hash() != 0);

  // Snapshot: chunks of at most 32 KiB whose remaining_bytes is what is left after the chunk,
  // then one 32-byte sha256 trailer (also remaining_bytes 0). Enough data for several chunks:
  for (int i = 0; i < 3; ++i) Put(s, "big/" + std::to_string(i), std::string(40000, 'x'));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(kvtest::DeadlineIn(kStreamTimeout));
    auto reader = s.on().maintenance->Snapshot(&ctx, {});
    std::vector<pb::SnapshotResponse> chunks;
    pb::SnapshotResponse chunk;
    while (chunks.size() < kSnapshotChunksMax && reader->Read(&chunk)) {
      CHECK(UnknownFieldPaths(chunk).empty());
      // Observed: etcd 3.4 leaves the header of every snapshot chunk empty.
      if (chunk.header().cluster_id() != 0) CHECK(chunk.header().cluster_id() == s.cluster_id());
      chunks.push_back(chunk);
    }
    const grpc::Status status = reader->Finish();
    INFO("snapshot stream ended with " << status.error_code() << ": " << status.error_message());
    REQUIRE(status.ok());
    REQUIRE(chunks.size() >= 3);  // > 120 KB of values: several body chunks and the trailer
    const std::string trailer = chunks.back().blob();
    CHECK(chunks.back().remaining_bytes() == 0);
    REQUIRE(trailer.size() == 32);
    chunks.pop_back();
    std::string body;
    for (const auto& c : chunks) body += c.blob();
    std::uint64_t sent = 0;
    for (const auto& c : chunks) {
      INFO("chunk of " << c.blob().size() << " bytes, remaining_bytes " << c.remaining_bytes());
      CHECK(c.blob().size() > 0);
      CHECK(c.blob().size() <= 32 * 1024);
      sent += c.blob().size();
      CHECK(sent + c.remaining_bytes() == body.size());
    }
    CHECK((body.size() + trailer.size()) % 512 == 32);  // what etcdctl snapshot save checks
    CHECK(body.find(std::string(1000, 'x')) != std::string::npos);  // our data is in there
    const auto digest = Sha256(body);
    CHECK(std::string(digest.begin(), digest.end()) == trailer);
  }

  pb::AuthenticateRequest auth;
  auth.set_name("root");
  auth.set_password("secret");
  CallFails(*s.on().auth, &pb::Auth::Stub::Authenticate, auth, StatusCode::FAILED_PRECONDITION,
            "etcdserver: authentication is not enabled");
}

TEST_CASE("Three members: member list, leader, replication, kill and restart",
          "[compat][cluster]") {
  // Goal: on a 3-member cluster every member reports the same cluster and leader, headers
  // name the answering member, and a killed follower rejoins with the data written without it.
  Server s(3);
  auto& cluster = s.cluster();
  std::uint64_t leader = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto list = Call(*s.on(i).cluster, &pb::Cluster::Stub::MemberList, {});
    CHECK(list.header().member_id() == s.member_id(i));
    CHECK(list.header().cluster_id() == s.cluster_id());
    CheckMembers(s, cluster, list);
    const auto status = Status(s, i);
    s.CheckHeader(status.header(), 1, i);
    if (i == 0) leader = status.leader();
    CHECK(status.leader() == leader);
    CHECK(status.raftterm() == status.header().raft_term());
  }
  std::size_t leader_index = 3;
  for (std::size_t i = 0; i < 3; ++i) {
    if (s.member_id(i) == leader) leader_index = i;
  }
  REQUIRE(leader_index < 3);
  const std::size_t follower = (leader_index + 1) % 3;
  const std::size_t other = (leader_index + 2) % 3;

  auto put = Call(*s.on(follower).kv, &pb::KV::Stub::Put, PutReq("k", "v1"));
  s.CheckHeader(put.header(), 2, follower);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto got = Call(*s.on(i).kv, &pb::KV::Stub::Range, RangeReq("k"));  // linearizable
    s.CheckHeader(got.header(), 2, i);
    REQUIRE(got.kvs_size() == 1);
    CheckKv(got.kvs(0), "k", "v1", 2, 2, 1);
  }

  cluster.Kill(follower, SIGKILL);
  put = Call(*s.on(other).kv, &pb::KV::Stub::Put, PutReq("k", "v2"));
  s.CheckHeader(put.header(), 3, other);
  cluster.Restart(follower);
  s.Reconnect(follower);
  const auto got = Call(*s.on(follower).kv, &pb::KV::Stub::Range, RangeReq("k"));
  s.CheckHeader(got.header(), 3, follower);
  REQUIRE(got.kvs_size() == 1);
  CheckKv(got.kvs(0), "k", "v2", 2, 3, 2);
  const auto status = Status(s, follower);
  CHECK(status.leader() != 0);
  CHECK(status.errors_size() == 0);
}
