// Tests of Router: configuration validation, input validation with its counters (one test per
// reject reason), and saving and loading learning state.
#include "router/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "tests/router/router_test_util.h"

namespace messplus::router {
namespace {

using test::Cost;
using test::Label;
using test::MakeRouter;
using test::MustDecide;
using test::ThreeModelConfig;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Create

TEST(RouterCreate, AcceptsAValidConfig) {
  Result<std::unique_ptr<Router>> router = Router::Create(ThreeModelConfig());
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  EXPECT_EQ((*router)->num_models(), 3u);
  EXPECT_EQ((*router)->policy().name(), "paper");
  EXPECT_EQ((*router)->counters().decisions, 0u);
}

TEST(RouterCreate, ListsEveryProblemOfABadConfig) {
  RouterConfig config = ThreeModelConfig();
  config.models = {{"small", 10.0, 1.0}, {"small", 20.0, 1.0}, {"large", kNaN, 1.0}};
  config.tenants = {{"gold", 1.5}};
  config.v = -1.0;
  Result<std::unique_ptr<Router>> router = Router::Create(config);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = router.status().message();
  EXPECT_TRUE(Contains(msg, "'small' is listed twice")) << msg;
  EXPECT_TRUE(Contains(msg, "'large': cost prior")) << msg;
  EXPECT_TRUE(Contains(msg, "'gold': alpha must be in [0, 1]")) << msg;
  EXPECT_TRUE(Contains(msg, "V must be")) << msg;
  // One problem per line: four problems, three line breaks.
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 3) << msg;
}

TEST(RouterCreate, RejectsAnEmptyZoo) {
  RouterConfig config = ThreeModelConfig();
  config.models.clear();
  config.tenants.clear();
  Result<std::unique_ptr<Router>> router = Router::Create(config);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(router.status().message(), "no models")) << router.status().message();
  EXPECT_TRUE(Contains(router.status().message(), "no tenants")) << router.status().message();
}

TEST(RouterCreate, RejectsBadExplorationConstantAndHashing) {
  RouterConfig config = ThreeModelConfig();
  config.c = kNaN;
  config.hashing.dim_bits = 40;
  config.predictor.learning_rate = 0.0;
  Result<std::unique_ptr<Router>> router = Router::Create(config);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = router.status().message();
  EXPECT_TRUE(Contains(msg, "c must be")) << msg;
  EXPECT_TRUE(Contains(msg, "dim_bits")) << msg;
  EXPECT_TRUE(Contains(msg, "learning_rate")) << msg;
}

TEST(RouterCreate, AcceptsMinusOneAsAbsentCostPrior) {
  RouterConfig config = ThreeModelConfig();
  config.models[1].cost_prior = -1.0;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  EXPECT_FALSE(router->policy().costs().Known(1));
  EXPECT_TRUE(router->policy().costs().Known(0));
}

TEST(RouterCreate, RejectsUnknownPolicyName) {
  RouterConfig config = ThreeModelConfig();
  config.policy = "clairvoyant";
  Result<std::unique_ptr<Router>> router = Router::Create(config);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(router.status().message(), "clairvoyant")) << router.status().message();
  EXPECT_TRUE(Contains(router.status().message(), "paper")) << router.status().message();
}

