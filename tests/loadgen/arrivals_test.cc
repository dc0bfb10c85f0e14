// PoissonArrivals: the gaps are exponential with mean 1/rate, and the schedule is a pure
// function of (rate, seed).
//
// Tolerances. With n independent exponential gaps of mean mu (standard deviation mu):
//  * the sample mean has standard error mu / sqrt(n), so its relative error is 1 / sqrt(n);
//  * the sample coefficient of variation CV = s / mean: by the delta method on the first two
//    raw moments (for Exp(1): m1 = 1, m2 = 2, m3 = 6, m4 = 24, so Var X = 1, Var X^2 = 20,
//    Cov(X, X^2) = 4; the gradient of sqrt(m2 - m1^2) / m1 at (1, 2) is (-2, 1/2)), its
//    asymptotic variance is (4 * 1 + 1/4 * 20 - 2 * 2 * 1/2 * 4) / n = 1 / n, so its standard
//    error is also 1 / sqrt(n).
// With n = 200,000 one standard error is 0.00224; the tests allow 6 of them (0.0134), which
// a correct generator exceeds with probability about 2e-9, while a wrong rate (or a
// non-exponential gap: uniform gaps have CV 0.58, constant ones 0) is far outside. The
// schedules are seeded, so each run draws the same numbers: the tolerance is what makes the
// chosen seeds representative rather than lucky.
#include "tools/loadgen/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace messplus::loadgen {
namespace {

constexpr size_t kDraws = 200'000;
constexpr double kSigmas = 6.0;

struct GapStats {
  double mean_ns = 0.0;
  double cv = 0.0;
};

GapStats Stats(const std::vector<int64_t>& times) {
  // Gaps of the rounded times; the rounding (< 1 ns per arrival) is far below the gaps here.
  double sum = 0.0, sum_sq = 0.0;
  int64_t prev = 0;
  for (int64_t t : times) {
    const double gap = static_cast<double>(t - prev);
    sum += gap;
    sum_sq += gap * gap;
    prev = t;
  }
  const double n = static_cast<double>(times.size());
  const double mean = sum / n;
  const double var = (sum_sq - n * mean * mean) / (n - 1.0);
  return {mean, std::sqrt(var) / mean};
}

TEST(PoissonArrivals, GapsAreExponentialWithMeanOneOverRate) {
  const double tolerance = kSigmas / std::sqrt(static_cast<double>(kDraws));
  for (const double rate : {50.0, 1000.0, 20000.0}) {
    for (const uint64_t seed : {1ull, 42ull, 0xdeadbeefull}) {
      const std::vector<int64_t> t = PoissonSchedule(rate, seed, kDraws);
      const GapStats s = Stats(t);
      const double expected_ns = 1e9 / rate;
      EXPECT_NEAR(s.mean_ns / expected_ns, 1.0, tolerance) << "rate " << rate << " seed " << seed;
      EXPECT_NEAR(s.cv, 1.0, tolerance) << "rate " << rate << " seed " << seed;
      // The count in [0, T] of a Poisson process: the last arrival is near n / rate.
      EXPECT_NEAR(static_cast<double>(t.back()) / (static_cast<double>(kDraws) * expected_ns), 1.0,
                  tolerance);
    }
  }
}

TEST(PoissonArrivals, TimesAreNonDecreasingAndStartAfterZero) {
  const std::vector<int64_t> t = PoissonSchedule(5000.0, 7, 50'000);
  ASSERT_EQ(t.size(), 50'000u);
  EXPECT_GE(t.front(), 0);
  for (size_t i = 1; i < t.size(); ++i) ASSERT_LE(t[i - 1], t[i]) << "at " << i;
}

TEST(PoissonArrivals, ClassMatchesSchedule) {
  PoissonArrivals a(250.0, 9);
  EXPECT_EQ(a.rate_per_s(), 250.0);
  const std::vector<int64_t> t = PoissonSchedule(250.0, 9, 1000);
  for (size_t i = 0; i < t.size(); ++i) ASSERT_EQ(a.Next(), t[i]) << "at " << i;
}

TEST(PoissonArrivals, SameSeedSameScheduleDifferentSeedsDiffer) {
  const std::vector<int64_t> a = PoissonSchedule(1000.0, 123, 10'000);
  const std::vector<int64_t> b = PoissonSchedule(1000.0, 123, 10'000);
  EXPECT_EQ(a, b);
  const std::vector<int64_t> c = PoissonSchedule(1000.0, 124, 10'000);
  ASSERT_EQ(c.size(), a.size());
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == c[i] ? 1 : 0;
  // Continuous times of independent schedules essentially never coincide.
  EXPECT_LT(same, 10u);
  EXPECT_NE(a.front(), c.front());
  // The rate scales the schedule of a seed and leaves its shape alone.
  const std::vector<int64_t> fast = PoissonSchedule(2000.0, 123, 10'000);
  for (size_t i = 0; i < a.size(); i += 997) {
    EXPECT_NEAR(static_cast<double>(fast[i]) * 2.0, static_cast<double>(a[i]), 2.0) << i;
  }
}

}  // namespace
}  // namespace messplus::loadgen
