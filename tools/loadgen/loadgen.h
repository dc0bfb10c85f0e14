// RunLoad: the load generator's engine. Drives a running pipeline's ingest frontend with
// requests (and optional feedback) and measures what comes back (tools/loadgen/report.h).
//
// One thread, one DEALER socket, one reused Encoder buffer and one reused Decoder; nothing
// is allocated per request once warm (request slots live in a ring sized at start). Each
// turn of the loop:
//   1. sends what is due: open loop, every request whose Poisson due time has come (a sender
//      that fell behind sends at once, and the request is still charged from its due time);
//      closed loop, new requests until `concurrency` are in flight;
//   2. sends the feedback whose delay has passed;
//   3. waits in zmq_poll on the socket and a timerfd armed at the next due time (so pacing
//      is precise to tens of microseconds without spinning a core), then reads up to a batch
//      of replies: client_reply (answered, or an error by its code), error (by its code),
//      feedback_ack;
//   4. fails requests without a reply within request_timeout (`client_timeout`).
// Sending stops when the measured phase has sent `requests` requests or lasted `duration_s`;
// the run then waits for the replies and acks still due (each bounded by its timeout). The
// absolute deadline (`deadline_s`) ends everything: requests still out count as `deadline`.
//
// Request ids are "<prefix><sequence number>" with a prefix unique to the run (pid and
// clock), so runs never collide in ingest's or the collector's tables.
//
// Thread safety: RunLoad is reentrant (its own socket); `zmq` may be shared (inproc://
// endpoints need the pipeline's context).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "pipeline/config.h"
#include "pipeline/stop.h"
#include "router/status.h"
#include "tools/loadgen/report.h"
#include "tools/loadgen/workload.h"

namespace messplus::loadgen {

// Warm-up: the first `requests` requests, or the requests scheduled in the first `seconds`.
struct Warmup {
  uint64_t requests = 0;
  double seconds = 0.0;
};
// "500" (requests), "2s", "1.5s", "300ms" (time), "0" (none). InvalidArgument otherwise.
Result<Warmup> ParseWarmup(std::string_view text);

struct LoadOptions {
  std::string endpoint;  // ingest's frontend
  // Exactly one of: rate > 0 (open loop, Poisson arrivals) or concurrency > 0 (closed loop).
  double rate = 0.0;
  uint64_t concurrency = 0;
  // At least one bound: the measured phase ends after `requests` requests were sent or
  // after `duration_s` seconds, whichever comes first.
  uint64_t requests = 0;
  double duration_s = 0.0;
  Warmup warmup;
  // Absolute bound on the whole run in seconds; 0: warm-up (if in seconds) + duration +
  // 60 s, or 600 s with --requests only; plus twice the request timeout.
  double deadline_s = 0.0;
  uint64_t seed = 1;
  const PromptSource* prompts = nullptr;  // REQUIRED; must outlive the call
  TenantMix tenants;
  // Feedback for this share of the answered requests, `feedback_delay` after the reply: the
  // recorded satisfaction when the prompts come from a data file that knows the model, else
  // a Bernoulli(satisfaction_p) draw.
  double feedback_rate = 0.0;
  pipeline::Millis feedback_delay{0};
  double satisfaction_p = 0.5;
  pipeline::Millis request_timeout{10000};
  pipeline::Millis ack_timeout{10000};
  // Requests in flight at most in the open loop (the slots of the ring); a sender that
  // reaches it waits, and the wait is charged to the requests' latency.
  uint64_t max_in_flight = 65536;
  int histogram_digits = 3;
  int hwm = 100000;  // the DEALER's send and receive high-water marks
  size_t max_text_bytes = 1 << 20;
  bool progress = false;  // a live line on stderr, at most 4 times a second
  // When it fires (Ctrl-C), sending stops and the run drains as at its normal end.
  const pipeline::StopSignal* stop = nullptr;
};

// InvalidArgument for inconsistent options (no bound, both or neither of rate and
// concurrency, no prompts). A pipeline that never answers is not an error here: its
// requests end as client_timeout, and the report says so.
Result<LoadReport> RunLoad(zmq::context_t& zmq, const LoadOptions& options);

}  // namespace messplus::loadgen
