#include "stages/dispatch/dispatch_stage.h"

#include <algorithm>

#include <fmt/format.h>

namespace messplus::stages::dispatch {

using pipeline::CallOutcome;
using pipeline::ClientReply;
using pipeline::Config;
using pipeline::DecisionMsg;
using pipeline::Inbound;
using pipeline::ModelReply;
using pipeline::MsgType;
using pipeline::Outbox;
using pipeline::Outcome;
using pipeline::PortSpec;
using pipeline::Reason;
using pipeline::ReasonName;
using pipeline::StageContext;
using pipeline::TimePoint;
using pipeline::TypeBit;
using pipeline::WorkerHeartbeat;
using pipeline::WorkerReady;

std::vector<PortSpec> DispatchStage::Ports(const Config& c) {
  const int hwm = c.dispatch.hwm;
  return {
      {"workers", zmq::socket_type::router, c.endpoints.workers, true, true,
       TypeBit(MsgType::kModelReply) | TypeBit(MsgType::kWorkerReady) |
           TypeBit(MsgType::kWorkerHeartbeat),
       true, true, hwm},
      {"decisions", zmq::socket_type::pull, c.endpoints.decisions, true, true,
       TypeBit(MsgType::kDecision), false, false, hwm},
      {"replies", zmq::socket_type::push, c.endpoints.replies, false, false, 0, false, false, hwm},
      {"outcomes", zmq::socket_type::push, c.endpoints.feedback, false, false, 0, false, false,
       hwm},
  };
}

DispatchStage::DispatchStage(StageContext& ctx)
    : ctx_(ctx), options_(ctx.config.dispatch), zoo_(ctx.config.ModelNames()) {
  idle_.resize(zoo_.size());
  waiting_.resize(zoo_.size());
  auto& registry = ctx.metrics.registry();
  const prometheus::Labels stage{{"stage", "dispatch"}};
  auto& workers = prometheus::BuildGauge()
                      .Name("messplus_dispatch_workers")
                      .Help("Live workers per model")
                      .Labels(stage)
                      .Register(registry);
  auto& waiting = prometheus::BuildGauge()
                      .Name("messplus_dispatch_waiting_calls")
                      .Help("Calls waiting for a worker, per model")
                      .Labels(stage)
                      .Register(registry);
  calls_family_ = &prometheus::BuildCounter()
                       .Name("messplus_dispatch_calls_total")
                       .Help("Model calls finished, by model and result")
                       .Labels(stage)
                       .Register(registry);
  auto& retries = prometheus::BuildCounter()
                      .Name("messplus_dispatch_retries_total")
                      .Help("Calls retried on another worker, by model")
                      .Labels(stage)
                      .Register(registry);
  for (const std::string& m : zoo_) {
    workers_gauge_.push_back(&workers.Add({{"model", m}}));
    waiting_gauge_.push_back(&waiting.Add({{"model", m}}));
    calls_ok_.push_back(&calls_family_->Add({{"model", m}, {"result", "ok"}}));
    calls_failed_.push_back(&calls_family_->Add({{"model", m}, {"result", "failed"}}));
    retries_.push_back(&retries.Add({{"model", m}}));
  }
  workers_lost_ = &prometheus::BuildCounter()
                       .Name("messplus_dispatch_workers_lost_total")
                       .Help("Workers dropped as dead (silent or timed out)")
                       .Labels(stage)
                       .Register(registry)
                       .Add({});
}

bool DispatchStage::Accepting(size_t port) const {
  return port != kDecisions || calls_.size() < options_.max_pending_calls;
}

size_t DispatchStage::live_workers(uint32_t model) const {
  return static_cast<size_t>(std::count_if(workers_.begin(), workers_.end(),
                                           [&](const auto& w) { return w.second.model == model; }));
}

void DispatchStage::UpdateGauges() {
  live_.assign(zoo_.size(), 0.0);
  for (const auto& [id, w] : workers_) live_[w.model] += 1.0;
  for (size_t m = 0; m < zoo_.size(); ++m) {
    workers_gauge_[m]->Set(live_[m]);
    waiting_gauge_[m]->Set(static_cast<double>(waiting_[m].size()));
  }
}

void DispatchStage::OnMessage(Inbound& in, Outbox& out) {
  if (auto* d = std::get_if<DecisionMsg>(&in.message)) {
    OnDecision(*d, out);
  } else {
    OnWorkerMessage(in, out);
  }
}

void DispatchStage::OnDecision(DecisionMsg& d, Outbox& out) {
  auto [rit, inserted] = request_pool_.FindOrInsert(requests_, d.request.id);
  if (!inserted) {
    out.Count(Reason::kDuplicateId);
    ctx_.log->warn("dispatch: request {} is already in flight; dropping the second decision",
                   d.request.id);
    return;
  }
  const std::string& id = rit->first;  // stable: map nodes do not move
  InFlight& f = rit->second;
  run_ = d.decision.run;
  // Swapped, not moved: the decoder's slot gets the buffers of a finished request back.
  std::swap(f.decision, d);
  f.results.resize(run_.size());
  for (CallResult& r : f.results) {
    r.ok = false;
    r.cost = 0.0;
    r.answer.clear();
    r.metadata.clear();
    r.reason = Reason::kWorkerFailed;
    r.error.clear();
  }
  f.remaining = run_.size();
  for (size_t k = 0; k < run_.size(); ++k) {
    const uint64_t call_id = ++next_call_;
    Call& c = call_pool_.FindOrInsert(calls_, call_id).first->second;
    c.request_id = id;
    c.model = run_[k];
    c.slot = k;
    c.attempt = 1;
    c.worker.clear();
    c.avoid.clear();
    c.deadline = TimePoint{};
    Assign(call_id, out);
  }
  UpdateGauges();
}

bool DispatchStage::PopIdle(uint32_t model, const std::string& avoid, std::string* identity) {
  std::deque<std::string>& q = idle_[model];
  auto valid = [&](const std::string& id) {
    auto it = workers_.find(id);
    return it != workers_.end() && it->second.call == 0 && it->second.in_idle_queue &&
           it->second.model == model;
  };
  // Drop stale entries at the front (workers that died or changed model).
  while (!q.empty() && !valid(q.front())) q.pop_front();
  if (q.empty()) return false;
  auto pick = q.begin();
  if (!avoid.empty() && *pick == avoid) {
    // Another worker of the model, when there is one: the retry goes elsewhere.
    auto other = std::find_if(q.begin() + 1, q.end(),
                              [&](const std::string& id) { return id != avoid && valid(id); });
    if (other != q.end()) pick = other;
  }
  *identity = std::move(*pick);
  q.erase(pick);
  workers_[*identity].in_idle_queue = false;
  return true;
}

void DispatchStage::Assign(uint64_t call_id, Outbox& out) {
  Call& c = calls_[call_id];
  const TimePoint now = ctx_.clock.Now();
  c.deadline = now + options_.call_timeout;
  const InFlight& f = requests_[c.request_id];
  std::string identity;
  // Bounded by the number of idle workers: each failed send drops one.
  while (PopIdle(c.model, c.avoid, &identity)) {
    call_msg_.request_id = c.request_id;
    call_msg_.call_id = call_id;
    call_msg_.model = zoo_[c.model];
    call_msg_.text = f.decision.request.text;
    call_msg_.task = f.decision.request.task;
    call_msg_.attempt = c.attempt;
    to_.assign(1, identity);
    if (out.Send(kWorkers, call_msg_, &to_)) {
      workers_[identity].call = call_id;
      c.worker = identity;
      return;
    }
    // Unroutable: the worker is gone (counted by the outbox).
    workers_.erase(identity);
    workers_lost_->Increment();
  }
  c.worker.clear();
  waiting_[c.model].push_back(call_id);
}

void DispatchStage::ServeWaiting(uint32_t model, Outbox& out) {
  std::deque<uint64_t>& q = waiting_[model];
  while (!q.empty() && !idle_[model].empty()) {
    const uint64_t call_id = q.front();
    q.pop_front();
    auto it = calls_.find(call_id);
    if (it == calls_.end() || !it->second.worker.empty()) continue;  // failed meanwhile
    Assign(call_id, out);
    // Assign re-queues at the back when the idle workers turned out to be gone.
    if (calls_.count(call_id) && calls_[call_id].worker.empty()) break;
  }
}

void DispatchStage::MakeIdle(const std::string& identity, Outbox& out) {
  Worker& w = workers_[identity];
  w.call = 0;
  if (!w.in_idle_queue) {
    w.in_idle_queue = true;
    idle_[w.model].push_back(identity);
  }
  ServeWaiting(w.model, out);
}

void DispatchStage::OnWorkerMessage(Inbound& in, Outbox& out) {
  if (in.from.size() != 1) {
    out.Reject(in, Reason::kMalformedMsgpack, "workers must connect a DEALER socket");
    return;
  }
  const std::string& identity = in.from[0];
  const TimePoint expiry =
      ctx_.clock.Now() + options_.heartbeat_interval * options_.heartbeat_liveness;

  if (auto* ready = std::get_if<WorkerReady>(&in.message)) {
    const auto m = static_cast<uint32_t>(std::find(zoo_.begin(), zoo_.end(), ready->model) -
                                         zoo_.begin());  // validated
    auto it = workers_.find(identity);
    if (it != workers_.end() && it->second.call != 0) {
      // A worker that announces itself again has lost what it was doing.
      const uint64_t lost = it->second.call;
      it->second.call = 0;
      CallFailed(lost, Reason::kWorkerFailed, "worker restarted during the call", out);
    }
    Worker& w = workers_[identity];
    if (w.model != m) w.in_idle_queue = false;  // any old queue entry is now stale
    w.model = m;
    w.name = ready->worker;
    w.expiry = expiry;
    ctx_.log->info("dispatch: worker {} ready for {}", w.name.empty() ? "(unnamed)" : w.name,
                   ready->model);
    MakeIdle(identity, out);
    UpdateGauges();
    return;
  }
  if (const auto* hb = std::get_if<WorkerHeartbeat>(&in.message)) {
    auto it = workers_.find(identity);
    if (it != workers_.end()) {
      it->second.expiry = expiry;
      return;
    }
    // A worker we had given up on (silent for a while, or a slow call) is alive after all:
    // any sign of life means it is ready, when it says which model it serves.
    const auto m =
        static_cast<uint32_t>(std::find(zoo_.begin(), zoo_.end(), hb->model) - zoo_.begin());
    if (m >= zoo_.size()) return;
    Worker& w = workers_[identity];
    w.model = m;
    w.expiry = expiry;
    MakeIdle(identity, out);
    UpdateGauges();
    return;
  }
  auto* reply = std::get_if<ModelReply>(&in.message);
  if (reply == nullptr) return;
  auto wit = workers_.find(identity);
  if (wit == workers_.end()) {
    // A worker we had given up on answered after all: it is alive and idle again.
    Worker& w = workers_[identity];
    w.model =
        static_cast<uint32_t>(std::find(zoo_.begin(), zoo_.end(), reply->model) - zoo_.begin());
    wit = workers_.find(identity);
  }
  wit->second.expiry = expiry;
  auto cit = calls_.find(reply->call_id);
  if (cit == calls_.end() || cit->second.worker != identity) {
    out.Count(Reason::kUnknownRequest);  // a late answer to a call retried or failed since
    if (wit->second.call == 0) MakeIdle(identity, out);
    UpdateGauges();
    return;
  }
  const uint64_t call_id = reply->call_id;
  Call& c = cit->second;
  wit->second.call = 0;
  if (reply->model != zoo_[c.model]) {
    CallFailed(call_id, Reason::kWorkerFailed,
               "worker answered as '" + reply->model + "' for '" + zoo_[c.model] + "'", out);
  } else if (!reply->error.empty()) {
    CallFailed(call_id, Reason::kWorkerFailed, reply->error, out);
  } else {
    if (CallResult* r = ResultOf(c)) {
      r->ok = true;
      r->cost = reply->cost;
      // Swapped: the decoder's slot keeps warm buffers.
      r->answer.swap(reply->answer);
      r->metadata.swap(reply->metadata);
      r->reason = Reason::kWorkerFailed;
      r->error.clear();
    }
    Finish(cit, true, Reason::kWorkerFailed, out);
  }
  MakeIdle(identity, out);
  UpdateGauges();
}

void DispatchStage::CallFailed(uint64_t call_id, Reason reason, const std::string& detail,
                               Outbox& out) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  Call& c = it->second;
  if (static_cast<int>(c.attempt) <= options_.retries) {
    ++c.attempt;
    c.avoid = c.worker;
    c.worker.clear();
    retries_[c.model]->Increment();
    ctx_.log->info("dispatch: retrying call {} of {} on {} ({})", call_id, c.request_id,
                   zoo_[c.model], detail);
    Assign(call_id, out);
    return;
  }
  CallResult r;
  r.reason = reason;
  r.error = detail;
  CallDone(call_id, std::move(r), out);
}