TEST(Router, LooksUpModelAndTenantNames) {
  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  ASSERT_TRUE(router->ModelIndex("large").ok());
  EXPECT_EQ(*router->ModelIndex("large"), 2u);
  EXPECT_EQ(*router->TenantIndex("silver"), 1u);
  EXPECT_EQ(router->ModelIndex("huge").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(router->TenantIndex("bronze").status().code(), StatusCode::kNotFound);
}

TEST(Router, TaskKeyIsStableAndZeroForNoTask) {
  EXPECT_EQ(Router::TaskKey(""), 0u);
  EXPECT_NE(Router::TaskKey("arc_easy"), 0u);
  EXPECT_EQ(Router::TaskKey("arc_easy"), Router::TaskKey("arc_easy"));
  EXPECT_NE(Router::TaskKey("arc_easy"), Router::TaskKey("arc_challenge"));

  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  Decision d;
  ASSERT_TRUE(router->Decide(RouteRequest{&f, 1, "arc_easy"}, &d).ok());
  EXPECT_EQ(d.task_key, Router::TaskKey("arc_easy"));
  EXPECT_EQ(d.tenant, 1u);
  EXPECT_EQ(d.t, 1u);
}

// ---------------------------------------------------------------------------------------------
// Decide: one test per reject reason. Each checks the counter, that *out is untouched, that no
// decision was taken (t does not advance), and that a following valid request still works.

void ExpectDecideRejected(const RouteRequest& bad, StatusCode code) {
  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  Decision out;
  out.t = 777;  // sentinel
  out.served = 9;
  const Status st = router->Decide(bad, &out);
  EXPECT_EQ(st.code(), code) << st.ToString();
  EXPECT_EQ(router->counters().rejected_requests, 1u);
  EXPECT_EQ(router->counters().decisions, 0u);
  EXPECT_EQ(out.t, 777u);
  EXPECT_EQ(out.served, 9u);
  EXPECT_TRUE(out.run.empty());

  const SparseFeatures good = [] {
    SparseFeatures f;
    f.push_back(4095, 0.5f);  // dim - 1 is the largest valid index
    return f;
  }();
  const Decision d = MustDecide(router.get(), good);
  EXPECT_EQ(d.t, 1u);  // the rejected request was not counted by the policy
  EXPECT_EQ(router->counters().decisions, 1u);
  EXPECT_EQ(router->counters().rejected_requests, 1u);
}

TEST(RouterDecide, RejectsNullFeatures) {
  ExpectDecideRejected(RouteRequest{nullptr, 0, ""}, StatusCode::kInvalidArgument);
}

TEST(RouterDecide, RejectsFeatureIndexAtDim) {
  SparseFeatures f;
  f.push_back(3, 0.5f);
  f.push_back(4096, 0.5f);  // dim = 2^12 = 4096
  ExpectDecideRejected(RouteRequest{&f, 0, ""}, StatusCode::kInvalidArgument);
}

TEST(RouterDecide, RejectsNaNFeatureValue) {
  SparseFeatures f;
  f.push_back(3, std::numeric_limits<float>::quiet_NaN());
  ExpectDecideRejected(RouteRequest{&f, 0, ""}, StatusCode::kInvalidArgument);
}

TEST(RouterDecide, RejectsInfiniteFeatureValue) {
  SparseFeatures f;
  f.push_back(3, -std::numeric_limits<float>::infinity());
  ExpectDecideRejected(RouteRequest{&f, 0, ""}, StatusCode::kInvalidArgument);
}

TEST(RouterDecide, RejectsMismatchedFeatureArrays) {
  SparseFeatures f;
  f.index = {1, 2};
  f.value = {0.5f};
  ExpectDecideRejected(RouteRequest{&f, 0, ""}, StatusCode::kInvalidArgument);
}

TEST(RouterDecide, RejectsUnknownTenant) {
  const SparseFeatures f;
  ExpectDecideRejected(RouteRequest{&f, 2, ""}, StatusCode::kNotFound);  // tenants 0 and 1
}

// ---------------------------------------------------------------------------------------------
// RecordCosts: one test per reject reason; nothing is recorded and rejected_costs counts.

struct CostCase {
  std::vector<ModelCost> costs;
  StatusCode code;
};

void ExpectCostsRejected(const CostCase& c) {
  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = MustDecide(router.get(), f);
  ASSERT_EQ(d.run, std::vector<uint32_t>{0});  // exploit, Q = 0: the cheapest model only
  const Status st = router->RecordCosts(d, c.costs);
  EXPECT_EQ(st.code(), c.code) << st.ToString();
  EXPECT_EQ(router->counters().rejected_costs, 1u);
  for (size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(router->policy().costs().observations(m), 0u) << "model " << m;
    EXPECT_EQ(router->policy().costs().observed_sum(m), 0.0) << "model " << m;
  }
  // A valid cost for the same decision is still accepted.
  ASSERT_TRUE(router->RecordCosts(d, Cost(0, 12.0)).ok());
  EXPECT_EQ(router->policy().costs().observations(0), 1u);
  EXPECT_EQ(router->counters().rejected_costs, 1u);
}

TEST(RouterRecordCosts, RejectsUnknownModel) {
  // The header says InvalidArgument; the code returns NotFound (status.h: unknown model).
  ExpectCostsRejected({Cost(3, 1.0), StatusCode::kNotFound});
}

TEST(RouterRecordCosts, RejectsModelTheDecisionDidNotRun) {
  ExpectCostsRejected({Cost(2, 1.0), StatusCode::kInvalidArgument});
}

TEST(RouterRecordCosts, RejectsNaNCost) {
  ExpectCostsRejected({Cost(0, kNaN), StatusCode::kInvalidArgument});
}

TEST(RouterRecordCosts, RejectsNegativeCost) {
  ExpectCostsRejected({Cost(0, -5.0), StatusCode::kInvalidArgument});
}

TEST(RouterRecordCosts, RejectsInfiniteCost) {
  ExpectCostsRejected({Cost(0, kInf), StatusCode::kInvalidArgument});
}

TEST(RouterRecordCosts, RecordsNothingWhenOneCostOfSeveralIsBad) {
  ExpectCostsRejected({{ModelCost{0, 12.0}, ModelCost{0, kNaN}}, StatusCode::kInvalidArgument});
}

TEST(RouterRecordCosts, RejectsADecisionThatDoesNotMatchTheZoo) {
  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  Decision d = MustDecide(router.get(), f);
  d.p.resize(2);  // forged: two predictions for a three-model zoo
  EXPECT_EQ(router->RecordCosts(d, Cost(0, 1.0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router->counters().rejected_costs, 1u);
  EXPECT_EQ(router->policy().costs().observations(0), 0u);
}

TEST(RouterRecordCosts, RecordsCostsOfEveryModelRun) {
  RouterConfig config = ThreeModelConfig();
  config.c = 1e9;  // p_t = 1: every model runs
  for (ModelSpec& m : config.models) m.cost_prior = -1.0;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = MustDecide(router.get(), f);
  const std::vector<ModelCost> costs = {{0, 1.0}, {1, 4.0}, {2, 16.0}};
  ASSERT_TRUE(router->RecordCosts(d, costs).ok());
  ASSERT_TRUE(router->RecordCosts(d, Cost(2, 8.0)).ok());
  const CostModel& model = router->policy().costs();
  EXPECT_EQ(model.Estimate(0), 1.0);
  EXPECT_EQ(model.Estimate(1), 4.0);
  EXPECT_EQ(model.Estimate(2), 12.0);  // (16 + 8) / 2
  EXPECT_EQ(model.observations(2), 2u);
  EXPECT_EQ(router->counters().rejected_costs, 0u);
}

// ---------------------------------------------------------------------------------------------
// RecordFeedback: one test per reject reason; the queue and the predictor are unchanged and
// rejected_feedback counts.

// With explore = false (c = 0) the decision runs only model 0; with explore = true (p_t = 1)
// it runs all three and serves model 2, so an accepted label would also train the predictor.
void ExpectFeedbackRejected(const std::vector<ModelLabel>& labels, StatusCode code,
                            bool explore = false,
                            const SparseFeatures& feedback_features = SparseFeatures{}) {
  RouterConfig config = ThreeModelConfig();
  config.c = explore ? 1e9 : 0.0;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  SparseFeatures f;
  f.push_back(7, 1.0f);
  const Decision d = MustDecide(router.get(), f);
  ASSERT_EQ(d.explore, explore);
  ASSERT_EQ(d.served, explore ? 2u : 0u);
  ASSERT_EQ(d.run.size(), explore ? 3u : 1u);
  // One accepted label first: Q_tracked = 0 + 0.7 - 0 = 0.7.
  ASSERT_TRUE(router->RecordFeedback(d, f, Label(d.served, 0.0)).ok());
  const double q_before = router->policy().queue(0).q_tracked();
  ASSERT_NEAR(q_before, 0.7, 1e-12);
  const SatisfactionPredictor predictor_before = router->policy().predictor();

  const Status st = router->RecordFeedback(d, feedback_features, labels);
  EXPECT_EQ(st.code(), code) << st.ToString();
  EXPECT_EQ(router->counters().rejected_feedback, 1u);
  EXPECT_EQ(router->policy().queue(0).q_tracked(), q_before);
  EXPECT_EQ(router->policy().queue(0).q_all(), 0.0);
  EXPECT_TRUE(router->policy().predictor() == predictor_before);
  for (size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(router->policy().predictor().updates(m), explore && m == 2 ? 1u : 0u) << m;
  }
}

TEST(RouterRecordFeedback, RejectsSatisfactionAboveOne) {
  ExpectFeedbackRejected(Label(0, 1.5), StatusCode::kInvalidArgument);
  ExpectFeedbackRejected(Label(1, 1.5), StatusCode::kInvalidArgument, /*explore=*/true);
}

TEST(RouterRecordFeedback, RejectsNaNSatisfaction) {
  ExpectFeedbackRejected(Label(0, kNaN), StatusCode::kInvalidArgument);
  ExpectFeedbackRejected(Label(2, kNaN), StatusCode::kInvalidArgument, /*explore=*/true);
}

TEST(RouterRecordFeedback, RejectsNegativeSatisfaction) {
  ExpectFeedbackRejected(Label(0, -0.5), StatusCode::kInvalidArgument);
}

TEST(RouterRecordFeedback, RejectsModelTheDecisionDidNotRun) {
  ExpectFeedbackRejected(Label(2, 1.0), StatusCode::kInvalidArgument);  // ran only model 0
}

TEST(RouterRecordFeedback, RejectsUnknownModel) {
  // The header says InvalidArgument; the code returns NotFound (status.h: unknown model).
  ExpectFeedbackRejected(Label(3, 1.0), StatusCode::kNotFound);
}

TEST(RouterRecordFeedback, RecordsNothingWhenOneLabelOfSeveralIsBad) {
  ExpectFeedbackRejected({ModelLabel{2, 0.0}, ModelLabel{0, 1.0}, ModelLabel{1, 2.0}},
                         StatusCode::kInvalidArgument, /*explore=*/true);
}

TEST(RouterRecordFeedback, RejectsMalformedFeatures) {
  SparseFeatures bad;
  bad.index = {1, 2, 3};
  bad.value = {1.0f};
  ExpectFeedbackRejected(Label(2, 1.0), StatusCode::kInvalidArgument, /*explore=*/true, bad);
}

// Non-finite feature values would poison the predictor (and every later checkpoint).
TEST(RouterRecordFeedback, RejectsNonFiniteFeatureValues) {
  SparseFeatures bad;
  bad.push_back(7, std::numeric_limits<float>::quiet_NaN());
  ExpectFeedbackRejected(Label(2, 1.0), StatusCode::kInvalidArgument, /*explore=*/true, bad);
}

TEST(RouterRecordFeedback, RejectsADecisionWithUnknownTenant) {
  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  Decision d = MustDecide(router.get(), f);
  d.tenant = 5;  // forged
  EXPECT_EQ(router->RecordFeedback(d, f, Label(0, 0.0)).code(), StatusCode::kNotFound);
  EXPECT_EQ(router->counters().rejected_feedback, 1u);
  EXPECT_EQ(router->policy().queue(0).q_tracked(), 0.0);
  EXPECT_EQ(router->policy().queue(1).q_tracked(), 0.0);
}

TEST(RouterRecordGroundTruth, RejectsSatisfactionOutsideUnitInterval) {
  std::unique_ptr<Router> router = MakeRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = MustDecide(router.get(), f);
  EXPECT_EQ(router->RecordGroundTruth(d, 1.5).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router->RecordGroundTruth(d, kNaN).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router->policy().queue(0).q_all(), 0.0);
  ASSERT_TRUE(router->RecordGroundTruth(d, 0.0).ok());
  EXPECT_NEAR(router->policy().queue(0).q_all(), 0.7, 1e-12);  // 0 + 0.7 - 0
}

// ---------------------------------------------------------------------------------------------
// SaveState / LoadState

// A router that has learned something: explored decisions with costs, feedback and ground
// truth for both tenants.
std::unique_ptr<Router> TrainedRouter(const RouterConfig& base) {
  RouterConfig config = base;
  config.c = 1e9;  // always explore, so the predictor trains
  std::unique_ptr<Router> router = MakeRouter(config);
  if (router == nullptr) return nullptr;
  for (uint32_t i = 0; i < 20; ++i) {
    SparseFeatures f;
    f.push_back(i * 13 % 4096, 1.0f);
    f.push_back(100 + i, -0.5f);
    const uint32_t tenant = i % static_cast<uint32_t>(config.tenants.size());
    const Decision d = MustDecide(router.get(), f, tenant);
    const std::vector<ModelCost> costs = {{0, 1.0 + i}, {1, 3.0}, {2, 9.0}};
    EXPECT_TRUE(router->RecordCosts(d, costs).ok());
    const std::vector<ModelLabel> labels = {
        {0, i % 3 == 0 ? 1.0 : 0.0}, {1, i % 2 == 0 ? 1.0 : 0.0}, {2, 0.25}};
    EXPECT_TRUE(router->RecordFeedback(d, f, labels).ok());
    EXPECT_TRUE(router->RecordGroundTruth(d, 0.1).ok());
  }
  return router;
}

struct Snapshot {
  std::vector<double> q_all, q_tracked;
  std::vector<uint64_t> counts;
  std::vector<double> sums;
  std::string predictor;
};

Snapshot Snap(const Router& router) {
  Snapshot s;
  for (uint32_t t = 0; t < router.config().tenants.size(); ++t) {
    s.q_all.push_back(router.policy().queue(t).q_all());
    s.q_tracked.push_back(router.policy().queue(t).q_tracked());
  }
  for (size_t m = 0; m < router.num_models(); ++m) {
    s.counts.push_back(router.policy().costs().observations(m));
    s.sums.push_back(router.policy().costs().observed_sum(m));
  }
  s.predictor = router.policy().predictor().Serialize();
  return s;
}

void ExpectSameSnapshot(const Snapshot& a, const Snapshot& b) {
  EXPECT_EQ(a.q_all, b.q_all);
  EXPECT_EQ(a.q_tracked, b.q_tracked);
  EXPECT_EQ(a.counts, b.counts);
  EXPECT_EQ(a.sums, b.sums);
  EXPECT_TRUE(a.predictor == b.predictor);
}

TEST(RouterState, RoundTripsIntoAFreshRouterOfTheSameConfig) {
  std::unique_ptr<Router> trained = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(trained, nullptr);
  RouterConfig config = ThreeModelConfig();
  config.c = 1e9;
  std::unique_ptr<Router> fresh = MakeRouter(config);
  ASSERT_NE(fresh, nullptr);
  const std::string state = trained->SaveState();
  ASSERT_TRUE(fresh->LoadState(state).ok());

  const Snapshot a = Snap(*trained);
  const Snapshot b = Snap(*fresh);
  ExpectSameSnapshot(a, b);
  EXPECT_TRUE(fresh->policy().predictor() == trained->policy().predictor());
  // Something was learned, so the comparison above is not vacuous.
  EXPECT_GT(a.q_all[0], 0.0);
  EXPECT_GT(a.q_tracked[1], 0.0);
  EXPECT_EQ(a.counts, (std::vector<uint64_t>{20, 20, 20}));
  EXPECT_EQ(trained->policy().predictor().updates(1), 20u);
  // Saving the loaded state gives the same bytes.
  EXPECT_EQ(fresh->SaveState(), state);

  // Both continue identically (p_t = 1, so the random stream does not matter): t resumes at
  // 21, and predictions and scores agree.
  SparseFeatures f;
  f.push_back(13, 1.0f);
  const Decision da = MustDecide(trained.get(), f, 1);
  const Decision db = MustDecide(fresh.get(), f, 1);
  EXPECT_EQ(da.t, 21u);
  EXPECT_EQ(db.t, 21u);
  EXPECT_EQ(da.p, db.p);
  EXPECT_EQ(da.score, db.score);
  EXPECT_EQ(da.q, db.q);
  EXPECT_EQ(da.cost_estimate, db.cost_estimate);
}

// Each rejected LoadState leaves the trained router exactly as it was.
void ExpectLoadRejected(std::string_view bytes, const char* what) {
  std::unique_ptr<Router> router = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const Snapshot before = Snap(*router);
  const std::string state_before = router->SaveState();
  const Status st = router->LoadState(bytes);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << what << ": " << st.ToString();
  ExpectSameSnapshot(before, Snap(*router));
  EXPECT_EQ(router->SaveState(), state_before) << what;
}

// Rewrites one top-level field of a saved router state.
std::string ReplaceField(std::string_view state, std::string_view key,
                         const std::function<void(Packer*)>& pack_value) {
  const msgpack::object_handle handle = msgpack::unpack(state.data(), state.size());
  const msgpack::object& root = handle.get();
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  pk.pack_map(root.via.map.size);
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const msgpack::object_kv& kv = root.via.map.ptr[i];
    pk.pack(kv.key);
    if (kv.key.as<std::string>() == key) {
      pack_value(&pk);
    } else {
      pk.pack(kv.val);
    }
  }
  return std::string(buffer.data(), buffer.size());
}

TEST(RouterState, ReplaceFieldHelperKeepsAValidState) {
  // Guards the helper the next tests use: rewriting the policy with its own name still loads.
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string state =
      ReplaceField(source->SaveState(), "policy", [](Packer* pk) { pk->pack("paper"); });
  std::unique_ptr<Router> fresh = MakeRouter(ThreeModelConfig());
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(fresh->LoadState(state).ok());
  ExpectSameSnapshot(Snap(*source), Snap(*fresh));
}

TEST(RouterState, LoadRejectsGarbage) {
  ExpectLoadRejected("", "empty");
  ExpectLoadRejected("garbage", "text");
  ExpectLoadRejected(std::string("\xc1\xc1\xc1", 3), "reserved bytes");
  ExpectLoadRejected(std::string("\x92\x01\x02", 3), "an array");
}

TEST(RouterState, LoadRejectsATruncatedState) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string state = source->SaveState();
  ExpectLoadRejected(std::string_view(state).substr(0, state.size() / 2), "half a state");
  ExpectLoadRejected(std::string_view(state).substr(0, state.size() - 1), "one byte short");
}

TEST(RouterState, LoadRejectsAStateWithDifferentModelNames) {
  RouterConfig other = ThreeModelConfig();
  other.models[2].name = "xl";
  std::unique_ptr<Router> source = TrainedRouter(other);
  ASSERT_NE(source, nullptr);
  ExpectLoadRejected(source->SaveState(), "renamed model");
}

TEST(RouterState, LoadRejectsAStateWithADifferentNumberOfModels) {
  RouterConfig other = ThreeModelConfig();
  other.models.push_back({"xl", 400.0, 1.0});
  std::unique_ptr<Router> source = TrainedRouter(other);
  ASSERT_NE(source, nullptr);
  ExpectLoadRejected(source->SaveState(), "four models");
}

TEST(RouterState, LoadRejectsAStateWithDifferentTenants) {
  RouterConfig other = ThreeModelConfig();
  other.tenants[1].name = "bronze";
  std::unique_ptr<Router> source = TrainedRouter(other);
  ASSERT_NE(source, nullptr);
  ExpectLoadRejected(source->SaveState(), "renamed tenant");

  RouterConfig fewer = ThreeModelConfig();
  fewer.tenants.pop_back();
  std::unique_ptr<Router> one_tenant = TrainedRouter(fewer);
  ASSERT_NE(one_tenant, nullptr);
  ExpectLoadRejected(one_tenant->SaveState(), "one tenant");
}

TEST(RouterState, LoadRejectsAStateOfAnotherPolicy) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  ExpectLoadRejected(
      ReplaceField(source->SaveState(), "policy", [](Packer* pk) { pk->pack("adaptive"); }),
      "policy adaptive");
}

