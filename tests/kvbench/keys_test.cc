#include "bench/kvbench/keys.h"

#include <catch2/catch.hpp>
#include <set>
#include <stdexcept>

TEST_CASE("keys have the exact size, the prefix, and sort by index", "[kvbench]") {
  // Goal: FormatKey pads to key_size and keeps distinct indexes distinct and ordered.
  CHECK(kvbench::FormatKey("k/", 42, 8) == "k/000042");
  CHECK(kvbench::FormatKey("", 0, 3) == "000");
  std::set<std::string> keys;
  std::string prev;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const std::string k = kvbench::FormatKey("p", i, 6);
    CHECK(k.size() == 6);
    CHECK(k.rfind("p", 0) == 0);
    CHECK(prev < k);
    prev = k;
    keys.insert(k);
  }
  CHECK(keys.size() == 1000);
  CHECK_THROWS_AS(kvbench::FormatKey("abc", 1000, 6), std::invalid_argument);
}

TEST_CASE("MinDigits counts the digits of the largest index", "[kvbench]") {
  // Goal: the key-size check in option validation uses the right digit count.
  CHECK(kvbench::MinDigits(1) == 1);
  CHECK(kvbench::MinDigits(10) == 1);
  CHECK(kvbench::MinDigits(11) == 2);
  CHECK(kvbench::MinDigits(1000000) == 6);
  CHECK(kvbench::MinDigits(1000001) == 7);
}

TEST_CASE("key picker stays in the key space and covers it", "[kvbench]") {
  // Goal: random picks are within [0, size) and reach every key of a small space.
  kvbench::KeyPicker picker(50, 7);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 5000; ++i) {
    const auto k = picker.Next();
    REQUIRE(k < 50);
    seen.insert(k);
  }
  CHECK(seen.size() == 50);
  kvbench::KeyPicker same_seed(50, 7);
  kvbench::KeyPicker again(50, 7);
  CHECK(same_seed.Next() == again.Next());
}

TEST_CASE("values have the requested size and differ by seed", "[kvbench]") {
  // Goal: MakeValue gives `size` bytes, deterministic per seed.
  CHECK(kvbench::MakeValue(256, 1).size() == 256);
  CHECK(kvbench::MakeValue(0, 1).empty());
  CHECK(kvbench::MakeValue(64, 1) == kvbench::MakeValue(64, 1));
  CHECK(kvbench::MakeValue(64, 1) != kvbench::MakeValue(64, 2));
}
