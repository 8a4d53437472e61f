// The CI schedule of the robustness harness: a few seeded rounds on real 3-member kvd
// clusters (and one on 5 members) with every fault kind, each checked for linearizability, watch
// guarantees, acknowledged writes and HashKV agreement. A failing round prints where it kept its
// history, logs and seed, and how to replay.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "tests/robustness/harness.h"

namespace {

using namespace kv::robustness;

void RunSeed(std::uint64_t seed, std::size_t members = 3,
             std::vector<std::pair<std::string, std::string>> member_env = {}) {
  HarnessOptions o;
  o.kvd_binary = KVD_BINARY;
  o.seed = seed;
  o.members = members;
  o.member_env = std::move(member_env);
  o.workload_duration = std::chrono::seconds(40);
  if (const char* s = std::getenv("KV_ROBUSTNESS_SECONDS")) {
    o.workload_duration = std::chrono::seconds(std::atoi(s));
  }
  const HarnessResult r = RunRound(o);
  INFO(r.Summary());
  // Every fault, workload and check really ran: a round without operations, events or
  // faults must not pass silently.
  CHECK(r.ops_ok > 100);
  CHECK(r.report.events_checked > 100);
  CHECK(!r.faults.empty());
  CHECK(r.report.linearizability.keys_checked > 0);
  CHECK(r.passed);
  WARN(r.Summary());
}

TEST_CASE("robustness round seed 1", "[robustness]") {
  // Goal: kvd stays linearizable with correct watches under the faults of seed 1.
  RunSeed(1);
}

TEST_CASE("robustness round seed 2", "[robustness]") {
  // Goal: the same under the faults of seed 2.
  RunSeed(2);
}

TEST_CASE("robustness round seed 3 with log compaction every 8 KiB", "[robustness]") {
  // Goal: the same under the faults of seed 3, with the byte rule of log compaction at 8 KiB
  // (a snapshot and compaction every few entries; a leader holds the log for lagging members
  // up to 24 KiB, then they catch up by snapshot).
  RunSeed(3, 3, {{"KVD_SNAPSHOT_TRIGGER_BYTES", "8192"}, {"KVD_SNAPSHOT_CATCHUP_BYTES", "8192"}});
}

TEST_CASE("robustness round seed 4 on 5 members", "[robustness]") {
  // Goal: the same on a 5-member cluster (quorum 3; every fault kind, replace-member included).
  RunSeed(4, 5);
}

}  // namespace
