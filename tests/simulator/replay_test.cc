// The replay simulator end to end: determinism, baselines on hand-made data, delayed and
// sparse feedback, and the paper's arc_challenge setting on the captured Llama 3 data.
#include "simulator/replay.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "simulator/baselines.h"
#include "simulator/synthetic.h"
#include "tests/support/shared_data.h"

namespace messplus::simulator {
namespace {

const BaselineResult& Baseline(const ReplayResult& r, const std::string& name) {
  for (const BaselineResult& b : r.baselines) {
    if (b.name == name) return b;
  }
  static const BaselineResult kNone{"missing", NAN, NAN, false};
  ADD_FAILURE() << "no baseline " << name;
  return kNone;
}

Dataset TwoModelToy() {
  // Four prompts; model 0 costs 1 and is right on rows 0,1; model 1 costs 10 and is right on
  // rows 0,1,2.
  Dataset d;
  d.models = {"small", "large"};
  d.cost_kind = "energy_j";
  for (int r = 0; r < 4; ++r) {
    d.ids.push_back("r" + std::to_string(r));
    d.prompts.push_back("prompt " + std::to_string(r));
    d.tasks.push_back("toy");
  }
  d.score = {1, 1, 1, 1, 0, 1, 0, 0};
  d.cost = {1, 10, 1, 10, 1, 10, 1, 10};
  return d;
}

TEST(Baselines, CheapestFixedMixMixesTheTwoModelsAroundAlpha) {
  // sat (0.5, 0.75), cost (1, 10), alpha 0.6: w_large = (0.6-0.5)/(0.25) = 0.4,
  // cost = 0.6 * 1 + 0.4 * 10 = 4.6.
  const FixedMix mix =
      CheapestFixedMix(std::vector<double>{0.5, 0.75}, std::vector<double>{1.0, 10.0}, 0.6);
  EXPECT_TRUE(mix.feasible);
  EXPECT_NEAR(mix.weight[0], 0.6, 1e-12);
  EXPECT_NEAR(mix.weight[1], 0.4, 1e-12);
  EXPECT_NEAR(mix.expected_cost, 4.6, 1e-12);
}

TEST(Baselines, CheapestFixedMixFallsBackToTheBestModelWhenAlphaIsOutOfReach) {
  const FixedMix mix =
      CheapestFixedMix(std::vector<double>{0.5, 0.75}, std::vector<double>{1.0, 10.0}, 0.9);
  EXPECT_FALSE(mix.feasible);
  EXPECT_EQ(mix.weight[1], 1.0);
}

TEST(Baselines, OraclesOnHandMadeRows) {
  const Dataset d = TwoModelToy();
  const std::vector<size_t> rows = {0, 1, 2, 3};
  const std::vector<BaselineResult> b = ComputeBaselines(d, rows, 0.6, 1);
  // Oracle: rows 0,1 -> small (cost 1, right), row 2 -> large (10, right), row 3: both
  // wrong -> small (1). Cost 13/4 = 3.25, satisfaction 3/4.
  for (const BaselineResult& x : b) {
    if (x.name == "oracle") {
      EXPECT_DOUBLE_EQ(x.avg_cost, 3.25);
      EXPECT_DOUBLE_EQ(x.avg_satisfaction, 0.75);
    }
    // Alpha oracle at 0.6: base = all small: satisfaction 2/4 = 0.5 < 0.6, buy the cheapest
    // upgrade (row 2 to large, +1 satisfaction for +9): 3/4, cost (4 + 9) / 4 = 3.25.
    if (x.name == "alpha_oracle") {
      EXPECT_DOUBLE_EQ(x.avg_cost, 3.25);
      EXPECT_DOUBLE_EQ(x.avg_satisfaction, 0.75);
      EXPECT_TRUE(x.sla_met);
    }
    if (x.name == "always:small") {
      EXPECT_DOUBLE_EQ(x.avg_cost, 1.0);
      EXPECT_DOUBLE_EQ(x.avg_satisfaction, 0.5);
      EXPECT_FALSE(x.sla_met);
    }
  }
}

TEST(Auc, RanksPerfectlyAndByChance) {
  EXPECT_DOUBLE_EQ(Auc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(Auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}), 0.5);  // ties count one half
  EXPECT_DOUBLE_EQ(Auc({0.1, 0.2}, {1, 1}), 0.5);                  // one class only
}

TEST(Auc, LeavesOutScoresThatAreNotFinite) {
  // A NaN score once made the tie scan spin forever (NaN never equals itself).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(Auc({0.1, nan, 0.8, 0.9}, {0, 1, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({nan, nan}, {0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(Auc({0.9, std::numeric_limits<double>::infinity(), 0.1}, {0, 0, 1}), 0.0);
}

class ReplayOnSyntheticZoo : public ::testing::Test {
 protected:
  void SetUp() override {
    SyntheticOptions o;
    o.rows = 3000;
    Result<Dataset> d = GenerateSyntheticZoo(o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    data_ = std::move(*d);
  }
  Dataset data_;
};

TEST_F(ReplayOnSyntheticZoo, SameSeedSameDecisionsDifferentSeedDifferent) {
  for (const std::string policy : {"adaptive", "paper"}) {
    ReplayOptions o;
    o.router.policy = policy;
    o.router.seed = 42;
    o.alpha = 0.8;
    o.trace = true;
    Result<ReplayResult> a = RunReplay(data_, o);
    Result<ReplayResult> b = RunReplay(data_, o);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->trace.size(), b->trace.size());
    for (size_t i = 0; i < a->trace.size(); ++i) {
      ASSERT_EQ(a->trace[i].served, b->trace[i].served) << policy << " request " << i;
      ASSERT_EQ(a->trace[i].explored, b->trace[i].explored) << policy << " request " << i;
    }
    EXPECT_EQ(a->avg_cost, b->avg_cost);
    o.router.seed = 43;
    Result<ReplayResult> c = RunReplay(data_, o);
    ASSERT_TRUE(c.ok());
    EXPECT_NE(a->avg_cost, c->avg_cost) << policy;
  }
}

TEST_F(ReplayOnSyntheticZoo, ReportsConsistentShares) {
  ReplayOptions o;
  o.alpha = 0.8;
  Result<ReplayResult> r = RunReplay(data_, o);
  ASSERT_TRUE(r.ok());
  double total = 0.0;
  for (double s : r->model_share) total += s;
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_EQ(r->requests, 3000u);
  EXPECT_EQ(r->feedback_delivered, 3000u);
  EXPECT_GE(r->exploration_share, 0.0);
  EXPECT_LE(r->exploration_cost_share, 1.0);
  EXPECT_EQ(r->sla_met, r->avg_satisfaction >= 0.8);
  const double largest = Baseline(*r, "always:" + data_.models.back()).avg_cost;
  EXPECT_LT(r->avg_cost, largest);
}

TEST_F(ReplayOnSyntheticZoo, SparseFeedbackDeliversAboutTheRequestedShare) {
  ReplayOptions o;
  o.alpha = 0.8;
  o.feedback_rate = 0.2;
  Result<ReplayResult> r = RunReplay(data_, o);
  ASSERT_TRUE(r.ok());
  // Binomial(3000, 0.2): mean 600, sd 21.9; 5 sd either side.
  EXPECT_NEAR(static_cast<double>(r->feedback_delivered), 600.0, 110.0);
}

TEST_F(ReplayOnSyntheticZoo, DelayedFeedbackNeverArrivesForTheLastRequests) {
  ReplayOptions o;
  o.alpha = 0.8;
  o.feedback_delay = 100;
  Result<ReplayResult> r = RunReplay(data_, o);
  ASSERT_TRUE(r.ok());
  // Feedback for request i arrives before request i + 100; the last 100 never get it.
  EXPECT_EQ(r->feedback_delivered, 2900u);
}

// Requests in flight, as in the pipeline: the first 32 decisions are made before any outcome
// returns, with every cost unknown. Cost discovery runs each model once beside the choice, so
// the dear model is measured from the start; without it, the first decisions all went to the
// cheapest model, the dearest stayed unmeasured (judged at the pooled mean, below a good
// cheaper one) and the SLA was missed in 4 of 6 seeds of the demo's zoo.
TEST(ReplayInFlight, ThirtyTwoInFlightMeetTheSlaInEverySeed) {
  Result<Dataset> data = GenerateSyntheticZoo(SyntheticOptions());  // the demo's zoo
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  for (uint64_t seed = 42; seed < 48; ++seed) {
    ReplayOptions o;
    o.limit = 3000;  // the demo's live run
    o.alpha = 0.8;
    o.in_flight = 32;
    o.router.seed = seed;
    Result<ReplayResult> r = RunReplay(*data, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->sla_met) << "seed " << seed << ": satisfaction " << r->avg_satisfaction;
    // Feedback for request i comes with its outcome, 32 requests later: the last 32 never.
    EXPECT_EQ(r->feedback_delivered, 3000u - 32u);
    for (size_t m = 0; m < r->model_share.size(); ++m) EXPECT_GT(r->model_share[m], 0.0) << m;
  }
}

TEST_F(ReplayOnSyntheticZoo, RejectsBadOptions) {
  ReplayOptions o;
  o.alpha = 1.5;
  EXPECT_EQ(RunReplay(data_, o).status().code(), StatusCode::kInvalidArgument);
  o.alpha = 0.5;
  o.feedback_rate = -0.1;
  EXPECT_EQ(RunReplay(data_, o).status().code(), StatusCode::kInvalidArgument);
  o.feedback_rate = 1.0;
  o.in_flight = 0;
  EXPECT_EQ(RunReplay(data_, o).status().code(), StatusCode::kInvalidArgument);
  o.in_flight = 1;
  o.router.policy = "no-such-policy";
  EXPECT_EQ(RunReplay(data_, o).status().code(), StatusCode::kNotFound);
}

// The paper's setting on captured data: MESS+ as published meets the SLA on arc_challenge
// at alpha 0.50 (V = 1e-4 with energy in J, c = 0.1) for a cost well under always-70B.
TEST(ReplayOnLlamaData, PaperPolicyMeetsTheSlaOnArcChallengeWellUnderAlwaysLargest) {
  MESSPLUS_REQUIRE_SHARED_DATA(path, "messplus_llama3/messplus_llama3_arc_challenge.csv");
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->rows(), 1172u);
  for (uint64_t seed : {42, 43, 44}) {
    ReplayOptions o;
    o.router.policy = "paper";
    o.router.v = 1e-4;
    o.router.c = 0.1;
    o.router.seed = seed;
    o.alpha = 0.50;
    Result<ReplayResult> r = RunReplay(*data, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->sla_met) << "seed " << seed << ": satisfaction " << r->avg_satisfaction;
    const double largest = Baseline(*r, "always:llama-3.3-70b-instruct-bnb4bit").avg_cost;
    // "Well under": at most half of always-largest (the paper policy lands near a third).
    EXPECT_LT(r->avg_cost, 0.5 * largest) << "seed " << seed;
  }
}

