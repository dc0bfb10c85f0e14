#include "stages/ingest/ingest_stage.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>

#include <fmt/format.h>

namespace messplus::stages::ingest {

using pipeline::ClientReply;
using pipeline::Config;
using pipeline::Feedback;
using pipeline::FeedbackAck;
using pipeline::Inbound;
using pipeline::MsgType;
using pipeline::Outbox;
using pipeline::PortSpec;
using pipeline::Reason;
using pipeline::ReasonName;
using pipeline::Request;
using pipeline::StageContext;
using pipeline::TypeBit;

std::vector<PortSpec> IngestStage::Ports(const Config& c) {
  const int hwm = c.ingest.hwm;
  return {
      {"replies", zmq::socket_type::pull, c.endpoints.replies, true, true,
       TypeBit(MsgType::kClientReply) | TypeBit(MsgType::kFeedbackAck), false, true, hwm},
      {"frontend", zmq::socket_type::router, c.endpoints.frontend, true, true,
       TypeBit(MsgType::kRequest) | TypeBit(MsgType::kFeedback), true, false, hwm},
      {"requests", zmq::socket_type::push, c.endpoints.requests, true, false, 0, false, false, hwm},
      {"feedback", zmq::socket_type::push, c.endpoints.feedback, false, false, 0, false, false,
       hwm},
  };
}

IngestStage::IngestStage(StageContext& ctx) : ctx_(ctx), options_(ctx.config.ingest) {
  // Ids this instance assigns: unique across restarts (wall clock) and processes (pid).
  id_prefix_ = fmt::format("i{:x}{:x}-", static_cast<uint64_t>(ctx.clock.WallNanos()) >> 20,
                           static_cast<unsigned>(getpid()) & 0xffff);
  auto& registry = ctx.metrics.registry();
  in_flight_gauge_ = &prometheus::BuildGauge()
                          .Name("messplus_ingest_in_flight")
                          .Help("Requests awaiting a reply")
                          .Labels({{"stage", "ingest"}})
                          .Register(registry)
                          .Add({});
  request_seconds_ = &prometheus::BuildHistogram()
                          .Name("messplus_request_seconds")
                          .Help("Time from a request's arrival to its reply leaving ingest")
                          .Labels({{"stage", "ingest"}})
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30});
}

void IngestStage::UpdateGauges() { in_flight_gauge_->Set(static_cast<double>(requests_.size())); }

void IngestStage::OnMessage(Inbound& in, Outbox& out) {
  if (auto* r = std::get_if<Request>(&in.message)) {
    OnRequest(in, *r, out);
  } else if (auto* f = std::get_if<Feedback>(&in.message)) {
    OnFeedback(in, *f, out);
  } else if (auto* reply = std::get_if<ClientReply>(&in.message)) {
    OnReply(*reply, out);
  } else if (auto* ack = std::get_if<FeedbackAck>(&in.message)) {
    OnAck(*ack, out);
  }
}

void IngestStage::OnRequest(Inbound& in, Request& request, Outbox& out) {
  if (requests_.size() >= options_.max_in_flight) {
    out.Reject(in, Reason::kOverloaded,
               fmt::format("{} requests in flight (ingest.max_in_flight)", requests_.size()),
               request.id);
    return;
  }
  if (request.tenant.empty()) request.tenant = ctx_.config.default_tenant;
  const auto& tenants = ctx_.config.router.tenants;
  if (std::none_of(tenants.begin(), tenants.end(),
                   [&](const router::TenantSpec& t) { return t.name == request.tenant; })) {
    out.Reject(in, Reason::kUnknownTenant, "unknown tenant '" + request.tenant + "'", request.id);
    return;
  }
  if (request.id.empty()) {
    request.id.assign(id_prefix_);  // in place: the decode slot keeps its capacity
    fmt::format_to(std::back_inserter(request.id), "{}", ++next_id_);
  } else if (requests_.Contains(request.id)) {
    out.Reject(in, Reason::kDuplicateId, "request '" + request.id + "' is already in flight",
               request.id);
    return;
  }
  request.ingest_ns = ctx_.clock.WallNanos();
  if (!out.Send(kRequests, request)) {
    out.Reject(in, Reason::kOverloaded, "the pipeline is not taking requests now", request.id);
    return;
  }
  const TimePoint now = ctx_.clock.Now();
  PendingRequest& pending = requests_.Slot(request.id, now + options_.request_timeout);
  pending.client.assign(in.from.begin(), in.from.end());  // reuses a recycled entry's strings
  pending.received = now;
  UpdateGauges();
}

