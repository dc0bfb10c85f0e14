// PaperPolicy ("paper"): MESS+ exactly as published (Woisetschläger et al., NeurIPS 2025).
//
// For request t:
//   1. With probability p_t = min(1, c / t^(1/4)) explore: run every model, serve the answer
//      of the last (largest, most expensive) model, and train the predictor on every model's
//      label when the feedback arrives.
//   2. Otherwise serve argmin_m V * E_m + Q_tracked * (alpha - p_m(x)), ties to the cheaper
//      model, where E_m is the running mean of the observed costs (0 while unknown, so every
//      model is tried once) and p_m(x) the predictor's output.
//   3. Each label that arrives for the served answer moves Q_tracked; the predictor learns
//      only from explored requests, as in the paper.
//
// Thread safety: none.
#pragma once

#include "router/common_state.h"
#include "router/exploration.h"
#include "router/policy.h"
#include "router/rng.h"

namespace messplus::router {

class PaperPolicy final : public Policy {
 public:
  explicit PaperPolicy(const RouterConfig& config);

  std::string_view name() const override { return "paper"; }
  void Decide(const RouteRequest& request, uint64_t task_key, Decision* out) override;
  void OnCosts(const Decision& decision, std::span<const ModelCost> costs) override;
  void OnFeedback(const Decision& decision, const SparseFeatures& features,
                  std::span<const ModelLabel> labels) override;
  void OnGroundTruth(const Decision& decision, double satisfaction) override;

  const VirtualQueue& queue(uint32_t tenant) const override { return state_.queues[tenant]; }
  const CostModel& costs() const override { return state_.costs; }
  const SatisfactionPredictor& predictor() const override { return state_.predictor; }

  void SaveLearningState(Packer* packer) const override { state_.Save(packer); }
  Status LoadLearningState(const msgpack::object& state) override { return state_.Load(state); }

 private:
  const size_t num_models_;
  const double v_;
  const ExplorationSchedule schedule_;
  Rng rng_;
  CommonState state_;
};

}  // namespace messplus::router
