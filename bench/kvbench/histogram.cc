#include "bench/kvbench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>

namespace kvbench {

Histogram::Histogram() : buckets_(kBucketCount, 0) {}

// Values below kSubBuckets have one bucket each; above, each power of two [2^e, 2^(e+1)) is
// split into kSubBuckets equal buckets, so a bucket is at most 1/kSubBuckets of its low edge wide.
std::size_t Histogram::BucketOf(std::uint64_t value_us) {
  const std::uint64_t max_value = (std::uint64_t{1} << kMaxExponent) - 1;
  const std::uint64_t v = std::min(value_us, max_value);
  if (v < kSubBuckets) return static_cast<std::size_t>(v);
  const int shift = static_cast<int>(std::bit_width(v)) - 1 - kSubBucketBits;  // >= 0
  const std::uint64_t sub = (v >> shift) - kSubBuckets;                        // 0 .. kSubBuckets-1
  return static_cast<std::size_t>(kSubBuckets + static_cast<std::uint64_t>(shift) * kSubBuckets +
                                  sub);
}

std::uint64_t Histogram::BucketLow(std::size_t bucket) {
  if (bucket < kSubBuckets) return bucket;
  const std::uint64_t rest = bucket - kSubBuckets;
  const auto shift = static_cast<int>(rest / kSubBuckets);
  return (rest % kSubBuckets + kSubBuckets) << shift;
}

std::uint64_t Histogram::BucketHigh(std::size_t bucket) {
  if (bucket < kSubBuckets) return bucket;
  const auto shift = static_cast<int>((bucket - kSubBuckets) / kSubBuckets);
  return BucketLow(bucket) + (std::uint64_t{1} << shift) - 1;
}

void Histogram::Record(std::uint64_t value_us) {
  const std::size_t b = std::min(BucketOf(value_us), kBucketCount - 1);
  ++buckets_[b];
  if (count_ == 0 || value_us < min_us_) min_us_ = value_us;
  max_us_ = std::max(max_us_, value_us);
  ++count_;
  const double v = static_cast<double>(value_us);
  sum_us_ += v;
  sum_sq_us_ += v * v;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  if (count_ == 0 || other.min_us_ < min_us_) min_us_ = other.min_us_;
  max_us_ = std::max(max_us_, other.max_us_);
  count_ += other.count_;
  sum_us_ += other.sum_us_;
  sum_sq_us_ += other.sum_sq_us_;
}

double Histogram::mean_us() const {
  return count_ == 0 ? 0.0 : sum_us_ / static_cast<double>(count_);
}

double Histogram::stddev_us() const {
  if (count_ == 0) return 0.0;
  const double mean = mean_us();
  const double var = sum_sq_us_ / static_cast<double>(count_) - mean * mean;
  return var > 0 ? std::sqrt(var) : 0.0;
}

std::uint64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the wanted value, 1-based: ceil(q * count), at least 1.
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(BucketHigh(i), min_us_, max_us_);
  }
  return max_us_;
}

std::string Histogram::Render(std::size_t rows) const {
  if (count_ == 0 || rows == 0) return {};
  const double lo = static_cast<double>(min_us_);
  const double hi = static_cast<double>(max_us_);
  const double width = std::max((hi - lo) / static_cast<double>(rows), 1.0);
  std::vector<std::uint64_t> counts(rows + 1, 0);
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    if (buckets_[i] == 0) continue;
    // A bucket's values are attributed to the row of its midpoint (clamped to [min, max]).
    const double mid = std::clamp(
        (static_cast<double>(BucketLow(i)) + static_cast<double>(BucketHigh(i))) / 2, lo, hi);
    auto row = static_cast<std::size_t>(std::ceil((mid - lo) / width));
    counts[std::min(row, rows)] += buckets_[i];
  }
  const std::uint64_t most = *std::max_element(counts.begin(), counts.end());
  std::string out;
  char line[160];
  for (std::size_t r = 0; r <= rows; ++r) {
    const double edge_s = (lo + width * static_cast<double>(r)) / 1e6;
    const auto bar =
        static_cast<std::size_t>(40.0 * static_cast<double>(counts[r]) /
                                 static_cast<double>(std::max<std::uint64_t>(most, 1)));
    std::snprintf(line, sizeof line, "  %.4f [%llu]\t|", edge_s,
                  static_cast<unsigned long long>(counts[r]));
    out += line;
    out += std::string(bar, '*');
    out += '\n';
  }
  return out;
}

void ShardedHistogram::Record(std::uint64_t value_us) {
  const std::size_t shard = std::hash<std::thread::id>{}(std::this_thread::get_id()) % kShards;
  std::lock_guard<std::mutex> lock(shards_[shard].mu);
  shards_[shard].histogram.Record(value_us);
}

Histogram ShardedHistogram::Snapshot() const {
  Histogram merged;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    merged.Merge(s.histogram);
  }
  return merged;
}

std::uint64_t ShardedHistogram::count() const {
  std::uint64_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.histogram.count();
  }
  return n;
}

}  // namespace kvbench
