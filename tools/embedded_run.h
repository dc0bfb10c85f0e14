// Running the whole pipeline as threads of this process (the embedded mode) with replay
// workers for every model of a dataset, replaying the dataset through it and printing the
// report: what `messplus up --replay-data` and `messplus demo` do.
#pragma once

#include <string>

#include <zmq.hpp>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/stop.h"
#include "simulator/dataset.h"
#include "stages/stages.h"
#include "tools/replay_driver.h"

namespace messplus::tools {

struct EmbeddedRun {
  PipelineReplayOptions replay;
  int route_replicas = 1;
  int workers_per_model = 1;
  double latency_scale = 0.0;  // replay workers sleep the recorded latency times this
  bool json = false;
};

// On a started embedded pipeline: starts replay workers for every configured model (from
// `data`), waits until the pipeline is ready, replays, prints the report (as `command`), and
// stops the workers. Returns the process exit code (0: every request answered).
int ReplayThroughEmbedded(const pipeline::Config& config, zmq::context_t& zmq,
                          stages::EmbeddedPipeline& pipe, pipeline::StopSignal& stop,
                          const simulator::Dataset& data, const std::string& data_name,
                          const EmbeddedRun& run, const pipeline::Logger& log,
                          const char* command);

// Starts the embedded pipeline for `config`, then ReplayThroughEmbedded, then stops it.
int RunEmbeddedReplay(const pipeline::Config& config, const simulator::Dataset& data,
                      const std::string& data_name, const EmbeddedRun& run, const char* command);

}  // namespace messplus::tools
