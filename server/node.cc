#include "server/node.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "raft/codec.h"
#include "server/log.h"
#include "server/thread_name.h"
#include "server/transport.h"

namespace server {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMs() { return SteadyNowMs(); }

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The members file of kvd before membership changes (text; read when no membership file exists):
// "cluster <id hex>", then one "member <id hex> <name> <peer urls, comma-separated>" per member.
Status ReadLegacyMembersFile(const std::string& path, uint64_t* cluster_id,
                             std::map<uint64_t, MemberInfo>* members) {
  std::ifstream in(path);
  if (!in) return Status(1, "cannot read " + path + " (data dir without membership)");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string kind, id_hex;
    ls >> kind >> id_hex;
    uint64_t id = 0;
    try {
      id = std::stoull(id_hex, nullptr, 16);
    } catch (...) {
      return Status(1, "corrupt members file " + path + ": " + line);
    }
    if (kind == "cluster") {
      *cluster_id = id;
    } else if (kind == "member") {
      MemberInfo m;
      m.id = id;
      std::string urls;
      ls >> m.name >> urls;
      m.peer_urls = SplitComma(urls);
      (*members)[id] = m;
    }
  }
  return Status::Ok();
}

}  // namespace

Node::Node(const Config& config, const NodeLimits& limits) : config_(config), limits_(limits) {}

Status Node::Open(const Config& config, const NodeLimits& limits, std::unique_ptr<Node>* out) {
  std::unique_ptr<Node> node(new Node(config, limits));
  Status s = node->OpenImpl();
  if (!s.ok()) return s;
  *out = std::move(node);
  return Status::Ok();
}

Status Node::OpenImpl() {
  const std::string member_dir = config_.data_dir + "/member";
  std::error_code ec;
  std::filesystem::create_directories(member_dir, ec);
  if (ec) return Status(1, "cannot create " + member_dir + ": " + ec.message());

  kvstore::StoreOptions opts;
  opts.min_lease_ttl_seconds = config_.min_lease_ttl_seconds();
  opts.max_txn_ops = static_cast<int64_t>(config_.max_txn_ops);
  opts.max_request_bytes = config_.max_request_bytes;
  const std::optional<uint64_t> quota = config_.BackendQuotaBytes();
  opts.quota_backend_bytes = quota ? static_cast<int64_t>(*quota) : INT64_MAX;
  kvstore::Status ks = kvstore::Engine::Open(member_dir + "/kv", opts.engine,
                                             kvstore::MvccStore::ColumnFamilies(), &engine_);
  if (!ks.ok()) return Status(1, "cannot open the store: " + ks.message());
  // A crash in the middle of a snapshot restore: the received checkpoint is still here (it is
  // removed only after the restore), so finish that restore. The raft log never recorded the
  // snapshot (it is persisted after the restore); the store being ahead of the log is the same
  // state as a crash right after a completed restore, and the leader resends what is missing.
  std::string resumed_from;
  ks = kvstore::MvccStore::ResumeInterruptedRestore(engine_.get(), &resumed_from);
  if (!ks.ok()) return Status(1, "cannot resume the interrupted snapshot restore: " + ks.message());
  if (!resumed_from.empty()) KVD_LOG("resumed the snapshot restore interrupted by a crash");
  ks = kvstore::MvccStore::Open(engine_.get(), opts, &store_);
  if (!ks.ok()) return Status(1, "cannot open the store: " + ks.message());

  // Transfer files a crash left behind (snapshots being sent or received), now that the
  // store no longer needs one.
  for (const auto& entry : std::filesystem::directory_iterator(member_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("snapshot-send-") || name.starts_with("snap-recv-")) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  {
    kvstore::WatchOptions wo;
    wo.header_filler = [this](etcdserverpb::ResponseHeader* h) {
      h->set_cluster_id(cluster_id_);
      h->set_member_id(config_.member_id);
      h->set_raft_term(term_.load());
    };
    // Before any entry is applied, so that the watch side observes every revision.
    watchable_ = std::make_unique<kvstore::WatchableStore>(store_.get(), std::move(wo));
    store_->SetObserver(watchable_.get());
  }

  // The raft log lives in its own column family of the store's Engine: one RocksDB, one WAL.
  if (!config_.wal_dir.empty()) {
    KVD_LOG("warning: --wal-dir is ignored; the raft log is kept in %s/kv", member_dir.c_str());
  }
  ks = kvstore::RaftLogStore::Open(engine_.get(), kvstore::RaftLogStoreOptions{}, &log_);
  if (!ks.ok()) return Status(1, "cannot open the raft log: " + ks.message());

  membership_path_ = member_dir + "/membership";
  raft::HardState stored_hs;
  raft::ConfState stored_cs;
  raft::Status rs = log_->InitialState(&stored_hs, &stored_cs);
  if (!rs.ok()) return Status(1, "raft log: " + rs.ToString());
  if (log_->LastIndex() == 0 && stored_hs.empty()) {
    if (config_.initial_cluster_state == ClusterState::kExisting) {
      Status s = JoinExisting();
      if (!s.ok()) return s;
    } else {
      kvdpb::MembershipState state;
      state.set_cluster_id(config_.cluster_id);
      std::vector<uint64_t> voters;
      for (const InitialMember& im : config_.initial_cluster) {
        kvdpb::MemberRecord* r = state.add_members();
        r->set_id(im.id);
        r->set_name(im.name);
        for (const auto& u : im.peer_urls) r->add_peer_urls(u);
        voters.push_back(im.id);
      }
      std::sort(voters.begin(), voters.end());
      // The bootstrap conf changes (indexes 1..n) are already reflected.
      state.set_applied_index(voters.size());
      membership_.Reset(state);
      if (!membership_.Contains(config_.member_id)) {
        return Status(1, "kvd: this member is not in --initial-cluster");
      }
      // Membership first: a crash between the two leaves an empty log, which bootstraps again.
      Status s = membership_.Save(membership_path_, config_.member_id);
      if (!s.ok()) return s;
      ks = log_->Bootstrap(voters);
      if (!ks.ok()) return Status(1, "cannot bootstrap the raft log: " + ks.message());
      KVD_LOG("bootstrapped member %s of new cluster %s with %zu voters",
              FormatId(config_.member_id).c_str(), FormatId(config_.cluster_id).c_str(),
              voters.size());
    }
  } else {
    kvdpb::MembershipState state;
    uint64_t self_id = 0;
    if (std::filesystem::exists(membership_path_)) {
      Status s = Membership::Load(membership_path_, &state, &self_id);
      if (!s.ok()) return s;
      // etcd takes the member ID from the data dir, not from the flags (a member that joined
      // got its ID from MemberAdd).
      config_.member_id = self_id;
    } else {
      std::map<uint64_t, MemberInfo> members;
      uint64_t cluster_id = 0;
      Status s = ReadLegacyMembersFile(member_dir + "/members", &cluster_id, &members);
      if (!s.ok()) return s;
      state.set_cluster_id(cluster_id);  // applied index 0: replaying the log rebuilds it
      for (const auto& [id, m] : members) {
        kvdpb::MemberRecord* r = state.add_members();
        r->set_id(id);
        r->set_name(m.name);
        for (const auto& u : m.peer_urls) r->add_peer_urls(u);
      }
    }
    membership_.Reset(state);
    if (membership_.IsRemoved(config_.member_id)) {
      return Status(1, std::string("kvd: member ") + FormatId(config_.member_id) + ": " +
                           kMemberRemovedMessage);
    }
    if (!membership_.Contains(config_.member_id)) {
      return Status(1, "kvd: the data dir " + config_.data_dir + " does not belong to member " +
                           FormatId(config_.member_id) + " (check --name and peer URLs)");
    }
    KVD_LOG("restarting member %s of cluster %s from %s (raft log %llu..%llu)",
            FormatId(config_.member_id).c_str(), FormatId(membership_.cluster_id()).c_str(),
            config_.data_dir.c_str(), static_cast<unsigned long long>(log_->FirstIndex()),
            static_cast<unsigned long long>(log_->LastIndex()));
  }
  cluster_id_ = membership_.cluster_id();
  {
    std::vector<std::string> client_urls;
    for (const Url& u : config_.advertise_client_urls) client_urls.push_back(u.text);
    membership_.LearnHello(config_.member_id, config_.name, client_urls);
  }

  raft::HardState hs;
  rs = log_->InitialState(&hs, &conf_state_);
  PublishConfState();
  if (!rs.ok()) return Status(1, "raft log: " + rs.ToString());
  hard_state_ = hs;
  raft::Snapshot snap;
  rs = log_->Snapshot(&snap);
  if (!rs.ok()) return Status(1, "raft log: " + rs.ToString());
  snapshot_index_ = snap.metadata.index;

  raft::Config rc;
  rc.id = config_.member_id;
  rc.election_timeout_ticks = static_cast<int>(config_.election_timeout_ticks());
  rc.heartbeat_timeout_ticks = 1;
  rc.pre_vote = true;
  rc.check_quorum = true;
  rc.storage = log_.get();
  // Entries after the compaction point are handed out again: the store skips those it already
  // applied, and conf changes are re-applied to raft (which learns membership from them).
  rc.applied = log_->FirstIndex() - 1;
  rc.seed = config_.member_id ^ static_cast<uint64_t>(NowMs());
  raft::Status vs = rc.Validate();
  if (!vs.ok()) return Status(1, "raft config: " + vs.ToString());
  raft_ = std::make_unique<raft::RawNode>(rc);
  raft_applied_ = rc.applied;
  applied_.store(raft_applied_);
  commit_.store(hs.commit);
  term_.store(hs.term);
  compacting_ = !store_->PhysicalCompactionDone();

  transport_ = std::make_unique<Transport>(this, PeerTargets(), TransportLimits{});
  workers_ = std::make_unique<Executor>(limits_.read_workers, limits_.read_work_queue_max);

  const uint64_t start_ms = static_cast<uint64_t>(NowMs());
  next_request_id_.store(((config_.member_id & 0xFFFFu) << 48) | ((start_ms & 0xFFFFFFFFFFu) << 8));
  return Status::Ok();
}

Node::~Node() { Stop(); }

grpc::Service* Node::peer_service() { return transport_->service(); }

void Node::Start() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    SERVER_CHECK(!started_, "node started twice");
    started_ = true;
  }
  transport_->Start();
  apply_thread_ = std::thread([this] { ApplyLoop(); });
  persist_thread_ = std::thread([this] { PersistLoop(); });
  raft_thread_ = std::thread([this] { Run(); });
}

