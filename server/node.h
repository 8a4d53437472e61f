// server::Node: one kvd member's replicated state machine. It owns the MVCC store, the durable
// raft log and the RawNode. Three threads carry a write, like etcd's raftNode/apply split:
//
//   client RPC threads --Propose/ReadIndex--> [queues] --> RAFT THREAD --Ready.entries--> PERSIST
//   peer transport     --Receive-----------> [queues] -/     |    \--Send--> Transport   THREAD
//                                                             \--committed entries--> APPLY THREAD
//
// The RAFT THREAD is the only one that touches the RawNode. It ticks every --heartbeat-interval
// ms, steps peer messages, proposes queued requests (many per raft message), runs batched
// ReadIndex rounds and takes one Ready at a time: it sends the messages that may go before
// persisting (the leader's appends), hands entries + hard state + snapshot to the PERSIST
// THREAD (one synced RocksDB write per Ready) and the committed entries to the APPLY THREAD,
// then keeps ticking and stepping while the fsync runs. When the persist thread reports the
// Ready durable, the raft thread sends the rest (votes, append responses: promises about
// durable state) and calls Advance. The APPLY THREAD applies committed entries in order, many
// per MvccStore::Apply batch, completes the writes waiting for them (wait registry keyed by
// InternalRequest.id), releases linearizable reads whose read index it reached, and runs the
// store's other apply-thread work (compaction steps, defragment, snapshot restore).
//
// Thread-safety: every public method may be called from any thread, except Start/Stop (owner).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kvstore/mvcc_store.h"
#include "kvstore/raft_log_store.h"
#include "kvstore/watchable_store.h"
#include "proto/kvd_internal.pb.h"
#include "proto/kvd_peer.grpc.pb.h"
#include "proto/kvd_peer.pb.h"
#include "proto/rpc.pb.h"
#include "raft/raw_node.h"
#include "server/config.h"
#include "server/executor.h"
#include "server/membership.h"
#include "server/metrics.h"
#include "server/status.h"

