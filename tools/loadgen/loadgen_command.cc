// messplus loadgen: the load-test harness (see tools/loadgen/loadgen.h for the engine and
// tools/loadgen/report.h for what it reports).
//
//   messplus loadgen --endpoint ipc:///tmp/messplus/frontend --rate 20000 --duration 10
//   messplus loadgen --config config/ipc.yaml --concurrency 64 --requests 100000 --json
//   messplus loadgen --config config/embedded.yaml --embedded --echo-workers 1 ...
//
// With --embedded the pipeline's stages (and --echo-workers echo workers per model) run as
// threads of this process over the config's endpoints (inproc:// in config/embedded.yaml),
// as `messplus up` runs them; the generator waits until they are ready, runs, then stops them.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/stop.h"
#include "simulator/dataset.h"
#include "stages/stages.h"
#include "tools/commands.h"
#include "tools/loadgen/loadgen.h"
#include "tools/worker_threads.h"

namespace messplus::tools {
namespace {

using pipeline::Millis;

struct LoadgenFlags {
  std::string config;
  std::string endpoint;
  double rate = 0.0;
  uint64_t concurrency = 0;
  double duration_s = 0.0;
  uint64_t requests = 0;
  std::string warmup = "0";
  double deadline_s = 0.0;
  uint64_t seed = 1;
  std::string data;
  double prompt_length = 200.0;
  std::string prompt_dist = "fixed";
  std::string task;
  std::vector<std::string> tenants;
  double feedback_rate = 0.0;
  int64_t feedback_delay_ms = 0;
  double satisfaction_p = 0.5;
  int64_t timeout_ms = 10000;
  int64_t ack_timeout_ms = 10000;
  uint64_t max_in_flight = 65536;
  int digits = 3;
  bool json = false;
  bool no_progress = false;
  bool embedded = false;
  int echo_workers = 1;
  int route_replicas = 1;
  int64_t ready_timeout_ms = 30000;
};

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "messplus loadgen: %s\n", message.c_str());
  return code;
}

int RunLoadgen(const LoadgenFlags& f) {
  std::optional<pipeline::Config> config;
  if (!f.config.empty()) {
    Result<pipeline::Config> c = pipeline::LoadConfig(f.config);
    if (!c.ok()) return Fail(2, c.status().message());
    config = std::move(*c);
  }
  if (f.embedded && !config) return Fail(2, "--embedded needs --config");
  std::string endpoint = f.endpoint;
  if (endpoint.empty() && config) endpoint = config->endpoints.frontend;
  if (endpoint.empty()) return Fail(2, "give --endpoint or --config (ingest's frontend)");
  if (!pipeline::ValidEndpoint(endpoint)) return Fail(2, "bad endpoint '" + endpoint + "'");

  Result<loadgen::Warmup> warmup = loadgen::ParseWarmup(f.warmup);
  if (!warmup.ok()) return Fail(2, warmup.status().message());
  Result<std::vector<loadgen::TenantShare>> tenants = loadgen::ParseTenantShares(f.tenants);
  if (!tenants.ok()) return Fail(2, tenants.status().message());

  // Prompts: a data file, or generated.
  simulator::Dataset data;
  Result<loadgen::PromptSource> prompts = Status::Internal("unset");
  std::string source;
  if (!f.data.empty()) {
    Result<simulator::Dataset> d = simulator::LoadDataset(f.data, simulator::LoadOptions());
    if (!d.ok()) return Fail(2, d.status().message());
    data = std::move(*d);
    prompts = loadgen::PromptSource::FromDataset(data, f.seed);
    source = f.data;
  } else {
    Result<loadgen::LengthDistribution> dist = loadgen::ParseLengthDistribution(f.prompt_dist);
    if (!dist.ok()) return Fail(2, dist.status().message());
    loadgen::GeneratedPromptOptions g;
    g.mean_chars = f.prompt_length;
    g.distribution = *dist;
    g.task = f.task;
    prompts = loadgen::PromptSource::Generated(g, f.seed);
    source = fmt::format("generated ({}, mean {})", f.prompt_dist, f.prompt_length);
  }
  if (!prompts.ok()) return Fail(2, prompts.status().message());

  Result<std::unique_ptr<pipeline::StopSignal>> stop = pipeline::StopSignal::Create();
  if (!stop.ok()) return Fail(1, stop.status().message());
  pipeline::SignalScope signals(stop->get());

  loadgen::LoadOptions o;
  o.endpoint = endpoint;
  o.rate = f.rate;
  o.concurrency = f.concurrency;
  o.duration_s = f.duration_s;
  o.requests = f.requests;
  o.warmup = *warmup;
  o.deadline_s = f.deadline_s;
  o.seed = f.seed;
  o.prompts = &*prompts;
  o.tenants = loadgen::TenantMix(std::move(*tenants), f.seed);
  o.feedback_rate = f.feedback_rate;
  o.feedback_delay = Millis(f.feedback_delay_ms);
  o.satisfaction_p = f.satisfaction_p;
  o.request_timeout = Millis(f.timeout_ms);
  o.ack_timeout = Millis(f.ack_timeout_ms);
  o.max_in_flight = f.max_in_flight;
  o.histogram_digits = f.digits;
  o.progress = !f.no_progress && ::isatty(STDERR_FILENO) == 1;
  o.stop = stop->get();
  if (config) o.max_text_bytes = config->max_text_bytes;

  zmq::context_t zmq(1);
  // The embedded pipeline: every stage and the echo workers as threads of this process.
  // A second stop signal ends them after the run (the first one is Ctrl-C for the run).
  std::unique_ptr<pipeline::StopSignal> pipeline_stop;
  std::unique_ptr<stages::EmbeddedPipeline> pipe;
  std::unique_ptr<WorkerThreads> workers;
  if (f.embedded) {
    Result<std::unique_ptr<pipeline::StopSignal>> ps = pipeline::StopSignal::Create();
    if (!ps.ok()) return Fail(1, ps.status().message());
    pipeline_stop = std::move(*ps);
    pipeline::Logger log = pipeline::MakeLogger("loadgen", config->log_level);
    Result<std::unique_ptr<stages::EmbeddedPipeline>> p =
        stages::EmbeddedPipeline::Start(*config, zmq, log, *pipeline_stop, f.route_replicas);
    if (!p.ok()) return Fail(2, p.status().message());
    pipe = std::move(*p);
    workers = std::make_unique<WorkerThreads>(zmq, *config, f.echo_workers, *pipeline_stop, log);
    if (!pipe->WaitReady(Millis(f.ready_timeout_ms))) {
      pipeline_stop->Request();
      workers->Join();
      (void)pipe->Join();
      return Fail(
          1, fmt::format("the embedded pipeline was not ready within {} ms", f.ready_timeout_ms));
    }
  }

  Result<loadgen::LoadReport> r = loadgen::RunLoad(zmq, o);
  if (pipe) {
    pipeline_stop->Request();
    workers->Join();
    if (Status st = pipe->Join(); !st.ok()) std::fprintf(stderr, "%s\n", st.message().c_str());
  }
  if (!r.ok()) {
    return Fail(r.status().code() == StatusCode::kInvalidArgument ? 2 : 1, r.status().message());
  }
  r->prompt_source = source;
  if (f.json) {
    nlohmann::json j = loadgen::ToJson(*r);
    j["embedded"] = f.embedded;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s", loadgen::FormatTable(*r).c_str());
  }
  return r->ok() ? 0 : 1;
}

}  // namespace

