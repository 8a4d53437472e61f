// The robustness harness: a real kvd cluster behind fault-injecting peer proxies, a
// concurrent client workload through the etcd v3 gRPC API that records every operation, watch
// streams that reconnect and resume, and a fault scheduler driven by a seed. At the end it
// heals everything, reads every key, waits for the watchers to sync, compares HashKV on all
// members and runs the checkers (checkers.h) on the recorded history.
//
// Threads: the caller's thread owns the cluster (spawns, kills, restarts: kvtest::Process
// wants its spawner to outlive the child) and runs the fault scheduler; one thread per client
// and per watcher; one per peer proxy.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/robustness/checkers.h"

namespace kv::robustness {

enum class FaultKind {
  kKill,        // kill -9 (the leader more often), then restart on the same data dir
  kPause,       // SIGSTOP, then SIGCONT
  kMoveLeader,  // Maintenance/MoveLeader to a random follower
  kPartition,   // one member isolated (drop or blackhole), the leader more often
  kAsymmetric,  // one direction of one link blackholed
  kCompact,     // physical compaction behind the audit watcher, while a slow one lags
  // A follower removed (MemberRemove), its data dir wiped, added back under a new member ID
  // (MemberAdd, as a voter) with the same peer URL and started with
  // --initial-cluster-state=existing. Drawn less often than the others (kReplaceMemberWeight).
  kReplaceMember,
  // The raft log's synced write of one member (the leader more often) delayed by 50-500 ms
  // for 1-4 s (failpoint raftBeforeSave=sleep(MS), armed over the member's test-only HTTP
  // endpoint), then disarmed.
  kFsyncDelay,
  // The raft log's synced write of one member fails (raftBeforeSave=error): kvd must abort
  // (it cannot persist what it would acknowledge); it is then restarted on the same data dir.
  kFsyncFail,
};

// Relative weight of replace-member in the draw (every other kind weighs 1): about one per
// 60 s round, since a round draws ~20 faults and a replacement takes several seconds.
inline constexpr double kReplaceMemberWeight = 0.5;

std::string ToString(FaultKind kind);
std::vector<FaultKind> AllFaults();

struct HarnessOptions {
  std::filesystem::path kvd_binary;
  std::uint64_t seed = 1;
  std::chrono::milliseconds workload_duration{30000};
  std::size_t members = 3;
  std::size_t clients = 4;
  std::size_t keys = 12;
  std::vector<FaultKind> faults = AllFaults();
  // Pause between two faults: uniform in [min, max].
  std::chrono::milliseconds fault_gap_min{500};
  std::chrono::milliseconds fault_gap_max{2500};
  // Where a failing run keeps its history, logs, summary and seed ("": $TMPDIR or /tmp).
  std::filesystem::path artifacts_root;
  // Keep the artifacts even when the run passes.
  bool keep_always = false;
  // Added to every member's environment (after the harness's own variables), e.g. the byte
  // rule of log compaction (KVD_SNAPSHOT_TRIGGER_BYTES / KVD_SNAPSHOT_CATCHUP_BYTES).
  std::vector<std::pair<std::string, std::string>> member_env;
};

struct HarnessResult {
  bool passed = false;
  Report report;
  std::map<std::string, std::size_t> faults;  // injected, by kind
  std::size_t ops_ok = 0;
  std::size_t ops_unknown = 0;
  // Peer connections through the proxies, and those whose opener was not identified (links
  // faults never apply to them: a high share means the partitions did not bite).
  std::uint64_t peer_connections = 0;
  std::uint64_t peer_connections_unidentified = 0;
  std::string error;          // harness failure (cluster did not recover, ...), "" if none
  std::string artifacts_dir;  // set when artifacts were kept
  std::string Summary() const;
};

// Runs one seeded round. Never throws for a failure of kvd: that is reported in the result.
HarnessResult RunRound(const HarnessOptions& options);

// Re-runs the checkers on a saved history (the replay of a failed run's verdict).
Report CheckSavedHistory(const std::filesystem::path& history_json);

}  // namespace kv::robustness
