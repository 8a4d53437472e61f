// One test per safety and liveness claim of the Raft paper (In Search of an Understandable
// Consensus Algorithm, extended version) and of Ongaro's thesis for the extensions (3.10
// leadership transfer, 6.4 ReadIndex, 9.6 PreVote), plus the library's limits.
#include <catch2/catch.hpp>

#include "tests/raft/harness.h"

namespace raft_test {
namespace {

using raft::MessageType;
using raft::StateType;

std::vector<uint64_t> Ids(uint64_t n) {
  std::vector<uint64_t> v;
  for (uint64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

Cluster::ConfigTweak NoPreVote() {
  return [](raft::Config* c) {
    c->pre_vote = false;
    c->check_quorum = false;
  };
}

// Number of nodes that believe they lead term `term`.
int LeadersOfTerm(Cluster& c, uint64_t term) {
  int n = 0;
  for (uint64_t id : c.ids()) {
    if (c.raft(id).state() == StateType::kLeader && c.raft(id).term() == term) ++n;
  }
  return n;
}

uint64_t TermAt(Cluster& c, uint64_t id, uint64_t index) {
  return c.raft(id).log().TermOrZero(index);
}

// State machine safety over the nodes' logs: committed entries agree at every index.
bool CommittedLogsAgree(Cluster& c) {
  for (uint64_t a : c.ids()) {
    for (uint64_t b : c.ids()) {
      const uint64_t hi = std::min(c.raft(a).log().committed(), c.raft(b).log().committed());
      const uint64_t lo = std::max(c.raft(a).log().FirstIndex(), c.raft(b).log().FirstIndex());
      for (uint64_t i = lo; i <= hi; ++i) {
        if (TermAt(c, a, i) != TermAt(c, b, i)) return false;
      }
    }
  }
  return true;
}

size_t CountType(const std::vector<std::string>& trace, const std::string& needle) {
  size_t n = 0;
  for (const std::string& l : trace) n += l.find(needle) != std::string::npos ? 1u : 0u;
  return n;
}

}  // namespace

// Goal: two simultaneous candidates never both win the same term, whatever the delivery order.
TEST_CASE("5.2 election safety: at most one leader per term", "[raft][paper]") {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Cluster c(Ids(5), NoPreVote(), seed);
    (void)c.raw(1).Campaign();
    (void)c.raw(2).Campaign();
    (void)c.raw(3).Campaign();
    // Deliver in an order that depends on the seed: node by node.
    for (int round = 0; round < 20; ++round) {
      c.DeliverTo(1 + (seed + static_cast<uint64_t>(round)) % 5);
      for (uint64_t id : c.ids()) REQUIRE(LeadersOfTerm(c, c.raft(id).term()) <= 1);
    }
    c.Stabilize();
    for (uint64_t id : c.ids()) REQUIRE(LeadersOfTerm(c, c.raft(id).term()) <= 1);
  }
}

// Goal: a follower that hears from no leader for its randomized election timeout campaigns and
// wins with a majority; the timeout lies in [election, 2 * election).
TEST_CASE("5.2 leader election: a silent leader is replaced after an election timeout",
          "[raft][paper]") {
  Cluster c(Ids(3), [](raft::Config* cfg) { cfg->check_quorum = false; });
  c.Elect(1);
  REQUIRE(c.raft(1).state() == StateType::kLeader);
  const int timeout = c.raft(2).randomized_election_timeout();
  REQUIRE(timeout >= 10);
  REQUIRE(timeout < 20);
  c.Isolate(1);
  c.Tick(2, timeout - 1);
  REQUIRE(c.raft(2).state() == StateType::kFollower);
  c.Tick(2, 1);
  REQUIRE(c.raft(2).state() != StateType::kFollower);
  c.Stabilize();
  REQUIRE(c.raft(2).state() == StateType::kLeader);
  REQUIRE(c.raft(2).term() == c.raft(3).term());
}

// Goal: a follower told that its leader is unreachable campaigns after the plain election
// timeout (not the randomized one) and wins; word about another node changes nothing.
TEST_CASE(
    "leader election: a follower that lost its leader's connection does not wait longer "
    "than the election timeout",
    "[raft][paper]") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    // Without check quorum node 3 grants its vote at once (with it, only after its own election
    // timeout without the leader, which the lease rule covers elsewhere).
    Cluster c(
        Ids(3), [](raft::Config* cfg) { cfg->check_quorum = false; }, seed);
    c.Elect(1);
    REQUIRE(c.raft(1).state() == StateType::kLeader);
    const int randomized = c.raft(2).randomized_election_timeout();
    c.raw(2).ReportUnreachable(3);  // not its leader
    REQUIRE(c.raft(2).randomized_election_timeout() == randomized);
    c.raw(2).ReportUnreachable(1);
    REQUIRE(c.raft(2).randomized_election_timeout() == 10);
    c.Isolate(1);
    c.Tick(2, 9);
    REQUIRE(c.raft(2).state() == StateType::kFollower);
    c.Tick(2, 1);
    REQUIRE(c.raft(2).state() != StateType::kFollower);
    c.Stabilize();
    REQUIRE(c.raft(2).state() == StateType::kLeader);
    // The next term gets a randomized timeout again.
    REQUIRE(c.raft(3).randomized_election_timeout() >= 10);
    REQUIRE(c.raft(3).randomized_election_timeout() < 20);
  }
}

