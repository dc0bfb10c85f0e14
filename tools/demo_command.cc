// `messplus demo`: what a new user runs first. Needs nothing beside the repository: it
// generates the synthetic zoo, replays it through the router, and prints the result against
// the baselines.
#include <algorithm>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "router/policy.h"
#include "simulator/replay.h"
#include "simulator/report.h"
#include "simulator/synthetic.h"
#include "pipeline/config.h"
#include "tools/commands.h"
#include "tools/embedded_run.h"

namespace messplus::tools {
namespace {

struct DemoFlags {
  simulator::SyntheticOptions zoo;
  double alpha = 0.80;
  uint64_t seed = 42;
  bool offline_only = false;
  size_t live_requests = 3000;
};

// The embedded pipeline's configuration for the synthetic zoo: every stage a thread of this
// process over inproc://, the default policy.
std::string LiveConfigYaml(const simulator::Dataset& data, double alpha, uint64_t seed) {
  std::string yaml = "models:\n";
  for (const std::string& m : data.models) yaml += "  - name: " + m + "\n";
  yaml += fmt::format("tenants:\n  - name: default\n    alpha: {}\n", alpha);
  yaml += fmt::format("policy: adaptive\nseed: {}\nlog_level: error\n", seed);
  yaml +=
      "endpoints:\n"
      "  frontend: inproc://demo-frontend\n"
      "  requests: inproc://demo-requests\n"
      "  features: inproc://demo-features\n"
      "  decisions: inproc://demo-decisions\n"
      "  workers: inproc://demo-workers\n"
      "  replies: inproc://demo-replies\n"
      "  feedback: inproc://demo-feedback\n"
      "  updates: inproc://demo-updates\n"
      "  snapshots: inproc://demo-snapshots\n";
  return yaml;
}

int RunDemo(const DemoFlags& f) {
  Result<simulator::Dataset> data = simulator::GenerateSyntheticZoo(f.zoo);
  if (!data.ok()) {
    std::fprintf(stderr, "messplus demo: %s\n", data.status().message().c_str());
    return 2;
  }
  std::printf(
      "messplus demo: a SYNTHETIC zoo of %zu models (%s ... %s) answering %zu generated prompts\n"
      "on %d topics. Each prompt's words carry its topic and difficulty; bigger models are\n"
      "better and cost more. The router must keep the share of satisfied users at or above\n"
      "alpha = %.2f while paying as little as possible. Costs are in synthetic joules.\n\n",
      data->num_models(), data->models.front().c_str(), data->models.back().c_str(), data->rows(),
      f.zoo.num_topics, f.alpha);

  for (const std::string& policy : router::PolicyNames()) {
    simulator::ReplayOptions options;
    options.router.policy = policy;
    options.router.seed = f.seed;
    options.alpha = f.alpha;
    // V is a price: one unit of satisfaction is worth 1/V units of cost. The paper's 1e-4 is
    // for energies of hundreds of joules, as here.
    options.router.v = 1e-3;
    Result<simulator::ReplayResult> r = simulator::RunReplay(*data, options);
    if (!r.ok()) {
      std::fprintf(stderr, "messplus demo: %s\n", r.status().message().c_str());
      return 2;
    }
    std::printf("%s\n", simulator::FormatTable(*r, fmt::format("policy {}:", policy)).c_str());
  }
  if (!f.offline_only) {
    // The same zoo through the live pipeline: ingest, embed, route, dispatch and the feedback
    // collector as threads over inproc://, replay workers answering from the generated data,
    // and a client that sends the prompts and the users' satisfaction back as feedback.
    std::printf(
        "The live pipeline (embedded mode: every stage a thread over inproc://, replay\n"
        "workers answering from the generated data, 8 requests in flight, feedback for every\n"
        "answer), on the first %zu prompts:\n\n",
        std::min(f.live_requests, data->rows()));
    std::fflush(stdout);
    Result<pipeline::Config> config =
        pipeline::ParseConfig(LiveConfigYaml(*data, f.alpha, f.seed));
    if (!config.ok()) {
      std::fprintf(stderr, "messplus demo: %s\n", config.status().message().c_str());
      return 2;
    }
    EmbeddedRun run;
    run.replay.seed = f.seed;
    run.replay.limit = f.live_requests;
    run.replay.in_flight = 8;
    const int code = RunEmbeddedReplay(*config, *data, "synthetic zoo", run, "demo");
    if (code != 0) return code;
    std::printf("\n");
  }
  std::printf(
      "How to read this: 'messplus' rows are the router learning online, from nothing. The\n"
      "other rows are baselines that know every outcome in advance: always one model, the\n"
      "cheapest fixed random mix that meets alpha on average, and two oracles. The SLA is met\n"
      "when the final share of satisfied requests is at least alpha.\n"
      "Real data: messplus sim --data ../shared/data/messplus_llama3/<file>.csv --alpha 0.5\n"
      "           messplus up --config config/embedded.yaml --replay-data <the same file>\n");
  return 0;
}

}  // namespace

void RegisterDemo(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Route a synthetic zoo (generated, needs no data) and compare with the baselines");
  cmd->add_option("--alpha", flags->alpha, "SLA target")->capture_default_str();
  cmd->add_option("--seed", flags->seed, "routing seed")->capture_default_str();
  cmd->add_option("--zoo-seed", flags->zoo.seed, "seed of the synthetic zoo")
      ->capture_default_str();
  cmd->add_option("--rows", flags->zoo.rows, "number of prompts")->capture_default_str();
  cmd->add_option("--models", flags->zoo.num_models, "models in the zoo (2..11)")
      ->capture_default_str();
  cmd->add_flag("--offline", flags->offline_only, "only the offline comparison, no live pipeline");
  cmd->add_option("--live-requests", flags->live_requests,
                  "prompts sent through the live pipeline")
      ->capture_default_str();
  cmd->callback([flags, exit_code] { *exit_code = RunDemo(*flags); });
}

}  // namespace messplus::tools