namespace server {

class Transport;

// etcd's server errors that the node itself produces (rpctypes/error.go wording).
namespace errors {
inline kvstore::Status TooManyRequests() {
  return {kvstore::Code::kResourceExhausted, "etcdserver: too many requests"};
}
inline kvstore::Status RequestTimedOut() {
  return {kvstore::Code::kUnavailable, "etcdserver: request timed out"};
}
inline kvstore::Status LeaderChanged() {
  return {kvstore::Code::kUnavailable, "etcdserver: leader changed"};
}
inline kvstore::Status NoLeader() { return {kvstore::Code::kUnavailable, "etcdserver: no leader"}; }
inline kvstore::Status Stopped() {
  return {kvstore::Code::kUnavailable, "etcdserver: server stopped"};
}
// A learner answers only serializable Range and Status (etcd 3.4).
inline kvstore::Status NotSupportedForLearner() {
  return {kvstore::Code::kUnavailable, "etcdserver: rpc not supported for learner"};
}
}  // namespace errors

// Milliseconds on the steady clock: the time base of lease deadlines (local to a member).
inline int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Bounds on every queue and loop of the node.
struct NodeLimits {
  // Client writes admitted (queued, proposed or waiting to be applied) at once; more are
  // rejected with "etcdserver: too many requests".
  size_t proposals_inflight_max = 8192;
  // Linearizable reads waiting (for a round or in one) at once; same rejection.
  size_t reads_waiting_max = 16384;
  // Messages and transport events queued for the raft thread; more are dropped (raft retries).
  size_t inbound_events_max = 16384;
  // Committed entries per MvccStore::Apply write batch.
  size_t apply_batch_entries_max = 1000;
  // Committed entries handed to the apply thread and not applied yet; above it the raft thread
  // takes no new Ready (it keeps ticking and stepping) until the apply thread catches up.
  size_t apply_queue_entries_max = 16384;
  // Client proposals per raft message (one MsgProp, one MsgApp per follower for all of them),
  // and their payload bytes.
  size_t proposal_batch_entries_max = 1024;
  size_t proposal_batch_bytes_max = 1u << 20;
  // Raft log entries kept behind a snapshot for slow followers (etcd keeps 5000).
  uint64_t log_retain_entries = 5000;
  // A snapshot (and log compaction) is also taken once this many bytes of entries
  // (raft::EntrySizeBytes) were committed since the last one, and then at most about
  // log_retain_bytes of log is kept behind it (fewer than log_retain_entries when entries are
  // big; a leader keeps more for a lagging follower, up to 3 x log_retain_bytes). Why: kvd's
  // entries batch many requests, so --snapshot-count entries can be gigabytes and the log's
  // RocksDB family was flushed and compacted in full; truncated this soon, most entries are
  // deleted while still in the memtable (16 MiB), and a flush drops them.
  // snapshot_trigger_bytes 0 turns the byte rule off (both parts). The bytes are counted over
  // the raft log store's cache of recent entries (RaftLogStoreOptions::cache_bytes_max, 16
  // MiB): with log_retain_bytes at or above it nothing is compacted by bytes.
  uint64_t snapshot_trigger_bytes = 4u << 20;
  uint64_t log_retain_bytes = 4u << 20;
  // Keys per MvccStore::CompactStep between two Readys.
  size_t compact_step_keys = 1000;
  // Proposals handed to the RawNode per loop iteration (the rest wait for the next one).
  size_t proposals_per_loop_max = 4096;
  // Worker threads that serve applied linearizable reads and other off-raft-thread work.
  size_t read_workers = 2;
  size_t read_work_queue_max = 16384;
};

class Node {
 public:
  // The outcome of a proposed request: the store's status and, when ok, its response (the
  // callee may move from it). Called exactly once, on the apply thread (when applied) or the
  // raft thread (failures): it must be quick.
  using ApplyDone = std::function<void(const kvstore::Status&, kvdpb::InternalResponse*)>;
  // Called exactly once when a linearizable read may be served (ok) or has failed. Runs on a
  // read worker thread, so it may read the store.
  using ReadDone = std::function<void(const kvstore::Status&)>;

  // Opens the store and the raft log under config.data_dir. With an empty log: bootstraps a new
  // cluster (--initial-cluster-state=new), or joins a running one (existing): asks the other
  // members of --initial-cluster for the membership, takes the cluster ID and its own member ID
  // (created by MemberAdd) from it and waits for the leader to send the log or a snapshot.
  // Errors (exit code 1): I/O, a data dir of another member or of a removed member, a joining
  // member that was not added first ("member count is unequal"), no member reachable.
  static Status Open(const Config& config, const NodeLimits& limits, std::unique_ptr<Node>* out);
  ~Node();  // Stop()s
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Metrics the raft thread keeps up to date (may stay unset). Precondition: before Start();
  // `metrics` outlives the node.
  void SetMetrics(EtcdMetrics* metrics) { metrics_ = metrics; }
  // Null until SetMetrics (which happens before Start).
  EtcdMetrics* metrics() const { return metrics_; }
  // Starts the raft thread and the outbound peer streams. Precondition: not started (checked).
  void Start();
  // Stops the raft thread and the transport; every waiting request fails with "etcdserver:
  // server stopped". Idempotent.
  void Stop();
  // Leader only: hands leadership to the most caught-up voter whose connection is open and
  // waits up to `timeout` for it to happen (SIGTERM path). Returns true when this node is no
  // longer leader; false at once when no other voter is connected.
  bool TransferLeadershipAway(std::chrono::milliseconds timeout);

  // ---- client side (any thread) ----
  // Proposes `req` (req.id is assigned here) and calls `done` when it is applied on THIS
  // member, or fails (too many requests, timed out, stopped).
  void Propose(kvdpb::InternalRequest req, ApplyDone done);
  // Waits for a ReadIndex round that starts after this call and for the local applied index to
  // reach its read index (batched: one round serves every read queued while the previous round
  // was in flight).
  void ReadIndex(ReadDone done);

