// Dataset: captured per-prompt outcomes and costs of a zoo of models, in memory.
//
// One row per prompt; for every model, the satisfaction the model's answer earned (0..1) and
// the cost of the call (J, USD or s). Loaded from the CSV format of ../shared/data or from the
// MESS+ authors' simulator format; several files can be pooled into one dataset.
//
// Thread safety: a const Dataset may be read from several threads at once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "router/status.h"

namespace messplus::simulator {

struct Dataset {
  // Model names, ordered by mean cost per request, cheapest first (ties keep file order).
  std::vector<std::string> models;
  // The cost quantity loaded: "energy_j", "cost_usd", "latency_s" or "constant".
  std::string cost_kind;
  // Per row. `task` is the benchmark (or the column chosen as task) of the row.
  std::vector<std::string> ids;
  std::vector<std::string> prompts;
  std::vector<std::string> tasks;
  // Row-major rows() x models.size().
  std::vector<double> score;
  std::vector<double> cost;
  // Row-major rows() x models.size(); empty when the file has no latency column.
  std::vector<double> latency_s;

  size_t rows() const { return prompts.size(); }
  size_t num_models() const { return models.size(); }
  double Score(size_t row, size_t model) const { return score[row * models.size() + model]; }
  double Cost(size_t row, size_t model) const { return cost[row * models.size() + model]; }
  // Index of `name` in models, or -1.
  int ModelIndex(std::string_view name) const;
  // Mean score / cost of a model over all rows.
  double MeanScore(size_t model) const;
  double MeanCost(size_t model) const;
};

struct LoadOptions {
  // Which cost columns to read: "energy_j", "cost_usd", "latency_s", or "" for the one the
  // file has (energy_j, then cost_usd, then latency_s). Ignored when constant_costs is set.
  std::string cost;
  // A constant cost per call for named models ("name" -> cost), for files without cost
  // columns (RouteLLM). Every model of the file must be named; naming a model the file does
  // not have is an error.
  std::vector<std::pair<std::string, double>> constant_costs;
  // Column whose value becomes the row's task; "" means `benchmark` (or, in the MESS+ format,
  // `benchmark_name`, else the file's stem).
  std::string task_column;
  // Drop rows whose `contaminated` column is 1 (RouteLLM marks them), as RouteLLM's evals do.
  bool drop_contaminated = true;
  // Keep only these models (in any order), when non-empty. Unknown names are an error.
  std::vector<std::string> models;
};

// Loads one file. Errors (missing file or column, non-numeric or NaN cell in a column that is
// used, empty file, unknown model) name the file, the row (1-based line of the CSV record)
// and the column, in one line.
Result<Dataset> LoadDataset(const std::string& path, const LoadOptions& options);

// Loads several files and pools their rows (in file order; the simulator shuffles). All files
// must have the same model set; rows keep their own task.
Result<Dataset> LoadDatasets(const std::vector<std::string>& paths, const LoadOptions& options);

// Writes a dataset in the CSV format of ../shared/data (id, benchmark, prompt, score__<m>,
// <cost_kind>__<m>); used by the synthetic generator and the replay tools.
Status WriteDatasetCsv(const Dataset& data, const std::string& path);

}  // namespace messplus::simulator