void Node::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  persist_cv_.notify_all();
  if (raft_thread_.joinable()) raft_thread_.join();
  // The persist thread finishes the Ready it was given; the apply thread the batch it is in
  // (the rest is replayed from the raft log at the next start).
  if (persist_thread_.joinable()) persist_thread_.join();
  {
    std::lock_guard<std::mutex> lk(apply_mu_);
    apply_stop_ = true;
  }
  apply_cv_.notify_all();
  if (apply_thread_.joinable()) apply_thread_.join();
  if (transport_) transport_->Stop();
  // Whatever is still queued (the raft thread never ran, or requests raced the stop).
  FailEverything(errors::Stopped());
  if (workers_) workers_->Stop();
}

// ---- client side ------------------------------------------------------------------------------

void Node::Propose(kvdpb::InternalRequest req, ApplyDone done) {
  if (proposals_inflight_.fetch_add(1) >= limits_.proposals_inflight_max) {
    proposals_inflight_.fetch_sub(1);
    done(errors::TooManyRequests(), nullptr);
    return;
  }
  Proposal p;
  p.id = next_request_id_.fetch_add(1);
  req.set_id(p.id);
  p.data = req.SerializeAsString();
  p.done = std::move(done);
  // etcd's ReqTimeout: 5 s + 2 x election timeout.
  p.deadline = Clock::now() + std::chrono::milliseconds(5000 + 2 * config_.election_timeout_ms);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!stop_) {
      proposals_.push_back(std::move(p));
      cv_.notify_one();
      return;
    }
  }
  proposals_inflight_.fetch_sub(1);
  p.done(errors::Stopped(), nullptr);
}

void Node::ReadIndex(ReadDone done) {
  if (reads_waiting_.fetch_add(1) >= limits_.reads_waiting_max) {
    reads_waiting_.fetch_sub(1);
    done(errors::TooManyRequests());
    return;
  }
  ReadWaiter w;
  w.done = std::move(done);
  w.deadline = Clock::now() + std::chrono::milliseconds(5000 + 2 * config_.election_timeout_ms);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!stop_) {
      new_reads_.push_back(std::move(w));
      cv_.notify_one();
      return;
    }
  }
  reads_waiting_.fetch_sub(1);
  w.done(errors::Stopped());
}

