// AdaptivePolicy ("adaptive", the default): MESS+'s queue-and-price decision rule, fed with
// estimates that are honest about what the feedback has shown. docs/policies.md has the
// measurements behind each part. For request x of task k and tenant j:
//
//   1. Estimates. Every label (the served answer's, and the extra answer's when exploring)
//      updates counts per model and per (task, model). A model's mean is shrunk toward the
//      mean over all models; a task's difficulty offset toward 0; the (task, model) estimate
//      toward model mean + task offset. With no per-request signal the policy therefore
//      becomes a mix per task instead of following noise.
//   2. Text. A hashed n-gram logistic model learns each model's residual over those
//      estimates. It steers a model's estimate only after it has beaten the estimates, in log
//      loss on labels it had not seen yet, with a margin and z standard errors to spare
//      (the text gate); until then the estimate ignores the text. A shared difficulty model
//      (one output over every model's labels) does the same for how hard a request is; its
//      output is centred on its running mean, and labels count adjusted for it.
//   3. Price. Every few labels, the cheapest allocation of models per task that meets the
//      target (alpha plus a decaying margin) is solved from the estimates and the task
//      frequencies, for draws from the estimates' posteriors; a low quantile of the marginal
//      prices lambda (cost per unit of satisfaction) sets V = q_reference / lambda, so the
//      allocation is what the rule picks at Q = q_reference. A bounded integral of the
//      backlog corrects lambda, holding while the served model could not have been changed
//      by any price (anti-windup).
//   4. Queue. Q = q_reference * exp(b / backlog_scale) with b = B + P: B is the backlog moved
//      by arrived labels (B <- B + target - s, a buffer added over the first labels), P the
//      predicted shortfall of requests whose label has not arrived (yet, or ever), corrected
//      for the measured bias of such predictions plus an allowance for their variance (the
//      outcomes' own and that of the measured bias). The decision sees b jittered by
//      +-queue_dither. The scale is backlog_scale until margin_scale labels, then grows as
//      the square root of the labels (as the margin's accumulated surplus does), but only as
//      far as one scale of backlog can be cleared at full effort in clear_requests requests
//      (the headroom of the most satisfying allocation over the target, from the LP).
//   5. Decision. argmin_m V*E_m + Q*(target - p_m(x)), ties to the cheaper model. Behind the
//      target, models dearer than the choice are judged with optimism growing with the
//      backlog, so a model written off after an unlucky start is retried. A model that is
//      off the task's efficient frontier (estimates against costs) between two models on it
//      is judged at hull_z standard errors above its estimate where it is dearer than the
//      choice (hull optimism): otherwise a mix of its two neighbours is served in its place
//      and it never gets the labels that could show it to be better. Models whose cost is still
//      unknown look free, so each is tried once.
//   6. Exploration. With probability explore_rate, one extra model runs beside the chosen one
//      if it could beat it under optimistic estimates and the extra spend stays within
//      explore_budget of the spend on the rule's choices. Guarantee (constant per-call costs,
//      as with per-call USD prices): extra spend <= explore_budget * spend on the choices
//      + the price of one call of the dearest model; with variable costs the last term is
//      the dearest single call. The better of the two answers (by estimate) is served.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "router/common_state.h"
#include "router/policy.h"
#include "router/rng.h"

namespace messplus::router {

class AdaptivePolicy final : public Policy {
 public:
  explicit AdaptivePolicy(const RouterConfig& config);

  std::string_view name() const override { return "adaptive"; }
  void Decide(const RouteRequest& request, uint64_t task_key, Decision* out) override;
  void OnCosts(const Decision& decision, std::span<const ModelCost> costs) override;
  void OnFeedback(const Decision& decision, const SparseFeatures& features,
                  std::span<const ModelLabel> labels) override;
  void OnGroundTruth(const Decision& decision, double satisfaction) override;
  void OnInFlight(const Decision& decision, double sign) override;

