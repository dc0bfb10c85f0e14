// The dispatch stage: runs each decision's model calls on the model workers, load-balanced
// with ready signals (zguide lbbroker / ppqueue, Paranoid Pirate heartbeats).
//
// Sockets (PortSpec order = the Port enum; workers are served before new decisions):
//   workers    ROUTER bind     <-> model workers (DEALER): worker_ready, worker_heartbeat,
//                                  model_reply in; model_call, worker_heartbeat out
//   decisions  PULL   bind     <- route replicas: decision
//   replies    PUSH   connect  -> ingest: client_reply
//   outcomes   PUSH   connect  -> feedback collector: outcome
//
// For each decision:
//   1. one call per model of decision.run, each given to the least recently used idle live
//      worker of its model, or queued until one is ready;
//   2. a worker that does not answer within dispatch.call_timeout is marked dead, and its
//      call is retried (dispatch.retries times) on another worker of the model; a worker's
//      error reply is retried likewise; then the call fails. A call that finds no live worker
//      within the timeout fails with `no_worker`;
//   3. when every call is done: an outcome (every call's status, cost and reply metadata) to
//      the collector, then a client_reply for the served model, or an error reply when the
//      served call failed.
// Workers: any message is a sign of life; idle workers get a heartbeat every
// dispatch.heartbeat_interval, and one silent for heartbeat_liveness intervals is dropped.
// Busy workers are judged by the call timeout instead. Nothing waits forever; while
// dispatch.max_pending_calls calls are in flight, decisions are not read (back-pressure).
//
// Thread safety: one thread (the runtime's).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "pipeline/node_pool.h"
#include "pipeline/runtime.h"

namespace messplus::stages::dispatch {

class DispatchStage final : public pipeline::Stage {
 public:
  enum Port : size_t { kWorkers = 0, kDecisions = 1, kReplies = 2, kOutcomes = 3 };
  static std::vector<pipeline::PortSpec> Ports(const pipeline::Config& config);

  explicit DispatchStage(pipeline::StageContext& ctx);

  void OnMessage(pipeline::Inbound& in, pipeline::Outbox& out) override;
  void OnTick(pipeline::TimePoint now, pipeline::Outbox& out) override;
  bool Accepting(size_t port) const override;
  bool Idle() const override { return requests_.empty(); }
  void OnShutdown(pipeline::Outbox& out) override;

  size_t live_workers(uint32_t model) const;
  size_t calls_in_flight() const { return calls_.size(); }
  size_t requests_in_flight() const { return requests_.size(); }

 private:
  struct Worker {
    uint32_t model = 0;
    std::string name;
    uint64_t call = 0;  // the call it is running; 0 when idle
    bool in_idle_queue = false;
    pipeline::TimePoint expiry{};
  };
  struct Call {
    std::string request_id;
    uint32_t model = 0;
    size_t slot = 0;  // position in decision.run
    uint32_t attempt = 1;
    std::string worker;  // identity of the worker running it; empty while queued
    std::string avoid;   // a worker that failed it
    pipeline::TimePoint deadline{};
  };
  struct CallResult {
    bool ok = false;
    double cost = 0.0;
    std::string answer;
    pipeline::StringMap metadata;
    pipeline::Reason reason = pipeline::Reason::kWorkerFailed;
    std::string error;
  };
  struct InFlight {
    pipeline::DecisionMsg decision;
    std::vector<CallResult> results;  // by slot
    size_t remaining = 0;
  };

  void OnDecision(pipeline::DecisionMsg& d, pipeline::Outbox& out);
  void OnWorkerMessage(pipeline::Inbound& in, pipeline::Outbox& out);
  void Assign(uint64_t call_id, pipeline::Outbox& out);
  bool PopIdle(uint32_t model, const std::string& avoid, std::string* identity);
  void MakeIdle(const std::string& identity, pipeline::Outbox& out);
  void ServeWaiting(uint32_t model, pipeline::Outbox& out);
  void RemoveWorker(const std::string& identity, pipeline::Reason reason, const std::string& detail,
                    pipeline::Outbox& out);
  void CallFailed(uint64_t call_id, pipeline::Reason reason, const std::string& detail,
                  pipeline::Outbox& out);
  using CallMap = std::unordered_map<uint64_t, Call>;
  using RequestMap = std::unordered_map<std::string, InFlight>;
  // The place of a call's result in its request; null when the request is gone.
  CallResult* ResultOf(const Call& c);
  void CallDone(uint64_t call_id, CallResult result, pipeline::Outbox& out);
  // Ends call `it` whose result is already in place (or whose request is gone).
  void Finish(CallMap::iterator it, bool ok, pipeline::Reason reason, pipeline::Outbox& out);
  void Complete(RequestMap::iterator it, pipeline::Outbox& out);
  void UpdateGauges();

  pipeline::StageContext& ctx_;
  const pipeline::DispatchOptions& options_;
  std::vector<std::string> zoo_;
  std::unordered_map<std::string, Worker> workers_;  // by ROUTER identity
  std::vector<std::deque<std::string>> idle_;        // per model, least recently used first
  std::vector<std::deque<uint64_t>> waiting_;        // per model, calls without a worker
  CallMap calls_;
  RequestMap requests_;
  // Erased entries of calls_ and requests_, reused (with their buffers) by the next ones.
  pipeline::NodePool<CallMap> call_pool_;
  pipeline::NodePool<RequestMap> request_pool_;
  std::vector<uint32_t> run_;    // scratch: the models of the decision being dispatched
  std::vector<double> live_;     // scratch of UpdateGauges
  pipeline::ClientReply reply_;  // reused output messages
  pipeline::Outcome outcome_;
  uint64_t next_call_ = 0;
  pipeline::TimePoint next_heartbeat_{};
  pipeline::ModelCall call_msg_;  // reused output message
  pipeline::Envelope to_;         // reused envelope of one worker
  std::vector<prometheus::Gauge*> workers_gauge_, waiting_gauge_;
  prometheus::Family<prometheus::Counter>* calls_family_;
  std::vector<prometheus::Counter*> calls_ok_, calls_failed_, retries_;
  prometheus::Counter* workers_lost_;
};

}  // namespace messplus::stages::dispatch
