#include "router/zoo.h"

#include <cmath>
#include <set>
#include <string>

namespace messplus::router {
namespace {

bool Finite(double x) { return std::isfinite(x); }

// One table drives both SetTuning and TuningValues, so they cannot disagree.
struct TuningField {
  const char* name;
  double AdaptiveTuning::*number;
  bool AdaptiveTuning::*flag;
  int AdaptiveTuning::*integer;
};

const TuningField kTuningFields[] = {
    {"model_prior_strength", &AdaptiveTuning::model_prior_strength, nullptr, nullptr},
    {"task_offset_strength", &AdaptiveTuning::task_offset_strength, nullptr, nullptr},
    {"task_prior_strength", &AdaptiveTuning::task_prior_strength, nullptr, nullptr},
    {"monotone_z", &AdaptiveTuning::monotone_z, nullptr, nullptr},
    {"q_reference", &AdaptiveTuning::q_reference, nullptr, nullptr},

    {"max_queue_factor", &AdaptiveTuning::max_queue_factor, nullptr, nullptr},
    {"backlog_scale", &AdaptiveTuning::backlog_scale, nullptr, nullptr},
    {"clear_requests", &AdaptiveTuning::clear_requests, nullptr, nullptr},
    {"queue_dither", &AdaptiveTuning::queue_dither, nullptr, nullptr},
    {"backlog_deadzone", &AdaptiveTuning::backlog_deadzone, nullptr, nullptr},
    {"start_backlog", &AdaptiveTuning::start_backlog, nullptr, nullptr},
    {"buffer_labels", &AdaptiveTuning::buffer_labels, nullptr, nullptr},
    {"margin", &AdaptiveTuning::margin, nullptr, nullptr},
    {"margin_scale", &AdaptiveTuning::margin_scale, nullptr, nullptr},
    {"price_integral", &AdaptiveTuning::price_integral, nullptr, nullptr},
    {"max_price_correction", &AdaptiveTuning::max_price_correction, nullptr, nullptr},
    {"integral_anti_windup", nullptr, &AdaptiveTuning::integral_anti_windup, nullptr},
    {"optimism", &AdaptiveTuning::optimism, nullptr, nullptr},
    {"optimism_labels", &AdaptiveTuning::optimism_labels, nullptr, nullptr},
    {"optimism_floor", &AdaptiveTuning::optimism_floor, nullptr, nullptr},
    {"optimism_start", &AdaptiveTuning::optimism_start, nullptr, nullptr},
    {"hull_z", &AdaptiveTuning::hull_z, nullptr, nullptr},
    {"thompson", &AdaptiveTuning::thompson, nullptr, nullptr},
    {"novelty_z", &AdaptiveTuning::novelty_z, nullptr, nullptr},
    {"novelty_labels", &AdaptiveTuning::novelty_labels, nullptr, nullptr},
    {"lean_low", &AdaptiveTuning::lean_low, nullptr, nullptr},
    {"lean_high", &AdaptiveTuning::lean_high, nullptr, nullptr},
    {"explore_budget", &AdaptiveTuning::explore_budget, nullptr, nullptr},
    {"explore_rate", &AdaptiveTuning::explore_rate, nullptr, nullptr},
    {"warmup_labels", &AdaptiveTuning::warmup_labels, nullptr, nullptr},
    {"text_gate_margin", &AdaptiveTuning::text_gate_margin, nullptr, nullptr},
    {"text_gate_z", &AdaptiveTuning::text_gate_z, nullptr, nullptr},
    {"text_gate_min_labels", &AdaptiveTuning::text_gate_min_labels, nullptr, nullptr},
    {"count_pending", nullptr, &AdaptiveTuning::count_pending, nullptr},
    {"cost_discovery", nullptr, &AdaptiveTuning::cost_discovery, nullptr},
    {"center_difficulty", nullptr, &AdaptiveTuning::center_difficulty, nullptr},
    {"pending_z", &AdaptiveTuning::pending_z, nullptr, nullptr},
    {"calibration_uncertainty", nullptr, &AdaptiveTuning::calibration_uncertainty, nullptr},
    {"exponential_queue", nullptr, &AdaptiveTuning::exponential_queue, nullptr},
    {"price_refresh_labels", nullptr, nullptr, &AdaptiveTuning::price_refresh_labels},
    {"price_draws", nullptr, nullptr, &AdaptiveTuning::price_draws},
    {"price_quantile", &AdaptiveTuning::price_quantile, nullptr, nullptr},
};

}  // namespace

Status SetTuning(AdaptiveTuning* tuning, std::string_view name, double value) {
  for (const TuningField& f : kTuningFields) {
    if (name != f.name) continue;
    if (!std::isfinite(value)) return Status::InvalidArgument("tuning values must be finite");
    if (f.number) tuning->*f.number = value;
    if (f.flag) tuning->*f.flag = value != 0.0;
    if (f.integer) tuning->*f.integer = static_cast<int>(value);
    return Status::Ok();
  }
  std::string known;
  for (const TuningField& f : kTuningFields)
    known += (known.empty() ? "" : ", ") + std::string(f.name);
  return Status::NotFound("unknown adaptive setting '" + std::string(name) + "' (known: " + known +
                          ")");
}

std::vector<std::pair<std::string, double>> TuningValues(const AdaptiveTuning& tuning) {
  std::vector<std::pair<std::string, double>> out;
  for (const TuningField& f : kTuningFields) {
    double v = 0.0;
    if (f.number) v = tuning.*f.number;
    if (f.flag) v = (tuning.*f.flag) ? 1.0 : 0.0;
    if (f.integer) v = tuning.*f.integer;
    out.emplace_back(f.name, v);
  }
  return out;
}

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
  auto positive = [&](double x, const char* name) {
    if (!(x > 0.0) || !Finite(x)) problem(std::string("adaptive.") + name + " must be > 0");
  };
  positive(a.model_prior_strength, "model_prior_strength");
  positive(a.task_offset_strength, "task_offset_strength");
  positive(a.task_prior_strength, "task_prior_strength");
  positive(a.q_reference, "q_reference");
  nonneg(a.monotone_z, "monotone_z");
  positive(a.backlog_scale, "backlog_scale");
  nonneg(a.clear_requests, "clear_requests");
  if (!(a.max_queue_factor >= 1.0)) problem("adaptive.max_queue_factor must be >= 1");
  if (a.price_draws < 1 || a.price_draws > 1000)
    problem("adaptive.price_draws must be in [1, 1000]");
  nonneg(a.start_backlog, "start_backlog");
  nonneg(a.queue_dither, "queue_dither");
  nonneg(a.backlog_deadzone, "backlog_deadzone");
  positive(a.buffer_labels, "buffer_labels");
  nonneg(a.margin, "margin");
  positive(a.margin_scale, "margin_scale");
  nonneg(a.optimism, "optimism");
  nonneg(a.optimism_floor, "optimism_floor");
  nonneg(a.price_integral, "price_integral");
  nonneg(a.max_price_correction, "max_price_correction");
  positive(a.optimism_labels, "optimism_labels");
  nonneg(a.optimism_start, "optimism_start");
  nonneg(a.novelty_z, "novelty_z");
  nonneg(a.hull_z, "hull_z");
  nonneg(a.thompson, "thompson");
  nonneg(a.warmup_labels, "warmup_labels");
  nonneg(a.pending_z, "pending_z");
  if (!(a.price_quantile >= 0.0 && a.price_quantile <= 1.0)) {
    problem("adaptive.price_quantile must be in [0, 1]");
  }
  positive(a.novelty_labels, "novelty_labels");
  nonneg(a.text_gate_margin, "text_gate_margin");
  nonneg(a.text_gate_z, "text_gate_z");
  nonneg(a.text_gate_min_labels, "text_gate_min_labels");
  if (!(a.explore_budget >= 0.0 && a.explore_budget <= 1.0)) {
    problem("adaptive.explore_budget must be in [0, 1]");
  }
  if (!(a.explore_rate >= 0.0 && a.explore_rate <= 1.0)) {
    problem("adaptive.explore_rate must be in [0, 1]");
  }
  if (!(a.lean_low >= -2.0 && a.lean_low <= 2.0 && a.lean_high >= -2.0 && a.lean_high <= 2.0)) {
    problem("adaptive.lean_low and lean_high must be in [-2, 2]");
  }
  if (a.margin > 0.5) problem("adaptive.margin must be <= 0.5");
  if (a.price_refresh_labels < 1) problem("adaptive.price_refresh_labels must be >= 1");

  if (problems.empty()) return Status::Ok();
  return Status::InvalidArgument(problems);
}

}  // namespace messplus::router
