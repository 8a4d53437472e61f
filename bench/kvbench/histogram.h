// kvbench::Histogram: latencies in microseconds in a fixed set of log-linear buckets (like an
// HDR histogram), so recording is O(1), memory is bounded whatever the run length, and every
// reported percentile is within 1/kSubBuckets (< 0.8 %) of the exact value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kvbench {

class Histogram {
 public:
  // Values at or above 2^kMaxExponent microseconds (~12.7 days) are clamped into the top bucket.
  static constexpr int kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = 1u << kSubBucketBits;  // 128
  static constexpr int kMaxExponent = 40;

  Histogram();

  // Records one value (microseconds). Not thread-safe; see ShardedHistogram.
  void Record(std::uint64_t value_us);
  // Adds every value recorded in `other`.
  void Merge(const Histogram& other);

  std::uint64_t count() const { return count_; }
  // Exact minimum, maximum and mean of the recorded values; 0 when empty.
  std::uint64_t min_us() const { return count_ == 0 ? 0 : min_us_; }
  std::uint64_t max_us() const { return max_us_; }
  double mean_us() const;
  double stddev_us() const;

  // The smallest recorded value v such that at least `q` (0 < q <= 1) of the values are <= v,
  // up to bucket precision: the upper edge of its bucket, capped at max_us(). 0 when empty.
  std::uint64_t Percentile(double q) const;

  // etcd-benchmark-style histogram: `rows` equal-width rows from min to max, each
  // "  <upper edge s> [<count>]\t|<bar>". Empty string when nothing was recorded.
  std::string Render(std::size_t rows = 10) const;

  // Bucket index of a value and the inclusive value range of a bucket (exposed for tests).
  static std::size_t BucketOf(std::uint64_t value_us);
  static std::uint64_t BucketLow(std::size_t bucket);
  static std::uint64_t BucketHigh(std::size_t bucket);
  static constexpr std::size_t kBucketCount =
      static_cast<std::size_t>(kMaxExponent - kSubBucketBits + 1) * kSubBuckets;

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t min_us_ = 0;
  std::uint64_t max_us_ = 0;
  double sum_us_ = 0;
  double sum_sq_us_ = 0;
};

// A Histogram split into shards, each behind its own mutex, so that many gRPC callback threads
// can record without contending on one lock. Thread-safe.
class ShardedHistogram {
 public:
  void Record(std::uint64_t value_us);
  // A merged copy of every shard.
  Histogram Snapshot() const;
  std::uint64_t count() const;

 private:
  static constexpr std::size_t kShards = 16;
  struct alignas(64) Shard {
    mutable std::mutex mu;
    Histogram histogram;
  };
  std::array<Shard, kShards> shards_;
};

}  // namespace kvbench
