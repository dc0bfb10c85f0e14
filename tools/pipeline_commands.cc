// The pipeline's commands:
//   messplus ingest|embed|route|dispatch|feedback --config FILE   one stage as a process
//   messplus up --config FILE [--replay-data FILE ...]              every stage as threads
//                             [--echo-workers N]                    (and echo workers)
//   messplus replay --config FILE --data FILE ...                   drive a running pipeline
//   messplus worker replay|echo ...                                 model workers
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/stop.h"
#include "pipeline/worker.h"
#include "simulator/dataset.h"
#include "simulator/report.h"
#include "stages/stages.h"
#include "tools/commands.h"
#include "tools/embedded_run.h"
#include "tools/replay_backend.h"
#include "tools/replay_driver.h"
#include "tools/worker_threads.h"

namespace messplus::tools {
namespace {

using pipeline::Config;
using pipeline::Millis;

struct CommonFlags {
  std::string config;
  std::string log_level;  // "": the config's
};

void AddCommonFlags(CLI::App* cmd, CommonFlags* f, bool config_required = true) {
  CLI::Option* c = cmd->add_option("--config", f->config, "pipeline configuration (YAML)");
  if (config_required) c->required();
  cmd->add_option("--log-level", f->log_level,
                  "trace, debug, info, warn, error, critical, off (default: the config's)")
      ->check(CLI::IsMember({"", "trace", "debug", "info", "warn", "error", "critical", "off"}));
}

Result<Config> Load(const CommonFlags& f) {
  Result<Config> c = pipeline::LoadConfig(f.config);
  if (c.ok() && !f.log_level.empty()) c->log_level = f.log_level;
  return c;
}

std::string DataName(const std::string& file) {
  return std::filesystem::path(file).stem().string();
}

// ---- one stage as a process --------------------------------------------------------------

struct StageFlags {
  CommonFlags common;
  int replica = 0;
  int metrics_port = -1;
};

int RunStageCommand(const std::string& name, const StageFlags& f) {
  Result<Config> config = Load(f.common);
  if (!config.ok()) {
    std::fprintf(stderr, "messplus %s: %s\n", name.c_str(), config.status().message().c_str());
    return 2;
  }
  pipeline::Logger log = pipeline::MakeLogger(name, config->log_level);
  Result<std::unique_ptr<pipeline::StopSignal>> stop = pipeline::StopSignal::Create();
  if (!stop.ok()) {
    std::fprintf(stderr, "messplus %s: %s\n", name.c_str(), stop.status().message().c_str());
    return 1;
  }
  pipeline::SignalScope signals(stop->get());
  zmq::context_t zmq(1);
  stages::HostOptions options;
  options.replica = f.replica;
  options.metrics_port = f.metrics_port;
  if (f.replica > 0 && f.metrics_port < 0) {
    // The config has one port per stage; replica 0 has it.
    options.metrics_port = 0;
    log->info("route replica {}: no metrics endpoint (give --metrics-port)", f.replica);
  }
  Result<std::unique_ptr<stages::StageHost>> host =
      stages::StageHost::Create(name, *config, zmq, log, options);
  if (!host.ok()) {
    log->error("{}", host.status().message());
    return 2;
  }
  Status st = (*host)->Run(**stop);
  if (!st.ok()) {
    log->error("{}", st.message());
    return 1;
  }
  return 0;
}

void RegisterStage(CLI::App& app, const std::string& name, const std::string& help,
                   int* exit_code) {
  auto flags = std::make_shared<StageFlags>();
  CLI::App* cmd = app.add_subcommand(name, help);
  AddCommonFlags(cmd, &flags->common);
  cmd->add_option("--metrics-port", flags->metrics_port,
                  "Prometheus port on 127.0.0.1 (default: the config's; 0: off)");
  if (name == "route") {
    cmd->add_option("--replica", flags->replica,
                    "replica number: 0 uses the configured seed, k > 0 mixes k into it")
        ->check(CLI::Range(0, 1000));
  }
  cmd->callback([name, flags, exit_code] { *exit_code = RunStageCommand(name, *flags); });
}

// ---- replay options shared by `replay` and `up --replay-data` -------------------------------

struct ReplayFlags {
  double feedback_rate = 1.0;
  uint64_t feedback_delay = 0;
  int64_t seed = -1;  // -1: the config's
  size_t in_flight = 8;
  size_t limit = 0;
  std::string tenant;
  int64_t request_timeout_ms = 120000;
  int64_t connect_timeout_ms = 10000;
  bool json = false;
  bool lockstep = false;
};

void AddReplayFlags(CLI::App* cmd, ReplayFlags* f) {
  cmd->add_option("--feedback-rate", f->feedback_rate,
                  "share of requests whose recorded satisfaction is sent as feedback")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--feedback-delay", f->feedback_delay,
                  "feedback for request j goes once request j + N was sent")
      ->capture_default_str();
  cmd->add_option("--seed", f->seed,
                  "stream order and feedback draws (default: the config's seed)");
  cmd->add_option("--in-flight", f->in_flight, "requests in flight at most")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--limit", f->limit, "replay at most this many requests (0: all)");
  cmd->add_option("--tenant", f->tenant, "tenant of the requests (default: the default tenant)");
  cmd->add_option("--request-timeout-ms", f->request_timeout_ms,
                  "a request without a reply by then counts as failed")
      ->capture_default_str();
  cmd->add_option("--connect-timeout-ms", f->connect_timeout_ms,
                  "give up when ingest answers nothing at all by then")
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "print a JSON object instead of the table");
  cmd->add_flag("--lockstep", f->lockstep,
                "one request at a time, the next only after the feedback acks: the simulator's "
                "timing (slow; for comparing with `sim`)");
}

