// Config: the whole pipeline's configuration, read from one YAML file, validated once, and
// then shared read-only by every stage (each stage reads its own sub-struct).
//
// config/messplus.example.yaml documents every key with its default; unknown keys are
// errors, and ParseConfig reports every problem of a file in one Status (one per line).
//
// Thread safety: a const Config may be read from any number of threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/protocol.h"
#include "router/status.h"
#include "router/zoo.h"

namespace messplus::pipeline {

using Millis = std::chrono::milliseconds;

// Where each socket lives. Every endpoint is bound by exactly one side (the stable part) and
// connected to by the others; each may be inproc://, ipc:// or tcp://.
struct Endpoints {
  std::string frontend;   // ingest ROUTER (bind)  <- clients (DEALER or REQ)
  std::string requests;   // ingest PUSH (bind)    -> embed PULL
  std::string features;   // embed PUSH (bind)     -> route PULL (replicas connect)
  std::string decisions;  // dispatch PULL (bind)  <- route PUSH
  std::string workers;    // dispatch ROUTER (bind) <- model workers (DEALER)
  std::string replies;    // ingest PULL (bind)    <- dispatch PUSH (client_reply),
                          //                          feedback PUSH (feedback_ack)
  std::string feedback;   // feedback PULL (bind)  <- dispatch PUSH (outcome), ingest PUSH
  std::string updates;    // feedback PUB (bind)   -> route SUB
  std::string snapshots;  // feedback ROUTER (bind) <- route DEALER
  std::string embedder;   // optional external embedding worker (it binds); "" = none
};

struct IngestOptions {
  int metrics_port = 0;            // 0: no metrics endpoint
  int hwm = 1000;                  // send and receive high-water mark of every socket of the stage
  Millis request_timeout{60000};   // a request without a reply by then gets a timeout error
  size_t max_in_flight = 10000;    // requests awaiting a reply; more are refused (overloaded)
  Millis feedback_timeout{30000};  // a feedback without an ack by then gets a timeout error
  size_t max_pending_feedback = 10000;
};

struct EmbedOptions {
  int metrics_port = 0;
  int hwm = 1000;
  // The external embedder (endpoints.embedder) must answer within this; after a timeout the
  // stage hashes only, and tries the embedder again after embedder_retry.
  Millis embedder_timeout{200};
  Millis embedder_retry{5000};
  // Weight of the dense embedding (L2-normalised) against the unit-length text features.
  double embedding_weight = 1.0;
};

struct RouteOptions {
  int metrics_port = 0;
  int hwm = 1000;
  Millis snapshot_timeout{2000};  // re-ask for a snapshot when none arrives by then
  // No update or heartbeat from the collector for this long: ask for a snapshot again.
  Millis silence_timeout{10000};
  // A request with after_seq waits at most this long for the replica to apply that state
  // seq, then is decided on what the replica has (counted as after_seq_timeout).
  Millis after_seq_timeout{500};
};

struct DispatchOptions {
  int metrics_port = 0;
  int hwm = 1000;
  // A worker must answer a call within this (else it is marked dead and the call retried);
  // a call that finds no live worker of its model fails after this too.
  Millis call_timeout{30000};
  int retries = 1;  // further attempts on another worker of the same model
  // Paranoid Pirate: heartbeats to idle workers every interval; a worker silent for
  // liveness intervals is dead. 3-5 is reasonable.
  Millis heartbeat_interval{1000};
  int heartbeat_liveness = 3;
  // Calls waiting for a worker; beyond this the stage stops reading decisions (back-pressure).
  size_t max_pending_calls = 10000;
};

struct FeedbackOptions {
  int metrics_port = 0;
  int hwm = 1000;
  std::string checkpoint_path;  // "" = no checkpoint
  Millis checkpoint_period{10000};
  // Outcomes remembered to join feedback with: at most this many, for at most this long.
  size_t join_window_outcomes = 20000;
  Millis join_window{3600 * 1000};
  // Feedback that arrives before its outcome waits this long for it.
  Millis early_feedback_wait{5000};
  Millis heartbeat_interval{1000};  // state_update heartbeats on the PUB socket
};

struct WorkerOptions {
  Millis heartbeat_interval{1000};
  int heartbeat_liveness = 3;
  Millis reconnect_initial{250};  // Paranoid Pirate back-off, doubling up to reconnect_max
  Millis reconnect_max{8000};
};

struct Config {
  // Zoo (cheapest first), tenants, policy, v, c, seed, adaptive tuning, hashing, predictor.
  router::RouterConfig router;
  std::string default_tenant;  // for requests without a tenant; default: the first tenant
  Endpoints endpoints;
  size_t max_text_bytes = 1 << 20;
  size_t max_frame_bytes = 16 << 20;
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off
  Millis poll_interval{50};        // longest zmq::poll wait; timers run at this granularity
  Millis drain_timeout{5000};      // shutdown: how long in-flight work may still finish
  Millis linger{1000};             // socket linger at close
  IngestOptions ingest;
  EmbedOptions embed;
  RouteOptions route;
  DispatchOptions dispatch;
  FeedbackOptions feedback;
  WorkerOptions worker;

  std::vector<std::string> ModelNames() const;
  // Limits for decoding: text and frame sizes, the feature dimension and the tenant count;
  // with `zoo` (which must outlive the Limits), model names are checked too.
  Limits MakeLimits(const std::vector<std::string>* zoo = nullptr) const;
};

// Parses YAML text. InvalidArgument listing every problem (unknown keys, wrong types,
// invalid values), one per line.
Result<Config> ParseConfig(std::string_view yaml);
// Reads and parses a file; NotFound / IoError when it cannot be read.
Result<Config> LoadConfig(const std::string& path);
// Every problem of an assembled Config (ParseConfig calls it).
Status ValidateConfig(const Config& config);

// "inproc://", "ipc://" or "tcp://" followed by something.
bool ValidEndpoint(std::string_view endpoint);

}  // namespace messplus::pipeline
