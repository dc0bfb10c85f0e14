// The adaptive policy's exploration guarantee: the spend on calls beyond the decision rule's
// choice never exceeds explore_budget times the spend on the choices, plus one call of the
// dearest model, plus (once, when no cost prior is configured) one cost-discovery call of
// each model. Checked on an 11-model synthetic zoo with per-call USD costs and on RouteLLM's
// MMLU with constant per-call costs (20:1), at several stream lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "simulator/dataset.h"
#include "simulator/replay.h"
#include "simulator/synthetic.h"
#include "tests/support/shared_data.h"

namespace messplus::simulator {
namespace {

void ExpectWithinBudget(const Dataset& data, double alpha, double budget, uint64_t seed) {
  std::vector<double> dearest(data.num_models(), 0.0);  // per model: its dearest call
  for (size_t r = 0; r < data.rows(); ++r) {
    for (size_t m = 0; m < data.num_models(); ++m)
      dearest[m] = std::max(dearest[m], data.Cost(r, m));
  }
  const double dearest_call = *std::max_element(dearest.begin(), dearest.end());
  double discovery = 0.0;  // the sim configures no cost priors: every model is discovered once
  for (double c : dearest) discovery += c;
  for (size_t limit : {100u, 500u, 2000u, 0u}) {
    ReplayOptions o;
    o.alpha = alpha;
    o.router.seed = seed;
    o.router.adaptive.explore_budget = budget;
    o.limit = limit;
    Result<ReplayResult> r = RunReplay(data, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const double n = static_cast<double>(r->requests);
    const double explored = r->exploration_cost * n;
    const double chosen = r->chosen_cost * n;
    EXPECT_LE(explored, budget * chosen + dearest_call + discovery)
        << "limit " << limit << ": explored " << explored << ", chosen " << chosen;
    if (limit == 0) {
      // The budget is used, not just respected: exploration does happen.
      EXPECT_GT(explored, 0.0);
      std::printf("  %zu requests: exploration %.4f of the choices' spend (budget %.2f)\n",
                  r->requests, explored / chosen, budget);
    }
  }
}

TEST(ExplorationBudget, ElevenModelZooWithUsdCosts) {
  SyntheticOptions o;
  o.num_models = 11;
  o.rows = 8000;
  o.cost_kind = "cost_usd";
  o.base_cost = 0.0002;  // USD per call for the smallest model
  o.cost_ratio = 1.6;
  Result<Dataset> data = GenerateSyntheticZoo(o);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  for (double budget : {0.02, 0.05, 0.10}) {
    for (uint64_t seed : {42u, 43u}) ExpectWithinBudget(*data, 0.8, budget, seed);
  }
}

TEST(ExplorationBudget, RouteLlmMmluWithConstantCosts) {
  MESSPLUS_REQUIRE_SHARED_DATA(path, "routellm/routellm_mmlu_part3.csv");
  LoadOptions lo;
  lo.constant_costs = {{"mistralai/Mixtral-8x7B-Instruct-v0.1", 1.0}, {"gpt-4-1106-preview", 20.0}};
  Result<Dataset> data = LoadDataset(path, lo);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  for (double budget : {0.02, 0.05}) {
    for (uint64_t seed : {42u, 43u, 44u}) ExpectWithinBudget(*data, 0.80, budget, seed);
  }
}

}  // namespace
}  // namespace messplus::simulator