void Node::AskPeerHashKV(
    uint64_t id, int64_t revision, int timeout_ms,
    std::function<void(const grpc::Status&, const kvdpb::PeerHashKVResponse&)> done) {
  transport_->HashKV(id, revision, timeout_ms, std::move(done));
}

void Node::AfterPhysicalCompaction(std::function<void()> fn) {
  // Apply thread: compacting_ and compaction_waiters_ are its state.
  if (!compacting_ || compaction_waiters_.size() >= limits_.proposals_inflight_max) {
    fn();
    return;
  }
  compaction_waiters_.push_back(std::move(fn));
}

void Node::ForwardLeaseRenew(int64_t lease_id,
                             std::function<void(const kvstore::Status&, int64_t ttl)> done) {
  const uint64_t lead = leader();
  if (lead == raft::kNone) {
    done(errors::NoLeader(), 0);
    return;
  }
  transport_->RenewLease(lead, lease_id, static_cast<int>(2 * config_.election_timeout_ms),
                         [done = std::move(done)](const grpc::Status& s, int64_t ttl) {
                           if (s.ok()) {
                             done(kvstore::Status::Ok(), ttl);
                           } else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
                             done(errors::LeaderChanged(),
                                  0);  // it stepped down meanwhile: the client retries
                           } else {
                             done(errors::RequestTimedOut(), 0);
                           }
                         });
}

void Node::ForwardLeaseTimeToLive(int64_t lease_id,
                                  std::function<void(const kvstore::Status&, int64_t ttl)> done) {
  const uint64_t lead = leader();
  if (lead == raft::kNone) {
    done(errors::NoLeader(), 0);
    return;
  }
  transport_->LeaseTimeToLive(
      lead, lease_id, static_cast<int>(2 * config_.election_timeout_ms),
      [done = std::move(done)](const grpc::Status& s, int64_t ttl) {
        if (s.ok()) {
          done(kvstore::Status::Ok(), ttl);
        } else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          done(errors::LeaderChanged(), 0);  // it stepped down meanwhile: the client retries
        } else {
          done(errors::RequestTimedOut(), 0);
        }
      });
}

// ---- transport side ---------------------------------------------------------------------------

bool Node::PushEvent(Event ev) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || events_.size() >= limits_.inbound_events_max) return false;
    events_.push_back(std::move(ev));
  }
  cv_.notify_one();
  return true;
}

bool Node::Receive(raft::Message m) {
  Event ev{Event::Kind::kMessage, std::move(m), {}, 0, false, {}};
  return PushEvent(std::move(ev));
}

bool Node::ReceiveSnapshot(raft::Message m, std::string checkpoint_path) {
  Event ev{Event::Kind::kSnapshot, std::move(m), std::move(checkpoint_path), 0, false, {}};
  if (PushEvent(std::move(ev))) return true;
  std::error_code ec;
  std::filesystem::remove(checkpoint_path, ec);
  return false;
}

void Node::MoveLeader(uint64_t target, std::function<void(const kvstore::Status&)> done) {
  const auto timeout = std::chrono::milliseconds(2 * config_.election_timeout_ms);
  auto shared_done = std::make_shared<std::function<void(const kvstore::Status&)>>(std::move(done));
  const bool queued = RunOnRaftThread([this, target, timeout, shared_done](bool run) {
    if (!run) {
      (*shared_done)(errors::Stopped());
      return;
    }
    if (transfer_waiters_.size() >= kTransferWaitersMax) {
      (*shared_done)(errors::TooManyRequests());
      return;
    }
    KVD_LOG("moving leadership to %s", FormatId(target).c_str());
    (void)raft_->TransferLeader(target);
    transfer_waiters_.push_back(
        TransferWaiter{target, Clock::now() + timeout, std::move(*shared_done)});
  });
  if (!queued) (*shared_done)(errors::TooManyRequests());
}

void Node::CheckTransferWaiters(Clock::time_point now, bool stopping) {
  for (auto it = transfer_waiters_.begin(); it != transfer_waiters_.end();) {
    if (lead_.load() == it->target) {
      it->done(kvstore::Status::Ok());
    } else if (stopping) {
      it->done(errors::Stopped());
    } else if (now >= it->deadline) {
      it->done({kvstore::Code::kUnavailable,
                "etcdserver: request timed out, leader transfer took too long"});
    } else {
      ++it;
      continue;
    }
    it = transfer_waiters_.erase(it);
  }
}

bool Node::RunOnRaftThread(std::function<void(bool run)> fn) {
  return PushEvent(Event{Event::Kind::kCall, {}, {}, 0, false, std::move(fn)});
}

bool Node::RunOnApplyThread(std::function<void(bool run)> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return false;
  }
  ApplyJob job;
  job.kind = ApplyJob::Kind::kCall;
  job.fn = std::move(fn);
  return PushApply(job);
}

void Node::ReportUnreachable(uint64_t id) {
  (void)PushEvent(Event{Event::Kind::kUnreachable, {}, {}, id, false, {}});
}

void Node::ReportSnapshot(uint64_t id, bool ok) {
  (void)PushEvent(Event{Event::Kind::kSnapshotStatus, {}, {}, id, ok, {}});
}

void Node::LearnPeer(const kvdpb::PeerHello& hello) {
  membership_.LearnHello(hello.from_id(), hello.name(),
                         {hello.client_urls().begin(), hello.client_urls().end()});
}

