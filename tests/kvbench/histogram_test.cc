#include "bench/kvbench/histogram.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

namespace {

// Exact percentile (nearest rank) of a sorted vector.
std::uint64_t ExactPercentile(const std::vector<std::uint64_t>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

TEST_CASE("histogram buckets tile the value range without gaps or overlaps", "[kvbench]") {
  // Goal: every bucket's range starts right after the previous one's, and BucketOf agrees.
  for (std::size_t b = 1; b < kvbench::Histogram::kBucketCount; ++b) {
    INFO("bucket " << b);
    REQUIRE(kvbench::Histogram::BucketLow(b) == kvbench::Histogram::BucketHigh(b - 1) + 1);
    REQUIRE(kvbench::Histogram::BucketOf(kvbench::Histogram::BucketLow(b)) == b);
    REQUIRE(kvbench::Histogram::BucketOf(kvbench::Histogram::BucketHigh(b)) == b);
  }
  // Relative bucket width stays under 1/128 above the exact range.
  for (std::size_t b = 128; b < kvbench::Histogram::kBucketCount; b += 37) {
    const auto lo = static_cast<double>(kvbench::Histogram::BucketLow(b));
    const auto hi = static_cast<double>(kvbench::Histogram::BucketHigh(b));
    CHECK((hi - lo + 1) / lo <= 1.0 / 128 + 1e-12);
  }
}

TEST_CASE("histogram percentiles match exact nearest-rank percentiles within 1%", "[kvbench]") {
  // Goal: percentiles of a skewed random sample agree with the sorted-vector answer.
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(7.0, 1.5);  // median ~1 ms, long tail
  std::vector<std::uint64_t> values;
  kvbench::Histogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  CHECK(h.min_us() == values.front());
  CHECK(h.max_us() == values.back());
  for (double q : {0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    INFO("q = " << q);
    const auto exact = static_cast<double>(ExactPercentile(values, q));
    const auto got = static_cast<double>(h.Percentile(q));
    CHECK(got >= exact);
    CHECK(got <= exact * 1.01 + 1);
  }
}

TEST_CASE("histogram small exact values, mean, stddev and merge", "[kvbench]") {
  // Goal: values below 128 are exact; merge equals recording everything in one histogram.
  kvbench::Histogram a, b, all;
  for (std::uint64_t v = 1; v <= 100; ++v) {
    (v % 2 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  CHECK(a.count() == 100);
  CHECK(a.Percentile(0.5) == 50);
  CHECK(a.Percentile(0.9) == 90);
  CHECK(a.Percentile(1.0) == 100);
  CHECK(a.min_us() == 1);
  CHECK(a.max_us() == 100);
  CHECK(a.mean_us() == Approx(50.5));
  CHECK(a.stddev_us() == Approx(all.stddev_us()));
  CHECK(a.stddev_us() == Approx(28.866).epsilon(0.001));
  kvbench::Histogram empty;
  CHECK(empty.Percentile(0.5) == 0);
  CHECK(empty.Render().empty());
}

TEST_CASE("histogram render counts every value once", "[kvbench]") {
  // Goal: the rows of the rendered histogram add up to the number of values.
  kvbench::Histogram h;
  for (std::uint64_t v = 1000; v < 50000; v += 7) h.Record(v);
  const std::string text = h.Render(10);
  std::uint64_t sum = 0;
  std::size_t rows = 0;
  for (std::size_t pos = text.find('['); pos != std::string::npos; pos = text.find('[', pos)) {
    sum += std::stoull(text.substr(pos + 1));
    ++pos;
    ++rows;
  }
  CHECK(rows == 11);
  CHECK(sum == h.count());
}

TEST_CASE("sharded histogram keeps every value recorded from many threads", "[kvbench]") {
  // Goal: concurrent Record calls lose nothing.
  kvbench::ShardedHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (std::uint64_t i = 0; i < 10000; ++i) h.Record(i + static_cast<std::uint64_t>(t));
    });
  }
  for (auto& t : threads) t.join();
  const auto snap = h.Snapshot();
  CHECK(snap.count() == 40000);
  CHECK(h.count() == 40000);
  CHECK(snap.max_us() == 10002);
  CHECK(snap.min_us() == 0);
}