void RegisterLoadgen(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<LoadgenFlags>();
  CLI::App* cmd =
      app.add_subcommand("loadgen",
                         "Load-test a running pipeline: open loop (Poisson --rate) or closed loop "
                         "(--concurrency), latency percentiles, throughput, errors by kind");
  cmd->add_option("--config", f->config,
                  "pipeline configuration (YAML): the frontend endpoint, limits; needed by "
                  "--embedded");
  cmd->add_option("--endpoint", f->endpoint, "ingest's frontend (default: the config's)");
  cmd->add_option("--rate", f->rate, "open loop: Poisson arrivals at this many requests/s")
      ->check(CLI::Range(1e-3, 1e8));
  cmd->add_option("--concurrency", f->concurrency, "closed loop: requests kept in flight")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  cmd->add_option("--duration", f->duration_s, "measured seconds (after the warm-up)")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--requests", f->requests, "measured requests (after the warm-up)");
  cmd->add_option("--warmup", f->warmup,
                  "excluded from the figures: a number of requests (500) or a time (2s, 300ms)")
      ->capture_default_str();
  cmd->add_option("--deadline-s", f->deadline_s,
                  "absolute bound on the run (default: warm-up + duration + 60 s, or 600 s "
                  "with --requests only, plus twice the timeout)");
  cmd->add_option("--seed", f->seed, "arrivals, prompt order, tenants, feedback draws")
      ->capture_default_str();
  cmd->add_option("--data", f->data,
                  "prompts (and recorded satisfaction) from a CSV file in the ../shared/data "
                  "format");
  cmd->add_option("--prompt-length", f->prompt_length, "generated prompts: mean length in chars")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--prompt-length-dist", f->prompt_dist,
                  "generated prompts: fixed, uniform (mean/2 .. 3 mean/2) or exponential")
      ->capture_default_str();
  cmd->add_option("--task", f->task, "generated prompts: task tag of every request");
  cmd->add_option("--tenant", f->tenants,
                  "tenant mix, repeatable: --tenant gold=0.2 --tenant default=0.8 (default: "
                  "the pipeline's default tenant)");
  cmd->add_option("--feedback-rate", f->feedback_rate,
                  "share of answered requests that get feedback")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--feedback-delay-ms", f->feedback_delay_ms,
                  "feedback goes this long after the reply")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--satisfaction-p", f->satisfaction_p,
                  "without recorded satisfaction: P(satisfied) of the seeded Bernoulli")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", f->timeout_ms,
                  "a request without a reply by then is a client_timeout error")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--ack-timeout-ms", f->ack_timeout_ms,
                  "after the last feedback, wait this long for acknowledgements")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--max-in-flight", f->max_in_flight,
                  "open loop: requests in flight at most (the sender waits beyond it, and the "
                  "wait counts in the latency)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--digits", f->digits, "latency histogram significant digits (1..4)")
      ->check(CLI::Range(1, 4))
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "print one JSON object (keys: tools/loadgen/report.h)");
  cmd->add_flag("--no-progress", f->no_progress, "no live progress line on a terminal");
  cmd->add_flag("--embedded", f->embedded,
                "run the pipeline's stages as threads of this process (like `messplus up`)");
  cmd->add_option("--echo-workers", f->echo_workers, "--embedded: echo workers per model")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--route-replicas", f->route_replicas, "--embedded: route replicas")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--ready-timeout-ms", f->ready_timeout_ms,
                  "--embedded: wait this long for the pipeline to be ready")
      ->capture_default_str();
  cmd->callback([f, exit_code] { *exit_code = RunLoadgen(*f); });
}

}  // namespace messplus::tools