  // A keep-alive on a follower: forwarded to the leader. `done` gets the granted TTL (0 for an
  // unknown lease) or a failure, on a gRPC thread.
  void ForwardLeaseRenew(int64_t lease_id,
                         std::function<void(const kvstore::Status&, int64_t ttl)> done);
  // A LeaseTimeToLive on a follower: asks the leader for the remaining TTL (-1 for an unknown
  // lease); same contract as ForwardLeaseRenew.
  void ForwardLeaseTimeToLive(int64_t lease_id,
                              std::function<void(const kvstore::Status&, int64_t ttl)> done);

  // Runs `fn` once the store has carried out the pending physical compaction (at once if none
  // is pending). APPLY THREAD ONLY: call it from an ApplyDone callback (etcd's Compact with
  // physical=true answers only then).
  void AfterPhysicalCompaction(std::function<void()> fn);

  // Leader only (checked by the caller): transfers leadership to `target` and calls `done` on
  // the raft thread once `target` leads (ok) or after 2 x election timeout ("etcdserver:
  // request timed out, leader transfer took too long").
  void MoveLeader(uint64_t target, std::function<void(const kvstore::Status&)> done);

  // Runs fn(true) on the raft thread between two Readys (for apply-thread-only store calls
  // such as Defragment), or fn(false) if the node stops first. False when the queue is full or
  // the node already stopped (fn is then never called).
  [[nodiscard]] bool RunOnRaftThread(std::function<void(bool run)> fn);
  // Runs fn(true) on the apply thread after everything dispatched before it was applied (for
  // apply-thread-only store calls such as Defragment), or fn(false) if the node stops first.
  // False when the apply queue is full or the node stopped (fn is then never called).
  [[nodiscard]] bool RunOnApplyThread(std::function<void(bool run)> fn);

  // ---- corruption check (server/corrupt_check.h) ----
  // Asks peer `id` for the hash of its key-value history at `revision` once it has served a
  // ReadIndex round (kvdpb.Peer/HashKV); `done` runs once, on a gRPC thread (or at once for an
  // unknown peer). Never blocks; bounded by `timeout_ms`. Any thread.
  void AskPeerHashKV(
      uint64_t id, int64_t revision, int timeout_ms,
      std::function<void(const grpc::Status&, const kvdpb::PeerHashKVResponse&)> done);
  // Called on the apply thread each time it applied a Compaction entry successfully: must be
  // quick and never block. Precondition: before Start().
  void SetOnCompactionApplied(std::function<void()> fn) { on_compaction_applied_ = std::move(fn); }

  // ---- membership (any thread) ----
  // The answer to a Cluster RPC: code/message (0 = ok) and, when ok, the member list after the
  // change (as this member knows it) and, for an add, the new member. Called exactly once, on
  // the raft thread, a gRPC thread or a read worker: it must be quick.
  using MemberChangeDone = std::function<void(kvdpb::MemberChangeResponse)>;
  // etcd's AddMember / RemoveMember / UpdateMember / PromoteMember. `req.peer_urls` must be
  // validated and sorted by the caller. The leader checks (strict reconfiguration, learner
  // readiness, etcd's validation), proposes the conf change and answers once it applied it; a
  // follower forwards the request to the leader (kvdpb.Peer/MemberChange) and answers once it
  // applied the change itself. Errors: etcd's membership errors (server/membership.h), no
  // leader, leader changed, request timed out, too many requests, server stopped.
  void ChangeMembership(kvdpb::MemberChangeRequest req, MemberChangeDone done);
  // The leader side of ChangeMembership (never forwards: "leader changed" if not leader).
  void ChangeMembershipAsLeader(kvdpb::MemberChangeRequest req, MemberChangeDone done);
  // A peer told this member it was removed from the cluster: stop (see SetOnRemoved).
  void ReportRemoved();
  // Called once (on the raft thread) when this member learns it was removed, 1 s after it
  // applied its own removal (etcd's stopWithDelay) or at once when a peer refused it. The owner
  // should then stop the process. Precondition: before Start().
  void SetOnRemoved(std::function<void()> fn) { on_removed_ = std::move(fn); }
  const Membership& membership() const { return membership_; }

