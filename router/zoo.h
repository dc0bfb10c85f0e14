// RouterConfig: the zoo of models, the SLA classes, and the policy's settings.
//
// Validated once (Validate) and then read-only for the router's lifetime.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/feature_hasher.h"
#include "router/predictor.h"
#include "router/status.h"

namespace messplus::router {

struct ModelSpec {
  std::string name;
  // Optional prior for the cost per call (any unit, the same for every model); -1: none.
  double cost_prior = -1.0;
  // How many observations the prior is worth.
  double cost_prior_weight = 1.0;
};

struct TenantSpec {
  std::string name;
  double alpha = 0.5;  // required long-run share of satisfied requests, in [0, 1]
};

// Settings of the `adaptive` policy (see router/adaptive_policy.h and docs/policies.md);
// ignored by `paper`. The defaults were chosen on ../shared/data and checked for stability
// one setting at a time (docs/policies.md, "Sensitivity").
struct AdaptiveTuning {
  // Shrinkage, in pseudo-observations: each model's mean satisfaction toward the mean over
  // all models; a task's difficulty offset toward 0; a model's estimate within a task toward
  // its overall mean plus the task's offset.
  double model_prior_strength = 10.0;
  double task_offset_strength = 5.0;
  double task_prior_strength = 20.0;
  // A dearer model's estimate below a cheaper one's is pooled with it unless the gap is
  // significant at monotone_z standard errors (0 disables).
  double monotone_z = 0.0;
  // The queue's reference level: V is set each time the price is re-estimated so that the
  // cheapest allocation meeting alpha is the one chosen when the queue stands at q_reference.
  double q_reference = 10.0;
  // The price is the median over price_draws posterior draws of the estimates (see
  // RefreshPrices); 1 uses the point estimates.
  int price_draws = 15;
  // ... the price_quantile quantile of them (0.5: the median; lower: a cheaper segment keeps
  // its price until the evidence against it is stronger).
  double price_quantile = 0.1;
  // The queue is q_reference + backlog (as in MESS+), or, with exponential_queue,
  // q_reference * exp(backlog / backlog_scale): the price then doubles every
  // 0.69 * backlog_scale units of satisfaction behind the target. backlog_scale is also the
  // unit in which the optimism below grows.
  bool exponential_queue = true;
  // The exponential queue never exceeds max_queue_factor * q_reference.
  double max_queue_factor = 1e9;
  double backlog_scale = 6.0;
  // The scale grows with the evidence: beyond margin_scale labels it is
  // backlog_scale * sqrt(labels / margin_scale) (the rate at which the margin's accumulated
  // surplus grows, so the two keep their ratio), but never beyond headroom * clear_requests,
  // headroom being how far the most satisfying allocation is estimated above the target: a
  // backlog of one scale can then always be cleared at full effort within clear_requests
  // requests. On a long stream a fixed scale answers the outcomes' own random walk by buying
  // the dearest models; where the zoo cannot catch up quickly the scale stays at
  // backlog_scale. 0 keeps the scale fixed.
  double clear_requests = 150.0;
  // Backlog within +-backlog_deadzone units leaves the price where the LP put it.
  double backlog_deadzone = 0.0;
  // Half-width of the uniform jitter added to the backlog a decision sees (see Decide).
  double queue_dither = 2.0;
  // Starting backlog of the queue above q_reference, in units of satisfaction: the surplus
  // the policy builds up front so that end-of-horizon swings of the queue do not leave the
  // average below alpha.
  double start_backlog = 4.0;
  // ... built up over the tenant's first buffer_labels labels (a target raised by
  // start_backlog / buffer_labels meanwhile), once estimates are firmer than at the start.
  double buffer_labels = 300.0;
  // Constraint tightening: the queue targets alpha + margin / sqrt(1 + n / margin_scale),
  // n being the labels received so far.
  double margin = 0.003;
  double margin_scale = 5000.0;
  // Integral gain: per label, the log of the price moves by price_integral * backlog /
  // q_reference, so a persistent backlog (biased estimates) corrects the price.
  double price_integral = 0.005;
  // ... bounded: the integral scales the price by e^+-max_price_correction at most ...
  double max_price_correction = 1.0;
  // ... and it only integrates while the decision had room to act (anti-windup): behind the
  // target with the most satisfying model already served, or ahead of it with the cheapest,
  // a higher (lower) price could not have changed the choice, so the backlog says nothing
  // about the price. Without it the correction winds up over long stretches where no model
  // can catch up faster (SciQ: the 8B and 70B models are equally good), and then buys the
  // dearest model on the smallest backlog.
  bool integral_anti_windup = true;
  // Optimism: each estimate used to serve is raised by optimism standard errors, so a
  // model nobody has tried yet gets tried when the queue calls for better answers.
  double optimism = 1.0;
  // ... fading linearly to nothing once the model has optimism_labels labels on the task.
  double optimism_labels = 100.0;
  // ... except that, however well measured, a model keeps up to optimism_floor standard
  // errors of it while behind (a UCB): an estimate stuck low by an unlucky or biased start
  // is retried as long as the backlog says the SLA is at stake, and standard errors shrink
  // with labels, so a model that is truly worse is still written off.
  double optimism_floor = 1.0;
  // ... starting once the backlog exceeds optimism_start units and growing without bound
  // (in backlog scales) beyond, so that far behind the target every model not ruled out
  // by the evidence is tried.
  double optimism_start = 3.0;
  // Hull optimism: a model whose estimate puts it off the efficient frontier of its task,
  // between a cheaper and a dearer model that are on it (so that a mix of those two is
  // served instead, and it gets no labels that could show its estimate to be low), is
  // judged at hull_z standard errors above its estimate, where it is dearer than the
  // rule's choice (so its labels are bought with money, never with satisfaction). 0
  // disables.
  double hull_z = 4.0;
  // Thompson sampling: decisions use estimates drawn from their posteriors, with standard
  // errors scaled by `thompson` (0: point estimates).
  double thompson = 0.0;
  // Novelty: a model with fewer than novelty_labels labels on a task has novelty_z standard
  // errors (fading linearly with its labels) added to its estimate in decisions.
  double novelty_z = 0.0;
  double novelty_labels = 30.0;
  // The bonus's sign and weight run from lean_low for the cheapest model to lean_high for
  // the dearest: the cheaper of two models must prove itself, the dearer gets the benefit of
  // the doubt, so errors of the estimates cost money rather than the SLA.
  double lean_low = 0.0;
  double lean_high = 0.0;
  // Exploration: with probability explore_rate, and only while the spend on extra calls
  // stays within explore_budget of the spend on served answers, one extra model runs beside
  // the served one, chosen among those that could change decisions; the better of the two
  // answers (by estimate) is served.
  double explore_budget = 0.05;
  // A model whose cost is unknown (never observed, no configured prior) runs beside the
  // choice once (again every 100 decisions while it stays unknown), outside the budget.
  bool cost_discovery = true;
  // Warm-up calls of each model run beside the choice before the budget applies.
  double warmup_labels = 0.0;
  double explore_rate = 0.25;
  // The text model steers decisions for a model only once, on labels it had not yet seen,
  // it has beaten the per-task estimates in log loss by text_gate_margin per label with
  // text_gate_z standard errors to spare, over at least text_gate_min_labels labels.
  double text_gate_margin = 0.002;
  double text_gate_z = 2.0;
  double text_gate_min_labels = 200;
  // The shared difficulty model's output is taken relative to its running mean over recent
  // requests, in decisions and in the adjustment of labels (0: as learned, intercept
  // included, which trades level with the models' estimates; see AdaptivePolicy::OnFeedback).
  bool center_difficulty = true;
  // Until its label arrives (or forever, if none does), a request counts in the queue at the
  // satisfaction predicted for its served answer.
  bool count_pending = true;
  // ... plus pending_z standard deviations of the sum of their unknown outcomes ...
  double pending_z = 2.0;
  // ... where that sum's variance also counts the uncertainty of the calibration the
  // predictions are corrected by: with sparse feedback most outcomes are never seen, and the
  // mean error of the predictions, measured on the few that are, is known only to within
  // sd / sqrt(labels); on thousands of unlabeled requests that error dominates.
  bool calibration_uncertainty = true;
  // Labels between two re-estimations of the price.
  int price_refresh_labels = 16;
};

// Sets one AdaptiveTuning field by name (the field names above, e.g. "start_backlog");
// booleans take 0 or 1. NotFound for an unknown name. Used by configuration files and the
// --tune flag of the evaluation commands.
Status SetTuning(AdaptiveTuning* tuning, std::string_view name, double value);
// The names SetTuning accepts, with their current values.
std::vector<std::pair<std::string, double>> TuningValues(const AdaptiveTuning& tuning);

struct RouterConfig {
  // The zoo, cheapest model first. The last model's answer is served when exploring with the
  // paper's policy.
  std::vector<ModelSpec> models;
  std::vector<TenantSpec> tenants;
  // A name from PolicyNames(): "adaptive" (the default) or "paper" (MESS+ as published).
  std::string policy = "adaptive";
  double v = 1e-4;  // the paper's V: weight of cost against the queue
  double c = 0.1;   // exploration constant: p_t = min(1, c / t^(1/4))
  uint64_t seed = 42;
  // Identifies this router among the replicas that share one learning state; it is stamped
  // on each decision (Decision::origin) so a replica recognises its own requests in flight.
  uint64_t instance = 0;
  HashingOptions hashing;
  PredictorOptions predictor;
  AdaptiveTuning adaptive;

  // Every problem in one message, one per line; OK when the config is usable.
  Status Validate() const;
};

}  // namespace messplus::router
