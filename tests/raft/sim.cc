#include "tests/raft/sim.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "raft/codec.h"
#include "raft/rand.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft_sim {

namespace {

using raft::ConfChange;
using raft::ConfChangeType;
using raft::ConfState;
using raft::Entry;
using raft::EntryType;
using raft::Message;
using raft::MessageType;
using raft::StateType;

std::string U(uint64_t v) { return std::to_string(v); }

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

uint64_t HashEntry(uint64_t prev, const Entry& e) {
  uint64_t h = Mix(prev, e.term);
  h = Mix(h, static_cast<uint64_t>(e.type));
  for (char c : e.data) h = Mix(h, static_cast<uint8_t>(c));
  return h;
}

// Prefix hashes of a log: hash(i) covers entries 1..i, so equal hashes at i mean equal logs up
// to i. Starts at a base (snapshot) whose hash comes with the snapshot.
struct Mirror {
  uint64_t base_index = 0;
  uint64_t base_term = 0;
  uint64_t base_hash = 0;
  std::vector<std::pair<uint64_t, uint64_t>> terms_hashes;  // for base_index+1 ...

  uint64_t last() const { return base_index + terms_hashes.size(); }
  std::pair<uint64_t, uint64_t> at(uint64_t i) const {
    if (i == base_index) return {base_term, base_hash};
    return terms_hashes[i - base_index - 1];
  }
  void Append(const std::vector<Entry>& ents) {
    for (const Entry& e : ents) {
      if (e.index <= base_index) continue;
      if (e.index <= last()) terms_hashes.resize(e.index - base_index - 1);
      const uint64_t prev = e.index - 1 == base_index ? base_hash : terms_hashes.back().second;
      terms_hashes.emplace_back(e.term, HashEntry(prev, e));
    }
  }
  void Reset(uint64_t index, uint64_t term, uint64_t hash) {
    base_index = index;
    base_term = term;
    base_hash = hash;
    terms_hashes.clear();
  }
};

// The simulated state machine's snapshot: the log prefix hash, then the applied values.
std::string EncodeSm(uint64_t hash, const std::vector<std::string>& values) {
  std::string out = U(hash) + "\n";
  for (const std::string& v : values) out += v + "\n";
  return out;
}

void DecodeSm(const std::string& data, uint64_t* hash, std::vector<std::string>* values) {
  values->clear();
  *hash = 0;
  size_t pos = data.find('\n');
  if (pos == std::string::npos) return;
  *hash = std::stoull(data.substr(0, pos));
  ++pos;
  while (pos < data.size()) {
    const size_t end = data.find('\n', pos);
    values->push_back(data.substr(pos, end - pos));
    pos = end + 1;
  }
}

struct Disk {
  raft::MemoryStorage st;
  Mirror mirror;
};

struct WriteOp {
  std::optional<raft::Snapshot> snapshot;
  std::vector<Entry> entries;
  std::optional<raft::HardState> hard_state;
};

void ApplyOp(Disk* d, const WriteOp& op) {
  if (op.snapshot) {
    raft::Status s = d->st.ApplySnapshot(*op.snapshot);
    RAFT_CHECK(s.ok(), "sim: apply snapshot: " + s.ToString());
    uint64_t hash = 0;
    std::vector<std::string> vals;
    DecodeSm(op.snapshot->data, &hash, &vals);
    d->mirror.Reset(op.snapshot->metadata.index, op.snapshot->metadata.term, hash);
  }
  d->st.Append(op.entries);
  d->mirror.Append(op.entries);
  if (op.hard_state) d->st.SetHardState(*op.hard_state);
}

struct SimNode {
  uint64_t id = 0;
  bool up = false;
  bool removed = false;
  int down_until_tick = 0;
  Disk live;     // what the node reads: includes writes not yet synced
  Disk durable;  // what survives a crash
  // Written but not synced (Readies whose must_sync is false): they reach `durable` with the
  // next synced write, in order (one WAL keeps a prefix of the writes), or are lost by a crash.
  std::vector<WriteOp> unsynced;
  std::unique_ptr<raft::RawNode> node;
  // Applied values, in order. Duplicates (a forwarded proposal duplicated by the network, a
  // client retry) are ignored, as a real state machine ignores a repeated request id.
  std::vector<std::string> sm;
  std::set<std::string> sm_set;
  uint64_t applied_index = 0;
  uint64_t applied_hash = 0;
  ConfState conf;
  std::map<std::string, uint64_t> reads_waiting_state;             // ctx -> read id
  std::vector<std::pair<uint64_t, uint64_t>> reads_waiting_apply;  // (index, read id)
  std::map<std::string, uint64_t> proposed_here;                   // value -> write id
  StateType last_state = StateType::kFollower;
};

struct WriteRec {
  std::string value;
  uint64_t invoke = 0;
  uint64_t ack = 0;  // 0: not acknowledged
  bool failed = false;
};

struct ReadRec {
  uint64_t invoke = 0;
  uint64_t complete = 0;  // 0: not completed
  size_t seen = 0;        // number of values observed
};

struct NetMsg {
  uint64_t deliver_at = 0;
  Message m;
};

class Sim {
 public:
  explicit Sim(const SimOptions& o) : opts_(o), rng_(o.seed * 0x2545f4914f6cdd1dULL + 1) {
    const int n = rng_.Chance(1, 2) ? 3 : 5;
    pre_vote_ = rng_.Chance(3, 4);
    check_quorum_ = rng_.Chance(3, 4);
    if (opts_.knobs.grant_multiple_votes_per_term || opts_.knobs.commit_previous_term_by_counting) {
      pre_vote_ = false;
    }
    drop_per_mille_ = rng_.Uniform(120);
    dup_per_mille_ = rng_.Uniform(40);
    max_delay_ = 1 + rng_.Uniform(8);
    for (int i = 1; i <= n; ++i) initial_.push_back(static_cast<uint64_t>(i));
    next_spare_id_ = static_cast<uint64_t>(n) + 1;
    for (uint64_t id : initial_) {
      auto node = std::make_unique<SimNode>();
      node->id = id;
      raft::BootstrapStorage(&node->live.st, initial_);
      raft::BootstrapStorage(&node->durable.st, initial_);
      node->live.mirror.Append(raft::BootstrapEntries(initial_));
      node->durable.mirror.Append(raft::BootstrapEntries(initial_));
      nodes_[id] = std::move(node);
      Start(*nodes_[id]);
    }
    summary_ = "nodes=" + U(static_cast<uint64_t>(n)) + " prevote=" + U(pre_vote_) +
               " checkquorum=" + U(check_quorum_) + " drop=" + U(drop_per_mille_) +
               "/1000 dup=" + U(dup_per_mille_) + "/1000 max_delay=" + U(max_delay_);
  }

