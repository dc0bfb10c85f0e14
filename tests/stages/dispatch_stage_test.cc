#include "stages/dispatch/dispatch_stage.h"

#include <gtest/gtest.h>

#include "tests/stages/stage_test_util.h"

namespace messplus::stages::dispatch {
namespace {

using pipeline::ClientReply;
using pipeline::DecisionMsg;
using pipeline::Envelope;
using pipeline::ModelCall;
using pipeline::ModelReply;
using pipeline::Outcome;
using pipeline::Reason;
using pipeline::WorkerHeartbeat;
using pipeline::WorkerReady;
using testing::StageFixture;

constexpr const char* kFast =
    "dispatch: {call_timeout_ms: 1000, heartbeat_interval_ms: 100}\nworker: "
    "{heartbeat_interval_ms: 50}\n";

DecisionMsg MakeDecision(const std::string& id, std::vector<uint32_t> run, bool explore = false) {
  DecisionMsg d;
  d.request.id = id;
  d.request.text = "question " + id;
  d.request.tenant = "gold";
  d.dim = 4096;
  d.features.push_back(1, 1.0f);
  router::Decision& r = d.decision;
  r.t = 1;
  r.served = run[0];
  r.chosen = run[0];
  r.run = std::move(run);
  r.explore = explore;
  r.p = {0.4, 0.5, 0.6};
  r.score = {0, 0, 0};
  r.cost_estimate = {1, 2, 3};
  r.run_probability = {0, 1, 0};
  r.alpha = 0.6;
  return d;
}

ModelReply Answer(const ModelCall& call, double cost) {
  ModelReply r;
  r.call_id = call.call_id;
  r.request_id = call.request_id;
  r.model = call.model;
  r.answer = "answer of " + call.model;
  r.cost = cost;
  r.metadata = {{"recorded_satisfaction", "1"}};
  return r;
}

TEST(DispatchStage, CallsAReadyWorkerAndRepliesWithOutcomeFirst) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  const Envelope w = {"w1"};
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"medium", "w1"}, w);
  EXPECT_EQ(stage.live_workers(1), 1u);
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {1}));
  auto calls = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].model, "medium");
  EXPECT_EQ(calls[0].text, "question r1");
  EXPECT_EQ(f.out.sent().back().to, w);

  f.out.Clear();
  f.Deliver(stage, DispatchStage::kWorkers, Answer(calls[0], 390.0), w);
  ASSERT_EQ(f.out.sent().size(), 2u);
  ASSERT_TRUE(std::holds_alternative<Outcome>(f.out.sent()[0].message));  // outcome first
  const Outcome& o = std::get<Outcome>(f.out.sent()[0].message);
  EXPECT_EQ(o.calls.size(), 1u);
  EXPECT_TRUE(o.calls[0].ok);
  EXPECT_DOUBLE_EQ(o.calls[0].cost, 390.0);
  const ClientReply& reply = std::get<ClientReply>(f.out.sent()[1].message);
  EXPECT_TRUE(reply.ok());
  EXPECT_EQ(reply.model, "medium");
  EXPECT_DOUBLE_EQ(reply.total_cost, 390.0);
  EXPECT_EQ(reply.predicted.size(), 3u);
  EXPECT_TRUE(stage.Idle());
}

TEST(DispatchStage, ExploredRequestWaitsForEveryCall) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"large", ""}, {"wl"});
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"ws"});
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {2, 0}, true));
  auto calls = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ASSERT_EQ(calls.size(), 2u);
  f.Deliver(stage, DispatchStage::kWorkers, Answer(calls[1], 80.0), {"ws"});
  EXPECT_TRUE(f.out.Of<ClientReply>(DispatchStage::kReplies).empty());
  f.Deliver(stage, DispatchStage::kWorkers, Answer(calls[0], 2000.0), {"wl"});
  auto replies = f.out.Of<ClientReply>(DispatchStage::kReplies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].model, "large");
  EXPECT_TRUE(replies[0].explored);
  EXPECT_DOUBLE_EQ(replies[0].cost, 2000.0);
  EXPECT_DOUBLE_EQ(replies[0].total_cost, 2080.0);
  EXPECT_EQ(replies[0].models_run, (std::vector<std::string>{"large", "small"}));
}

TEST(DispatchStage, CallWaitsForAWorkerAndUsesTheLeastRecentlyUsed) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {0}));
  EXPECT_TRUE(f.out.Of<ModelCall>(DispatchStage::kWorkers).empty());
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"a"});
  auto calls = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ASSERT_EQ(calls.size(), 1u);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"b"});
  f.Deliver(stage, DispatchStage::kWorkers, Answer(calls[0], 1.0), {"a"});  // a idle again, after b
  f.out.Clear();
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r2", {0}));
  ASSERT_EQ(f.out.sent().size(), 1u);
  EXPECT_EQ(f.out.sent()[0].to, Envelope{"b"});
}

