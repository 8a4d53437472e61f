// Unit tests of the bounded fan-out behind the endpoint commands.
#include "cli/endpoints.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>
#include <vector>

namespace {

TEST_CASE("ForEachInParallel calls each index once and never exceeds the bound", "[unit]") {
  // Goal: every index is processed exactly once, results land in their own slot, and the
  // number of concurrent calls stays within the bound (for bounds below, at and above count).
  for (std::size_t bound : {std::size_t{1}, std::size_t{3}, std::size_t{8}, std::size_t{64}}) {
    const std::size_t count = 20;
    std::vector<int> calls(count, 0);
    std::vector<std::size_t> slot(count, 0);
    std::atomic<std::size_t> in_flight{0};
    std::atomic<std::size_t> peak{0};
    std::mutex mu;
    cli::ForEachInParallel(count, bound, [&](std::size_t i) {
      const std::size_t now = ++in_flight;
      std::size_t seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      // Give other workers a chance to overlap with this call.
      std::this_thread::yield();
      {
        std::lock_guard<std::mutex> lock(mu);
        ++calls[i];
      }
      slot[i] = i * 10;
      --in_flight;
    });
    INFO("bound " << bound);
    CHECK(std::all_of(calls.begin(), calls.end(), [](int c) { return c == 1; }));
    for (std::size_t i = 0; i < count; ++i) CHECK(slot[i] == i * 10);
    CHECK(peak.load() >= 1);
    CHECK(peak.load() <= std::min(bound, count));
  }
  int none = 0;
  cli::ForEachInParallel(0, 4, [&](std::size_t) { ++none; });
  CHECK(none == 0);
}

}  // namespace
