// SlaMetrics: the gauges operators watch to see whether the SLA holds and what it costs,
// kept by the route replicas (their view of the ledger) and by the feedback collector (the
// ledger itself):
//   messplus_sla_queue{tenant}          Q the decisions use (router's q_tracked / queue)
//   messplus_sla_alpha{tenant}          the tenant's target
//   messplus_sla_satisfaction{tenant}   running mean satisfaction of served answers (labels)
//   messplus_sla_labels_total{tenant}   labels of served answers received
//   messplus_model_share{model}         share of requests served by each model
//   messplus_exploration_share          share of requests that ran more than the exploit choice
//   messplus_cost_per_request           mean cost of all calls per request
//   messplus_requests_total             requests counted in the shares
//
// Thread safety: the stage's thread writes; scrapes read atomically (prometheus-cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "router/zoo.h"

namespace messplus::pipeline {

class SlaMetrics {
 public:
  SlaMetrics(prometheus::Registry& registry, const std::string& stage,
             const router::RouterConfig& config);

  void SetQueue(uint32_t tenant, double q) { queue_[tenant]->Set(q); }
  // One request: the model whose answer was served, whether it explored, and its total cost.
  void RecordRequest(uint32_t served, bool explored, double cost);
  // One label of a served answer.
  void RecordSatisfaction(uint32_t tenant, double satisfaction);

  double satisfaction(uint32_t tenant) const;
  uint64_t requests() const { return requests_; }

 private:
  std::vector<prometheus::Gauge*> queue_, satisfaction_, share_;
  std::vector<prometheus::Counter*> labels_;
  prometheus::Gauge* exploration_;
  prometheus::Gauge* cost_;
  prometheus::Counter* requests_counter_;
  std::vector<double> sat_sum_, sat_n_;
  std::vector<uint64_t> served_;
  uint64_t requests_ = 0, explored_ = 0;
  double cost_sum_ = 0.0;
};

}  // namespace messplus::pipeline
