// Rng: a small, seeded, portable pseudo-random generator (xoshiro256**, seeded by SplitMix64).
//
// Every random choice in messplus takes one of these, so the same seed gives the same
// decisions on every platform: unlike std::uniform_real_distribution, the conversions below
// are defined here and do not depend on the standard library's implementation.
//
// Thread safety: none; give each thread its own Rng.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace messplus {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }

  void Seed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : s_) s = SplitMix64(&x);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // True with probability p (p <= 0: never, p >= 1: always).
  bool Bernoulli(double p) { return Uniform() < p; }

  // Uniform integer in [0, n). REQUIRES: n > 0. Lemire's multiply-shift; the tiny bias
  // (n / 2^64) is irrelevant for the sizes used here.
  uint64_t Below(uint64_t n) {
    __extension__ using Uint128 = unsigned __int128;  // GCC/Clang extension; -Wpedantic-safe
    return static_cast<uint64_t>((static_cast<Uint128>(Next()) * n) >> 64);
  }

  // Standard normal (Box-Muller, one value per call).
  double Normal() {
    double u1 = Uniform();
    while (u1 <= 0.0) u1 = Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  // Fisher-Yates shuffle of a random-access range.
  template <typename It>
  void Shuffle(It first, It last) {
    const auto n = last - first;
    for (auto i = n - 1; i > 0; --i) {
      const auto j = static_cast<decltype(i)>(Below(static_cast<uint64_t>(i) + 1));
      using std::swap;
      swap(first[i], first[j]);
    }
  }

  // The generator's full state, for checkpoints; SetState(State()) continues the sequence.
  std::array<uint64_t, 4> State() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void SetState(const std::array<uint64_t, 4>& s) {
    for (int i = 0; i < 4; ++i) s_[i] = s[i];
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the all-zero state is a fixed point
  }

  // Derives an independent stream for a sub-component (e.g. seed 42, stream "explore").
  static uint64_t Mix(uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0x9E3779B97F4A7C15ull);
    return SplitMix64(&x);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t* x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

}  // namespace messplus
