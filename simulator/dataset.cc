#include "simulator/dataset.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <numeric>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "simulator/csv.h"

namespace messplus::simulator {
namespace {

// The two input layouts. kShared is the format of ../shared/data; kMessPlus is the one the
// MESS+ authors' simulator reads (doc_id,input_text,benchmark_name,label_<m>,...).
enum class Format { kShared, kMessPlus };

// Cost kinds in the order an empty LoadOptions::cost tries them.
constexpr std::array<std::string_view, 3> kCostKinds = {"energy_j", "cost_usd", "latency_s"};
constexpr std::string_view kConstantKind = "constant";
constexpr std::string_view kLatencyKind = "latency_s";

std::string_view ScorePrefix(Format format) {
  return format == Format::kShared ? "score__" : "label_";
}

// Column-name prefix of a cost kind, or "" when the format has no such column.
std::string_view CostPrefix(Format format, std::string_view kind) {
  if (format == Format::kShared) {
    if (kind == "energy_j") return "energy_j__";
    if (kind == "cost_usd") return "cost_usd__";
    if (kind == "latency_s") return "latency_s__";
    return "";
  }
  if (kind == "energy_j") return "energy_consumption_";
  if (kind == "latency_s") return "inference_time_";
  return "";  // the MESS+ capture records no money cost
}

// A cell as it may appear in an error message: quoted, control characters escaped, long
// cells cut, so that the message stays on one line.
std::string Quoted(std::string_view cell) {
  constexpr size_t kMaxShown = 40;
  std::string out = "'";
  for (size_t i = 0; i < cell.size() && i < kMaxShown; ++i) {
    const char c = cell[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  if (cell.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// "<path>:<line>: column '<column>': " — the prefix of every error about one cell.
std::string CellPrefix(const std::string& path, size_t line, std::string_view column) {
  return path + ":" + std::to_string(line) + ": column '" + std::string(column) + "': ";
}

enum class CellError { kNone, kEmpty, kNotNumber, kNotFinite };

// std::from_chars, not strtod: locale-independent, and the whole cell must be the number.
CellError ParseNumber(std::string_view cell, double* out) {
  if (cell.empty()) return CellError::kEmpty;
  const char* end = cell.data() + cell.size();
  const auto [ptr, ec] = std::from_chars(cell.data(), end, *out);
  if (ec == std::errc::result_out_of_range) return CellError::kNotFinite;
  if (ec != std::errc() || ptr != end) return CellError::kNotNumber;
  if (!std::isfinite(*out)) return CellError::kNotFinite;
  return CellError::kNone;
}

Status CellStatus(CellError error, const std::string& path, size_t line, std::string_view column,
                  std::string_view cell) {
  std::string msg = CellPrefix(path, line, column);
  switch (error) {
    case CellError::kNone:
      return Status::Ok();
    case CellError::kEmpty:
      msg += "empty cell (the source has no value here)";
      break;
    case CellError::kNotNumber:
      msg += "not a number: " + Quoted(cell);
      break;
    case CellError::kNotFinite:
      msg += "not a finite number: " + Quoted(cell);
      break;
  }
  return Status::InvalidArgument(std::move(msg));
}

Status CsvStatus(const std::string& path, const CsvReader& reader,
                 const std::vector<std::string_view>& header) {
  const CsvError& e = reader.error();
  std::string column = e.field < header.size() ? "column '" + std::string(header[e.field]) + "'"
                                               : "field " + std::to_string(e.field + 1);
  return Status::InvalidArgument(path + ":" + std::to_string(e.line) + ": " + column +
                                 ": malformed CSV: " + e.reason);
}

Result<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (st.type() == std::filesystem::file_type::not_found) {
    return Status::NotFound(path + ": no such file");
  }
  if (st.type() == std::filesystem::file_type::directory) {
    return Status::IoError(path + ": is a directory, not a CSV file");
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  }
  std::string content;
  std::array<char, 1 << 16> chunk;
  size_t got;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), f)) > 0)
    content.append(chunk.data(), got);
  const bool failed = std::ferror(f) != 0;
  const int read_errno = errno;
  std::fclose(f);
  if (failed) return Status::IoError(path + ": read error: " + std::strerror(read_errno));
  return content;
}

// Reorders the models by mean cost, cheapest first; std::stable_sort keeps ties in their
// current (file) order.
void SortModelsByMeanCost(Dataset* data) {
  const size_t m = data->num_models();
  std::vector<double> mean(m);
  for (size_t j = 0; j < m; ++j) mean[j] = data->MeanCost(j);
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&mean](size_t a, size_t b) { return mean[a] < mean[b]; });
  if (std::is_sorted(order.begin(), order.end())) return;

  auto permute = [&](std::vector<double>* values) {
    if (values->empty()) return;
    std::vector<double> out(values->size());
    for (size_t r = 0; r < data->rows(); ++r) {
      for (size_t j = 0; j < m; ++j) out[r * m + j] = (*values)[r * m + order[j]];
    }
    *values = std::move(out);
  };
  permute(&data->score);
  permute(&data->cost);
  permute(&data->latency_s);
  std::vector<std::string> models(m);
  for (size_t j = 0; j < m; ++j) models[j] = std::move(data->models[order[j]]);
  data->models = std::move(models);
}