bool Node::TransferLeadershipAway(std::chrono::milliseconds timeout) {
  if (!is_leader()) return true;
  // Like etcd's longestConnected: only a voter whose connection is open now can take over. With
  // none (every peer gone: the last member of a cluster shutting down) waiting could only end
  // when check quorum makes this member step down, so SIGTERM would take seconds.
  auto connected = std::make_shared<std::set<uint64_t>>();
  for (uint64_t id : membership_.Voters()) {
    if (id != config_.member_id && transport_->Connected(id)) connected->insert(id);
  }
  if (connected->empty()) return false;
  // The raft thread hands leadership to the most caught-up of them.
  const bool queued = RunOnRaftThread([this, connected](bool run) {
    if (!run) return;
    const raft::NodeStatus st = raft_->Status();
    if (st.soft_state.raft_state != raft::StateType::kLeader) return;
    uint64_t best = raft::kNone;
    uint64_t best_match = 0;
    for (const auto& [id, pr] : st.progress) {
      if (pr.is_learner || connected->count(id) == 0) continue;
      if (best == raft::kNone || pr.match > best_match) {
        best = id;
        best_match = pr.match;
      }
    }
    if (best != raft::kNone) {
      KVD_LOG("transferring leadership to %s", FormatId(best).c_str());
      (void)raft_->TransferLeader(best);
    }
  });
  if (!queued) return false;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!is_leader()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !is_leader();
}

// ---- queries ----------------------------------------------------------------------------------

void Node::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(config_.member_id);
  header->set_raft_term(term_.load());
  if (header->revision() == 0) header->set_revision(store_->CurrentRevision());
}

std::vector<MemberInfo> Node::Members() const { return membership_.Members(); }

kvdpb::PeerHello Node::Hello(uint64_t to) const {
  kvdpb::PeerHello h;
  h.set_cluster_id(cluster_id_);
  h.set_from_id(config_.member_id);
  h.set_to_id(to);
  h.set_name(config_.name);
  for (const Url& u : config_.advertise_client_urls) h.add_client_urls(u.text);
  return h;
}

// ---- raft thread ------------------------------------------------------------------------------

void Node::Run() {
  NameThisThread("kvd-raft");
  const auto tick = std::chrono::milliseconds(config_.tick_ms());
  auto next_tick = Clock::now() + tick;
  for (;;) {
    std::deque<Event> events;
    std::deque<Proposal> proposals;
    std::vector<ReadWaiter> reads;
    bool persisted = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_until(lk, next_tick, [this] {
        return stop_ || !events_.empty() || !proposals_.empty() || !new_reads_.empty() ||
               persist_done_ || wake_;
      });
      if (stop_) break;
      persisted = persist_done_;
      persist_done_ = false;
      wake_ = false;
      events.swap(events_);
      // Bounded per iteration; the rest waits (it is still counted in proposals_inflight_).
      while (!proposals_.empty() && proposals.size() < limits_.proposals_per_loop_max) {
        proposals.push_back(std::move(proposals_.front()));
        proposals_.pop_front();
      }
      reads.swap(new_reads_);
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      // A follower whose connection to its leader is gone (typically: the leader's process
      // died and its socket closed) tells raft, which then campaigns after the plain election
      // timeout instead of the randomized one (raft/raw_node.h ReportUnreachable). Only a
      // shorter wait: a leader that is alive keeps resetting the follower's election clock.
      const uint64_t lead = lead_.load();
      if (lead != raft::kNone && lead != config_.member_id && !transport_->Connected(lead)) {
        raft_->ReportUnreachable(lead);
      }
      raft_->Tick();
      // One tick per wake-up: after a stall (slow disk) we do not fire a burst of ticks that
      // would make followers campaign at once.
      next_tick += tick;
      if (next_tick < now) next_tick = now + tick;
      ExpireWaiters(now);
      ExpireMemberChanges(now, false);
      MaybeStopRemoved(now);
      CheckTransferWaiters(now, false);
      MaybeExpireLeases();
      // The quota check reads this estimate; space RocksDB frees in the background shows here.
      const int64_t size_bytes = store_->RefreshSizeEstimate();
      if (metrics_ != nullptr) {
        metrics_->proposals_pending.Set(static_cast<double>(proposals_inflight_.load()));
        metrics_->mvcc_db_total_size_in_bytes.Set(static_cast<double>(size_bytes));
      }
      if (round_ && !round_->has_index &&
          now - round_->sent > std::chrono::milliseconds(config_.election_timeout_ms)) {
        // The round's request or answer was lost (e.g. the leader died): ask again.
        round_->ctx = std::to_string(++read_seq_);
        round_->sent = now;
        (void)raft_->ReadIndex(round_->ctx);  // no leader: the next retry tries again
      }
    }
    for (Event& ev : events) HandleEvent(ev);
    for (Proposal& p : proposals) held_.push_back(std::move(p));
    ProposeHeld();
    ProposeMemberChanges();
    for (ReadWaiter& w : reads) pending_reads_.push_back(std::move(w));
    MaybeStartReadRound();
    if (persisted) FinishReady();
    // One Ready at a time (RawNode contract); while its fsync runs the loop keeps ticking,
    // stepping and proposing, and the next Ready collects all of that.
    while (!ready_outstanding_ && raft_->HasReady()) {
      {
        std::lock_guard<std::mutex> lk(apply_mu_);
        if (apply_queue_entries_ >= limits_.apply_queue_entries_max) {
          raft_waits_for_apply_.store(true);  // the apply thread wakes us when it caught up
          break;
        }
      }
      HandleReady();
    }
  }
  FailEverything(errors::Stopped());
}

void Node::PersistLoop() {
  NameThisThread("kvd-persist");
  for (;;) {
    PersistJob job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      persist_cv_.wait(lk, [this] { return stop_ || persist_job_.has_value(); });
      if (!persist_job_) return;  // stopping, nothing left to persist
      job = std::move(*persist_job_);
      persist_job_.reset();
    }
    const raft::HardState* hs = job.hard_state ? &*job.hard_state : nullptr;
    const auto save_start = Clock::now();
    // ONE RocksDB write for the whole Ready, synced unless only the commit index moved.
    kvstore::Status s = log_->Save(hs, job.entries, &job.snapshot, job.sync);
    if (metrics_ != nullptr && job.sync) {
      metrics_->wal_fsync_duration_seconds.Observe(
          std::chrono::duration<double>(Clock::now() - save_start).count());
    }
    // The node cannot make progress without its log; continuing could break promises made.
    SERVER_CHECK(s.ok(), "raft log write failed: %s", s.message().c_str());
    {
      std::lock_guard<std::mutex> lk(mu_);
      persist_done_ = true;
    }
    cv_.notify_one();
  }
}

