#include "raft/raft.h"

#include <algorithm>

#include "raft/codec.h"

namespace raft {

namespace {

const char kCampaignTransfer[] = "CampaignTransfer";

std::string U(uint64_t v) { return std::to_string(v); }

bool Contains(const std::vector<uint64_t>& ids, uint64_t id) {
  return std::binary_search(ids.begin(), ids.end(), id);
}

void InsertSorted(std::vector<uint64_t>* ids, uint64_t id) {
  auto it = std::lower_bound(ids->begin(), ids->end(), id);
  if (it == ids->end() || *it != id) ids->insert(it, id);
}

void EraseSorted(std::vector<uint64_t>* ids, uint64_t id) {
  auto it = std::lower_bound(ids->begin(), ids->end(), id);
  if (it != ids->end() && *it == id) ids->erase(it);
}

MessageType VoteRespType(MessageType t) {
  return t == MessageType::kMsgVote ? MessageType::kMsgVoteResp : MessageType::kMsgPreVoteResp;
}

}  // namespace

Status Config::Validate() const {
  if (id == kNone) return {Code::kInvalidArgument, "id must not be 0"};
  if (heartbeat_timeout_ticks <= 0) return {Code::kInvalidArgument, "heartbeat tick must be > 0"};
  if (election_timeout_ticks <= heartbeat_timeout_ticks) {
    return {Code::kInvalidArgument, "election tick must be greater than heartbeat tick"};
  }
  if (storage == nullptr) return {Code::kInvalidArgument, "storage cannot be null"};
  if (max_inflight_msgs == 0) return {Code::kInvalidArgument, "max inflight msgs must be > 0"};
  if (max_size_per_msg_bytes == 0 || max_committed_size_per_ready_bytes == 0 ||
      max_uncommitted_entries_bytes == 0 || max_pending_read_index == 0 || max_outgoing_msgs == 0) {
    return {Code::kInvalidArgument, "limits must be > 0"};
  }
  return Status::Ok();
}

Raft::Raft(const Config& cfg)
    : cfg_(cfg),
      id_(cfg.id),
      log_(cfg.storage, cfg.max_committed_size_per_ready_bytes),
      rng_(Rng::ForNode(cfg.seed, cfg.id)) {
  Status v = cfg.Validate();
  RAFT_CHECK(v.ok(), "invalid config: " + v.ToString());
  HardState hs;
  ConfState cs;
  Status s = cfg.storage->InitialState(&hs, &cs);
  RAFT_CHECK(s.ok(), "storage InitialState failed: " + s.ToString());
  ResetProgressFromConf(cs);
  if (!hs.empty()) {
    RAFT_CHECK(hs.commit <= log_.LastIndex() && hs.commit + 1 >= log_.FirstIndex(),
               "hard state commit " + U(hs.commit) + " out of range " + log_.DescribeState());
    term_ = hs.term;
    vote_ = hs.vote;
    log_.InitCommitApplied(hs.commit, 0);
  }
  if (cfg.applied > 0) log_.InitCommitApplied(log_.committed(), cfg.applied);
  BecomeFollower(term_, kNone);
}

// ---- helpers ----------------------------------------------------------------------------------

void Raft::Send(Message m) {
  // A forwarded MsgTransferLeader keeps `from`: it names the transferee.
  if (m.type != MessageType::kMsgTransferLeader || m.from == kNone) m.from = id_;
  if (m.type == MessageType::kMsgVote || m.type == MessageType::kMsgVoteResp ||
      m.type == MessageType::kMsgPreVote || m.type == MessageType::kMsgPreVoteResp) {
    RAFT_CHECK(m.term != 0, "vote message without term: " + Describe(m));
  } else if (m.type != MessageType::kMsgProp && m.type != MessageType::kMsgReadIndex &&
             m.type != MessageType::kMsgTransferLeader) {
    // Proposals, forwarded reads and transfers are not bound to a term.
    m.term = term_;
  }
  if (msgs_.size() >= cfg_.max_outgoing_msgs) {
    ++dropped_msgs_;
    return;
  }
  msgs_.push_back(std::move(m));
}

ConfState Raft::conf_state() const { return ConfState{voters_, learners_}; }

bool Raft::IsVoter(uint64_t id) const { return Contains(voters_, id); }

bool Raft::Promotable() const { return IsVoter(id_) && !log_.HasPendingSnapshot(); }

void Raft::AddProgress(uint64_t id, bool learner) {
  auto it = prs_.find(id);
  if (it == prs_.end()) {
    it = prs_.emplace(id, Progress(cfg_.max_inflight_msgs)).first;
    it->second.next = log_.LastIndex() + 1;
    // A new member gets a grace period before CheckQuorum counts it as inactive.
    it->second.recent_active = true;
  }
  it->second.is_learner = learner;
  if (learner) {
    EraseSorted(&voters_, id);
    InsertSorted(&learners_, id);
  } else {
    EraseSorted(&learners_, id);
    InsertSorted(&voters_, id);
  }
}

void Raft::ResetProgressFromConf(const ConfState& cs) {
  prs_.clear();
  voters_.clear();
  learners_.clear();
  for (uint64_t id : cs.voters) AddProgress(id, false);
  for (uint64_t id : cs.learners) {
    RAFT_CHECK(!Contains(voters_, id), "node " + U(id) + " is both voter and learner");
    AddProgress(id, true);
  }
  if (auto it = prs_.find(id_); it != prs_.end()) it->second.match = log_.PersistedLastIndex();
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      cfg_.election_timeout_ticks +
      static_cast<int>(rng_.Uniform(static_cast<uint64_t>(cfg_.election_timeout_ticks)));
}

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  votes_.clear();
  for (auto& [id, pr] : prs_) {
    const bool learner = pr.is_learner;
    pr = Progress(cfg_.max_inflight_msgs);
    pr.is_learner = learner;
    pr.next = log_.LastIndex() + 1;
    if (id == id_) {
      pr.match = log_.PersistedLastIndex();
      pr.recent_active = true;
    }
  }
  pending_conf_index_ = 0;
  uncommitted_bytes_ = 0;
  uncommitted_.clear();
  ClearReads();
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
}

