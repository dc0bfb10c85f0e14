#include "stages/stages.h"

#include <pthread.h>

#include "stages/dispatch/dispatch_stage.h"
#include "stages/embed/embed_stage.h"
#include "stages/feedback/feedback_stage.h"
#include "stages/ingest/ingest_stage.h"
#include "stages/route/route_stage.h"

namespace messplus::stages {

using pipeline::Config;
using pipeline::PortSpec;

const std::vector<std::string>& StageNames() {
  static const std::vector<std::string> kNames = {"ingest", "embed", "route", "dispatch",
                                                  "feedback"};
  return kNames;
}

StageHost::StageHost(PassKey, std::string name, const Config& config, pipeline::Logger log)
    : name_(std::move(name)), config_(config), log_(std::move(log)), zoo_(config.ModelNames()) {
  limits_ = config.MakeLimits(&zoo_);
}

StageHost::~StageHost() = default;

Result<std::unique_ptr<StageHost>> StageHost::Create(std::string_view name, const Config& config,
                                                     zmq::context_t& zmq, pipeline::Logger log,
                                                     const HostOptions& options) {
  std::vector<PortSpec> ports;
  int port = 0;
  if (name == "ingest") {
    ports = ingest::IngestStage::Ports(config);
    port = config.ingest.metrics_port;
  } else if (name == "embed") {
    ports = embed::EmbedStage::Ports(config);
    port = config.embed.metrics_port;
  } else if (name == "route") {
    ports = route::RouteStage::Ports(config);
    port = config.route.metrics_port;
  } else if (name == "dispatch") {
    ports = dispatch::DispatchStage::Ports(config);
    port = config.dispatch.metrics_port;
  } else if (name == "feedback") {
    ports = feedback::FeedbackStage::Ports(config);
    port = config.feedback.metrics_port;
  } else {
    return Status::InvalidArgument("unknown stage '" + std::string(name) +
                                   "' (known: ingest, embed, route, dispatch, feedback)");
  }
  if (options.metrics_port >= 0) port = options.metrics_port;
  std::string label(name);
  if (name == "route" && options.replica > 0) {
    // Two appends, not "-" + to_string(): g++ 12 at -O3 reports a false -Wrestrict there.
    label += '-';
    label += std::to_string(options.replica);
  }

  auto host = std::make_unique<StageHost>(PassKey(), label, config, std::move(log));
  host->metrics_ =
      pipeline::StageMetrics::Create(label, pipeline::StageRuntime::SocketNames(ports));
  host->ctx_ = std::make_unique<pipeline::StageContext>(
      pipeline::StageContext{config, host->log_, host->clock_, *host->metrics_});
  pipeline::StageContext& ctx = *host->ctx_;

  if (name == "ingest") {
    host->stage_ = std::make_unique<ingest::IngestStage>(ctx);
  } else if (name == "embed") {
    host->stage_ = std::make_unique<embed::EmbedStage>(ctx);
  } else if (name == "route") {
    Result<std::unique_ptr<route::RouteStage>> s = route::RouteStage::Create(ctx, options.replica);
    if (!s.ok()) return s.status();
    host->stage_ = std::move(*s);
  } else if (name == "dispatch") {
    host->stage_ = std::make_unique<dispatch::DispatchStage>(ctx);
  } else {
    Result<std::unique_ptr<feedback::FeedbackStage>> s = feedback::FeedbackStage::Create(ctx);
    if (!s.ok()) return s.status();
    host->stage_ = std::move(*s);
  }
  host->runtime_ =
      std::make_unique<pipeline::StageRuntime>(zmq, ctx, std::move(ports), host->limits_);
  MESSPLUS_RETURN_IF_ERROR(host->runtime_->Open());
  // Only now: a client that sees /metrics answer may connect and send at once.
  MESSPLUS_RETURN_IF_ERROR(host->metrics_->Serve(port));
  host->log_->info("{}: started{}", label,
                   port != 0 ? " (metrics on 127.0.0.1:" + std::to_string(port) + ")" : "");
  return host;
}

Status StageHost::Run(const pipeline::StopSignal& stop) { return runtime_->Run(*stage_, stop); }

Result<std::unique_ptr<EmbeddedPipeline>> EmbeddedPipeline::Start(const Config& config,
                                                                  zmq::context_t& zmq,
                                                                  pipeline::Logger log,
                                                                  const pipeline::StopSignal& stop,
                                                                  int route_replicas) {
  auto p = std::make_unique<EmbeddedPipeline>(PassKey());
  // Binding stages first keeps the log tidy; inproc:// also accepts connect-before-bind.
  for (const std::string& name : {std::string("feedback"), std::string("dispatch"),
                                  std::string("embed"), std::string("ingest")}) {
    Result<std::unique_ptr<StageHost>> h =
        StageHost::Create(name, config, zmq, pipeline::ChildLogger(log, name));
    if (!h.ok()) return h.status();
    p->hosts_.push_back(std::move(*h));
    p->replicas_.push_back(0);
  }
  for (int r = 0; r < route_replicas; ++r) {
    HostOptions options;
    options.replica = r;
    // One metrics port per stage in the config: extra replicas expose none.
    if (r > 0) options.metrics_port = 0;
    Result<std::unique_ptr<StageHost>> h =
        StageHost::Create("route", config, zmq, pipeline::ChildLogger(log, "route"), options);
    if (!h.ok()) return h.status();
    p->hosts_.push_back(std::move(*h));
    p->replicas_.push_back(r);
  }
  p->results_.resize(p->hosts_.size());
  for (size_t i = 0; i < p->hosts_.size(); ++i) {
    p->threads_.emplace_back([&stop, host = p->hosts_[i].get(), result = &p->results_[i]] {
      // "mp-<stage>" in top, perf and the profiling driver's per-thread counts (15 chars max).
      const std::string thread_name = ("mp-" + host->name()).substr(0, 15);
      pthread_setname_np(pthread_self(), thread_name.c_str());
      *result = host->Run(stop);
    });
  }
  return p;
}

Status EmbeddedPipeline::Join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  for (const Status& st : results_) {
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

EmbeddedPipeline::~EmbeddedPipeline() {
  // REQUIRES (documented): the stop signal fired; otherwise this waits for it.
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool EmbeddedPipeline::WaitReady(pipeline::Millis timeout) {
  const auto deadline = pipeline::SteadyClock::now() + timeout;
  const std::vector<std::string> zoo = hosts_.front()->config().ModelNames();
  // Bounded by the deadline: one check every 10 ms.
  while (pipeline::SteadyClock::now() < deadline) {
    bool ready = true;
    for (const auto& h : hosts_) {
      if (h->name().rfind("route", 0) == 0) {
        ready = ready && h->metrics().Value("messplus_route_synced").value_or(0.0) == 1.0;
      } else if (h->name() == "dispatch") {
        for (const std::string& m : zoo) {
          ready =
              ready &&
              h->metrics().Value("messplus_dispatch_workers", {{"model", m}}).value_or(0.0) >= 1.0;
        }
      }
    }
    if (ready) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

StageHost* EmbeddedPipeline::host(std::string_view stage, int replica) {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const std::string& n = hosts_[i]->name();
    if (n.rfind(stage, 0) == 0 && replicas_[i] == replica) return hosts_[i].get();
  }
  return nullptr;
}

}  // namespace messplus::stages
