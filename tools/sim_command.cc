// `messplus sim`: replays captured data through the router core and compares it with the
// baselines on the same rows.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "simulator/dataset.h"
#include "simulator/replay.h"
#include "simulator/report.h"
#include "tools/commands.h"
#include "tools/sim_options.h"

namespace messplus::tools {
namespace {

struct SimFlags {
  RouterFlags router;
  DataFlags data;
  double alpha = 0.5;
  bool json = false;
  std::string trace;
};

std::string TracePath(const std::string& base, uint64_t seed, bool several) {
  if (!several) return base;
  std::filesystem::path p(base);
  return (p.parent_path() /
          (p.stem().string() + "." + std::to_string(seed) + p.extension().string()))
      .string();
}

std::string DataName(const std::vector<std::string>& files) {
  std::string out;
  for (const std::string& f : files) {
    out += (out.empty() ? "" : " + ") + std::filesystem::path(f).stem().string();
  }
  return out;
}

int RunSim(const SimFlags& f) {
  Result<simulator::LoadOptions> load = ToLoadOptions(f.data);
  if (!load.ok()) {
    std::fprintf(stderr, "messplus sim: %s\n", load.status().message().c_str());
    return 2;
  }
  Result<simulator::Dataset> data = simulator::LoadDatasets(f.data.files, *load);
  if (!data.ok()) {
    std::fprintf(stderr, "messplus sim: %s\n", data.status().message().c_str());
    return 2;
  }
  if (!(f.alpha >= 0.0 && f.alpha <= 1.0)) {
    std::fprintf(stderr, "messplus sim: --alpha must be in [0, 1]\n");
    return 2;
  }

  Result<simulator::ReplayOptions> first =
      ToReplayOptions(f.router, f.alpha, f.router.seeds.front());
  if (!first.ok()) {
    std::fprintf(stderr, "messplus sim: %s\n", first.status().message().c_str());
    return 2;
  }
  const simulator::FeatureTable features =
      simulator::HashRows(*data, first->router.hashing, first->use_task);
  std::vector<simulator::ReplayResult> results;
  for (uint64_t seed : f.router.seeds) {
    simulator::ReplayOptions options = *ToReplayOptions(f.router, f.alpha, seed);
    options.trace = !f.trace.empty();
    Result<simulator::ReplayResult> r = simulator::RunReplay(*data, options, &features);
    if (!r.ok()) {
      std::fprintf(stderr, "messplus sim: %s\n", r.status().message().c_str());
      return 2;
    }
    if (!f.trace.empty()) {
      const std::string path = TracePath(f.trace, seed, f.router.seeds.size() > 1);
      std::ofstream out(path, std::ios::binary);
      out << simulator::FormatTraceCsv(*r);
      if (!out) {
        std::fprintf(stderr, "messplus sim: cannot write trace %s\n", path.c_str());
        return 2;
      }
    }
    results.push_back(std::move(*r));
  }

  if (f.json) {
    const nlohmann::json j =
        results.size() == 1 ? simulator::ToJson(results[0]) : simulator::ToJson(results);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (const simulator::ReplayResult& r : results) {
    const std::string title = fmt::format(
        "messplus sim: {} ({} requests, {} models, cost in {})\n"
        "policy {}, alpha {}, V {}, c {}, seed {}, feedback rate {}, delay {}{}",
        DataName(f.data.files), r.requests, r.models.size(), data->cost_kind, r.policy, f.alpha,
        f.router.v, f.router.c, r.seed, f.router.feedback_rate, f.router.feedback_delay,
        f.router.no_task ? ", task not given" : "");
    std::printf("%s\n", simulator::FormatTable(r, title).c_str());
  }
  if (results.size() > 1) std::printf("%s", simulator::FormatSeedSummary(results).c_str());
  return 0;
}

}  // namespace

void RegisterSim(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<SimFlags>();
  CLI::App* cmd = app.add_subcommand(
      "sim", "Replay captured per-prompt outcomes and costs through the router, offline");
  AddDataFlags(cmd, &flags->data);
  AddRouterFlags(cmd, &flags->router);
  cmd->add_option("--alpha", flags->alpha, "SLA: required share of satisfied requests")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "print a JSON object instead of the table");
  cmd->add_option("--trace", flags->trace, "write a per-request CSV trace to this file");
  cmd->callback([flags, exit_code] { *exit_code = RunSim(*flags); });
}

}  // namespace messplus::tools
