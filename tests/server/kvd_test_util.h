// Shared by the kvd integration tests: how they start a kvd cluster. KVD_BINARY is defined by
// tests/server/CMakeLists.txt as the path of the built kvd.
#pragma once

#include <chrono>
#include <cstddef>

#include "tests/support/cluster.h"

namespace kvdtest {

// Fast timings (50 ms heartbeat, 500 ms election) so elections in tests take well under a
// second; a bounded 30 s wait for readiness.
inline kvtest::ClusterOptions KvdOptions(std::size_t members) {
  kvtest::ClusterOptions o;
  o.binary = KVD_BINARY;
  o.member_count = members;
  o.heartbeat_interval_ms = 50;
  o.election_timeout_ms = 500;
  o.ready_timeout = std::chrono::milliseconds(30000);
  return o;
}

}  // namespace kvdtest
