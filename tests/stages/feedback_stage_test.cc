#include "stages/feedback/feedback_stage.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "router/router.h"
#include "tests/stages/stage_test_util.h"

namespace messplus::stages::feedback {
namespace {

using pipeline::CallOutcome;
using pipeline::Envelope;
using pipeline::Feedback;
using pipeline::FeedbackAck;
using pipeline::Outcome;
using pipeline::Reason;
using pipeline::SnapshotRequest;
using pipeline::StateSnapshot;
using pipeline::StateUpdate;
using pipeline::UpdateKind;
using testing::StageFixture;

// A decision made by a real router of the test config, and its outcome.
Outcome MakeOutcome(const pipeline::Config& config, const std::string& id, bool explore_ok = true) {
  auto router = router::Router::Create(config.router).value();
  router::SparseFeatures features;
  features.push_back(7, 1.0f);
  router::Decision d;
  EXPECT_TRUE(router->Decide({&features, 0, "task"}, &d).ok());
  // Force an explored decision over two models so per-model labels can be tested.
  d.run = {d.served, d.served == 0 ? 1u : 0u};
  d.explore = true;
  Outcome o;
  o.request_id = id;
  o.tenant = "gold";
  o.task = "task";
  o.decision = d;
  o.dim = config.router.hashing.dim();
  o.features = features;
  o.calls = {
      CallOutcome{config.router.models[d.run[0]].name, true, 10.0, {}, ""},
      CallOutcome{config.router.models[d.run[1]].name, explore_ok, explore_ok ? 5.0 : 0.0, {}, ""}};
  return o;
}

Feedback Satisfied(const std::string& id, double s, uint64_t token = 9) {
  Feedback f;
  f.request_id = id;
  f.satisfaction = s;
  f.token = token;
  return f;
}

TEST(FeedbackStage, OutcomeRecordsCostsAndPublishesUpdateOne) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  auto updates = f.out.Of<StateUpdate>(FeedbackStage::kUpdates);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].seq, 1u);
  EXPECT_EQ(updates[0].kind, UpdateKind::kOutcome);
  EXPECT_EQ(updates[0].costs.size(), 2u);
  EXPECT_EQ(stage->router().policy().costs().observations(updates[0].decision.run[0]), 1u);
  EXPECT_EQ(stage->window_size(), 1u);
}

TEST(FeedbackStage, FeedbackJoinsItsOutcomeAndIsAcked) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 1.0));
  auto updates = f.out.Of<StateUpdate>(FeedbackStage::kUpdates);
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].seq, 2u);
  EXPECT_EQ(updates[1].kind, UpdateKind::kFeedback);
  ASSERT_EQ(updates[1].labels.size(), 1u);
  EXPECT_EQ(updates[1].labels[0].model, updates[1].decision.served);
  EXPECT_FALSE(updates[1].features.empty());
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].ok());
  EXPECT_EQ(acks[0].token, 9u);
  EXPECT_EQ(acks[0].applied, 1u);
}

TEST(FeedbackStage, PerModelLabelsOnlyForModelsThatAnswered) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  Outcome o = MakeOutcome(f.config, "r1", /*explore_ok=*/false);
  const std::string served = o.calls[0].model, failed = o.calls[1].model;
  f.Deliver(*stage, FeedbackStage::kInput, o);
  Feedback fb;
  fb.request_id = "r1";
  fb.labels = {{served, 1.0}, {failed, 0.0}};
  fb.token = 3;
  f.Deliver(*stage, FeedbackStage::kInput, fb);
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].ok());
  EXPECT_EQ(acks[0].applied, 1u);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kNotRun), 1.0);
}

TEST(FeedbackStage, DuplicateFeedbackIsRefused) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 1.0));
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 0.0));
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1].status, "duplicate_feedback");
  EXPECT_EQ(stage->seq(), 2u);
}

TEST(FeedbackStage, EarlyFeedbackWaitsForItsOutcome) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 1.0));
  EXPECT_TRUE(f.out.Of<FeedbackAck>(FeedbackStage::kAcks).empty());
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].ok());
  EXPECT_EQ(stage->seq(), 2u);
}

TEST(FeedbackStage, FeedbackForAnUnknownRequestIsRefusedAfterTheWait) {
  StageFixture f("feedback", "feedback: {early_feedback_wait_ms: 100}\n");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("nobody", 1.0));
  f.Advance(*stage, std::chrono::milliseconds(101));
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].status, "unknown_request");
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kUnknownRequest), 1.0);
}