void Raft::BecomeCandidate() {
  RAFT_CHECK(state_ != StateType::kLeader, "leader cannot become candidate " + DescribeState());
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
}

void Raft::BecomePreCandidate() {
  RAFT_CHECK(state_ != StateType::kLeader, "leader cannot become pre-candidate " + DescribeState());
  // No term change and no vote: a PreVote round must leave no trace if it fails.
  votes_.clear();
  lead_ = kNone;
  state_ = StateType::kPreCandidate;
}

void Raft::BecomeLeader() {
  RAFT_CHECK(state_ != StateType::kFollower, "follower cannot become leader " + DescribeState());
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  Progress& self = prs_.at(id_);
  self.BecomeReplicate();
  self.match = log_.PersistedLastIndex();
  self.next = log_.LastIndex() + 1;
  // Any conf change in the uncommitted tail may still be pending: be conservative.
  pending_conf_index_ = log_.LastIndex();
  // The empty entry of the new term lets the leader commit (and so learn the commit index of)
  // everything before it (5.4.2); it bypasses the uncommitted-bytes limit.
  Entry empty;
  empty.term = term_;
  empty.index = log_.LastIndex() + 1;
  uncommitted_bytes_ += EntrySizeBytes(empty);
  uncommitted_.emplace_back(empty.index, EntrySizeBytes(empty));
  log_.Append({empty});
  self.next = log_.LastIndex() + 1;
}

bool Raft::HasUnappliedConfChange() const {
  if (log_.committed() <= log_.applied()) return false;
  std::vector<Entry> ents;
  const uint64_t lo = std::max(log_.applied() + 1, log_.FirstIndex());
  if (lo > log_.committed()) return false;
  Status s = log_.Slice(lo, log_.committed() + 1, kNoLimit, &ents);
  RAFT_CHECK(s.ok(), "unapplied entries unavailable: " + s.ToString());
  for (const Entry& e : ents) {
    if (e.type == EntryType::kConfChange) return true;
  }
  return false;
}

void Raft::Hup(bool transfer) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) return;
  // A committed but unapplied conf change could change who may vote: wait until applied.
  if (HasUnappliedConfChange()) return;
  Campaign(cfg_.pre_vote && !transfer, transfer);
}

