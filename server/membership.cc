#include "server/membership.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/config.h"

namespace server {

namespace {

bool Started(const MemberInfo& m) { return !m.name.empty(); }

Status WriteAllAndSync(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status(1, "cannot create " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Status(1, "cannot write " + path + ": " + why);
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Status(1, "cannot fsync " + path);
  return Status::Ok();
}

}  // namespace

std::string PeerTargetOf(const std::string& url_text) {
  Url url;
  if (!ParseUrl(url_text, &url).ok()) return url_text;
  const bool v6 = url.host.find(':') != std::string::npos;
  return (v6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

MemberInfo Membership::FromRecord(const kvdpb::MemberRecord& r) {
  MemberInfo m;
  m.id = r.id();
  m.name = r.name();
  m.peer_urls.assign(r.peer_urls().begin(), r.peer_urls().end());
  m.client_urls.assign(r.client_urls().begin(), r.client_urls().end());
  m.is_learner = r.is_learner();
  return m;
}

void Membership::ToRecord(const MemberInfo& m, kvdpb::MemberRecord* r) {
  r->set_id(m.id);
  r->set_name(m.name);
  for (const auto& u : m.peer_urls) r->add_peer_urls(u);
  for (const auto& u : m.client_urls) r->add_client_urls(u);
  r->set_is_learner(m.is_learner);
}

void ToRecords(const std::vector<MemberInfo>& members,
               google::protobuf::RepeatedPtrField<kvdpb::MemberRecord>* out) {
  for (const MemberInfo& m : members) {
    kvdpb::MemberRecord* r = out->Add();
    r->set_id(m.id);
    r->set_name(m.name);
    for (const auto& u : m.peer_urls) r->add_peer_urls(u);
    for (const auto& u : m.client_urls) r->add_client_urls(u);
    r->set_is_learner(m.is_learner);
  }
}

// ---- queries ------------------------------------------------------------------------------------

uint64_t Membership::cluster_id() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cluster_id_;
}

uint64_t Membership::applied_index() const {
  std::lock_guard<std::mutex> lk(mu_);
  return applied_index_;
}

std::vector<MemberInfo> Membership::Members() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<MemberInfo> out;
  out.reserve(members_.size());
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

std::optional<MemberInfo> Membership::Find(uint64_t id) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = members_.find(id);
  if (it == members_.end()) return std::nullopt;
  return it->second;
}

bool Membership::IsRemoved(uint64_t id) const {
  std::lock_guard<std::mutex> lk(mu_);
  return removed_.count(id) > 0;
}

std::map<uint64_t, std::string> Membership::PeerUrls(uint64_t self) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::map<uint64_t, std::string> out;
  for (const auto& [id, m] : members_) {
    if (id != self && !m.peer_urls.empty()) out[id] = m.peer_urls[0];
  }
  return out;
}

std::vector<uint64_t> Membership::Voters() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<uint64_t> out;
  for (const auto& [id, m] : members_) {
    if (!m.is_learner) out.push_back(id);
  }
  return out;
}

// ---- changes ------------------------------------------------------------------------------------

void Membership::Reset(const kvdpb::MembershipState& state) {
  std::lock_guard<std::mutex> lk(mu_);
  // Names and client URLs are local knowledge: keep what we learned when the sender lacks it.
  std::map<uint64_t, MemberInfo> old;
  old.swap(members_);
  cluster_id_ = state.cluster_id();
  applied_index_ = state.applied_index();
  for (const auto& r : state.members()) {
    MemberInfo m = FromRecord(r);
    auto it = old.find(m.id);
    if (it != old.end()) {
      if (m.name.empty()) m.name = it->second.name;
      if (m.client_urls.empty()) m.client_urls = it->second.client_urls;
    }
    members_[m.id] = std::move(m);
  }
  removed_.clear();
  removed_.insert(state.removed_ids().begin(), state.removed_ids().end());
}

kvdpb::MembershipState Membership::ToProto() const {
  std::lock_guard<std::mutex> lk(mu_);
  kvdpb::MembershipState s;
  s.set_cluster_id(cluster_id_);
  s.set_applied_index(applied_index_);
  for (const auto& [id, m] : members_) ToRecord(m, s.add_members());
  for (uint64_t id : removed_) s.add_removed_ids(id);
  return s;
}

