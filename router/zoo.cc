#include "router/zoo.h"

#include <cmath>
#include <set>
#include <string>

namespace messplus::router {
namespace {

bool Finite(double x) { return std::isfinite(x); }

}  // namespace

Status RouterConfig::Validate() const {
  std::string problems;
  auto problem = [&problems](const std::string& p) {
    if (!problems.empty()) problems += "\n";
    problems += p;
  };

  if (models.empty()) problem("the zoo has no models");
  if (models.size() > 64) problem("the zoo has more than 64 models");
  std::set<std::string> names;
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelSpec& m = models[i];
    if (m.name.empty()) problem("model " + std::to_string(i) + " has no name");
    if (!names.insert(m.name).second) problem("model '" + m.name + "' is listed twice");
    if (!Finite(m.cost_prior) || (m.cost_prior < 0.0 && m.cost_prior != -1.0)) {
      problem("model '" + m.name + "': cost prior must be a finite number >= 0 (or absent)");
    }
    if (!(m.cost_prior_weight > 0.0) || !Finite(m.cost_prior_weight)) {
      problem("model '" + m.name + "': cost prior weight must be > 0");
    }
  }
  if (tenants.empty()) problem("no tenants (SLA classes) are configured");
  std::set<std::string> tenant_names;
  for (const TenantSpec& t : tenants) {
    if (t.name.empty()) problem("a tenant has no name");
    if (!tenant_names.insert(t.name).second) problem("tenant '" + t.name + "' is listed twice");
    if (!(t.alpha >= 0.0 && t.alpha <= 1.0)) {
      problem("tenant '" + t.name + "': alpha must be in [0, 1], got " + std::to_string(t.alpha));
    }
  }
  if (!(v >= 0.0) || !Finite(v)) problem("V must be a finite number >= 0");
  if (!(c >= 0.0) || !Finite(c)) problem("c must be a finite number >= 0");
  if (Status st = hashing.Validate(); !st.ok()) problem(st.message());
  if (Status st = predictor.Validate(); !st.ok()) problem(st.message());

  const AdaptiveTuning& a = adaptive;
  auto nonneg = [&](double x, const char* name) {
    if (!(x >= 0.0) || !Finite(x)) problem(std::string("adaptive.") + name + " must be >= 0");
  };
  nonneg(a.model_prior_strength, "model_prior_strength");
  nonneg(a.task_prior_strength, "task_prior_strength");
  nonneg(a.q_start, "q_start");
  nonneg(a.margin, "margin");
  nonneg(a.optimism, "optimism");
  nonneg(a.explore_rate, "explore_rate");
  nonneg(a.text_gate_margin, "text_gate_margin");
  nonneg(a.text_gate_min_examples, "text_gate_min_examples");
  if (!(a.q_reference > 0.0) || !Finite(a.q_reference)) problem("adaptive.q_reference must be > 0");
  if (!(a.margin_scale > 0.0) || !Finite(a.margin_scale)) {
    problem("adaptive.margin_scale must be > 0");
  }
  if (!(a.explore_budget >= 0.0 && a.explore_budget <= 1.0)) {
    problem("adaptive.explore_budget must be in [0, 1]");
  }

  if (problems.empty()) return Status::Ok();
  return Status::InvalidArgument(problems);
}

}  // namespace messplus::router
