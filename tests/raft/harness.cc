#include "tests/raft/harness.h"

#include <algorithm>

namespace raft_test {

using raft::Message;

Cluster::Cluster(const std::vector<uint64_t>& ids, ConfigTweak tweak, uint64_t seed)
    : tweak_(std::move(tweak)), seed_(seed) {
  for (uint64_t id : ids) {
    auto n = std::make_unique<TestNode>();
    n->id = id;
    n->storage = std::make_unique<raft::MemoryStorage>();
    raft::BootstrapStorage(n->storage.get(), ids);
    n->config = MakeConfig(id);
    n->config.storage = n->storage.get();
    n->node = std::make_unique<raft::RawNode>(n->config);
    nodes_[id] = std::move(n);
  }
  ProcessReadies();
  events_.clear();
}

raft::Config Cluster::MakeConfig(uint64_t id) const {
  raft::Config c;
  c.id = id;
  c.election_timeout_ticks = 10;
  c.heartbeat_timeout_ticks = 1;
  c.seed = seed_;
  if (tweak_) tweak_(&c);
  return c;
}

void Cluster::AddEmptyNode(uint64_t id) {
  auto n = std::make_unique<TestNode>();
  n->id = id;
  n->storage = std::make_unique<raft::MemoryStorage>();
  n->config = MakeConfig(id);
  n->config.storage = n->storage.get();
  n->node = std::make_unique<raft::RawNode>(n->config);
  nodes_[id] = std::move(n);
}

void Cluster::Restart(uint64_t id) {
  TestNode& n = node(id);
  // The state machine restarts from the snapshot and replays the log.
  raft::Snapshot snap;
  (void)n.storage->Snapshot(&snap);
  n.applied.clear();
  if (!snap.data.empty()) {
    size_t pos = 0;
    while (pos < snap.data.size()) {
      size_t end = snap.data.find('\n', pos);
      n.applied.push_back(snap.data.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  n.applied_index = snap.metadata.index;
  n.conf_state = snap.metadata.conf_state;
  n.config = MakeConfig(id);
  n.config.storage = n.storage.get();
  n.config.applied = snap.metadata.index;
  n.node = std::make_unique<raft::RawNode>(n.config);
}

std::vector<uint64_t> Cluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

void Cluster::HandleReady(TestNode& n) {
  raft::Ready rd = n.node->Ready();
  if (rd.soft_state) {
    events_.push_back(std::to_string(n.id) + " is " + raft::StateName(rd.soft_state->raft_state) +
                      " (lead " + std::to_string(rd.soft_state->lead) + ", term " +
                      std::to_string(n.node->raft().term()) + ")");
  }
  if (!rd.snapshot.empty()) {
    (void)n.storage->ApplySnapshot(rd.snapshot);
    n.applied.clear();
    size_t pos = 0;
    while (pos < rd.snapshot.data.size()) {
      size_t end = rd.snapshot.data.find('\n', pos);
      n.applied.push_back(rd.snapshot.data.substr(pos, end - pos));
      pos = end + 1;
    }
    n.applied_index = rd.snapshot.metadata.index;
    n.conf_state = rd.snapshot.metadata.conf_state;
    events_.push_back(std::to_string(n.id) + " installed snapshot at " +
                      std::to_string(rd.snapshot.metadata.index));
  }
  n.storage->Append(rd.entries);
  if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
  for (const raft::Entry& e : rd.committed_entries) {
    n.applied_index = e.index;
    if (e.type == raft::EntryType::kConfChange) {
      raft::ConfChange cc;
      raft::Status s = raft::DecodeConfChange(e.data, &cc);
      RAFT_CHECK(s.ok(), "bad conf change entry");
      n.conf_state = n.node->ApplyConfChange(cc);
      if (e.term > 1) {  // bootstrap entries are not interesting
        events_.push_back(std::to_string(n.id) + " applied " + raft::Describe(cc) + " -> " +
                          raft::Describe(n.conf_state));
      }
    } else if (!e.data.empty()) {
      n.applied.push_back(e.data);
    }
  }
  for (const raft::ReadState& rs : rd.read_states) {
    n.read_states.push_back(rs);
    events_.push_back(std::to_string(n.id) + " read state index " + std::to_string(rs.index) +
                      " ctx " + rs.request_ctx);
  }
  for (Message& m : rd.messages) queue_.push_back(std::move(m));
  n.node->Advance();
}

void Cluster::ProcessReadies() {
  for (int round = 0; round < 100; ++round) {
    bool any = false;
    for (auto& [id, n] : nodes_) {
      if (n->node->HasReady()) {
        HandleReady(*n);
        any = true;
      }
      n->node->CheckInvariants();
    }
    if (!any) return;
  }
}

bool Cluster::Blocked(const Message& m) const {
  if (cuts_.count({m.from, m.to}) > 0) return true;
  if (filter && !filter(m)) return true;
  return nodes_.find(m.to) == nodes_.end();
}

std::vector<std::string> Cluster::Stabilize(int max_rounds) {
  std::vector<std::string> out;
  ProcessReadies();
  for (int round = 0; round < max_rounds && !queue_.empty(); ++round) {
    std::vector<Message> batch;
    batch.swap(queue_);
    for (const Message& m : batch) {
      if (Blocked(m)) {
        out.push_back(raft::Describe(m) + " DROPPED");
        continue;
      }
      Message delivered = m;
      if (mutate) mutate(&delivered);
      out.push_back(raft::Describe(delivered));
      (void)nodes_.at(m.to)->node->Step(delivered);
      if (m.type == raft::MessageType::kMsgSnap) raw(m.from).ReportSnapshot(m.to, true);
      nodes_.at(m.to)->node->CheckInvariants();
    }
    ProcessReadies();
  }
  return out;
}

std::vector<std::string> Cluster::DeliverTo(uint64_t to) {
  std::vector<std::string> out;
  ProcessReadies();
  std::vector<Message> batch;
  std::vector<Message> rest;
  for (Message& m : queue_) (m.to == to ? batch : rest).push_back(std::move(m));
  queue_.swap(rest);
  for (const Message& m : batch) {
    if (Blocked(m)) {
      out.push_back(raft::Describe(m) + " DROPPED");
      continue;
    }
    out.push_back(raft::Describe(m));
    (void)nodes_.at(m.to)->node->Step(m);
  }
  ProcessReadies();
  return out;
}

void Cluster::Tick(uint64_t id, int ticks) {
  for (int i = 0; i < ticks; ++i) {
    raw(id).Tick();
    raw(id).CheckInvariants();
  }
  ProcessReadies();
}

void Cluster::Elect(uint64_t id) {
  (void)raw(id).Campaign();
  Stabilize();
}

void Cluster::Isolate(uint64_t id) {
  for (const auto& [other, n] : nodes_) {
    if (other != id) Cut(id, other);
  }
}

void Cluster::Cut(uint64_t a, uint64_t b) {
  cuts_.insert({a, b});
  cuts_.insert({b, a});
}

void Cluster::CutOneWay(uint64_t from, uint64_t to) { cuts_.insert({from, to}); }

void Cluster::Heal() { cuts_.clear(); }

void Cluster::CompactTo(uint64_t id, uint64_t index) {
  TestNode& n = node(id);
  std::string data;
  for (const std::string& s : n.applied) data += s + "\n";
  (void)n.storage->CreateSnapshot(n.applied_index, n.conf_state, data, nullptr);
  (void)n.storage->Compact(std::min(index, n.applied_index));
}

std::string Cluster::CheckAll() const {
  // Log matching (5.3): entries with the same index and term are identical, and so are all
  // entries before them.
  for (const auto& [a, na] : nodes_) {
    for (const auto& [b, nb] : nodes_) {
      if (a >= b) continue;
      const raft::RaftLog& la = na->node->raft().log();
      const raft::RaftLog& lb = nb->node->raft().log();
      const uint64_t lo = std::max(la.FirstIndex(), lb.FirstIndex());
      const uint64_t hi = std::min(la.LastIndex(), lb.LastIndex());
      bool matched = false;
      for (uint64_t i = hi; i >= lo && i > 0; --i) {
        uint64_t ta = la.TermOrZero(i);
        uint64_t tb = lb.TermOrZero(i);
        if (ta == tb) matched = true;
        if (matched) {
          std::vector<raft::Entry> ea;
          std::vector<raft::Entry> eb;
          (void)la.Slice(i, i + 1, raft::kNoLimit, &ea);
          (void)lb.Slice(i, i + 1, raft::kNoLimit, &eb);
          if (ea != eb) {
            return "log matching violated at index " + std::to_string(i) + " between " +
                   std::to_string(a) + " and " + std::to_string(b);
          }
        }
      }
    }
  }
  return "";
}

std::vector<std::string> Cluster::TakeEvents() {
  std::vector<std::string> out;
  out.swap(events_);
  return out;
}

std::string Cluster::NodeLine(uint64_t id) {
  const raft::Raft& r = raft(id);
  const TestNode& n = node(id);
  return std::to_string(id) + ": " + raft::StateName(r.state()) +
         " term=" + std::to_string(r.term()) + " vote=" + std::to_string(r.vote()) +
         " lead=" + std::to_string(r.lead()) + " commit=" + std::to_string(r.log().committed()) +
         " applied=" + std::to_string(n.applied_index) +
         " first=" + std::to_string(r.log().FirstIndex()) +
         " last=" + std::to_string(r.log().LastIndex()) + " " + raft::Describe(r.conf_state());
}

}  // namespace raft_test