  const VirtualQueue& queue(uint32_t tenant) const override { return state_.queues[tenant]; }
  const CostModel& costs() const override { return state_.costs; }
  const SatisfactionPredictor& predictor() const override { return state_.predictor; }

  void SaveLearningState(Packer* packer) const override;
  Status LoadLearningState(const msgpack::object& state) override;

  // Introspection (metrics, tests).
  double price(uint32_t tenant) const { return tenants_[tenant].price; }
  double backlog(uint32_t tenant) const { return tenants_[tenant].backlog; }
  double pending(uint32_t tenant) const { return tenants_[tenant].pending; }
  double headroom(uint32_t tenant) const { return tenants_[tenant].headroom; }
  // The backlog scale of the tenant's exponential queue (AdaptiveTuning::clear_requests).
  double backlog_scale(uint32_t tenant) const { return BacklogScale(tenants_[tenant]); }
  bool text_gate_open(size_t model) const { return gates_[model].open; }
  double serve_spend() const { return serve_spend_; }
  double explore_spend() const { return explore_spend_; }
  // The shrunk estimate of a model's satisfaction on a task (no text), as decisions use it.
  double Estimate(size_t model, uint64_t task_key) const;

 private:
  struct TaskStats {
    std::vector<double> n;    // labels per model
    std::vector<double> sum;  // satisfaction per model
    double offset_sum = 0.0;  // sum of (s - model mean) over the task's labels
    double offset_n = 0.0;
    double requests = 0.0;  // outcomes seen, for the task frequencies
  };
  struct TenantState {
    double labels = 0.0;  // served labels received
    double backlog = 0.0;
    double pending = 0.0;
    double pending_var = 0.0;  // sum of p(1-p) over the requests counted in `pending`
    double pending_n = 0.0;    // how many requests `pending` counts
    double inflight = 0.0;     // predicted shortfall of this router's requests in flight
    double inflight_var = 0.0, inflight_n = 0.0;        // as pending_var and pending_n, for them
    double calibration_sum = 0.0, calibration_n = 0.0;  // served labels minus predictions
    double price = 1.0;  // lambda: cost per unit of satisfaction at the allocation
    bool unreachable = false;
    double headroom = 0.0;     // most satisfying allocation's satisfaction minus the target
    double correction = 0.0;   // log of the integral correction of the price
    bool integrating = false;  // set once the starting backlog has been worked off
  };
  struct Gate {
    double n = 0.0, sum = 0.0, sum_sq = 0.0;  // log-loss gains of text over the estimates
    bool open = false;
  };

