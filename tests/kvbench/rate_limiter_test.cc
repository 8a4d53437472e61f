#include "bench/kvbench/rate_limiter.h"

#include <catch2/catch.hpp>
#include <stdexcept>

using Clock = kvbench::RateLimiter::Clock;
using std::chrono::milliseconds;

TEST_CASE("rate limiter spaces slots evenly at the configured rate", "[kvbench]") {
  // Goal: a caller that asks early gets slots start, start + 1/rate, start + 2/rate, ...
  const Clock::time_point t0{};
  kvbench::RateLimiter limiter(100, 10, t0);  // 10 ms apart
  for (int i = 0; i < 50; ++i) {
    CHECK(limiter.Reserve(t0) == t0 + milliseconds(10 * i));
  }
  CHECK(limiter.granted() == 50);
}

TEST_CASE("rate limiter grants at most burst_max missed slots after a stall", "[kvbench]") {
  // Goal: after a 1 s stall at 100/s, only 5 slots are due at once, then pacing resumes.
  const Clock::time_point t0{};
  kvbench::RateLimiter limiter(100, 5, t0);
  CHECK(limiter.Reserve(t0) == t0);
  const auto later = t0 + milliseconds(1000);
  int due = 0;
  Clock::time_point slot;
  while ((slot = limiter.Reserve(later)) <= later) ++due;
  CHECK(due == 5);
  CHECK(slot == later + milliseconds(10));
  CHECK(limiter.Reserve(later) == later + milliseconds(20));
}

TEST_CASE("rate limiter keeps the long-run rate of a steady caller", "[kvbench]") {
  // Goal: a caller that waits for each slot gets exactly rate * seconds slots.
  const Clock::time_point t0{};
  kvbench::RateLimiter limiter(1000, 1, t0);
  Clock::time_point now = t0;
  int granted = 0;
  for (;;) {
    const auto slot = limiter.Reserve(now);
    if (slot >= t0 + milliseconds(2000)) break;
    now = std::max(now, slot);
    ++granted;
    now += std::chrono::microseconds(250);  // the caller's own work
  }
  CHECK(granted == 2000);
}

TEST_CASE("rate limiter rejects a zero rate or burst", "[kvbench]") {
  // Goal: invalid parameters fail loudly instead of producing a non-limiter.
  CHECK_THROWS_AS(kvbench::RateLimiter(0, 1, Clock::time_point{}), std::invalid_argument);
  CHECK_THROWS_AS(kvbench::RateLimiter(10, 0, Clock::time_point{}), std::invalid_argument);
}