// Goal: a follower's conflicting suffix (from an old leader) is replaced by the new leader's
// log, after which the logs are identical (5.3 log matching).
TEST_CASE("5.3 log matching: conflicting entries are overwritten by the leader", "[raft][paper]") {
  Cluster c(Ids(3), NoPreVote());
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 5; ++i) REQUIRE(c.raw(1).Propose("stale" + std::to_string(i)).ok());
  c.Stabilize();
  c.DropQueued();
  c.Heal();
  c.Isolate(1);
  c.Elect(2);
  REQUIRE(c.raft(2).state() == StateType::kLeader);
  REQUIRE(c.raw(2).Propose("fresh").ok());
  c.Stabilize();
  c.Heal();
  c.Tick(2, 1);  // heartbeat: node 1 steps down and gets repaired
  c.Stabilize();
  REQUIRE(c.raft(1).log().LastIndex() == c.raft(2).log().LastIndex());
  for (uint64_t i = 1; i <= c.raft(2).log().LastIndex(); ++i) {
    REQUIRE(TermAt(c, 1, i) == TermAt(c, 2, i));
  }
  REQUIRE(c.CheckAll().empty());
  REQUIRE(c.node(1).applied == c.node(2).applied);
}

// Goal: with the fast rejection hint (index + term), a follower with a long divergent suffix is
// repaired in a few round trips, not one per entry.
TEST_CASE("5.3 fast rejection hints repair a diverged follower in few round trips",
          "[raft][paper]") {
  Cluster c(Ids(3), NoPreVote());
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 50; ++i) REQUIRE(c.raw(1).Propose("stale").ok());
  c.Stabilize();
  c.DropQueued();
  c.Heal();
  c.Isolate(1);
  c.Elect(2);
  for (int i = 0; i < 20; ++i) REQUIRE(c.raw(2).Propose("new").ok());
  c.Stabilize();
  c.Heal();
  c.Tick(2, 1);
  const std::vector<std::string> trace = c.Stabilize();
  const size_t rejections = CountType(trace, "2->1 MsgApp");  // sanity: there was traffic
  REQUIRE(rejections > 0);
  REQUIRE(CountType(trace, "Rejected") <= 3);
  REQUIRE(c.raft(1).log().LastIndex() == c.raft(2).log().LastIndex());
  REQUIRE(c.CheckAll().empty());
}

// Goal: a candidate whose log is behind a majority's cannot be elected (5.4.1).
TEST_CASE("5.4.1 election restriction: a stale candidate cannot win", "[raft][paper]") {
  Cluster c(Ids(3), NoPreVote());
  c.Elect(1);
  c.Isolate(3);
  REQUIRE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  c.Heal();
  c.DropQueued();
  for (int attempt = 0; attempt < 3; ++attempt) {
    (void)c.raw(3).Campaign();
    c.Stabilize();
    REQUIRE(c.raft(3).state() != StateType::kLeader);
  }
  // The up-to-date node can still win.
  c.Elect(2);
  REQUIRE(c.raft(2).state() == StateType::kLeader);
}

