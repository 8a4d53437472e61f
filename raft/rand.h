// raft::Rng: a small seeded PRNG (splitmix64) so that every run of the library is reproducible
// from Config::seed. Not for cryptography.
#pragma once

#include <cstdint>

namespace raft {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  // The generator of node `id` in a group seeded with `seed`. Seed and id are hashed together,
  // so nodes given the same seed draw unrelated sequences. (A state of seed ^ id * kGamma, with
  // kGamma this generator's own increment, made nodes whose states differ by a multiple of
  // kGamma whenever the seed's bits avoid the products' (small seeds, small ids): the same
  // sequence shifted by a draw or two. After a few terms such nodes picked equal election
  // timeouts and split every vote; the simulator found it.)
  static Rng ForNode(uint64_t seed, uint64_t id) { return Rng(Mix(seed ^ Mix(id + kGamma))); }

  uint64_t Next() { return Mix(state_ += kGamma); }
  // Uniform in [0, n). Precondition: n > 0. The modulo bias is negligible for small n.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  // True with probability num/den.
  bool Chance(uint64_t num, uint64_t den) { return Uniform(den) < num; }

 private:
  static constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
  // splitmix64's output function: a bijection that spreads every input bit over the output.
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_;
};

}  // namespace raft
