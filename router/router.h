// Router: the MESS+ core's front door. Holds the validated configuration and the selected
// policy, checks every input, and counts what it rejects.
//
// Typical use (the simulator and the route stage do exactly this):
//   auto router = Router::Create(config);            // fails on a bad configuration
//   router->Decide({&features, tenant, task}, &d);   // which model(s) to run
//   ... run d.run, then ...
//   router->RecordCosts(d, costs);                   // the calls' observed costs
//   ... later, maybe never ...
//   router->RecordFeedback(d, features, labels);     // satisfaction labels
//
// Thread safety: none; one thread at a time (each route replica owns its Router).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "router/decision.h"
#include "router/policy.h"
#include "router/status.h"
#include "router/zoo.h"

namespace messplus::router {

class Router {
 public:
  // InvalidArgument with every problem of the configuration, or NotFound for an unknown
  // policy name.
  static Result<std::unique_ptr<Router>> Create(const RouterConfig& config);

  // Construct with Create(); the key keeps the constructor private to it.
  class PassKey {
    friend class Router;
    PassKey() = default;
  };
  Router(PassKey, RouterConfig config, std::unique_ptr<Policy> policy);

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  const RouterConfig& config() const { return config_; }
  const Policy& policy() const { return *policy_; }
  size_t num_models() const { return config_.models.size(); }

  // NotFound when the name is not configured.
  Result<uint32_t> ModelIndex(std::string_view name) const;
  Result<uint32_t> TenantIndex(std::string_view name) const;

  // Stable 64-bit key of a task tag (0 for ""), the same in every process.
  static uint64_t TaskKey(std::string_view task);

  // Decides for one request. InvalidArgument (and *out untouched) when the features are
  // missing or malformed, NotFound for an unknown tenant.
  Status Decide(const RouteRequest& request, Decision* out);

  // The observed cost of each model that ran. NotFound for an unknown model; InvalidArgument
  // for a model the decision did not run, a model given twice, or a negative / NaN /
  // infinite cost; nothing is recorded then.
  Status RecordCosts(const Decision& decision, std::span<const ModelCost> costs);

  // Satisfaction labels for models the decision ran, possibly long after the decision.
  // NotFound for an unknown model; InvalidArgument for a not-run or repeated model, a
  // satisfaction outside [0, 1] or malformed features; nothing is recorded then.
  Status RecordFeedback(const Decision& decision, const SparseFeatures& features,
                        std::span<const ModelLabel> labels);

  // In a live pipeline, decisions leave the router before their outcomes return. A route
  // replica notes each decision it sent (NoteInFlight) and clears it when its outcome comes
  // back (ClearInFlight), so the policy can count the requests in flight at their predicted
  // satisfaction instead of not at all. ClearInFlight ignores decisions of other replicas
  // (another origin) and ones not noted. At most kMaxInFlight are tracked; the oldest is
  // given up on beyond that (counted in counters().inflight_dropped).
  static constexpr size_t kMaxInFlight = 65536;
  void NoteInFlight(const Decision& decision);
  void ClearInFlight(const Decision& decision);
  // Gives up on every request in flight (counted in counters().inflight_forgotten). A replica
  // calls it after loading a snapshot: the snapshot may already hold some of their outcomes
  // (the very updates whose loss forced it), and such a request, never cleared, would count
  // in the queue for good. The ones still truly in flight go uncounted until their outcomes
  // return, which only costs the few moments that takes.
  void ForgetInFlight();
  size_t inflight() const { return inflight_.size(); }

  // Offline replay only: the true satisfaction of the served answer, for the paper's queue
  // over all requests (see VirtualQueue).
  Status RecordGroundTruth(const Decision& decision, double satisfaction);

  // Learning state as msgpack bytes (format messplus.router_state, version 1).
  std::string SaveState() const;
  // DataLoss when the bytes are not a state of this configuration (models, tenants, policy);
  // the router is unchanged then.
  Status LoadState(std::string_view bytes);

  struct Counters {
    uint64_t decisions = 0;
    uint64_t rejected_requests = 0;
    uint64_t rejected_costs = 0;
    uint64_t rejected_feedback = 0;
    uint64_t inflight_dropped = 0;
    uint64_t inflight_forgotten = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  Status CheckDecision(const Decision& decision) const;

  const RouterConfig config_;
  std::unique_ptr<Policy> policy_;
  Counters counters_;
  // Decisions in flight, by t, oldest first in inflight_order_.
  using InFlightMap = std::unordered_map<uint64_t, Decision>;
  InFlightMap inflight_;
  std::deque<uint64_t> inflight_order_;
  // Erased nodes of inflight_ (with their vectors' capacity), reused by NoteInFlight.
  static constexpr size_t kMaxFreeInFlight = 1024;
  // Uncounts the decision from the policy's in-flight sums and erases it.
  void EraseInFlight(InFlightMap::iterator it);
  void TrimInFlightOrder();
  std::vector<InFlightMap::node_type> inflight_free_;
};

}  // namespace messplus::router
