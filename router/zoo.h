// RouterConfig: the zoo of models, the SLA classes, and the policy's settings.
//
// Validated once (Validate) and then read-only for the router's lifetime.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "router/feature_hasher.h"
#include "router/predictor.h"
#include "router/status.h"

namespace messplus::router {

struct ModelSpec {
  std::string name;
  // Optional prior for the cost per call (any unit, the same for every model); < 0: none.
  double cost_prior = -1.0;
  // How many observations the prior is worth.
  double cost_prior_weight = 1.0;
};

struct TenantSpec {
  std::string name;
  double alpha = 0.5;  // required long-run share of satisfied requests, in [0, 1]
};

// Settings of the `adaptive` policy (see router/adaptive_policy.h); ignored by `paper`.
struct AdaptiveTuning {
  // Pseudo-observations of the prior that shrinks each model's satisfaction estimate toward
  // the pooled mean of all models (and per-task estimates toward the model's mean).
  double model_prior_strength = 2.0;
  double task_prior_strength = 20.0;
  // The queue level at which the policy switches between adjacent models: V is rescaled
  // each request so that V * price == q_reference, where price is the cost of one unit of
  // satisfaction on the cheapest mix that meets alpha. The queue starts at q_start.
  double q_reference = 10.0;
  double q_start = 12.0;
  // Constraint tightening: the queue targets alpha + margin / sqrt(1 + n / margin_scale),
  // n being the feedback received so far.
  double margin = 0.02;
  double margin_scale = 200.0;
  // Optimism: each model's estimate is raised by optimism * standard error.
  double optimism = 0.5;
  // Exploration: at most explore_budget of the spend on served answers goes to extra calls;
  // each exploration runs one extra model, sampled among those whose optimistic estimate
  // could make them part of the cheapest mix.
  double explore_budget = 0.05;
  double explore_rate = 0.1;
  // Text features steer the decision only after the predictor has beaten the per-task means
  // on held-out feedback by at least text_gate_margin in log loss per example, over at least
  // text_gate_min_examples examples.
  double text_gate_margin = 0.002;
  double text_gate_min_examples = 300;
  // Until a label arrives, a request counts in the queue at its predicted satisfaction.
  bool count_pending = true;
};

struct RouterConfig {
  // The zoo, cheapest model first. The last model's answer is served when exploring with the
  // paper's policy.
  std::vector<ModelSpec> models;
  std::vector<TenantSpec> tenants;
  // A name from PolicyNames(): "paper" is MESS+ as published.
  std::string policy = "paper";
  double v = 1e-4;  // the paper's V: weight of cost against the queue
  double c = 0.1;   // exploration constant: p_t = min(1, c / t^(1/4))
  uint64_t seed = 42;
  HashingOptions hashing;
  PredictorOptions predictor;
  AdaptiveTuning adaptive;

  // Every problem in one message, one per line; OK when the config is usable.
  Status Validate() const;
};

}  // namespace messplus::router
