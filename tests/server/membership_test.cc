// Unit tests of server::Membership: etcd's validation and strict reconfiguration rules, the
// replicated apply (including replays), hellos, and the members file.
#include "server/membership.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "tests/support/temp_dir.h"

namespace {

using server::Membership;
using server::PeerLink;

kvdpb::MemberRecord Record(uint64_t id, const std::string& name, const std::string& url,
                           bool learner = false) {
  kvdpb::MemberRecord r;
  r.set_id(id);
  r.set_name(name);
  r.add_peer_urls(url);
  r.set_is_learner(learner);
  return r;
}

// Three started voters 1, 2, 3 (as after bootstrap), cluster 77, applied index 3.
kvdpb::MembershipState ThreeState() {
  kvdpb::MembershipState st;
  st.set_cluster_id(77);
  st.set_applied_index(3);
  *st.add_members() = Record(1, "a", "http://h:1");
  *st.add_members() = Record(2, "b", "http://h:2");
  *st.add_members() = Record(3, "c", "http://h:3");
  return st;
}

kvdpb::MemberChangeContext Change(kvdpb::MemberOp op, uint64_t id, const std::string& url = "",
                                  bool learner = false) {
  kvdpb::MemberChangeContext c;
  c.set_op(op);
  c.set_request_id(99);
  c.mutable_member()->set_id(id);
  if (!url.empty()) c.mutable_member()->add_peer_urls(url);
  c.mutable_member()->set_is_learner(learner);
  return c;
}

raft::ConfChange Cc(raft::ConfChangeType type, const kvdpb::MemberChangeContext& ctx) {
  raft::ConfChange cc;
  cc.type = type;
  cc.node_id = ctx.member().id();
  cc.context = ctx.SerializeAsString();
  return cc;
}

std::map<uint64_t, PeerLink> AllUp() { return {{2, {true, true}}, {3, {true, true}}}; }

}  // namespace

TEST_CASE("membership validation follows etcd's ValidateConfigurationChange", "[unit]") {
  // Goal: each refusal of etcd's apply-time validation, with etcd's codes and messages.
  Membership m;
  m.Reset(ThreeState());
  CHECK(m.Validate(Change(kvdpb::MEMBER_ADD, 4, "http://h:4")).ok());
  CHECK(m.Validate(Change(kvdpb::MEMBER_ADD, 2, "http://h:4")) == server::errors::MemberExist());
  CHECK(m.Validate(Change(kvdpb::MEMBER_ADD, 4, "http://h:3")) == server::errors::PeerUrlExist());
  CHECK(m.Validate(Change(kvdpb::MEMBER_REMOVE, 9)) == server::errors::MemberNotFound());
  CHECK(m.Validate(Change(kvdpb::MEMBER_UPDATE, 9, "http://h:9")) ==
        server::errors::MemberNotFound());
  CHECK(m.Validate(Change(kvdpb::MEMBER_UPDATE, 2, "http://h:3")) ==
        server::errors::PeerUrlExist());
  CHECK(m.Validate(Change(kvdpb::MEMBER_UPDATE, 2, "http://h:2")).ok());  // its own URL
  CHECK(m.Validate(Change(kvdpb::MEMBER_PROMOTE, 2)) == server::errors::MemberNotLearner());
  CHECK(m.Validate(Change(kvdpb::MEMBER_PROMOTE, 9)) == server::errors::MemberNotFound());

  // One learner at most; a removed ID never comes back.
  auto add_learner = Change(kvdpb::MEMBER_ADD, 4, "http://h:4", true);
  REQUIRE(m.Apply(4, Cc(raft::ConfChangeType::kAddLearnerNode, add_learner)).applied);
  CHECK(m.Validate(Change(kvdpb::MEMBER_ADD, 5, "http://h:5", true)) ==
        server::errors::TooManyLearners());
  CHECK(m.Validate(Change(kvdpb::MEMBER_PROMOTE, 4)).ok());
  REQUIRE(
      m.Apply(5, Cc(raft::ConfChangeType::kRemoveNode, Change(kvdpb::MEMBER_REMOVE, 4))).applied);
  CHECK(m.IsRemoved(4));
  CHECK(m.Validate(Change(kvdpb::MEMBER_ADD, 4, "http://h:4")) == server::errors::MemberNotFound());
  CHECK(m.Validate(Change(kvdpb::MEMBER_ADD, 5, "http://h:5", true)).ok());
}