DispatchStage::CallResult* DispatchStage::ResultOf(const Call& c) {
  auto rit = requests_.find(c.request_id);
  return rit == requests_.end() ? nullptr : &rit->second.results[c.slot];
}

void DispatchStage::CallDone(uint64_t call_id, CallResult result, Outbox& out) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  const bool ok = result.ok;
  const Reason reason = result.reason;
  if (CallResult* r = ResultOf(it->second)) *r = std::move(result);
  Finish(it, ok, reason, out);
}

void DispatchStage::Finish(CallMap::iterator it, bool ok, Reason reason, Outbox& out) {
  // Out of the table first; the node (and its strings) is recycled once done with.
  CallMap::node_type node = calls_.extract(it);
  const Call& c = node.mapped();
  (ok ? calls_ok_ : calls_failed_)[c.model]->Increment();
  if (!ok) out.Count(reason);
  auto rit = requests_.find(c.request_id);
  if (rit != requests_.end() && --rit->second.remaining == 0) Complete(rit, out);
  call_pool_.Recycle(std::move(node));
}

void DispatchStage::Complete(RequestMap::iterator it, Outbox& out) {
  const std::string& request_id = it->first;
  InFlight& f = it->second;
  const router::Decision& d = f.decision.decision;

  // reply_ and outcome_ are reused: every field is set (or cleared) here, and buffers are
  // swapped rather than moved so both sides stay warm.
  ClientReply& reply = reply_;
  reply.request_id = request_id;
  reply.model.clear();
  reply.answer.clear();
  reply.cost = 0.0;
  reply.total_cost = 0.0;
  reply.explored = false;
  reply.error_code.clear();
  reply.error_message.clear();
  size_t run_ok = 0;
  size_t predicted = 0;
  CallResult& served = f.results[0];  // run[0] is the served model
  if (served.ok) {
    reply.model = zoo_[d.served];
    reply.answer.swap(served.answer);  // served.answer is not read again
    reply.cost = served.cost;
    reply.explored = d.explore;
    reply.metadata = served.metadata;  // copy-assigned: reuses the elements' capacity
    for (size_t k = 0; k < d.run.size(); ++k) {
      if (!f.results[k].ok) continue;
      reply.total_cost += f.results[k].cost;
      if (reply.models_run.size() <= run_ok) reply.models_run.emplace_back();
      reply.models_run[run_ok++] = zoo_[d.run[k]];
    }
    for (size_t m = 0; m < zoo_.size(); ++m) {
      if (reply.predicted.size() <= predicted) reply.predicted.emplace_back();
      reply.predicted[predicted].first = zoo_[m];
      reply.predicted[predicted++].second = d.p[m];
    }
  } else {
    reply.metadata.clear();
    reply.error_code = ReasonName(served.reason);
    reply.error_message.assign("model '").append(zoo_[d.served]).append("': ").append(served.error);
  }
  reply.models_run.resize(run_ok);
  reply.predicted.resize(predicted);

  Outcome& outcome = outcome_;
  outcome.request_id = request_id;
  outcome.tenant = f.decision.request.tenant;
  outcome.task = f.decision.request.task;
  outcome.dim = f.decision.dim;
  outcome.calls.resize(d.run.size());
  for (size_t k = 0; k < d.run.size(); ++k) {
    CallResult& r = f.results[k];
    CallOutcome& c = outcome.calls[k];
    c.model = zoo_[d.run[k]];
    c.ok = r.ok;
    c.cost = r.ok ? r.cost : 0.0;
    c.metadata.swap(r.metadata);
    c.error.swap(r.error);
  }
  // The request's buffers go to the outcome and the outcome's old ones come back to the
  // request's entry, for the next request to reuse.
  std::swap(outcome.decision, f.decision.decision);
  std::swap(outcome.features, f.decision.features);
  // The outcome first: the client's feedback can only follow the reply.
  out.Send(kOutcomes, outcome);
  out.Send(kReplies, reply);
  request_pool_.Erase(requests_, it);
}

