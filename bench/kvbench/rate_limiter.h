// kvbench::RateLimiter: paces operation starts to a fixed rate. Pure logic on a caller-supplied
// clock, so tests drive it with synthetic times.
#pragma once

#include <chrono>
#include <cstdint>

namespace kvbench {

// Evenly spaced slots: slot k may start at start + k / rate. A caller that falls behind gets
// the missed slots at once, but at most `burst_max` of them, so a stall is not followed by an
// unbounded catch-up burst. Not thread-safe: one pacing thread owns it.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // rate_per_s > 0; burst_max >= 1.
  RateLimiter(double rate_per_s, std::uint64_t burst_max, Clock::time_point start);

  // Claims the next slot and returns the time at which it may start (<= now when it is due).
  Clock::time_point Reserve(Clock::time_point now);

  std::uint64_t granted() const { return granted_; }

 private:
  std::chrono::nanoseconds interval_;
  std::uint64_t burst_max_;
  Clock::time_point next_;
  std::uint64_t granted_ = 0;
};

}  // namespace kvbench