void Raft::Campaign(bool pre_vote, bool transfer) {
  MessageType vote_type;
  uint64_t vote_term;
  if (pre_vote) {
    BecomePreCandidate();
    vote_type = MessageType::kMsgPreVote;
    vote_term = term_ + 1;  // the term we would campaign in; ours does not change
  } else {
    BecomeCandidate();
    vote_type = MessageType::kMsgVote;
    vote_term = term_;
  }
  if (Poll(id_, true) > 0) {
    // Single-voter cluster: won already.
    if (pre_vote) {
      Campaign(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  const uint64_t last_index = log_.LastIndex();
  const uint64_t last_term = log_.LastTerm();
  for (uint64_t id : voters_) {
    if (id == id_) continue;
    Message m;
    m.type = vote_type;
    m.to = id;
    m.term = vote_term;
    m.index = last_index;
    m.log_term = last_term;
    if (transfer) m.context = kCampaignTransfer;
    Send(std::move(m));
  }
}

int Raft::Poll(uint64_t id, bool granted) {
  if (!IsVoter(id)) return 0;
  votes_.emplace(id, granted);
  size_t yes = 0;
  size_t no = 0;
  for (const auto& [vid, v] : votes_) {
    if (!IsVoter(vid)) continue;
    (v ? yes : no) += 1;
  }
  if (yes >= Quorum()) return 1;
  if (no > voters_.size() - Quorum()) return -1;
  return 0;
}

bool Raft::AppendEntries(std::vector<Entry> entries) {
  uint64_t bytes = 0;
  for (const Entry& e : entries) bytes += EntrySizeBytes(e);
  // An entry larger than the limit is still accepted when nothing is outstanding, so that it
  // can ever be proposed.
  if (uncommitted_bytes_ > 0 && uncommitted_bytes_ + bytes > cfg_.max_uncommitted_entries_bytes) {
    return false;
  }
  uint64_t li = log_.LastIndex();
  for (Entry& e : entries) {
    e.term = term_;
    e.index = ++li;
    uncommitted_.emplace_back(e.index, EntrySizeBytes(e));
  }
  uncommitted_bytes_ += bytes;
  log_.Append(entries);
  prs_.at(id_).next = log_.LastIndex() + 1;
  return true;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.TermOrZero(log_.committed()) == term_;
}

bool Raft::MaybeCommit() {
  if (voters_.empty()) return false;
  std::vector<uint64_t> matches;
  matches.reserve(voters_.size());
  for (uint64_t id : voters_) matches.push_back(prs_.at(id).match);
  std::sort(matches.begin(), matches.end(), std::greater<uint64_t>());
  const uint64_t mci = matches[Quorum() - 1];
  if (mci <= log_.committed()) return false;
  // 5.4.2: only entries of the current term are committed by counting replicas.
  if (log_.TermOrZero(mci) != term_ && !cfg_.testing.commit_previous_term_by_counting) {
    return false;
  }
  const bool first_in_term = !CommittedEntryInCurrentTerm();
  log_.CommitTo(mci);
  // Only entries this leader appended count (the accounting restarts on election).
  while (!uncommitted_.empty() && uncommitted_.front().first <= log_.committed()) {
    uncommitted_bytes_ -= uncommitted_.front().second;
    uncommitted_.pop_front();
  }
  if (first_in_term && CommittedEntryInCurrentTerm()) ReleasePendingReads();
  return true;
}

// ---- sending ----------------------------------------------------------------------------------

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress& pr = prs_.at(to);
  if (pr.IsPaused()) return false;
  Message m;
  m.to = to;
  uint64_t term = 0;
  Status ts = log_.Term(pr.next - 1, &term);
  std::vector<Entry> ents;
  Status es = Status::Ok();
  if (ts.ok()) es = log_.Slice(pr.next, log_.LastIndex() + 1, cfg_.max_size_per_msg_bytes, &ents);
  if (ents.empty() && !send_if_empty && ts.ok() && es.ok()) return false;
  if (!ts.ok() || !es.ok()) {
    RAFT_CHECK(ts.code() != Code::kUnavailable,
               "next " + U(pr.next) + " for " + U(to) + " beyond " + log_.DescribeState());
    // The entries are compacted: send the snapshot instead.
    if (!pr.recent_active) return false;
    Snapshot snap;
    Status ss = log_.GetSnapshot(&snap);
    if (ss.code() == Code::kSnapshotTemporarilyUnavailable) return false;
    RAFT_CHECK(ss.ok(), "snapshot unavailable: " + ss.ToString());
    RAFT_CHECK(!snap.empty(), "log is compacted but there is no snapshot " + log_.DescribeState());
    m.type = MessageType::kMsgSnap;
    m.has_snapshot = true;
    pr.BecomeSnapshot(snap.metadata.index);
    m.snapshot = std::move(snap);
    Send(std::move(m));
    return true;
  }
  m.type = MessageType::kMsgApp;
  m.index = pr.next - 1;
  m.log_term = term;
  m.commit = log_.committed();
  if (!ents.empty()) {
    const uint64_t last = ents.back().index;
    if (pr.state == ProgressState::kReplicate) {
      pr.OptimisticUpdate(last);
      pr.inflights.Add(last);
    } else if (pr.state == ProgressState::kProbe) {
      pr.probe_sent = true;
    }
  } else if (pr.state == ProgressState::kProbe) {
    pr.probe_sent = true;
  }
  m.entries = std::move(ents);
  Send(std::move(m));
  return true;
}

void Raft::BcastAppend() {
  for (const auto& [id, pr] : prs_) {
    if (id != id_) MaybeSendAppend(id, true);
  }
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  // Never tell a follower to commit beyond what it is known to have.
  Message m;
  m.type = MessageType::kMsgHeartbeat;
  m.to = to;
  m.commit = std::min(prs_.at(to).match, log_.committed());
  m.context = ctx;
  Send(std::move(m));
}

void Raft::BcastHeartbeat() {
  const std::string ctx = read_round_ ? U(read_round_->seq) : std::string();
  for (const auto& [id, pr] : prs_) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Raft::SendTimeoutNow(uint64_t to) {
  Message m;
  m.type = MessageType::kMsgTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

bool Raft::QuorumActive() const {
  size_t active = 0;
  for (uint64_t id : voters_) {
    if (id == id_ || prs_.at(id).recent_active) ++active;
  }
  return active >= Quorum();
}

// ---- ticks ------------------------------------------------------------------------------------

void Raft::Tick() {
  if (state_ == StateType::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Message m;
    m.type = MessageType::kMsgHup;
    m.from = id_;
    (void)Step(m);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_timeout_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      Message m;
      m.type = MessageType::kMsgCheckQuorum;
      m.from = id_;
      (void)Step(m);
    }
    // A transfer that did not finish within an election timeout is aborted.
    if (state_ == StateType::kLeader && lead_transferee_ != kNone) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (heartbeat_elapsed_ >= cfg_.heartbeat_timeout_ticks) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.type = MessageType::kMsgBeat;
    m.from = id_;
    (void)Step(m);
  }
}

// ---- Step -------------------------------------------------------------------------------------

Status Raft::Step(const Message& m) {
  if (static_cast<int>(m.type) >= static_cast<int>(MessageType::kNumMessageTypes)) {
    return {Code::kInvalidArgument, "unknown message type"};
  }
  const bool is_vote = m.type == MessageType::kMsgVote || m.type == MessageType::kMsgPreVote;
  if (m.term == 0) {
    // Local message.
  } else if (m.term > term_) {
    if (is_vote) {
      const bool force = m.context == kCampaignTransfer;
      const bool in_lease =
          cfg_.check_quorum && lead_ != kNone && election_elapsed_ < cfg_.election_timeout_ticks;
      // Leader lease: while we hear from a leader, ignore disruptive vote requests.
      if (!force && in_lease) return Status::Ok();
    }
    if (m.type == MessageType::kMsgPreVote) {
      // A PreVote never changes our term.
    } else if (m.type == MessageType::kMsgPreVoteResp && !m.reject) {
      // A granted PreVote at a higher term: we bump our term only once a quorum agrees.
    } else if (m.type == MessageType::kMsgApp || m.type == MessageType::kMsgHeartbeat ||
               m.type == MessageType::kMsgSnap) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNone);
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MessageType::kMsgHeartbeat || m.type == MessageType::kMsgApp)) {
      // A stale leader (e.g. partitioned with a lower term) learns our term and steps down;
      // without this it could keep a follower of ours from ever electing (PreVote never
      // bumps terms).
      Message r;
      r.type = MessageType::kMsgAppResp;
      r.to = m.from;
      Send(std::move(r));
    } else if (m.type == MessageType::kMsgPreVote) {
      Message r;
      r.type = MessageType::kMsgPreVoteResp;
      r.to = m.from;
      r.term = term_;
      r.reject = true;
      Send(std::move(r));
    }
    return Status::Ok();
  }

  switch (m.type) {
    case MessageType::kMsgHup:
      Hup(false);
      return Status::Ok();
    case MessageType::kMsgVote:
    case MessageType::kMsgPreVote: {
      const bool can_vote =
          vote_ == m.from || (vote_ == kNone && lead_ == kNone) ||
          (m.type == MessageType::kMsgPreVote && m.term > term_) ||
          (cfg_.testing.grant_multiple_votes_per_term && m.type == MessageType::kMsgVote);
      Message r;
      r.type = VoteRespType(m.type);
      r.to = m.from;
      if (can_vote && log_.IsUpToDate(m.index, m.log_term)) {
        // 5.4.1: grant only to candidates whose log is at least as up to date as ours.
        r.term = m.term;
        Send(std::move(r));
        if (m.type == MessageType::kMsgVote) {
          election_elapsed_ = 0;
          vote_ = m.from;
        }
      } else {
        r.term = term_;
        r.reject = true;
        Send(std::move(r));
      }
      return Status::Ok();
    }
    default:
      break;
  }
  switch (state_) {
    case StateType::kLeader:
      return StepLeader(m);
    case StateType::kCandidate:
    case StateType::kPreCandidate:
      return StepCandidate(m);
    case StateType::kFollower:
      return StepFollower(m);
  }
  return Status::Ok();
}