namespace {

// The Figure 8 scenario. Returns whether node 1 committed its term-2 entry by counting
// replicas in term 4, and whether committed logs agree at the end.
struct Figure8 {
  bool committed_old_term_entry = false;
  bool logs_agree = true;
};

Figure8 RunFigure8(bool broken) {
  Cluster c(Ids(5), [broken](raft::Config* cfg) {
    cfg->pre_vote = false;
    cfg->check_quorum = false;
    cfg->max_size_per_msg_bytes = 1;  // one entry per MsgApp
    cfg->testing.commit_previous_term_by_counting = broken;
  });
  // (a) S1 leads term 2 and replicates entry 7 (term 2) to S2 only.
  c.Elect(1);
  REQUIRE(c.raft(1).term() == 2);
  for (uint64_t id : {3u, 4u, 5u}) c.Isolate(id);
  REQUIRE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  const uint64_t idx = c.raft(1).log().LastIndex();
  REQUIRE(TermAt(c, 2, idx) == 2);
  // (b) S1 crashes; S5 wins term 3 with S3 and S4 and appends entry idx (term 3) locally only.
  c.Heal();
  c.Isolate(1);
  c.filter = [](const raft::Message& m) {
    return !(m.from == 5 && m.type == MessageType::kMsgApp);
  };
  (void)c.raw(5).Campaign();
  c.Stabilize();
  REQUIRE(c.raft(5).state() == StateType::kLeader);
  REQUIRE(c.raft(5).term() == 3);
  REQUIRE(TermAt(c, 5, idx) == 3);
  // (c) S5 crashes; S1 wins term 4 and replicates its term-2 entry to S3 (a majority: S1, S2,
  // S3) but not its term-4 entry.
  c.Heal();
  c.Isolate(5);
  c.Restart(1);
  c.filter = [](const raft::Message& m) {
    return m.type != MessageType::kMsgApp || m.from != 1 || m.to == 3 || m.to == 2;
  };
  c.mutate = [](raft::Message* m) {
    while (!m->entries.empty() && m->entries.back().term == 4) m->entries.pop_back();
  };
  for (int attempt = 0; attempt < 3 && c.raft(1).state() != StateType::kLeader; ++attempt) {
    (void)c.raw(1).Campaign();
    c.Stabilize();
  }
  REQUIRE(c.raft(1).state() == StateType::kLeader);
  REQUIRE(c.raft(1).term() == 4);
  REQUIRE(TermAt(c, 3, idx) == 2);
  Figure8 out;
  out.committed_old_term_entry = c.raft(1).log().committed() >= idx;
  // (d) S1 crashes; S5 wins term 5 (its last term 3 beats the others' 2) and overwrites idx.
  c.filter = nullptr;
  c.mutate = nullptr;
  c.DropQueued();
  c.Heal();
  c.Isolate(1);
  c.Restart(5);
  for (int attempt = 0; attempt < 3 && c.raft(5).state() != StateType::kLeader; ++attempt) {
    (void)c.raw(5).Campaign();
    c.Stabilize();
  }
  REQUIRE(c.raft(5).state() == StateType::kLeader);
  REQUIRE(c.raw(5).Propose("y").ok());
  c.Stabilize();
  out.logs_agree = CommittedLogsAgree(c);
  return out;
}

}  // namespace

// Goal: the Figure 8 scenario: an entry of an earlier term replicated on a majority is not
// committed by counting; committing it (the broken knob) loses a committed entry.
TEST_CASE("5.4.2 commit only current-term entries by counting (Figure 8)", "[raft][paper]") {
  const Figure8 correct = RunFigure8(false);
  REQUIRE_FALSE(correct.committed_old_term_entry);
  REQUIRE(correct.logs_agree);
  const Figure8 broken = RunFigure8(true);
  REQUIRE(broken.committed_old_term_entry);
  REQUIRE_FALSE(broken.logs_agree);  // the checker sees the lost committed entry
}

