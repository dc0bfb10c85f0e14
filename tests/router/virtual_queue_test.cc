// Tests of VirtualQueue: the update Q <- max(0, Q + alpha - s), the two copies (q_all and
// q_tracked), input validation and the shortfall bound sum(alpha - s) <= Q_end - Q_start.
#include "router/virtual_queue.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "router/rng.h"

namespace messplus::router {
namespace {

constexpr double kEps = 1e-12;  // a few ulps of the values below (all <= 2)
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(VirtualQueue, StartsAtTheInitialValueInBothCopies) {
  const VirtualQueue fresh(0.7);
  EXPECT_EQ(fresh.alpha(), 0.7);
  EXPECT_EQ(fresh.q_all(), 0.0);
  EXPECT_EQ(fresh.q_tracked(), 0.0);

  const VirtualQueue started(0.4, 2.5);
  EXPECT_EQ(started.q_all(), 2.5);
  EXPECT_EQ(started.q_tracked(), 2.5);
}

TEST(VirtualQueue, FollowsTheWorkedSequence) {
  // alpha = 0.7; each step Q <- max(0, Q + 0.7 - s).
  VirtualQueue q(0.7);
  struct Step {
    double s;
    double expected;
  };
  const std::vector<Step> steps = {
      {0.0, 0.7},  // 0   + 0.7 - 0   = 0.7
      {1.0, 0.4},  // 0.7 + 0.7 - 1   = 0.4
      {1.0, 0.1},  // 0.4 + 0.7 - 1   = 0.1
      {1.0, 0.0},  // 0.1 + 0.7 - 1   = -0.2 -> floored to 0
      {0.0, 0.7},  // 0   + 0.7 - 0   = 0.7
      {0.0, 1.4},  // 0.7 + 0.7 - 0   = 1.4
      {0.5, 1.6},  // 1.4 + 0.7 - 0.5 = 1.6
      {1.0, 1.3},  // 1.6 + 0.7 - 1   = 1.3
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_TRUE(q.UpdateTracked(steps[i].s).ok());
    EXPECT_NEAR(q.q_tracked(), steps[i].expected, kEps) << "after step " << i;
  }
}

TEST(VirtualQueue, StepIsTheUpdateRule) {
  EXPECT_NEAR(VirtualQueue::Step(0.0, 0.7, 0.0), 0.7, kEps);  // 0 + 0.7 - 0
  EXPECT_NEAR(VirtualQueue::Step(1.0, 0.7, 0.2), 1.5, kEps);  // 1 + 0.7 - 0.2
  EXPECT_EQ(VirtualQueue::Step(0.2, 0.7, 1.0), 0.0);          // 0.2 + 0.7 - 1 = -0.1 -> 0
  EXPECT_EQ(VirtualQueue::Step(0.3, 0.7, 1.0), 0.0);          // 0.3 + 0.7 - 1 = 0 exactly
}

TEST(VirtualQueue, StaysAtZeroWhileSatisfactionExceedsAlpha) {
  VirtualQueue q(0.2);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(q.UpdateAll(0.9).ok());      // 0 + 0.2 - 0.9 < 0 -> 0
    ASSERT_TRUE(q.UpdateTracked(1.0).ok());  // 0 + 0.2 - 1   < 0 -> 0
    ASSERT_EQ(q.q_all(), 0.0);
    ASSERT_EQ(q.q_tracked(), 0.0);
  }
}

TEST(VirtualQueue, StaysAtZeroWhenSatisfactionEqualsAlpha) {
  VirtualQueue q(0.5);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(q.UpdateTracked(0.5).ok());  // 0 + 0.5 - 0.5 = 0
  EXPECT_EQ(q.q_tracked(), 0.0);
}

TEST(VirtualQueue, AllAndTrackedCopiesMoveIndependently) {
  VirtualQueue q(0.7);
  ASSERT_TRUE(q.UpdateAll(0.0).ok());  // q_all: 0 + 0.7 = 0.7; q_tracked untouched
  EXPECT_NEAR(q.q_all(), 0.7, kEps);
  EXPECT_EQ(q.q_tracked(), 0.0);

  ASSERT_TRUE(q.UpdateAll(0.0).ok());      // q_all: 0.7 + 0.7 = 1.4
  ASSERT_TRUE(q.UpdateTracked(0.5).ok());  // q_tracked: 0 + 0.7 - 0.5 = 0.2
  EXPECT_NEAR(q.q_all(), 1.4, kEps);
  EXPECT_NEAR(q.q_tracked(), 0.2, kEps);

  ASSERT_TRUE(q.UpdateTracked(0.0).ok());  // q_tracked: 0.2 + 0.7 = 0.9; q_all untouched
  EXPECT_NEAR(q.q_all(), 1.4, kEps);
  EXPECT_NEAR(q.q_tracked(), 0.9, kEps);
}

// One test per reject reason of the satisfaction check; each leaves both copies unchanged.
void ExpectSatisfactionRejected(double s) {
  VirtualQueue q(0.7);
  ASSERT_TRUE(q.UpdateAll(0.0).ok());      // q_all = 0.7
  ASSERT_TRUE(q.UpdateTracked(0.3).ok());  // q_tracked = 0.4
  const double all_before = q.q_all();
  const double tracked_before = q.q_tracked();

  const Status all = q.UpdateAll(s);
  EXPECT_EQ(all.code(), StatusCode::kInvalidArgument) << s;
  const Status tracked = q.UpdateTracked(s);
  EXPECT_EQ(tracked.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(q.q_all(), all_before);
  EXPECT_EQ(q.q_tracked(), tracked_before);
}

TEST(VirtualQueue, RejectsNaNSatisfactionWithoutChange) { ExpectSatisfactionRejected(kNaN); }

TEST(VirtualQueue, RejectsNegativeSatisfactionWithoutChange) {
  ExpectSatisfactionRejected(-0.01);
  ExpectSatisfactionRejected(-kInf);
}

TEST(VirtualQueue, RejectsSatisfactionAboveOneWithoutChange) {
  ExpectSatisfactionRejected(1.0000001);
  ExpectSatisfactionRejected(kInf);
}

TEST(VirtualQueue, AcceptsTheEndpointsOfTheSatisfactionRange) {
  EXPECT_TRUE(ValidateSatisfaction(0.0).ok());
  EXPECT_TRUE(ValidateSatisfaction(1.0).ok());
  EXPECT_TRUE(ValidateSatisfaction(0.5).ok());
  EXPECT_FALSE(ValidateSatisfaction(kNaN).ok());
}

TEST(VirtualQueue, RestoreSetsBothCopies) {
  VirtualQueue q(0.7);
  ASSERT_TRUE(q.Restore(3.0, 1.5).ok());
  EXPECT_EQ(q.q_all(), 3.0);
  EXPECT_EQ(q.q_tracked(), 1.5);
  ASSERT_TRUE(q.UpdateTracked(1.0).ok());  // 1.5 + 0.7 - 1 = 1.2
  EXPECT_NEAR(q.q_tracked(), 1.2, kEps);
  ASSERT_TRUE(q.Restore(0.0, 0.0).ok());  // zero is a valid queue length
  EXPECT_EQ(q.q_all(), 0.0);
}

TEST(VirtualQueue, RestoreRejectsBadValuesWithoutChange) {
  VirtualQueue q(0.7);
  ASSERT_TRUE(q.Restore(2.0, 1.0).ok());
  const struct {
    double all;
    double tracked;
  } bad[] = {{-1.0, 1.0}, {1.0, -0.5}, {kNaN, 1.0}, {1.0, kNaN},
             {kInf, 1.0}, {1.0, kInf}, {-kInf, 0.0}};
  for (const auto& b : bad) {
    const Status st = q.Restore(b.all, b.tracked);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << b.all << ", " << b.tracked;
    EXPECT_EQ(q.q_all(), 2.0);
    EXPECT_EQ(q.q_tracked(), 1.0);
  }
}

// The guarantee the paper's SLA argument rests on: over any stretch [i, j) of requests, the
// total shortfall sum(alpha - s) is at most the queue's growth Q_j - Q_i (since max(0, x) >= x).
TEST(VirtualQueue, ShortfallIsBoundedByQueueGrowthOnARandomSequence) {
  constexpr double kAlpha = 0.6;
  constexpr int kSteps = 400;
  Rng rng(20250101);
  VirtualQueue q(kAlpha);
  std::vector<double> queue = {0.0};      // queue[i] = Q after i updates
  std::vector<double> shortfall = {0.0};  // prefix sums of (alpha - s)
  int floored = 0;
  for (int i = 0; i < kSteps; ++i) {
    // Mostly uniform satisfaction, with runs of perfect answers so the floor is hit too.
    const double s = (i / 50) % 2 == 0 ? rng.Uniform() : (rng.Bernoulli(0.9) ? 1.0 : 0.0);
    const double before = q.q_tracked();
    ASSERT_TRUE(q.UpdateTracked(s).ok());
    if (before + kAlpha - s < 0.0) ++floored;
    queue.push_back(q.q_tracked());
    shortfall.push_back(shortfall.back() + (kAlpha - s));
  }
  ASSERT_GT(floored, 0) << "the sequence should exercise the floor at zero";
  for (int i = 0; i <= kSteps; ++i) {
    for (int j = i; j <= kSteps; ++j) {
      ASSERT_LE(shortfall[j] - shortfall[i], queue[j] - queue[i] + 1e-9)
          << "window [" << i << ", " << j << ")";
    }
  }
}

TEST(VirtualQueue, ShortfallEqualsQueueGrowthWhileTheFloorIsNeverHit) {
  // alpha = 0.9 and s <= 0.8 keeps every step positive, so max(0, x) = x throughout and the
  // bound holds with equality: Q_end - Q_start = sum(0.9 - s).
  Rng rng(7);
  VirtualQueue q(0.9, 1.0);
  double shortfall = 0.0;
  for (int i = 0; i < 200; ++i) {
    const double s = 0.8 * rng.Uniform();
    ASSERT_TRUE(q.UpdateAll(s).ok());
    shortfall += 0.9 - s;
  }
  EXPECT_NEAR(q.q_all() - 1.0, shortfall, 1e-9);
}

}  // namespace
}  // namespace messplus::router
