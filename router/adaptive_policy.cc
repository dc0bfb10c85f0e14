#include "router/adaptive_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "router/state_codec.h"

namespace messplus::router {
namespace {

constexpr double kMinProbability = 0.02;  // estimates are kept inside [kMin, 1 - kMin]
constexpr double kUcbStdErrors = 2.0;     // optimism of the exploration candidate test
constexpr double kFloorScales = 3.0;      // the backlog's floor, in backlog scales below 0
constexpr double kMaxBehind = 20.0;       // caps the optimism's growth, in backlog scales
constexpr double kTextBiasPrior = 50.0;   // pseudo-labels of the text bias correction
// The integral starts when the starting backlog is worked off, or after this many labels
// if it never is (the estimates are then too far off for the backlog to come down).
constexpr double kIntegrateAfterLabels = 100.0;
// Cost discovery is retried after this many decisions while a model's cost stays unknown.
constexpr uint64_t kRediscoverDecisions = 100;
constexpr double kDifficultyWindow = 1000.0;  // requests in the difficulty model's mean

double Clamp01(double p) { return std::clamp(p, kMinProbability, 1.0 - kMinProbability); }
double Logit(double p) {
  p = Clamp01(p);
  return std::log(p / (1.0 - p));
}
double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double LogLoss(double p, double s) {
  p = std::clamp(p, 1e-6, 1.0 - 1e-6);
  return -(s * std::log(p) + (1.0 - s) * std::log(1.0 - p));
}

std::vector<double> Alphas(const RouterConfig& config) {
  std::vector<double> a;
  for (const TenantSpec& t : config.tenants) a.push_back(t.alpha);
  return a;
}

}  // namespace

AdaptivePolicy::AdaptivePolicy(const RouterConfig& config)
    : num_models_(config.models.size()),
      tuning_(config.adaptive),
      alpha_(Alphas(config)),
      rng_(Rng::Mix(config.seed, 0x6164617074ull /* "adapt" */)),
      state_(config, 0.0),
      model_n_(num_models_, 0.0),
      model_sum_(num_models_, 0.0),
      tenants_(config.tenants.size()),
      gates_(num_models_),
      lean_(num_models_, 0.0),
      shared_(config.hashing.dim(), 1, config.predictor),
      text_bias_(num_models_, 0.0),
      text_bias_n_(num_models_, 0.0),
      warmup_requested_(num_models_, 0.0),
      discovery_t_(num_models_, 0) {
  cost_order_.resize(num_models_);
  for (size_t m = 0; m < num_models_; ++m) cost_order_[m] = m;
  UpdateLean();
}

void AdaptivePolicy::UpdateLean() {
  if (num_models_ < 2) return;
  // Rank the models by cost (known costs first, cheapest first; unknown ones count as the
  // dearest): the order of the monotone smoothing, and the lean of each model's optimism
  // from lean_low (cheapest) to lean_high (dearest); both are off by default.
  std::vector<size_t> order(num_models_);
  for (size_t m = 0; m < num_models_; ++m) order[m] = m;
  std::stable_sort(order.begin(), order.end(), [this](size_t a, size_t b) {
    const bool ka = state_.costs.Known(a), kb = state_.costs.Known(b);
    if (ka != kb) return ka;
    return ka && state_.costs.Estimate(a) < state_.costs.Estimate(b);
  });
  cost_order_ = order;
  for (size_t r = 0; r < num_models_; ++r) {
    lean_[order[r]] = tuning_.lean_low + (tuning_.lean_high - tuning_.lean_low) *
                                             static_cast<double>(r) /
                                             static_cast<double>(num_models_ - 1);
  }
}

double AdaptivePolicy::SharedDifficulty(const SparseFeatures& x) const {
  if (!shared_gate_.open) return 0.0;
  double g = 0.0;
  shared_.PredictLogits(x, std::span<double>(&g, 1));
  return Centred(g);
}

double AdaptivePolicy::Centred(double raw) const {
  return tuning_.center_difficulty ? raw - difficulty_mean_ : raw;
}

void AdaptivePolicy::ScoreGate(Gate* gate, double base_p, double with_text_p, double s) const {
  const double gain = LogLoss(base_p, s) - LogLoss(with_text_p, s);
  gate->n += 1.0;
  gate->sum += gain;
  gate->sum_sq += gain * gain;
  if (gate->n >= tuning_.text_gate_min_labels) {
    const double mean = gate->sum / gate->n;
    const double var = std::max(0.0, gate->sum_sq / gate->n - mean * mean);
    gate->open = mean - tuning_.text_gate_z * std::sqrt(var / gate->n) > tuning_.text_gate_margin;
  }
}

double AdaptivePolicy::PooledMean() const { return (all_sum_ + 1.0) / (all_n_ + 2.0); }

double AdaptivePolicy::ModelMean(size_t m) const {
  const double n0 = tuning_.model_prior_strength;
  return (model_sum_[m] + n0 * PooledMean()) / (model_n_[m] + n0);
}

double AdaptivePolicy::TaskOffset(const TaskStats* task) const {
  if (task == nullptr) return 0.0;
  return task->offset_sum / (task->offset_n + tuning_.task_offset_strength);
}

double AdaptivePolicy::BaseEstimate(size_t m, const TaskStats* task) const {
  const double prior = Clamp01(ModelMean(m) + TaskOffset(task));
  if (task == nullptr) return prior;
  const double k = tuning_.task_prior_strength;
  return Clamp01((task->sum[m] + k * prior) / (task->n[m] + k));
}

double AdaptivePolicy::StdError(size_t m, const TaskStats* task, double p) const {
  // Two-level posterior: the model's overall mean is known to within
  // var_model = p(1-p) / (n_m + n0); the task estimate adds its own sampling error and
  // inherits the model-level uncertainty in proportion to the weight of its prior.
  const double var = p * (1.0 - p);
  const double var_model = var / (model_n_[m] + tuning_.model_prior_strength);
  if (task == nullptr) return std::sqrt(var_model);
  const double k = tuning_.task_prior_strength;
  const double w = k / (task->n[m] + k);
  return std::sqrt(var / (task->n[m] + k) + w * w * var_model);
}

double AdaptivePolicy::PendingShortfall(const TenantState& tenant) const {
  // Pending requests at their predicted satisfaction, corrected by the mean error of such
  // predictions on the requests whose labels did arrive (shrunk toward none over the first
  // kCalibrationPrior labels), plus pending_z standard deviations of their unknown sum.
  // Requests in flight (decided, outcome not back) count the same way.
  constexpr double kCalibrationPrior = 50.0;
  const double bias = tenant.calibration_sum / (tenant.calibration_n + kCalibrationPrior);
  const double n = tenant.pending_n + tenant.inflight_n;
  const double outcome_var = tenant.pending_var + tenant.inflight_var;  // sum of p(1-p)
  double var = outcome_var;
  if (tuning_.calibration_uncertainty && n > 0.0) {
    // The correction is a mean over calibration_n labels whose outcomes vary as much as the
    // pending ones' (mean p(1-p) = outcome_var / n), so it is known to within that variance
    // over calibration_n (+ its prior), and the same error applies to all n pending requests:
    // n^2 * (outcome_var / n) / (calibration_n + prior). With 20 % feedback on 13,000
    // requests this term, not the outcomes' own noise, decides whether alpha is kept.
    var += n * outcome_var / (tenant.calibration_n + kCalibrationPrior);
  }
  return tenant.pending + tenant.inflight - n * bias + tuning_.pending_z * std::sqrt(var);
}

double AdaptivePolicy::BacklogScale(const TenantState& tenant) const {
  // See AdaptiveTuning::clear_requests. The backlog's excursions under a given price response
  // grow with the noise of the satisfaction the stream has seen, as does the surplus the
  // margin has built by then (about 2 margin sqrt(margin_scale n) for n >> margin_scale), so
  // a scale growing at the same rate keeps the chance of ending the horizon below alpha where
  // it was at margin_scale labels. The growth stops where one scale of backlog would take
  // the zoo, at full effort, more than clear_requests requests to clear.
  const double fixed = tuning_.backlog_scale;
  if (tuning_.clear_requests <= 0.0) return fixed;
  const double grown = fixed * std::sqrt(std::max(1.0, tenant.labels / tuning_.margin_scale));
  return std::max(fixed, std::min(grown, tenant.headroom * tuning_.clear_requests));
}

double AdaptivePolicy::QueueLevel(double b, double scale) const {
  // The price rises exponentially with the backlog: a small backlog is left to the usual
  // alternation between adjacent models, a large one calls in the dearer models at once, so
  // the backlog cannot linger far above zero (where it would end the horizon below alpha).
  // Requests whose label has not arrived count at their predicted satisfaction, plus
  // pending_z standard deviations of the sum of their unknown outcomes: with sparse feedback
  // most outcomes are never seen, and their sum strays from its prediction.
  // Within the dead zone the price stays at the solved one, so allocations across tasks do
  // not flicker with every label; beyond it the queue acts as usual.
  if (tuning_.backlog_deadzone > 0.0) {
    b = b > 0.0 ? std::max(0.0, b - tuning_.backlog_deadzone)
                : std::min(0.0, b + tuning_.backlog_deadzone);
  }
  if (!tuning_.exponential_queue) return std::max(0.0, tuning_.q_reference + b);
  return tuning_.q_reference *
         std::min(tuning_.max_queue_factor, std::exp(std::clamp(b / scale, -30.0, 30.0)));
}

double AdaptivePolicy::Bonus() const {
  // UCB-style: the bonus in standard errors grows slowly with the evidence seen, so a model
  // that was unlucky early is retried before it is written off for good.
  return std::sqrt(std::log(2.718281828459045 + labels_));
}

void AdaptivePolicy::TaskEstimates(const TaskStats* task, std::vector<double>* p,
                                   std::vector<double>* sd) const {
  p->resize(num_models_);
  sd->resize(num_models_);
  for (size_t m = 0; m < num_models_; ++m) {
    (*p)[m] = BaseEstimate(m, task);
    (*sd)[m] = StdError(m, task, (*p)[m]);
  }
  if (tuning_.monotone_z <= 0.0 || num_models_ < 2) return;
  // A dearer model is taken to be at least as good as a cheaper one unless the evidence says
  // otherwise: adjacent inversions (in cost order) that are not significant at monotone_z
  // standard errors are pooled (pool-adjacent-violators, weighted by precision). Early on,
  // this keeps noise from ranking a small model above a large one.
  std::vector<PavBlock>& blocks = blocks_;
  blocks.clear();
  for (size_t r = 0; r < num_models_; ++r) {
    const size_t m = cost_order_[r];
    const double w = 1.0 / std::max((*sd)[m] * (*sd)[m], 1e-9);
    blocks.push_back({w, w * (*p)[m], r, r});
    while (blocks.size() >= 2) {
      PavBlock& hi = blocks.back();
      PavBlock& lo = blocks[blocks.size() - 2];
      const double violation = lo.sum / lo.weight - hi.sum / hi.weight;
      if (violation <= 0.0 ||
          violation > tuning_.monotone_z * std::sqrt(1.0 / lo.weight + 1.0 / hi.weight)) {
        break;
      }
      lo.weight += hi.weight;
      lo.sum += hi.sum;
      lo.last = hi.last;
      blocks.pop_back();
    }
  }
  for (const PavBlock& b : blocks) {
    for (size_t r = b.first; r <= b.last; ++r) (*p)[cost_order_[r]] = b.sum / b.weight;
  }
}

double AdaptivePolicy::Target(uint32_t tenant) const {
  return std::min(
      1.0, alpha_[tenant] + tuning_.margin / std::sqrt(1.0 + labels_ / tuning_.margin_scale));
}

AdaptivePolicy::TaskStats& AdaptivePolicy::TaskFor(uint64_t task_key) {
  auto [it, inserted] = tasks_.try_emplace(task_key);
  if (inserted) {
    it->second.n.assign(num_models_, 0.0);
    it->second.sum.assign(num_models_, 0.0);
  }
  return it->second;
}

const AdaptivePolicy::TaskStats* AdaptivePolicy::FindTask(uint64_t task_key) const {
  auto it = tasks_.find(task_key);
  return it == tasks_.end() ? nullptr : &it->second;
}

double AdaptivePolicy::Estimate(size_t model, uint64_t task_key) const {
  std::vector<double> p, sd;
  TaskEstimates(FindTask(task_key), &p, &sd);
  return p[model];
}

void AdaptivePolicy::Decide(const RouteRequest& request, uint64_t task_key, Decision* out) {
  const size_t m_count = num_models_;
  state_.BeginDecision(request, task_key, out);
  const TaskStats* task = FindTask(task_key);
  const TenantState& tenant = tenants_[request.tenant];
  tilde_.resize(m_count);
  sd_.resize(m_count);

  bool any_gate = false;
  for (const Gate& g : gates_) any_gate = any_gate || g.open;
  if (any_gate) {
    logits_.resize(m_count);
    state_.predictor.PredictLogits(*request.features, logits_);
  }
  const double difficulty = SharedDifficulty(*request.features);

  const double target = Target(request.tenant);
  // Optimism grows with the backlog: on target the estimates are used as they are; behind
  // it, the policy looks for a model that could catch up, giving each the benefit of its
  // uncertainty, so a model written off after an unlucky start is retried.
  // The backlog as the queue sees it: labeled shortfall plus that of the requests pending.
  const double backlog = tenant.backlog + PendingShortfall(tenant);
  const double scale = BacklogScale(tenant);
  const double behind = std::clamp((backlog - tuning_.optimism_start) / scale, 0.0, kMaxBehind);
  const double bonus = Bonus();
  // Dithering: the backlog the decision sees is jittered by a uniform draw in
  // [-queue_dither, queue_dither]. Near a switching point the choice between two models is
  // then random, with a probability that moves smoothly with the backlog, instead of flipping
  // on every label. Without it, a model is dropped right after each failure and picked up
  // after each success of another, so the labels it collects are biased low (the negative
  // bias of adaptively collected data), most for models right at the SLA's edge.
  const double jitter =
      tuning_.queue_dither > 0.0 ? tuning_.queue_dither * (2.0 * rng_.Uniform() - 1.0) : 0.0;
  const double q = QueueLevel(backlog + jitter, scale);
  const double v = tuning_.q_reference / (tenant.price * std::exp(tenant.correction));
  TaskEstimates(task, &base_, &sd_);
  for (size_t m = 0; m < m_count; ++m) {
    double p = base_[m];
    if (difficulty != 0.0) p = Clamp01(Sigmoid(Logit(p) + difficulty));
    if (any_gate && gates_[m].open) {
      // Text-steered estimate, minus the measured optimism of such estimates on the answers
      // they got served for: the model is chosen where its text estimate is high, so those
      // estimates run high (the optimiser's curse), and it is on exactly those requests that
      // an over-trusted text model would make a cheap model look as good as a dear one.
      p = Clamp01(Sigmoid(Logit(p) + logits_[m]) + text_bias_[m]);
    }
    out->p[m] = p;
    // Novelty: a model with few labels on this task is judged on what it could be (its
    // estimate plus novelty_z standard errors, fading as labels accrue), so it is served and
    // measured before an unlucky start can write it off.
    const double n_task = task == nullptr ? 0.0 : task->n[m];
    const double novelty = tuning_.novelty_z * std::max(0.0, 1.0 - n_task / tuning_.novelty_labels);
    // Thompson sampling: with thompson > 0, the estimate a decision uses is a draw from its
    // posterior (standard error scaled by `thompson`), so a model whose estimate is uncertain
    // is served now and then, in proportion to the chance that it is in fact worth it.
    const double draw = tuning_.thompson > 0.0 ? tuning_.thompson * rng_.Normal() : 0.0;
    tilde_[m] = std::clamp(p + (bonus * lean_[m] + novelty + draw) * sd_[m], 0.0, 1.0);
    out->cost_estimate[m] = state_.costs.Estimate(m);
    out->score[m] = v * out->cost_estimate[m] + q * (target - tilde_[m]);
  }
  uint32_t exploit = CommonState::ArgminScore(out->score, out->cost_estimate);
  if (tuning_.hull_z > 0.0) {
    LiftOffHull(out, q, v, target, out->cost_estimate[exploit]);
    exploit = CommonState::ArgminScore(out->score, out->cost_estimate);
  }
  // Behind the target, models dearer than that choice get the benefit of their uncertainty
  // (in proportion to how far behind): the one way a model written off after an unlucky
  // start gets retried. Cheaper models never do, since believing a cheap model better than
  // it is would only dig the backlog deeper.
  if (behind > 0.0 && tuning_.optimism > 0.0) {
    const double chosen_cost = out->cost_estimate[exploit];
    // The floor applies only while the choice itself is not expected to reach the target:
    // then the SLA rests on some dearer model being better than measured.
    const double floor = tilde_[exploit] < target ? tuning_.optimism_floor : 0.0;
    for (size_t m = 0; m < m_count; ++m) {
      if (out->cost_estimate[m] <= chosen_cost) continue;
      // The benefit of the doubt fades as the model's labels on this task accumulate: a
      // well-measured model is judged on its measurements.
      const double n = task == nullptr ? 0.0 : task->n[m];
      const double doubt = std::max(0.0, 1.0 - n / tuning_.optimism_labels);
      const double z = bonus * tuning_.optimism * behind;
      const double z_used = doubt * z + (1.0 - doubt) * std::min(z, floor);
      tilde_[m] = std::min(1.0, tilde_[m] + z_used * sd_[m]);
      out->score[m] = v * out->cost_estimate[m] + q * (target - tilde_[m]);
    }
    exploit = CommonState::ArgminScore(out->score, out->cost_estimate);
  }

  out->q = q;
  out->v = v;
  out->alpha = target;
  out->alpha_unreachable = tenant.unreachable;
  out->served = exploit;
  out->chosen = exploit;
  out->run.assign(1, exploit);
  out->explore = false;
  out->explore_probability = 0.0;
  out->run_probability[exploit] = 1.0;

  // Cost discovery: a model whose cost is unknown (never observed, no configured prior) runs
  // beside the choice, outside the exploration budget, once, and again every
  // kRediscoverDecisions decisions while its cost stays unknown (its call failed, or its
  // outcome is still on the way). Without it, an unknown model is tried only when its plain
  // score wins, and it is excluded from optimism and exploration (both need a price): with
  // requests in flight the first decisions all see every cost unknown and pick the same
  // model, and a dear model never tried is judged at the pooled mean, below a good cheaper
  // one, for as long as its cost stays unknown.
  bool discovering = false;
  for (size_t m = 0; m < m_count; ++m) {
    if (!tuning_.cost_discovery || m == exploit || state_.costs.Known(m)) continue;
    if (discovery_t_[m] != 0 && out->t < discovery_t_[m] + kRediscoverDecisions) continue;
    discovery_t_[m] = out->t;
    out->run.push_back(static_cast<uint32_t>(m));
    out->run_probability[m] = 1.0;
    discovering = true;
  }
  if (discovering) {
    out->explore = true;
    out->explore_probability = 1.0;
    // Serve the answer expected to satisfy most (the choice on ties).
    size_t best = 0;
    for (size_t k = 1; k < out->run.size(); ++k) {
      if (out->p[out->run[k]] > out->p[out->run[best]]) best = k;
    }
    std::swap(out->run[0], out->run[best]);
    out->served = out->run[0];
    return;
  }

  // Warm-up: until every model has warmup_labels labels (over all tasks), the model with the
  // fewest runs beside the choice, outside the exploration budget. A handful of labels per
  // model up front keeps one unlucky early label from steering the first hundreds of
  // requests; its cost is bounded by warmup_labels calls of each model.
  size_t warm = m_count;
  for (size_t m = 0; m < m_count; ++m) {
    if (m == exploit || !state_.costs.Known(m) || warmup_requested_[m] >= tuning_.warmup_labels) {
      continue;
    }
    if (warm == m_count || warmup_requested_[m] < warmup_requested_[warm]) warm = m;
  }
  if (warm < m_count) {
    warmup_requested_[warm] += 1.0;
    out->explore = true;
    out->explore_probability = 1.0;
    out->run_probability[warm] = 1.0;
    const bool warm_better = out->p[warm] > out->p[exploit];
    out->served = static_cast<uint32_t>(warm_better ? warm : exploit);
    out->run = {out->served, static_cast<uint32_t>(warm_better ? exploit : warm)};
  } else if (tuning_.explore_rate > 0.0 && tuning_.explore_budget > 0.0 && m_count > 1) {
    // Exploration: one extra model that could beat the choice under optimistic estimates.
    // Calls decided but not yet answered count against the budget too, so that requests in
    // flight cannot overshoot it together.
    const double budget =
        tuning_.explore_budget * serve_spend_ - explore_spend_ - explore_inflight_;
    weights_.assign(m_count, 0.0);
    double total = 0.0;
    for (size_t m = 0; m < m_count; ++m) {
      if (m == exploit || !state_.costs.Known(m)) continue;
      const double cost = out->cost_estimate[m];
      if (cost > budget) continue;
      const double ucb = std::min(1.0, out->p[m] + kUcbStdErrors * sd_[m]);
      const double optimistic_score = v * cost + q * (target - ucb);
      if (optimistic_score >= out->score[exploit]) continue;
      // How much better than the choice the model could be: the labels most likely to
      // change decisions are bought first.
      weights_[m] = out->score[exploit] - optimistic_score;
      total += weights_[m];
    }
    if (total > 0.0) {
      out->explore_probability = tuning_.explore_rate;
      for (size_t m = 0; m < m_count; ++m) {
        if (weights_[m] > 0.0) out->run_probability[m] = tuning_.explore_rate * weights_[m] / total;
      }
      if (rng_.Uniform() < tuning_.explore_rate) {
        double u = rng_.Uniform() * total;
        size_t extra = m_count;
        for (size_t m = 0; m < m_count; ++m) {
          if (weights_[m] <= 0.0) continue;
          extra = m;
          if (u < weights_[m]) break;
          u -= weights_[m];
        }
        if (extra < m_count) {
          explore_inflight_ += out->cost_estimate[extra];
          out->explore = true;
          // Both answers are paid for; serve the one expected to satisfy more.
          const bool extra_better = out->p[extra] > out->p[exploit];
          out->served = static_cast<uint32_t>(extra_better ? extra : exploit);
          out->run = {out->served, static_cast<uint32_t>(extra_better ? exploit : extra)};
        }
      }
    }
  }
}

size_t AdaptivePolicy::CheapestModel(const std::vector<double>& p,
                                     const std::vector<size_t>& known) const {
  size_t at = known[0];
  for (size_t m : known) {
    const double cm = state_.costs.Estimate(m), ca = state_.costs.Estimate(at);
    if (cm < ca || (cm == ca && p[m] > p[at])) at = m;
  }
  return at;
}

size_t AdaptivePolicy::NextVertex(size_t at, const std::vector<double>& p,
                                  const std::vector<size_t>& known, double* slope) const {
  size_t next = num_models_;
  *slope = 0.0;
  for (size_t m : known) {
    const double dp = p[m] - p[at];
    const double dc = state_.costs.Estimate(m) - state_.costs.Estimate(at);
    if (dp <= 0.0 || dc < 0.0) continue;
    const double s = dc == 0.0 ? std::numeric_limits<double>::infinity() : dp / dc;
    if (s > *slope) {
      *slope = s;
      next = m;
    }
  }
  return next;
}

void AdaptivePolicy::LiftOffHull(Decision* out, double q, double v, double target,
                                 double chosen_cost) {
  // The efficient frontier of the decision's estimates (cost against tilde_): from the
  // cheapest known model, the steepest rise in satisfaction per cost, step by step, as in
  // BuildFrontier. Only its vertices can ever win the argmin, at some ratio v / q. A model
  // strictly between two vertices in cost but below their chord never wins at any ratio:
  // where the queue would need its satisfaction, a mix of the cheaper and the dearer vertex
  // is served instead, so it gets no labels that could show its estimate to be low (a trap
  // that feeds itself). Such a model is judged at its upper confidence bound, so it is
  // served and measured, and a model that is truly worse falls back below the chord as its
  // standard error shrinks with the labels. Only models dearer than the rule's choice are
  // lifted: one that displaces a cheaper choice is (by its estimate) at least as
  // satisfying, so its labels are bought with money; one that displaced a dearer choice
  // would be bought with satisfaction, the SLA's (with 20 % feedback that missed alpha on
  // the pooled stream in 18 of 320 runs, against 6 without hull optimism).
  known_.clear();
  for (size_t m = 0; m < num_models_; ++m) {
    if (state_.costs.Known(m)) known_.push_back(m);
  }
  if (known_.empty()) return;
  on_hull_.assign(num_models_, 0);
  size_t at = CheapestModel(tilde_, known_);
  on_hull_[at] = 1;
  const double first_cost = out->cost_estimate[at];
  double last_cost = first_cost, slope = 0.0;
  while (true) {
    const size_t next = NextVertex(at, tilde_, known_, &slope);
    if (next == num_models_) break;
    on_hull_[next] = 1;
    last_cost = out->cost_estimate[next];
    at = next;
  }
  for (size_t m : known_) {
    if (on_hull_[m]) continue;
    const double c = out->cost_estimate[m];
    if (c <= first_cost || c >= last_cost || c <= chosen_cost) continue;
    tilde_[m] = std::min(1.0, tilde_[m] + tuning_.hull_z * sd_[m]);
    out->score[m] = v * c + q * (target - tilde_[m]);
  }
}

void AdaptivePolicy::OnCosts(const Decision& decision, std::span<const ModelCost> costs) {
  ++state_.outcomes;
  for (const ModelCost& c : costs) {
    (void)state_.costs.Observe(c.model, c.cost);
    // The rule's choice would have been paid for anyway; anything else is exploration.
    if (c.model == decision.chosen) {
      serve_spend_ += c.cost;
    } else {
      explore_spend_ += c.cost;
      explore_inflight_ = std::max(0.0, explore_inflight_ - decision.cost_estimate[c.model]);
    }
  }
  TaskFor(decision.task_key).requests += 1.0;
  if (tuning_.count_pending) {
    TenantState& tenant = tenants_[decision.tenant];
    const double p = decision.p[decision.served];
    tenant.pending += decision.alpha - p;
    tenant.pending_var += p * (1.0 - p);
    tenant.pending_n += 1.0;
  }
}

void AdaptivePolicy::OnFeedback(const Decision& decision, const SparseFeatures& features,
                                std::span<const ModelLabel> labels) {
  TaskStats& task = TaskFor(decision.task_key);
  logits_.resize(num_models_);
  state_.predictor.PredictLogits(features, logits_);
  TaskEstimates(&task, &base_, &sd_);  // before this feedback's labels
  double shared_raw = 0.0;
  shared_.PredictLogits(features, std::span<double>(&shared_raw, 1));
  if (tuning_.center_difficulty) {
    // The difficulty a request is credited with is the shared model's logit minus its
    // running mean over requests (over the last kDifficultyWindow once that many have been
    // seen), so the labels alone set the level of the models' estimates (the satisfaction at
    // the mean difficulty, in logit terms). Left uncentred, the level is shared between the
    // estimates and the shared model's intercept and drifts: a model served on most requests and
    // estimated too high teaches the shared model that requests are hard, the adjustment below then
    // credits its labels for that, and the estimate stays high (the 8B model at 0.77 against a true
    // 0.72 on the pooled stream without the task, while the LP priced the allocation from it).
    difficulty_n_ = std::min(difficulty_n_ + 1.0, kDifficultyWindow);
    difficulty_mean_ += (shared_raw - difficulty_mean_) / difficulty_n_;
  }
  shared_raw = Centred(shared_raw);
  const double difficulty = shared_gate_.open ? shared_raw : 0.0;
  for (const ModelLabel& l : labels) {
    const size_t m = l.model;
    const double s = l.satisfaction;
    const double base = base_[m];

    // Gates: score each text model on a label it has not seen yet. The shared difficulty
    // model against the estimates; the model's own residual against estimates + difficulty.
    const double offset = Logit(base) + difficulty;
    ScoreGate(&shared_gate_, base, Sigmoid(Logit(base) + shared_raw), s);
    Gate& gate = gates_[m];
    ScoreGate(&gate, Sigmoid(offset), Sigmoid(offset + logits_[m]), s);
    (void)shared_.Update(features, 0, s, 1.0, Logit(base));
    (void)state_.predictor.Update(features, m, s, 1.0, offset);

    // With the difficulty model on, the label a request earns is adjusted by how hard the
    // model expected the request to be before counting toward the model's means: a model
    // that is served mostly on hard requests (because another model's text estimate is low
    // there) is otherwise measured on those alone and written off (selection bias). The
    // difficulty is centred (see center_difficulty), so the adjustment corrects which
    // requests a model saw, never its level.
    const double adjusted =
        difficulty != 0.0 ? std::clamp(s - (Sigmoid(offset) - base), -0.5, 1.5) : s;
    task.offset_sum += adjusted - ModelMean(m);
    task.offset_n += 1.0;
    task.n[m] += 1.0;
    task.sum[m] += adjusted;
    model_n_[m] += 1.0;
    model_sum_[m] += adjusted;
    all_n_ += 1.0;
    all_sum_ += s;
    labels_ += 1.0;

    if (m == decision.served && gate.open) {
      // Stochastic approximation of the text-steered estimates' bias on served answers: the
      // residual of the corrected prediction moves the correction, with a step that shrinks
      // as labels accrue (the first kTextBiasPrior labels count as zero residual).
      text_bias_n_[m] += 1.0;
      text_bias_[m] = std::clamp(
          text_bias_[m] + (s - decision.p[m]) / (text_bias_n_[m] + kTextBiasPrior), -0.5, 0.5);
    }
    if (m == decision.served) {
      TenantState& tenant = tenants_[decision.tenant];
      // The safety buffer (start_backlog units of surplus) is built over the first
      // buffer_labels labels of the tenant, while estimates firm up, rather than at once.
      double buffer = 0.0;
      if (tenant.labels < tuning_.buffer_labels) {
        buffer = tuning_.start_backlog / tuning_.buffer_labels;
      }
      tenant.labels += 1.0;
      tenant.backlog = std::max(-kFloorScales * BacklogScale(tenant),
                                tenant.backlog + decision.alpha - s + buffer);
      // Integral action: a backlog that persists means the estimated price is off; correct
      // it, so the queue settles at q_reference whatever the estimates' bias. It starts once
      // the starting backlog has been worked off (that surplus is wanted, not an error).
      if (tenant.backlog <= 0.0 || labels_ >= kIntegrateAfterLabels) tenant.integrating = true;
      if (tenant.integrating && !Saturated(decision, tenant.backlog)) {
        const double cap = tuning_.max_price_correction;
        tenant.correction = std::clamp(
            tenant.correction + tuning_.price_integral * tenant.backlog / tuning_.q_reference, -cap,
            cap);
      }
      if (tuning_.count_pending) {
        const double p = decision.p[decision.served];
        tenant.pending -= decision.alpha - p;
        tenant.pending_var = std::max(0.0, tenant.pending_var - p * (1.0 - p));
        tenant.pending_n = std::max(0.0, tenant.pending_n - 1.0);
        // Calibration of the predictions the pending requests are counted at: the served
        // model is chosen where its prediction looks good, so predictions of served answers
        // run high (the optimiser's curse); labeled requests measure by how much.
        tenant.calibration_sum += s - p;
        tenant.calibration_n += 1.0;
      }
      (void)state_.queues[decision.tenant].UpdateTracked(s);
    }
  }
  if (++labels_since_refresh_ >= tuning_.price_refresh_labels) {
    labels_since_refresh_ = 0;
    RefreshPrices();
  }
}

void AdaptivePolicy::OnInFlight(const Decision& decision, double sign) {
  TenantState& tenant = tenants_[decision.tenant];
  const double p = decision.p[decision.served];
  tenant.inflight += sign * (decision.alpha - p);
  tenant.inflight_var = std::max(0.0, tenant.inflight_var + sign * p * (1.0 - p));
  tenant.inflight_n = std::max(0.0, tenant.inflight_n + sign);
  if (tenant.inflight_n == 0.0) {
    // None in flight: exactly nothing, not what rounding left of the sums.
    tenant.inflight = 0.0;
    tenant.inflight_var = 0.0;
  }
}

bool AdaptivePolicy::Saturated(const Decision& decision, double backlog) const {
  if (!tuning_.integral_anti_windup) return false;
  // Behind the target (backlog > 0), a higher price can only move the choice toward more
  // satisfying models; if the served one was already the most satisfying (by the estimates the
  // decision used), the price had no room to act. Ahead of it, likewise for the cheapest.
  const uint32_t served = decision.served;
  for (size_t m = 0; m < num_models_; ++m) {
    if (m == served || !state_.costs.Known(m)) continue;
    if (backlog > 0.0 ? decision.p[m] > decision.p[served]
                      : decision.cost_estimate[m] < decision.cost_estimate[served]) {
      return false;
    }
  }
  return true;
}

void AdaptivePolicy::OnGroundTruth(const Decision& decision, double satisfaction) {
  (void)state_.queues[decision.tenant].UpdateAll(satisfaction);
}

void AdaptivePolicy::BuildFrontier(Rng* noise, const std::vector<size_t>& known,
                                   Frontier* out) const {
  // Every task's efficient frontier: its cheapest model, then the steps of steepest
  // satisfaction per cost, weighted by the task's share of the traffic. With `noise`, each
  // estimate is replaced by a draw from its (normal) posterior.
  out->steps.clear();
  out->base = 0.0;
  out->top = 0.0;
  double total_requests = 0.0;
  for (const auto& [key, task] : tasks_) total_requests += task.requests;
  if (total_requests <= 0.0) return;
  std::vector<double> p(num_models_), base, sd;
  for (const auto& [key, task] : tasks_) {
    if (task.requests <= 0.0) continue;
    const double f = task.requests / total_requests;
    TaskEstimates(&task, &base, &sd);
    for (size_t m : known) {
      p[m] = noise == nullptr ? base[m] : std::clamp(base[m] + sd[m] * noise->Normal(), 0.0, 1.0);
    }
    size_t at = CheapestModel(p, known);
    out->base += f * p[at];
    double top = p[at];
    while (true) {
      double slope = 0.0;
      const size_t next = NextVertex(at, p, known, &slope);
      if (next == num_models_) break;
      out->steps.push_back({1.0 / slope, f * (p[next] - p[at])});
      at = next;
      top = p[at];
    }
    out->top += f * top;
  }
  std::sort(out->steps.begin(), out->steps.end(),
            [](const FrontierStep& a, const FrontierStep& b) { return a.price < b.price; });
}

double AdaptivePolicy::PriceFor(const Frontier& frontier, double target, double dearest,
                                bool* reached) {
  // The price of the cheapest allocation meeting the target: buy the frontier steps in
  // order of price until the weighted satisfaction reaches it.
  double smallest_positive = 0.0, largest = 0.0;
  for (const FrontierStep& s : frontier.steps) {
    if (s.price > 0.0 && smallest_positive == 0.0) smallest_positive = s.price;
    largest = std::max(largest, s.price);
  }
  *reached = frontier.base >= target;
  if (*reached) {
    // The cheapest models meet the target on these estimates: price the first step, so
    // that a backlog above zero buys it if they do not in fact.
    return smallest_positive;
  }
  double s = frontier.base;
  for (const FrontierStep& step : frontier.steps) {
    s += step.gain;
    if (s >= target) {
      *reached = true;
      return step.price;
    }
  }
  // Out of reach: satisfaction is worth any cost (a hundredth of it pays for the dearest
  // model), so the most satisfying model is chosen.
  return std::max(2.0 * largest, 100.0 * dearest);
}

void AdaptivePolicy::RefreshPrices() {
  UpdateLean();
  std::vector<size_t> known;
  double dearest = 0.0;
  for (size_t m = 0; m < num_models_; ++m) {
    if (state_.costs.Known(m)) {
      known.push_back(m);
      dearest = std::max(dearest, state_.costs.Estimate(m));
    }
  }
  if (known.size() < 2) return;
  // The price is the median, over posterior draws of the estimates, of the price of the
  // cheapest allocation meeting the target. Where a dearer segment is needed only if a
  // cheaper model falls short by a margin the evidence does not establish, the median keeps
  // the cheaper segment's price (the queue escalates if reality disagrees), instead of
  // jumping to the dearer one each time a point estimate dips below the target.
  const int draws = std::max(1, tuning_.price_draws);
  Rng noise(Rng::Mix(0x7072696365ull /* "price" */, static_cast<uint64_t>(labels_)));
  prices_.assign(tenants_.size() * static_cast<size_t>(draws), 0.0);
  std::vector<int> reached(tenants_.size(), 0);
  std::vector<double> headroom(tenants_.size(), 0.0);
  for (int k = 0; k < draws; ++k) {
    BuildFrontier(draws == 1 ? nullptr : &noise, known, &frontier_);
    for (uint32_t j = 0; j < tenants_.size(); ++j) {
      const double target = Target(j);
      bool ok = false;
      prices_[j * static_cast<size_t>(draws) + static_cast<size_t>(k)] =
          PriceFor(frontier_, target, dearest, &ok);
      reached[j] += ok ? 1 : 0;
      headroom[j] += (frontier_.top - target) / draws;
    }
  }
  for (uint32_t j = 0; j < tenants_.size(); ++j) {
    TenantState& tenant = tenants_[j];
    auto first = prices_.begin() + static_cast<std::ptrdiff_t>(j) * draws;
    const auto k = static_cast<std::ptrdiff_t>(
        std::min<double>(draws - 1, std::floor(tuning_.price_quantile * draws)));
    std::nth_element(first, first + k, first + draws);
    const double price = first[k];
    tenant.unreachable = 2 * reached[j] < draws && all_n_ >= 100.0;
    tenant.headroom = headroom[j];
    if (price > 0.0 && std::isfinite(price)) tenant.price = price;
  }
}

void AdaptivePolicy::SaveLearningState(Packer* pk) const {
  pk->pack_map(13);
  pk->pack("shared");
  const std::string shared = shared_.Serialize();
  pk->pack_bin(static_cast<uint32_t>(shared.size()));
  pk->pack_bin_body(shared.data(), static_cast<uint32_t>(shared.size()));
  pk->pack("shared_gate");
  pk->pack_array(4);
  pk->pack(shared_gate_.n);
  pk->pack(shared_gate_.sum);
  pk->pack(shared_gate_.sum_sq);
  pk->pack(shared_gate_.open);
  pk->pack("common");
  state_.Save(pk);
  pk->pack("model_n");
  pk->pack(model_n_);
  pk->pack("model_sum");
  pk->pack(model_sum_);
  pk->pack("all");
  pk->pack(std::vector<double>{all_n_, all_sum_, labels_, difficulty_mean_, difficulty_n_});
  pk->pack("spend");
  pk->pack(std::vector<double>{serve_spend_, explore_spend_});
  pk->pack("refresh");
  pk->pack(labels_since_refresh_);
  pk->pack("tasks");
  pk->pack_array(static_cast<uint32_t>(tasks_.size()));
  for (const auto& [key, task] : tasks_) {
    pk->pack_array(6);
    pk->pack(key);
    pk->pack(task.n);
    pk->pack(task.sum);
    pk->pack(task.offset_sum);
    pk->pack(task.offset_n);
    pk->pack(task.requests);
  }
  pk->pack("tenants");
  pk->pack_array(static_cast<uint32_t>(tenants_.size()));
  for (const TenantState& t : tenants_) {
    pk->pack_array(11);
    pk->pack(t.labels);
    pk->pack(t.backlog);
    pk->pack(t.pending);
    pk->pack(t.pending_var);
    pk->pack(t.pending_n);
    pk->pack(t.calibration_sum);
    pk->pack(t.calibration_n);
    pk->pack(t.price);
    pk->pack(t.unreachable);
    pk->pack(t.correction);
    pk->pack(t.integrating);
  }
  pk->pack("headroom");
  pk->pack_array(static_cast<uint32_t>(tenants_.size()));
  for (const TenantState& t : tenants_) pk->pack(t.headroom);
  pk->pack("gates");
  pk->pack_array(static_cast<uint32_t>(gates_.size()));
  for (size_t m = 0; m < gates_.size(); ++m) {
    const Gate& g = gates_[m];
    pk->pack_array(6);
    pk->pack(g.n);
    pk->pack(g.sum);
    pk->pack(g.sum_sq);
    pk->pack(g.open);
    pk->pack(text_bias_[m]);
    pk->pack(text_bias_n_[m]);
  }
  pk->pack("version");
  pk->pack(1);
}

Status AdaptivePolicy::LoadLearningState(const msgpack::object& object) {
  Result<StateMap> map = StateMap::Of(object, "adaptive policy state");
  if (!map.ok()) return map.status();
  const msgpack::object* common = map->Find("common");
  if (common == nullptr) return Status::DataLoss("adaptive policy state: common state missing");

  std::vector<double> model_n, model_sum, all, spend;
  int refresh = 0;
  using TaskRow =
      std::tuple<uint64_t, std::vector<double>, std::vector<double>, double, double, double>;
  std::vector<TaskRow> tasks;
  std::vector<std::tuple<double, double, double, double, double, double, double, double, bool,
                         double, bool>>
      tenants;
  std::vector<std::tuple<double, double, double, bool, double, double>> gates;
  MESSPLUS_RETURN_IF_ERROR(map->Get("model_n", &model_n));
  MESSPLUS_RETURN_IF_ERROR(map->Get("model_sum", &model_sum));
  MESSPLUS_RETURN_IF_ERROR(map->Get("all", &all));
  MESSPLUS_RETURN_IF_ERROR(map->Get("spend", &spend));
  MESSPLUS_RETURN_IF_ERROR(map->Get("refresh", &refresh));
  MESSPLUS_RETURN_IF_ERROR(map->Get("tasks", &tasks));
  MESSPLUS_RETURN_IF_ERROR(map->Get("tenants", &tenants));
  MESSPLUS_RETURN_IF_ERROR(map->Get("gates", &gates));
  // The headroom per tenant (absent from states saved before it was kept: then 0, the fixed
  // backlog scale, until the next price refresh).
  std::vector<double> headroom(tenants_.size(), 0.0);
  if (map->Find("headroom") != nullptr) {
    MESSPLUS_RETURN_IF_ERROR(map->Get("headroom", &headroom));
  }
  auto finite = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
  };
  if (model_n.size() != num_models_ || model_sum.size() != num_models_ ||
      (all.size() != 3 && all.size() != 5) || spend.size() != 2 ||
      tenants.size() != tenants_.size() || gates.size() != gates_.size() ||
      headroom.size() != tenants_.size() || !finite(headroom) || !finite(model_n) ||
      !finite(model_sum) || !finite(all) || !finite(spend)) {
    return Status::DataLoss("adaptive policy state does not match the configuration");
  }
  std::map<uint64_t, TaskStats> restored_tasks;
  for (auto& [key, n, sum, off_sum, off_n, requests] : tasks) {
    if (n.size() != num_models_ || sum.size() != num_models_ || !finite(n) || !finite(sum) ||
        !std::isfinite(off_sum) || !(off_n >= 0.0) || !std::isfinite(off_n) || !(requests >= 0.0) ||
        !std::isfinite(requests)) {
      return Status::DataLoss("adaptive policy state: bad task entry");
    }
    restored_tasks[key] = TaskStats{n, sum, off_sum, off_n, requests};
  }
  // Every tenant and gate entry is checked before anything is installed: a rejected state
  // leaves the policy exactly as it was.
  for (const auto& [labels, backlog, pending, pending_var, pending_n, calibration_sum,
                    calibration_n, price, unreachable, correction, integrating] : tenants) {
    (void)unreachable;
    (void)integrating;
    if (!std::isfinite(labels) || !std::isfinite(backlog) || !(pending_var >= 0.0) ||
        !std::isfinite(pending_var) || !(pending_n >= 0.0) || !std::isfinite(pending_n) ||
        !std::isfinite(calibration_sum) || !(calibration_n >= 0.0) ||
        !std::isfinite(calibration_n) || !std::isfinite(pending) || !std::isfinite(price) ||
        !std::isfinite(correction)) {
      return Status::DataLoss("adaptive policy state: non-finite tenant state");
    }
  }
  auto finite_gate = [](double n, double sum, double sum_sq) {
    return std::isfinite(n) && n >= 0.0 && std::isfinite(sum) && std::isfinite(sum_sq) &&
           sum_sq >= 0.0;
  };
  for (const auto& [n, sum, sum_sq, open, bias, bias_n] : gates) {
    (void)open;
    if (!finite_gate(n, sum, sum_sq) || !std::isfinite(bias) || !std::isfinite(bias_n) ||
        bias_n < 0.0) {
      return Status::DataLoss("adaptive policy state: non-finite gate state");
    }
  }
  CommonState restored_common = state_;
  MESSPLUS_RETURN_IF_ERROR(restored_common.Load(*common));
  const msgpack::object* shared_bytes = map->Find("shared");
  if (shared_bytes == nullptr || shared_bytes->type != msgpack::type::BIN) {
    return Status::DataLoss("adaptive policy state: shared difficulty model missing");
  }
  Result<SatisfactionPredictor> shared = SatisfactionPredictor::Deserialize(
      std::string_view(shared_bytes->via.bin.ptr, shared_bytes->via.bin.size), shared_.dim(), 1);
  if (!shared.ok()) return shared.status();
  std::tuple<double, double, double, bool> shared_gate;
  MESSPLUS_RETURN_IF_ERROR(map->Get("shared_gate", &shared_gate));
  if (!finite_gate(std::get<0>(shared_gate), std::get<1>(shared_gate), std::get<2>(shared_gate))) {
    return Status::DataLoss("adaptive policy state: non-finite gate state");
  }