  SimResult Run() {
    SimResult res;
    // Chaos phase.
    for (tick_ = 1; tick_ <= opts_.chaos_ticks && violation_.empty(); ++tick_) {
      ChaosEvents();
      TickAll();
      for (int micro = 0; micro < 4 && violation_.empty(); ++micro) Microstep(true);
    }
    // Healed phase: no faults, every node back up, reliable network.
    if (violation_.empty()) Heal();
    if (violation_.empty()) {
      int elected_at = -1;
      const int start = tick_;
      for (; tick_ < start + opts_.elect_within_ticks && violation_.empty(); ++tick_) {
        TickAll();
        for (int micro = 0; micro < 4; ++micro) Microstep(false);
        if (StableLeader() != raft::kNone) {
          elected_at = tick_;
          break;
        }
      }
      if (violation_.empty() && elected_at < 0) {
        Fail("liveness: no leader within " + U(static_cast<uint64_t>(opts_.elect_within_ticks)) +
             " ticks after healing");
      }
    }
    if (violation_.empty()) CheckCommitAfterHeal();
    if (violation_.empty()) CheckLinearizable();
    res.ok = violation_.empty();
    res.violation = violation_;
    for (const WriteRec& w : writes_) res.committed_writes += w.ack != 0 ? 1 : 0;
    for (const ReadRec& r : reads_) res.completed_reads += r.complete != 0 ? 1 : 0;
    res.summary = summary_ + " ticks=" + U(static_cast<uint64_t>(tick_)) +
                  " writes_acked=" + U(res.committed_writes) + "/" + U(writes_.size()) +
                  " reads=" + U(res.completed_reads) + "/" + U(reads_.size()) +
                  " elections=" + U(leaders_.size()) + " crashes=" + U(crashes_) +
                  " confchanges=" + U(conf_changes_) + " transfers=" + U(transfers_) +
                  " snapshots_sent=" + U(snaps_sent_);
    return res;
  }

 private:
  void Trace(const std::string& s) {
    if (opts_.trace) std::fprintf(stderr, "[t%d] %s\n", tick_, s.c_str());
  }
  void Fail(const std::string& why) {
    if (violation_.empty()) violation_ = "tick " + U(static_cast<uint64_t>(tick_)) + ": " + why;
  }
  uint64_t Now() { return ++seq_; }

