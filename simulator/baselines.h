// Baselines a router is measured against, computed on the same rows it routed.
//
//   always:<model>   every request to one model;
//   educated_guess   the cheapest fixed random mix of models whose expected satisfaction (from
//                    each model's true mean) meets alpha, sampled per request with the seed;
//   oracle           per request, the model with the best satisfaction, cheapest among ties;
//   alpha_oracle     the cheapest per-request choice whose average satisfaction meets alpha
//                    (exact for 0/1 satisfaction; the LP relaxation rounded up otherwise).
// All of them know the outcomes in advance; none of them is a router.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "simulator/dataset.h"

namespace messplus::simulator {

struct BaselineResult {
  std::string name;
  double avg_cost = 0.0;
  double avg_satisfaction = 0.0;
  bool sla_met = false;
};

// The cheapest mix of models (weights sum to 1) whose expected satisfaction is >= alpha, for
// models with the given mean satisfaction and cost. When no mix reaches alpha, all weight
// goes to the most satisfying model and `feasible` is false.
struct FixedMix {
  std::vector<double> weight;
  double expected_cost = 0.0;
  double expected_satisfaction = 0.0;
  bool feasible = false;
};
FixedMix CheapestFixedMix(std::span<const double> mean_satisfaction,
                          std::span<const double> mean_cost, double alpha);

// Expected cost per request of the educated guess over `rows` (the mix's cost by the true
// means, not sampled): a yardstick free of the sampling noise of one run.
double EducatedGuessExpectedCost(const Dataset& data, std::span<const size_t> rows, double alpha);

// Every baseline above over `rows` (indices into data, in stream order). The educated guess
// is sampled with `seed`.
std::vector<BaselineResult> ComputeBaselines(const Dataset& data, std::span<const size_t> rows,
                                             double alpha, uint64_t seed);

}  // namespace messplus::simulator