void Node::HandleEvent(Event& ev) {
  switch (ev.kind) {
    case Event::Kind::kMessage:
      (void)raft_->Step(ev.msg);  // stale or unknown-peer messages are dropped harmlessly
      break;
    case Event::Kind::kSnapshot: {
      const uint64_t snap_index = ev.msg.snapshot.metadata.index;
      bool ok = true;
      if (store_->AppliedIndex() < snap_index && raft_applied_ < snap_index) {
        // The restore is apply-thread work: queue it behind what is being applied and wait.
        ApplyJob job;
        job.kind = ApplyJob::Kind::kCall;
        job.fn = [this, &ev, &ok, snap_index](bool run) {
          if (!run) {
            ok = false;
            return;
          }
          kvstore::Status s = store_->RestoreCheckpointFile(ev.path);
          ok = s.ok();
          if (!ok) KVD_LOG("restoring snapshot checkpoint failed: %s", s.message().c_str());
          // Failed after the store was emptied: serving or retrying from a half-restored store
          // is not an option, and deleting the file would make the next start refuse the data
          // dir. Stop with the file kept; the next start resumes the restore from it.
          SERVER_CHECK(ok || !store_->Poisoned(),
                       "snapshot restore failed part-way (%s); %s is kept and the restore "
                       "resumes at the next start",
                       s.message().c_str(), ev.path.c_str());
          // The restore skipped revisions without OnRevision (even a failed one may have
          // replaced part of the store): live watchers catch up from the new history (or are
          // canceled by its compaction).
          watchable_->OnHistoryReplaced();
          if (ok) {
            KVD_LOG("restored store checkpoint (applied index %llu) for snapshot at %llu",
                    static_cast<unsigned long long>(store_->AppliedIndex()),
                    static_cast<unsigned long long>(snap_index));
          }
        };
        ok = false;
        // This member follows a leader now: snapshots it was still sending as an earlier leader
        // are useless, and each holds the store's read gate, which the restore must take
        // exclusively (a slow peer would stall the restore and every read behind it).
        transport_->CancelSnapshotSends();
        if (PushApply(job)) WaitApplyIdle();
      }
      std::error_code ec;
      std::filesystem::remove(ev.path, ec);
      if (ok) (void)raft_->Step(ev.msg);
      break;
    }
    case Event::Kind::kUnreachable:
      raft_->ReportUnreachable(ev.peer);
      break;
    case Event::Kind::kSnapshotStatus:
      raft_->ReportSnapshot(ev.peer, ev.ok);
      break;
    case Event::Kind::kCall:
      ev.fn(true);
      break;
  }
}

void Node::ProposeHeld() {
  if (lead_.load() == raft::kNone) return;  // wait for a leader (or the deadline)
  std::vector<std::string> datas;
  while (!held_.empty()) {
    // Many proposals per raft message: one append, one MsgApp per follower for all of them.
    size_t n = 0;
    size_t bytes = 0;
    while (n < held_.size() && n < limits_.proposal_batch_entries_max &&
           (n == 0 || bytes + held_[n].data.size() <= limits_.proposal_batch_bytes_max)) {
      bytes += held_[n].data.size();
      ++n;
    }
    datas.clear();
    datas.reserve(n);
    for (size_t i = 0; i < n; ++i) datas.push_back(std::move(held_[i].data));
    raft::Status s = raft_->ProposeBatch(&datas);
    if (!s.ok()) {
      for (size_t i = 0; i < n; ++i) held_[i].data = std::move(datas[i]);
      if (s.code() == raft::Code::kResourceExhausted) {
        for (size_t i = 0; i < n; ++i) {
          Proposal failed = std::move(held_.front());
          held_.pop_front();
          proposals_inflight_.fetch_sub(1);
          failed.done(errors::TooManyRequests(), nullptr);
        }
        continue;
      }
      return;  // dropped (no leader, transfer in progress): retry on a later iteration
    }
    std::lock_guard<std::mutex> lk(waiting_mu_);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t id = held_.front().id;
      waiting_.emplace(id, std::move(held_.front()));
      held_.pop_front();
    }
  }
}

void Node::HandleReady() {
  raft::Ready rd = raft_->Ready();
  if (rd.soft_state) {
    const uint64_t old_lead = lead_.load();
    const uint64_t new_lead = rd.soft_state->lead;
    if (old_lead != new_lead) {
      KVD_LOG("member %s: leader is now %s (%s)", FormatId(config_.member_id).c_str(),
              new_lead == raft::kNone ? "none" : FormatId(new_lead).c_str(),
              raft::StateName(rd.soft_state->raft_state));
      lead_.store(new_lead);
      CheckTransferWaiters(Clock::now(), false);
      if (metrics_ != nullptr) {
        metrics_->has_leader.Set(new_lead == raft::kNone ? 0.0 : 1.0);
        if (new_lead != raft::kNone) metrics_->leader_changes_seen_total.Inc();
      }
      if (round_) {
        FailReads(&round_->waiters, errors::LeaderChanged());
        round_.reset();
      }
      if (new_lead == config_.member_id) {
        store_->Promote(NowMs(), static_cast<int64_t>(config_.election_timeout_ms));
      } else if (old_lead == config_.member_id) {
        store_->Demote();
        revoking_.clear();
      }
    }
  }
  std::vector<raft::Message> early;
  ready_later_.clear();
  for (raft::Message& m : rd.messages) {
    (raft::CanSendBeforePersist(m) ? early : ready_later_).push_back(std::move(m));
  }
  // The leader's appends go out now, in parallel with its own fsync.
  if (!early.empty()) transport_->Send(std::move(early));
  if (!rd.snapshot.empty()) {
    // The store was restored from the snapshot's checkpoint before the MsgSnap was stepped.
    conf_state_ = rd.snapshot.metadata.conf_state;
    PublishConfState();
    RestoreMembership(rd.snapshot);
    raft_applied_ = std::max(raft_applied_, rd.snapshot.metadata.index);
    snapshot_index_ = std::max(snapshot_index_, rd.snapshot.metadata.index);
    committed_bytes_since_snapshot_ = 0;
    PublishApplied(rd.snapshot.metadata.index);
  }
  // Committed entries are durable already (an earlier Ready's): apply them while this Ready's
  // entries are being persisted.
  ApplyCommitted(rd.committed_entries);
  for (const raft::ReadState& rs : rd.read_states) {
    if (round_ && !round_->has_index && rs.request_ctx == round_->ctx) {
      round_->has_index = true;
      round_->index = rs.index;
    }
  }
  MaybeFinishReadRound();
  if (rd.hard_state) {
    // Raft's in-memory state, as etcd reports it: the commit index never lags the entries
    // just handed to the apply thread.
    term_.store(rd.hard_state->term);
    commit_.store(rd.hard_state->commit);
  }
  ready_hard_state_ = rd.hard_state;
  ready_outstanding_ = true;
  if (!rd.must_sync && !rd.hard_state) {
    FinishReady();
    return;
  }
  // A hard state that only moved the commit index (must_sync false) is still written, without
  // an fsync, and before FinishReady's log compaction: a restart needs commit >= the compaction
  // point, and the shared WAL keeps a prefix of the writes, so a surviving compaction implies a
  // surviving commit. (A store write of these committed entries may land before it; a restart
  // tolerates that: the store skips entries it already applied.) It goes through the persist
  // thread like the rest, so a RocksDB write stall never stops this thread's ticks.
  {
    std::lock_guard<std::mutex> lk(mu_);
    persist_job_ =
        PersistJob{rd.hard_state, std::move(rd.entries), std::move(rd.snapshot), rd.must_sync};
  }
  persist_cv_.notify_one();
}