  // Everything parsed and checked: install.
  state_ = std::move(restored_common);
  shared_ = std::move(*shared);
  {
    auto [n, sum, sum_sq, open] = shared_gate;
    shared_gate_ = Gate{n, sum, sum_sq, open};
  }
  model_n_ = model_n;
  model_sum_ = model_sum;
  all_n_ = all[0];
  all_sum_ = all[1];
  labels_ = all[2];
  // States saved before the difficulty model's mean was kept start it afresh.
  difficulty_mean_ = all.size() == 5 ? all[3] : 0.0;
  difficulty_n_ = all.size() == 5 ? all[4] : 0.0;
  serve_spend_ = spend[0];
  explore_spend_ = spend[1];
  labels_since_refresh_ = refresh;
  tasks_ = std::move(restored_tasks);
  for (size_t j = 0; j < tenants_.size(); ++j) {
    auto [labels, backlog, pending, pending_var, pending_n, calibration_sum, calibration_n, price,
          unreachable, correction, integrating] = tenants[j];
    TenantState& t = tenants_[j];  // `inflight` is this router's own, not learning state
    t.labels = labels;
    t.backlog = backlog;
    t.pending = pending;
    t.pending_var = pending_var;
    t.pending_n = pending_n;
    t.calibration_sum = calibration_sum;
    t.calibration_n = calibration_n;
    t.price = price > 0.0 ? price : 1.0;
    t.unreachable = unreachable;
    t.correction =
        std::clamp(correction, -tuning_.max_price_correction, tuning_.max_price_correction);
    t.integrating = integrating;
    t.headroom = headroom[j];
  }
  for (size_t m = 0; m < gates_.size(); ++m) {
    auto [n, sum, sum_sq, open, bias, bias_n] = gates[m];
    gates_[m] = Gate{n, sum, sum_sq, open};
    text_bias_[m] = std::clamp(bias, -0.5, 0.5);
    text_bias_n_[m] = bias_n;
  }
  UpdateLean();  // the cost order follows the loaded cost estimates
  return Status::Ok();
}

}  // namespace messplus::router
