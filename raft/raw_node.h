// raft::RawNode: the host's interface to one Raft node. The host owns the loop:
//
//   loop:
//     on timer:            node.Tick()
//     on network message:  node.Step(msg)
//     on client request:   node.Propose(data) / ReadIndex(ctx) / ProposeConfChange(cc)
//     if node.HasReady():
//       rd = node.Ready()
//       ... handle rd exactly as the contract on struct Ready says ...
//       node.Advance()
//
// Not thread-safe: one thread drives a RawNode (and must not call anything else on it between
// Ready() and Advance() except Step/Tick/Propose/ReadIndex, whose effects then appear in the
// next Ready). Deterministic: no clocks, threads or I/O; time is Tick().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/raft.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace raft {

// Everything the host must do after the node changed, in one batch.
//
// CONTRACT (in this order):
//  1. Persist, and make durable (fsync) before step 3b: `snapshot` (if !empty(), it replaces
//     the log), then `entries` (appended; an entry at an index that already exists replaces
//     it and every entry after it), then `hard_state` (if set). `must_sync` is false when the
//     only change is a hard state whose commit index moved (term and vote unchanged, no entries,
//     no snapshot): it must still be written, in order with the host's later writes, but need
//     not be fsynced, because losing it loses no promise (etcd-io/raft's MustSync). The host's
//     storage must keep the writes' order across a crash (what survives is a prefix of them),
//     so that a restart never sees a later write, e.g. a log compaction, without this one.
//  2. Apply `snapshot` to the state machine (if !empty()), then `committed_entries` in order.
//     Committed entries are always already durable in Storage (this node never hands out an
//     entry for applying before an earlier Ready's Advance() confirmed it persisted), so they
//     may be applied in parallel with step 1. A kConfChange entry is applied by decoding it
//     (DecodeConfChange) and calling RawNode::ApplyConfChange().
//  3. Send `messages`:
//     a. those for which CanSendBeforePersist(m) is true (the leader's MsgApp, MsgSnap,
//        MsgHeartbeat, MsgTimeoutNow and MsgReadIndexResp) may be sent at once, before or in
//        parallel with step 1: the leader counts itself toward a quorum only for entries it
//        reported durable through Advance(), so a crash losing its unsynced entries loses
//        nothing that was committed;
//     b. all others (vote requests and responses, append and heartbeat responses, forwarded
//        proposals) only AFTER step 1 is durable: a vote or an acknowledgement is a promise
//        about durable state.
//  4. `read_states`: serve each read once the applied index reaches its `index`.
//  5. Call Advance(): it acknowledges the WHOLE Ready (entries and snapshot durable, committed
//     entries applied). The next Ready() may only be taken after Advance().
// `soft_state` (if set) is informational (leader and role changed).
struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  std::vector<ReadState> read_states;
  std::vector<Entry> entries;
  Snapshot snapshot;
  std::vector<Entry> committed_entries;
  std::vector<Message> messages;
  bool must_sync = false;
};

// Step 3a of the Ready contract.
bool CanSendBeforePersist(const Message& m);

class RawNode {
 public:
  // Precondition: config.Validate() is ok (checked); config.storage outlives the node. A fresh
  // cluster is bootstrapped by giving every member a Storage whose InitialState() reports the
  // initial ConfState (MemoryStorage::SetConfState).
  explicit RawNode(const Config& config);

  // Advances logical time by one tick (the host calls it at a fixed interval).
  void Tick();
  // Starts an election now (tests, or an operator forcing a campaign).
  raft::Status Campaign();
  // Proposes a command. Success only means it was accepted for replication; it is committed
  // when it shows up in Ready::committed_entries. Errors: kProposalDropped (no leader, transfer
  // in progress), kResourceExhausted (uncommitted-bytes limit).
  raft::Status Propose(std::string data);
  // Proposes several commands as ONE message: they are appended together and replicated in the
  // same MsgApp, so a busy host pays the per-proposal raft work once per batch. All or none are
  // accepted (same errors as Propose). On success the strings were moved from; on failure they
  // are left as they were (the host may retry). Precondition: !datas->empty() (checked).
  raft::Status ProposeBatch(std::vector<std::string>* datas);
  // Proposes a single-server membership change. Rule: one change at a time; a change takes
  // effect when its entry is committed and the host calls ApplyConfChange(). Errors:
  // kProposalDropped (also: a change is still pending), kInvalidArgument.
  raft::Status ProposeConfChange(const ConfChange& cc);
  // Applies a committed conf change entry; returns the new configuration (to store with the
  // next snapshot). A leader that removed itself steps down to follower.
  ConfState ApplyConfChange(const ConfChange& cc);
  // Feeds a message received from the network. Errors: kStepLocalMsg for local-only types,
  // kPeerNotFound for a response from an unknown node (dropped harmlessly).
  raft::Status Step(const Message& m);
  // Requests a linearizable read; the answer arrives as a ReadState carrying `ctx` (which
  // should be unique per request). Errors: kProposalDropped (no leader), kResourceExhausted.
  raft::Status ReadIndex(std::string ctx);
  // Asks the leader to hand leadership to `transferee` (forwarded when not the leader).
  raft::Status TransferLeader(uint64_t transferee);
  // The host failed to deliver a message to `id` / to send it a snapshot. On a leader: `id`'s
  // replication falls back to probing. On a follower whose leader is `id` (its connection to
  // the leader is gone): it campaigns after the plain election timeout instead of the
  // randomized one, for the current term.
  void ReportUnreachable(uint64_t id);
  void ReportSnapshot(uint64_t id, bool ok);

  bool HasReady() const;
  // Precondition: HasReady() and the previous Ready was Advance()d (checked).
  raft::Ready Ready();
  // Acknowledges the whole last Ready (see the contract on struct Ready).
  void Advance();

  NodeStatus Status() const;
  // Aborts through RAFT_CHECK if the node's state is inconsistent. Tests call it after steps.
  void CheckInvariants() const { raft_.CheckInvariants(); }

  // For tests and the simulator.
  const Raft& raft() const { return raft_; }
  Raft& mutable_raft() { return raft_; }

 private:
  Raft raft_;
  SoftState prev_soft_;
  HardState prev_hard_;
  bool ready_outstanding_ = false;
  raft::Ready last_ready_;
};

}  // namespace raft