// Loads one file with its models in file order (the callers sort).
Result<Dataset> LoadUnsorted(const std::string& path, const LoadOptions& options) {
  Result<std::string> content = ReadFile(path);
  if (!content.ok()) return content.status();
  CsvReader reader(std::move(content).value());

  // ---- Header: the columns, the format, the models.
  std::vector<std::string_view> header;
  if (!reader.Next(&header)) {
    if (!reader.status().ok()) return CsvStatus(path, reader, {});
    return Status::InvalidArgument(path + ": empty file (no header line)");
  }
  const size_t header_line = reader.record_line();
  std::unordered_map<std::string_view, size_t> column_index;
  for (size_t c = 0; c < header.size(); ++c) {
    if (!column_index.emplace(header[c], c).second) {
      return Status::InvalidArgument(CellPrefix(path, header_line, header[c]) +
                                     "duplicate column name in the header");
    }
  }
  auto find_column = [&column_index](std::string_view name) -> std::optional<size_t> {
    const auto it = column_index.find(name);
    if (it == column_index.end()) return std::nullopt;
    return it->second;
  };

  Format format;
  auto has_prefix = [&header](std::string_view prefix) {
    return std::any_of(header.begin(), header.end(),
                       [prefix](std::string_view h) { return h.starts_with(prefix); });
  };
  if (has_prefix(ScorePrefix(Format::kShared))) {
    format = Format::kShared;
  } else if (has_prefix(ScorePrefix(Format::kMessPlus))) {
    format = Format::kMessPlus;
  } else {
    for (const std::string_view h : header) {
      if (h.starts_with("score_1to10__")) {
        return Status::InvalidArgument(
            path + ": no score__<model> columns; column '" + std::string(h) +
            "' holds grades on a 1-10 scale, but scores must be a satisfaction in [0,1]: "
            "rescale them into score__<model> columns first");
      }
    }
    std::string columns;
    for (const std::string_view h : header)
      columns += (columns.empty() ? "" : ", ") + std::string(h);
    return Status::InvalidArgument(
        path + ": no score__<model> columns (format of ../shared/data) and no label_<model> " +
        "columns (MESS+ format); the header has: " + columns);
  }

  std::vector<std::string> file_models;
  for (const std::string_view h : header) {
    if (!h.starts_with(ScorePrefix(format))) continue;
    const std::string_view name = h.substr(ScorePrefix(format).size());
    if (name.empty()) {
      return Status::InvalidArgument(CellPrefix(path, header_line, h) +
                                     "score column without a model name");
    }
    file_models.emplace_back(name);
  }

  // ---- Which models to keep (file order).
  std::vector<std::string> models;
  if (options.models.empty()) {
    models = file_models;
  } else {
    for (const std::string& wanted : options.models) {
      if (std::find(file_models.begin(), file_models.end(), wanted) == file_models.end()) {
        return Status::NotFound(path + ": unknown model '" + wanted +
                                "'; the file has models: " + JoinNames(file_models));
      }
    }
    for (const std::string& name : file_models) {
      if (std::find(options.models.begin(), options.models.end(), name) != options.models.end()) {
        models.push_back(name);
      }
    }
  }
  const size_t m = models.size();

  // Column index of <prefix><model> for every kept model, or nullopt if any is missing.
  auto model_columns = [&](std::string_view prefix) -> std::optional<std::vector<size_t>> {
    if (prefix.empty()) return std::nullopt;
    std::vector<size_t> cols;
    for (const std::string& name : models) {
      const auto c = find_column(std::string(prefix) + name);
      if (!c) return std::nullopt;
      cols.push_back(*c);
    }
    return cols;
  };
  std::vector<size_t> score_cols = *model_columns(ScorePrefix(format));

  // ---- Cost: constant per model, or a column kind.
  Dataset data;
  data.models = models;
  std::vector<size_t> cost_cols;
  std::vector<double> constant_cost;
  if (!options.constant_costs.empty()) {
    data.cost_kind = kConstantKind;
    constant_cost.assign(m, -1.0);
    std::vector<bool> named(m, false);
    for (const auto& [name, value] : options.constant_costs) {
      const auto it = std::find(file_models.begin(), file_models.end(), name);
      if (it == file_models.end()) {
        return Status::NotFound(
            path + ": a constant cost is given for model '" + name +
            "', which the file does not have; the file has models: " + JoinNames(file_models));
      }
      if (!std::isfinite(value) || value < 0.0) {
        return Status::OutOfRange(path + ": the constant cost of model '" + name +
                                  "' must be finite and >= 0, got " + std::to_string(value));
      }
      const auto kept = std::find(models.begin(), models.end(), name);
      if (kept == models.end()) continue;  // filtered out by options.models
      const size_t j = static_cast<size_t>(kept - models.begin());
      if (named[j]) {
        return Status::InvalidArgument(path + ": model '" + name +
                                       "' is given a constant cost twice");
      }
      named[j] = true;
      constant_cost[j] = value;
    }
    for (size_t j = 0; j < m; ++j) {
      if (!named[j]) {
        return Status::InvalidArgument(
            path + ": no constant cost for model '" + models[j] +
            "'; constant costs must name every model (--constant-cost model=value for each of: " +
            JoinNames(models) + ")");
      }
    }
  } else if (!options.cost.empty()) {
    if (std::find(kCostKinds.begin(), kCostKinds.end(), options.cost) == kCostKinds.end()) {
      return Status::InvalidArgument("unknown cost kind '" + options.cost +
                                     "' (expected energy_j, cost_usd or latency_s)");
    }
    const std::string_view prefix = CostPrefix(format, options.cost);
    if (prefix.empty()) {
      return Status::InvalidArgument(path + ": the MESS+ format has no '" + options.cost +
                                     "' columns (it has energy_consumption_<model> = energy_j "
                                     "and inference_time_<model> = latency_s)");
    }
    for (const std::string& name : models) {
      const std::string column = std::string(prefix) + name;
      if (!find_column(column)) {
        return Status::InvalidArgument(path + ": missing column '" + column + "' (cost kind '" +
                                       options.cost + "' was asked for)");
      }
    }
    data.cost_kind = options.cost;
    cost_cols = *model_columns(prefix);
  } else {
    for (const std::string_view kind : kCostKinds) {
      if (auto cols = model_columns(CostPrefix(format, kind))) {
        data.cost_kind = kind;
        cost_cols = std::move(*cols);
        break;
      }
    }
    if (data.cost_kind.empty()) {
      return Status::InvalidArgument(
          path + ": no cost columns (energy_j__, cost_usd__ or latency_s__ for every model); " +
          "pass constant costs, --constant-cost model=value for each of: " + JoinNames(models));
    }
  }
  std::optional<std::vector<size_t>> latency_cols = model_columns(CostPrefix(format, kLatencyKind));

  // ---- Per-row text columns.
  std::optional<size_t> task_col;
  if (!options.task_column.empty()) {
    task_col = find_column(options.task_column);
    if (!task_col) {
      return Status::InvalidArgument(path + ": missing column '" + options.task_column +
                                     "' (asked for as the task column)");
    }
  } else {
    task_col = find_column("benchmark");
    if (!task_col) task_col = find_column("benchmark_name");
  }
  const std::string stem = std::filesystem::path(path).stem().string();
  const std::string_view prompt_name = format == Format::kShared ? "prompt" : "input_text";
  const std::optional<size_t> prompt_col = find_column(prompt_name);
  if (!prompt_col) {
    return Status::InvalidArgument(path + ": missing column '" + std::string(prompt_name) + "'");
  }
  const std::optional<size_t> id_col = find_column(format == Format::kShared ? "id" : "doc_id");
  const std::optional<size_t> contaminated_col =
      options.drop_contaminated ? find_column("contaminated") : std::nullopt;

  // ---- Rows.
  std::vector<std::string_view> fields;
  size_t record_index = 0;
  while (reader.Next(&fields)) {
    const size_t line = reader.record_line();
    if (fields.size() != header.size()) {
      const std::string_view column = fields.size() < header.size()
                                          ? header[fields.size()]
                                          : std::string_view("(beyond the header)");
      return Status::InvalidArgument(CellPrefix(path, line, column) + "the record has " +
                                     std::to_string(fields.size()) + " fields, the header " +
                                     std::to_string(header.size()));
    }
    const size_t index = record_index++;
    if (contaminated_col && fields[*contaminated_col] == "1") continue;

    for (size_t j = 0; j < m; ++j) {
      const std::string_view cell = fields[score_cols[j]];
      double v;
      const CellError e = ParseNumber(cell, &v);
      if (e != CellError::kNone) return CellStatus(e, path, line, header[score_cols[j]], cell);
      if (v < 0.0 || v > 1.0) {
        return Status::OutOfRange(CellPrefix(path, line, header[score_cols[j]]) + "score " +
                                  Quoted(cell) +
                                  " outside [0,1]; scores are a satisfaction in [0,1]");
      }
      data.score.push_back(v);
    }
    for (size_t j = 0; j < m; ++j) {
      if (cost_cols.empty()) {
        data.cost.push_back(constant_cost[j]);
        continue;
      }
      const std::string_view cell = fields[cost_cols[j]];
      double v;
      const CellError e = ParseNumber(cell, &v);
      if (e != CellError::kNone) return CellStatus(e, path, line, header[cost_cols[j]], cell);
      if (v < 0.0) {
        return Status::OutOfRange(CellPrefix(path, line, header[cost_cols[j]]) + "negative cost " +
                                  Quoted(cell));
      }
      data.cost.push_back(v);
    }
    if (latency_cols) {
      for (size_t j = 0; j < m; ++j) {
        const size_t c = (*latency_cols)[j];
        double v;
        const CellError e = ParseNumber(fields[c], &v);
        if (e != CellError::kNone) return CellStatus(e, path, line, header[c], fields[c]);
        if (v < 0.0) {
          return Status::OutOfRange(CellPrefix(path, line, header[c]) + "negative latency " +
                                    Quoted(fields[c]));
        }
        data.latency_s.push_back(v);
      }
    }
    data.ids.push_back(id_col ? std::string(fields[*id_col]) : std::to_string(index));
    data.prompts.emplace_back(fields[*prompt_col]);
    data.tasks.push_back(task_col ? std::string(fields[*task_col]) : stem);
  }
  if (!reader.status().ok()) return CsvStatus(path, reader, header);
  if (data.rows() == 0) {
    return Status::InvalidArgument(
        path + (record_index == 0 ? ": empty file (a header but no rows)"
                                  : ": no rows left after dropping the contaminated rows"));
  }
  return data;
}

}  // namespace

