// Node's membership side (see server/membership.h for the model): joining a running cluster,
// Cluster RPCs at the leader (checks, conf change proposal, waiters), applying committed
// membership changes (members file, transport peers, self-removal), snapshot restore.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <thread>

#include "server/log.h"
#include "server/node.h"
#include "server/transport.h"

namespace server {
namespace {

using Clock = std::chrono::steady_clock;

kvdpb::MemberChangeResponse ErrorResponse(const kvstore::Status& s) {
  kvdpb::MemberChangeResponse r;
  r.set_code(static_cast<int32_t>(s.code()));
  r.set_message(s.message());
  return r;
}

const char* OpName(kvdpb::MemberOp op) {
  switch (op) {
    case kvdpb::MEMBER_ADD:
      return "added";
    case kvdpb::MEMBER_REMOVE:
      return "removed";
    case kvdpb::MEMBER_UPDATE:
      return "updated";
    case kvdpb::MEMBER_PROMOTE:
      return "promoted";
    default:
      return "changed";
  }
}

std::string DescribeState(const kvdpb::MembershipState& st) {
  std::string out = "{ClusterID:" + FormatId(st.cluster_id()) + " Members:[";
  for (int i = 0; i < st.members_size(); ++i) {
    const auto& m = st.members(i);
    out += (i > 0 ? " " : "") + std::string("&{ID:") + FormatId(m.id()) + " Name:" + m.name() +
           " PeerURLs:[";
    for (int j = 0; j < m.peer_urls_size(); ++j) out += (j > 0 ? " " : "") + m.peer_urls(j);
    out += "] IsLearner:" + std::string(m.is_learner() ? "true" : "false") + "}";
  }
  return out + "]}";
}

// etcd's ValidateClusterAndAssignIDs: the remote members must be exactly --initial-cluster
// (matched by peer URLs). Returns this member's ID through *self_id.
Status MatchInitialCluster(const Config& config, const kvdpb::MembershipState& remote,
                           uint64_t* self_id) {
  const std::string prefix = "kvd: error validating peerURLs " + DescribeState(remote) + ": ";
  if (static_cast<size_t>(remote.members_size()) != config.initial_cluster.size()) {
    return Status(1, prefix +
                         "member count is unequal (a member must be added to the cluster first, "
                         "e.g. with 'etcdctl member add', before it starts with "
                         "--initial-cluster-state=existing)");
  }
  *self_id = 0;
  for (const auto& m : remote.members()) {
    std::vector<std::string> urls(m.peer_urls().begin(), m.peer_urls().end());
    std::sort(urls.begin(), urls.end());
    const InitialMember* match = nullptr;
    for (const InitialMember& im : config.initial_cluster) {
      if (im.peer_urls == urls) match = &im;
    }
    if (match == nullptr) {
      std::string u;
      for (const auto& x : urls) u += (u.empty() ? "" : " ") + x;
      return Status(1, prefix + "PeerURLs: no match found for existing member (" +
                           FormatId(m.id()) + ", [" + u + "])");
    }
    if (match->name == config.name) *self_id = m.id();
  }
  if (*self_id == 0) return Status(1, prefix + "this member is not in the cluster");
  return Status::Ok();
}

}  // namespace

std::map<uint64_t, std::string> Node::PeerTargets() const {
  std::map<uint64_t, std::string> out;
  for (const auto& [id, url] : membership_.PeerUrls(config_.member_id)) {
    out[id] = PeerTargetOf(url);
  }
  return out;
}

void Node::SaveMembership() {
  Status s = membership_.Save(membership_path_, config_.member_id);
  // Without it a restart would not know the members; continuing could break promises made.
  SERVER_CHECK(s.ok(), "cannot persist the membership: %s", s.message().c_str());
}

// ---- joining (--initial-cluster-state=existing, empty data dir) -------------------------------

Status Node::JoinExisting() {
  std::vector<std::string> urls;
  for (const InitialMember& im : config_.initial_cluster) {
    if (im.name == config_.name) continue;
    urls.insert(urls.end(), im.peer_urls.begin(), im.peer_urls.end());
  }
  if (urls.empty()) {
    return Status(1,
                  "kvd: --initial-cluster-state=existing needs the running members' peer URLs "
                  "in --initial-cluster");
  }
  // Bounded: a few rounds over every URL, each call bounded by its own deadline.
  constexpr int kRoundsMax = 10;
  constexpr auto kCallTimeout = std::chrono::milliseconds(2000);
  Status mismatch;
  for (int round = 0; round < kRoundsMax; ++round) {
    bool answered = false;
    for (const std::string& url : urls) {
      auto stub = kvdpb::Peer::NewStub(
          grpc::CreateChannel(PeerTargetOf(url), grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
      kvdpb::MembersResponse resp;
      grpc::Status st = stub->Members(&ctx, kvdpb::MembersRequest(), &resp);
      if (!st.ok()) continue;
      answered = true;
      uint64_t self_id = 0;
      Status s = MatchInitialCluster(config_, resp.state(), &self_id);
      if (!s.ok()) {
        mismatch = s;  // another member may already know more (the add not applied here yet)
        continue;
      }
      config_.member_id = self_id;
      membership_.Reset(resp.state());
      SaveMembership();
      KVD_LOG("joining cluster %s as member %s (membership from %s, as of raft index %llu)",
              FormatId(resp.state().cluster_id()).c_str(), FormatId(self_id).c_str(), url.c_str(),
              static_cast<unsigned long long>(resp.state().applied_index()));
      return Status::Ok();
    }
    if (answered) return mismatch;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Status(1,
                "kvd: cannot fetch cluster info from peer urls: could not retrieve cluster "
                "information from the given URLs");
}

// ---- Cluster RPCs -------------------------------------------------------------------------------

void Node::ChangeMembership(kvdpb::MemberChangeRequest req, MemberChangeDone done) {
  if (is_leader()) {
    ChangeMembershipAsLeader(std::move(req), std::move(done));
    return;
  }
  const uint64_t lead = leader();
  if (lead == raft::kNone) {
    done(ErrorResponse(errors::NoLeader()));
    return;
  }
  // This member is not told that it was removed (it stops): answer from the leader's view.
  const bool self_removal = req.op() == kvdpb::MEMBER_REMOVE && req.id() == member_id();
  const int timeout_ms = static_cast<int>(5000 + 2 * config_.election_timeout_ms);
  transport_->ForwardMemberChange(
      lead, std::move(req), timeout_ms,
      [this, done, self_removal](const grpc::Status& s, const kvdpb::MemberChangeResponse& r) {
        if (!s.ok()) {
          done(ErrorResponse(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION
                                 ? errors::LeaderChanged()
                                 : errors::RequestTimedOut()));
          return;
        }
        if (r.code() != 0 || self_removal) {
          done(r);
          return;
        }
        // Answer once this member applied the change too (a read index round covers it), so
        // a MemberList here right after shows it.
        auto resp = std::make_shared<kvdpb::MemberChangeResponse>(r);
        ReadIndex([this, done, resp](const kvstore::Status& rs) {
          if (rs.ok()) {
            resp->clear_members();
            ToRecords(Members(), resp->mutable_members());
          }
          done(std::move(*resp));
        });
      });
}

void Node::ChangeMembershipAsLeader(kvdpb::MemberChangeRequest req, MemberChangeDone done) {
  auto shared = std::make_shared<MemberChangeDone>(std::move(done));
  auto request = std::make_shared<kvdpb::MemberChangeRequest>(std::move(req));
  const bool queued = RunOnRaftThread([this, shared, request](bool run) {
    if (!run) {
      (*shared)(ErrorResponse(errors::Stopped()));
      return;
    }
    if (lead_.load() != config_.member_id) {
      (*shared)(ErrorResponse(errors::LeaderChanged()));
      return;
    }
    if (member_changes_held_.size() + member_changes_waiting_.size() >= kMemberChangesMax) {
      (*shared)(ErrorResponse(errors::TooManyRequests()));
      return;
    }
    MemberChangeWaiter w;
    w.ctx.set_op(request->op());
    w.ctx.set_request_id(next_request_id_.fetch_add(1));
    kvdpb::MemberRecord* m = w.ctx.mutable_member();
    if (request->op() == kvdpb::MEMBER_ADD) {
      std::vector<std::string> urls(request->peer_urls().begin(), request->peer_urls().end());
      const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      // etcd's NewMember for MemberAdd: peer URLs, empty cluster name, the current time.
      m->set_id(ComputeMemberId(urls, "", now_s));
      m->set_is_learner(request->is_learner());
    } else {
      m->set_id(request->id());
    }
    for (const auto& u : request->peer_urls()) m->add_peer_urls(u);
    w.done = std::move(*shared);
    w.deadline = Clock::now() + std::chrono::milliseconds(5000 + 2 * config_.election_timeout_ms);
    member_changes_held_.push_back(std::move(w));
    ProposeMemberChanges();
  });
  if (!queued) (*shared)(ErrorResponse(errors::TooManyRequests()));
}

kvstore::Status Node::CheckMemberChange(const kvdpb::MemberChangeContext& change) {
  const uint64_t id = change.member().id();
  if (change.op() == kvdpb::MEMBER_PROMOTE) {
    // etcd's isLearnerReady (checked first, on the leader's progress).
    const raft::NodeStatus st = raft_->Status();
    auto learner = st.progress.find(id);
    auto self = st.progress.find(config_.member_id);
    if (learner != st.progress.end() && self != st.progress.end() &&
        static_cast<double>(learner->second.match) <
            static_cast<double>(self->second.match) * kLearnerReadyFraction) {
      return errors::LearnerNotReady();
    }
  }
  // etcd's HealthInterval is 5 s; with fast test timings a shorter window keeps the same rule
  // (a peer must have been reachable for several election timeouts).
  const auto healthy_for =
      std::chrono::milliseconds(std::min<uint64_t>(5000, 5 * config_.election_timeout_ms));
  if (config_.strict_reconfig_check) {
    kvstore::Status s =
        membership_.CheckStrict(change, config_.member_id, transport_->Links(healthy_for));
    if (!s.ok()) return s;
  }
  return membership_.Validate(change);
}

void Node::ProposeMemberChanges() {
  while (!member_changes_held_.empty()) {
    MemberChangeWaiter& w = member_changes_held_.front();
    kvstore::Status s =
        lead_.load() == config_.member_id ? CheckMemberChange(w.ctx) : errors::LeaderChanged();
    raft::ConfChange cc;
    if (s.ok()) {
      const auto member = membership_.Find(w.ctx.member().id());
      switch (w.ctx.op()) {
        case kvdpb::MEMBER_ADD:
          cc.type = w.ctx.member().is_learner() ? raft::ConfChangeType::kAddLearnerNode
                                                : raft::ConfChangeType::kAddNode;
          break;
        case kvdpb::MEMBER_PROMOTE:
          cc.type = raft::ConfChangeType::kAddNode;
          break;
        case kvdpb::MEMBER_UPDATE:
          // Raft has no update: re-adding the member in its current role changes nothing there.
          cc.type = member && member->is_learner ? raft::ConfChangeType::kAddLearnerNode
                                                 : raft::ConfChangeType::kAddNode;
          w.ctx.mutable_member()->set_is_learner(member && member->is_learner);
          break;
        default:
          cc.type = raft::ConfChangeType::kRemoveNode;
          break;
      }
      cc.node_id = w.ctx.member().id();
      cc.context = w.ctx.SerializeAsString();
      raft::Status rs = raft_->ProposeConfChange(cc);
      if (!rs.ok()) {
        if (rs.code() == raft::Code::kProposalDropped &&
            (rs.message() == "a conf change is already pending" ||
             rs.message() == "leadership transfer in progress")) {
          return;  // the previous change is not applied yet: retry on a later iteration
        }
        s = {kvstore::Code::kFailedPrecondition, "etcdserver: " + rs.message()};
      }
    }
    MemberChangeWaiter taken = std::move(w);
    member_changes_held_.pop_front();
    if (!s.ok()) {
      taken.done(ErrorResponse(s));
      continue;
    }
    KVD_LOG("proposed membership change: %s member %s", OpName(taken.ctx.op()),
            FormatId(cc.node_id).c_str());
    const uint64_t request_id = taken.ctx.request_id();
    member_changes_waiting_.emplace(request_id, std::move(taken));
  }
}

void Node::ExpireMemberChanges(Clock::time_point now, bool stopping) {
  const kvstore::Status why = stopping ? errors::Stopped() : errors::RequestTimedOut();
  for (auto it = member_changes_held_.begin(); it != member_changes_held_.end();) {
    if (stopping || it->deadline <= now) {
      it->done(ErrorResponse(why));
      it = member_changes_held_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = member_changes_waiting_.begin(); it != member_changes_waiting_.end();) {
    if (stopping || it->second.deadline <= now) {
      it->second.done(ErrorResponse(why));
      it = member_changes_waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- applying -----------------------------------------------------------------------------------

void Node::ApplyMembership(uint64_t index, const raft::ConfChange& cc) {
  const MembershipChange ch = membership_.Apply(index, cc);
  if (ch.applied) {
    SaveMembership();
    transport_->SetPeers(PeerTargets());
    KVD_LOG("membership: member %s %s at index %llu; %zu members", FormatId(ch.id).c_str(),
            OpName(ch.op), static_cast<unsigned long long>(index), Members().size());
    if (ch.op == kvdpb::MEMBER_REMOVE && ch.id == config_.member_id) {
      // etcd stops 1 s later (stopWithDelay), so the commit can still reach the others.
      MarkRemoved(std::chrono::milliseconds(1000));
    }
  }
  if (ch.request_id == 0) return;
  auto it = member_changes_waiting_.find(ch.request_id);
  if (it == member_changes_waiting_.end()) return;
  MemberChangeWaiter w = std::move(it->second);
  member_changes_waiting_.erase(it);
  kvdpb::MemberChangeResponse resp;
  resp.set_index(index);
  ToRecords(Members(), resp.mutable_members());
  if (w.ctx.op() == kvdpb::MEMBER_ADD) *resp.mutable_member() = w.ctx.member();
  w.done(std::move(resp));
}

void Node::RestoreMembership(const raft::Snapshot& snap) {
  if (snap.metadata.index <= membership_.applied_index()) return;
  kvdpb::MembershipState st;
  if (snap.data.empty() || !st.ParseFromString(snap.data)) {
    // A snapshot without membership data (older kvd): keep what we know of the members in
    // its configuration, drop the others.
    const kvdpb::MembershipState old = membership_.ToProto();
    st.set_cluster_id(old.cluster_id());
    *st.mutable_removed_ids() = old.removed_ids();
    auto add = [&](uint64_t id, bool learner) {
      kvdpb::MemberRecord* r = st.add_members();
      r->set_id(id);
      for (const auto& m : old.members()) {
        if (m.id() == id) *r = m;
      }
      r->set_is_learner(learner);
    };
    for (uint64_t id : snap.metadata.conf_state.voters) add(id, false);
    for (uint64_t id : snap.metadata.conf_state.learners) add(id, true);
  }
  st.set_applied_index(snap.metadata.index);
  membership_.Reset(st);
  SaveMembership();
  transport_->SetPeers(PeerTargets());
  KVD_LOG("membership restored from the snapshot at index %llu: %zu members",
          static_cast<unsigned long long>(snap.metadata.index), Members().size());
  if (membership_.IsRemoved(config_.member_id)) MarkRemoved(std::chrono::milliseconds(0));
}

// ---- removal of this member ---------------------------------------------------------------------

void Node::ReportRemoved() {
  (void)RunOnRaftThread([this](bool run) {
    if (run) MarkRemoved(std::chrono::milliseconds(0));
  });
}

void Node::MarkRemoved(std::chrono::milliseconds delay) {
  if (removed_stop_at_) return;
  KVD_LOG("member %s: %s", FormatId(config_.member_id).c_str(), kMemberRemovedMessage);
  removed_stop_at_ = Clock::now() + delay;
  MaybeStopRemoved(Clock::now());
}

void Node::MaybeStopRemoved(Clock::time_point now) {
  if (!removed_stop_at_ || removed_notified_ || now < *removed_stop_at_) return;
  removed_notified_ = true;
  if (on_removed_) on_removed_();
}

}  // namespace server
