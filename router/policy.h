// Policy: a routing algorithm with its learning state, selectable by name.
//
// The Router validates every input and then calls, for each request:
//   1. Decide()        when the request arrives;
//   2. OnCosts()       when the models it ran have answered (their costs are known);
//   3. OnFeedback()    when (if ever) satisfaction labels arrive, possibly much later and for
//                      some of the models run;
//   (1b. NoteInFlight / ClearInFlight, in a live router, between 1 and 2: see Router.)
//   4. OnGroundTruth() only in offline replay, with the served answer's true satisfaction
//                      (moves the paper's all-requests queue, which no live router can know).
// Learning state (queues, cost and satisfaction estimates, predictor) is everything a policy
// learned from 2-4; it can be saved and loaded so a restarted collector, or a route replica,
// continues from it. Per-replica state (the random generator) is saved separately.
//
// Thread safety: none; the Router serialises calls.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "router/cost_model.h"
#include "router/decision.h"
#include "router/predictor.h"
#include "router/status.h"
#include "router/virtual_queue.h"
#include "router/zoo.h"

namespace messplus::router {

using Packer = msgpack::packer<msgpack::sbuffer>;

class Policy {
 public:
  virtual ~Policy() = default;

  virtual std::string_view name() const = 0;

  // Fills *out (reusing its vectors). REQUIRES: the request and tenant are valid.
  virtual void Decide(const RouteRequest& request, uint64_t task_key, Decision* out) = 0;
  // REQUIRES: costs validated (known models, finite, >= 0).
  virtual void OnCosts(const Decision& decision, std::span<const ModelCost> costs) = 0;
  // REQUIRES: labels validated (known models, satisfaction in [0, 1]).
  virtual void OnFeedback(const Decision& decision, const SparseFeatures& features,
                          std::span<const ModelLabel> labels) = 0;
  virtual void OnGroundTruth(const Decision& decision, double satisfaction) = 0;
  // A decision of this router whose outcome has not been recorded yet (sign +1), or whose
  // outcome has now arrived or been given up on (sign -1). Policies that count unanswered
  // requests in their queue use it; the default ignores it. Local to this router: not part
  // of the learning state.
  virtual void OnInFlight(const Decision& /*decision*/, double /*sign*/) {}

  virtual const VirtualQueue& queue(uint32_t tenant) const = 0;
  virtual const CostModel& costs() const = 0;
  virtual const SatisfactionPredictor& predictor() const = 0;

  // Learning state as one msgpack value (a map); LoadLearningState() accepts exactly what
  // SaveLearningState() wrote for the same configuration, and DataLoss otherwise.
  virtual void SaveLearningState(Packer* packer) const = 0;
  virtual Status LoadLearningState(const msgpack::object& state) = 0;
};

// The policy names MakePolicy accepts, the default first.
const std::vector<std::string>& PolicyNames();

// REQUIRES: config.Validate().ok(). NotFound for an unknown policy name.
Result<std::unique_ptr<Policy>> MakePolicy(const RouterConfig& config);

}  // namespace messplus::router