Status Raft::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kMsgBeat:
      BcastHeartbeat();
      return Status::Ok();
    case MessageType::kMsgCheckQuorum:
      if (!QuorumActive()) {
        BecomeFollower(term_, kNone);
        return Status::Ok();
      }
      for (auto& [id, pr] : prs_) pr.recent_active = (id == id_);
      return Status::Ok();
    case MessageType::kMsgProp: {
      if (m.entries.empty()) return {Code::kInvalidArgument, "empty proposal"};
      if (prs_.find(id_) == prs_.end()) {
        return {Code::kProposalDropped, "leader is not a member of the configuration"};
      }
      if (lead_transferee_ != kNone) {
        return {Code::kProposalDropped, "leadership transfer in progress"};
      }
      for (const Entry& e : m.entries) {
        if (e.type != EntryType::kConfChange) continue;
        if (pending_conf_index_ > log_.applied()) {
          return {Code::kProposalDropped, "a conf change is already pending"};
        }
        ConfChange cc;
        if (!DecodeConfChange(e.data, &cc).ok()) {
          return {Code::kInvalidArgument, "malformed conf change"};
        }
        if (cc.type == ConfChangeType::kRemoveNode && voters_.size() == 1 && IsVoter(cc.node_id)) {
          return {Code::kProposalDropped, "cannot remove the last voter"};
        }
        if (cc.type == ConfChangeType::kAddLearnerNode && IsVoter(cc.node_id)) {
          return {Code::kProposalDropped, "cannot demote a voter to learner"};
        }
      }
      if (m.entries.size() > 1) {
        for (const Entry& e : m.entries) {
          if (e.type == EntryType::kConfChange) {
            return {Code::kInvalidArgument, "a conf change must be proposed alone"};
          }
        }
      }
      if (!AppendEntries(m.entries)) {
        return {Code::kResourceExhausted, "too many uncommitted entry bytes"};
      }
      if (m.entries.front().type == EntryType::kConfChange) pending_conf_index_ = log_.LastIndex();
      BcastAppend();
      return Status::Ok();
    }
    case MessageType::kMsgReadIndex:
      return HandleReadIndex(m);
    case MessageType::kMsgTransferLeader: {
      auto it = prs_.find(m.from);
      if (it == prs_.end()) return {Code::kPeerNotFound, "transferee " + U(m.from) + " unknown"};
      if (it->second.is_learner) return {Code::kInvalidArgument, "cannot transfer to a learner"};
      const uint64_t transferee = m.from;
      if (lead_transferee_ != kNone) {
        if (lead_transferee_ == transferee) return Status::Ok();
        AbortLeaderTransfer();
      }
      if (transferee == id_) return Status::Ok();
      election_elapsed_ = 0;  // the transfer must finish within one election timeout
      lead_transferee_ = transferee;
      if (it->second.match == log_.LastIndex()) {
        SendTimeoutNow(transferee);
      } else {
        MaybeSendAppend(transferee, true);
      }
      return Status::Ok();
    }
    default:
      break;
  }

  auto it = prs_.find(m.from);
  if (it == prs_.end()) return Status::Ok();  // a removed node: ignore
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::kMsgAppResp: {
      pr.recent_active = true;
      if (m.reject) {
        uint64_t next_probe = m.reject_hint;
        if (m.log_term > 0) {
          // Skip every entry of ours whose term is above the follower's term at the hint: they
          // cannot match, so the next probe lands on a plausible match point.
          next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
        }
        if (pr.MaybeDecrTo(m.index, next_probe)) {
          if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
          MaybeSendAppend(m.from, true);
        }
        return Status::Ok();
      }
      // An acknowledgement beyond our log cannot come from a correct follower: drop it.
      if (m.index > log_.LastIndex()) return {Code::kInvalidArgument, "ack beyond last index"};
      const bool old_paused = pr.IsPaused();
      if (!pr.MaybeUpdate(m.index)) return Status::Ok();
      if (pr.state == ProgressState::kProbe) {
        pr.BecomeReplicate();
      } else if (pr.state == ProgressState::kSnapshot && pr.match + 1 >= log_.FirstIndex()) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      } else if (pr.state == ProgressState::kReplicate) {
        pr.inflights.FreeLE(m.index);
      }
      if (MaybeCommit()) {
        BcastAppend();
      } else if (old_paused) {
        MaybeSendAppend(m.from, true);
      }
      // Fill the in-flight window.
      for (size_t k = 0; k < cfg_.max_inflight_msgs && MaybeSendAppend(m.from, false); ++k) {
      }
      if (m.from == lead_transferee_ && pr.match == log_.LastIndex()) SendTimeoutNow(m.from);
      return Status::Ok();
    }
    case MessageType::kMsgHeartbeatResp: {
      pr.recent_active = true;
      pr.probe_sent = false;
      if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirstOne();
      if (pr.match < log_.LastIndex()) MaybeSendAppend(m.from, true);
      if (read_round_ && !m.context.empty() && m.context == U(read_round_->seq) &&
          IsVoter(m.from)) {
        read_round_->acks.insert(m.from);
        if (read_round_->acks.size() >= Quorum()) {
          ReadRound done = std::move(*read_round_);
          read_round_.reset();
          for (const ReadRequest& req : done.requests) RespondRead(req, done.index);
          MaybeStartReadRound();
        }
      }
      return Status::Ok();
    }
    case MessageType::kMsgSnapStatus:
      if (pr.state != ProgressState::kSnapshot) return Status::Ok();
      if (m.reject) pr.pending_snapshot = 0;
      pr.BecomeProbe();
      // Wait for the follower's MsgAppResp (or a heartbeat response) before probing again.
      pr.probe_sent = true;
      return Status::Ok();
    case MessageType::kMsgUnreachable:
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