PipelineReplayOptions ToOptions(const ReplayFlags& f, const Config& config) {
  PipelineReplayOptions o;
  o.feedback_rate = f.feedback_rate;
  o.feedback_delay = f.feedback_delay;
  o.seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : config.router.seed;
  o.in_flight = f.in_flight;
  o.lockstep = f.lockstep;
  o.limit = f.limit;
  o.tenant = f.tenant;
  o.request_timeout = Millis(f.request_timeout_ms);
  o.connect_timeout = Millis(f.connect_timeout_ms);
  return o;
}

Result<simulator::Dataset> LoadData(const std::string& file) {
  return simulator::LoadDatasets({file}, simulator::LoadOptions());
}

void PrintReport(const char* command, const std::string& data_file, const simulator::Dataset& data,
                 const Config& config, const PipelineReplayOptions& options,
                 const simulator::ReplayResult& r, const PipelineReplayStats& stats, bool json) {
  if (json) {
    nlohmann::json j = simulator::ToJson(r);
    j["pipeline"] = {{"answered", stats.answered},
                     {"errors", stats.errors},
                     {"error_codes", stats.error_codes},
                     {"retried", stats.retried},
                     {"feedback_sent", stats.feedback_sent},
                     {"feedback_acked", stats.feedback_acked},
                     {"feedback_refused", stats.feedback_refused},
                     {"feedback_unacked", stats.feedback_unacked},
                     {"ack_codes", stats.ack_codes},
                     {"seconds", stats.seconds},
                     {"in_flight", options.in_flight},
                     {"lockstep", options.lockstep},
                     {"feedback_rate", options.feedback_rate},
                     {"feedback_delay", options.feedback_delay}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  const std::string title = fmt::format(
      "messplus {}: {} ({} requests, {} models, cost in {}) through the pipeline\n"
      "policy {}, alpha {}, V {}, c {}, seed {}, feedback rate {}, delay {}, {}",
      command, DataName(data_file), r.requests, r.models.size(), data.cost_kind, r.policy, r.alpha,
      config.router.v, config.router.c, r.seed, options.feedback_rate, options.feedback_delay,
      options.lockstep ? std::string("lockstep") : fmt::format("in flight {}", options.in_flight));
  std::printf("%s", simulator::FormatTable(r, title).c_str());
  std::printf(
      "  pipeline: %zu answered, %zu failed; feedback %zu sent, %zu acknowledged, %zu refused, "
      "%zu unacknowledged; %.1f s (%.0f requests/s)\n",
      stats.answered, stats.errors, stats.feedback_sent, stats.feedback_acked,
      stats.feedback_refused, stats.feedback_unacked, stats.seconds,
      stats.seconds > 0 ? static_cast<double>(r.requests) / stats.seconds : 0.0);
}

// ---- messplus replay ----------------------------------------------------------------------

struct ReplayCommandFlags {
  CommonFlags common;
  std::string data;
  ReplayFlags replay;
};

int RunReplayCommand(const ReplayCommandFlags& f) {
  Result<Config> config = Load(f.common);
  if (!config.ok()) {
    std::fprintf(stderr, "messplus replay: %s\n", config.status().message().c_str());
    return 2;
  }
  Result<simulator::Dataset> data = LoadData(f.data);
  if (!data.ok()) {
    std::fprintf(stderr, "messplus replay: %s\n", data.status().message().c_str());
    return 2;
  }
  pipeline::Logger log = pipeline::MakeLogger("replay", config->log_level);
  zmq::context_t zmq(1);
  const PipelineReplayOptions options = ToOptions(f.replay, *config);
  PipelineReplayStats stats;
  Result<simulator::ReplayResult> r = RunPipelineReplay(*config, zmq, *data, options, &stats, log);
  if (!r.ok()) {
    std::fprintf(stderr, "messplus replay: %s\n", r.status().message().c_str());
    return r.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  PrintReport("replay", f.data, *data, *config, options, *r, stats, f.replay.json);
  return stats.errors == 0 ? 0 : 1;
}

// ---- messplus up --------------------------------------------------------------------------

struct UpFlags {
  CommonFlags common;
  std::string replay_data;
  ReplayFlags replay;
  int route_replicas = 1;
  int workers_per_model = 1;
  double latency_scale = 0.0;
  int echo_workers = 0;
};

int RunUp(const UpFlags& f) {
  Result<Config> config = Load(f.common);
  if (!config.ok()) {
    std::fprintf(stderr, "messplus up: %s\n", config.status().message().c_str());
    return 2;
  }
  if (!f.replay_data.empty()) {
    Result<simulator::Dataset> data = LoadData(f.replay_data);
    if (!data.ok()) {
      std::fprintf(stderr, "messplus up: %s\n", data.status().message().c_str());
      return 2;
    }
    EmbeddedRun run;
    run.replay = ToOptions(f.replay, *config);
    run.route_replicas = f.route_replicas;
    run.workers_per_model = f.workers_per_model;
    run.latency_scale = f.latency_scale;
    run.json = f.replay.json;
    return RunEmbeddedReplay(*config, *data, f.replay_data, run, "up");
  }
  pipeline::Logger log = pipeline::MakeLogger("up", config->log_level);
  Result<std::unique_ptr<pipeline::StopSignal>> stop = pipeline::StopSignal::Create();
  if (!stop.ok()) {
    std::fprintf(stderr, "messplus up: %s\n", stop.status().message().c_str());
    return 1;
  }
  pipeline::SignalScope signals(stop->get());
  zmq::context_t zmq(1);  // one context for every stage, worker and client of the process
  Result<std::unique_ptr<stages::EmbeddedPipeline>> pipe =
      stages::EmbeddedPipeline::Start(*config, zmq, log, **stop, f.route_replicas);
  if (!pipe.ok()) {
    log->error("{}", pipe.status().message());
    return 2;
  }
  std::unique_ptr<WorkerThreads> echo;
  if (f.echo_workers > 0) {
    echo = std::make_unique<WorkerThreads>(zmq, *config, f.echo_workers, **stop, log);
    // A line on stderr whatever the log level: scripts and tests wait for it.
    if ((*pipe)->WaitReady(Millis(30000))) {
      std::fprintf(stderr, "messplus up: ready (frontend %s, %zu echo workers)\n",
                   config->endpoints.frontend.c_str(), echo->size());
    } else {
      log->warn("up: not ready after 30 s (route not synced or a model without a worker)");
    }
  }
  log->info("up: every stage running; Ctrl-C stops");
  Status st = (*pipe)->Join();
  if (echo) echo->Join();
  return st.ok() ? 0 : 1;
}

// ---- messplus worker ----------------------------------------------------------------------

struct WorkerFlags {
  CommonFlags common;
  std::string data;
  std::string model;
  std::string endpoint;
  std::string name;
  double latency_scale = 0.0;
};

int RunWorker(const WorkerFlags& f, bool replay) {
  const char* cmd = replay ? "messplus worker replay" : "messplus worker echo";
  Config config;
  if (!f.common.config.empty()) {
    Result<Config> c = Load(f.common);
    if (!c.ok()) {
      std::fprintf(stderr, "%s: %s\n", cmd, c.status().message().c_str());
      return 2;
    }
    config = std::move(*c);
  } else if (f.endpoint.empty()) {
    std::fprintf(stderr, "%s: give --config or --endpoint\n", cmd);
    return 2;
  }
  if (!f.common.log_level.empty()) config.log_level = f.common.log_level;
  Result<simulator::Dataset> data = simulator::Dataset();
  if (replay) {
    data = LoadData(f.data);
    if (!data.ok()) {
      std::fprintf(stderr, "%s: %s\n", cmd, data.status().message().c_str());
      return 2;
    }
  }
  if (f.common.config.empty()) {
    // No config: the zoo is the data's (replay) or the one model (echo), defaults elsewhere.
    config.router.models.clear();
    if (replay) {
      for (const std::string& m : data->models) config.router.models.push_back({m});
    } else {
      config.router.models.push_back({f.model});
    }
  }
  const std::string endpoint = f.endpoint.empty() ? config.endpoints.workers : f.endpoint;
  pipeline::Logger log = pipeline::MakeLogger("worker", config.log_level);
  std::unique_ptr<pipeline::ModelBackend> backend;
  if (replay) {
    Result<std::unique_ptr<ReplayBackend>> b =
        ReplayBackend::Create(*data, f.model, f.latency_scale);
    if (!b.ok()) {
      std::fprintf(stderr, "%s: %s\n", cmd, b.status().message().c_str());
      return 2;
    }
    backend = std::move(*b);
  } else {
    backend = std::make_unique<pipeline::EchoBackend>();
  }
  Result<std::unique_ptr<pipeline::StopSignal>> stop = pipeline::StopSignal::Create();
  if (!stop.ok()) return 1;
  pipeline::SignalScope signals(stop->get());
  zmq::context_t zmq(1);
  const std::string name = f.name.empty() ? fmt::format("{}@{}", f.model, getpid()) : f.name;
  pipeline::ModelWorker worker(zmq, config, endpoint, f.model, name, *backend, log);
  log->info("worker {} serving {} at {}", name, f.model, endpoint);
  Status st = worker.Run(**stop);
  if (!st.ok()) {
    log->error("{}", st.message());
    return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  log->info("worker {}: {} calls answered, {} reconnects", name, worker.counters().calls,
            worker.counters().reconnects);
  return 0;
}

}  // namespace

int ReplayThroughEmbedded(const pipeline::Config& config, zmq::context_t& zmq,
                          stages::EmbeddedPipeline& pipe, pipeline::StopSignal& stop,
                          const simulator::Dataset& data, const std::string& data_name,
                          const EmbeddedRun& run, const pipeline::Logger& log,
                          const char* command) {
  // Replay workers for every model, then the replay client on this thread.
  std::vector<std::unique_ptr<ReplayBackend>> backends;
  std::vector<std::unique_ptr<pipeline::ModelWorker>> workers;
  std::vector<std::thread> threads;
  int exit_code = 0;
  for (const std::string& model : config.ModelNames()) {
    Result<std::unique_ptr<ReplayBackend>> b =
        ReplayBackend::Create(data, model, run.latency_scale);
    if (!b.ok()) {
      log->error("{}", b.status().message());
      exit_code = 2;
      break;
    }
    backends.push_back(std::move(*b));
    for (int k = 0; k < run.workers_per_model; ++k) {
      workers.push_back(std::make_unique<pipeline::ModelWorker>(
          zmq, config, config.endpoints.workers, model, fmt::format("{}#{}", model, k),
          *backends.back(), pipeline::ChildLogger(log, "worker")));
    }
  }
  // The workers stop with the pipeline; a local signal stops them if the replay ends first.
  for (auto& w : workers) {
    threads.emplace_back([&w, &stop] { (void)w->Run(stop); });
  }
  if (exit_code == 0 && !pipe.WaitReady(Millis(10000))) {
    log->error("{}: the pipeline did not become ready (route synced, a worker per model) in 10 s",
               command);
    exit_code = 1;
  }
  if (exit_code == 0) {
    PipelineReplayStats stats;
    Result<simulator::ReplayResult> r =
        RunPipelineReplay(config, zmq, data, run.replay, &stats, log);
    if (!r.ok()) {
      log->error("{}", r.status().message());
      exit_code = r.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    } else {
      PrintReport(command, data_name, data, config, run.replay, *r, stats, run.json);
      exit_code = stats.errors == 0 ? 0 : 1;
    }
  }
  stop.Request();
  for (std::thread& t : threads) t.join();
  return exit_code;
}

int RunEmbeddedReplay(const pipeline::Config& config, const simulator::Dataset& data,
                      const std::string& data_name, const EmbeddedRun& run, const char* command) {
  pipeline::Logger log = pipeline::MakeLogger(command, config.log_level);
  Result<std::unique_ptr<pipeline::StopSignal>> stop = pipeline::StopSignal::Create();
  if (!stop.ok()) {
    std::fprintf(stderr, "messplus %s: %s\n", command, stop.status().message().c_str());
    return 1;
  }
  pipeline::SignalScope signals(stop->get());
  zmq::context_t zmq(1);
  Result<std::unique_ptr<stages::EmbeddedPipeline>> pipe =
      stages::EmbeddedPipeline::Start(config, zmq, log, **stop, run.route_replicas);
  if (!pipe.ok()) {
    log->error("{}", pipe.status().message());
    return 2;
  }
  const int exit_code =
      ReplayThroughEmbedded(config, zmq, **pipe, **stop, data, data_name, run, log, command);
  (*stop)->Request();
  Status st = (*pipe)->Join();
  if (!st.ok()) {
    log->error("{}", st.message());
    return exit_code == 0 ? 1 : exit_code;
  }
  return exit_code;
}

void RegisterPipeline(CLI::App& app, int* exit_code) {
  RegisterStage(app, "ingest", "Run the ingest stage (clients' front door) as a process",
                exit_code);
  RegisterStage(app, "embed", "Run the embed stage (text -> features) as a process", exit_code);
  RegisterStage(app, "route", "Run a route replica (MESS+ decisions) as a process", exit_code);
  RegisterStage(app, "dispatch", "Run the dispatch stage (model workers) as a process", exit_code);
  RegisterStage(app, "feedback", "Run the feedback collector (learning state) as a process",
                exit_code);

  {
    auto flags = std::make_shared<ReplayCommandFlags>();
    CLI::App* cmd = app.add_subcommand(
        "replay", "Drive a running pipeline with captured data and report like `sim`");
    AddCommonFlags(cmd, &flags->common);
    cmd->add_option("--data", flags->data, "CSV file in the ../shared/data format")->required();
    AddReplayFlags(cmd, &flags->replay);
    cmd->callback([flags, exit_code] { *exit_code = RunReplayCommand(*flags); });
  }
  {
    auto flags = std::make_shared<UpFlags>();
    CLI::App* cmd = app.add_subcommand(
        "up",
        "Run every stage as threads of this process (inproc://); with --replay-data, "
        "also replay workers and a replay client, then print the report and stop");
    AddCommonFlags(cmd, &flags->common);
    cmd->add_option("--replay-data", flags->replay_data, "CSV file to replay through the pipeline");
    AddReplayFlags(cmd, &flags->replay);
    cmd->add_option("--route-replicas", flags->route_replicas, "route replicas")
        ->check(CLI::Range(1, 16))
        ->capture_default_str();
    cmd->add_option("--workers-per-model", flags->workers_per_model, "replay workers per model")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_option("--latency-scale", flags->latency_scale,
                    "replay workers sleep the recorded latency times this (0: no sleep)")
        ->capture_default_str();
    cmd->add_option("--echo-workers", flags->echo_workers,
                    "without --replay-data: run this many echo workers per model as threads "
                    "(text back, cost 1) and print \"messplus up: ready\" on stderr once the "
                    "pipeline is ready")
        ->check(CLI::Range(0, 64))
        ->capture_default_str();
    cmd->callback([flags, exit_code] { *exit_code = RunUp(*flags); });
  }
  {
    CLI::App* worker = app.add_subcommand("worker", "Run a model worker");
    worker->require_subcommand(1);
    auto replay = std::make_shared<WorkerFlags>();
    CLI::App* r = worker->add_subcommand("replay", "Answer model calls from captured data");
    AddCommonFlags(r, &replay->common, false);
    r->add_option("--data", replay->data, "CSV file in the ../shared/data format")->required();
    r->add_option("--model", replay->model, "the model this worker serves")->required();
    r->add_option("--endpoint", replay->endpoint, "dispatch's workers endpoint (default: config)");
    r->add_option("--latency-scale", replay->latency_scale,
                  "sleep the recorded latency times this (0: no sleep)")
        ->capture_default_str();
    r->add_option("--name", replay->name, "worker name for logs");
    r->callback([replay, exit_code] { *exit_code = RunWorker(*replay, true); });

    auto echo = std::make_shared<WorkerFlags>();
    CLI::App* e = worker->add_subcommand("echo", "Echo the text back with cost 1 (plumbing tests)");
    AddCommonFlags(e, &echo->common, false);
    e->add_option("--model", echo->model, "the model this worker serves")->required();
    e->add_option("--endpoint", echo->endpoint, "dispatch's workers endpoint (default: config)");
    e->add_option("--name", echo->name, "worker name for logs");
    e->callback([echo, exit_code] { *exit_code = RunWorker(*echo, false); });
  }
}

}  // namespace messplus::tools