void Node::FinishReady() {
  SERVER_CHECK(ready_outstanding_, "FinishReady without a Ready");
  if (ready_hard_state_) hard_state_ = *ready_hard_state_;
  if (metrics_ != nullptr) {
    metrics_->proposals_committed_total.Set(static_cast<double>(hard_state_.commit));
  }
  // Votes and acknowledgements: promises about what is now durable.
  if (!ready_later_.empty()) transport_->Send(std::move(ready_later_));
  ready_later_.clear();
  raft_->Advance();
  ready_outstanding_ = false;
  MaybeSnapshot();
  // A finished round lets the next one start right away.
  MaybeStartReadRound();
}

void Node::PublishApplied(uint64_t index) {
  uint64_t cur = applied_.load();
  while (cur < index && !applied_.compare_exchange_weak(cur, index)) {
  }
}

void Node::PublishConfState() {
  const auto& l = conf_state_.learners;
  learner_.store(std::find(l.begin(), l.end(), config_.member_id) != l.end());
}

void Node::ApplyCommitted(std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  ApplyJob job;
  auto flush = [&] {
    if (job.last_index == 0) return;
    (void)PushApply(job);  // entries are always accepted
    job = ApplyJob();
  };
  for (raft::Entry& e : entries) {
    const uint64_t index = e.index;
    if (e.type == raft::EntryType::kConfChange) {
      flush();
      // Like etcd: a membership change is applied once everything before it was.
      WaitApplyIdle();
      raft::ConfChange cc;
      raft::Status s = raft::DecodeConfChange(e.data, &cc);
      SERVER_CHECK(s.ok(), "committed conf change at %llu is corrupt",
                   static_cast<unsigned long long>(index));
      conf_state_ = raft_->ApplyConfChange(cc);
      PublishConfState();
      ApplyMembership(index, cc);
      PublishApplied(index);
    } else {
      committed_bytes_since_snapshot_ += raft::EntrySizeBytes(e);
      if (!e.data.empty()) job.entries.push_back(std::move(e));
      job.last_index = index;
    }
    raft_applied_ = index;
  }
  flush();
}

int64_t Node::NewLeaseId() {
  for (;;) {
    const auto id = static_cast<int64_t>(next_request_id_.fetch_add(1) & 0x7fffffffffffffffull);
    if (id != 0) return id;
  }
}

void Node::CompleteWrite(uint64_t id, const kvstore::Status& s, kvdpb::InternalResponse* resp) {
  Proposal p;
  {
    std::lock_guard<std::mutex> lk(waiting_mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;  // proposed by another member, or already timed out
    p = std::move(it->second);
    waiting_.erase(it);
  }
  proposals_inflight_.fetch_sub(1);
  p.done(s, s.ok() ? resp : nullptr);
}

// ---- apply thread -----------------------------------------------------------------------------

bool Node::PushApply(ApplyJob& job) {
  {
    std::lock_guard<std::mutex> lk(apply_mu_);
    if (job.kind == ApplyJob::Kind::kEntries) {
      apply_queue_entries_ += job.entries.size();
    } else if (apply_stop_ || apply_queue_.size() >= limits_.read_work_queue_max) {
      return false;
    }
    apply_queue_.push_back(std::move(job));
  }
  apply_cv_.notify_one();
  return true;
}

void Node::WaitApplyIdle() {
  std::unique_lock<std::mutex> lk(apply_mu_);
  apply_idle_cv_.wait(lk, [this] { return apply_stop_ || (apply_queue_.empty() && !apply_busy_); });
}

void Node::ApplyLoop() {
  NameThisThread("kvd-apply");
  std::vector<ApplyJob> jobs;
  for (;;) {
    jobs.clear();
    size_t entries = 0;
    {
      std::unique_lock<std::mutex> lk(apply_mu_);
      apply_busy_ = false;
      if (apply_queue_.empty()) apply_idle_cv_.notify_all();
      // With a physical compaction pending, do a step now instead of sleeping.
      if (!compacting_) {
        // Bounded wait: reads handed over for a read index that is never reached (partition)
        // still expire.
        apply_cv_.wait_for(lk, std::chrono::milliseconds(config_.tick_ms()),
                           [this] { return apply_stop_ || !apply_queue_.empty(); });
      }
      if (apply_stop_) break;
      // Everything queued, up to about one write batch: many entries per MvccStore::Apply.
      while (!apply_queue_.empty() && entries < limits_.apply_batch_entries_max) {
        entries += apply_queue_.front().entries.size();
        jobs.push_back(std::move(apply_queue_.front()));
        apply_queue_.pop_front();
      }
      apply_busy_ = !jobs.empty();
    }
    ApplyJobs(&jobs);
    {
      std::lock_guard<std::mutex> lk(apply_mu_);
      apply_queue_entries_ -= entries;
    }
    if (raft_waits_for_apply_.exchange(false)) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        wake_ = true;
      }
      cv_.notify_one();
    }
    if (compacting_) {
      bool done = false;
      kvstore::Status s = store_->CompactStep(limits_.compact_step_keys, &done);
      if (!s.ok()) KVD_LOG("compaction step failed: %s", s.message().c_str());
      compacting_ = s.ok() && !done;
      if (!compacting_) {
        std::vector<std::function<void()>> waiters;
        waiters.swap(compaction_waiters_);
        for (auto& fn : waiters) fn();
      }
    }
  }
  // Stopping: what is left is replayed from the raft log at the next start; its waiters fail.
  std::deque<ApplyJob> left;
  {
    std::lock_guard<std::mutex> lk(apply_mu_);
    left.swap(apply_queue_);
    apply_busy_ = false;
  }
  apply_idle_cv_.notify_all();
  for (ApplyJob& job : left) {
    if (job.kind == ApplyJob::Kind::kCall) job.fn(false);  // its RPC must still finish
    if (job.kind == ApplyJob::Kind::kReads) read_releases_.emplace_back(0, std::move(job.reads));
  }
  ReleaseReads(true);
  std::vector<std::function<void()>> compaction_waiters;
  compaction_waiters.swap(compaction_waiters_);
  for (auto& fn : compaction_waiters) fn();  // the logical compaction is done; answer now
}

