// The route stage: features -> router::Router::Decide -> decision. Several replicas may run;
// each owns a Router and keeps its learning state in step with the feedback collector by
// the zguide's Clone pattern (chapter 5, clonecli3):
//   1. subscribe (SUB) to the collector's state_update PUB first;
//   2. ask the snapshot ROUTER for a state_snapshot {nonce, epoch, seq, Router::SaveState()}
//      and Router::LoadState it, not reading updates meanwhile (they queue in the SUB);
//   3. apply every state_update with seq = last + 1 by calling RecordCosts / RecordFeedback
//      on its own Router with the collector's inputs; drop seq <= last (already in the
//      snapshot); a gap (seq > last + 1), another epoch (the collector restarted) or
//      route.silence_timeout without any update or heartbeat -> back to 2.
// Decide never waits for learning: until the first snapshot arrives the replica routes on
// its initial state, and while a snapshot is awaited it routes on what it has.
//
// Sockets (PortSpec order = the Port enum; the runtime serves inputs in this order, so
// learning that has arrived is applied before the next decision is made):
//   updates    SUB    connect  <- feedback collector PUB: state_update
//   snapshots  DEALER connect  <-> feedback collector ROUTER: state_snapshot_request / _snapshot
//   features   PULL   connect  <- embed: features
//   decisions  PUSH   connect  -> dispatch: decision
//
// A request with after_seq > the applied seq waits (parked, in arrival order, and so do the
// requests behind it) until an update brings the seq there or route.after_seq_timeout passes.
//
// A decision the decisions socket refuses (dispatch's HWM reached) is held and sent again on
// the next tick, and features are not read meanwhile: back-pressure, not loss.
//
// Replica k > 0 mixes k into the configured seed, so replicas do not draw the same
// exploration and dither sequence; replica 0 uses the seed as is (as `messplus sim` does).
//
// Thread safety: one thread (the runtime's).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "pipeline/runtime.h"
#include "pipeline/sla_metrics.h"
#include "router/router.h"

namespace messplus::stages::route {

class RouteStage final : public pipeline::Stage {
 public:
  enum Port : size_t { kUpdates = 0, kSnapshots = 1, kFeatures = 2, kDecisions = 3 };
  static std::vector<pipeline::PortSpec> Ports(const pipeline::Config& config);

  // InvalidArgument when the router configuration is invalid.
  static Result<std::unique_ptr<RouteStage>> Create(pipeline::StageContext& ctx, int replica);

  void OnMessage(pipeline::Inbound& in, pipeline::Outbox& out) override;
  void OnTick(pipeline::TimePoint now, pipeline::Outbox& out) override;
  // While a snapshot is awaited, updates stay queued in the SUB socket (Clone, step 2).
  bool Accepting(size_t port) const override {
    if (port == kUpdates) return synced_;
    return port != kFeatures ||
           (held_.empty() && parked_.size() < static_cast<size_t>(ctx_.config.route.hwm));
  }
  bool Idle() const override { return held_.empty() && parked_.empty(); }
  void OnShutdown(pipeline::Outbox& out) override;

  const router::Router& router() const { return *router_; }
  uint64_t seq() const { return seq_; }
  uint64_t epoch() const { return epoch_; }
  bool synced() const { return synced_; }

  class PassKey {
    friend class RouteStage;
    PassKey() = default;
  };
  RouteStage(PassKey, pipeline::StageContext& ctx, std::unique_ptr<router::Router> router);

 private:
  void OnFeatures(pipeline::Features& f, pipeline::Outbox& out);
  void Decide(pipeline::Features& f, pipeline::Outbox& out);
  // Decides the parked requests whose after_seq is reached, or all of them when `all`,
  // oldest first; stops at the first that must still wait.
  void ReleaseParked(pipeline::TimePoint now, bool all, pipeline::Outbox& out);
  void OnUpdate(const pipeline::StateUpdate& u, pipeline::Outbox& out);
  void OnSnapshot(const pipeline::StateSnapshot& s);
  void Resync(const char* cause);
  void RequestSnapshot(pipeline::TimePoint now, pipeline::Outbox& out);

  pipeline::StageContext& ctx_;
  std::unique_ptr<router::Router> router_;
  pipeline::SlaMetrics sla_;
  pipeline::DecisionMsg decision_;          // reused output message
  std::deque<pipeline::DecisionMsg> held_;  // refused by the decisions socket, oldest first
  struct Parked {
    pipeline::Features features;
    pipeline::TimePoint deadline;
  };
  std::deque<Parked> parked_;  // waiting for their after_seq, oldest first
  bool synced_ = false;
  bool awaiting_ = false;  // a snapshot request is out
  uint64_t nonce_ = 0;
  uint64_t epoch_ = 0;
  uint64_t seq_ = 0;
  pipeline::TimePoint snapshot_deadline_{};
  pipeline::TimePoint last_heard_{};
  prometheus::Family<prometheus::Counter>* resyncs_;
  prometheus::Counter* updates_applied_;
  prometheus::Counter* after_seq_reached_;
  prometheus::Counter* after_seq_timeout_;
  prometheus::Gauge* seq_gauge_;
  prometheus::Gauge* synced_gauge_;
};

}  // namespace messplus::stages::route
