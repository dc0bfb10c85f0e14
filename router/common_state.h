// CommonState: the learning state every policy keeps (queues per tenant, cost estimates, the
// satisfaction predictor, the count of requests decided), with its msgpack form.
#pragma once

#include <cstdint>
#include <vector>

#include "router/cost_model.h"
#include "router/decision.h"
#include "router/policy.h"
#include "router/predictor.h"
#include "router/virtual_queue.h"
#include "router/zoo.h"

namespace messplus::router {

struct CommonState {
  // Queues start at `initial_queue`. REQUIRES: config validated.
  CommonState(const RouterConfig& config, double initial_queue);

  std::vector<VirtualQueue> queues;  // per tenant
  CostModel costs;
  SatisfactionPredictor predictor;
  uint64_t decisions = 0;  // requests decided so far here (t of the last decision)
  uint64_t outcomes = 0;   // outcomes recorded (requests answered), at whichever router

  // Starts a decision record: numbers it (t = ++decisions), stamps tenant and task, and
  // sizes the per-model vectors (reusing their storage).
  uint64_t BeginDecision(const RouteRequest& request, uint64_t task_key, Decision* out);

  // Exploit choice: argmin of score, ties to the lower cost estimate, then the lower index.
  static uint32_t ArgminScore(const std::vector<double>& score, const std::vector<double>& cost);

  void Save(Packer* packer) const;
  Status Load(const msgpack::object& state);
};

}  // namespace messplus::router