Status Raft::StepCandidate(const Message& m) {
  const MessageType my_resp =
      state_ == StateType::kPreCandidate ? MessageType::kMsgPreVoteResp : MessageType::kMsgVoteResp;
  switch (m.type) {
    case MessageType::kMsgProp:
      return {Code::kProposalDropped, "no leader"};
    case MessageType::kMsgReadIndex:
      return {Code::kProposalDropped, "no leader"};
    case MessageType::kMsgTransferLeader:
      return {Code::kProposalDropped, "no leader"};
    case MessageType::kMsgApp:
      BecomeFollower(m.term, m.from);
      HandleAppendEntries(m);
      return Status::Ok();
    case MessageType::kMsgHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return Status::Ok();
    case MessageType::kMsgSnap:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return Status::Ok();
    default:
      break;
  }
  if (m.type == my_resp) {
    const int result = Poll(m.from, !m.reject);
    if (result > 0) {
      if (state_ == StateType::kPreCandidate) {
        Campaign(false, false);
      } else {
        BecomeLeader();
        BcastAppend();
      }
    } else if (result < 0) {
      // Lost: wait for the next election timeout (or a leader) as a follower.
      BecomeFollower(term_, kNone);
    }
  }
  return Status::Ok();
}

Status Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kMsgProp: {
      if (lead_ == kNone) return {Code::kProposalDropped, "no leader"};
      Message f = m;
      f.to = lead_;
      Send(std::move(f));
      return Status::Ok();
    }
    case MessageType::kMsgApp:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppendEntries(m);
      return Status::Ok();
    case MessageType::kMsgHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      return Status::Ok();
    case MessageType::kMsgSnap:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshot(m);
      return Status::Ok();
    case MessageType::kMsgTransferLeader: {
      if (lead_ == kNone) return {Code::kProposalDropped, "no leader"};
      Message f = m;
      f.to = lead_;
      Send(std::move(f));
      return Status::Ok();
    }
    case MessageType::kMsgUnreachable:
      // The host lost its connection to the leader (e.g. the leader's process died). Campaign
      // after the plain election timeout instead of the randomized one (up to twice as long):
      // the random part only spreads out candidates of a leader that may still be alive, and
      // the other voters still refuse votes until their own election timeout has passed
      // without the leader (check quorum's lease; PreVote), so this removes a wait, not a
      // safeguard. Reset() restores a randomized timeout for the next term.
      if (lead_ != kNone && m.from == lead_) {
        randomized_election_timeout_ =
            std::min(randomized_election_timeout_, cfg_.election_timeout_ticks);
      }
      return Status::Ok();
    case MessageType::kMsgTimeoutNow:
      // The leader chose us: campaign at once, without PreVote, overriding leases.
      Hup(true);
      return Status::Ok();
    case MessageType::kMsgReadIndex: {
      if (lead_ == kNone) return {Code::kProposalDropped, "no leader"};
      Message f = m;
      f.to = lead_;
      Send(std::move(f));
      return Status::Ok();
    }
    case MessageType::kMsgReadIndexResp:
      if (read_states_.size() >= cfg_.max_pending_read_index) {
        return {Code::kResourceExhausted, "too many unread read states"};
      }
      read_states_.push_back(ReadState{m.index, m.context});
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

