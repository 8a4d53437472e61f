// raft::Raft: the protocol state machine (election, replication, snapshots, ReadIndex,
// leadership transfer, single-server membership changes). Hosts use RawNode (raw_node.h),
// which wraps this class; tests may use it directly. Deterministic: every decision depends
// only on the calls made, the Storage contents and Config::seed. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "raft/log.h"
#include "raft/progress.h"
#include "raft/rand.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raft {

// Switches that deliberately break one Raft rule, so tests can prove that the simulator's
// checkers detect the violation. Never set outside tests.
struct TestingKnobs {
  // Grant a vote to any up-to-date candidate, even after voting for another in the same term.
  bool grant_multiple_votes_per_term = false;
  // Commit any index replicated on a quorum, even of an earlier term (the Figure 8 bug).
  bool commit_previous_term_by_counting = false;
};

struct Config {
  uint64_t id = kNone;  // this node's id, != kNone
  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_timeout_ticks, 2 * election_timeout_ticks) campaigns.
  int election_timeout_ticks = 10;
  // A leader sends heartbeats every heartbeat_timeout_ticks (< election_timeout_ticks).
  int heartbeat_timeout_ticks = 1;
  // Campaign with a PreVote round first (thesis 9.6) so that a partitioned node rejoining
  // cannot disrupt the cluster with an inflated term.
  bool pre_vote = true;
  // A leader steps down when it has not heard from a quorum for an election timeout, and
  // followers ignore vote requests while they hear from a leader (leader lease).
  bool check_quorum = true;
  // Upper bound on the entry bytes (EntrySizeBytes) of one MsgApp (always >= 1 entry).
  uint64_t max_size_per_msg_bytes = 1 << 20;
  // Upper bound on MsgApps in flight to one follower in replicate state.
  size_t max_inflight_msgs = 256;
  // Upper bound on the payload bytes of entries appended by this leader and not yet committed;
  // proposals beyond it fail with kResourceExhausted.
  uint64_t max_uncommitted_entries_bytes = 64ull << 20;
  // Upper bound on the bytes of committed entries in one Ready (always >= 1 entry).
  uint64_t max_committed_size_per_ready_bytes = 64ull << 20;
  // Upper bound on ReadIndex requests queued at a leader (waiting for the first commit of its
  // term or for a heartbeat round); further requests fail with kResourceExhausted.
  size_t max_pending_read_index = 4096;
  // Upper bound on messages queued for the next Ready; further messages are dropped (the
  // network may drop messages anyway, Raft retries).
  size_t max_outgoing_msgs = 65536;
  // Seeds the randomized election timeout generator (mixed with id).
  uint64_t seed = 0;
  // The log; must outlive the node. Required.
  Storage* storage = nullptr;
  // The last index already applied by the application (on restart); 0 for a fresh node.
  uint64_t applied = 0;
  TestingKnobs testing;

  // Errors: kInvalidArgument with the reason.
  Status Validate() const;
};

struct ProgressStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  bool is_learner = false;
  size_t inflight = 0;
};

struct NodeStatus {
  uint64_t id = kNone;
  HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t lead_transferee = kNone;
  ConfState conf_state;
  std::map<uint64_t, ProgressStatus> progress;  // leader only
};

class Raft {
 public:
  // Precondition: cfg.Validate() is ok (checked).
  explicit Raft(const Config& cfg);

  void Tick();
  // Errors: kProposalDropped, kResourceExhausted, kPeerNotFound, kStepLocalMsg.
  Status Step(const Message& m);

  // Applies a committed conf change entry (after the application applied it) and returns the
  // new configuration. A leader that removed itself steps down.
  ConfState ApplyConfChange(const ConfChange& cc);

  // Persistence / application acknowledgements from RawNode::Advance().
  void OnPersisted(uint64_t index, uint64_t term);
  void OnSnapshotPersisted(uint64_t index);
  void OnApplied(uint64_t index);

  void CheckInvariants() const;
  std::string DescribeState() const;

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  StateType state() const { return state_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  SoftState soft_state() const { return {lead_, state_}; }
  ConfState conf_state() const;
  const RaftLog& log() const { return log_; }
  RaftLog& mutable_log() { return log_; }
  const std::map<uint64_t, Progress>& progress() const { return prs_; }
  std::vector<Message>& msgs() { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }
  bool HasPendingMsgsOrReads() const { return !msgs_.empty() || !read_states_.empty(); }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  NodeStatus GetStatus() const;
  // Count of messages dropped because the outgoing queue was full.
  uint64_t dropped_msgs() const { return dropped_msgs_; }

 private:
  struct ReadRequest {
    uint64_t from = kNone;  // requesting node (this node for local requests)
    std::string ctx;
  };
  struct ReadRound {
    uint64_t seq = 0;
    uint64_t index = 0;  // commit index when the round started
    std::vector<ReadRequest> requests;
    std::set<uint64_t> acks;
  };

  void Send(Message m);
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();
  void Reset(uint64_t term);
  void ResetRandomizedElectionTimeout();
  bool Promotable() const;
  bool IsVoter(uint64_t id) const;
  bool HasUnappliedConfChange() const;
  void Hup(bool transfer);
  void Campaign(bool pre_vote, bool transfer);
  // Records a vote; returns +1 won, -1 lost, 0 pending.
  int Poll(uint64_t id, bool granted);
  size_t Quorum() const { return voters_.size() / 2 + 1; }
  bool AppendEntries(std::vector<Entry> entries);
  bool MaybeCommit();
  bool CommittedEntryInCurrentTerm() const;
  void BcastAppend();
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  void BcastHeartbeat();
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer() { lead_transferee_ = kNone; }
  bool QuorumActive() const;
  void TickElection();
  void TickHeartbeat();

  Status StepLeader(const Message& m);
  Status StepCandidate(const Message& m);
  Status StepFollower(const Message& m);
  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool Restore(const Snapshot& s);
  void ResetProgressFromConf(const ConfState& cs);
  void AddProgress(uint64_t id, bool learner);

  // ReadIndex (leader side).
  Status HandleReadIndex(const Message& m);
  void RespondRead(const ReadRequest& req, uint64_t index);
  void MaybeStartReadRound();
  void ReleasePendingReads();
  size_t PendingReadCount() const;
  void ClearReads();

  Config cfg_;
  uint64_t id_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t lead_ = kNone;
  StateType state_ = StateType::kFollower;
  RaftLog log_;
  std::map<uint64_t, Progress> prs_;
  std::vector<uint64_t> voters_;    // sorted
  std::vector<uint64_t> learners_;  // sorted
  std::map<uint64_t, bool> votes_;
  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  uint64_t lead_transferee_ = kNone;
  // Index of the latest conf change appended by this leader; a new one may be proposed only
  // after it is applied (one pending change at a time).
  uint64_t pending_conf_index_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  // (index, bytes) of the entries this leader appended and has not yet seen committed; bounded
  // by max_uncommitted_entries_bytes (every entry counts at least its fixed overhead).
  std::deque<std::pair<uint64_t, uint64_t>> uncommitted_;
  Rng rng_;
  uint64_t dropped_msgs_ = 0;

  std::vector<ReadRequest> reads_waiting_commit_;  // before the first commit of the term
  std::vector<ReadRequest> reads_next_batch_;      // wait for the next heartbeat round
  std::optional<ReadRound> read_round_;            // the round in flight
  uint64_t read_round_seq_ = 0;
};

}  // namespace raft