// Goal: every node applies the same command at each index, across leader changes (5.4.3).
TEST_CASE("5.4.3 state machine safety: same command applied at each index", "[raft][paper]") {
  Cluster c(Ids(5), NoPreVote());
  for (uint64_t round = 0; round < 5; ++round) {
    const uint64_t leader = 1 + round % 5;
    c.Elect(leader);
    REQUIRE(c.raft(leader).state() == StateType::kLeader);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(c.raw(leader).Propose("r" + std::to_string(round) + "-" + std::to_string(i)).ok());
    }
    c.Isolate(1 + (round + 2) % 5);  // one node misses this round
    c.Stabilize();
    c.Heal();
    REQUIRE(CommittedLogsAgree(c));
  }
  c.Tick(5, 1);
  c.Stabilize();
  for (uint64_t id : c.ids()) REQUIRE(c.node(id).applied == c.node(5).applied);
  REQUIRE(c.node(5).applied.size() == 15);
}

// Goal: duplicated and reordered AppendEntries are harmless (5.5: RPCs are idempotent).
TEST_CASE("5.5 retried RPCs are idempotent", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  REQUIRE(c.raw(1).Propose("a").ok());
  c.ProcessReadies();
  std::vector<raft::Message> copy = c.queue();
  c.Stabilize();
  for (const raft::Message& m : copy) c.queue().push_back(m);  // deliver everything again
  c.Stabilize();
  REQUIRE(c.CheckAll().empty());
  for (uint64_t id : c.ids()) REQUIRE(c.node(id).applied == std::vector<std::string>{"a"});
}

// Goal: a node added by a conf change catches up from the log and then counts for quorum.
TEST_CASE("6 membership change: an added node catches up and counts for quorum", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  REQUIRE(c.raw(1).Propose("before").ok());
  c.Stabilize();
  c.AddEmptyNode(4);
  REQUIRE(c.raw(1).ProposeConfChange({raft::ConfChangeType::kAddNode, 4, ""}).ok());
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.raft(1).conf_state().voters == std::vector<uint64_t>{1, 2, 3, 4});
  REQUIRE(c.raft(4).conf_state().voters == std::vector<uint64_t>{1, 2, 3, 4});
  REQUIRE(c.node(4).applied == std::vector<std::string>{"before"});
  // With 4 voters the quorum is 3: two nodes down block commits, the new node unblocks them.
  c.Isolate(2);
  c.Isolate(4);
  REQUIRE(c.raw(1).Propose("blocked").ok());
  c.Stabilize();
  REQUIRE(c.node(1).applied.size() == 1);
  c.Heal();
  c.Isolate(2);
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.node(1).applied.size() == 2);
}

// Goal: only one conf change may be pending; the next is accepted once the first is applied.
TEST_CASE("6 membership change: one pending change at a time", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  c.AddEmptyNode(4);
  c.AddEmptyNode(5);
  REQUIRE(c.raw(1).ProposeConfChange({raft::ConfChangeType::kAddLearnerNode, 4, ""}).ok());
  const raft::Status second =
      c.raw(1).ProposeConfChange({raft::ConfChangeType::kAddLearnerNode, 5, ""});
  REQUIRE(second.code() == raft::Code::kProposalDropped);
  c.Stabilize();
  REQUIRE(c.raw(1).ProposeConfChange({raft::ConfChangeType::kAddLearnerNode, 5, ""}).ok());
  c.Stabilize();
  REQUIRE(c.raft(1).conf_state().learners == std::vector<uint64_t>{4, 5});
}

// Goal: learners receive the log but neither vote nor count for commit; promotion makes them
// voters.
TEST_CASE("6 membership change: learners do not count until promoted", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  c.AddEmptyNode(4);
  REQUIRE(c.raw(1).ProposeConfChange({raft::ConfChangeType::kAddLearnerNode, 4, ""}).ok());
  c.Stabilize();
  REQUIRE(c.raw(1).Propose("x").ok());
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.node(4).applied == std::vector<std::string>{"x"});
  // 1 + learner 4 is not a quorum of {1,2,3}.
  c.Isolate(2);
  c.Isolate(3);
  REQUIRE(c.raw(1).Propose("y").ok());
  c.Stabilize();
  REQUIRE(c.node(1).applied.size() == 1);
  // A learner never campaigns.
  c.Tick(4, 100);
  REQUIRE(c.raft(4).state() == StateType::kFollower);
  c.Heal();
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.raw(1).ProposeConfChange({raft::ConfChangeType::kAddNode, 4, ""}).ok());
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.raft(1).conf_state().voters == std::vector<uint64_t>{1, 2, 3, 4});
  REQUIRE(c.raft(1).conf_state().learners.empty());
}