MembershipChange Membership::Apply(uint64_t index, const raft::ConfChange& cc) {
  MembershipChange out;
  out.id = cc.node_id;
  kvdpb::MemberChangeContext ctx;
  const bool bootstrap = cc.context.empty();
  if (bootstrap) {
    ctx.set_op(cc.type == raft::ConfChangeType::kRemoveNode ? kvdpb::MEMBER_REMOVE
                                                            : kvdpb::MEMBER_ADD);
  } else {
    SERVER_CHECK(ctx.ParseFromString(cc.context) && ctx.member().id() == cc.node_id,
                 "conf change at %llu has a corrupt member context",
                 static_cast<unsigned long long>(index));
  }
  out.op = ctx.op();
  out.request_id = ctx.request_id();
  std::lock_guard<std::mutex> lk(mu_);
  if (index <= applied_index_) return out;
  out.applied = true;
  applied_index_ = index;
  const uint64_t id = cc.node_id;
  switch (ctx.op()) {
    case kvdpb::MEMBER_ADD: {
      auto [it, created] = members_.try_emplace(id);
      MemberInfo& m = it->second;
      m.id = id;
      if (!bootstrap) {
        m.peer_urls.assign(ctx.member().peer_urls().begin(), ctx.member().peer_urls().end());
        m.is_learner = ctx.member().is_learner();
      } else if (created) {
        m.is_learner = cc.type == raft::ConfChangeType::kAddLearnerNode;
      }
      auto h = unknown_hellos_.find(id);
      if (h != unknown_hellos_.end()) {
        if (m.name.empty()) m.name = h->second.first;
        if (m.client_urls.empty()) m.client_urls = h->second.second;
        unknown_hellos_.erase(h);
      }
      break;
    }
    case kvdpb::MEMBER_PROMOTE:
      if (auto it = members_.find(id); it != members_.end()) it->second.is_learner = false;
      break;
    case kvdpb::MEMBER_UPDATE:
      if (auto it = members_.find(id); it != members_.end()) {
        it->second.peer_urls.assign(ctx.member().peer_urls().begin(),
                                    ctx.member().peer_urls().end());
      }
      break;
    case kvdpb::MEMBER_REMOVE:
      members_.erase(id);
      removed_.insert(id);
      unknown_hellos_.erase(id);
      break;
    default:
      SERVER_CHECK(false, "conf change at %llu has an unknown member op %d",
                   static_cast<unsigned long long>(index), static_cast<int>(ctx.op()));
  }
  return out;
}

void Membership::LearnHello(uint64_t id, const std::string& name,
                            const std::vector<std::string>& urls) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = members_.find(id);
  if (it != members_.end()) {
    it->second.name = name;
    it->second.client_urls = urls;
    return;
  }
  if (removed_.count(id) > 0) return;
  if (unknown_hellos_.size() >= kUnknownHellosMax && unknown_hellos_.count(id) == 0) return;
  unknown_hellos_[id] = {name, urls};
}

// ---- etcd's rules -------------------------------------------------------------------------------

kvstore::Status Membership::Validate(const kvdpb::MemberChangeContext& change) const {
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t id = change.member().id();
  // etcd: ErrIDRemoved, which its gRPC layer reports as "member not found".
  if (removed_.count(id) > 0) return errors::MemberNotFound();
  auto it = members_.find(id);
  switch (change.op()) {
    case kvdpb::MEMBER_ADD: {
      if (it != members_.end()) return errors::MemberExist();
      for (const auto& [mid, m] : members_) {
        for (const auto& u : m.peer_urls) {
          for (const auto& nu : change.member().peer_urls()) {
            if (u == nu) return errors::PeerUrlExist();
          }
        }
      }
      if (change.member().is_learner()) {
        size_t learners = 0;
        for (const auto& [mid, m] : members_) learners += m.is_learner ? 1 : 0;
        if (learners + 1 > kLearnersMax) return errors::TooManyLearners();
      }
      return kvstore::Status::Ok();
    }
    case kvdpb::MEMBER_PROMOTE:
      if (it == members_.end()) return errors::MemberNotFound();
      if (!it->second.is_learner) return errors::MemberNotLearner();
      return kvstore::Status::Ok();
    case kvdpb::MEMBER_REMOVE:
      if (it == members_.end()) return errors::MemberNotFound();
      return kvstore::Status::Ok();
    case kvdpb::MEMBER_UPDATE:
      if (it == members_.end()) return errors::MemberNotFound();
      for (const auto& [mid, m] : members_) {
        if (mid == id) continue;
        for (const auto& u : m.peer_urls) {
          for (const auto& nu : change.member().peer_urls()) {
            if (u == nu) return errors::PeerUrlExist();
          }
        }
      }
      return kvstore::Status::Ok();
    default:
      return {kvstore::Code::kInvalidArgument, "unknown member operation"};
  }
}