TEST_CASE("the strict reconfiguration check protects the quorum", "[unit]") {
  // Goal: etcd's mayAddMember / mayRemoveMember / mayPromoteMember decisions.
  Membership m;
  m.Reset(ThreeState());
  const auto add_voter = Change(kvdpb::MEMBER_ADD, 4, "http://h:4");
  CHECK(m.CheckStrict(add_voter, 1, AllUp()).ok());
  // A voter whose link is not up long enough (or down) makes adding a voter unhealthy.
  CHECK(m.CheckStrict(add_voter, 1, {{2, {true, false}}, {3, {true, true}}}) ==
        server::errors::Unhealthy());
  CHECK(m.CheckStrict(add_voter, 1, {{2, {true, true}}}) == server::errors::Unhealthy());
  // A learner skips the started-members rule but, as in etcd's mayAddMember, still needs every
  // voter connected.
  const auto add_learner = Change(kvdpb::MEMBER_ADD, 4, "http://h:4", true);
  CHECK(m.CheckStrict(add_learner, 1, AllUp()).ok());
  CHECK(m.CheckStrict(add_learner, 1, {}) == server::errors::Unhealthy());

  // Removing a live voter while another is down would leave 1 of 2 active: unhealthy.
  const std::map<uint64_t, PeerLink> three_down = {{2, {true, true}}, {3, {false, false}}};
  CHECK(m.CheckStrict(Change(kvdpb::MEMBER_REMOVE, 2), 1, three_down) ==
        server::errors::Unhealthy());
  // Removing the member that is down is fine.
  CHECK(m.CheckStrict(Change(kvdpb::MEMBER_REMOVE, 3), 1, three_down).ok());
  CHECK(m.CheckStrict(Change(kvdpb::MEMBER_REMOVE, 2), 1, AllUp()).ok());

  // Two unstarted voters (no name yet) out of four: not enough started members.
  kvdpb::MembershipState st = m.ToProto();
  *st.add_members() = Record(4, "", "http://h:4");
  *st.add_members() = Record(5, "", "http://h:5");
  st.mutable_members(2)->set_name("");  // member 3 never started either
  Membership unstarted;
  unstarted.Reset(st);
  const std::map<uint64_t, PeerLink> links = {
      {2, {true, true}}, {3, {true, true}}, {4, {true, true}}, {5, {true, true}}};
  CHECK(unstarted.CheckStrict(Change(kvdpb::MEMBER_ADD, 6, "http://h:6"), 1, links) ==
        server::errors::NotEnoughStartedMembers());
  CHECK(unstarted.CheckStrict(Change(kvdpb::MEMBER_ADD, 6, "http://h:6", true), 1, links).ok());
  CHECK(unstarted.CheckStrict(Change(kvdpb::MEMBER_REMOVE, 2), 1, links) ==
        server::errors::NotEnoughStartedMembers());
  CHECK(server::errors::NotEnoughStartedMembers().code() == kvstore::Code::kUnknown);

  // A one-member cluster may grow to two (etcd's restore case).
  kvdpb::MembershipState one;
  one.set_cluster_id(1);
  *one.add_members() = Record(1, "a", "http://h:1");
  Membership single;
  single.Reset(one);
  CHECK(single.CheckStrict(add_voter, 1, {}).ok());
}

TEST_CASE("applying conf changes is ordered, idempotent on replay and keeps hellos", "[unit]") {
  // Goal: the replicated state machine of membership, as every member applies it.
  Membership m;
  m.Reset(ThreeState());
  // A member greets before its add is applied here: its name shows once added.
  m.LearnHello(4, "d", {"http://c:4"});
  CHECK_FALSE(m.Contains(4));
  const auto add = Change(kvdpb::MEMBER_ADD, 4, "http://h:4", true);
  auto ch = m.Apply(10, Cc(raft::ConfChangeType::kAddLearnerNode, add));
  CHECK(ch.applied);
  CHECK(ch.request_id == 99);
  CHECK(ch.op == kvdpb::MEMBER_ADD);
  auto d = m.Find(4);
  REQUIRE(d.has_value());
  CHECK(d->name == "d");
  CHECK(d->is_learner);
  REQUIRE(d->client_urls.size() == 1);
  CHECK(m.applied_index() == 10);

  // A replay of an entry at or before the applied index changes nothing.
  CHECK_FALSE(
      m.Apply(10, Cc(raft::ConfChangeType::kRemoveNode, Change(kvdpb::MEMBER_REMOVE, 4))).applied);
  CHECK(m.Contains(4));

  CHECK(m.Apply(11, Cc(raft::ConfChangeType::kAddNode, Change(kvdpb::MEMBER_PROMOTE, 4))).applied);
  CHECK_FALSE(m.Find(4)->is_learner);
  CHECK(m.Apply(12,
                Cc(raft::ConfChangeType::kAddNode, Change(kvdpb::MEMBER_UPDATE, 4, "http://h:44")))
            .applied);
  CHECK(m.Find(4)->peer_urls == std::vector<std::string>{"http://h:44"});
  CHECK(m.PeerUrls(1).at(4) == "http://h:44");
  CHECK(m.Voters() == std::vector<uint64_t>{1, 2, 3, 4});

  // Bootstrap entries (no context) only make sure the ID exists.
  raft::ConfChange boot;
  boot.type = raft::ConfChangeType::kAddNode;
  boot.node_id = 2;
  CHECK(m.Apply(13, boot).applied);
  CHECK(m.Find(2)->name == "b");

  CHECK(
      m.Apply(14, Cc(raft::ConfChangeType::kRemoveNode, Change(kvdpb::MEMBER_REMOVE, 1))).applied);
  CHECK_FALSE(m.Contains(1));
  CHECK(m.IsRemoved(1));
  m.LearnHello(1, "ghost", {});
  CHECK_FALSE(m.Contains(1));
}

TEST_CASE("the members file round-trips and rejects garbage", "[unit]") {
  // Goal: what a restarted member reads back is what it saved, including its own ID.
  kvtest::TempDir dir("membership-test");
  Membership m;
  m.Reset(ThreeState());
  REQUIRE(
      m.Apply(5, Cc(raft::ConfChangeType::kRemoveNode, Change(kvdpb::MEMBER_REMOVE, 3))).applied);
  const std::string path = dir.Sub("membership");
  REQUIRE(m.Save(path, 2).ok());
  kvdpb::MembershipState st;
  uint64_t self = 0;
  REQUIRE(Membership::Load(path, &st, &self).ok());
  CHECK(self == 2);
  CHECK(st.cluster_id() == 77);
  CHECK(st.applied_index() == 5);
  CHECK(st.members_size() == 2);
  REQUIRE(st.removed_ids_size() == 1);
  CHECK(st.removed_ids(0) == 3);

  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    std::fputs("not a members file", f);
    std::fclose(f);
  }
  CHECK_FALSE(Membership::Load(path, &st, &self).ok());
  CHECK_FALSE(Membership::Load(dir.Sub("missing"), &st, &self).ok());
}