// Goal: removing the leader is safe: it steps down once the change is applied, and the others
// elect a new leader that keeps committing.
TEST_CASE("6 membership change: a removed leader steps down after the change commits",
          "[raft][paper]") {
  Cluster c(Ids(3), NoPreVote());
  c.Elect(1);
  REQUIRE(c.raw(1).ProposeConfChange({raft::ConfChangeType::kRemoveNode, 1, ""}).ok());
  c.Stabilize();
  REQUIRE(c.raft(1).state() == StateType::kFollower);
  REQUIRE(c.raft(2).conf_state().voters == std::vector<uint64_t>{2, 3});
  c.Isolate(1);
  c.Elect(2);
  REQUIRE(c.raft(2).state() == StateType::kLeader);
  REQUIRE(c.raw(2).Propose("after").ok());
  c.Stabilize();
  REQUIRE(c.node(3).applied == std::vector<std::string>{"after"});
  // The removed node never campaigns again.
  c.Tick(1, 100);
  REQUIRE(c.raft(1).state() == StateType::kFollower);
}

// Goal: a follower whose next entry was compacted away receives a snapshot and then the rest
// of the log (7 log compaction).
TEST_CASE("7 log compaction: a lagging follower catches up through a snapshot", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) REQUIRE(c.raw(1).Propose("v" + std::to_string(i)).ok());
  c.Stabilize();
  c.CompactTo(1, c.node(1).applied_index);
  REQUIRE(c.raft(1).log().FirstIndex() > c.raft(3).log().LastIndex() + 1);
  c.Heal();
  REQUIRE(c.raw(1).Propose("after").ok());
  c.Tick(1, 1);
  const std::vector<std::string> trace = c.Stabilize();
  REQUIRE(CountType(trace, "MsgSnap") == 1);
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.node(3).applied == c.node(1).applied);
  REQUIRE(c.node(3).applied.size() == 11);
}

// Goal: ReadIndex answers only after the leader committed an entry of its term and a quorum
// confirmed its leadership by acking a heartbeat sent after the request (8 / thesis 6.4).
TEST_CASE("8 read-only queries: ReadIndex waits for a current-term commit and a quorum",
          "[raft][paper]") {
  Cluster c(Ids(3));
  (void)c.raw(1).Campaign();
  // Deliver the votes but hold back the appends: nothing of term 2 is committed yet.
  for (int i = 0; i < 4; ++i) {
    c.DeliverTo(2);
    c.DeliverTo(3);
    c.DeliverTo(1);
    if (c.raft(1).state() == StateType::kLeader) break;
  }
  REQUIRE(c.raft(1).state() == StateType::kLeader);
  REQUIRE(c.raw(1).ReadIndex("early").ok());
  c.ProcessReadies();
  REQUIRE(c.node(1).read_states.empty());
  c.Stabilize();
  REQUIRE(c.node(1).read_states.size() == 1);
  REQUIRE(c.node(1).read_states[0].index == c.raft(1).log().committed());
  // Without a quorum of heartbeat acks, no answer.
  c.Isolate(1);
  REQUIRE(c.raw(1).ReadIndex("isolated").ok());
  c.Stabilize();
  REQUIRE(c.node(1).read_states.size() == 1);
}

// Goal: requests arriving while a heartbeat round is in flight are confirmed together by the
// next round; a follower's request is forwarded and answered.
TEST_CASE("8 read-only queries: batched rounds and follower forwarding", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  REQUIRE(c.raw(1).ReadIndex("a").ok());
  c.ProcessReadies();
  const size_t heartbeats_first = CountType(
      [&] {
        std::vector<std::string> v;
        for (const auto& m : c.queue()) v.push_back(raft::Describe(m));
        return v;
      }(),
      "MsgHeartbeat");
  REQUIRE(heartbeats_first == 2);
  REQUIRE(c.raw(1).ReadIndex("b").ok());
  REQUIRE(c.raw(1).ReadIndex("c").ok());
  REQUIRE(c.raw(2).ReadIndex("from-follower").ok());
  const std::vector<std::string> trace = c.Stabilize();
  // One round for "a", one for the batch {"b", "c", "from-follower"}.
  REQUIRE(CountType(trace, "MsgHeartbeat ") == 4);
  REQUIRE(c.node(1).read_states.size() == 3);
  REQUIRE(c.node(2).read_states.size() == 1);
  REQUIRE(c.node(2).read_states[0].request_ctx == "from-follower");
}