void Node::ApplyJobs(std::vector<ApplyJob>* jobs) {
  // The batch's parsed requests live in one arena, reset after each Apply: destroying them one
  // by one was 4 % of the apply thread's samples (perf, 1,000 clients). The message objects are
  // arena-allocated; protobuf 3.21 still mallocs the buffers of long strings.
  google::protobuf::Arena arena;
  std::vector<kvstore::ApplyEntry> batch;
  std::vector<kvstore::ApplyResult> results;
  uint64_t applied = 0;  // every entry up to here is in the store once `batch` is written
  auto flush = [&] {
    if (!batch.empty()) {
      const auto apply_start = Clock::now();
      kvstore::Status s = store_->Apply(batch, NowMs(), &results);
      if (metrics_ != nullptr) {
        metrics_->backend_commit_duration_seconds.Observe(
            std::chrono::duration<double>(Clock::now() - apply_start).count());
      }
      SERVER_CHECK(s.ok(), "applying committed entries failed: %s", s.message().c_str());
      for (size_t i = 0; i < results.size(); ++i) {
        kvstore::ApplyResult& r = results[i];
        if (r.skipped) continue;
        const kvdpb::InternalRequest& req = *batch[i].request;
        if (req.has_compaction() && r.status.ok()) {
          compacting_ = true;
          if (on_compaction_applied_) on_compaction_applied_();
        }
        if (req.id() != 0) CompleteWrite(req.id(), r.status, &r.response);
      }
      batch.clear();
      arena.Reset();
    }
    if (applied != 0) {
      PublishApplied(applied);
      if (metrics_ != nullptr) {
        metrics_->proposals_applied_total.Set(static_cast<double>(applied_.load()));
      }
    }
    ReleaseReads(false);
  };
  for (ApplyJob& job : *jobs) {
    switch (job.kind) {
      case ApplyJob::Kind::kEntries:
        for (const raft::Entry& e : job.entries) {
          if (batch.size() >= limits_.apply_batch_entries_max) flush();
          auto* req = google::protobuf::Arena::CreateMessage<kvdpb::InternalRequest>(&arena);
          SERVER_CHECK(req->ParseFromString(e.data), "committed entry %llu is corrupt",
                       static_cast<unsigned long long>(e.index));
          batch.push_back(kvstore::ApplyEntry{e.index, req});
        }
        applied = job.last_index;
        break;
      case ApplyJob::Kind::kReads:
        read_releases_.emplace_back(job.read_index, std::move(job.reads));
        break;
      case ApplyJob::Kind::kCall:
        flush();
        job.fn(true);
        break;
    }
  }
  flush();
}

void Node::ReleaseReads(bool stopping) {
  const uint64_t applied = applied_.load();
  const auto now = Clock::now();
  for (auto it = read_releases_.begin(); it != read_releases_.end();) {
    if (!stopping && it->first > applied) {
      // Not servable yet: only the expired ones fail.
      auto keep = std::partition(it->second.begin(), it->second.end(),
                                 [&](const ReadWaiter& w) { return w.deadline > now; });
      for (auto w = keep; w != it->second.end(); ++w) {
        reads_waiting_.fetch_sub(1);
        w->done(errors::RequestTimedOut());
      }
      it->second.erase(keep, it->second.end());
      it = it->second.empty() ? read_releases_.erase(it) : std::next(it);
      continue;
    }
    for (ReadWaiter& w : it->second) {
      reads_waiting_.fetch_sub(1);
      auto done = std::move(w.done);
      if (stopping) {
        done(errors::Stopped());
      } else if (!workers_->Post([done] { done(kvstore::Status::Ok()); })) {
        done(errors::TooManyRequests());
      }
    }
    it = read_releases_.erase(it);
  }
}

void Node::MaybeStartReadRound() {
  if (round_ || pending_reads_.empty() || lead_.load() == raft::kNone) return;
  ReadRound r;
  r.ctx = std::to_string(++read_seq_);
  r.sent = Clock::now();
  r.waiters.swap(pending_reads_);
  raft::Status s = raft_->ReadIndex(r.ctx);
  if (!s.ok()) {
    // No leader or too many reads at the leader: keep them for a later round.
    r.waiters.swap(pending_reads_);
    return;
  }
  round_ = std::move(r);
}

void Node::MaybeFinishReadRound() {
  if (!round_ || !round_->has_index) return;
  // The apply thread serves them once it applied up to the read index; the next round may
  // start at once.
  ApplyJob job;
  job.kind = ApplyJob::Kind::kReads;
  job.read_index = round_->index;
  job.reads = std::move(round_->waiters);
  round_.reset();
  if (!PushApply(job)) FailReads(&job.reads, errors::TooManyRequests());
}

void Node::FailReads(std::vector<ReadWaiter>* waiters, const kvstore::Status& s) {
  for (ReadWaiter& w : *waiters) {
    reads_waiting_.fetch_sub(1);
    w.done(s);
  }
  waiters->clear();
}

