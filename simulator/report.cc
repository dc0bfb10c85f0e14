#include "simulator/report.h"

#include <fmt/format.h>

#include <algorithm>

#include "simulator/csv.h"

namespace messplus::simulator {
namespace {

const BaselineResult* FindBaseline(const ReplayResult& r, const std::string& name) {
  for (const BaselineResult& b : r.baselines) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

std::string Pretty(const std::string& baseline) {
  if (baseline.rfind("always:", 0) == 0) return "always " + baseline.substr(7);
  if (baseline == "educated_guess") return "educated guess (best fixed mix)";
  if (baseline == "oracle") return "oracle (best answer, foresight)";
  if (baseline == "alpha_oracle") return "alpha oracle (just meets alpha)";
  return baseline;
}

}  // namespace

nlohmann::json ToJson(const ReplayResult& r) {
  nlohmann::json j;
  j["seed"] = r.seed;
  j["policy"] = r.policy;
  j["requests"] = r.requests;
  j["alpha"] = r.alpha;
  j["avg_cost"] = r.avg_cost;
  j["avg_satisfaction"] = r.avg_satisfaction;
  j["time_avg_satisfaction"] = r.time_avg_satisfaction;
  j["sla_met"] = r.sla_met;
  nlohmann::json share = nlohmann::json::object();
  for (size_t i = 0; i < r.models.size(); ++i) share[r.models[i]] = r.model_share[i];
  j["model_share"] = share;
  j["models"] = r.models;  // cheapest first (JSON objects do not keep order)
  j["exploration_share"] = r.exploration_share;
  j["exploration_cost_share"] = r.exploration_cost_share;
  j["exploration_cost"] = r.exploration_cost;
  j["chosen_cost"] = r.chosen_cost;
  j["final_q"] = r.final_q;
  j["final_q_all"] = r.final_q_all;
  j["feedback_delivered"] = r.feedback_delivered;
  j["predictor_auc"] = r.predictor_auc;
  j["gain_auc"] = r.gain_auc;
  j["text_gate_open"] = r.text_gate_open;
  nlohmann::json baselines = nlohmann::json::object();
  for (const BaselineResult& b : r.baselines) {
    baselines[b.name] = {
        {"avg_cost", b.avg_cost}, {"avg_satisfaction", b.avg_satisfaction}, {"sla_met", b.sla_met}};
  }
  j["baselines"] = baselines;
  j["eg_expected_cost"] = r.eg_expected_cost;
  j["warnings"] = r.warnings;
  return j;
}

nlohmann::json ToJson(const std::vector<ReplayResult>& results) {
  nlohmann::json j;
  j["runs"] = nlohmann::json::array();
  double cost = 0, sat = 0;
  int met = 0;
  for (const ReplayResult& r : results) {
    j["runs"].push_back(ToJson(r));
    cost += r.avg_cost;
    sat += r.avg_satisfaction;
    met += r.sla_met ? 1 : 0;
  }
  const double n = results.empty() ? 1.0 : static_cast<double>(results.size());
  j["summary"] = {{"runs", results.size()},
                  {"sla_met_runs", met},
                  {"mean_avg_cost", cost / n},
                  {"mean_avg_satisfaction", sat / n}};
  return j;
}

std::string FormatTable(const ReplayResult& r, const std::string& title) {
  std::string out = title + "\n\n";
  size_t width = 28;
  for (const BaselineResult& b : r.baselines) width = std::max(width, Pretty(b.name).size() + 2);
  const BaselineResult* largest = FindBaseline(r, "always:" + r.models.back());
  auto share_of_largest = [&](double cost) {
    return largest && largest->avg_cost > 0
               ? fmt::format("{:>7.1f}%", 100.0 * cost / largest->avg_cost)
               : std::string("      -");
  };
  out += fmt::format("  {:<{}} {:>14} {:>13} {:>8}  {}\n", "", width, "cost/request",
                     "satisfaction", "SLA", "cost vs largest");
  const std::string name = "messplus (" + r.policy + ")";
  out +=
      fmt::format("  {:<{}} {:>14.2f} {:>13.4f} {:>8}  {}\n", name, width, r.avg_cost,
                  r.avg_satisfaction, r.sla_met ? "met" : "MISSED", share_of_largest(r.avg_cost));
  for (const BaselineResult& b : r.baselines) {
    out +=
        fmt::format("  {:<{}} {:>14.2f} {:>13.4f} {:>8}  {}\n", Pretty(b.name), width, b.avg_cost,
                    b.avg_satisfaction, b.sla_met ? "met" : "missed", share_of_largest(b.avg_cost));
  }
  out += fmt::format("\n  alpha (SLA target) {:.4f} over {} requests\n", r.alpha, r.requests);
  out += "  served by:";
  for (size_t i = 0; i < r.models.size(); ++i) {
    out += fmt::format(" {} {:.1f}%{}", r.models[i], 100.0 * r.model_share[i],
                       i + 1 < r.models.size() ? "," : "");
  }
  out += fmt::format(
      "\n  explored {:.1f}% of requests ({:.1f}% of the cost went to calls beyond the rule's "
      "choice)\n",
      100.0 * r.exploration_share, 100.0 * r.exploration_cost_share);
  out += fmt::format(
      "  final Q {:.3f} (paper's all-requests Q {:.3f}); time-averaged satisfaction {:.4f}\n",
      r.final_q, r.final_q_all, r.time_avg_satisfaction);
  out += fmt::format("  feedback reached the router for {} requests; predictor AUC {:.3f}\n",
                     r.feedback_delivered, r.predictor_auc);
  if (!r.text_gate_open.empty()) {
    std::string open;
    for (size_t i = 0; i < r.text_gate_open.size(); ++i) {
      if (r.text_gate_open[i]) open += (open.empty() ? "" : ", ") + r.models[i];
    }
    out += "  text model steers: " + (open.empty() ? std::string("no model (gate closed)") : open) +
           "\n";
  }
  for (const std::string& w : r.warnings) out += "  warning: " + w + "\n";
  return out;
}

std::string FormatSeedSummary(const std::vector<ReplayResult>& results) {
  std::string out = fmt::format("  {:>6} {:>14} {:>13} {:>8} {:>14}\n", "seed", "cost/request",
                                "satisfaction", "SLA", "vs EG cost");
  double cost = 0, sat = 0, ratio = 0;
  int met = 0;
  for (const ReplayResult& r : results) {
    const BaselineResult* eg = FindBaseline(r, "educated_guess");
    const double rel = eg && eg->avg_cost > 0 ? r.avg_cost / eg->avg_cost : 0.0;
    out += fmt::format("  {:>6} {:>14.2f} {:>13.4f} {:>8} {:>13.2f}x\n", r.seed, r.avg_cost,
                       r.avg_satisfaction, r.sla_met ? "met" : "MISSED", rel);
    cost += r.avg_cost;
    sat += r.avg_satisfaction;
    ratio += rel;
    met += r.sla_met ? 1 : 0;
  }
  const double n = static_cast<double>(results.size());
  out += fmt::format("  {:>6} {:>14.2f} {:>13.4f} {:>5}/{:<2} {:>13.2f}x\n", "mean", cost / n,
                     sat / n, met, results.size(), ratio / n);
  return out;
}

std::string FormatTraceCsv(const ReplayResult& r) {
  std::string out = "t,q,running_satisfaction,served_model,cost,explored,id,satisfaction,v,target";
  for (const std::string& m : r.models) out += ",p__" + m;
  out += "\n";
  for (const TraceRow& t : r.trace) {
    out += fmt::format("{},{:.6g},{:.6g},{},{:.6g},{},", t.t, t.q, t.running_satisfaction,
                       r.models[t.served], t.cost, t.explored ? 1 : 0);
    AppendCsvField(t.id, &out);
    out += fmt::format(",{:.6g},{:.6g},{:.6g}", t.satisfaction, t.v, t.target);
    for (double p : t.p) out += fmt::format(",{:.4f}", p);
    out += "\n";
  }
  return out;
}

}  // namespace messplus::simulator