kvstore::Status Membership::CheckStrict(const kvdpb::MemberChangeContext& change, uint64_t self,
                                        const std::map<uint64_t, PeerLink>& links) const {
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t id = change.member().id();
  auto link = [&](uint64_t m) {
    auto it = links.find(m);
    return it == links.end() ? PeerLink{} : it->second;
  };
  std::vector<const MemberInfo*> voters;
  for (const auto& [mid, m] : members_) {
    if (!m.is_learner) voters.push_back(&m);
  }
  // etcd's isConnectedSince(now - HealthInterval) for every voter; self always counts.
  auto connected_voters = [&] {
    size_t n = 0;
    for (const MemberInfo* m : voters) n += (m->id == self || link(m->id).active_long_enough);
    return n;
  };
  switch (change.op()) {
    case kvdpb::MEMBER_ADD: {
      if (!change.member().is_learner()) {
        // IsReadyToAddVotingMember: the new member counts toward the future quorum, unstarted.
        size_t members = 1, started = 0;
        for (const MemberInfo* m : voters) {
          started += Started(*m);
          ++members;
        }
        const bool restoring = started == 1 && members == 2;  // 1-member cluster grows to 2
        if (!restoring && started < members / 2 + 1) return errors::NotEnoughStartedMembers();
      }
      // etcd's mayAddMember: learner or voter, every voter must have been connected lately.
      if (connected_voters() != voters.size()) return errors::Unhealthy();
      return kvstore::Status::Ok();
    }
    case kvdpb::MEMBER_REMOVE: {
      auto it = members_.find(id);
      if (it != members_.end() && it->second.is_learner) return kvstore::Status::Ok();
      size_t members = 0, started = 0;
      for (const MemberInfo* m : voters) {
        if (m->id == id) continue;
        started += Started(*m);
        ++members;
      }
      if (started < members / 2 + 1) return errors::NotEnoughStartedMembers();
      // A member that is down is not part of the active quorum: safe to remove.
      if (id != self && !link(id).active) return kvstore::Status::Ok();
      const size_t active = connected_voters();
      if (active < 1 || active - 1 < 1 + (voters.size() - 1) / 2) return errors::Unhealthy();
      return kvstore::Status::Ok();
    }
    case kvdpb::MEMBER_PROMOTE: {
      // IsReadyToPromoteMember: the learner counts as a started future voter.
      size_t members = 1, started = 1;
      for (const MemberInfo* m : voters) {
        started += Started(*m);
        ++members;
      }
      if (started < members / 2 + 1) return errors::NotEnoughStartedMembers();
      return kvstore::Status::Ok();
    }
    default:
      return kvstore::Status::Ok();
  }
}

// ---- persistence --------------------------------------------------------------------------------

Status Membership::Save(const std::string& path, uint64_t self_id) const {
  kvdpb::MembersFile file;
  file.set_self_id(self_id);
  *file.mutable_state() = ToProto();
  const std::string tmp = path + ".tmp";
  Status s = WriteAllAndSync(tmp, file.SerializeAsString());
  if (!s.ok()) return s;
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status(1, "cannot rename " + tmp + ": " + ec.message());
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status Membership::Load(const std::string& path, kvdpb::MembershipState* state, uint64_t* self_id) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(1, "cannot read " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  kvdpb::MembersFile file;
  if (!file.ParseFromString(buf.str()) || file.self_id() == 0) {
    return Status(1, "corrupt members file " + path);
  }
  *state = file.state();
  *self_id = file.self_id();
  return Status::Ok();
}

}  // namespace server