void IngestStage::OnFeedback(Inbound& in, Feedback& feedback, Outbox& out) {
  if (feedback_.size() >= options_.max_pending_feedback) {
    out.Reject(in, Reason::kOverloaded, "too much feedback awaiting acknowledgement",
               feedback.request_id);
    return;
  }
  feedback.token = ++next_token_;
  if (!out.Send(kFeedback, feedback)) {
    out.Reject(in, Reason::kOverloaded, "the feedback collector is not taking feedback now",
               feedback.request_id);
    return;
  }
  PendingFeedback& pending =
      feedback_.Slot(feedback.token, ctx_.clock.Now() + options_.feedback_timeout);
  pending.client.assign(in.from.begin(), in.from.end());
  pending.request_id.assign(feedback.request_id);
}

void IngestStage::OnReply(ClientReply& reply, Outbox& out) {
  PendingRequest* pending = requests_.Find(reply.request_id);
  if (pending == nullptr) {
    // Answered after its timeout, or never ours.
    out.Count(Reason::kUnknownRequest);
    return;
  }
  out.Send(kFrontend, reply, &pending->client);  // unroutable: counted by the outbox
  request_seconds_->Observe(
      std::chrono::duration<double>(ctx_.clock.Now() - pending->received).count());
  requests_.Erase(reply.request_id);
  UpdateGauges();
}

void IngestStage::OnAck(FeedbackAck& ack, Outbox& out) {
  PendingFeedback* pending = feedback_.Find(ack.token);
  if (pending == nullptr) {
    out.Count(Reason::kUnknownRequest);
    return;
  }
  const uint64_t token = ack.token;
  ack.token = 0;  // internal to the pipeline
  out.Send(kFrontend, ack, &pending->client);
  feedback_.Erase(token);
}

void IngestStage::OnTick(TimePoint now, Outbox& out) {
  const size_t expired = requests_.Expire(now, [&](const std::string& id, PendingRequest&& p) {
    ClientReply reply;
    reply.request_id = id;
    reply.error_code = std::string(ReasonName(Reason::kTimeout));
    reply.error_message = fmt::format("no reply within {} ms", options_.request_timeout.count());
    out.Count(Reason::kTimeout);
    out.Send(kFrontend, reply, &p.client);
  });
  feedback_.Expire(now, [&](const uint64_t&, PendingFeedback&& p) {
    FeedbackAck ack;
    ack.request_id = p.request_id;
    ack.status = std::string(ReasonName(Reason::kTimeout));
    ack.message = fmt::format("no acknowledgement from the feedback collector within {} ms",
                              options_.feedback_timeout.count());
    out.Count(Reason::kTimeout);
    out.Send(kFrontend, ack, &p.client);
  });
  if (expired > 0) UpdateGauges();
}

void IngestStage::OnShutdown(Outbox& out) {
  // Tell every client still waiting, rather than leaving it to its own timeout.
  requests_.Drain([&](const std::string& id, PendingRequest&& p) {
    ClientReply reply;
    reply.request_id = id;
    reply.error_code = std::string(ReasonName(Reason::kShutdown));
    reply.error_message = "ingest is shutting down";
    out.Count(Reason::kShutdown);
    out.Send(kFrontend, reply, &p.client);
  });
  feedback_.Drain([&](const uint64_t&, PendingFeedback&& p) {
    FeedbackAck ack;
    ack.request_id = p.request_id;
    ack.status = std::string(ReasonName(Reason::kShutdown));
    ack.message = "ingest is shutting down";
    out.Count(Reason::kShutdown);
    out.Send(kFrontend, ack, &p.client);
  });
  UpdateGauges();
}

}  // namespace messplus::stages::ingest