TEST(ReplayOnLlamaData, AdaptivePolicyMeetsTheSlaOnArcChallengeBelowThePaperPolicy) {
  MESSPLUS_REQUIRE_SHARED_DATA(path, "messplus_llama3/messplus_llama3_arc_challenge.csv");
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  double adaptive = 0.0, paper = 0.0;
  for (uint64_t seed : {42, 43, 44}) {
    ReplayOptions o;
    o.router.seed = seed;
    o.alpha = 0.50;
    Result<ReplayResult> a = RunReplay(*data, o);
    o.router.policy = "paper";
    Result<ReplayResult> p = RunReplay(*data, o);
    ASSERT_TRUE(a.ok() && p.ok());
    EXPECT_TRUE(a->sla_met) << "seed " << seed << ": satisfaction " << a->avg_satisfaction;
    adaptive += a->avg_cost;
    paper += p->avg_cost;
  }
  EXPECT_LT(adaptive, paper);
}

// Feedback on 20 % of requests: 8,000 of 10,000 outcomes are never seen and count at their
// predictions, corrected by the predictions' mean error on the 2,000 that are. That correction
// is itself known only to within about sd / sqrt(2,000), an error shared by all 8,000: the
// queue's allowance counts it (calibration_uncertainty), and every seed meets alpha. Counting
// only the outcomes' own noise, seeds 1-20 miss once (by 36 requests).
TEST(ReplaySparseFeedback, TwentyPercentFeedbackMeetsTheSlaInEverySeed) {
  SyntheticOptions so;
  so.rows = 10000;
  Result<Dataset> data = GenerateSyntheticZoo(so);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  for (bool calibration_uncertainty : {true, false}) {
    int met = 0;
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      ReplayOptions o;
      o.alpha = 0.8;
      o.feedback_rate = 0.2;
      o.router.seed = seed;
      o.router.adaptive.calibration_uncertainty = calibration_uncertainty;
      Result<ReplayResult> r = RunReplay(*data, o);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      met += r->sla_met ? 1 : 0;
      if (calibration_uncertainty) {
        EXPECT_TRUE(r->sla_met) << "seed " << seed << ": satisfaction " << r->avg_satisfaction;
      }
    }
    if (!calibration_uncertainty) {
      EXPECT_LT(met, 20);
    }
  }
}

}  // namespace
}  // namespace messplus::simulator
