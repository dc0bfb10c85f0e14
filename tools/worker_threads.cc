#include "tools/worker_threads.h"

#include <pthread.h>

#include <fmt/format.h>

namespace messplus::tools {

WorkerThreads::WorkerThreads(zmq::context_t& zmq, const pipeline::Config& config, int per_model,
                             const pipeline::StopSignal& stop, const pipeline::Logger& log) {
  for (const std::string& model : config.ModelNames()) {
    for (int k = 0; k < per_model; ++k) {
      workers_.push_back(std::make_unique<pipeline::ModelWorker>(
          zmq, config, config.endpoints.workers, model, fmt::format("{}#echo{}", model, k), echo_,
          pipeline::ChildLogger(log, "worker")));
    }
  }
  for (auto& w : workers_) {
    threads_.emplace_back([w = w.get(), &stop] {
      pthread_setname_np(pthread_self(), "mp-worker");
      (void)w->Run(stop);
    });
  }
}

WorkerThreads::~WorkerThreads() { Join(); }

void WorkerThreads::Join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace messplus::tools
