#include "router/cost_model.h"

#include <cmath>
#include <string>

namespace messplus::router {

CostModel::CostModel(size_t num_models)
    : prior_(num_models), count_(num_models, 0), sum_(num_models, 0.0) {}

Status CostModel::SetPrior(size_t model, double mean, double weight) {
  if (model >= num_models()) return Status::NotFound("cost prior for unknown model index");
  if (!(mean >= 0.0) || !std::isfinite(mean)) {
    return Status::InvalidArgument("cost prior must be a finite number >= 0, got " +
                                   std::to_string(mean));
  }
  if (!(weight > 0.0) || !std::isfinite(weight)) {
    return Status::InvalidArgument("cost prior weight must be > 0");
  }
  prior_[model] = Prior{mean, weight};
  return Status::Ok();
}

Status CostModel::Observe(size_t model, double cost) {
  if (model >= num_models()) return Status::NotFound("cost for unknown model index");
  if (!(cost >= 0.0) || !std::isfinite(cost)) {
    return Status::InvalidArgument("cost must be a finite number >= 0, got " +
                                   std::to_string(cost));
  }
  ++count_[model];
  sum_[model] += cost;
  return Status::Ok();
}

double CostModel::Estimate(size_t model) const {
  const Prior& p = prior_[model];
  const double w = p.mean >= 0.0 ? p.weight : 0.0;
  const double n = static_cast<double>(count_[model]) + w;
  if (n <= 0.0) return 0.0;
  return (sum_[model] + w * (p.mean >= 0.0 ? p.mean : 0.0)) / n;
}

Status CostModel::Restore(const std::vector<uint64_t>& counts, const std::vector<double>& sums) {
  if (counts.size() != num_models() || sums.size() != num_models()) {
    return Status::InvalidArgument("cost state has the wrong number of models");
  }
  for (size_t m = 0; m < sums.size(); ++m) {
    if (!(sums[m] >= 0.0) || !std::isfinite(sums[m]) || (counts[m] == 0 && sums[m] != 0.0)) {
      return Status::InvalidArgument("bad cost sum in state");
    }
  }
  count_ = counts;
  sum_ = sums;
  return Status::Ok();
}

}  // namespace messplus::router
