// The records that flow through the router core: a request to route, the decision made for
// it, and the costs and satisfaction labels observed later.
//
// A Decision carries everything the learning side needs to learn from the request's outcome
// without the router having to remember the request: the tenant, the task, which models ran
// and with what probability, and what the router predicted. The pipeline ships it alongside
// the request; the simulator keeps it until the (possibly delayed) feedback arrives.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "router/sparse_features.h"

namespace messplus::router {

struct RouteRequest {
  // Hashed features of the request (text plus tags). REQUIRES: not null.
  const SparseFeatures* features = nullptr;
  // Index of the SLA class in the router's configuration.
  uint32_t tenant = 0;
  // Optional task tag ("" when the caller gives none). Policies that use the task keep
  // statistics per task; the tag should also be among the hashed features.
  std::string_view task;
};

struct Decision {
  uint64_t t = 0;       // 1-based number of this decision at the router that made it
  uint64_t origin = 0;  // RouterConfig::instance of the router that made it
  uint32_t tenant = 0;
  uint64_t task_key = 0;      // hash of the task tag, 0 when none
  uint32_t served = 0;        // model whose answer goes back to the client
  uint32_t chosen = 0;        // the decision rule's choice; exploration may add (and serve) another
  std::vector<uint32_t> run;  // models to call, `served` first
  bool explore = false;       // true when run holds more than the exploit choice
  double explore_probability = 0.0;     // p_t (or the policy's exploration probability)
  std::vector<double> run_probability;  // per model: probability it was run for this request
  std::vector<double> p;                // per model: predicted satisfaction p_m(x)
  std::vector<double> score;            // per model: the minimised score V*E_m + Q*(alpha-p_m)
  std::vector<double> cost_estimate;    // per model: E_m used
  double q = 0.0;                       // queue length used
  double v = 0.0;                       // V used
  double alpha = 0.0;                   // target used (the tenant's alpha, plus any margin)
  bool alpha_unreachable = false;       // no model is predicted to reach alpha
};

struct ModelCost {
  uint32_t model = 0;
  double cost = 0.0;
};

struct ModelLabel {
  uint32_t model = 0;
  double satisfaction = 0.0;  // in [0, 1]
};

}  // namespace messplus::router
