// server::Membership: the cluster's member list as one member knows it, and etcd's rules for
// changing it (etcdserver/api/membership/cluster.go ValidateConfigurationChange and the strict
// reconfiguration checks of etcdserver/server.go).
//
// What is replicated: every change is a raft conf change whose context is a
// kvdpb.MemberChangeContext (op, member ID, peer URLs, learner flag), applied in log order by
// every member (Apply). The state as of the last applied change, with that change's index, is
// written to <data-dir>/member/membership and is the data of every raft snapshot, so a restarted
// member, a member restored from a snapshot and a member that joins later all end up with the
// same list. What is not replicated: names and client URLs, which each member learns from the
// hello that opens every peer stream (LearnHello); a member without a name has not started
// (etcd's IsStarted).
//
// Thread-safety: every method may be called from any thread (one internal mutex). Changes
// (Apply, Reset) come from the raft thread only.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kvstore/status.h"
#include "proto/kvd_peer.pb.h"
#include "raft/types.h"
#include "server/status.h"

namespace server {

struct MemberInfo {
  uint64_t id = 0;
  std::string name;  // empty until the member started
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

// etcd's membership errors with the codes and messages etcd's gRPC layer returns.
namespace errors {
inline kvstore::Status MemberExist() {
  return {kvstore::Code::kFailedPrecondition, "etcdserver: member ID already exist"};
}
inline kvstore::Status PeerUrlExist() {
  return {kvstore::Code::kFailedPrecondition, "etcdserver: Peer URLs already exists"};
}
inline kvstore::Status MemberNotFound() {
  return {kvstore::Code::kNotFound, "etcdserver: member not found"};
}
inline kvstore::Status MemberBadUrls() {
  return {kvstore::Code::kInvalidArgument, "etcdserver: given member URLs are invalid"};
}
inline kvstore::Status MemberNotLearner() {
  return {kvstore::Code::kFailedPrecondition, "etcdserver: can only promote a learner member"};
}
inline kvstore::Status LearnerNotReady() {
  return {kvstore::Code::kFailedPrecondition,
          "etcdserver: can only promote a learner member which is in sync with leader"};
}
inline kvstore::Status TooManyLearners() {
  return {kvstore::Code::kFailedPrecondition, "etcdserver: too many learner members in cluster"};
}
// etcd 3.4 maps this one to Unknown (its error table names the client-side error value).
inline kvstore::Status NotEnoughStartedMembers() {
  return {kvstore::Code::kUnknown,
          "etcdserver: re-configuration failed due to not enough started members"};
}
inline kvstore::Status Unhealthy() {
  return {kvstore::Code::kUnavailable, "etcdserver: unhealthy cluster"};
}
}  // namespace errors

// What etcd's rafthttp tells a member that was removed (and what kvd logs before exiting).
inline constexpr const char* kMemberRemovedMessage =
    "the member has been permanently removed from the cluster";

// etcd 3.4 allows one learner at a time (membership.maxLearners).
inline constexpr size_t kLearnersMax = 1;
// etcd's isLearnerReady: a learner may be promoted once its match index reaches 90% of the
// leader's.
inline constexpr double kLearnerReadyFraction = 0.9;
// Upper bound on remembered hellos of members this member does not know yet (a member that
// started right after MemberAdd may greet before the add is applied here).
inline constexpr size_t kUnknownHellosMax = 64;

// What one peer link looks like from the member checking a reconfiguration (the leader).
struct PeerLink {
  bool active = false;              // the stream to it works now
  bool active_long_enough = false;  // ... and has for etcd's HealthInterval
};

// The effect of one applied conf change.
struct MembershipChange {
  bool applied = false;  // false: at or before applied_index() (already reflected)
  kvdpb::MemberOp op = kvdpb::MEMBER_ADD;
  uint64_t id = 0;
  uint64_t request_id = 0;
};

class Membership {
 public:
  // ---- queries ----
  uint64_t cluster_id() const;
  uint64_t applied_index() const;
  std::vector<MemberInfo> Members() const;  // ascending ID
  std::optional<MemberInfo> Find(uint64_t id) const;
  bool Contains(uint64_t id) const { return Find(id).has_value(); }
  bool IsRemoved(uint64_t id) const;
  // id -> first peer URL of every member but `self`.
  std::map<uint64_t, std::string> PeerUrls(uint64_t self) const;
  // IDs of the voting members.
  std::vector<uint64_t> Voters() const;

  // ---- changes ----
  // Replaces everything (bootstrap, join, snapshot restore, members file).
  void Reset(const kvdpb::MembershipState& state);
  kvdpb::MembershipState ToProto() const;
  // Applies the committed conf change at `index` (raft thread). Changes at or before
  // applied_index() are already reflected and only reported (applied = false). Blind: the
  // leader validated the change against the state it applies to (one pending change at a time),
  // so every committed change is valid where it lands.
  MembershipChange Apply(uint64_t index, const raft::ConfChange& cc);
  // A peer's hello: its name and client URLs (kept for an unknown ID, bounded, until it is
  // added).
  void LearnHello(uint64_t id, const std::string& name, const std::vector<std::string>& urls);

  // ---- etcd's rules ----
  // ValidateConfigurationChange: whether `change` may be applied to the current state.
  kvstore::Status Validate(const kvdpb::MemberChangeContext& change) const;
  // The strict reconfiguration check (--strict-reconfig-check, on by default in etcd) for
  // `change` proposed by `self`; `links` has one entry per other member (missing: never active).
  kvstore::Status CheckStrict(const kvdpb::MemberChangeContext& change, uint64_t self,
                              const std::map<uint64_t, PeerLink>& links) const;

  // ---- persistence ----
  // Writes {self_id, state} to `path` atomically (temporary file, fsync, rename).
  Status Save(const std::string& path, uint64_t self_id) const;
  // Reads a file written by Save into *state and *self_id. Errors: missing or corrupt file.
  static Status Load(const std::string& path, kvdpb::MembershipState* state, uint64_t* self_id);

 private:
  static MemberInfo FromRecord(const kvdpb::MemberRecord& r);
  static void ToRecord(const MemberInfo& m, kvdpb::MemberRecord* r);

  mutable std::mutex mu_;
  uint64_t cluster_id_ = 0;
  uint64_t applied_index_ = 0;
  std::map<uint64_t, MemberInfo> members_;
  std::set<uint64_t> removed_;
  // Hellos from members not (yet) in members_, by ID; at most kUnknownHellosMax.
  std::map<uint64_t, std::pair<std::string, std::vector<std::string>>> unknown_hellos_;
};

// "host:port" for a gRPC target from a peer URL ("http://127.0.0.1:2380").
std::string PeerTargetOf(const std::string& url_text);

// Fills an etcd Member proto list / a MemberRecord list.
void ToRecords(const std::vector<MemberInfo>& members,
               google::protobuf::RepeatedPtrField<kvdpb::MemberRecord>* out);

}  // namespace server
