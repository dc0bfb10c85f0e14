// The replay client: drives a running pipeline with captured data and measures it the way
// `messplus sim` measures the router core.
//
// 1. Streams the dataset's rows in the simulator's seeded order (simulator::ReplayOrder) as
//    requests (id = the row's id, task = its task) through ingest, at most `in_flight` at a
//    time.
// 2. For each answered request whose feedback is drawn to be reported (one
//    Bernoulli(feedback_rate) per request in stream order, the simulator's draws), sends the
//    recorded satisfaction as feedback: for the served model, or per model run when the
//    request explored. Feedback for request j goes out once its reply is in and request
//    j + feedback_delay has been sent; feedback due at or after the last request never goes
//    (as in the simulator).
// 3. Waits for every reply and every feedback_ack, then asks the collector for a snapshot to
//    read the final Q, and builds a simulator::ReplayResult (shares, cost, satisfaction,
//    baselines on the same rows).
// A request that ingest refuses as `overloaded` (never admitted) is sent again after a
// doubling back-off. Every wait is bounded: a request without a reply within request_timeout
// counts as an error; no reply at all within connect_timeout means the pipeline is not there (an
// Unavailable error naming the endpoint).
//
// Thread safety: RunPipelineReplay is reentrant (its own sockets).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <zmq.hpp>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "simulator/dataset.h"
#include "simulator/replay.h"

namespace messplus::tools {

struct PipelineReplayOptions {
  double feedback_rate = 1.0;
  uint64_t feedback_delay = 0;  // in requests
  uint64_t seed = 42;
  size_t in_flight = 8;
  // One request at a time, and the next one only once every feedback sent so far is
  // acknowledged: the simulator's timing, as closely as a live pipeline allows (the route
  // replica applies the collector's updates asynchronously, so it is still a race, one
  // the update wins by two hops).
  bool lockstep = false;
  size_t limit = 0;  // 0: every row
  bool use_task = true;
  std::string tenant;  // "": the default tenant
  pipeline::Millis request_timeout{120000};
  pipeline::Millis connect_timeout{10000};
  pipeline::Millis ack_timeout{60000};
};

struct PipelineReplayStats {
  size_t answered = 0;  // requests with a client_reply for a model
  size_t errors = 0;    // requests answered with an error (or not at all)
  std::map<std::string, size_t> error_codes;
  size_t retried = 0;  // requests ingest refused as overloaded and that were sent again
  size_t feedback_sent = 0;
  size_t feedback_acked = 0;    // acks with status ok
  size_t feedback_refused = 0;  // acks with an error status
  std::map<std::string, size_t> ack_codes;
  size_t feedback_unacked = 0;  // no ack within ack_timeout
  double seconds = 0.0;
};

// Requires a pipeline (ingest at endpoints.frontend, the collector at endpoints.snapshots)
// whose zoo is the dataset's models in the same order. InvalidArgument for mismatched
// options; Unavailable when ingest does not answer.
Result<simulator::ReplayResult> RunPipelineReplay(
    const pipeline::Config& config, zmq::context_t& zmq, const simulator::Dataset& data,
    const PipelineReplayOptions& options, PipelineReplayStats* stats, const pipeline::Logger& log);

// One state_snapshot from the collector at `endpoint`, loaded into a Router of `config`.
// Unavailable after `timeout`.
Result<std::string> FetchSnapshotState(const pipeline::Config& config, zmq::context_t& zmq,
                                       pipeline::Millis timeout, uint64_t* seq = nullptr);

}  // namespace messplus::tools
