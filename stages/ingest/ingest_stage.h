// The ingest stage: the pipeline's front door.
//
// Sockets (PortSpec order = the Port enum; replies are served before new requests):
//   replies   PULL   bind     <- dispatch: client_reply; feedback collector: feedback_ack
//   frontend  ROUTER bind     <- clients (DEALER or REQ): request, feedback
//   requests  PUSH   bind     -> embed: request (with id, tenant and ingest_ns filled in)
//   feedback  PUSH   connect  -> feedback collector: feedback (with an ack token)
//
// For each request: 1. reject when too many are in flight (overloaded), for an unknown
// tenant, or a duplicate in-flight id; 2. assign an id when absent, the default tenant when
// none, the ingest timestamp; 3. push it on and remember the client's envelope under the id
// until the reply comes back (routed with ROUTER_MANDATORY; unroutable replies are counted)
// or ingest.request_timeout passes (the client gets a `timeout` error).
// Feedback is forwarded with a token and acknowledged to its client when the collector's
// feedback_ack comes back (or a `timeout` ack after ingest.feedback_timeout).
//
// Thread safety: one thread (the runtime's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "pipeline/expiring_map.h"
#include "pipeline/runtime.h"

namespace messplus::stages::ingest {

using pipeline::Envelope;
using pipeline::TimePoint;

class IngestStage final : public pipeline::Stage {
 public:
  enum Port : size_t { kReplies = 0, kFrontend = 1, kRequests = 2, kFeedback = 3 };
  static std::vector<pipeline::PortSpec> Ports(const pipeline::Config& config);

  explicit IngestStage(pipeline::StageContext& ctx);

  void OnMessage(pipeline::Inbound& in, pipeline::Outbox& out) override;
  void OnTick(TimePoint now, pipeline::Outbox& out) override;
  bool Idle() const override { return requests_.empty() && feedback_.empty(); }
  void OnShutdown(pipeline::Outbox& out) override;

  size_t in_flight() const { return requests_.size(); }

 private:
  struct PendingRequest {
    Envelope client;
    TimePoint received{};
  };
  struct PendingFeedback {
    Envelope client;
    std::string request_id;
  };

  void OnRequest(pipeline::Inbound& in, pipeline::Request& request, pipeline::Outbox& out);
  void OnFeedback(pipeline::Inbound& in, pipeline::Feedback& feedback, pipeline::Outbox& out);
  void OnReply(pipeline::ClientReply& reply, pipeline::Outbox& out);
  void OnAck(pipeline::FeedbackAck& ack, pipeline::Outbox& out);
  void UpdateGauges();

  pipeline::StageContext& ctx_;
  const pipeline::IngestOptions& options_;
  std::string id_prefix_;
  uint64_t next_id_ = 0;
  uint64_t next_token_ = 0;
  pipeline::ExpiringMap<std::string, PendingRequest> requests_;
  pipeline::ExpiringMap<uint64_t, PendingFeedback> feedback_;
  prometheus::Gauge* in_flight_gauge_;
  prometheus::Histogram* request_seconds_;
};

}  // namespace messplus::stages::ingest