  raft::Config MakeConfig(uint64_t id, raft::Storage* st, uint64_t applied) {
    raft::Config c;
    c.id = id;
    c.election_timeout_ticks = 10;
    c.heartbeat_timeout_ticks = 1;
    c.pre_vote = pre_vote_;
    c.check_quorum = check_quorum_;
    c.max_size_per_msg_bytes = 256;
    c.max_inflight_msgs = 4;
    c.max_uncommitted_entries_bytes = 4096;
    c.max_committed_size_per_ready_bytes = 512;
    c.max_pending_read_index = 64;
    c.seed = opts_.seed;
    c.storage = st;
    c.applied = applied;
    c.testing = opts_.knobs;
    return c;
  }

  // (Re)starts a node from its durable disk: live = durable, the state machine restarts from
  // the snapshot and replays the log.
  void Start(SimNode& n) {
    n.live = n.durable;
    raft::Snapshot snap;
    (void)n.live.st.Snapshot(&snap);
    n.sm.clear();
    n.applied_hash = 0;
    if (!snap.empty()) DecodeSm(snap.data, &n.applied_hash, &n.sm);
    n.sm_set = std::set<std::string>(n.sm.begin(), n.sm.end());
    n.applied_index = snap.metadata.index;
    n.conf = snap.metadata.conf_state;
    n.reads_waiting_state.clear();
    n.reads_waiting_apply.clear();
    n.proposed_here.clear();
    n.node = std::make_unique<raft::RawNode>(MakeConfig(n.id, &n.live.st, n.applied_index));
    n.last_state = StateType::kFollower;
    n.up = true;
    ProcessReady(n);
  }

  void Crash(SimNode& n) {
    Trace("crash " + U(n.id));
    ++crashes_;
    n.up = false;
    n.node.reset();
    n.live = n.durable;  // unsynced writes are lost
    n.unsynced.clear();
    n.down_until_tick = tick_ + 1 + static_cast<int>(rng_.Uniform(30));
  }

