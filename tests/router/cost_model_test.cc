// Tests of CostModel: running means, priors as pseudo-observations, validation and Restore.
#include "router/cost_model.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace messplus::router {
namespace {

constexpr double kEps = 1e-12;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(CostModel, ModelWithoutPriorOrObservationIsUnknown) {
  const CostModel costs(3);
  EXPECT_EQ(costs.num_models(), 3u);
  for (size_t m = 0; m < 3; ++m) {
    EXPECT_FALSE(costs.Known(m));
    EXPECT_EQ(costs.Estimate(m), 0.0);
    EXPECT_EQ(costs.observations(m), 0u);
    EXPECT_EQ(costs.observed_sum(m), 0.0);
  }
}

TEST(CostModel, EstimateIsTheRunningMean) {
  CostModel costs(2);
  ASSERT_TRUE(costs.Observe(1, 10.0).ok());
  EXPECT_TRUE(costs.Known(1));
  EXPECT_NEAR(costs.Estimate(1), 10.0, kEps);  // 10 / 1
  ASSERT_TRUE(costs.Observe(1, 20.0).ok());
  EXPECT_NEAR(costs.Estimate(1), 15.0, kEps);  // (10 + 20) / 2
  ASSERT_TRUE(costs.Observe(1, 60.0).ok());
  EXPECT_NEAR(costs.Estimate(1), 30.0, kEps);  // (10 + 20 + 60) / 3
  EXPECT_EQ(costs.observations(1), 3u);
  EXPECT_NEAR(costs.observed_sum(1), 90.0, kEps);
  // Model 0 is untouched.
  EXPECT_FALSE(costs.Known(0));
  EXPECT_EQ(costs.Estimate(0), 0.0);
}

TEST(CostModel, ZeroCostObservationMakesTheModelKnown) {
  CostModel costs(1);
  ASSERT_TRUE(costs.Observe(0, 0.0).ok());
  EXPECT_TRUE(costs.Known(0));
  EXPECT_EQ(costs.Estimate(0), 0.0);  // 0 / 1
}

TEST(CostModel, PriorCountsAsPseudoObservations) {
  CostModel costs(2);
  ASSERT_TRUE(costs.SetPrior(0, 100.0, 2.0).ok());
  EXPECT_TRUE(costs.Known(0));
  EXPECT_NEAR(costs.Estimate(0), 100.0, kEps);  // (2 * 100) / 2
  EXPECT_EQ(costs.prior(0).mean, 100.0);
  EXPECT_EQ(costs.prior(0).weight, 2.0);
  EXPECT_EQ(costs.observations(0), 0u);  // the prior is not an observation

  ASSERT_TRUE(costs.Observe(0, 10.0).ok());
  EXPECT_NEAR(costs.Estimate(0), 70.0, kEps);  // (10 + 2 * 100) / (1 + 2) = 210 / 3
  ASSERT_TRUE(costs.Observe(0, 40.0).ok());
  EXPECT_NEAR(costs.Estimate(0), 62.5, kEps);  // (10 + 40 + 200) / (2 + 2) = 250 / 4
  EXPECT_EQ(costs.observations(0), 2u);
  EXPECT_NEAR(costs.observed_sum(0), 50.0, kEps);
}

TEST(CostModel, ZeroPriorMeanIsAKnownFreeModel) {
  CostModel costs(1);
  ASSERT_TRUE(costs.SetPrior(0, 0.0, 1.0).ok());
  EXPECT_TRUE(costs.Known(0));
  EXPECT_EQ(costs.Estimate(0), 0.0);
  ASSERT_TRUE(costs.Observe(0, 6.0).ok());
  EXPECT_NEAR(costs.Estimate(0), 3.0, kEps);  // (6 + 1 * 0) / (1 + 1)
}

TEST(CostModel, HeavyPriorBarelyMoves) {
  CostModel costs(1);
  ASSERT_TRUE(costs.SetPrior(0, 10.0, 1e6).ok());
  ASSERT_TRUE(costs.Observe(0, 20.0).ok());
  // (20 + 1e6 * 10) / (1 + 1e6) = 10000020 / 1000001 = 10 + 10 / 1000001 = 10.0000099999...
  EXPECT_NEAR(costs.Estimate(0), 10.0 + 10.0 / 1000001.0, kEps);
  ASSERT_TRUE(costs.Observe(0, 2000032.0).ok());
  // (20 + 2000032 + 1e7) / (2 + 1e6) = 12000052 / 1000002 = 12 + 28 / 1000002 = 12.000027999...
  EXPECT_NEAR(costs.Estimate(0), 12.0 + 28.0 / 1000002.0, kEps);
}

TEST(CostModel, SetPriorRejectsUnknownModel) {
  CostModel costs(2);
  EXPECT_EQ(costs.SetPrior(2, 1.0, 1.0).code(), StatusCode::kNotFound);
  EXPECT_FALSE(costs.Known(0));
  EXPECT_FALSE(costs.Known(1));
}

TEST(CostModel, SetPriorRejectsBadMean) {
  CostModel costs(1);
  for (double mean : {-1.0, -0.5, kNaN, kInf}) {
    EXPECT_EQ(costs.SetPrior(0, mean, 1.0).code(), StatusCode::kInvalidArgument) << mean;
    EXPECT_FALSE(costs.Known(0)) << mean;
  }
}

TEST(CostModel, SetPriorRejectsBadWeight) {
  CostModel costs(1);
  for (double weight : {0.0, -1.0, kNaN, kInf}) {
    EXPECT_EQ(costs.SetPrior(0, 5.0, weight).code(), StatusCode::kInvalidArgument) << weight;
    EXPECT_FALSE(costs.Known(0)) << weight;
  }
}

// One test per reject reason of Observe; each leaves the counters and the estimate unchanged.
void ExpectObserveRejected(size_t model, double cost, StatusCode code) {
  CostModel costs(2);
  ASSERT_TRUE(costs.Observe(0, 4.0).ok());
  ASSERT_TRUE(costs.Observe(1, 8.0).ok());
  EXPECT_EQ(costs.Observe(model, cost).code(), code) << "model " << model << " cost " << cost;
  EXPECT_EQ(costs.observations(0), 1u);
  EXPECT_EQ(costs.observations(1), 1u);
  EXPECT_EQ(costs.observed_sum(0), 4.0);
  EXPECT_EQ(costs.observed_sum(1), 8.0);
  EXPECT_EQ(costs.Estimate(0), 4.0);
  EXPECT_EQ(costs.Estimate(1), 8.0);
}

TEST(CostModel, ObserveRejectsNaNCost) {
  ExpectObserveRejected(0, kNaN, StatusCode::kInvalidArgument);
}

TEST(CostModel, ObserveRejectsNegativeCost) {
  ExpectObserveRejected(1, -0.001, StatusCode::kInvalidArgument);
}

TEST(CostModel, ObserveRejectsInfiniteCost) {
  ExpectObserveRejected(0, kInf, StatusCode::kInvalidArgument);
  ExpectObserveRejected(0, -kInf, StatusCode::kInvalidArgument);
}

TEST(CostModel, ObserveRejectsUnknownModelIndex) {
  // The header says InvalidArgument; the code (and status.h: "kNotFound: unknown model")
  // says NotFound. We pin NotFound, the project-wide convention.
  ExpectObserveRejected(2, 1.0, StatusCode::kNotFound);
}

TEST(CostModel, RestoreReplacesCountersAndKeepsPriors) {
  CostModel costs(2);
  ASSERT_TRUE(costs.SetPrior(1, 10.0, 2.0).ok());
  ASSERT_TRUE(costs.Observe(0, 99.0).ok());
  ASSERT_TRUE(costs.Restore({4, 2}, {20.0, 30.0}).ok());
  EXPECT_EQ(costs.observations(0), 4u);
  EXPECT_EQ(costs.observations(1), 2u);
  EXPECT_NEAR(costs.Estimate(0), 5.0, kEps);   // 20 / 4
  EXPECT_NEAR(costs.Estimate(1), 12.5, kEps);  // (30 + 2 * 10) / (2 + 2) = 50 / 4
}

// Each bad Restore leaves the model as it was.
void ExpectRestoreRejected(const std::vector<uint64_t>& counts, const std::vector<double>& sums) {
  CostModel costs(2);
  ASSERT_TRUE(costs.Observe(0, 3.0).ok());
  EXPECT_EQ(costs.Restore(counts, sums).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(costs.observations(0), 1u);
  EXPECT_EQ(costs.observed_sum(0), 3.0);
  EXPECT_EQ(costs.observations(1), 0u);
  EXPECT_EQ(costs.observed_sum(1), 0.0);
}

TEST(CostModel, RestoreRejectsWrongNumberOfCounts) { ExpectRestoreRejected({1, 2, 3}, {1, 2}); }

TEST(CostModel, RestoreRejectsWrongNumberOfSums) { ExpectRestoreRejected({1, 2}, {1.0}); }

TEST(CostModel, RestoreRejectsNaNSum) { ExpectRestoreRejected({1, 1}, {1.0, kNaN}); }

TEST(CostModel, RestoreRejectsNegativeSum) { ExpectRestoreRejected({1, 1}, {-1.0, 1.0}); }

TEST(CostModel, RestoreRejectsInfiniteSum) { ExpectRestoreRejected({1, 1}, {kInf, 1.0}); }

}  // namespace
}  // namespace messplus::router