int Dataset::ModelIndex(std::string_view name) const {
  for (size_t j = 0; j < models.size(); ++j) {
    if (models[j] == name) return static_cast<int>(j);
  }
  return -1;
}

double Dataset::MeanScore(size_t model) const {
  if (rows() == 0) return 0.0;
  double sum = 0.0;
  for (size_t r = 0; r < rows(); ++r) sum += Score(r, model);
  return sum / static_cast<double>(rows());
}

double Dataset::MeanCost(size_t model) const {
  if (rows() == 0) return 0.0;
  double sum = 0.0;
  for (size_t r = 0; r < rows(); ++r) sum += Cost(r, model);
  return sum / static_cast<double>(rows());
}

Result<Dataset> LoadDataset(const std::string& path, const LoadOptions& options) {
  Result<Dataset> data = LoadUnsorted(path, options);
  if (data.ok()) SortModelsByMeanCost(&data.value());
  return data;
}

Result<Dataset> LoadDatasets(const std::vector<std::string>& paths, const LoadOptions& options) {
  if (paths.empty()) return Status::InvalidArgument("no dataset files given");
  Result<Dataset> first = LoadUnsorted(paths[0], options);
  if (!first.ok()) return first.status();
  Dataset pooled = std::move(first).value();
  const size_t m = pooled.num_models();
  std::vector<std::string> first_sorted = pooled.models;
  std::sort(first_sorted.begin(), first_sorted.end());

  for (size_t i = 1; i < paths.size(); ++i) {
    const std::string& path = paths[i];
    Result<Dataset> next = LoadUnsorted(path, options);
    if (!next.ok()) return next.status();
    Dataset& d = next.value();
    std::vector<std::string> sorted = d.models;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != first_sorted) {
      return Status::InvalidArgument(
          path + ": models (" + JoinNames(sorted) + ") differ from those of " + paths[0] + " (" +
          JoinNames(first_sorted) + "); pooled files must have the same models");
    }
    if (d.cost_kind != pooled.cost_kind) {
      return Status::InvalidArgument(path + ": cost kind '" + d.cost_kind + "' differs from '" +
                                     pooled.cost_kind + "' of " + paths[0] +
                                     "; pass the cost kind to use");
    }
    // Column j of the pool is column map[j] of this file.
    std::vector<size_t> map(m);
    for (size_t j = 0; j < m; ++j) map[j] = static_cast<size_t>(d.ModelIndex(pooled.models[j]));
    // Latency is kept only if every file has it.
    if (d.latency_s.empty()) pooled.latency_s.clear();
    const bool keep_latency = !pooled.latency_s.empty();
    for (size_t r = 0; r < d.rows(); ++r) {
      for (size_t j = 0; j < m; ++j) {
        pooled.score.push_back(d.Score(r, map[j]));
        pooled.cost.push_back(d.Cost(r, map[j]));
        if (keep_latency) pooled.latency_s.push_back(d.latency_s[r * m + map[j]]);
      }
    }
    std::move(d.ids.begin(), d.ids.end(), std::back_inserter(pooled.ids));
    std::move(d.prompts.begin(), d.prompts.end(), std::back_inserter(pooled.prompts));
    std::move(d.tasks.begin(), d.tasks.end(), std::back_inserter(pooled.tasks));
  }
  SortModelsByMeanCost(&pooled);
  return pooled;
}

