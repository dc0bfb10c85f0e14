// CostModel: a running estimate of each model's cost per request, in any unit (J, USD, s).
//
// The estimate is the mean of the observed costs, started from an optional prior that counts
// as `prior_weight` observations. A model with neither a prior nor an observation has an
// unknown cost (Known() is false); policies decide what that means for them.
//
// Thread safety: none (a value type; the owner synchronises).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "router/status.h"

namespace messplus::router {

class CostModel {
 public:
  struct Prior {
    double mean = -1.0;   // < 0: no prior
    double weight = 1.0;  // in observations
  };

  explicit CostModel(size_t num_models = 0);

  size_t num_models() const { return sum_.size(); }

  // InvalidArgument for a negative, NaN or infinite mean or a non-positive weight.
  Status SetPrior(size_t model, double mean, double weight);

  // Records one observed cost of a call to `model`. NotFound for an unknown model,
  // InvalidArgument for a negative / NaN / infinite cost; no change then.
  Status Observe(size_t model, double cost);

  bool Known(size_t model) const { return count_[model] > 0 || prior_[model].mean >= 0.0; }
  // Estimated cost per call; 0 when unknown.
  double Estimate(size_t model) const;
  uint64_t observations(size_t model) const { return count_[model]; }
  double observed_sum(size_t model) const { return sum_[model]; }
  const Prior& prior(size_t model) const { return prior_[model]; }

  // Restores saved counters (snapshots). InvalidArgument when the sizes or values are bad.
  Status Restore(const std::vector<uint64_t>& counts, const std::vector<double>& sums);

 private:
  std::vector<Prior> prior_;
  std::vector<uint64_t> count_;
  std::vector<double> sum_;
};

}  // namespace messplus::router
