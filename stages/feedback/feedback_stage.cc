#include "stages/feedback/feedback_stage.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "router/rng.h"

namespace messplus::stages::feedback {

using pipeline::Config;
using pipeline::Feedback;
using pipeline::FeedbackAck;
using pipeline::Inbound;
using pipeline::MsgType;
using pipeline::Outbox;
using pipeline::Outcome;
using pipeline::PortSpec;
using pipeline::Reason;
using pipeline::ReasonName;
using pipeline::SnapshotRequest;
using pipeline::StageContext;
using pipeline::StateSnapshot;
using pipeline::TimePoint;
using pipeline::TypeBit;
using pipeline::UpdateKind;

namespace {
// Feedback waiting for its outcome; beyond this the oldest is turned away.
constexpr size_t kMaxEarlyFeedback = 10000;
}  // namespace

std::vector<PortSpec> FeedbackStage::Ports(const Config& c) {
  const int hwm = c.feedback.hwm;
  return {
      {"input", zmq::socket_type::pull, c.endpoints.feedback, true, true,
       TypeBit(MsgType::kOutcome) | TypeBit(MsgType::kFeedback), false, true, hwm},
      // PUB drops at its HWM; a replica that misses an update re-snapshots, but give it room.
      {"updates", zmq::socket_type::pub, c.endpoints.updates, true, false, 0, false, false,
       std::max(hwm, 100000)},
      {"snapshots", zmq::socket_type::router, c.endpoints.snapshots, true, true,
       TypeBit(MsgType::kStateSnapshotRequest), true, false, hwm},
      {"acks", zmq::socket_type::push, c.endpoints.replies, false, false, 0, false, false, hwm},
  };
}

Result<std::unique_ptr<FeedbackStage>> FeedbackStage::Create(StageContext& ctx) {
  Result<std::unique_ptr<router::Router>> r = router::Router::Create(ctx.config.router);
  if (!r.ok()) return r.status();
  auto stage = std::make_unique<FeedbackStage>(PassKey(), ctx, std::move(*r));
  const std::string& path = ctx.config.feedback.checkpoint_path;
  if (!path.empty()) {
    const std::vector<std::string> zoo = ctx.config.ModelNames();
    Result<std::optional<feedback::Checkpoint>> c =
        ReadCheckpoint(path, ctx.config.MakeLimits(&zoo));
    if (!c.ok()) return c.status();
    if (c->has_value()) {
      if (Status st = stage->router_->LoadState((*c)->router_state); !st.ok()) {
        return Status::DataLoss("checkpoint " + path + ": " + st.message());
      }
      stage->RestoreFrom(std::move(**c));
      ctx.log->info("feedback: restored checkpoint {} at seq {} with {} outcomes awaiting feedback",
                    path, stage->seq_, stage->outcomes_.size());
    }
  }
  return stage;
}

FeedbackStage::FeedbackStage(PassKey, StageContext& ctx, std::unique_ptr<router::Router> router)
    : ctx_(ctx),
      options_(ctx.config.feedback),
      router_(std::move(router)),
      zoo_(ctx.config.ModelNames()),
      sla_(ctx.metrics.registry(), "feedback", ctx.config.router) {
  // A new epoch at every start: replicas then take a fresh snapshot instead of trusting
  // sequence numbers from before the restart.
  std::random_device entropy;
  epoch_ = Rng::Mix(static_cast<uint64_t>(ctx.clock.WallNanos()) ^ entropy(),
                    static_cast<uint64_t>(getpid()));
  auto& registry = ctx.metrics.registry();
  const prometheus::Labels stage{{"stage", "feedback"}};
  window_closed_ = &prometheus::BuildCounter()
                        .Name("messplus_feedback_window_closed_total")
                        .Help("Outcomes that left the join window, by whether feedback came")
                        .Labels(stage)
                        .Register(registry);
  feedback_applied_ = &prometheus::BuildCounter()
                           .Name("messplus_feedback_applied_total")
                           .Help("Feedback joined with its outcome and recorded")
                           .Labels(stage)
                           .Register(registry)
                           .Add({});
  seq_gauge_ = &prometheus::BuildGauge()
                    .Name("messplus_feedback_state_seq")
                    .Help("Sequence number of the last learning event")
                    .Labels(stage)
                    .Register(registry)
                    .Add({});
  window_gauge_ = &prometheus::BuildGauge()
                       .Name("messplus_feedback_window_outcomes")
                       .Help("Outcomes kept for joining feedback")
                       .Labels(stage)
                       .Register(registry)
                       .Add({});
  update_.epoch = epoch_;
  for (uint32_t t = 0; t < ctx.config.router.tenants.size(); ++t) {
    sla_.SetQueue(t, router_->policy().queue(t).q_tracked());
  }
}

void FeedbackStage::RestoreFrom(feedback::Checkpoint&& c) {
  seq_ = c.seq;
  checkpointed_seq_ = c.seq;
  const TimePoint now = ctx_.clock.Now();
  for (CheckpointOutcome& o : c.outcomes) {
    const auto age = std::chrono::milliseconds(o.age_ms);
    const TimePoint arrived = now - age;
    const std::string id = o.outcome.request_id;
    outcomes_.Insert(id, Stored{std::move(o.outcome), arrived, o.joined},
                     arrived + options_.join_window);
  }
  seq_gauge_->Set(static_cast<double>(seq_));
  window_gauge_->Set(static_cast<double>(outcomes_.size()));
  for (uint32_t t = 0; t < ctx_.config.router.tenants.size(); ++t) {
    sla_.SetQueue(t, router_->policy().queue(t).q_tracked());
  }
}

void FeedbackStage::OnMessage(Inbound& in, Outbox& out) {
  if (auto* o = std::get_if<Outcome>(&in.message)) {
    OnOutcome(*o, out);
  } else if (auto* f = std::get_if<Feedback>(&in.message)) {
    OnFeedback(*f, out);
  } else if (auto* s = std::get_if<SnapshotRequest>(&in.message)) {
    StateSnapshot snapshot{s->nonce, epoch_, seq_, router_->SaveState()};
    out.Send(kSnapshots, snapshot, &in.from);
  }
}

void FeedbackStage::Publish(Outbox& out) {
  update_.seq = ++seq_;
  out.Send(kUpdates, update_);  // PUB: a dropped update shows up as a gap at the replicas
  seq_gauge_->Set(static_cast<double>(seq_));
}

void FeedbackStage::OnOutcome(Outcome& o, Outbox& out) {
  Result<uint32_t> tenant = router_->TenantIndex(o.tenant);
  if (!tenant.ok() || *tenant != o.decision.tenant) {
    out.Count(Reason::kUnknownTenant);
    ctx_.log->error("feedback: outcome {} has tenant '{}' not matching its decision", o.request_id,
                    o.tenant);
    return;
  }
  costs_.clear();
  double total = 0.0;
  for (size_t k = 0; k < o.calls.size(); ++k) {
    if (!o.calls[k].ok) continue;
    costs_.push_back({o.decision.run[k], o.calls[k].cost});
    total += o.calls[k].cost;
  }
  if (costs_.empty()) {
    // No model answered: nothing was paid, nothing served, nothing to learn or join.
    out.Count(Reason::kWorkerFailed);
    return;
  }
  if (Status st = router_->RecordCosts(o.decision, costs_); !st.ok()) {
    out.Count(Reason::kRejectedByRouter);
    ctx_.log->error("feedback: RecordCosts refused outcome {}: {}", o.request_id, st.message());
    return;
  }
  update_.kind = UpdateKind::kOutcome;
  update_.decision = o.decision;
  update_.costs = costs_;
  update_.labels.clear();
  update_.features.clear();
  Publish(out);
  sla_.RecordRequest(o.decision.served, o.decision.explore, total);
  sla_.SetQueue(*tenant, router_->policy().queue(*tenant).q_tracked());

  // Keep it for its feedback; make room first.
  while (outcomes_.size() >= options_.join_window_outcomes) {
    outcomes_.EvictOldest([&](const std::string&, Stored&& s) {
      WindowClosed(s.joined).Increment();
      if (!s.joined) out.Count(Reason::kEvicted);
    });
  }
  if (outcomes_.Contains(o.request_id)) {
    // The id was used again; the newer request takes the window.
    out.Count(Reason::kDuplicateId);
  }
  const TimePoint now = ctx_.clock.Now();
  // A reused entry: swapped rather than moved, so the decoder's slot gets its buffers back.
  Stored& stored = outcomes_.Slot(o.request_id, now + options_.join_window);
  std::swap(stored.outcome, o);
  stored.arrived = now;
  stored.joined = false;
  const std::string& id = stored.outcome.request_id;
  window_gauge_->Set(static_cast<double>(outcomes_.size()));

  if (Feedback* early = early_.Find(id)) {
    Feedback f = std::move(*early);
    early_.Erase(id);
    Join(f, stored, out);
  }
}

void FeedbackStage::OnFeedback(Feedback& f, Outbox& out) {
  if (Stored* stored = outcomes_.Find(f.request_id)) {
    Join(f, *stored, out);
    return;
  }
  if (early_.Contains(f.request_id)) {
    Ack(f, Reason::kDuplicateFeedback, "feedback for this request is already waiting", out);
    return;
  }
  // Its outcome may still be on the way from dispatch.
  if (early_.size() >= kMaxEarlyFeedback) {
    early_.EvictOldest([&](const std::string&, Feedback&& old) {
      Ack(old, Reason::kEvicted, "too much feedback waiting for its outcomes", out);
    });
  }
  const std::string id = f.request_id;
  early_.Insert(id, std::move(f), ctx_.clock.Now() + options_.early_feedback_wait);
}

void FeedbackStage::Join(Feedback& f, Stored& stored, Outbox& out) {
  if (stored.joined) {
    Ack(f, Reason::kDuplicateFeedback, "this request's feedback was already recorded", out);
    return;
  }
  const Outcome& o = stored.outcome;
  const router::Decision& d = o.decision;
  auto answered = [&](uint32_t model) {
    for (size_t k = 0; k < d.run.size(); ++k) {
      if (d.run[k] == model) return o.calls[k].ok;
    }
    return false;
  };
  labels_.clear();
  size_t skipped = 0;
  if (f.satisfaction) {
    if (answered(d.served)) labels_.push_back({d.served, *f.satisfaction});
  } else {
    for (const auto& [name, s] : f.labels) {
      const auto m =
          static_cast<uint32_t>(std::find(zoo_.begin(), zoo_.end(), name) - zoo_.begin());
      if (m < zoo_.size() && answered(m)) {
        labels_.push_back({m, s});
      } else {
        ++skipped;
      }
    }
  }
  if (labels_.empty()) {
    Ack(f, Reason::kNotRun, "no label is for a model that answered this request", out);
    return;
  }
  if (skipped > 0) out.Count(Reason::kNotRun, static_cast<double>(skipped));
  if (Status st = router_->RecordFeedback(d, o.features, labels_); !st.ok()) {
    Ack(f, Reason::kRejectedByRouter, st.message(), out);
    return;
  }
  update_.kind = UpdateKind::kFeedback;
  update_.decision = d;
  update_.costs.clear();
  update_.labels = labels_;
  update_.dim = o.dim;
  // A joined outcome needs no features: they go to the update, whose old buffers stay with
  // the entry (emptied) for reuse.
  std::swap(update_.features, stored.outcome.features);
  stored.outcome.features.clear();
  Publish(out);
  stored.joined = true;
  feedback_applied_->Increment();
  for (const router::ModelLabel& l : labels_) {
    if (l.model == d.served) sla_.RecordSatisfaction(d.tenant, l.satisfaction);
  }
  sla_.SetQueue(d.tenant, router_->policy().queue(d.tenant).q_tracked());
  AckOk(f, static_cast<uint32_t>(labels_.size()),
        skipped > 0
            ? fmt::format("{} label(s) for models that did not answer were ignored", skipped)
            : std::string(),
        out);
}

prometheus::Counter& FeedbackStage::WindowClosed(bool joined) {
  // Looked up once per label value, on first use (as the per-outcome lookup did).
  prometheus::Counter*& c = joined ? window_closed_joined_ : window_closed_none_;
  if (c == nullptr) c = &window_closed_->Add({{"feedback", joined ? "joined" : "none"}});
  return *c;
}

void FeedbackStage::Ack(const Feedback& f, Reason reason, const std::string& message, Outbox& out) {
  out.Count(reason);
  if (f.token == 0) return;  // not sent through ingest: nobody to tell
  ack_.request_id = f.request_id;
  ack_.token = f.token;
  ack_.status = ReasonName(reason);
  ack_.message = message;
  ack_.applied = 0;
  ack_.seq = seq_;
  out.Send(kAcks, ack_);
}

void FeedbackStage::AckOk(const Feedback& f, uint32_t applied, const std::string& message,
                          Outbox& out) {
  if (f.token == 0) return;
  ack_.request_id = f.request_id;
  ack_.token = f.token;
  ack_.status = "ok";
  ack_.message = message;
  ack_.applied = applied;
  ack_.seq = seq_;  // the update that carried this feedback (published just before)
  out.Send(kAcks, ack_);
}

Status FeedbackStage::Checkpoint() {
  const std::string& path = options_.checkpoint_path;
  if (path.empty()) return Status::Ok();
  feedback::Checkpoint c;
  c.epoch = epoch_;
  c.seq = seq_;
  c.router_state = router_->SaveState();
  const TimePoint now = ctx_.clock.Now();
  outcomes_.ForEachOldestFirst([&](const std::string&, const Stored& s, TimePoint) {
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.arrived);
    c.outcomes.push_back(
        {s.outcome, static_cast<uint64_t>(std::max<int64_t>(0, age.count())), s.joined});
  });
  MESSPLUS_RETURN_IF_ERROR(WriteCheckpoint(path, c));
  checkpointed_seq_ = seq_;
  return Status::Ok();
}

