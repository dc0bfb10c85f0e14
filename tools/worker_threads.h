// WorkerThreads: model workers as threads of this process, for `messplus up --echo-workers`
// and `messplus loadgen --embedded` (the pipeline's stages run as threads beside them).
//
// Thread safety: Start and Join from one thread; the workers run on their own threads and
// stop when the StopSignal fires.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/stop.h"
#include "pipeline/worker.h"

namespace messplus::tools {

class WorkerThreads {
 public:
  // Starts `per_model` echo workers (pipeline::EchoBackend: the text back, cost 1, no model
  // time) for every model of config's zoo, connected to endpoints.workers. `zmq`, `config`
  // and `stop` must outlive the object.
  WorkerThreads(zmq::context_t& zmq, const pipeline::Config& config, int per_model,
                const pipeline::StopSignal& stop, const pipeline::Logger& log);
  // REQUIRES: the stop signal fired (otherwise this waits for it).
  ~WorkerThreads();
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;

  void Join();
  size_t size() const { return workers_.size(); }

 private:
  pipeline::EchoBackend echo_;
  std::vector<std::unique_ptr<pipeline::ModelWorker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace messplus::tools
