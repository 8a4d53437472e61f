// raft::Progress: the leader's view of one follower's log (etcd-io/raft's model): match/next
// indexes, a state (probe / replicate / snapshot) and a bounded window of in-flight MsgApps.
// Internal to the library; exposed for tests and Status(). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace raft {

enum class ProgressState : uint8_t {
  // Unknown follower position: at most one MsgApp in flight until it answers.
  kProbe = 0,
  // Follower is known to be in sync: MsgApps are pipelined up to the in-flight window.
  kReplicate,
  // Follower needs the snapshot at pending_snapshot; no MsgApp until it reports back.
  kSnapshot,
};
const char* ProgressStateName(ProgressState s);

// The last indexes of the MsgApps sent and not yet acknowledged, oldest first; at most
// `capacity` of them (Config::max_inflight_msgs).
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}
  // Precondition: !Full() and last_index > every index held (checked).
  void Add(uint64_t last_index);
  // Acknowledges every MsgApp whose last index is <= index.
  void FreeLE(uint64_t index);
  void FreeFirstOne();
  bool Full() const { return indexes_.size() >= capacity_; }
  size_t Count() const { return indexes_.size(); }
  void Reset() { indexes_.clear(); }

 private:
  size_t capacity_;
  std::deque<uint64_t> indexes_;
};

struct Progress {
  explicit Progress(size_t max_inflight) : inflights(max_inflight) {}

  uint64_t match = 0;  // highest index known to be replicated on the follower
  uint64_t next = 1;   // next index to send
  ProgressState state = ProgressState::kProbe;
  uint64_t pending_snapshot = 0;  // kSnapshot: index of the snapshot sent
  // Heard from the follower since the last CheckQuorum round.
  bool recent_active = false;
  // kProbe: a MsgApp was sent and no answer arrived yet (cleared by a heartbeat response).
  bool probe_sent = false;
  bool is_learner = false;
  Inflights inflights;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);
  // The follower acknowledged entries up to n. Returns true when match moved forward.
  bool MaybeUpdate(uint64_t n);
  // Pipelining: assume entries up to n will be accepted.
  void OptimisticUpdate(uint64_t n) { next = n + 1; }
  // The follower rejected a MsgApp at index `rejected`; match_hint is the probe restart point.
  // Returns false when the rejection is stale (out of order).
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  bool IsPaused() const;
  std::string ToString() const;
};

}  // namespace raft