// Goal: with PreVote, a node partitioned away does not inflate its term, so rejoining does not
// depose a healthy leader (thesis 9.6).
TEST_CASE("9.6 prevote: a rejoining partitioned node does not disrupt the leader",
          "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  const uint64_t term = c.raft(1).term();
  c.Isolate(3);
  c.Tick(3, 100);
  c.Stabilize();
  REQUIRE(c.raft(3).term() == term);
  c.Heal();
  c.Tick(3, 30);
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.raft(1).state() == StateType::kLeader);
  REQUIRE(c.raft(1).term() == term);
}

// Goal: without PreVote, the same rejoining node does disrupt (shows the test above can fail).
TEST_CASE("9.6 prevote: without it a rejoining node forces a new election", "[raft][paper]") {
  Cluster c(Ids(3), NoPreVote());
  c.Elect(1);
  const uint64_t term = c.raft(1).term();
  c.Isolate(3);
  c.Tick(3, 100);
  c.Stabilize();
  REQUIRE(c.raft(3).term() > term);
  c.Heal();
  c.Tick(3, 30);
  c.Stabilize();
  REQUIRE(c.raft(1).term() > term);
}

// Goal: with CheckQuorum, a leader that stops hearing from a quorum steps down within an
// election timeout, and followers in lease ignore disruptive vote requests.
TEST_CASE("6.2 check quorum: a leader without a quorum steps down", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  c.Isolate(1);
  c.Tick(1, 25);
  REQUIRE(c.raft(1).state() == StateType::kFollower);
}

// Goal: leadership transfer brings the target up to date, sends MsgTimeoutNow, and the target
// wins; proposals are dropped meanwhile (thesis 3.10).
TEST_CASE("3.10 leadership transfer: target caught up, then TimeoutNow", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  c.Isolate(3);
  REQUIRE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  c.Heal();
  REQUIRE(c.raw(1).TransferLeader(3).ok());
  REQUIRE(c.raw(1).Propose("during").code() == raft::Code::kProposalDropped);
  const std::vector<std::string> trace = c.Stabilize();
  REQUIRE(CountType(trace, "MsgTimeoutNow") == 1);
  REQUIRE(c.raft(3).state() == StateType::kLeader);
  REQUIRE(c.raft(1).state() == StateType::kFollower);
  REQUIRE(c.node(3).applied == std::vector<std::string>{"x"});
}

// Goal: a transfer to an unreachable target is aborted after an election timeout, and the
// leader accepts proposals again.
TEST_CASE("3.10 leadership transfer: aborted after an election timeout", "[raft][paper]") {
  Cluster c(Ids(3));
  c.Elect(1);
  c.Isolate(3);
  REQUIRE(c.raw(1).TransferLeader(3).ok());
  REQUIRE(c.raft(1).lead_transferee() == 3);
  c.Tick(1, 10);
  REQUIRE(c.raft(1).lead_transferee() == raft::kNone);
  REQUIRE(c.raft(1).state() == StateType::kLeader);
  REQUIRE(c.raw(1).Propose("ok").ok());
}

// Goal: the uncommitted-bytes limit rejects proposals instead of growing without bound.
TEST_CASE("limits: uncommitted bytes", "[raft][limits]") {
  Cluster c(Ids(3), [](raft::Config* cfg) { cfg->max_uncommitted_entries_bytes = 200; });
  c.Elect(1);
  c.Isolate(1);
  int accepted = 0;
  raft::Status last;
  for (int i = 0; i < 20; ++i) {
    last = c.raw(1).Propose(std::string(30, 'x'));
    if (last.ok()) ++accepted;
  }
  REQUIRE(last.code() == raft::Code::kResourceExhausted);
  REQUIRE(accepted > 0);
  REQUIRE(accepted < 20);
  // Once entries commit, proposals are accepted again.
  c.Heal();
  c.Tick(1, 1);
  c.Stabilize();
  REQUIRE(c.raw(1).Propose("again").ok());
}

