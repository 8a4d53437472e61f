// kvbench key and value generation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace kvbench {

// Key number `index` as a key of exactly `key_size` bytes: `prefix`, then the index in decimal,
// zero-padded to fill the rest, so keys of one key space sort by index and are distinct.
// Precondition: key_size >= prefix.size() + MinDigits(index); otherwise throws
// std::invalid_argument (checked by option validation before any load runs).
std::string FormatKey(const std::string& prefix, std::uint64_t index, std::size_t key_size);

// Decimal digits needed to write every index below `key_space_size` (>= 1).
std::size_t MinDigits(std::uint64_t key_space_size);

// Picks key indexes uniformly at random in [0, key_space_size) (a size of 0 counts as 1).
// Not thread-safe: one per client. (Sequential keys come from the shared operation counter.)
class KeyPicker {
 public:
  KeyPicker(std::uint64_t key_space_size, std::uint64_t seed);
  std::uint64_t Next();

 private:
  std::uint64_t key_space_size_;
  std::mt19937_64 rng_;
};

// A value of `size` printable bytes derived from `seed` (not compressible to nothing).
std::string MakeValue(std::size_t size, std::uint64_t seed);

}  // namespace kvbench
