#include "bench/kvbench/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kvbench {

RateLimiter::RateLimiter(double rate_per_s, std::uint64_t burst_max, Clock::time_point start)
    : interval_(static_cast<std::int64_t>(std::llround(1e9 / rate_per_s))),
      burst_max_(burst_max),
      next_(start) {
  if (!(rate_per_s > 0) || burst_max == 0) {
    throw std::invalid_argument("RateLimiter: rate must be > 0 and burst >= 1");
  }
  if (interval_.count() == 0) interval_ = std::chrono::nanoseconds(1);
}

RateLimiter::Clock::time_point RateLimiter::Reserve(Clock::time_point now) {
  // Forget slots older than the burst allowance: a long stall costs them.
  const auto oldest_allowed = now - interval_ * static_cast<std::int64_t>(burst_max_ - 1);
  if (next_ < oldest_allowed) next_ = oldest_allowed;
  const Clock::time_point slot = next_;
  next_ += interval_;
  ++granted_;
  return slot;
}

}  // namespace kvbench
