#include "bench/kvbench/keys.h"

#include <stdexcept>

namespace kvbench {

std::size_t MinDigits(std::uint64_t key_space_size) {
  std::size_t digits = 1;
  for (std::uint64_t top = key_space_size > 0 ? key_space_size - 1 : 0; top >= 10; top /= 10) {
    ++digits;
  }
  return digits;
}

std::string FormatKey(const std::string& prefix, std::uint64_t index, std::size_t key_size) {
  std::string digits = std::to_string(index);
  if (key_size < prefix.size() + digits.size()) {
    throw std::invalid_argument("key size " + std::to_string(key_size) + " too small for key " +
                                prefix + digits);
  }
  std::string key = prefix;
  key.append(key_size - prefix.size() - digits.size(), '0');
  key += digits;
  return key;
}

KeyPicker::KeyPicker(std::uint64_t key_space_size, std::uint64_t seed)
    : key_space_size_(key_space_size == 0 ? 1 : key_space_size), rng_(seed) {}

std::uint64_t KeyPicker::Next() {
  return std::uniform_int_distribution<std::uint64_t>(0, key_space_size_ - 1)(rng_);
}

std::string MakeValue(std::size_t size, std::uint64_t seed) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::mt19937_64 rng(seed);
  std::string v(size, 'x');
  for (char& c : v) c = kAlphabet[rng() % (sizeof kAlphabet - 1)];
  return v;
}

}  // namespace kvbench