  std::vector<uint64_t> UpIds() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : nodes_) {
      if (n->up) out.push_back(id);
    }
    return out;
  }

  uint64_t Pick(const std::vector<uint64_t>& v) { return v[rng_.Uniform(v.size())]; }

  uint64_t CurrentLeader() const {
    uint64_t best = raft::kNone;
    uint64_t best_term = 0;
    for (const auto& [id, n] : nodes_) {
      if (n->up && n->node->raft().state() == StateType::kLeader &&
          n->node->raft().term() >= best_term) {
        best = id;
        best_term = n->node->raft().term();
      }
    }
    return best;
  }

  // A leader that is a voter of its own configuration and whose term every up member has
  // reached (a leader that just removed itself does not count).
  uint64_t StableLeader() const {
    const uint64_t l = CurrentLeader();
    if (l == raft::kNone) return l;
    const auto voters = nodes_.at(l)->node->raft().conf_state().voters;
    if (std::find(voters.begin(), voters.end(), l) == voters.end()) return raft::kNone;
    const uint64_t term = nodes_.at(l)->node->raft().term();
    for (const auto& [id, n] : nodes_) {
      if (n->up && n->node->raft().term() > term) return raft::kNone;
    }
    return l;
  }

  // ---- faults and workload ----

  void ChaosEvents() {
    // Partitions come and go.
    if (rng_.Chance(1, 40)) {
      cuts_.clear();
      const auto ids = AllIds();
      if (rng_.Chance(1, 2)) {
        // Symmetric: a random minority/majority split.
        std::set<uint64_t> side;
        for (uint64_t id : ids) {
          if (rng_.Chance(1, 3)) side.insert(id);
        }
        for (uint64_t a : ids) {
          for (uint64_t b : ids) {
            if (side.count(a) != side.count(b)) cuts_.insert({a, b});
          }
        }
        Trace("partition");
      } else {
        // Asymmetric: a few one-way cuts.
        for (int k = 0; k < 2; ++k) cuts_.insert({Pick(ids), Pick(ids)});
        Trace("one-way cuts");
      }
    } else if (!cuts_.empty() && rng_.Chance(1, 15)) {
      cuts_.clear();
      Trace("heal partition");
    }
    // Crashes and restarts.
    for (auto& [id, n] : nodes_) {
      if (n->removed) continue;
      if (n->up && rng_.Chance(1, 300)) {
        Crash(*n);
      } else if (!n->up && tick_ >= n->down_until_tick) {
        Trace("restart " + U(id));
        Start(*n);
      }
    }
    const uint64_t leader = CurrentLeader();
    // Client writes and reads.
    const uint64_t nops = rng_.Uniform(3);
    for (uint64_t k = 0; k < nops; ++k) ClientOp(leader);
    if (leader == raft::kNone || !nodes_.at(leader)->up || !violation_.empty()) return;
    // Membership changes and transfers at the leader.
    if (rng_.Chance(1, 25)) ProposeConfChange(leader);
    if (rng_.Chance(1, 40) && nodes_.at(leader)->up) {
      const auto voters = nodes_.at(leader)->node->raft().conf_state().voters;
      if (!voters.empty()) {
        const uint64_t to = Pick(voters);
        Trace("transfer " + U(leader) + " -> " + U(to));
        ++transfers_;
        (void)nodes_.at(leader)->node->TransferLeader(to);
        ProcessReady(*nodes_.at(leader));
      }
    }
  }

  std::vector<uint64_t> AllIds() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : nodes_) out.push_back(id);
    return out;
  }

  void ClientOp(uint64_t leader) {
    const auto up = UpIds();
    if (up.empty()) return;
    const bool leader_up = leader != raft::kNone && nodes_.at(leader)->up;
    const uint64_t at = (leader_up && rng_.Chance(7, 10)) ? leader : Pick(up);
    SimNode& n = *nodes_.at(at);
    if (rng_.Chance(2, 3)) {
      WriteRec w;
      w.value = "w" + U(writes_.size());
      w.invoke = Now();
      const uint64_t wid = writes_.size();
      raft::Status s = n.node->Propose(w.value);
      if (!s.ok()) w.failed = true;
      writes_.push_back(w);
      if (s.ok()) n.proposed_here[writes_.back().value] = wid;
      Trace("propose " + w.value + " at " + U(at) + (s.ok() ? "" : " failed: " + s.ToString()));
    } else {
      ReadRec r;
      r.invoke = Now();
      const uint64_t rid = reads_.size();
      const std::string ctx = "r" + U(rid);
      raft::Status s = n.node->ReadIndex(ctx);
      reads_.push_back(r);
      if (s.ok()) n.reads_waiting_state[ctx] = rid;
      Trace("read " + ctx + " at " + U(at) + (s.ok() ? "" : " failed: " + s.ToString()));
    }
    ProcessReady(n);
  }

  void ProposeConfChange(uint64_t leader) {
    SimNode& l = *nodes_.at(leader);
    const ConfState cs = l.node->raft().conf_state();
    ConfChange cc;
    const uint64_t r = rng_.Uniform(3);
    if (r == 0 && next_spare_id_ <= initial_.size() + 2) {
      cc.type = ConfChangeType::kAddLearnerNode;
      cc.node_id = next_spare_id_;
    } else if (r == 1 && !cs.learners.empty()) {
      cc.type = ConfChangeType::kAddNode;
      cc.node_id = Pick(cs.learners);
    } else if (r == 2 && cs.voters.size() > 3) {
      cc.type = ConfChangeType::kRemoveNode;
      cc.node_id = Pick(cs.voters);
    } else {
      return;
    }
    raft::Status s = l.node->ProposeConfChange(cc);
    Trace("conf change " + raft::Describe(cc) + " at " + U(leader) +
          (s.ok() ? "" : " failed: " + s.ToString()));
    if (!s.ok()) return;
    ++conf_changes_;
    if (cc.type == ConfChangeType::kAddLearnerNode) {
      // The new node starts empty and learns the cluster from the leader.
      auto node = std::make_unique<SimNode>();
      node->id = cc.node_id;
      nodes_[cc.node_id] = std::move(node);
      Start(*nodes_[cc.node_id]);
      ++next_spare_id_;
    }
    ProcessReady(l);
  }

  void Heal() {
    Trace("heal everything");
    cuts_.clear();
    for (auto& [id, n] : nodes_) {
      if (!n->removed && !n->up) Start(*n);
    }
    // Messages in flight may still arrive; that is fine.
  }

  // After healing: new writes at the leader commit on every member within a bound. The client
  // retries a write that its leader lost (e.g. the leader stepped down) every few ticks.
  void CheckCommitAfterHeal() {
    std::vector<std::string> values = {"h0", "h1", "h2"};
    std::vector<uint64_t> ids;
    for (const std::string& v : values) {
      WriteRec w;
      w.value = v;
      w.invoke = Now();
      ids.push_back(writes_.size());
      writes_.push_back(w);
    }
    const int start = tick_;
    for (; tick_ < start + opts_.commit_within_ticks && violation_.empty(); ++tick_) {
      const uint64_t leader = StableLeader();
      if (leader != raft::kNone && (tick_ - start) % 5 == 0) {
        SimNode& l = *nodes_.at(leader);
        for (size_t k = 0; k < values.size(); ++k) {
          if (l.sm_set.count(values[k]) > 0) continue;
          if (l.node->Propose(values[k]).ok()) l.proposed_here[values[k]] = ids[k];
        }
        ProcessReady(l);
      }
      TickAll();
      for (int micro = 0; micro < 4; ++micro) Microstep(false);
      if (AllMembersApplied(values)) return;
    }
    if (violation_.empty()) {
      Fail("liveness: proposals after healing not applied by every member within " +
           U(static_cast<uint64_t>(opts_.commit_within_ticks)) + " ticks");
    }
  }

  bool AllMembersApplied(const std::vector<std::string>& values) {
    const uint64_t leader = CurrentLeader();
    if (leader == raft::kNone) return false;
    const ConfState cs = nodes_.at(leader)->node->raft().conf_state();
    std::vector<uint64_t> members = cs.voters;
    members.insert(members.end(), cs.learners.begin(), cs.learners.end());
    for (uint64_t id : members) {
      const SimNode& n = *nodes_.at(id);
      for (const std::string& v : values) {
        if (n.sm_set.count(v) == 0) return false;
      }
    }
    return true;
  }

  // ---- time and network ----

  void TickAll() {
    for (auto& [id, n] : nodes_) {
      if (!n->up) continue;
      n->node->Tick();
      AfterStep(*n);
    }
  }

  void Microstep(bool faults) {
    ++micro_;
    // Deliver due messages in a random order (reordering).
    std::vector<NetMsg> due;
    std::vector<NetMsg> later;
    for (NetMsg& nm : net_) (nm.deliver_at <= micro_ ? due : later).push_back(std::move(nm));
    net_.swap(later);
    for (size_t i = due.size(); i > 1; --i) std::swap(due[i - 1], due[rng_.Uniform(i)]);
    for (NetMsg& nm : due) {
      if (!violation_.empty()) return;
      Deliver(nm.m, faults);
    }
  }

  void Deliver(const Message& m, bool faults) {
    auto it = nodes_.find(m.to);
    const bool reachable = it != nodes_.end() && it->second->up && !it->second->removed &&
                           cuts_.count({m.from, m.to}) == 0;
    const bool dropped = !reachable || (faults && rng_.Uniform(1000) < drop_per_mille_);
    auto from = nodes_.find(m.from);
    const bool sender_up = from != nodes_.end() && from->second->up;
    if (dropped) {
      if (m.type == MessageType::kMsgSnap && sender_up) {
        from->second->node->ReportSnapshot(m.to, false);
        AfterStep(*from->second);
      } else if (sender_up && rng_.Chance(1, 10)) {
        from->second->node->ReportUnreachable(m.to);
        AfterStep(*from->second);
      }
      return;
    }
    SimNode& n = *it->second;
    (void)n.node->Step(m);
    AfterStep(n);
    if (m.type == MessageType::kMsgSnap && sender_up) {
      ++snaps_sent_;
      from->second->node->ReportSnapshot(m.to, true);
      AfterStep(*from->second);
    }
  }

  void Send(const Message& m, bool faults) {
    if (net_.size() >= 20000) return;  // bounded network: drop
    // Healed network: messages arrive within a tick (there are 4 microsteps per tick).
    const uint64_t max_delay = faults ? max_delay_ : std::min<uint64_t>(max_delay_, 2);
    NetMsg nm{micro_ + 1 + rng_.Uniform(max_delay), m};
    net_.push_back(nm);
    if (faults && rng_.Uniform(1000) < dup_per_mille_) {
      nm.deliver_at = micro_ + 1 + rng_.Uniform(max_delay_ * 3);
      net_.push_back(nm);
    }
  }

  void AfterStep(SimNode& n) {
    if (!n.up) return;
    n.node->CheckInvariants();
    ProcessReady(n);
  }

  // ---- Ready handling, persistence, application ----

  void ProcessReady(SimNode& n) {
    for (int round = 0; round < 8 && n.up && n.node->HasReady() && violation_.empty(); ++round) {
      HandleReady(n);
    }
    if (n.up && violation_.empty()) CheckNode(n);
  }

  void HandleReady(SimNode& n) {
    // Before applying anything this leader committed (leader completeness bookkeeping).
    DetectLeader(n);
    raft::Ready rd = n.node->Ready();
    if (opts_.trace && (rd.soft_state || rd.hard_state)) {
      Trace("node " + U(n.id) + " " + raft::StateName(n.node->raft().state()) + " term " +
            U(n.node->raft().term()) + " lead " + U(n.node->raft().lead()) + " vote " +
            U(n.node->raft().vote()) + " commit " + U(n.node->raft().log().committed()) + " last " +
            U(n.node->raft().log().LastIndex()));
    }
    WriteOp op;
    if (!rd.snapshot.empty()) op.snapshot = rd.snapshot;
    op.entries = rd.entries;
    op.hard_state = rd.hard_state;
    // 1. Write (not yet synced).
    ApplyOp(&n.live, op);
    if (!rd.entries.empty() || op.snapshot) CheckLogMatching(n);
    // 3a. The leader's messages may leave before the sync.
    const bool faults = tick_ <= opts_.chaos_ticks;
    for (const Message& m : rd.messages) {
      if (raft::CanSendBeforePersist(m)) Send(m, faults);
    }
    // A crash before the sync loses the write.
    if (faults && rd.must_sync && rng_.Chance(1, 400)) {
      Trace("crash before sync " + U(n.id));
      Crash(n);
      return;
    }
    if (rd.must_sync) {
      SyncUnsynced(n);
      ApplyOp(&n.durable, op);  // sync
    } else {
      n.unsynced.push_back(op);  // durable only with a later synced write
    }
    for (const Message& m : rd.messages) {
      if (!raft::CanSendBeforePersist(m)) Send(m, faults);
    }
    // 2. Apply.
    if (!rd.snapshot.empty()) InstallSnapshot(n, rd.snapshot);
    for (const Entry& e : rd.committed_entries) Apply(n, e);
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = n.reads_waiting_state.find(rs.request_ctx);
      if (it == n.reads_waiting_state.end()) continue;
      n.reads_waiting_apply.emplace_back(rs.index, it->second);
      n.reads_waiting_state.erase(it);
    }
    CompleteReads(n);
    n.node->Advance();
    MaybeSnapshot(n);
  }

  void InstallSnapshot(SimNode& n, const raft::Snapshot& snap) {
    uint64_t hash = 0;
    DecodeSm(snap.data, &hash, &n.sm);
    n.sm_set = std::set<std::string>(n.sm.begin(), n.sm.end());
    n.applied_index = snap.metadata.index;
    n.applied_hash = hash;
    n.conf = snap.metadata.conf_state;
    // State machine safety: the snapshot is the prefix everyone applied.
    if (snap.metadata.index <= global_.size() && snap.metadata.index > 0 &&
        global_[snap.metadata.index - 1].second != hash) {
      Fail("state machine safety: snapshot at " + U(snap.metadata.index) + " on node " + U(n.id) +
           " differs from the applied history");
    }
  }

  void Apply(SimNode& n, const Entry& e) {
    if (e.index != n.applied_index + 1) {
      Fail("node " + U(n.id) + " applied " + U(e.index) + " after " + U(n.applied_index));
      return;
    }
    n.applied_index = e.index;
    n.applied_hash = HashEntry(n.applied_hash, e);
    // State machine safety: every node applies the same entry at each index.
    if (e.index <= global_.size()) {
      if (global_[e.index - 1].second != n.applied_hash) {
        Fail("state machine safety: node " + U(n.id) + " applied " + raft::Describe(e) +
             " which differs from what another node applied at that index");
        return;
      }
    } else if (e.index == global_.size() + 1) {
      global_.emplace_back(e.term, n.applied_hash);
      global_max_leader_term_.push_back(max_leader_term_);
      if (e.type == EntryType::kNormal && !e.data.empty() && global_set_.insert(e.data).second) {
        global_values_.push_back(e.data);
      }
    } else {
      Fail("applied index " + U(e.index) + " beyond the known history " + U(global_.size()));
      return;
    }
    if (e.type == EntryType::kConfChange) {
      ConfChange cc;
      raft::Status s = raft::DecodeConfChange(e.data, &cc);
      RAFT_CHECK(s.ok(), "sim: bad conf change");
      n.conf = n.node->ApplyConfChange(cc);
      // Once a removal is applied anywhere, the removed node is shut down for good.
      if (cc.type == ConfChangeType::kRemoveNode) retire_.insert(cc.node_id);
      return;
    }
    if (e.data.empty() || !n.sm_set.insert(e.data).second) return;
    n.sm.push_back(e.data);
    auto it = n.proposed_here.find(e.data);
    if (it != n.proposed_here.end()) {
      WriteRec& w = writes_[it->second];
      if (w.ack == 0) w.ack = Now();
      n.proposed_here.erase(it);
    }
  }

  void CompleteReads(SimNode& n) {
    auto& waiting = n.reads_waiting_apply;
    for (size_t i = 0; i < waiting.size();) {
      if (waiting[i].first <= n.applied_index) {
        ReadRec& r = reads_[waiting[i].second];
        r.complete = Now();
        r.seen = n.sm.size();
        waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }

  // A synced write makes every earlier write durable too.
  void SyncUnsynced(SimNode& n) {
    for (const WriteOp& u : n.unsynced) ApplyOp(&n.durable, u);
    n.unsynced.clear();
  }

  void MaybeSnapshot(SimNode& n) {
    raft::Snapshot cur;
    (void)n.live.st.Snapshot(&cur);
    if (n.applied_index < cur.metadata.index + 6 + rng_.Uniform(10)) return;
    if (n.applied_index > n.durable.st.LastIndex()) return;
    const std::string data = EncodeSm(n.applied_hash, n.sm);
    SyncUnsynced(n);  // the snapshot write is synced, after the unsynced ones
    for (Disk* d : {&n.live, &n.durable}) {
      raft::Status s = d->st.CreateSnapshot(n.applied_index, n.conf, data, nullptr);
      if (!s.ok()) continue;
      const uint64_t keep = rng_.Uniform(4);
      if (n.applied_index > keep + d->st.FirstIndex()) {
        (void)d->st.Compact(n.applied_index - keep);
      }
    }
    Trace("snapshot " + U(n.id) + " at " + U(n.applied_index));
  }

  // ---- checkers ----

  void CheckNode(SimNode& n) {
    for (uint64_t id : std::vector<uint64_t>(retire_.begin(), retire_.end())) {
      auto it = nodes_.find(id);
      if (it != nodes_.end() && !it->second->removed) {
        Trace("retire " + U(id));
        it->second->up = false;
        it->second->removed = true;
        it->second->node.reset();
      }
    }
    retire_.clear();
    DetectLeader(n);
  }

  void DetectLeader(SimNode& n) {
    if (!n.up) return;
    const raft::Raft& r = n.node->raft();
    if (r.state() == StateType::kLeader && n.last_state != StateType::kLeader) {
      OnNewLeader(n);
    }
    n.last_state = r.state();
  }

  void OnNewLeader(SimNode& n) {
    const raft::Raft& r = n.node->raft();
    Trace("leader " + U(n.id) + " term " + U(r.term()));
    // Election safety: at most one leader per term.
    auto [it, inserted] = leaders_.emplace(r.term(), n.id);
    if (!inserted && it->second != n.id) {
      Fail("election safety: nodes " + U(it->second) + " and " + U(n.id) +
           " are both leaders of term " + U(r.term()));
      return;
    }
    max_leader_term_ = std::max(max_leader_term_, r.term());
    // Leader completeness: every entry applied anywhere while all leaders had terms below this
    // one is in this leader's log.
    const raft::RaftLog& log = r.log();
    for (uint64_t i = 1; i <= global_.size(); ++i) {
      if (global_max_leader_term_[i - 1] >= r.term()) continue;
      if (i + 1 < log.FirstIndex()) continue;  // covered by its snapshot
      uint64_t t = 0;
      if (!log.Term(i, &t).ok() || t != global_[i - 1].first) {
        Fail("leader completeness: leader " + U(n.id) + " of term " + U(r.term()) +
             " lacks committed entry " + U(i));
        return;
      }
    }
  }

  void CheckLogMatching(const SimNode& a) {
    for (const auto& [id, bp] : nodes_) {
      if (id == a.id) continue;
      const Mirror& ma = a.live.mirror;
      const Mirror& mb = bp->live.mirror;
      const uint64_t lo = std::max(ma.base_index, mb.base_index);
      const uint64_t hi = std::min(ma.last(), mb.last());
      for (uint64_t i = hi; i >= lo && i > 0; --i) {
        const auto [ta, ha] = ma.at(i);
        const auto [tb, hb] = mb.at(i);
        if (ta != tb) continue;
        if (ha != hb) {
          Fail("log matching: nodes " + U(a.id) + " and " + U(id) + " have entries of term " +
               U(ta) + " at index " + U(i) + " with different logs before them");
        }
        break;
      }
    }
  }

  void CheckLinearizable() {
    // The linearization order of writes is their position in the applied history.
    std::map<std::string, size_t> pos;
    for (size_t i = 0; i < global_values_.size(); ++i) pos.emplace(global_values_[i], i);
    std::map<std::string, const WriteRec*> by_value;
    for (const WriteRec& w : writes_) by_value[w.value] = &w;
    for (const auto& [v, p] : pos) {
      auto it = by_value.find(v);
      if (it == by_value.end()) {
        Fail("linearizability: value " + v + " was never proposed");
        return;
      }
      if (it->second->failed) {
        Fail("linearizability: value " + v + " was rejected at proposal but applied");
        return;
      }
    }
    for (const WriteRec& w : writes_) {
      if (w.ack != 0 && pos.count(w.value) == 0) {
        Fail("linearizability: acknowledged write " + w.value + " is not in the history");
        return;
      }
    }
    // Writes: real-time order is respected.
    std::vector<const WriteRec*> acked;
    for (const WriteRec& w : writes_) {
      if (w.ack != 0) acked.push_back(&w);
    }
    for (const WriteRec* a : acked) {
      for (const WriteRec& b : writes_) {
        if (pos.count(b.value) == 0 || a->ack >= b.invoke) continue;
        if (pos[a->value] > pos[b.value]) {
          Fail("linearizability: " + a->value + " was acknowledged before " + b.value +
               " was proposed but is ordered after it");
          return;
        }
      }
    }
    // Reads observe a prefix that contains every write acknowledged before they started, and
    // nothing proposed after they completed; a read that starts after another ends sees at
    // least as much.
    for (size_t ri = 0; ri < reads_.size(); ++ri) {
      const ReadRec& r = reads_[ri];
      if (r.complete == 0) continue;
      for (const WriteRec* a : acked) {
        if (a->ack < r.invoke && pos[a->value] >= r.seen) {
          Fail("linearizability: read r" + U(ri) + " missed " + a->value +
               " acknowledged before it started");
          return;
        }
      }
      for (size_t i = 0; i < r.seen && i < global_values_.size(); ++i) {
        if (by_value[global_values_[i]]->invoke > r.complete) {
          Fail("linearizability: read r" + U(ri) + " saw " + global_values_[i] +
               " proposed after it completed");
          return;
        }
      }
      for (const ReadRec& r2 : reads_) {
        if (r2.complete != 0 && r.complete < r2.invoke && r2.seen < r.seen) {
          Fail("linearizability: a later read saw fewer writes than r" + U(ri));
          return;
        }
      }
    }
  }

  SimOptions opts_;
  raft::Rng rng_;
  bool pre_vote_ = true;
  bool check_quorum_ = true;
  uint64_t drop_per_mille_ = 0;
  uint64_t dup_per_mille_ = 0;
  uint64_t max_delay_ = 1;
  std::vector<uint64_t> initial_;
  uint64_t next_spare_id_ = 0;
  std::map<uint64_t, std::unique_ptr<SimNode>> nodes_;
  std::vector<NetMsg> net_;
  std::set<std::pair<uint64_t, uint64_t>> cuts_;
  std::set<uint64_t> retire_;
  int tick_ = 0;
  uint64_t micro_ = 0;
  uint64_t seq_ = 0;
  std::string violation_;
  std::string summary_;
  // Applied history: (term, prefix hash) per index, and the max leader term when first applied.
  std::vector<std::pair<uint64_t, uint64_t>> global_;
  std::vector<uint64_t> global_max_leader_term_;
  std::vector<std::string> global_values_;
  std::set<std::string> global_set_;
  std::map<uint64_t, uint64_t> leaders_;  // term -> leader
  uint64_t max_leader_term_ = 0;
  std::vector<WriteRec> writes_;
  std::vector<ReadRec> reads_;
  uint64_t crashes_ = 0;
  uint64_t conf_changes_ = 0;
  uint64_t snaps_sent_ = 0;
  uint64_t transfers_ = 0;
};

}  // namespace

SimResult RunSim(const SimOptions& opts) {
  Sim sim(opts);
  return sim.Run();
}

}  // namespace raft_sim