void Raft::HandleAppendEntries(const Message& m) {
  // A malformed MsgApp (entries not numbered index+1, index+2, ... or from a future term) is
  // dropped: network input must never reach an invariant check.
  for (size_t k = 0; k < m.entries.size(); ++k) {
    if (m.entries[k].index != m.index + 1 + k || m.entries[k].term > m.term) return;
  }
  Message r;
  r.type = MessageType::kMsgAppResp;
  r.to = m.from;
  if (m.index < log_.committed()) {
    r.index = log_.committed();
    Send(std::move(r));
    return;
  }
  if (auto last_new = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries)) {
    r.index = *last_new;
    Send(std::move(r));
    return;
  }
  // Fast rejection: point the leader at the last entry of ours that can possibly match.
  const uint64_t hint_index = std::min(m.index, log_.LastIndex());
  const auto [hi, ht] = log_.FindConflictByTerm(hint_index, m.log_term);
  r.index = m.index;
  r.reject = true;
  r.reject_hint = hi;
  r.log_term = ht;
  Send(std::move(r));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(std::min(m.commit, log_.LastIndex()));
  Message r;
  r.type = MessageType::kMsgHeartbeatResp;
  r.to = m.from;
  r.context = m.context;
  Send(std::move(r));
}

void Raft::HandleSnapshot(const Message& m) {
  Message r;
  r.type = MessageType::kMsgAppResp;
  r.to = m.from;
  if (m.has_snapshot && Restore(m.snapshot)) {
    r.index = log_.LastIndex();
  } else {
    r.index = log_.committed();
  }
  Send(std::move(r));
}

