// The feedback collector: the single writer of the learning state (the SLA ledger, cost
// estimates and predictor), which the route replicas copy by the Clone pattern.
//
// Sockets (PortSpec order = the Port enum):
//   input      PULL   bind     <- dispatch: outcome; ingest: feedback (with ack token)
//   updates    PUB    bind     -> route replicas: state_update (numbered), heartbeats
//   snapshots  ROUTER bind     <-> route replicas: state_snapshot_request / state_snapshot
//   acks       PUSH   connect  -> ingest: feedback_ack
//
// 1. outcome: Router::RecordCosts with the costs of the calls that succeeded, published as
//    state_update seq+1; the outcome is kept (at most feedback.join_window_outcomes, for at
//    most feedback.join_window) to join its feedback.
// 2. feedback: joined with its outcome -> Router::RecordFeedback with labels only for models
//    that ran and answered (the served answer's satisfaction, or per model for explored
//    requests), published as state_update seq+1, acknowledged to the client. Feedback that
//    arrives before its outcome waits feedback.early_feedback_wait for it. Unknown, expired,
//    duplicate or label-less feedback is acknowledged with an error status and counted.
// 3. snapshots: {epoch, seq, Router::SaveState()} on request.
// 4. checkpoint: Router::SaveState(), seq and the outcome window, written atomically every
//    feedback.checkpoint_period (when anything changed) and at shutdown, and loaded at start:
//    a restarted collector continues the ledger (in a new epoch, so replicas re-snapshot).
// Nothing is dropped silently: every drop is a messplus_rejected_total{reason} increment.
//
// Thread safety: one thread (the runtime's).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "pipeline/expiring_map.h"
#include "pipeline/runtime.h"
#include "pipeline/sla_metrics.h"
#include "router/router.h"
#include "stages/feedback/checkpoint.h"

namespace messplus::stages::feedback {

class FeedbackStage final : public pipeline::Stage {
 public:
  enum Port : size_t { kInput = 0, kUpdates = 1, kSnapshots = 2, kAcks = 3 };
  static std::vector<pipeline::PortSpec> Ports(const pipeline::Config& config);

  // Loads the checkpoint when feedback.checkpoint_path names an existing file. DataLoss for
  // a corrupt checkpoint or one of another configuration; InvalidArgument for a bad router
  // configuration.
  static Result<std::unique_ptr<FeedbackStage>> Create(pipeline::StageContext& ctx);

  void OnMessage(pipeline::Inbound& in, pipeline::Outbox& out) override;
  void OnTick(pipeline::TimePoint now, pipeline::Outbox& out) override;
  void OnShutdown(pipeline::Outbox& out) override;

  const router::Router& router() const { return *router_; }
  uint64_t seq() const { return seq_; }
  uint64_t epoch() const { return epoch_; }
  size_t window_size() const { return outcomes_.size(); }
  // Writes the checkpoint now (no-op without a checkpoint path).
  Status Checkpoint();

  class PassKey {
    friend class FeedbackStage;
    PassKey() = default;
  };
  FeedbackStage(PassKey, pipeline::StageContext& ctx, std::unique_ptr<router::Router> router);

 private:
  struct Stored {
    pipeline::Outcome outcome;
    pipeline::TimePoint arrived{};
    bool joined = false;
  };

  void OnOutcome(pipeline::Outcome& o, pipeline::Outbox& out);
  void OnFeedback(pipeline::Feedback& f, pipeline::Outbox& out);
  void Join(pipeline::Feedback& f, Stored& stored, pipeline::Outbox& out);
  void Ack(const pipeline::Feedback& f, pipeline::Reason reason, const std::string& message,
           pipeline::Outbox& out);
  void AckOk(const pipeline::Feedback& f, uint32_t applied, const std::string& message,
             pipeline::Outbox& out);
  void Publish(pipeline::Outbox& out);
  void RestoreFrom(feedback::Checkpoint&& c);

  pipeline::StageContext& ctx_;
  const pipeline::FeedbackOptions& options_;
  std::unique_ptr<router::Router> router_;
  const std::vector<std::string> zoo_;
  pipeline::SlaMetrics sla_;
  uint64_t epoch_ = 0;
  uint64_t seq_ = 0;
  uint64_t checkpointed_seq_ = 0;
  pipeline::TimePoint next_heartbeat_{};
  pipeline::TimePoint next_checkpoint_{};
  pipeline::ExpiringMap<std::string, Stored> outcomes_;
  pipeline::ExpiringMap<std::string, pipeline::Feedback> early_;
  prometheus::Counter& WindowClosed(bool joined);

  pipeline::StateUpdate update_;  // reused output messages
  pipeline::FeedbackAck ack_;
  std::vector<router::ModelCost> costs_;
  std::vector<router::ModelLabel> labels_;
  prometheus::Family<prometheus::Counter>* window_closed_;
  prometheus::Counter* window_closed_joined_ = nullptr;  // window_closed_{feedback}, cached
  prometheus::Counter* window_closed_none_ = nullptr;
  prometheus::Counter* feedback_applied_;
  prometheus::Gauge* seq_gauge_;
  prometheus::Gauge* window_gauge_;
};

}  // namespace messplus::stages::feedback