TEST(RouterState, LoadRejectsAnotherFormatOrVersion) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string state = source->SaveState();
  ExpectLoadRejected(
      ReplaceField(state, "format", [](Packer* pk) { pk->pack("messplus.predictor"); }), "format");
  ExpectLoadRejected(ReplaceField(state, "version", [](Packer* pk) { pk->pack(2); }), "version");
}

TEST(RouterState, LoadRejectsAPredictorOfAnotherDimension) {
  RouterConfig other = ThreeModelConfig();
  other.hashing.dim_bits = 10;  // same names, smaller predictor
  std::unique_ptr<Router> source = TrainedRouter(other);
  ASSERT_NE(source, nullptr);
  ExpectLoadRejected(source->SaveState(), "dim 1024");
}

// Feature values beyond the hasher's range would overflow the predictor's AdaGrad
// accumulators and make the saved state unloadable; both entry points reject them.
TEST(RouterState, RejectsHugeFeatureValuesSoTheStateStaysLoadable) {
  RouterConfig config = ThreeModelConfig();
  config.c = 1e9;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  SparseFeatures huge;
  huge.push_back(5, 1e20f);
  Decision d;
  EXPECT_EQ(router->Decide({&huge, 0, ""}, &d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router->counters().rejected_requests, 1u);

  SparseFeatures ok;
  ok.push_back(5, 0.5f);
  const Decision valid = MustDecide(router.get(), ok);
  EXPECT_EQ(router->RecordFeedback(valid, huge, Label(0, 1.0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(router->counters().rejected_feedback, 1u);
  std::unique_ptr<Router> fresh = MakeRouter(config);
  ASSERT_NE(fresh, nullptr);
  const Status st = fresh->LoadState(router->SaveState());
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// Rewrites one field of the "learning" map of a saved router state.
std::string ReplaceLearningField(const std::string& state, std::string_view key,
                                 const std::function<void(Packer*)>& pack_value) {
  const msgpack::object_handle handle = msgpack::unpack(state.data(), state.size());
  const msgpack::object* learning = nullptr;
  for (uint32_t i = 0; i < handle.get().via.map.size; ++i) {
    if (handle.get().via.map.ptr[i].key.as<std::string>() == "learning") {
      learning = &handle.get().via.map.ptr[i].val;
    }
  }
  EXPECT_NE(learning, nullptr);
  if (learning == nullptr) return state;
  return ReplaceField(state, "learning", [&](Packer* pk) {
    pk->pack_map(learning->via.map.size);
    for (uint32_t i = 0; i < learning->via.map.size; ++i) {
      const msgpack::object_kv& kv = learning->via.map.ptr[i];
      pk->pack(kv.key);
      if (kv.key.as<std::string>() == key) {
        pack_value(pk);
      } else {
        pk->pack(kv.val);
      }
    }
  });
}

TEST(RouterState, LoadRejectsANegativeQueueInTheLearningState) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string bad = ReplaceLearningField(source->SaveState(), "queues", [](Packer* pk) {
    pk->pack(std::vector<std::vector<double>>{{-1.0, 0.0}, {0.0, 0.0}});
  });
  ExpectLoadRejected(bad, "negative queue");
}

TEST(RouterState, LoadRejectsCostCountsOfTheWrongLength) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string bad = ReplaceLearningField(source->SaveState(), "cost_counts", [](Packer* pk) {
    pk->pack(std::vector<uint64_t>{1, 2});
  });
  ExpectLoadRejected(bad, "two cost counts");
}

TEST(RouterState, LoadRejectsACorruptPredictor) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string bad = ReplaceLearningField(source->SaveState(), "predictor", [](Packer* pk) {
    const std::string junk = "not a predictor";
    pk->pack_bin(static_cast<uint32_t>(junk.size()));
    pk->pack_bin_body(junk.data(), static_cast<uint32_t>(junk.size()));
  });
  ExpectLoadRejected(bad, "junk predictor");
}

// A crafted state whose predictor header claims a huge shape (2^26 x 1024) must be rejected
// from the header, before anything that size is allocated.
TEST(RouterState, LoadRejectsAHugePredictorHeaderWithoutAllocatingIt) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(source, nullptr);
  const std::string bad = ReplaceLearningField(source->SaveState(), "predictor", [](Packer* pk) {
    constexpr int64_t kModels = 1024;
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_map(13);
    p.pack("format");
    p.pack("messplus.predictor");
    p.pack("version");
    p.pack(1);
    p.pack("dim");
    p.pack(int64_t{1} << 26);
    p.pack("models");
    p.pack(kModels);
    p.pack("learning_rate");
    p.pack(0.2);
    p.pack("bias_learning_rate");
    p.pack(0.2);
    p.pack("initial_accumulator");
    p.pack(0.1);
    p.pack("l2");
    p.pack(1e-6);
    p.pack("bias");
    p.pack(std::vector<double>(kModels, 0.0));
    p.pack("bias_acc");
    p.pack(std::vector<double>(kModels, 0.1));
    p.pack("updates");
    p.pack(std::vector<uint64_t>(kModels, 0));
    p.pack("rows");
    p.pack_bin(0);
    p.pack("wg");
    p.pack_array(2);
    p.pack_bin(0);
    p.pack_bin(0);
    pk->pack_bin(static_cast<uint32_t>(buffer.size()));
    pk->pack_bin_body(buffer.data(), static_cast<uint32_t>(buffer.size()));
  });
  EXPECT_NO_THROW(ExpectLoadRejected(bad, "2^26 x 1024 predictor"));
}

}  // namespace
}  // namespace messplus::router
