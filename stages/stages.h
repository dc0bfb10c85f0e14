// Hosting the stages: one code path for both modes.
//
// StageHost builds one stage with everything it borrows (clock, metrics, logger, limits) and
// its StageRuntime; Run() is the stage's loop. `messplus <stage>` runs one host in its
// process (ipc:// or tcp://); EmbeddedPipeline runs every stage's host as a thread of one
// process sharing one zmq context (inproc://), as `messplus up` does. The hosts, stages and
// runtime are the same objects in both.
//
// Thread safety: a StageHost is built on one thread and then run on one (possibly other)
// thread; metrics() may be read from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "pipeline/clock.h"
#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/metrics.h"
#include "pipeline/runtime.h"
#include "pipeline/stop.h"

namespace messplus::stages {

// "ingest", "embed", "route", "dispatch", "feedback".
const std::vector<std::string>& StageNames();

struct HostOptions {
  int replica = 0;  // route replicas: mixed into the seed; also the metrics label suffix
  // Overrides the stage's metrics port from the config (-1: use the config's).
  int metrics_port = -1;
};

class StageHost {
 public:
  // Builds the stage and opens its sockets. InvalidArgument for an unknown stage name;
  // whatever the stage or the sockets report (bind failures, a corrupt checkpoint).
  static Result<std::unique_ptr<StageHost>> Create(std::string_view name,
                                                   const pipeline::Config& config,
                                                   zmq::context_t& zmq, pipeline::Logger log,
                                                   const HostOptions& options = {});
  ~StageHost();
  StageHost(const StageHost&) = delete;
  StageHost& operator=(const StageHost&) = delete;

  // The stage's loop; returns after the stop signal and the drain.
  Status Run(const pipeline::StopSignal& stop);

  const std::string& name() const { return name_; }
  const pipeline::Config& config() const { return config_; }
  pipeline::StageMetrics& metrics() { return *metrics_; }
  pipeline::Stage& stage() { return *stage_; }
  std::string LastEndpoint(size_t port) const { return runtime_->LastEndpoint(port); }

  class PassKey {
    friend class StageHost;
    PassKey() = default;
  };
  StageHost(PassKey, std::string name, const pipeline::Config& config, pipeline::Logger log);

 private:
  std::string name_;
  const pipeline::Config& config_;
  pipeline::Logger log_;
  pipeline::SystemClock clock_;
  std::vector<std::string> zoo_;
  pipeline::Limits limits_;
  std::unique_ptr<pipeline::StageMetrics> metrics_;
  std::unique_ptr<pipeline::StageContext> ctx_;
  std::unique_ptr<pipeline::Stage> stage_;
  std::unique_ptr<pipeline::StageRuntime> runtime_;
};

// Every stage as a thread of this process.
class EmbeddedPipeline {
 public:
  // Creates every host first (so startup errors come back here, with nothing running),
  // then starts one thread per host. `config` and `stop` must outlive the pipeline.
  static Result<std::unique_ptr<EmbeddedPipeline>> Start(const pipeline::Config& config,
                                                         zmq::context_t& zmq, pipeline::Logger log,
                                                         const pipeline::StopSignal& stop,
                                                         int route_replicas = 1);
  // Requests nothing itself: waits for the threads to end after `stop` fired. The first
  // non-OK status of a stage, or OK.
  Status Join();
  ~EmbeddedPipeline();

  // Waits (at most `timeout`) until every route replica holds the collector's state and
  // dispatch has a live worker of every model; false on timeout. Replays that are compared
  // with the simulator start after this, so no early decision runs on a state that lacks
  // updates already published.
  bool WaitReady(pipeline::Millis timeout);

  // The host of a stage (route: of a replica); nullptr when there is none.
  StageHost* host(std::string_view stage, int replica = 0);

  class PassKey {
    friend class EmbeddedPipeline;
    PassKey() = default;
  };
  explicit EmbeddedPipeline(PassKey) {}

 private:
  std::vector<std::unique_ptr<StageHost>> hosts_;
  std::vector<int> replicas_;
  std::vector<std::thread> threads_;
  std::vector<Status> results_;
};

}  // namespace messplus::stages
