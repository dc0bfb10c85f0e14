#include "stages/embed/embed_stage.h"

#include <cmath>

#include <gtest/gtest.h>

#include "router/feature_hasher.h"
#include "tests/stages/stage_test_util.h"

namespace messplus::stages::embed {
namespace {

using pipeline::EmbedReply;
using pipeline::EmbedRequest;
using pipeline::Features;
using pipeline::Request;
using testing::StageFixture;

Request MakeRequest(const std::string& id, const std::string& task = "arc") {
  Request r;
  r.id = id;
  r.text = "Which gas do plants absorb?";
  r.tenant = "gold";
  r.task = task;
  return r;
}

TEST(EmbedStage, HashesTextPlusTaskAndTenantTags) {
  StageFixture f("embed");
  EmbedStage stage(f.ctx);
  f.Deliver(stage, EmbedStage::kRequests, MakeRequest("r1"));
  auto out = f.out.Of<Features>(EmbedStage::kFeatures);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.id, "r1");
  EXPECT_EQ(out[0].dim, 4096u);
  router::FeatureHasher hasher(f.config.router.hashing);
  const std::string_view tags[] = {"task=arc", "tenant=gold"};
  const router::SparseFeatures expected = hasher.Hash(MakeRequest("x").text, tags);
  EXPECT_EQ(out[0].features.index, expected.index);
  EXPECT_EQ(out[0].features.value, expected.value);
}

TEST(EmbedStage, NoTaskTagWithoutATask) {
  StageFixture f("embed");
  EmbedStage stage(f.ctx);
  f.Deliver(stage, EmbedStage::kRequests, MakeRequest("r1", ""));
  router::FeatureHasher hasher(f.config.router.hashing);
  const std::string_view tags[] = {"tenant=gold"};
  EXPECT_EQ(f.out.Of<Features>(EmbedStage::kFeatures)[0].features.index,
            hasher.Hash(MakeRequest("x").text, tags).index);
}

TEST(EmbedStage, DenseEmbeddingIsAddedNormalised) {
  StageFixture f("embed", "embed: {embedding_weight: 2.0}\n");
  EmbedStage stage(f.ctx);
  router::SparseFeatures x;
  stage.AddDense({3.0f, 4.0f}, &x);
  ASSERT_EQ(x.size(), 2u);
  EXPECT_FLOAT_EQ(x.value[0], 2.0f * 0.6f);
  EXPECT_FLOAT_EQ(x.value[1], 2.0f * 0.8f);
  for (uint32_t i : x.index) EXPECT_LT(i, 4096u);
  // A collision with an existing index adds to it instead of repeating the index.
  router::SparseFeatures y;
  y.push_back(x.index[0], 1.0f);
  stage.AddDense({3.0f, 4.0f}, &y);
  EXPECT_EQ(y.size(), 2u);
  EXPECT_FLOAT_EQ(y.value[0], 1.0f + 1.2f);
}

TEST(EmbedStage, UsesTheEmbedderAndFallsBackOnTimeout) {
  StageFixture f("embed", "");
  // Rebuild the config with an embedder endpoint (the fixture's YAML has none).
  f.config.endpoints.embedder = "inproc://embedder";
  f.config.embed.embedder_timeout = std::chrono::milliseconds(100);
  f.config.embed.embedder_retry = std::chrono::milliseconds(1000);
  EmbedStage stage(f.ctx);
  f.Deliver(stage, EmbedStage::kRequests, MakeRequest("r1"));
  auto asks = f.out.Of<EmbedRequest>(EmbedStage::kEmbedder);
  ASSERT_EQ(asks.size(), 1u);
  EXPECT_TRUE(f.out.Of<Features>(EmbedStage::kFeatures).empty());
  f.Deliver(stage, EmbedStage::kEmbedder, EmbedReply{asks[0].id, {1.0f, 0.0f, 0.0f}});
  auto out = f.out.Of<Features>(EmbedStage::kFeatures);
  ASSERT_EQ(out.size(), 1u);
  router::FeatureHasher hasher(f.config.router.hashing);
  const std::string_view tags[] = {"task=arc", "tenant=gold"};
  EXPECT_GT(out[0].features.size(), hasher.Hash(MakeRequest("x").text, tags).size());

  // No answer: hashing only after the timeout, and the embedder is left alone for a while.
  f.out.Clear();
  f.Deliver(stage, EmbedStage::kRequests, MakeRequest("r2"));
  f.Advance(stage, std::chrono::milliseconds(101));
  ASSERT_EQ(f.out.Of<Features>(EmbedStage::kFeatures).size(), 1u);
  EXPECT_EQ(f.metrics->RejectedCount(pipeline::Reason::kTimeout), 1.0);
  f.out.Clear();
  f.Deliver(stage, EmbedStage::kRequests, MakeRequest("r3"));
  EXPECT_TRUE(f.out.Of<EmbedRequest>(EmbedStage::kEmbedder).empty());
  EXPECT_EQ(f.out.Of<Features>(EmbedStage::kFeatures).size(), 1u);
}

TEST(EmbedStage, RefusedFeaturesAreHeldAndInputPausedUntilSent) {
  StageFixture f("embed");
  EmbedStage stage(f.ctx);
  f.out.set_refuse(true);  // no route replica connected yet
  f.Deliver(stage, EmbedStage::kRequests, MakeRequest("r1"));
  EXPECT_FALSE(stage.Accepting(EmbedStage::kRequests));
  EXPECT_FALSE(stage.Idle());
  f.Advance(stage, std::chrono::milliseconds(50));
  EXPECT_TRUE(f.out.Of<Features>(EmbedStage::kFeatures).empty());
  f.out.set_refuse(false);
  f.Advance(stage, std::chrono::milliseconds(50));
  auto out = f.out.Of<Features>(EmbedStage::kFeatures);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.id, "r1");
  EXPECT_TRUE(stage.Accepting(EmbedStage::kRequests));
}

}  // namespace
}  // namespace messplus::stages::embed