// Goal: at most max_inflight_msgs MsgApps are outstanding per follower, and a message carries
// at most max_size_per_msg_bytes of entries.
TEST_CASE("limits: in-flight window and bytes per message", "[raft][limits]") {
  Cluster c(Ids(3), [](raft::Config* cfg) {
    cfg->max_inflight_msgs = 3;
    cfg->max_size_per_msg_bytes = 100;
  });
  c.Elect(1);
  for (int i = 0; i < 20; ++i) REQUIRE(c.raw(1).Propose(std::string(40, 'p')).ok());
  c.ProcessReadies();
  size_t to2 = 0;
  for (const raft::Message& m : c.queue()) {
    if (m.to != 2 || m.type != MessageType::kMsgApp) continue;
    ++to2;
    uint64_t bytes = 0;
    for (const raft::Entry& e : m.entries) bytes += raft::EntrySizeBytes(e);
    REQUIRE((m.entries.size() == 1 || bytes <= 100));
  }
  REQUIRE(to2 == 3);
  c.Stabilize();
  REQUIRE(c.node(2).applied.size() == 20);
}

// Goal: committed entries handed out per Ready respect max_committed_size_per_ready_bytes.
TEST_CASE("limits: committed bytes per Ready", "[raft][limits]") {
  Cluster c(Ids(1), [](raft::Config* cfg) { cfg->max_committed_size_per_ready_bytes = 100; });
  c.Elect(1);
  for (int i = 0; i < 10; ++i) REQUIRE(c.raw(1).Propose(std::string(40, 'q')).ok());
  // Persist the entries without applying: take Readies by hand.
  size_t max_batch = 0;
  for (int round = 0; round < 50 && c.raw(1).HasReady(); ++round) {
    raft::Ready rd = c.raw(1).Ready();
    c.node(1).storage->Append(rd.entries);
    if (rd.hard_state) c.node(1).storage->SetHardState(*rd.hard_state);
    max_batch = std::max(max_batch, rd.committed_entries.size());
    c.raw(1).Advance();
  }
  REQUIRE(max_batch >= 1);
  REQUIRE(max_batch <= 2);
  REQUIRE(c.raft(1).log().applied() == c.raft(1).log().committed());
}

// Goal: the Ready contract's parallel write: a leader may send MsgApp before persisting its own
// entries, because it counts itself toward a quorum only after Advance() confirmed them
// durable; responses are never allowed out before persistence.
TEST_CASE("Ready contract: the leader counts itself only for persisted entries", "[raft][ready]") {
  Cluster c(Ids(3));
  c.Elect(1);
  REQUIRE(c.raw(1).Propose("x").ok());
  raft::Ready rd = c.raw(1).Ready();
  REQUIRE(rd.entries.size() == 1);
  const uint64_t index = rd.entries[0].index;
  const uint64_t commit_before = c.raft(1).log().committed();
  for (const raft::Message& m : rd.messages) {
    REQUIRE(raft::CanSendBeforePersist(m));
    if (m.to == 2) REQUIRE(c.raw(2).Step(m).ok());  // node 3 does not get it
  }
  // Node 2 persists and acknowledges; the leader has not persisted yet.
  raft::Ready rd2 = c.raw(2).Ready();
  c.node(2).storage->Append(rd2.entries);
  if (rd2.hard_state) c.node(2).storage->SetHardState(*rd2.hard_state);
  bool acked = false;
  for (const raft::Message& m : rd2.messages) {
    REQUIRE_FALSE(raft::CanSendBeforePersist(m));  // a response waits for durability
    if (m.type == MessageType::kMsgAppResp && m.to == 1) {
      REQUIRE(c.raw(1).Step(m).ok());
      acked = true;
    }
  }
  c.raw(2).Advance();
  REQUIRE(acked);
  // One durable copy (node 2) is not a quorum of 3: nothing commits yet.
  REQUIRE(c.raft(1).log().committed() == commit_before);
  // The leader's own write becomes durable: now 2 of 3.
  c.node(1).storage->Append(rd.entries);
  if (rd.hard_state) c.node(1).storage->SetHardState(*rd.hard_state);
  c.raw(1).Advance();
  REQUIRE(c.raft(1).log().committed() == index);
  c.Stabilize();
  REQUIRE(c.CheckAll().empty());
}

