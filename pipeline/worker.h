// ModelWorker: the worker side of the dispatch protocol, Paranoid Pirate style (zguide
// chapter 4, ppworker.c), with the model behind one interface (ModelBackend), so that a
// worker's own code is only "answer this call" (as zguide's mdworker hides MDP).
//
// The worker:
//   1. connects a DEALER to endpoints.workers and sends worker_ready {model, worker};
//   2. answers each model_call with a model_reply from the backend (the backend may block;
//      dispatch's call timeout covers a call that takes too long);
//   3. sends worker_heartbeat every worker.heartbeat_interval and treats any message from
//      dispatch as a sign of life;
//   4. after worker.heartbeat_liveness intervals of silence, closes the socket, waits
//      (reconnect_initial, doubling up to reconnect_max) and starts again at 1.
// Run() returns when the StopSignal fires (at most one poll interval later, or after the
// call in progress).
//
// Thread safety: one thread per ModelWorker; the backend is called from that thread only.
#pragma once

#include <cstdint>
#include <string>

#include <zmq.hpp>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/protocol.h"
#include "pipeline/stop.h"
#include "router/status.h"

namespace messplus::pipeline {

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  // Fills reply->answer, cost, latency_s and metadata, or reply->error on failure. The
  // worker fills call_id, request_id and model. `stop` lets a slow backend give up early.
  virtual void Call(const ModelCall& call, ModelReply* reply, const StopSignal& stop) = 0;
};

// Echoes the text, cost 1 (plumbing tests).
class EchoBackend final : public ModelBackend {
 public:
  void Call(const ModelCall& call, ModelReply* reply, const StopSignal& stop) override;
};

class ModelWorker {
 public:
  struct Counters {
    uint64_t calls = 0;       // model_calls answered
    uint64_t reconnects = 0;  // Paranoid Pirate reconnects
    uint64_t rejected = 0;    // frames that were not a valid call for this model
  };

  // `config` supplies worker.*, limits and linger; the zoo names are checked on calls.
  ModelWorker(zmq::context_t& zmq, const Config& config, std::string endpoint, std::string model,
              std::string name, ModelBackend& backend, Logger log);

  // InvalidArgument when the model is not in the zoo; otherwise serves until stop.
  Status Run(const StopSignal& stop);
  const Counters& counters() const { return counters_; }

 private:
  void Connect();
  bool SendMessage(MessageRef message);
  void HandleFrame(std::string_view frame, const StopSignal& stop);

  zmq::context_t& zmq_;
  const Config& config_;
  std::string endpoint_;
  std::string model_;
  std::string name_;
  ModelBackend& backend_;
  Logger log_;
  std::vector<std::string> zoo_;
  Decoder decoder_;
  Encoder encoder_;
  zmq::socket_t socket_;
  Message message_;
  ModelReply reply_;
  int liveness_ = 0;
  Counters counters_;
};

}  // namespace messplus::pipeline
