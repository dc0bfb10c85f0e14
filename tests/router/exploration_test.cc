// Tests of ExplorationSchedule: p_t = min(1, c / t^(1/4)) and the coin drawn from it.
#include "router/exploration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "router/rng.h"

namespace messplus::router {
namespace {

constexpr double kEps = 1e-15;

TEST(ExplorationSchedule, ProbabilityAtHandComputedPoints) {
  const ExplorationSchedule s(0.1);
  EXPECT_EQ(s.c(), 0.1);
  EXPECT_NEAR(s.Probability(1), 0.1, kEps);       // 0.1 / 1^(1/4)     = 0.1
  EXPECT_NEAR(s.Probability(16), 0.05, kEps);     // 0.1 / 16^(1/4)    = 0.1 / 2 = 0.05
  EXPECT_NEAR(s.Probability(81), 0.1 / 3, kEps);  // 0.1 / 81^(1/4)    = 0.1 / 3
  EXPECT_NEAR(s.Probability(10000), 0.01, kEps);  // 0.1 / 10000^(1/4) = 0.1 / 10 = 0.01
}

TEST(ExplorationSchedule, TreatsRequestZeroAsRequestOne) {
  const ExplorationSchedule s(0.1);
  EXPECT_EQ(s.Probability(0), s.Probability(1));  // both 0.1 / 1
  const ExplorationSchedule big(2.0);
  EXPECT_EQ(big.Probability(0), 1.0);  // min(1, 2 / 1) = 1
}

TEST(ExplorationSchedule, LargeConstantExploresAlwaysUntilTSixteen) {
  // c = 2: 2 / t^(1/4) >= 1 iff t^(1/4) <= 2 iff t <= 16.
  const ExplorationSchedule s(2.0);
  for (uint64_t t = 1; t <= 16; ++t) EXPECT_EQ(s.Probability(t), 1.0) << "t = " << t;
  // t = 17: 2 / 17^(1/4) = 2 / 2.03054... = 0.98496...
  EXPECT_LT(s.Probability(17), 1.0);
  EXPECT_NEAR(s.Probability(17), 2.0 / std::pow(17.0, 0.25), kEps);
  EXPECT_NEAR(s.Probability(81), 2.0 / 3.0, kEps);  // 2 / 81^(1/4) = 2 / 3
  EXPECT_NEAR(s.Probability(256), 0.5, kEps);       // 2 / 256^(1/4) = 2 / 4
}

TEST(ExplorationSchedule, ProbabilityNeverIncreasesWithT) {
  const ExplorationSchedule s(0.7);
  double previous = s.Probability(1);
  for (uint64_t t = 2; t < 5000; ++t) {
    const double p = s.Probability(t);
    ASSERT_LE(p, previous) << "t = " << t;
    previous = p;
  }
}

TEST(ExplorationSchedule, ZeroConstantNeverExplores) {
  const ExplorationSchedule s(0.0);
  Rng rng(1);
  for (uint64_t t = 0; t < 10000; ++t) {
    ASSERT_EQ(s.Probability(t), 0.0);
    ASSERT_FALSE(s.Draw(t, &rng)) << "t = " << t;
  }
}

TEST(ExplorationSchedule, ProbabilityOneAlwaysExplores) {
  const ExplorationSchedule s(1e9);  // min(1, 1e9 / t^(1/4)) = 1 for any t < 1e36
  Rng rng(2);
  for (uint64_t t = 1; t < 10000; ++t) ASSERT_TRUE(s.Draw(t, &rng)) << "t = " << t;
}

// Counts explorations over n draws at a fixed t and checks the count lies within 5 binomial
// standard deviations of n * p.
void ExpectDrawFrequency(double c, uint64_t t, double expected_p, uint64_t seed) {
  const ExplorationSchedule s(c);
  ASSERT_NEAR(s.Probability(t), expected_p, kEps);
  constexpr int kDraws = 100000;
  Rng rng(seed);
  int hits = 0;
  for (int i = 0; i < kDraws; ++i) hits += s.Draw(t, &rng) ? 1 : 0;
  const double mean = kDraws * expected_p;
  const double sigma = std::sqrt(kDraws * expected_p * (1.0 - expected_p));
  EXPECT_NEAR(hits, mean, 5.0 * sigma) << "c = " << c << ", t = " << t;
}

TEST(ExplorationSchedule, DrawFrequencyMatchesProbability) {
  // p = 0.1 / 16^(1/4) = 0.05: mean 5000, sigma = sqrt(1e5 * 0.05 * 0.95) = 68.9.
  ExpectDrawFrequency(0.1, 16, 0.05, 11);
  // p = 0.5 / 1 = 0.5: mean 50000, sigma = sqrt(1e5 * 0.25) = 158.1.
  ExpectDrawFrequency(0.5, 1, 0.5, 12);
  // p = 0.1 / 10000^(1/4) = 0.01: mean 1000, sigma = sqrt(1e5 * 0.01 * 0.99) = 31.5.
  ExpectDrawFrequency(0.1, 10000, 0.01, 13);
}

std::vector<bool> DrawSequence(uint64_t seed, int n) {
  const ExplorationSchedule s(0.5);
  Rng rng(seed);
  std::vector<bool> out;
  for (int t = 1; t <= n; ++t) out.push_back(s.Draw(static_cast<uint64_t>(t), &rng));
  return out;
}

TEST(ExplorationSchedule, DrawsAreDeterministicUnderASeed) {
  EXPECT_EQ(DrawSequence(42, 2000), DrawSequence(42, 2000));
  EXPECT_NE(DrawSequence(42, 2000), DrawSequence(43, 2000));
}

}  // namespace
}  // namespace messplus::router
