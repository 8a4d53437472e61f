// A seeded, single-threaded Raft cluster simulator. One seed fully determines a run: cluster
// size, options, the simulated network (drop, duplicate, reorder, delay, symmetric and
// asymmetric partitions), crashes that lose every unsynced write, restarts, membership
// changes, leadership transfers, snapshots/compaction and a client workload of writes
// (appends to a list) and ReadIndex reads.
//
// Checked after every step: election safety (one leader per term), log matching (prefix
// hashes of every pair of logs), leader completeness (a new leader holds every entry applied
// anywhere before its term), state machine safety (every node applies the same entry at an
// index) and each node's CheckInvariants(). At the end: the client history is linearizable
// (writes ordered consistently with real time, reads observe every write acknowledged before
// they started and nothing not yet proposed, reads never go backwards), and after all faults
// heal a leader is elected and new proposals commit everywhere within a bounded number of
// ticks.
#pragma once

#include <cstdint>
#include <string>

#include "raft/raft.h"

namespace raft_sim {

struct SimOptions {
  uint64_t seed = 1;
  // Ticks of random faults and workload, then the healed phase's liveness bounds. Without
  // PreVote, nodes with stale logs keep forcing split elections, so electing can take several
  // election timeouts (10 ticks each): the bound is generous but finite.
  int chaos_ticks = 120;
  int elect_within_ticks = 200;
  int commit_within_ticks = 60;
  // Deliberately broken rules (to prove the checkers can fail); pre_vote is forced off when a
  // knob is set, so that split votes happen.
  raft::TestingKnobs knobs;
  bool trace = false;  // print every event to stderr
};

struct SimResult {
  bool ok = true;
  std::string violation;  // the first violation found (empty when ok)
  std::string summary;    // counters, for logs
  uint64_t committed_writes = 0;
  uint64_t completed_reads = 0;
};

SimResult RunSim(const SimOptions& opts);

}  // namespace raft_sim