void Node::ExpireWaiters(Clock::time_point now) {
  auto expire_proposal = [&](Proposal& p) {
    proposals_inflight_.fetch_sub(1);
    if (metrics_ != nullptr) metrics_->proposals_failed_total.Inc();
    p.done(errors::RequestTimedOut(), nullptr);
  };
  while (!held_.empty() && held_.front().deadline <= now) {
    Proposal p = std::move(held_.front());
    held_.pop_front();
    expire_proposal(p);
  }
  std::vector<Proposal> expired;
  {
    std::lock_guard<std::mutex> lk(waiting_mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Proposal& p : expired) expire_proposal(p);
  auto expire_reads = [&](std::vector<ReadWaiter>* ws) {
    auto keep = std::partition(ws->begin(), ws->end(),
                               [&](const ReadWaiter& w) { return w.deadline > now; });
    for (auto it = keep; it != ws->end(); ++it) {
      reads_waiting_.fetch_sub(1);
      it->done(errors::RequestTimedOut());
    }
    ws->erase(keep, ws->end());
  };
  expire_reads(&pending_reads_);
  if (round_) expire_reads(&round_->waiters);
}

void Node::MaybeExpireLeases() {
  if (lead_.load() != config_.member_id) return;
  const int64_t now = NowMs();
  // A revoke proposed but not applied yet is re-proposed after a second (the apply thread does
  // not report revokes back: entries older than that are simply forgotten).
  std::erase_if(revoking_, [now](const auto& kv) { return now - kv.second >= 1000; });
  // Bounded per tick.
  for (int64_t id : store_->ExpiredLeases(now, 64)) {
    auto it = revoking_.find(id);
    if (it != revoking_.end() && now - it->second < 1000) continue;
    kvdpb::InternalRequest req;
    req.mutable_lease_revoke()->set_id(id);  // id 0: nobody waits for it
    if (raft_->Propose(req.SerializeAsString()).ok()) revoking_[id] = now;
  }
}

void Node::MaybeSnapshot() {
  // At what the store applied (a snapshot is sent as a store checkpoint, which must cover it).
  const uint64_t applied = applied_.load();
  if (applied <= snapshot_index_) return;
  const bool by_count = applied - snapshot_index_ >= config_.snapshot_count;
  const bool by_bytes = limits_.snapshot_trigger_bytes > 0 &&
                        committed_bytes_since_snapshot_ >= limits_.snapshot_trigger_bytes;
  if (!by_count && !by_bytes) return;
  raft::Snapshot created;
  // The snapshot's data is the membership (a member restored from it learns the peer URLs).
  // Conf changes are applied only once the apply thread is idle, so the membership now is the
  // one at `applied`.
  // Not synced (this is the raft thread, and it may run every second under load): the store's
  // state at `applied` and this record are in the shared WAL before the compaction below, and a
  // crash keeps a prefix of it; losing them only leaves the older snapshot and a longer log.
  kvstore::Status s = log_->CreateSnapshot(
      applied, conf_state_, membership_.ToProto().SerializeAsString(), &created, /*sync=*/false);
  if (!s.ok()) {
    KVD_LOG("raft snapshot at %llu failed: %s", static_cast<unsigned long long>(applied),
            s.message().c_str());
    return;
  }
  snapshot_index_ = applied;
  committed_bytes_since_snapshot_ = 0;
  // Keep log_retain_entries behind the snapshot, or fewer when they exceed log_retain_bytes;
  // but a leader keeps, within the entry rule, what its slowest follower still needs, so that a
  // follower lagging by more than the bytes (a restart, a stall) catches up from the log instead
  // of a whole-store snapshot; it holds the log back by at most 3 x log_retain_bytes, so that a
  // member that is gone (or added and never started) cannot turn the byte rule off.
  uint64_t compact_to = snapshot_index_ > limits_.log_retain_entries
                            ? snapshot_index_ - limits_.log_retain_entries
                            : 0;
  if (limits_.snapshot_trigger_bytes > 0) {
    uint64_t by_bytes_to = log_->IndexKeepingBytes(snapshot_index_, limits_.log_retain_bytes);
    if (by_bytes_to > compact_to) {
      const raft::NodeStatus st = raft_->Status();  // progress is empty unless leader
      for (const auto& [id, pr] : st.progress) {
        if (id != config_.member_id) by_bytes_to = std::min(by_bytes_to, pr.match);
      }
      by_bytes_to = std::max(
          by_bytes_to, log_->IndexKeepingBytes(snapshot_index_, 3 * limits_.log_retain_bytes));
      compact_to = std::max(compact_to, by_bytes_to);
    }
  }
  if (compact_to >= log_->FirstIndex()) {
    s = log_->Compact(compact_to);
    if (!s.ok()) {
      KVD_LOG("raft log compaction to %llu failed: %s", static_cast<unsigned long long>(compact_to),
              s.message().c_str());
    }
  }
  const int64_t now_ms = NowMs();
  if (now_ms - snapshot_logged_ms_ < 60000) {
    ++snapshots_unlogged_;
    return;
  }
  KVD_LOG(
      "raft snapshot at index %llu; log now %llu..%llu (%llu more snapshots since the "
      "last such line)",
      static_cast<unsigned long long>(snapshot_index_),
      static_cast<unsigned long long>(log_->FirstIndex()),
      static_cast<unsigned long long>(log_->LastIndex()),
      static_cast<unsigned long long>(snapshots_unlogged_));
  snapshot_logged_ms_ = now_ms;
  snapshots_unlogged_ = 0;
}

void Node::FailEverything(const kvstore::Status& s) {
  std::deque<Proposal> proposals;
  std::vector<ReadWaiter> reads;
  std::deque<Event> events;
  {
    std::lock_guard<std::mutex> lk(mu_);
    proposals.swap(proposals_);
    reads.swap(new_reads_);
    events.swap(events_);
  }
  for (Event& ev : events) {
    if (ev.kind == Event::Kind::kCall) ev.fn(false);  // its RPC must still finish
  }
  for (Proposal& p : proposals) held_.push_back(std::move(p));
  {
    std::lock_guard<std::mutex> lk(waiting_mu_);
    for (auto& [id, p] : waiting_) held_.push_back(std::move(p));
    waiting_.clear();
  }
  for (Proposal& p : held_) {
    proposals_inflight_.fetch_sub(1);
    p.done(s, nullptr);
  }
  held_.clear();
  for (ReadWaiter& w : reads) pending_reads_.push_back(std::move(w));
  FailReads(&pending_reads_, s);
  CheckTransferWaiters(Clock::now(), true);
  ExpireMemberChanges(Clock::now(), true);
  if (round_) {
    FailReads(&round_->waiters, s);
    round_.reset();
  }
}

}  // namespace server