TEST_CASE("Ready contract: only entries, snapshots, terms and votes must be synced",
          "[raft][ready]") {
  // Goal: a Ready whose only change is the commit index says must_sync = false (etcd-io/raft's
  // MustSync), and entries, a new term and a vote each say true.
  Cluster c(Ids(3), NoPreVote());
  c.Elect(1);
  c.Stabilize();
  REQUIRE(c.raw(1).Propose("x").ok());
  raft::Ready rd = c.raw(1).Ready();
  REQUIRE(rd.entries.size() == 1);
  REQUIRE(rd.must_sync);  // entries
  c.node(1).storage->Append(rd.entries);
  const uint64_t index = rd.entries[0].index;
  for (const raft::Message& m : rd.messages) {
    if (m.to == 2) REQUIRE(c.raw(2).Step(m).ok());
  }
  c.raw(1).Advance();
  raft::Ready f = c.raw(2).Ready();
  REQUIRE(f.must_sync);  // the follower's entries
  c.node(2).storage->Append(f.entries);
  if (f.hard_state) c.node(2).storage->SetHardState(*f.hard_state);
  for (const raft::Message& m : f.messages) {
    if (m.type == MessageType::kMsgAppResp && m.to == 1) REQUIRE(c.raw(1).Step(m).ok());
  }
  c.raw(2).Advance();
  // The ack commits the entry: the leader's next Ready moves only the commit index.
  raft::Ready commit = c.raw(1).Ready();
  REQUIRE(commit.hard_state.has_value());
  REQUIRE(commit.hard_state->commit == index);
  REQUIRE(commit.entries.empty());
  REQUIRE(commit.committed_entries.size() == 1);
  REQUIRE_FALSE(commit.must_sync);
  c.node(1).storage->SetHardState(*commit.hard_state);
  c.raw(1).Advance();
  c.DropQueued();
  // A campaign changes term and vote: synced.
  REQUIRE(c.raw(3).Campaign().ok());
  raft::Ready v = c.raw(3).Ready();
  REQUIRE(v.hard_state.has_value());
  REQUIRE(v.hard_state->term > commit.hard_state->term);
  REQUIRE(v.hard_state->vote == 3);
  REQUIRE(v.must_sync);
}

TEST_CASE("ProposeBatch: one message, one append per follower, applied in order everywhere",
          "[raft]") {
  // Goal: a batch is replicated as one MsgApp, forwarded whole by a follower, and a refused
  // batch leaves the payloads to the caller.
  Cluster c(Ids(3));
  std::vector<std::string> early = {"x", "y"};
  REQUIRE(c.raw(1).ProposeBatch(&early).code() == raft::Code::kProposalDropped);  // no leader
  CHECK(early == std::vector<std::string>{"x", "y"});
  c.Elect(1);
  c.Stabilize();
  std::vector<std::string> datas;
  for (int i = 0; i < 10; ++i) datas.push_back("cmd-" + std::to_string(i));
  const std::vector<std::string> want = datas;
  REQUIRE(c.raw(1).ProposeBatch(&datas).ok());
  c.ProcessReadies();
  size_t apps_to_2 = 0;
  for (const raft::Message& m : c.queue()) {
    if (m.type == MessageType::kMsgApp && m.to == 2) {
      ++apps_to_2;
      CHECK(m.entries.size() == 10);
    }
  }
  CHECK(apps_to_2 == 1);
  c.Stabilize();
  std::vector<std::string> more = {"f-0", "f-1", "f-2"};
  REQUIRE(c.raw(2).ProposeBatch(&more).ok());  // forwarded to the leader as one MsgProp
  c.Stabilize();
  std::vector<std::string> all = want;
  all.insert(all.end(), {"f-0", "f-1", "f-2"});
  for (uint64_t id : c.ids()) {
    INFO("node " << id);
    CHECK(c.node(id).applied == all);
  }
  CHECK(c.CheckAll().empty());
}

}  // namespace raft_test