bool Raft::Restore(const Snapshot& s) {
  if (s.metadata.index <= log_.committed()) return false;
  RAFT_CHECK(state_ == StateType::kFollower, "restore in state " + DescribeState());
  // The snapshot's configuration may predate this node's addition (a joining node gets the
  // leader's latest snapshot and then the log after it, including its own AddNode). Until it
  // applies that entry the node is not promotable, so accepting it is safe.
  const ConfState& cs = s.metadata.conf_state;
  if (log_.MatchTerm(s.metadata.index, s.metadata.term)) {
    // We already have the entries: just fast-forward the commit index.
    log_.CommitTo(s.metadata.index);
    return false;
  }
  log_.Restore(s);
  ResetProgressFromConf(cs);
  return true;
}

// ---- ReadIndex --------------------------------------------------------------------------------

size_t Raft::PendingReadCount() const {
  return reads_waiting_commit_.size() + reads_next_batch_.size() +
         (read_round_ ? read_round_->requests.size() : 0);
}

void Raft::ClearReads() {
  reads_waiting_commit_.clear();
  reads_next_batch_.clear();
  read_round_.reset();
}

Status Raft::HandleReadIndex(const Message& m) {
  ReadRequest req{m.from == kNone ? id_ : m.from, m.context};
  if (voters_.size() == 1 && IsVoter(id_)) {
    if (CommittedEntryInCurrentTerm()) {
      RespondRead(req, log_.committed());
      return Status::Ok();
    }
  }
  if (PendingReadCount() >= cfg_.max_pending_read_index) {
    return {Code::kResourceExhausted, "too many pending read index requests"};
  }
  if (!CommittedEntryInCurrentTerm()) {
    // The commit index is not known to be current until an entry of this term commits.
    reads_waiting_commit_.push_back(std::move(req));
    return Status::Ok();
  }
  reads_next_batch_.push_back(std::move(req));
  MaybeStartReadRound();
  return Status::Ok();
}

void Raft::RespondRead(const ReadRequest& req, uint64_t index) {
  if (req.from == id_) {
    read_states_.push_back(ReadState{index, req.ctx});
    return;
  }
  Message r;
  r.type = MessageType::kMsgReadIndexResp;
  r.to = req.from;
  r.index = index;
  r.context = req.ctx;
  Send(std::move(r));
}

void Raft::MaybeStartReadRound() {
  if (read_round_ || reads_next_batch_.empty()) return;
  if (voters_.size() == 1 && IsVoter(id_)) {
    for (const ReadRequest& req : reads_next_batch_) RespondRead(req, log_.committed());
    reads_next_batch_.clear();
    return;
  }
  ReadRound round;
  round.seq = ++read_round_seq_;
  round.index = log_.committed();
  round.requests = std::move(reads_next_batch_);
  reads_next_batch_.clear();
  round.acks.insert(id_);
  read_round_ = std::move(round);
  BcastHeartbeat();
}

void Raft::ReleasePendingReads() {
  for (ReadRequest& r : reads_waiting_commit_) reads_next_batch_.push_back(std::move(r));
  reads_waiting_commit_.clear();
  MaybeStartReadRound();
}

// ---- persistence and membership ----------------------------------------------------------------

void Raft::OnPersisted(uint64_t index, uint64_t term) {
  log_.StableTo(index, term);
  if (state_ != StateType::kLeader) return;
  auto it = prs_.find(id_);
  if (it == prs_.end()) return;
  // The leader counts itself toward a quorum only for entries it has made durable, so it may
  // send MsgApp before persisting its own entries.
  if (it->second.MaybeUpdate(log_.PersistedLastIndex())) {
    it->second.next = log_.LastIndex() + 1;
    if (MaybeCommit()) BcastAppend();
  }
}

void Raft::OnSnapshotPersisted(uint64_t index) { log_.StableSnapTo(index); }

void Raft::OnApplied(uint64_t index) { log_.AppliedTo(index); }

