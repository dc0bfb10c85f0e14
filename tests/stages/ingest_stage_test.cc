#include "stages/ingest/ingest_stage.h"

#include <gtest/gtest.h>

#include "tests/stages/stage_test_util.h"

namespace messplus::stages::ingest {
namespace {

using pipeline::ClientReply;
using pipeline::Envelope;
using pipeline::ErrorReply;
using pipeline::Feedback;
using pipeline::FeedbackAck;
using pipeline::Reason;
using pipeline::Request;
using testing::StageFixture;

const Envelope kAlice = {"alice-id"};
const Envelope kBob = {"bob-id", ""};  // a REQ client: identity plus delimiter

Request MakeRequest(std::string id, std::string text = "hello", std::string tenant = "") {
  Request r;
  r.id = std::move(id);
  r.text = std::move(text);
  r.tenant = std::move(tenant);
  return r;
}

TEST(IngestStage, AssignsIdTenantAndTimestampAndForwards) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest(""), kAlice);
  auto forwarded = f.out.Of<Request>(IngestStage::kRequests);
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_FALSE(forwarded[0].id.empty());
  EXPECT_EQ(forwarded[0].tenant, "gold");  // the default tenant
  EXPECT_EQ(forwarded[0].ingest_ns, f.clock.WallNanos());
  EXPECT_EQ(stage.in_flight(), 1u);
}

TEST(IngestStage, AssignedIdsAreUnique) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  for (int i = 0; i < 3; ++i) f.Deliver(stage, IngestStage::kFrontend, MakeRequest(""), kAlice);
  auto forwarded = f.out.Of<Request>(IngestStage::kRequests);
  ASSERT_EQ(forwarded.size(), 3u);
  EXPECT_NE(forwarded[0].id, forwarded[1].id);
  EXPECT_NE(forwarded[1].id, forwarded[2].id);
}

TEST(IngestStage, RoutesTheReplyToTheRequestingClient) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a"), kAlice);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("b"), kBob);
  ClientReply reply;
  reply.request_id = "b";
  reply.model = "small";
  reply.answer = "hi";
  f.Deliver(stage, IngestStage::kReplies, reply);
  auto replies = f.out.Of<ClientReply>(IngestStage::kFrontend);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].answer, "hi");
  EXPECT_EQ(f.out.sent().back().to, kBob);
  EXPECT_EQ(stage.in_flight(), 1u);
}

TEST(IngestStage, UnknownTenantIsRejectedWithAnErrorReply) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a", "x", "platinum"), kAlice);
  auto errors = f.out.Of<ErrorReply>(IngestStage::kFrontend);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "unknown_tenant");
  EXPECT_EQ(errors[0].request_id, "a");
  EXPECT_TRUE(f.out.Of<Request>(IngestStage::kRequests).empty());
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kUnknownTenant), 1.0);
}

TEST(IngestStage, DuplicateInFlightIdIsRejected) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a"), kAlice);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a"), kBob);
  auto errors = f.out.Of<ErrorReply>(IngestStage::kFrontend);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "duplicate_id");
  EXPECT_EQ(f.out.Of<Request>(IngestStage::kRequests).size(), 1u);
}

TEST(IngestStage, TooManyInFlightIsOverloaded) {
  StageFixture f("ingest", "ingest: {max_in_flight: 2}\n");
  IngestStage stage(f.ctx);
  for (const char* id : {"a", "b", "c"})
    f.Deliver(stage, IngestStage::kFrontend, MakeRequest(id), kAlice);
  auto errors = f.out.Of<ErrorReply>(IngestStage::kFrontend);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, "overloaded");
  EXPECT_EQ(errors[0].request_id, "c");
}

TEST(IngestStage, RefusedForwardIsAnsweredNotRemembered) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  f.out.set_refuse(true);  // e.g. embed not connected: the PUSH refuses
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a"), kAlice);
  EXPECT_EQ(stage.in_flight(), 0u);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kOverloaded), 1.0);
}

TEST(IngestStage, RequestWithoutReplyTimesOutWithAnError) {
  StageFixture f("ingest", "ingest: {request_timeout_ms: 1000}\n");
  IngestStage stage(f.ctx);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a"), kAlice);
  f.Advance(stage, std::chrono::milliseconds(999));
  EXPECT_TRUE(f.out.Of<ClientReply>(IngestStage::kFrontend).empty());
  f.Advance(stage, std::chrono::milliseconds(2));
  auto replies = f.out.Of<ClientReply>(IngestStage::kFrontend);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "timeout");
  EXPECT_EQ(stage.in_flight(), 0u);
  // The late reply is counted, not routed.
  ClientReply late;
  late.request_id = "a";
  late.model = "small";
  f.Deliver(stage, IngestStage::kReplies, late);
  EXPECT_EQ(f.out.Of<ClientReply>(IngestStage::kFrontend).size(), 1u);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kUnknownRequest), 1.0);
}

TEST(IngestStage, FeedbackIsForwardedWithATokenAndAckedToItsClient) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  Feedback fb;
  fb.request_id = "a";
  fb.satisfaction = 1.0;
  f.Deliver(stage, IngestStage::kFrontend, fb, kBob);
  auto forwarded = f.out.Of<Feedback>(IngestStage::kFeedback);
  ASSERT_EQ(forwarded.size(), 1u);
  ASSERT_NE(forwarded[0].token, 0u);
  f.Deliver(stage, IngestStage::kReplies, FeedbackAck{"a", forwarded[0].token, "ok", "", 1});
  auto acks = f.out.Of<FeedbackAck>(IngestStage::kFrontend);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].ok());
  EXPECT_EQ(acks[0].token, 0u);  // internal to the pipeline
  EXPECT_EQ(f.out.sent().back().to, kBob);
}

TEST(IngestStage, UnacknowledgedFeedbackTimesOut) {
  StageFixture f("ingest", "ingest: {feedback_timeout_ms: 100}\n");
  IngestStage stage(f.ctx);
  Feedback fb;
  fb.request_id = "a";
  fb.satisfaction = 0.0;
  f.Deliver(stage, IngestStage::kFrontend, fb, kAlice);
  f.Advance(stage, std::chrono::milliseconds(101));
  auto acks = f.out.Of<FeedbackAck>(IngestStage::kFrontend);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].status, "timeout");
}

TEST(IngestStage, ShutdownAnswersEveryWaitingClient) {
  StageFixture f("ingest");
  IngestStage stage(f.ctx);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("a"), kAlice);
  f.Deliver(stage, IngestStage::kFrontend, MakeRequest("b"), kBob);
  EXPECT_FALSE(stage.Idle());
  stage.OnShutdown(f.out);
  auto replies = f.out.Of<ClientReply>(IngestStage::kFrontend);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].error_code, "shutdown");
  EXPECT_TRUE(stage.Idle());
}

}  // namespace
}  // namespace messplus::stages::ingest
