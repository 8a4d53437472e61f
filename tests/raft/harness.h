// A deterministic in-process cluster for the scripted and paper tests: RawNodes over
// MemoryStorage, a message queue delivered on demand, and partitions. Every write is treated as
// durable at once (crashes are the simulator's business, see sim.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/codec.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft_test {

struct TestNode {
  uint64_t id = 0;
  std::unique_ptr<raft::MemoryStorage> storage;
  std::unique_ptr<raft::RawNode> node;
  raft::Config config;
  // The state machine: the data of applied normal, non-empty entries, in order.
  std::vector<std::string> applied;
  uint64_t applied_index = 0;
  raft::ConfState conf_state;
  std::vector<raft::ReadState> read_states;
};

class Cluster {
 public:
  using ConfigTweak = std::function<void(raft::Config*)>;

  // Creates nodes `ids`, all bootstrapped with the log of BootstrapEntries(ids) (so nodes added
  // later can join by replaying the log), and applies the bootstrap entries.
  explicit Cluster(const std::vector<uint64_t>& ids, ConfigTweak tweak = nullptr,
                   uint64_t seed = 1);

  // Adds a node with an empty log that will learn the cluster from the leader.
  void AddEmptyNode(uint64_t id);
  // Recreates the RawNode of `id` from its storage (all writes are durable here).
  void Restart(uint64_t id);

  TestNode& node(uint64_t id) { return *nodes_.at(id); }
  raft::RawNode& raw(uint64_t id) { return *nodes_.at(id)->node; }
  const raft::Raft& raft(uint64_t id) { return nodes_.at(id)->node->raft(); }
  std::vector<uint64_t> ids() const;

  // Handles every pending Ready of every node (persist, apply, queue messages).
  void ProcessReadies();
  // Delivers queued messages (dropping those crossing a cut) and processes readies until no
  // message is left, at most max_rounds rounds. Returns the delivered messages' descriptions.
  std::vector<std::string> Stabilize(int max_rounds = 1000);
  // Delivers only the queued messages addressed to `to` (one round).
  std::vector<std::string> DeliverTo(uint64_t to);
  void Tick(uint64_t id, int ticks);
  // Ticks `id` until it campaigns or leads (bounded): a convenient election.
  void Elect(uint64_t id);

  void Isolate(uint64_t id);
  void Cut(uint64_t a, uint64_t b);  // both directions
  void CutOneWay(uint64_t from, uint64_t to);
  void Heal();
  void DropQueued() { queue_.clear(); }
  std::vector<raft::Message>& queue() { return queue_; }

  // Creates a snapshot at the node's applied index and compacts its log up to `index`.
  void CompactTo(uint64_t id, uint64_t index);
  // Log matching and per-node invariants over all nodes (CHECKs through Catch2 by the caller
  // inspecting the returned error text; empty means fine).
  std::string CheckAll() const;
  // Events (state changes, applied conf changes, read states) since the last call.
  std::vector<std::string> TakeEvents();

  std::string NodeLine(uint64_t id);
  // Optional message filter: return false to drop a message.
  std::function<bool(const raft::Message&)> filter;
  // Optional rewrite of each delivered message (e.g. cut entries off the end of a MsgApp).
  std::function<void(raft::Message*)> mutate;

 private:
  void HandleReady(TestNode& n);
  bool Blocked(const raft::Message& m) const;
  raft::Config MakeConfig(uint64_t id) const;

  ConfigTweak tweak_;
  uint64_t seed_;
  std::map<uint64_t, std::unique_ptr<TestNode>> nodes_;
  std::vector<raft::Message> queue_;
  std::set<std::pair<uint64_t, uint64_t>> cuts_;
  std::vector<std::string> events_;
};

}  // namespace raft_test