TEST(FeedbackStage, ExpiredOutcomeCannotBeJoined) {
  StageFixture f("feedback", "feedback: {join_window_ms: 1000, early_feedback_wait_ms: 10}\n");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  f.Advance(*stage, std::chrono::milliseconds(1001));
  EXPECT_EQ(stage->window_size(), 0u);
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 1.0));
  f.Advance(*stage, std::chrono::milliseconds(11));
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].status, "unknown_request");
}

TEST(FeedbackStage, WindowEvictsTheOldestOutcomeAndCountsIt) {
  StageFixture f("feedback", "feedback: {join_window_outcomes: 2}\n");
  auto stage = FeedbackStage::Create(f.ctx).value();
  for (const char* id : {"a", "b", "c"})
    f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, id));
  EXPECT_EQ(stage->window_size(), 2u);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kEvicted), 1.0);
}

TEST(FeedbackStage, ServesSnapshotsAtTheCurrentSequence) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  f.Deliver(*stage, FeedbackStage::kSnapshots, SnapshotRequest{77}, Envelope{"replica"});
  auto snaps = f.out.Of<StateSnapshot>(FeedbackStage::kSnapshots);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].nonce, 77u);
  EXPECT_EQ(snaps[0].seq, 1u);
  EXPECT_EQ(snaps[0].epoch, stage->epoch());
  auto replica = router::Router::Create(f.config.router).value();
  EXPECT_TRUE(replica->LoadState(snaps[0].state).ok());
}

TEST(FeedbackStage, HeartbeatsRepeatTheLastSequence) {
  StageFixture f("feedback");
  auto stage = FeedbackStage::Create(f.ctx).value();
  f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
  f.Advance(*stage, std::chrono::milliseconds(1));
  auto updates = f.out.Of<StateUpdate>(FeedbackStage::kUpdates);
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].kind, UpdateKind::kHeartbeat);
  EXPECT_EQ(updates[1].seq, 1u);
}

TEST(FeedbackStage, CheckpointRestoresLedgerSequenceAndWindow) {
  const std::string dir = ::testing::TempDir() + "/messplus_ckpt_test";
  std::filesystem::remove_all(dir);
  const std::string extra = "feedback: {checkpoint_path: " + dir + "/c.ckpt}\n";
  std::string state_before;
  uint64_t epoch_before = 0;
  {
    StageFixture f("feedback", extra);
    auto stage = FeedbackStage::Create(f.ctx).value();
    f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r1"));
    f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 1.0));
    f.Deliver(*stage, FeedbackStage::kInput, MakeOutcome(f.config, "r2"));
    stage->OnShutdown(f.out);  // writes the checkpoint
    state_before = stage->router().SaveState();
    epoch_before = stage->epoch();
  }
  StageFixture f("feedback", extra);
  auto stage = FeedbackStage::Create(f.ctx).value();
  EXPECT_EQ(stage->seq(), 3u);
  EXPECT_EQ(stage->window_size(), 2u);
  EXPECT_NE(stage->epoch(), epoch_before);  // replicas must re-snapshot
  auto before = router::Router::Create(f.config.router).value();
  ASSERT_TRUE(before->LoadState(state_before).ok());
  EXPECT_EQ(stage->router().policy().queue(0).q_tracked(), before->policy().queue(0).q_tracked());
  EXPECT_TRUE(stage->router().policy().predictor() == before->policy().predictor());
  // r2's feedback still joins after the restart; r1's is a duplicate.
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r2", 0.0));
  f.Deliver(*stage, FeedbackStage::kInput, Satisfied("r1", 0.0));
  auto acks = f.out.Of<FeedbackAck>(FeedbackStage::kAcks);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_TRUE(acks[0].ok());
  EXPECT_EQ(acks[1].status, "duplicate_feedback");
  std::filesystem::remove_all(dir);
}

TEST(FeedbackStage, CorruptCheckpointFailsStartup) {
  const std::string dir = ::testing::TempDir() + "/messplus_ckpt_corrupt";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/c.ckpt") << "not a checkpoint"; }
  StageFixture f("feedback", "feedback: {checkpoint_path: " + dir + "/c.ckpt}\n");
  Result<std::unique_ptr<FeedbackStage>> stage = FeedbackStage::Create(f.ctx);
  ASSERT_FALSE(stage.ok());
  EXPECT_EQ(stage.status().code(), StatusCode::kDataLoss);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace messplus::stages::feedback
