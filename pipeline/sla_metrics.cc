#include "pipeline/sla_metrics.h"

namespace messplus::pipeline {

SlaMetrics::SlaMetrics(prometheus::Registry& registry, const std::string& stage,
                       const router::RouterConfig& config) {
  const prometheus::Labels stage_label{{"stage", stage}};
  auto& queue = prometheus::BuildGauge()
                    .Name("messplus_sla_queue")
                    .Help("Virtual queue Q the decisions use, per tenant")
                    .Labels(stage_label)
                    .Register(registry);
  auto& alpha = prometheus::BuildGauge()
                    .Name("messplus_sla_alpha")
                    .Help("SLA target alpha, per tenant")
                    .Labels(stage_label)
                    .Register(registry);
  auto& sat = prometheus::BuildGauge()
                  .Name("messplus_sla_satisfaction")
                  .Help("Running mean satisfaction of served answers (from feedback), per tenant")
                  .Labels(stage_label)
                  .Register(registry);
  auto& labels = prometheus::BuildCounter()
                     .Name("messplus_sla_labels_total")
                     .Help("Satisfaction labels of served answers received, per tenant")
                     .Labels(stage_label)
                     .Register(registry);
  for (const router::TenantSpec& t : config.tenants) {
    queue_.push_back(&queue.Add({{"tenant", t.name}}));
    alpha.Add({{"tenant", t.name}}).Set(t.alpha);
    satisfaction_.push_back(&sat.Add({{"tenant", t.name}}));
    labels_.push_back(&labels.Add({{"tenant", t.name}}));
  }
  auto& share = prometheus::BuildGauge()
                    .Name("messplus_model_share")
                    .Help("Share of requests served by each model")
                    .Labels(stage_label)
                    .Register(registry);
  for (const router::ModelSpec& m : config.models)
    share_.push_back(&share.Add({{"model", m.name}}));
  exploration_ = &prometheus::BuildGauge()
                      .Name("messplus_exploration_share")
                      .Help("Share of requests that ran more than the exploit choice")
                      .Labels(stage_label)
                      .Register(registry)
                      .Add({});
  cost_ = &prometheus::BuildGauge()
               .Name("messplus_cost_per_request")
               .Help("Mean cost of all model calls per request")
               .Labels(stage_label)
               .Register(registry)
               .Add({});
  requests_counter_ = &prometheus::BuildCounter()
                           .Name("messplus_requests_total")
                           .Help("Requests counted in the model and exploration shares")
                           .Labels(stage_label)
                           .Register(registry)
                           .Add({});
  sat_sum_.assign(config.tenants.size(), 0.0);
  sat_n_.assign(config.tenants.size(), 0.0);
  served_.assign(config.models.size(), 0);
}

void SlaMetrics::RecordRequest(uint32_t served, bool explored, double cost) {
  ++requests_;
  requests_counter_->Increment();
  if (served < served_.size()) ++served_[served];
  explored_ += explored ? 1 : 0;
  cost_sum_ += cost;
  const double n = static_cast<double>(requests_);
  for (size_t m = 0; m < served_.size(); ++m) share_[m]->Set(static_cast<double>(served_[m]) / n);
  exploration_->Set(static_cast<double>(explored_) / n);
  cost_->Set(cost_sum_ / n);
}

void SlaMetrics::RecordSatisfaction(uint32_t tenant, double satisfaction) {
  if (tenant >= sat_sum_.size()) return;
  sat_sum_[tenant] += satisfaction;
  sat_n_[tenant] += 1.0;
  labels_[tenant]->Increment();
  satisfaction_[tenant]->Set(sat_sum_[tenant] / sat_n_[tenant]);
}

double SlaMetrics::satisfaction(uint32_t tenant) const {
  return sat_n_[tenant] > 0.0 ? sat_sum_[tenant] / sat_n_[tenant] : 0.0;
}

}  // namespace messplus::pipeline
