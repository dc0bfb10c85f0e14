#include "stages/route/route_stage.h"

#include "router/rng.h"

namespace messplus::stages::route {

using pipeline::Config;
using pipeline::DecisionMsg;
using pipeline::Features;
using pipeline::Inbound;
using pipeline::MsgType;
using pipeline::Outbox;
using pipeline::PortSpec;
using pipeline::Reason;
using pipeline::SnapshotRequest;
using pipeline::StageContext;
using pipeline::StateSnapshot;
using pipeline::StateUpdate;
using pipeline::TimePoint;
using pipeline::TypeBit;
using pipeline::UpdateKind;

std::vector<PortSpec> RouteStage::Ports(const Config& c) {
  const int hwm = c.route.hwm;
  return {
      // Updates queue here while a snapshot is awaited: give them room (PUB drops at HWM).
      {"updates", zmq::socket_type::sub, c.endpoints.updates, false, true,
       TypeBit(MsgType::kStateUpdate), false, false, std::max(hwm, 100000)},
      {"snapshots", zmq::socket_type::dealer, c.endpoints.snapshots, false, true,
       TypeBit(MsgType::kStateSnapshot) | TypeBit(MsgType::kError), false, false, hwm},
      {"features", zmq::socket_type::pull, c.endpoints.features, false, true,
       TypeBit(MsgType::kFeatures), false, false, hwm},
      {"decisions", zmq::socket_type::push, c.endpoints.decisions, false, false, 0, false, false,
       hwm},
  };
}

Result<std::unique_ptr<RouteStage>> RouteStage::Create(StageContext& ctx, int replica) {
  router::RouterConfig config = ctx.config.router;
  if (replica > 0) config.seed = Rng::Mix(config.seed, static_cast<uint64_t>(replica));
  config.instance = static_cast<uint64_t>(replica);
  Result<std::unique_ptr<router::Router>> r = router::Router::Create(config);
  if (!r.ok()) return r.status();
  return std::make_unique<RouteStage>(PassKey(), ctx, std::move(*r));
}

RouteStage::RouteStage(PassKey, StageContext& ctx, std::unique_ptr<router::Router> router)
    : ctx_(ctx),
      router_(std::move(router)),
      sla_(ctx.metrics.registry(), "route", ctx.config.router) {
  auto& registry = ctx.metrics.registry();
  resyncs_ = &prometheus::BuildCounter()
                  .Name("messplus_route_resyncs_total")
                  .Help("Snapshots requested, by cause")
                  .Labels({{"stage", "route"}})
                  .Register(registry);
  updates_applied_ = &prometheus::BuildCounter()
                          .Name("messplus_route_updates_applied_total")
                          .Help("state_updates applied to this replica's router")
                          .Labels({{"stage", "route"}})
                          .Register(registry)
                          .Add({});
  auto& after_seq = prometheus::BuildCounter()
                        .Name("messplus_route_after_seq_total")
                        .Help("Requests that waited for their after_seq, by how the wait ended")
                        .Labels({{"stage", "route"}})
                        .Register(registry);
  after_seq_reached_ = &after_seq.Add({{"outcome", "reached"}});
  after_seq_timeout_ = &after_seq.Add({{"outcome", "timeout"}});
  seq_gauge_ = &prometheus::BuildGauge()
                    .Name("messplus_route_state_seq")
                    .Help("Sequence number of the last learning event applied")
                    .Labels({{"stage", "route"}})
                    .Register(registry)
                    .Add({});
  synced_gauge_ = &prometheus::BuildGauge()
                       .Name("messplus_route_synced")
                       .Help("1 once the replica holds the collector's state, 0 while resyncing")
                       .Labels({{"stage", "route"}})
                       .Register(registry)
                       .Add({});
  decision_.dim = ctx.config.router.hashing.dim();
  nonce_ = static_cast<uint64_t>(ctx.clock.WallNanos());
  Resync("start");
}

void RouteStage::Resync(const char* cause) {
  synced_ = false;
  synced_gauge_->Set(0.0);
  awaiting_ = false;
  resyncs_->Add({{"cause", cause}}).Increment();
}

void RouteStage::RequestSnapshot(TimePoint now, Outbox& out) {
  ++nonce_;
  awaiting_ = out.Send(kSnapshots, SnapshotRequest{nonce_});
  snapshot_deadline_ = now + ctx_.config.route.snapshot_timeout;
}

void RouteStage::OnMessage(Inbound& in, Outbox& out) {
  if (auto* f = std::get_if<Features>(&in.message)) {
    OnFeatures(*f, out);
  } else if (auto* u = std::get_if<StateUpdate>(&in.message)) {
    OnUpdate(*u, out);
  } else if (auto* s = std::get_if<StateSnapshot>(&in.message)) {
    OnSnapshot(*s);
  } else if (auto* e = std::get_if<pipeline::ErrorReply>(&in.message)) {
    ctx_.log->warn("route: the collector refused a snapshot request: {}: {}", e->code, e->message);
  }
}

void RouteStage::OnFeatures(Features& f, Outbox& out) {
  if (parked_.empty() && f.request.after_seq <= seq_) {
    Decide(f, out);
    return;
  }
  // Rare (lockstep replays, read-your-feedback clients): the copy is not on the hot path.
  parked_.push_back({std::move(f), ctx_.clock.Now() + ctx_.config.route.after_seq_timeout});
  ReleaseParked(ctx_.clock.Now(), false, out);
}

void RouteStage::ReleaseParked(TimePoint now, bool all, Outbox& out) {
  while (!parked_.empty() && held_.empty()) {
    Parked& p = parked_.front();
    if (p.features.request.after_seq > seq_) {
      if (!all && now < p.deadline) return;
      after_seq_timeout_->Increment();
      ctx_.log->warn("route: request {} waited {} ms for state seq {} (at {}); deciding",
                     p.features.request.id, ctx_.config.route.after_seq_timeout.count(),
                     p.features.request.after_seq, seq_);
    } else if (p.features.request.after_seq > 0) {
      after_seq_reached_->Increment();
    }
    Decide(p.features, out);
    parked_.pop_front();
  }
}

void RouteStage::Decide(Features& f, Outbox& out) {
  Result<uint32_t> tenant = router_->TenantIndex(f.request.tenant);
  if (!tenant.ok()) {
    // Ingest admits configured tenants only: the stages' configurations differ.
    out.Count(Reason::kUnknownTenant);
    ctx_.log->error("route: request {} has unknown tenant '{}'", f.request.id, f.request.tenant);
    return;
  }
  router::RouteRequest request{&f.features, *tenant, f.request.task};
  if (Status st = router_->Decide(request, &decision_.decision); !st.ok()) {
    out.Count(Reason::kRejectedByRouter);
    ctx_.log->warn("route: Decide refused request {}: {}", f.request.id, st.message());
    return;
  }
  std::swap(decision_.request, f.request);    // swapped, like the features below
  std::swap(decision_.features, f.features);  // f is the runtime's scratch: keep both warm
  if (!held_.empty() || !out.Send(kDecisions, decision_)) held_.push_back(decision_);
  const router::Decision& d = decision_.decision;
  // Until its outcome comes back through the collector, the request counts in this
  // replica's queue at its predicted satisfaction.
  router_->NoteInFlight(d);
  double estimate = 0.0;
  for (uint32_t m : d.run) estimate += d.cost_estimate[m];
  sla_.SetQueue(*tenant, d.q);
  sla_.RecordRequest(d.served, d.explore, estimate);
}

void RouteStage::OnSnapshot(const StateSnapshot& s) {
  if (!awaiting_ || s.nonce != nonce_) return;  // an answer to an older request
  awaiting_ = false;
  if (Status st = router_->LoadState(s.state); !st.ok()) {
    ctx_.log->error("route: cannot load the collector's snapshot (seq {}): {}", s.seq,
                    st.message());
    return;  // asked again after snapshot_timeout
  }
  // The snapshot may hold outcomes of this replica's requests in flight whose updates it
  // never saw (a gap is a lost update): forget them all rather than count one for good.
  router_->ForgetInFlight();
  epoch_ = s.epoch;
  seq_ = s.seq;
  synced_ = true;
  synced_gauge_->Set(1.0);
  last_heard_ = ctx_.clock.Now();
  seq_gauge_->Set(static_cast<double>(seq_));
  for (uint32_t t = 0; t < ctx_.config.router.tenants.size(); ++t) {
    sla_.SetQueue(t, router_->policy().queue(t).q_tracked());
  }
  ctx_.log->info("route: loaded snapshot epoch {:x} seq {}", epoch_, seq_);
}

void RouteStage::OnUpdate(const StateUpdate& u, Outbox& out) {
  if (!synced_) return;  // not read while unsynced; a leftover after a resync
  last_heard_ = ctx_.clock.Now();
  if (u.epoch != epoch_) {
    Resync("epoch");
    return;
  }
  if (u.seq <= seq_) return;  // already in the snapshot (or a heartbeat)
  if (u.seq != seq_ + 1) {
    ctx_.log->info("route: update gap ({} after {}); asking for a snapshot", u.seq, seq_);
    Resync("gap");
    return;
  }
  Status st;
  if (u.kind == UpdateKind::kOutcome) {
    router_->ClearInFlight(u.decision);
    st = router_->RecordCosts(u.decision, u.costs);
  } else if (u.kind == UpdateKind::kFeedback) {
    st = router_->RecordFeedback(u.decision, u.features, u.labels);
  } else {
    // A heartbeat announcing a seq we have not seen: an update was lost.
    Resync("gap");
    return;
  }
  if (!st.ok()) {
    // The collector applied it, so this replica would diverge: start over from a snapshot.
    out.Count(Reason::kRejectedByRouter);
    ctx_.log->error("route: update {} refused by the router: {}", u.seq, st.message());
    Resync("rejected");
    return;
  }
  seq_ = u.seq;
  updates_applied_->Increment();
  seq_gauge_->Set(static_cast<double>(seq_));
  if (!parked_.empty()) ReleaseParked(ctx_.clock.Now(), false, out);
}

void RouteStage::OnShutdown(Outbox& out) {
  ReleaseParked(ctx_.clock.Now(), true, out);
  while (!held_.empty() && out.Send(kDecisions, held_.front())) held_.pop_front();
  if (!held_.empty()) out.Count(Reason::kShutdown, static_cast<double>(held_.size()));
}

void RouteStage::OnTick(TimePoint now, Outbox& out) {
  while (!held_.empty() && out.Send(kDecisions, held_.front())) held_.pop_front();
  ReleaseParked(now, false, out);
  if (synced_ && now - last_heard_ > ctx_.config.route.silence_timeout) {
    ctx_.log->warn("route: no update or heartbeat from the collector for {} ms; resyncing",
                   ctx_.config.route.silence_timeout.count());
    Resync("silence");
  }
  if (!synced_ && (!awaiting_ || now >= snapshot_deadline_)) RequestSnapshot(now, out);
}

}  // namespace messplus::stages::route
