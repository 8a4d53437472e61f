// The seeded simulator (sim.h) over many seeds. A failing seed prints one command that replays
// it exactly. KV_SIM_SEEDS (count) and KV_SIM_FIRST_SEED (default 1) override the seeds run by
// the "sim seeds" cases, which are split in 10 slices so CTest can run them in parallel.
#include "tests/raft/sim.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#ifndef KV_SIM_DEFAULT_SEEDS
#define KV_SIM_DEFAULT_SEEDS 10000
#endif

namespace {

uint64_t EnvU64(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  return std::stoull(v);
}

// KV_SIM_BREAK_VOTES=1 turns on the double-voting knob (to see the checkers and the failure
// report at work).
bool BreakVotes() { return EnvU64("KV_SIM_BREAK_VOTES", 0) != 0; }

std::string ReplayCommand(uint64_t seed) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return std::string(BreakVotes() ? "KV_SIM_BREAK_VOTES=1 " : "") +
         "KV_SIM_SEED=" + std::to_string(seed) + " " + (ec ? "raft_sim_test" : exe.string()) +
         " \"sim replay\"";
}

// Runs seeds [first, first + count); reports every failing seed with its replay command.
void RunSeeds(uint64_t first, uint64_t count) {
  uint64_t failures = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    raft_sim::SimOptions opts;
    opts.seed = seed;
    opts.knobs.grant_multiple_votes_per_term = BreakVotes();
    const raft_sim::SimResult r = raft_sim::RunSim(opts);
    if (!r.ok) {
      ++failures;
      // Unwrapped, one line each, for scripts/sim-seeds.sh and humans to copy.
      std::fprintf(stderr, "SIM FAILURE seed=%llu: %s\nREPLAY: %s\n",
                   static_cast<unsigned long long>(seed), r.violation.c_str(),
                   ReplayCommand(seed).c_str());
      FAIL_CHECK("seed " << seed << " failed: " << r.violation << "\n  " << r.summary
                         << "\n  replay: " << ReplayCommand(seed));
      if (failures >= 5) return;
    }
  }
}

// Slice `slice` of the seeds [KV_SIM_FIRST_SEED, KV_SIM_FIRST_SEED + KV_SIM_SEEDS).
void RunSlice(uint64_t slice) {
  const uint64_t total = EnvU64("KV_SIM_SEEDS", KV_SIM_DEFAULT_SEEDS);
  const uint64_t base = EnvU64("KV_SIM_FIRST_SEED", 1);
  const uint64_t per = (total + 9) / 10;
  const uint64_t first = slice * per;
  const uint64_t end = std::min<uint64_t>(total, (slice + 1) * per);
  if (first >= end) return;
  RunSeeds(base + first, end - first);
}

}  // namespace

// Goal: replay one seed (KV_SIM_SEED, default 1) exactly; KV_SIM_TRACE=1 prints every event.
TEST_CASE("sim replay", "[raft][sim]") {
  raft_sim::SimOptions opts;
  opts.seed = EnvU64("KV_SIM_SEED", 1);
  opts.knobs.grant_multiple_votes_per_term = BreakVotes();
  opts.trace = EnvU64("KV_SIM_TRACE", 0) != 0;
  const raft_sim::SimResult r = raft_sim::RunSim(opts);
  INFO(r.summary);
  INFO(r.violation);
  REQUIRE(r.ok);
  // The run did real work: the workload's writes were acknowledged.
  REQUIRE(r.committed_writes > 0);
}

// Goal: a same seed gives the same run (determinism is what makes replays possible).
TEST_CASE("sim is deterministic", "[raft][sim]") {
  raft_sim::SimOptions opts;
  opts.seed = 77;
  const raft_sim::SimResult a = raft_sim::RunSim(opts);
  const raft_sim::SimResult b = raft_sim::RunSim(opts);
  REQUIRE(a.summary == b.summary);
}

// Goal: with a node granting two votes in one term, the checkers report a violation within
// the CI seeds (proves the election safety checker can fail).
TEST_CASE("sim detects a broken rule: two votes in one term", "[raft][sim]") {
  bool found = false;
  std::string what;
  for (uint64_t seed = 1; seed <= 2000 && !found; ++seed) {
    raft_sim::SimOptions opts;
    opts.seed = seed;
    opts.knobs.grant_multiple_votes_per_term = true;
    const raft_sim::SimResult r = raft_sim::RunSim(opts);
    if (!r.ok) {
      found = true;
      what = r.violation;
    }
  }
  INFO(what);
  REQUIRE(found);
  REQUIRE(what.find("election safety") != std::string::npos);
}

#define KV_SIM_SLICE(n) \
  TEST_CASE("sim seeds slice " #n, "[raft][sim]") { RunSlice(n); }
// Goal (each slice): every seed of its tenth of the CI seeds passes every checker.
KV_SIM_SLICE(0)
KV_SIM_SLICE(1)
KV_SIM_SLICE(2)
KV_SIM_SLICE(3)
KV_SIM_SLICE(4)
KV_SIM_SLICE(5)
KV_SIM_SLICE(6)
KV_SIM_SLICE(7)
KV_SIM_SLICE(8)
KV_SIM_SLICE(9)