  // ---- transport side (any thread) ----
  // A message from a peer. Dropped (false) when the inbound queue is full.
  bool Receive(raft::Message m);
  // A MsgSnap whose checkpoint has been received into `checkpoint_path` (the raft thread
  // restores it, then steps the message, then removes the file).
  bool ReceiveSnapshot(raft::Message m, std::string checkpoint_path);
  void ReportUnreachable(uint64_t id);
  void ReportSnapshot(uint64_t id, bool ok);
  // A peer introduced itself (name and client URLs, for MemberList).
  void LearnPeer(const kvdpb::PeerHello& hello);

  // ---- queries (any thread) ----
  kvstore::MvccStore& store() { return *store_; }
  // The store's watch side: registered as its HistoryObserver before anything is applied and
  // told OnHistoryReplaced after a snapshot restore (both on the raft thread). Response headers
  // of its streams get this member's cluster_id, member_id and raft_term.
  kvstore::WatchableStore& watchable() { return *watchable_; }
  const Config& config() const { return config_; }
  uint64_t member_id() const { return config_.member_id; }
  // A lease ID for a LeaseGrant without one, picked by the member that takes the request, as
  // etcd does (its request-ID generator: member ID bits, start time in ms, a counter), so IDs
  // differ across clusters and restarts; every replica applies the ID carried by the entry.
  // Positive, never 0. Thread-safe.
  int64_t NewLeaseId();
  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t leader() const { return lead_.load(); }
  uint64_t term() const { return term_.load(); }
  uint64_t commit_index() const { return commit_.load(); }
  // The last index the store applied (the apply thread publishes it).
  uint64_t applied_index() const { return applied_.load(); }
  // The first index the raft log still holds (older entries were compacted behind a snapshot).
  // Any thread.
  uint64_t log_first_index() const { return log_->FirstIndex(); }
  bool is_leader() const { return leader() == member_id(); }
  // Whether this member is a learner in the configuration it applied last (any thread).
  bool is_learner() const { return learner_.load(); }
  // cluster_id, member_id, raft_term and the store's current revision.
  void FillHeader(etcdserverpb::ResponseHeader* header) const;
  std::vector<MemberInfo> Members() const;
  // This member's hello for outbound peer streams.
  kvdpb::PeerHello Hello(uint64_t to) const;
  Executor& workers() { return *workers_; }
  // The peer service (kvdpb.Peer) to register on the peer listener.
  grpc::Service* peer_service();