ConfState Raft::ApplyConfChange(const ConfChange& cc) {
  switch (cc.type) {
    case ConfChangeType::kAddNode:
      AddProgress(cc.node_id, false);
      break;
    case ConfChangeType::kAddLearnerNode:
      // A voter is never demoted by AddLearner (rejected at proposal; ignored here).
      if (!IsVoter(cc.node_id)) AddProgress(cc.node_id, true);
      break;
    case ConfChangeType::kRemoveNode:
      if (voters_.size() == 1 && IsVoter(cc.node_id)) break;  // never remove the last voter
      prs_.erase(cc.node_id);
      EraseSorted(&voters_, cc.node_id);
      EraseSorted(&learners_, cc.node_id);
      votes_.erase(cc.node_id);
      if (lead_transferee_ == cc.node_id) AbortLeaderTransfer();
      break;
  }
  if (state_ == StateType::kLeader) {
    if (!IsVoter(id_)) {
      // Removed (or never a voter): step down; the remaining voters elect a new leader.
      BecomeFollower(term_, kNone);
    } else if (MaybeCommit() || cc.type != ConfChangeType::kRemoveNode) {
      // Also start replicating to a node that was just added.
      BcastAppend();
    } else if (read_round_ && read_round_->acks.size() >= Quorum()) {
      ReadRound done = std::move(*read_round_);
      read_round_.reset();
      for (const ReadRequest& req : done.requests) RespondRead(req, done.index);
      MaybeStartReadRound();
    }
  }
  return conf_state();
}

// ---- introspection ----------------------------------------------------------------------------

std::string Raft::DescribeState() const {
  std::string s = "raft{id=" + U(id_) + " " + StateName(state_) + " term=" + U(term_) +
                  " vote=" + U(vote_) + " lead=" + U(lead_) + " " + log_.DescribeState() + " " +
                  Describe(conf_state());
  if (state_ == StateType::kLeader) {
    for (const auto& [id, pr] : prs_) s += " pr" + U(id) + "{" + pr.ToString() + "}";
  }
  return s + "}";
}

void Raft::CheckInvariants() const {
  log_.CheckInvariants();
  RAFT_CHECK(vote_ == kNone || term_ > 0, "vote without term " + DescribeState());
  RAFT_CHECK(log_.LastTerm() <= term_, "log term above current term " + DescribeState());
  for (size_t i = 1; i < voters_.size(); ++i) {
    RAFT_CHECK(voters_[i - 1] < voters_[i], "voters not sorted " + DescribeState());
  }
  for (uint64_t id : learners_) {
    RAFT_CHECK(!IsVoter(id), "learner is a voter " + DescribeState());
  }
  RAFT_CHECK(prs_.size() == voters_.size() + learners_.size(),
             "progress map size " + DescribeState());
  switch (state_) {
    case StateType::kLeader:
      RAFT_CHECK(lead_ == id_, "leader does not lead itself " + DescribeState());
      // The leader appended an entry of its term on election and never truncates.
      RAFT_CHECK(log_.LastTerm() == term_,
                 "leader's last entry not of its term " + DescribeState());
      for (const auto& [id, pr] : prs_) {
        RAFT_CHECK(pr.match < pr.next, "match >= next for " + U(id) + " " + DescribeState());
        RAFT_CHECK(pr.next <= log_.LastIndex() + 1,
                   "next beyond last for " + U(id) + " " + DescribeState());
        RAFT_CHECK(pr.inflights.Count() <= cfg_.max_inflight_msgs, "inflights over limit");
      }
      RAFT_CHECK(PendingReadCount() <= cfg_.max_pending_read_index, "read queue over limit");
      break;
    case StateType::kCandidate:
      RAFT_CHECK(vote_ == id_ || cfg_.testing.grant_multiple_votes_per_term,
                 "candidate did not vote for itself " + DescribeState());
      RAFT_CHECK(lead_ == kNone, "candidate with a leader " + DescribeState());
      break;
    case StateType::kPreCandidate:
      RAFT_CHECK(lead_ == kNone, "pre-candidate with a leader " + DescribeState());
      break;
    case StateType::kFollower:
      RAFT_CHECK(lead_ != id_, "follower believes it leads " + DescribeState());
      RAFT_CHECK(lead_transferee_ == kNone, "follower transferring " + DescribeState());
      break;
  }
  RAFT_CHECK(msgs_.size() <= cfg_.max_outgoing_msgs, "outgoing queue over limit");
}

NodeStatus Raft::GetStatus() const {
  NodeStatus st;
  st.id = id_;
  st.hard_state = hard_state();
  st.soft_state = soft_state();
  st.applied = log_.applied();
  st.last_index = log_.LastIndex();
  st.lead_transferee = lead_transferee_;
  st.conf_state = conf_state();
  if (state_ == StateType::kLeader) {
    for (const auto& [id, pr] : prs_) {
      st.progress[id] =
          ProgressStatus{pr.match, pr.next, pr.state, pr.is_learner, pr.inflights.Count()};
    }
  }
  return st;
}

}  // namespace raft