void DispatchStage::RemoveWorker(const std::string& identity, Reason reason,
                                 const std::string& detail, Outbox& out) {
  auto it = workers_.find(identity);
  if (it == workers_.end()) return;
  const uint64_t call = it->second.call;
  ctx_.log->warn("dispatch: worker {} of {} is dead: {}", it->second.name, zoo_[it->second.model],
                 detail);
  workers_.erase(it);
  workers_lost_->Increment();
  if (call != 0) CallFailed(call, reason, detail, out);
}

void DispatchStage::OnTick(TimePoint now, Outbox& out) {
  if (now >= next_heartbeat_) {
    next_heartbeat_ = now + options_.heartbeat_interval;
    std::vector<std::string> silent;
    for (const auto& [identity, w] : workers_) {
      if (w.call != 0) continue;  // busy workers are judged by the call timeout
      if (w.expiry < now) {
        silent.push_back(identity);
        continue;
      }
      to_.assign(1, identity);
      out.Send(kWorkers, WorkerHeartbeat{}, &to_);
    }
    for (const std::string& identity : silent) {
      RemoveWorker(identity, Reason::kWorkerFailed, "no heartbeat", out);
    }
    if (!silent.empty()) UpdateGauges();
  }

  std::vector<uint64_t> late;
  for (const auto& [id, c] : calls_) {
    if (c.deadline <= now) late.push_back(id);
  }
  std::sort(late.begin(), late.end());  // oldest call first: deterministic order
  const std::string timeout_ms = std::to_string(options_.call_timeout.count());
  for (uint64_t id : late) {
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second.deadline > now) continue;
    if (!it->second.worker.empty()) {
      RemoveWorker(it->second.worker, Reason::kTimeout,
                   "no answer to call " + std::to_string(id) + " within " + timeout_ms + " ms",
                   out);
    } else {
      CallResult r;
      r.reason = Reason::kNoWorker;
      r.error = "no live worker within " + timeout_ms + " ms";
      CallDone(id, std::move(r), out);
    }
  }
  if (!late.empty()) UpdateGauges();
}

void DispatchStage::OnShutdown(Outbox& out) {
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : calls_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) {
    CallResult r;
    r.reason = Reason::kShutdown;
    r.error = "dispatch is shutting down";
    CallDone(id, std::move(r), out);
  }
}

}  // namespace messplus::stages::dispatch