 private:
  struct Proposal {
    uint64_t id = 0;
    std::string data;
    ApplyDone done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct ReadWaiter {
    ReadDone done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct ReadRound {
    std::string ctx;
    std::vector<ReadWaiter> waiters;
    bool has_index = false;
    uint64_t index = 0;
    std::chrono::steady_clock::time_point sent;
  };
  // A Cluster RPC at the leader: waiting to be proposed (held) or to be applied (waiting).
  struct MemberChangeWaiter {
    kvdpb::MemberChangeContext ctx;
    MemberChangeDone done;
    std::chrono::steady_clock::time_point deadline;
  };
  static constexpr size_t kMemberChangesMax = 16;

  struct Event {
    enum class Kind { kMessage, kSnapshot, kUnreachable, kSnapshotStatus, kCall } kind;
    raft::Message msg;
    std::string path;
    uint64_t peer = 0;
    bool ok = false;
    std::function<void(bool run)> fn;  // kCall
  };

  Node(const Config& config, const NodeLimits& limits);
  Status OpenImpl();
  // Membership (server/node_membership.cc).
  Status JoinExisting();
  std::map<uint64_t, std::string> PeerTargets() const;
  void ApplyMembership(uint64_t index, const raft::ConfChange& cc);
  void RestoreMembership(const raft::Snapshot& snap);
  void ProposeMemberChanges();
  kvstore::Status CheckMemberChange(const kvdpb::MemberChangeContext& change);
  void ExpireMemberChanges(std::chrono::steady_clock::time_point now, bool stopping);
  void MarkRemoved(std::chrono::milliseconds delay);
  void MaybeStopRemoved(std::chrono::steady_clock::time_point now);
  void SaveMembership();
  void Run();
  void HandleEvent(Event& ev);
  void ProposeHeld();
  // Takes a Ready, starts its persist (or finishes it at once when nothing must be synced).
  void HandleReady();
  // The Ready's persist is durable: send the rest, Advance.
  void FinishReady();
  // Hands committed entries to the apply thread in order; conf changes are applied here (on the
  // raft thread, which owns the RawNode) once everything before them was applied.
  void ApplyCommitted(std::vector<raft::Entry>& entries);
  void CompleteWrite(uint64_t id, const kvstore::Status& s, kvdpb::InternalResponse* resp);
  void PersistLoop();

  // ---- apply stage ----
  struct ApplyJob {
    enum class Kind { kEntries, kReads, kCall } kind = Kind::kEntries;
    std::vector<raft::Entry> entries;  // kEntries: normal entries, in index order
    uint64_t last_index = 0;           // kEntries: applied index once done (covers skipped ones)
    uint64_t read_index = 0;           // kReads: serve `reads` once applied_ reaches it
    std::vector<ReadWaiter> reads;
    std::function<void(bool run)> fn;  // kCall
  };
  // Queues a job for the apply thread. Entries jobs are always accepted (they are committed;
  // the raft thread bounds them by not taking Readys); others fail when the queue is full.
  // Moves from `job` only when it returns true.
  bool PushApply(ApplyJob& job);
  // Blocks the raft thread until the apply thread applied everything queued before.
  void WaitApplyIdle();
  void ApplyLoop();
  void ApplyJobs(std::vector<ApplyJob>* jobs);
  // applied_ = max(applied_, index).
  void PublishApplied(uint64_t index);
  void ReleaseReads(bool stopping);
  void MaybeStartReadRound();
  void MaybeFinishReadRound();
  void FailReads(std::vector<ReadWaiter>* waiters, const kvstore::Status& s);
  void ExpireWaiters(std::chrono::steady_clock::time_point now);
  void MaybeSnapshot();
  void MaybeExpireLeases();
  void FailEverything(const kvstore::Status& s);
  bool PushEvent(Event ev);

  Config config_;
  NodeLimits limits_;
  uint64_t cluster_id_ = 0;
  std::unique_ptr<kvstore::Engine> engine_;
  std::unique_ptr<kvstore::MvccStore> store_;
  // Declared after store_: destroyed first (the store only calls it from the raft thread).
  std::unique_ptr<kvstore::WatchableStore> watchable_;
  std::unique_ptr<kvstore::RaftLogStore> log_;  // in the same Engine as the store
  std::unique_ptr<raft::RawNode> raft_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Executor> workers_;
  EtcdMetrics* metrics_ = nullptr;

  // Published by the raft thread for the other threads.
  std::atomic<uint64_t> lead_{0};
  std::atomic<bool> learner_{false};  // follows conf_state_ (PublishConfState)
  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> commit_{0};
  std::atomic<uint64_t> applied_{0};

  Membership membership_;
  std::string membership_path_;  // <data-dir>/member/membership
  std::function<void()> on_removed_;
  std::function<void()> on_compaction_applied_;  // apply thread

  // Queues from other threads to the raft thread, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_ = false;
  bool wake_ = false;  // the apply thread caught up (the raft thread may take a Ready again)
  std::deque<Proposal> proposals_;
  std::vector<ReadWaiter> new_reads_;
  std::deque<Event> events_;
  std::atomic<size_t> proposals_inflight_{0};
  std::atomic<size_t> reads_waiting_{0};
  std::atomic<uint64_t> next_request_id_{0};

  // Raft thread state.
  std::thread raft_thread_;
  std::deque<Proposal> held_;  // admitted, waiting for a leader to propose to
  // Proposed, waiting to be applied: filled by the raft thread, completed by the apply thread,
  // expired by the raft thread.
  std::mutex waiting_mu_;
  std::unordered_map<uint64_t, Proposal> waiting_;
  std::vector<ReadWaiter> pending_reads_;  // waiting for the next round
  std::optional<ReadRound> round_;
  uint64_t read_seq_ = 0;
  raft::ConfState conf_state_;
  // Publishes what other threads read of conf_state_ (is_learner). Raft thread, after every
  // change of conf_state_.
  void PublishConfState();
  raft::HardState hard_state_;
  uint64_t raft_applied_ = 0;  // last committed index handed to the apply thread
  uint64_t snapshot_index_ = 0;
  // Bytes (raft::EntrySizeBytes) of the entries handed to the apply thread since the last
  // snapshot was taken: MaybeSnapshot's byte trigger (approximate: reset to 0 at a snapshot,
  // which is taken at the store's applied index, a little behind).
  uint64_t committed_bytes_since_snapshot_ = 0;
  // When MaybeSnapshot last logged, and how many snapshots it took silently since (a snapshot
  // can come every second under load: the log line is rate-limited).
  int64_t snapshot_logged_ms_ = 0;
  uint64_t snapshots_unlogged_ = 0;
  std::map<int64_t, int64_t> revoking_;
  // The Ready being persisted (must_sync), and the messages that wait for its fsync.
  bool ready_outstanding_ = false;
  std::vector<raft::Message> ready_later_;
  std::optional<raft::HardState> ready_hard_state_;
  uint64_t ready_snapshot_index_ = 0;

  // Persist thread: one Ready's entries at a time. Under mu_: persist_done_ (and the job).
  struct PersistJob {
    std::optional<raft::HardState> hard_state;
    std::vector<raft::Entry> entries;
    raft::Snapshot snapshot;
    bool sync = true;  // Ready.must_sync: false when only the commit index moved
  };
  std::thread persist_thread_;
  std::optional<PersistJob> persist_job_;
  bool persist_done_ = false;
  std::condition_variable persist_cv_;

  // Apply thread. Under apply_mu_: the queue, its entry count, busy flag and stop flag.
  std::thread apply_thread_;
  std::mutex apply_mu_;
  std::condition_variable apply_cv_;       // work for the apply thread
  std::condition_variable apply_idle_cv_;  // the apply thread finished its jobs
  std::deque<ApplyJob> apply_queue_;
  size_t apply_queue_entries_ = 0;
  bool apply_busy_ = false;
  bool apply_stop_ = false;
  std::atomic<bool> raft_waits_for_apply_{false};
  // Apply thread only.
  bool compacting_ = false;
  std::vector<std::function<void()>> compaction_waiters_;  // bounded by proposals_inflight_max
  std::vector<std::pair<uint64_t, std::vector<ReadWaiter>>> read_releases_;  // (index, reads)
  struct TransferWaiter {
    uint64_t target = 0;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(const kvstore::Status&)> done;
  };
  std::vector<TransferWaiter> transfer_waiters_;  // at most kTransferWaitersMax
  static constexpr size_t kTransferWaitersMax = 16;
  void CheckTransferWaiters(std::chrono::steady_clock::time_point now, bool stopping);
  std::map<int64_t, int64_t> revoking_unused_;  // lease id -> when its revoke was proposed (ms)
  // Membership changes at the leader (together at most kMemberChangesMax).
  std::deque<MemberChangeWaiter> member_changes_held_;
  std::map<uint64_t, MemberChangeWaiter> member_changes_waiting_;  // by request id
  // When this member learned it was removed, when to call on_removed_ (raft thread).
  std::optional<std::chrono::steady_clock::time_point> removed_stop_at_;
  bool removed_notified_ = false;
};

}  // namespace server
