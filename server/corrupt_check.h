// server::CorruptChecker: etcd 3.4's --experimental-corrupt-check-time, on by default in kvd.
//
// On the leader only, every `period` and right after this member applied a Compaction entry,
// one check runs on the checker's own thread (never on the raft or apply thread):
//   1. hash the local store at its current revision R (MvccStore::HashKV; compact revision C);
//   2. ask every other voter, in parallel and each with a deadline, for its hash at R
//      (Node::AskPeerHashKV: the peer first serves a ReadIndex round, so it has applied at
//      least what the leader had applied, then hashes on a read worker);
//   3. compare only the answers whose compact revision is C (like etcd); unreachable members,
//      errors and other compact revisions are skipped, not failures;
//   4. for a member whose hash differs from the leader's: log one line (member, revision, both
//      hashes) and propose, through raft, Alarm ACTIVATE CORRUPT for that member's ID (etcd
//      raises it with the peer's ID). While the alarm is active every member refuses Range,
//      Put, DeleteRange, Txn, Compaction and LeaseGrant with "etcdserver: corrupt cluster".
// Every check ends with one log line "corruption check at revision R ...: N compared, M
// mismatched, K skipped" (tests count these lines).
//
// Bounds: one check in flight at a time (triggers during a check coalesce into one more),
// one request per peer per check, each with a deadline; nothing is queued.
//
// Thread-safety: Trigger from any thread (it only sets a flag); Start/Stop from the owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "server/node.h"

namespace server {

struct CorruptCheckOptions {
  // Time between two periodic checks (--experimental-corrupt-check-time); > 0.
  std::chrono::milliseconds period{60000};
  // Deadline of one peer's answer (etcd: its request timeout, 5 s + 2 x election timeout).
  std::chrono::milliseconds peer_timeout{7000};
};

class CorruptChecker {
 public:
  // `node` must outlive the checker (or at least its Stop()).
  CorruptChecker(Node* node, CorruptCheckOptions options);
  ~CorruptChecker();  // Stop()s
  CorruptChecker(const CorruptChecker&) = delete;
  CorruptChecker& operator=(const CorruptChecker&) = delete;

  // Starts the checker thread; the first periodic check runs one period later.
  void Start();
  // Stops the thread (abandons a check waiting for peers at once). Idempotent.
  void Stop();
  // Asks for a check as soon as the current one (if any) is done. Quick, never blocks on the
  // network: callable from the apply thread.
  void Trigger();

  // Checks completed (on the leader) and mismatches found since Start (any thread).
  uint64_t checks_completed() const { return checks_.load(); }
  uint64_t mismatches_found() const { return mismatches_.load(); }

 private:
  struct Round;
  void Run();
  void CheckOnce();

  Node* node_;
  CorruptCheckOptions options_;
  std::thread thread_;
  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool started_ = false;
  bool stop_ = false;
  bool triggered_ = false;
  std::shared_ptr<Round> round_;  // the check waiting for peers, if any
  std::atomic<uint64_t> checks_{0};
  std::atomic<uint64_t> mismatches_{0};
};

}  // namespace server