void FeedbackStage::OnTick(TimePoint now, Outbox& out) {
  const size_t closed = outcomes_.Expire(
      now, [&](const std::string&, Stored&& s) { WindowClosed(s.joined).Increment(); });
  if (closed > 0) window_gauge_->Set(static_cast<double>(outcomes_.size()));
  early_.Expire(now, [&](const std::string&, Feedback&& f) {
    Ack(f, Reason::kUnknownRequest, "no outcome for this request id (unknown or expired)", out);
  });
  if (now >= next_heartbeat_) {
    next_heartbeat_ = now + options_.heartbeat_interval;
    pipeline::StateUpdate heartbeat;
    heartbeat.epoch = epoch_;
    heartbeat.seq = seq_;
    heartbeat.kind = UpdateKind::kHeartbeat;
    out.Send(kUpdates, heartbeat);
  }
  if (!options_.checkpoint_path.empty() && now >= next_checkpoint_) {
    next_checkpoint_ = now + options_.checkpoint_period;
    if (seq_ != checkpointed_seq_) {
      if (Status st = Checkpoint(); !st.ok())
        ctx_.log->error("feedback: checkpoint failed: {}", st.message());
    }
  }
}

void FeedbackStage::OnShutdown(Outbox& out) {
  early_.Drain([&](const std::string&, Feedback&& f) {
    Ack(f, Reason::kShutdown, "the feedback collector stopped before the outcome arrived", out);
  });
  if (Status st = Checkpoint(); !st.ok()) {
    ctx_.log->error("feedback: final checkpoint failed: {}", st.message());
  } else if (!options_.checkpoint_path.empty()) {
    ctx_.log->info("feedback: checkpoint written at seq {} ({} outcomes in the window)", seq_,
                   outcomes_.size());
  }
}

}  // namespace messplus::stages::feedback
