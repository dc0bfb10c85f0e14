#include "router/paper_policy.h"

namespace messplus::router {

PaperPolicy::PaperPolicy(const RouterConfig& config)
    : num_models_(config.models.size()),
      v_(config.v),
      schedule_(config.c),
      rng_(Rng::Mix(config.seed, 0x7061706572ull /* "paper" */)),
      state_(config, 0.0) {}

void PaperPolicy::Decide(const RouteRequest& request, uint64_t task_key, Decision* out) {
  const size_t m_count = num_models_;
  const uint64_t t = state_.BeginDecision(request, task_key, out);
  const double p_t = schedule_.Probability(t);
  const bool explore = rng_.Bernoulli(p_t);
  state_.predictor.Predict(*request.features, out->p);

  const VirtualQueue& queue = state_.queues[request.tenant];
  const double q = queue.q_tracked();
  const double alpha = queue.alpha();
  bool reachable = false;
  for (size_t m = 0; m < m_count; ++m) {
    out->cost_estimate[m] = state_.costs.Estimate(m);
    out->score[m] = v_ * out->cost_estimate[m] + q * (alpha - out->p[m]);
    reachable = reachable || out->p[m] >= alpha;
  }
  const uint32_t exploit = CommonState::ArgminScore(out->score, out->cost_estimate);

  out->explore = explore;
  out->explore_probability = p_t;
  out->q = q;
  out->v = v_;
  out->alpha = alpha;
  out->alpha_unreachable = !reachable;
  out->run.clear();
  out->chosen = exploit;
  if (explore) {
    out->served = static_cast<uint32_t>(m_count - 1);
    out->run.push_back(out->served);
    for (uint32_t m = 0; m + 1 < m_count; ++m) out->run.push_back(m);
  } else {
    out->served = exploit;
    out->run.push_back(exploit);
  }
  for (size_t m = 0; m < m_count; ++m) {
    out->run_probability[m] = p_t + (m == exploit ? 1.0 - p_t : 0.0);
  }
}

void PaperPolicy::OnCosts(const Decision& /*decision*/, std::span<const ModelCost> costs) {
  ++state_.outcomes;
  for (const ModelCost& c : costs) (void)state_.costs.Observe(c.model, c.cost);
}

void PaperPolicy::OnFeedback(const Decision& decision, const SparseFeatures& features,
                             std::span<const ModelLabel> labels) {
  for (const ModelLabel& l : labels) {
    if (l.model == decision.served) {
      (void)state_.queues[decision.tenant].UpdateTracked(l.satisfaction);
    }
    // The published algorithm trains its predictor on explored requests only.
    if (decision.explore) (void)state_.predictor.Update(features, l.model, l.satisfaction);
  }
}

void PaperPolicy::OnGroundTruth(const Decision& decision, double satisfaction) {
  (void)state_.queues[decision.tenant].UpdateAll(satisfaction);
}

}  // namespace messplus::router