Status WriteDatasetCsv(const Dataset& data, const std::string& path) {
  const size_t rows = data.rows();
  const size_t m = data.num_models();
  if (data.ids.size() != rows || data.tasks.size() != rows || data.score.size() != rows * m ||
      data.cost.size() != rows * m ||
      (!data.latency_s.empty() && data.latency_s.size() != rows * m)) {
    return Status::InvalidArgument(
        path + ": inconsistent dataset: " + std::to_string(rows) + " prompts, " +
        std::to_string(data.ids.size()) + " ids, " + std::to_string(data.tasks.size()) +
        " tasks, " + std::to_string(m) + " models, " + std::to_string(data.score.size()) +
        " scores, " + std::to_string(data.cost.size()) + " costs, " +
        std::to_string(data.latency_s.size()) + " latencies");
  }
  std::string cost_prefix;
  if (data.cost_kind == kConstantKind) {
    cost_prefix = "cost_usd__";  // the shared format has no constant kind; USD reads back
  } else if (std::find(kCostKinds.begin(), kCostKinds.end(), data.cost_kind) != kCostKinds.end()) {
    cost_prefix = data.cost_kind + "__";
  } else {
    return Status::InvalidArgument(path + ": cannot write cost kind '" + data.cost_kind +
                                   "' (expected energy_j, cost_usd, latency_s or constant)");
  }
  // When the cost is the latency, a second latency_s__ column would duplicate its name.
  const bool write_latency = !data.latency_s.empty() && data.cost_kind != kLatencyKind;

  std::string out;
  out.reserve(rows * 64);
  out += "id,benchmark,prompt";
  for (const std::string& name : data.models) {
    out += ',';
    AppendCsvField("score__" + name, &out);
    out += ',';
    AppendCsvField(cost_prefix + name, &out);
    if (write_latency) {
      out += ',';
      AppendCsvField("latency_s__" + name, &out);
    }
  }
  out += '\n';
  // Shortest representation that reads back to the same double.
  auto append_number = [&out](double v) {
    char buf[32];
    const auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, ec == std::errc() ? static_cast<size_t>(ptr - buf) : 0);
  };
  for (size_t r = 0; r < rows; ++r) {
    AppendCsvField(data.ids[r], &out);
    out += ',';
    AppendCsvField(data.tasks[r], &out);
    out += ',';
    AppendCsvField(data.prompts[r], &out);
    for (size_t j = 0; j < m; ++j) {
      out += ',';
      append_number(data.Score(r, j));
      out += ',';
      append_number(data.Cost(r, j));
      if (write_latency) {
        out += ',';
        append_number(data.latency_s[r * m + j]);
      }
    }
    out += '\n';
  }

  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return Status::IoError(path + ": cannot open for writing: " + std::strerror(errno));
  }
  const bool wrote = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  const int write_errno = errno;
  if (std::fclose(f) != 0 || !wrote) {
    return Status::IoError(path + ": write failed: " + std::strerror(wrote ? errno : write_errno));
  }
  return Status::Ok();
}

}  // namespace messplus::simulator