  double PooledMean() const;
  // The shared difficulty logit of a request (0 while its gate is closed).
  double SharedDifficulty(const SparseFeatures& x) const;
  // The shared model's raw logit relative to its running mean (with center_difficulty).
  double Centred(double raw) const;
  void ScoreGate(Gate* gate, double base_p, double with_text_p, double s) const;
  double ModelMean(size_t m) const;
  double TaskOffset(const TaskStats* task) const;
  // Shrunk (task, model) estimate and its standard error.
  double BaseEstimate(size_t m, const TaskStats* task) const;
  double StdError(size_t m, const TaskStats* task, double p) const;
  // Estimates of every model on a task with their standard errors, after the monotone
  // smoothing in cost order.
  void TaskEstimates(const TaskStats* task, std::vector<double>* p, std::vector<double>* sd) const;
  double Target(uint32_t tenant) const;
  double Bonus() const;
  // Q for a backlog b (labeled plus pending shortfall, as the decision sees it).
  double QueueLevel(double b, double scale) const;
  double BacklogScale(const TenantState& tenant) const;
  double PendingShortfall(const TenantState& tenant) const;
  // True when the served model was at the end of the ladder the backlog pushes toward (the
  // most satisfying behind the target, the cheapest ahead of it): the integral then holds.
  bool Saturated(const Decision& decision, double backlog) const;
  struct FrontierStep {
    double price;  // cost per unit of satisfaction of the step
    double gain;   // satisfaction gained, weighted by the task's share of traffic
  };
  struct Frontier {
    std::vector<FrontierStep> steps;  // by price, cheapest first
    double base = 0.0;                // weighted satisfaction of the cheapest models
    double top = 0.0;                 // weighted satisfaction of the most satisfying models
  };
  void BuildFrontier(Rng* noise, const std::vector<size_t>& known, Frontier* out) const;
  // The cheapest of `known` (the most satisfying of equally cheap ones) by satisfaction p.
  size_t CheapestModel(const std::vector<double>& p, const std::vector<size_t>& known) const;
  // The efficient frontier's next vertex after `at`: the model of `known` whose satisfaction
  // p rises most per unit of cost over at's; num_models_ if none rises. *slope gets the rise.
  size_t NextVertex(size_t at, const std::vector<double>& p, const std::vector<size_t>& known,
                    double* slope) const;
  static double PriceFor(const Frontier& frontier, double target, double dearest, bool* reached);
  void RefreshPrices();
  // Hull optimism (AdaptiveTuning::hull_z): raises tilde_ and the score of the models off
  // the decision's efficient frontier, between two of its vertices, that cost more than
  // chosen_cost (the rule's choice).
  void LiftOffHull(Decision* out, double q, double v, double target, double chosen_cost);
  void UpdateLean();
  TaskStats& TaskFor(uint64_t task_key);
  const TaskStats* FindTask(uint64_t task_key) const;

  const size_t num_models_;
  const AdaptiveTuning tuning_;
  const std::vector<double> alpha_;  // per tenant
  Rng rng_;
  CommonState state_;

  std::vector<double> model_n_, model_sum_;
  double all_n_ = 0.0, all_sum_ = 0.0;
  // Ordered by key: iteration order (the LP's posterior draws, the saved state) must not
  // depend on the hash table's insertion history, or a replica that loaded a state would
  // solve different prices than the router that saved it.
  std::map<uint64_t, TaskStats> tasks_;
  std::vector<TenantState> tenants_;
  std::vector<Gate> gates_;
  double serve_spend_ = 0.0, explore_spend_ = 0.0;
  double explore_inflight_ = 0.0;  // estimated cost of extra calls decided, not yet answered
  double labels_ = 0.0;
  int labels_since_refresh_ = 0;
  // Per model, in [-1, 1]: the sign and weight of the optimism bonus (see UpdateLean).
  std::vector<double> lean_;
  // The shared difficulty model: one logistic residual over the text, trained on every
  // model's labels, so what the text says about a request's difficulty (learned mostly from
  // the models served most) carries over to every model.
  SatisfactionPredictor shared_;
  Gate shared_gate_;
  // Running mean of the shared model's logit over recent requests (see OnFeedback).
  double difficulty_mean_ = 0.0, difficulty_n_ = 0.0;
  // Per model: correction of its text-steered estimates, and the labels it was measured on.
  std::vector<double> text_bias_, text_bias_n_;
  std::vector<size_t> cost_order_;        // models by cost estimate, cheapest first
  std::vector<double> warmup_requested_;  // warm-up calls asked for, per model (this router)
  // Cost discovery: t of the last decision that ran each model while its cost was unknown
  // (0: never), at this router.
  std::vector<uint64_t> discovery_t_;

  // Scratch for Decide/OnFeedback (no allocation per request once sized).
  std::vector<double> base_, tilde_, sd_, logits_, weights_;
  struct PavBlock {
    double weight, sum;
    size_t first, last;  // positions in cost_order_
  };
  mutable std::vector<PavBlock> blocks_;  // scratch of TaskEstimates
  std::vector<char> on_hull_;             // scratch of LiftOffHull
  std::vector<size_t> known_;             // scratch of LiftOffHull: models with a known cost
  Frontier frontier_;
  std::vector<double> prices_;
};

}  // namespace messplus::router
