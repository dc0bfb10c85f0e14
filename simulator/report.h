// Formatting of replay results: the human-readable table and the JSON object whose keys are
// a stable interface (requests, alpha, avg_cost, avg_satisfaction, time_avg_satisfaction,
// sla_met, model_share, exploration_share, final_q, baselines{always:<m>, educated_guess,
// oracle, alpha_oracle}{avg_cost, avg_satisfaction}).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "simulator/replay.h"

namespace messplus::simulator {

nlohmann::json ToJson(const ReplayResult& result);

// The same fields for several seeds: {"runs": [...], "summary": {...}}.
nlohmann::json ToJson(const std::vector<ReplayResult>& results);

// A table a newcomer reads at a glance: the router against every baseline, then how the
// traffic was split. `title` names the data and the settings.
std::string FormatTable(const ReplayResult& result, const std::string& title);

// One line per seed plus the mean, for multi-seed runs.
std::string FormatSeedSummary(const std::vector<ReplayResult>& results);

// The per-request trace as CSV (t, q, running_satisfaction, served_model, cost,
// explored, id, satisfaction of the served answer, the decision's V and satisfaction target,
// then p__<model> per model).
std::string FormatTraceCsv(const ReplayResult& result);

}  // namespace messplus::simulator