TEST(DispatchStage, SilentWorkerIsMarkedDeadAndTheCallRetriedOnAnother) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"a"});
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"b"});
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {0}));
  auto first = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ASSERT_EQ(first.size(), 1u);
  const Envelope dead = f.out.sent().back().to;
  // b stays alive with heartbeats; the busy worker never answers.
  const Envelope alive = dead == Envelope{"a"} ? Envelope{"b"} : Envelope{"a"};
  f.out.Clear();
  for (int i = 0; i < 10; ++i) {
    f.Deliver(stage, DispatchStage::kWorkers, WorkerHeartbeat{"small"}, alive);
    f.Advance(stage, std::chrono::milliseconds(101));
  }
  auto retried = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].attempt, 2u);
  EXPECT_EQ(stage.live_workers(0), 1u);
  testing::Sent* call_sent = nullptr;
  for (auto& s : f.out.sent()) {
    if (std::holds_alternative<ModelCall>(s.message)) call_sent = &s;
  }
  ASSERT_NE(call_sent, nullptr);
  EXPECT_EQ(call_sent->to, alive);
  f.Deliver(stage, DispatchStage::kWorkers, Answer(retried[0], 5.0), alive);
  auto replies = f.out.Of<ClientReply>(DispatchStage::kReplies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].ok());
}

TEST(DispatchStage, CallFailsAfterTheRetryWithAnError) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"a"});
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {0}));
  auto calls = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ModelReply bad;
  bad.call_id = calls[0].call_id;
  bad.model = "small";
  bad.error = "GPU on fire";
  f.Deliver(stage, DispatchStage::kWorkers, bad, {"a"});  // attempt 1 fails
  calls = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  ASSERT_EQ(calls.size(), 2u);  // retried (on the only worker there is)
  bad.call_id = calls[1].call_id;
  f.Deliver(stage, DispatchStage::kWorkers, bad, {"a"});  // attempt 2 fails
  auto replies = f.out.Of<ClientReply>(DispatchStage::kReplies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "worker_failed");
  auto outcomes = f.out.Of<Outcome>(DispatchStage::kOutcomes);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].calls[0].ok);
}

TEST(DispatchStage, NoLiveWorkerFailsAfterTheTimeout) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {2}));
  f.Advance(stage, std::chrono::milliseconds(999));
  EXPECT_TRUE(f.out.Of<ClientReply>(DispatchStage::kReplies).empty());
  f.Advance(stage, std::chrono::milliseconds(2));
  auto replies = f.out.Of<ClientReply>(DispatchStage::kReplies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "no_worker");
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kNoWorker), 1.0);
  EXPECT_TRUE(stage.Idle());
}

TEST(DispatchStage, IdleWorkersGetHeartbeatsAndExpireWhenSilent) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"a"});
  f.Advance(stage, std::chrono::milliseconds(1));
  EXPECT_EQ(f.out.Of<WorkerHeartbeat>(DispatchStage::kWorkers).size(), 1u);
  for (int i = 0; i < 5; ++i) f.Advance(stage, std::chrono::milliseconds(100));
  EXPECT_EQ(stage.live_workers(0), 0u);
}

TEST(DispatchStage, LateReplyIsCountedAndRevivesTheWorker) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerReady{"small", ""}, {"a"});
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {0}));
  auto calls = f.out.Of<ModelCall>(DispatchStage::kWorkers);
  f.Advance(stage, std::chrono::milliseconds(1001));  // a is dead; the retry waits
  EXPECT_EQ(stage.live_workers(0), 0u);
  f.Deliver(stage, DispatchStage::kWorkers, Answer(calls[0], 1.0), {"a"});
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kUnknownRequest), 1.0);
  EXPECT_EQ(stage.live_workers(0), 1u);
  // ... and takes the waiting retry.
  EXPECT_EQ(f.out.Of<ModelCall>(DispatchStage::kWorkers).size(), 2u);
}

TEST(DispatchStage, HeartbeatFromAForgottenWorkerRegistersItAgain) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerHeartbeat{"large"}, {"z"});
  EXPECT_EQ(stage.live_workers(2), 1u);
  f.Deliver(stage, DispatchStage::kWorkers, WorkerHeartbeat{""}, {"anonymous"});
  EXPECT_EQ(stage.live_workers(0) + stage.live_workers(1) + stage.live_workers(2), 1u);
}

TEST(DispatchStage, StopsReadingDecisionsAtTheCallLimit) {
  StageFixture f("dispatch", "dispatch: {max_pending_calls: 2}\n");
  DispatchStage stage(f.ctx);
  EXPECT_TRUE(stage.Accepting(DispatchStage::kDecisions));
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {0}));
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r2", {0}));
  EXPECT_FALSE(stage.Accepting(DispatchStage::kDecisions));
  EXPECT_TRUE(stage.Accepting(DispatchStage::kWorkers));
}

TEST(DispatchStage, ShutdownFailsWhatIsLeft) {
  StageFixture f("dispatch", kFast);
  DispatchStage stage(f.ctx);
  f.Deliver(stage, DispatchStage::kDecisions, MakeDecision("r1", {0}));
  stage.OnShutdown(f.out);
  auto replies = f.out.Of<ClientReply>(DispatchStage::kReplies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "shutdown");
}

}  // namespace
}  // namespace messplus::stages::dispatch
