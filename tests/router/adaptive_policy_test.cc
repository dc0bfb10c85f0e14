// Tests of AdaptivePolicy ("adaptive", the default), driven through the Router: the shrunk
// estimates on hand-computed cases, the learning state's round trip, per-tenant SLAs, the text
// gates, in-flight and pending accounting in the queue, the exploration budget, hull optimism,
// alpha_unreachable, determinism, and validation of AdaptiveTuning.
//
// Zoos are small and hand-built (cost priors worth 1e6 calls, so E_m stays at the prior while
// the recorded costs equal it); requests are hashed with FeatureHasher and their labels drawn
// from a seeded messplus::Rng before any routing, so runs with different settings see the
// same outcomes.
#include "router/adaptive_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "router/feature_hasher.h"
#include "router/rng.h"
#include "router/router.h"
#include "router/zoo.h"
#include "tests/router/router_test_util.h"

namespace messplus::router {
namespace {

using test::Label;
using test::MakeRouter;

constexpr double kEps = 1e-12;
constexpr uint32_t kCheap = 0;
constexpr uint32_t kDear = 1;

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Two models (cheap: 1 per call, dear: 10), one tenant at alpha 0.7, a small hashed space.
RouterConfig TwoModelConfig() {
  RouterConfig config;
  config.models = {{"cheap", 1.0, 1e6}, {"dear", 10.0, 1e6}};
  config.tenants = {{"gold", 0.7}};
  config.policy = "adaptive";
  config.seed = 42;
  config.hashing.dim_bits = 12;
  return config;
}

// Three models at 1, 4 and 20 per call, two tenants.
RouterConfig ThreeModelConfig() {
  RouterConfig config = TwoModelConfig();
  config.models = {{"small", 1.0, 1e6}, {"medium", 4.0, 1e6}, {"large", 20.0, 1e6}};
  config.tenants = {{"gold", 0.8}, {"silver", 0.6}};
  return config;
}

const AdaptivePolicy& Adaptive(const Router& router) {
  // Every router in this file is created with policy "adaptive".
  return dynamic_cast<const AdaptivePolicy&>(router.policy());
}

// ---------------------------------------------------------------------------------------------
// Synthetic request streams

struct Request {
  SparseFeatures features;
  std::string task;
  uint32_t tenant = 0;
  bool hard = false;
  std::vector<double> label;  // per model: 1 when its answer would satisfy, else 0
  std::vector<double> cost;   // per model: the call's cost
};

struct StreamSpec {
  size_t n = 1000;
  uint64_t seed = 7;
  std::vector<double> p;         // per model: P(satisfied) (on "easy" requests if p_hard is set)
  std::vector<double> p_hard;    // per model, on "hard" requests; empty: no difficulty
  bool difficulty_word = false;  // the prompt starts with "easy" or "hard"
  std::vector<double> cost;      // per model: mean cost per call
  double cost_spread = 0.0;      // costs uniform in mean * [1 - spread, 1 + spread)
  std::vector<std::string> tasks = {""};
  uint32_t tenants = 1;  // request i goes to tenant i % tenants
  int dim_bits = 12;
};

std::vector<Request> MakeStream(const StreamSpec& spec) {
  HashingOptions hashing;
  hashing.dim_bits = spec.dim_bits;
  const FeatureHasher hasher(hashing);
  Rng rng(spec.seed);
  std::vector<Request> stream(spec.n);
  for (size_t i = 0; i < spec.n; ++i) {
    Request& r = stream[i];
    r.tenant = static_cast<uint32_t>(i % spec.tenants);
    r.task = spec.tasks[rng.Below(spec.tasks.size())];
    r.hard = !spec.p_hard.empty() && rng.Bernoulli(0.5);
    std::string text = spec.difficulty_word ? (r.hard ? "hard" : "easy") : "";
    for (int w = 0; w < 8; ++w) text += " w" + std::to_string(rng.Below(300));
    const std::string tag = "task=" + r.task;
    const std::string_view tags[] = {tag};
    r.features = hasher.Hash(text, tags);
    const std::vector<double>& p = r.hard ? spec.p_hard : spec.p;
    for (size_t m = 0; m < spec.p.size(); ++m) {
      r.label.push_back(rng.Bernoulli(p[m]) ? 1.0 : 0.0);
      r.cost.push_back(spec.cost[m] * (1.0 + spec.cost_spread * (2.0 * rng.Uniform() - 1.0)));
    }
  }
  return stream;
}

struct Step {
  Decision d;
  double satisfaction = 0.0;  // the served answer's label
  double chosen_cost = 0.0;   // cost of the rule's choice
  double extra_cost = 0.0;    // cost of every other model run
};

struct DriveOptions {
  double feedback_rate = 1.0;  // share of requests whose labels (of every model run) arrive
  uint64_t feedback_seed = 99;
};

// Decides each request, records the costs of every model run and, for feedback_rate of the
// requests, their labels, all before the next request. `after_each` sees each step.
std::vector<Step> Drive(Router* router, const std::vector<Request>& stream,
                        const DriveOptions& options = {},
                        const std::function<void(const Step&)>& after_each = {}) {
  Rng feedback(options.feedback_seed);
  std::vector<Step> steps;
  steps.reserve(stream.size());
  for (const Request& r : stream) {
    Step s;
    const Status decided = router->Decide(RouteRequest{&r.features, r.tenant, r.task}, &s.d);
    if (!decided.ok()) {
      ADD_FAILURE() << "Decide: " << decided.ToString();
      break;
    }
    std::vector<ModelCost> costs;
    std::vector<ModelLabel> labels;
    for (uint32_t m : s.d.run) {
      costs.push_back({m, r.cost[m]});
      labels.push_back({m, r.label[m]});
      (m == s.d.chosen ? s.chosen_cost : s.extra_cost) += r.cost[m];
    }
    s.satisfaction = r.label[s.d.served];
    const Status costed = router->RecordCosts(s.d, costs);
    EXPECT_TRUE(costed.ok()) << costed.ToString();
    if (feedback.Bernoulli(options.feedback_rate)) {
      const Status labeled = router->RecordFeedback(s.d, r.features, labels);
      EXPECT_TRUE(labeled.ok()) << labeled.ToString();
    }
    if (after_each) after_each(s);
    steps.push_back(std::move(s));
  }
  return steps;
}

// Where two saved states first differ (printing megabytes of msgpack helps nobody).
std::string FirstDifference(const std::string& a, const std::string& b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
         ", first difference at byte " + std::to_string(ia - a.begin());
}

// ---------------------------------------------------------------------------------------------
// Reading the saved learning state (the shared difficulty gate has no accessor).

const msgpack::object* MapField(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const msgpack::object_kv& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

// learning.shared_gate is saved as [n, sum, sum_sq, open].
bool SharedGateOpen(const Router& router) {
  const std::string bytes = router.SaveState();
  const msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
  const msgpack::object* learning = MapField(handle.get(), "learning");
  const msgpack::object* gate = learning == nullptr ? nullptr : MapField(*learning, "shared_gate");
  if (gate == nullptr || gate->type != msgpack::type::ARRAY || gate->via.array.size != 4) {
    ADD_FAILURE() << "saved state has no shared_gate [n, sum, sum_sq, open]";
    return false;
  }
  return gate->via.array.ptr[3].as<bool>();
}

// Packs `object` with the value at `path` (map keys, outermost first) replaced by `value`.
void PackReplacing(Packer* pk, const msgpack::object& object,
                   std::span<const std::string_view> path,
                   const std::function<void(Packer*, const msgpack::object&)>& value) {
  if (path.empty()) {
    value(pk, object);
    return;
  }
  pk->pack_map(object.via.map.size);
  for (uint32_t i = 0; i < object.via.map.size; ++i) {
    const msgpack::object_kv& kv = object.via.map.ptr[i];
    pk->pack(kv.key);
    if (kv.key.as<std::string>() == path[0]) {
      PackReplacing(pk, kv.val, path.subspan(1), value);
    } else {
      pk->pack(kv.val);
    }
  }
}

std::string Rewrite(std::string_view state, std::vector<std::string_view> path,
                    const std::function<void(Packer*, const msgpack::object&)>& value) {
  const msgpack::object_handle handle = msgpack::unpack(state.data(), state.size());
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  PackReplacing(&pk, handle.get(), path, value);
  return std::string(buffer.data(), buffer.size());
}

// ---------------------------------------------------------------------------------------------
// 1. Estimates

// A router whose every decision runs both models of TwoModelConfig (warm-up never ends, no
// exploration draws), so a label can be given for either model; no costs are recorded.
std::unique_ptr<Router> LabelingRouter() {
  RouterConfig config = TwoModelConfig();
  config.adaptive.warmup_labels = 1e9;
  config.adaptive.explore_rate = 0.0;
  return MakeRouter(config);
}

void GiveLabel(Router* router, std::string_view task, uint32_t model, double s) {
  const SparseFeatures none;
  Decision d;
  ASSERT_TRUE(router->Decide(RouteRequest{&none, 0, task}, &d).ok());
  ASSERT_NE(std::find(d.run.begin(), d.run.end(), model), d.run.end()) << "model " << model;
  const Status st = router->RecordFeedback(d, none, Label(model, s));
  ASSERT_TRUE(st.ok()) << st.ToString();
}

// The estimator of adaptive_policy.cc replayed by hand, for labels without text (the
// difficulty gate cannot open below text_gate_min_labels = 200 labels, so labels count as
// they are): pooled mean (all_sum + 1) / (all_n + 2); model mean (sum_m + 10 pooled) / (n_m +
// 10); task offset sum(s - model mean before the label) / (n + 5); estimate
// (sum_km + 20 prior) / (n_km + 20) with prior = model mean + task offset.
struct ShrinkageByHand {
  struct Task {
    double n[2] = {0, 0}, sum[2] = {0, 0};
    double offset_sum = 0, offset_n = 0;
  };
  double model_n[2] = {0, 0}, model_sum[2] = {0, 0};
  double all_n = 0, all_sum = 0;
  std::map<std::string, Task> tasks;

  double Pooled() const { return (all_sum + 1.0) / (all_n + 2.0); }
  double ModelMean(int m) const { return (model_sum[m] + 10.0 * Pooled()) / (model_n[m] + 10.0); }
  double Offset(const std::string& task) const {
    auto it = tasks.find(task);
    return it == tasks.end() ? 0.0 : it->second.offset_sum / (it->second.offset_n + 5.0);
  }
  double Estimate(int m, const std::string& task) const {
    const double prior = ModelMean(m) + Offset(task);
    auto it = tasks.find(task);
    if (it == tasks.end()) return prior;
    return (it->second.sum[m] + 20.0 * prior) / (it->second.n[m] + 20.0);
  }
  void Add(const std::string& task, int m, double s) {
    Task& t = tasks[task];
    t.offset_sum += s - ModelMean(m);
    t.offset_n += 1.0;
    t.n[m] += 1.0;
    t.sum[m] += s;
    model_n[m] += 1.0;
    model_sum[m] += s;
    all_n += 1.0;
    all_sum += s;
  }
};

TEST(AdaptiveEstimates, WithoutLabelsEveryEstimateIsTheFlatPrior) {
  std::unique_ptr<Router> router = LabelingRouter();
  ASSERT_NE(router, nullptr);
  const AdaptivePolicy& policy = Adaptive(*router);
  for (uint32_t m : {kCheap, kDear}) {
    for (uint64_t task : {uint64_t{0}, Router::TaskKey("math"), Router::TaskKey("trivia")}) {
      // Pooled mean (0 + 1) / (0 + 2) = 0.5; model mean (0 + 10 * 0.5) / (0 + 10) = 0.5; no
      // task statistics, so no offset and no task-level shrinkage: 0.5.
      EXPECT_EQ(policy.Estimate(m, task), 0.5) << "model " << m << " task " << task;
    }
  }
}

TEST(AdaptiveEstimates, OneLabelMovesEachLevelByItsShrinkage) {
  std::unique_ptr<Router> router = LabelingRouter();
  ASSERT_NE(router, nullptr);
  GiveLabel(router.get(), "math", kCheap, 1.0);
  const AdaptivePolicy& policy = Adaptive(*router);
  const uint64_t math = Router::TaskKey("math"), trivia = Router::TaskKey("trivia");
  // Pooled (1 + 1) / (1 + 2) = 2/3; cheap's mean (1 + 10 * 2/3) / 11 = 23/33; math's offset
  // (1 - 0.5) / (1 + 5) = 1/12 (0.5 = cheap's mean before the label); prior 23/33 + 1/12 =
  // 103/132; estimate (1 + 20 * 103/132) / (1 + 20) = 548/693.
  EXPECT_NEAR(policy.Estimate(kCheap, math), 548.0 / 693.0, kEps);
  // Dear has no labels: its mean is the pooled 2/3, plus math's offset 1/12 = 3/4, and with no
  // labels of its own on math the task level leaves the prior as it is.
  EXPECT_NEAR(policy.Estimate(kDear, math), 0.75, kEps);
  // A task never seen has no offset: the model means 23/33 and 2/3.
  EXPECT_NEAR(policy.Estimate(kCheap, trivia), 23.0 / 33.0, kEps);
  EXPECT_NEAR(policy.Estimate(kDear, trivia), 2.0 / 3.0, kEps);
  // No label of its own: the request without a task (key 0) is an unseen task too.
  EXPECT_NEAR(policy.Estimate(kCheap, 0), 23.0 / 33.0, kEps);
}

TEST(AdaptiveEstimates, ManyLabelsOnOneTaskFollowTheShrinkageFormula) {
  std::unique_ptr<Router> router = LabelingRouter();
  ASSERT_NE(router, nullptr);
  ShrinkageByHand hand;
  // 40 labels of the cheap model on math, 4 in 5 satisfied (label mean 0.8).
  for (int i = 0; i < 40; ++i) {
    const double s = i % 5 == 4 ? 0.0 : 1.0;
    GiveLabel(router.get(), "math", kCheap, s);
    hand.Add("math", kCheap, s);
  }
  const AdaptivePolicy& policy = Adaptive(*router);
  const uint64_t math = Router::TaskKey("math");
  const double prior = hand.ModelMean(kCheap) + hand.Offset("math");
  // (sum + k * prior) / (n + k) with k = task_prior_strength = 20, n = 40, sum = 32.
  EXPECT_NEAR(policy.Estimate(kCheap, math), (32.0 + 20.0 * prior) / (40.0 + 20.0), 1e-12);
  // The labels outweigh the prior 40 : 20, so the estimate sits two thirds of the way from
  // the prior to the label mean.
  EXPECT_NEAR(policy.Estimate(kCheap, math) - prior, (0.8 - prior) * 40.0 / 60.0, 1e-12);
  // With n = 0 on math the dear model's estimate is its prior: pooled mean shrunk, plus offset.
  EXPECT_NEAR(policy.Estimate(kDear, math), hand.ModelMean(kDear) + hand.Offset("math"), 1e-12);
}

TEST(AdaptiveEstimates, ASecondTaskStartsFromTheModelMeanPlusItsOffset) {
  std::unique_ptr<Router> router = LabelingRouter();
  ASSERT_NE(router, nullptr);
  ShrinkageByHand hand;
  // Cheap is always right on math; the dear model is always wrong on trivia (a hard task).
  for (int i = 0; i < 20; ++i) {
    GiveLabel(router.get(), "math", kCheap, 1.0);
    hand.Add("math", kCheap, 1.0);
  }
  for (int i = 0; i < 10; ++i) {
    GiveLabel(router.get(), "trivia", kDear, 0.0);
    hand.Add("trivia", kDear, 0.0);
  }
  const AdaptivePolicy& policy = Adaptive(*router);
  const uint64_t trivia = Router::TaskKey("trivia"), unseen = Router::TaskKey("unseen");
  // An unseen task is the model mean alone: (20 + 10 * pooled) / 30, pooled = 21/32.
  EXPECT_NEAR(policy.Estimate(kCheap, unseen), (20.0 + 10.0 * 21.0 / 32.0) / 30.0, kEps);
  // Cheap has no labels on trivia: its estimate there is its mean plus trivia's offset.
  const double offset = hand.Offset("trivia");
  EXPECT_NEAR(policy.Estimate(kCheap, trivia), policy.Estimate(kCheap, unseen) + offset, kEps);
  // Trivia's labels all fell below the dear model's mean, so the offset carried to cheap is
  // negative: the task is hard for every model until cheap's own labels say otherwise.
  EXPECT_LT(offset, -0.2);
  EXPECT_LT(policy.Estimate(kCheap, trivia), policy.Estimate(kCheap, unseen));
}

TEST(AdaptiveEstimates, MixedLabelsOnTwoTasksMatchTheHandComputedEstimator) {
  std::unique_ptr<Router> router = LabelingRouter();
  ASSERT_NE(router, nullptr);
  ShrinkageByHand hand;
  Rng rng(11);
  const std::string tasks[] = {"math", "trivia", ""};
  // 150 labels (below the 200 a text gate needs), models and tasks at random.
  for (int i = 0; i < 150; ++i) {
    const std::string& task = tasks[rng.Below(3)];
    const uint32_t m = static_cast<uint32_t>(rng.Below(2));
    const double s = rng.Bernoulli(m == kCheap ? 0.4 : 0.85) ? 1.0 : 0.0;
    GiveLabel(router.get(), task, m, s);
    hand.Add(task, static_cast<int>(m), s);
  }
  const AdaptivePolicy& policy = Adaptive(*router);
  for (const std::string& task :
       {std::string("math"), std::string("trivia"), std::string(""), std::string("unseen")}) {
    for (uint32_t m : {kCheap, kDear}) {
      // Same formulas, same order of updates: equal up to rounding.
      EXPECT_NEAR(policy.Estimate(m, Router::TaskKey(task)),
                  hand.Estimate(static_cast<int>(m), task), 1e-12)
          << "model " << m << " task '" << task << "'";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Learning state round trip

std::vector<Request> RoundTripStream(size_t n, uint64_t seed) {
  StreamSpec spec;
  spec.n = n;
  spec.seed = seed;
  spec.difficulty_word = true;  // so the text gates have something to learn
  spec.p = {0.9, 0.95, 0.98};
  spec.p_hard = {0.1, 0.5, 0.85};
  spec.cost = {1.0, 4.0, 20.0};
  spec.tasks = {"math", "trivia", "code", ""};
  spec.tenants = 2;
  return MakeStream(spec);
}

// Trains a ThreeModelConfig router on 400 requests, labels arriving for 3 in 4 of them (the
// others stay pending in the queue).
std::unique_ptr<Router> TrainedRouter(const RouterConfig& config, uint64_t seed = 5) {
  std::unique_ptr<Router> router = MakeRouter(config);
  if (router == nullptr) return nullptr;
  DriveOptions o;
  o.feedback_rate = 0.75;
  const std::vector<Step> steps = Drive(router.get(), RoundTripStream(400, seed), o);
  const auto explored =
      std::count_if(steps.begin(), steps.end(), [](const Step& s) { return s.d.explore; });
  // The state must hold exploration's labels too, or the round trip is not the full one.
  EXPECT_GT(explored, 0);
  return router;
}

std::vector<uint64_t> RoundTripTasks() {
  return {0, Router::TaskKey("math"), Router::TaskKey("trivia"), Router::TaskKey("code"),
          Router::TaskKey("unseen")};
}

TEST(AdaptiveState, RoundTripRestoresEstimatesPricesBacklogsAndGates) {
  const RouterConfig config = ThreeModelConfig();
  std::unique_ptr<Router> trained = TrainedRouter(config);
  ASSERT_NE(trained, nullptr);
  std::unique_ptr<Router> fresh = MakeRouter(config);
  ASSERT_NE(fresh, nullptr);
  const Status st = fresh->LoadState(trained->SaveState());
  ASSERT_TRUE(st.ok()) << st.ToString();

  const AdaptivePolicy& a = Adaptive(*trained);
  const AdaptivePolicy& b = Adaptive(*fresh);
  for (size_t m = 0; m < 3; ++m) {
    for (uint64_t task : RoundTripTasks()) {
      // The estimate is a function of the saved counts alone.
      EXPECT_EQ(a.Estimate(m, task), b.Estimate(m, task)) << "model " << m << " task " << task;
    }
    // The gates are saved with their scores.
    EXPECT_EQ(a.text_gate_open(m), b.text_gate_open(m)) << m;
    // Costs are part of the common state.
    EXPECT_EQ(a.costs().Estimate(m), b.costs().Estimate(m)) << m;
  }
  for (uint32_t j = 0; j < 2; ++j) {
    // Price, backlog and pending shortfall are saved per tenant.
    EXPECT_EQ(a.price(j), b.price(j)) << j;
    EXPECT_EQ(a.backlog(j), b.backlog(j)) << j;
    EXPECT_EQ(a.pending(j), b.pending(j)) << j;
    // The headroom (and so the backlog scale) too, or a loaded replica would escalate its
    // price on another scale until its next price refresh.
    EXPECT_EQ(a.headroom(j), b.headroom(j)) << j;
    EXPECT_EQ(a.backlog_scale(j), b.backlog_scale(j)) << j;
  }
  // The spend on choices and on exploration is saved (the budget carries over).
  EXPECT_EQ(a.serve_spend(), b.serve_spend());
  EXPECT_EQ(a.explore_spend(), b.explore_spend());

  // Not vacuous: the trained state differs from a fresh router's.
  std::unique_ptr<Router> untrained = MakeRouter(config);
  ASSERT_NE(untrained, nullptr);
  // 400 requests with feedback move the backlog off zero and re-solve the price (starting 1).
  EXPECT_NE(a.backlog(0), 0.0);
  EXPECT_NE(a.price(0), 1.0);
  EXPECT_NE(a.headroom(0), 0.0);
  // A quarter of the requests never got labels: they are pending.
  EXPECT_NE(a.pending(0), 0.0);
  // The "easy"/"hard" word beats the estimates: the difficulty gate was saved open.
  EXPECT_TRUE(SharedGateOpen(*trained));
  EXPECT_TRUE(SharedGateOpen(*fresh));
  // The small model's estimate on math moved off the flat prior 0.5.
  EXPECT_NE(a.Estimate(0, Router::TaskKey("math")),
            Adaptive(*untrained).Estimate(0, Router::TaskKey("math")));
}

TEST(AdaptiveState, SavingALoadedStateGivesTheSameBytes) {
  const RouterConfig config = ThreeModelConfig();
  std::unique_ptr<Router> trained = TrainedRouter(config);
  ASSERT_NE(trained, nullptr);
  std::unique_ptr<Router> fresh = MakeRouter(config);
  ASSERT_NE(fresh, nullptr);
  const std::string state = trained->SaveState();
  ASSERT_TRUE(fresh->LoadState(state).ok());
  // Everything saved was restored, and nothing else is saved.
  const std::string again = fresh->SaveState();
  EXPECT_TRUE(again == state) << FirstDifference(again, state);
}

TEST(AdaptiveState, ALoadedRouterResolvesTheSamePricesFromTheSameOutcomes) {
  // A replica that loads the state and then sees the same outcomes (decided here by the
  // original; the replica only learns) must re-solve the same prices: the price is a function
  // of the learning state and the labels, with draws seeded by the label count.
  const RouterConfig config = ThreeModelConfig();
  std::unique_ptr<Router> original = TrainedRouter(config);
  ASSERT_NE(original, nullptr);
  std::unique_ptr<Router> replica = MakeRouter(config);
  ASSERT_NE(replica, nullptr);
  ASSERT_TRUE(replica->LoadState(original->SaveState()).ok());
  const std::vector<Request> later = RoundTripStream(200, 77);
  size_t i = 0;
  size_t refreshes_differing = 0;
  Drive(original.get(), later, {}, [&](const Step& s) {
    const Request& r = later[i++];
    std::vector<ModelCost> costs;
    std::vector<ModelLabel> labels;
    for (uint32_t m : s.d.run) {
      costs.push_back({m, r.cost[m]});
      labels.push_back({m, r.label[m]});
    }
    ASSERT_TRUE(replica->RecordCosts(s.d, costs).ok());
    ASSERT_TRUE(replica->RecordFeedback(s.d, r.features, labels).ok());
    for (uint32_t j = 0; j < 2; ++j) {
      if (Adaptive(*original).price(j) != Adaptive(*replica).price(j)) ++refreshes_differing;
    }
  });
  // Same state, same labels, same seeded draws: the same prices after every label.
  EXPECT_EQ(refreshes_differing, 0u);
  for (uint32_t j = 0; j < 2; ++j) {
    EXPECT_EQ(Adaptive(*original).price(j), Adaptive(*replica).price(j)) << "tenant " << j;
    // The backlog does not depend on the task order, so it agrees either way.
    EXPECT_EQ(Adaptive(*original).backlog(j), Adaptive(*replica).backlog(j)) << "tenant " << j;
  }
}

TEST(AdaptiveState, AReplicaThatReloadsTheCollectorsStateDecidesAsIfItHadNot) {
  // The pipeline's route replica learns from the collector's updates, and on a gap in them
  // reloads the collector's state (which learned the same outcomes, but never decided). Its
  // decisions afterwards must be those of a replica that saw every update: whatever Decide
  // keeps for itself (its draws, its count of decisions, its exploration in flight) must not
  // be part of the learning state, and the learning state must be all that learning changed.
  const RouterConfig config = ThreeModelConfig();
  std::unique_ptr<Router> steady = MakeRouter(config);     // never resyncs
  std::unique_ptr<Router> resyncing = MakeRouter(config);  // reloads at step kReload
  std::unique_ptr<Router> collector = MakeRouter(config);  // learns only
  ASSERT_NE(steady, nullptr);
  ASSERT_NE(resyncing, nullptr);
  ASSERT_NE(collector, nullptr);
  constexpr size_t kReload = 300;
  const std::vector<Request> stream = RoundTripStream(900, 21);
  size_t differing = 0, first_difference = stream.size();
  for (size_t i = 0; i < stream.size(); ++i) {
    const Request& r = stream[i];
    if (i == kReload) {
      ASSERT_TRUE(resyncing->LoadState(collector->SaveState()).ok());
    }
    Decision a, b;
    ASSERT_TRUE(steady->Decide(RouteRequest{&r.features, r.tenant, r.task}, &a).ok());
    ASSERT_TRUE(resyncing->Decide(RouteRequest{&r.features, r.tenant, r.task}, &b).ok());
    if (a.run != b.run || a.served != b.served) {
      ++differing;
      first_difference = std::min(first_difference, i);
    }
    std::vector<ModelCost> costs;
    std::vector<ModelLabel> labels;
    for (uint32_t m : a.run) {
      costs.push_back({m, r.cost[m]});
      labels.push_back({m, r.label[m]});
    }
    // Every router learns the steady replica's outcomes, as the collector publishes them.
    for (Router* learner : {steady.get(), resyncing.get(), collector.get()}) {
      ASSERT_TRUE(learner->RecordCosts(a, costs).ok());
      ASSERT_TRUE(learner->RecordFeedback(a, r.features, labels).ok());
    }
  }
  EXPECT_EQ(differing, 0u) << "first at request " << first_difference;
  EXPECT_TRUE(resyncing->SaveState() == steady->SaveState())
      << FirstDifference(resyncing->SaveState(), steady->SaveState());
}

// Loads `bytes` into a trained router and checks that it fails with DataLoss and changes
// nothing.
void ExpectLoadRejected(std::string_view bytes, const char* what) {
  std::unique_ptr<Router> router = TrainedRouter(ThreeModelConfig());
  ASSERT_NE(router, nullptr);
  const std::string before = router->SaveState();
  const double backlog = Adaptive(*router).backlog(0);
  const Status st = router->LoadState(bytes);
  // The bytes are not a state of this configuration.
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << what << ": " << st.ToString();
  // A rejected load is all or nothing: the router keeps what it had learned.
  const std::string after = router->SaveState();
  EXPECT_TRUE(after == before) << what << ": " << FirstDifference(after, before);
  EXPECT_EQ(Adaptive(*router).backlog(0), backlog) << what;
}

TEST(AdaptiveState, LoadRejectsAPaperPolicyState) {
  RouterConfig paper = ThreeModelConfig();
  paper.policy = "paper";
  std::unique_ptr<Router> source = MakeRouter(paper);
  ASSERT_NE(source, nullptr);
  Drive(source.get(), RoundTripStream(100, 3));
  ExpectLoadRejected(source->SaveState(), "paper state");
}

TEST(AdaptiveState, LoadRejectsAStateOfAnotherZoo) {
  RouterConfig renamed = ThreeModelConfig();
  renamed.models[2].name = "xl";
  std::unique_ptr<Router> source = TrainedRouter(renamed, 6);
  ASSERT_NE(source, nullptr);
  ExpectLoadRejected(source->SaveState(), "renamed model");

  RouterConfig two = TwoModelConfig();
  two.tenants = ThreeModelConfig().tenants;
  std::unique_ptr<Router> small = MakeRouter(two);
  ASSERT_NE(small, nullptr);
  Drive(small.get(), RoundTripStream(100, 3));
  ExpectLoadRejected(small->SaveState(), "two models");
}

// learning.tenants holds one array of 11 numbers per tenant, the backlog second; this makes
// tenant 0's NaN.
std::string WithNanBacklog(std::string_view state) {
  return Rewrite(state, {"learning", "tenants"}, [](Packer* pk, const msgpack::object& tenants) {
    pk->pack_array(tenants.via.array.size);
    for (uint32_t j = 0; j < tenants.via.array.size; ++j) {
      const msgpack::object& row = tenants.via.array.ptr[j];
      pk->pack_array(row.via.array.size);
      for (uint32_t k = 0; k < row.via.array.size; ++k) {
        if (j == 0 && k == 1) {
          pk->pack(std::nan(""));
        } else {
          pk->pack(row.via.array.ptr[k]);
        }
      }
    }
  });
}

TEST(AdaptiveState, LoadRejectsANonFiniteBacklogWithoutChangingTheRouter) {
  // Another router's state (other labels), with tenant 0's backlog made NaN.
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig(), 8);
  ASSERT_NE(source, nullptr);
  const std::string bad = WithNanBacklog(source->SaveState());
  ExpectLoadRejected(bad, "NaN backlog");
}

// learning.all is {labels over all models, their satisfaction, labels counted, the difficulty
// model's running mean and its count}; states saved before the last two existed had three.
std::string WithoutDifficultyMean(std::string_view state) {
  return Rewrite(state, {"learning", "all"}, [](Packer* pk, const msgpack::object& all) {
    pk->pack_array(3);
    for (uint32_t k = 0; k < 3; ++k) pk->pack(all.via.array.ptr[k]);
  });
}

TEST(AdaptiveState, AStateSavedBeforeTheDifficultyMeanLoadsAndStartsItAfresh) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig(), 8);
  ASSERT_NE(source, nullptr);
  const std::string old_format = WithoutDifficultyMean(source->SaveState());
  std::unique_ptr<Router> fresh = MakeRouter(ThreeModelConfig());
  ASSERT_NE(fresh, nullptr);
  const Status st = fresh->LoadState(old_format);
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Everything else came across: the estimates and backlogs match the source's.
  for (size_t m = 0; m < 3; ++m) {
    for (uint64_t task : RoundTripTasks()) {
      EXPECT_EQ(Adaptive(*fresh).Estimate(m, task), Adaptive(*source).Estimate(m, task));
    }
  }
  EXPECT_EQ(Adaptive(*fresh).backlog(0), Adaptive(*source).backlog(0));
  EXPECT_NE(Adaptive(*source).backlog(0), 0.0);  // not vacuous: the source was trained
  // A four-number `all` is neither format.
  const std::string broken =
      Rewrite(source->SaveState(), {"learning", "all"}, [](Packer* pk, const msgpack::object&) {
        pk->pack(std::vector<double>{1.0, 1.0, 1.0, 1.0});
      });
  ExpectLoadRejected(broken, "four-number all");
}

// States saved before the headroom was kept have no "headroom" entry.
std::string WithoutHeadroom(std::string_view state) {
  return Rewrite(state, {"learning"}, [](Packer* pk, const msgpack::object& learning) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < learning.via.map.size; ++i) {
      kept += learning.via.map.ptr[i].key.as<std::string>() != "headroom" ? 1 : 0;
    }
    pk->pack_map(kept);
    for (uint32_t i = 0; i < learning.via.map.size; ++i) {
      const msgpack::object_kv& kv = learning.via.map.ptr[i];
      if (kv.key.as<std::string>() == "headroom") continue;
      pk->pack(kv.key);
      pk->pack(kv.val);
    }
  });
}

TEST(AdaptiveState, AStateSavedBeforeTheHeadroomLoadsWithTheFixedScale) {
  std::unique_ptr<Router> source = TrainedRouter(ThreeModelConfig(), 8);
  ASSERT_NE(source, nullptr);
  const std::string saved = source->SaveState();
  {
    const msgpack::object_handle handle = msgpack::unpack(saved.data(), saved.size());
    const msgpack::object* learning = MapField(handle.get(), "learning");
    ASSERT_NE(learning, nullptr);
    ASSERT_NE(MapField(*learning, "headroom"), nullptr);  // what WithoutHeadroom removes
  }
  std::unique_ptr<Router> fresh = MakeRouter(ThreeModelConfig());
  ASSERT_NE(fresh, nullptr);
  const Status st = fresh->LoadState(WithoutHeadroom(saved));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(Adaptive(*source).headroom(0), 0.0);  // not vacuous
  EXPECT_EQ(Adaptive(*fresh).headroom(0), 0.0);
  EXPECT_EQ(Adaptive(*fresh).backlog_scale(0), ThreeModelConfig().adaptive.backlog_scale);
  EXPECT_EQ(Adaptive(*fresh).backlog(0), Adaptive(*source).backlog(0));
  // A headroom that is not a finite number per tenant is rejected.
  const std::string nan_headroom =
      Rewrite(saved, {"learning", "headroom"}, [](Packer* pk, const msgpack::object&) {
        pk->pack(std::vector<double>{std::nan(""), 0.0});
      });
  ExpectLoadRejected(nan_headroom, "NaN headroom");
  const std::string short_headroom =
      Rewrite(saved, {"learning", "headroom"},
              [](Packer* pk, const msgpack::object&) { pk->pack(std::vector<double>{0.1}); });
  ExpectLoadRejected(short_headroom, "one headroom for two tenants");
}

// ---------------------------------------------------------------------------------------------
// 3. Two tenants

TEST(AdaptiveTenants, AStricterTenantGetsTheDearModelMoreAndEachMeetsItsAlpha) {
  RouterConfig config = TwoModelConfig();
  config.tenants = {{"bronze", 0.6}, {"gold", 0.9}};
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  StreamSpec spec;
  spec.n = 4000;
  spec.p = {0.5, 0.97};
  spec.cost = {1.0, 10.0};
  spec.tenants = 2;  // alternating: both tenants see the same kind of requests
  const std::vector<Step> steps = Drive(router.get(), MakeStream(spec));
  double n[2] = {0, 0}, satisfied[2] = {0, 0}, dear[2] = {0, 0};
  for (const Step& s : steps) {
    n[s.d.tenant] += 1;
    satisfied[s.d.tenant] += s.satisfaction;
    dear[s.d.tenant] += s.d.chosen == kDear ? 1 : 0;
  }
  // Cheap alone (0.5) meets neither alpha: bronze needs a dear share of about
  // (0.6 - 0.5) / 0.47 = 21 %, gold about (0.9 - 0.5) / 0.47 = 85 %.
  EXPECT_GT(dear[1] / n[1], dear[0] / n[0] + 0.3);
  // The queue keeps each tenant's realised satisfaction at or above its own alpha.
  EXPECT_GE(satisfied[0] / n[0], 0.6) << satisfied[0] << " of " << n[0];
  EXPECT_GE(satisfied[1] / n[1], 0.9) << satisfied[1] << " of " << n[1];
}

// ---------------------------------------------------------------------------------------------
// 4. Text gates

TEST(AdaptiveTextGate, StaysClosedWhenLabelsIgnoreTheText) {
  RouterConfig config = TwoModelConfig();
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  StreamSpec spec;
  spec.n = 2000;
  spec.p = {0.6, 0.9};  // labels drawn without looking at the (random) words
  spec.cost = {1.0, 10.0};
  size_t labels = 0, i = 0;
  Drive(router.get(), MakeStream(spec), {}, [&](const Step& s) {
    labels += s.d.run.size();
    for (size_t m = 0; m < 2; ++m) {
      // Text that says nothing cannot beat the estimates by a margin with 2 standard errors.
      EXPECT_FALSE(Adaptive(*router).text_gate_open(m)) << "model " << m << " at " << s.d.t;
    }
    if (++i % 250 == 0) {
      // Nor can the shared difficulty model (its gate is read from the saved state).
      EXPECT_FALSE(SharedGateOpen(*router)) << "at request " << i;
    }
  });
  // Every request's labels arrived: at least 2000 labels were scored by the gates.
  EXPECT_GE(labels, 2000u);
  // Nor the shared difficulty gate (read from the saved state: it has no accessor).
  EXPECT_FALSE(SharedGateOpen(*router));
}

struct TextRun {
  double cost = 0.0, satisfied = 0.0;
  double cheap_on_easy = 0.0, cheap_on_hard = 0.0;  // shares over the second half
  bool shared_gate = false;
};

TextRun RunDifficultyStream(bool text_allowed) {
  RouterConfig config = TwoModelConfig();
  config.tenants = {{"gold", 0.85}};
  // The text-blind run: no gate can ever reach its minimum number of labels.
  if (!text_allowed) config.adaptive.text_gate_min_labels = 1e12;
  std::unique_ptr<Router> router = MakeRouter(config);
  TextRun out;
  if (router == nullptr) return out;
  StreamSpec spec;
  spec.n = 4000;
  spec.difficulty_word = true;
  spec.p = {0.95, 0.98};      // on "easy ..." prompts
  spec.p_hard = {0.1, 0.85};  // on "hard ..." prompts
  spec.cost = {1.0, 10.0};
  const std::vector<Request> stream = MakeStream(spec);
  const std::vector<Step> steps = Drive(router.get(), stream);
  double easy = 0, hard = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    out.cost += steps[i].chosen_cost + steps[i].extra_cost;
    out.satisfied += steps[i].satisfaction;
    if (i < steps.size() / 2) continue;
    const bool cheap = steps[i].d.served == kCheap;
    (stream[i].hard ? hard : easy) += 1;
    (stream[i].hard ? out.cheap_on_hard : out.cheap_on_easy) += cheap ? 1 : 0;
  }
  out.cheap_on_easy /= easy;
  out.cheap_on_hard /= hard;
  out.satisfied /= static_cast<double>(steps.size());
  out.shared_gate = SharedGateOpen(*router);
  return out;
}

TEST(AdaptiveTextGate, OpensWhenAWordDecidesDifficultyAndRoutesByIt) {
  const TextRun text = RunDifficultyStream(true);
  const TextRun blind = RunDifficultyStream(false);
  // "hard" makes every model worse (cheap: 0.95 -> 0.1, dear: 0.98 -> 0.85), far beyond what
  // the per-task estimates can explain: the shared difficulty model beats them in log loss.
  EXPECT_TRUE(text.shared_gate);
  // Gates never open in the blind run.
  EXPECT_FALSE(blind.shared_gate);
  // With the gate open, easy prompts go to the cheap model (right 95 % of the time) and hard
  // ones to the dear one (cheap is right 10 %): far from the blind run's coin for both.
  EXPECT_GT(text.cheap_on_easy, 0.8) << text.cheap_on_easy;
  EXPECT_LT(text.cheap_on_hard, 0.2) << text.cheap_on_hard;
  EXPECT_GT(text.cheap_on_easy - text.cheap_on_hard, 0.6);
  // The blind run cannot tell the prompts apart: its shares differ only by chance.
  EXPECT_NEAR(blind.cheap_on_easy, blind.cheap_on_hard, 0.1);
  // Routing by the word buys the same SLA for less.
  EXPECT_LT(text.cost, blind.cost);
  EXPECT_GE(text.satisfied, 0.85);
  EXPECT_GE(blind.satisfied, 0.85);
}

// ---------------------------------------------------------------------------------------------
// 5-6. In-flight and pending requests in the queue

// pending_z = 2 standard deviations of one unknown outcome predicted at 0.5: its variance
// 0.5 * 0.5 plus the uncertainty of an empty calibration, 0.25 / (0 labels + 50 prior).
const double kOneUnknownOutcome = 2.0 * std::sqrt(0.25 + 0.25 / 50.0);

// One tenant at alpha 0.7, no dither (Decision.q is the queue itself) and no exploration.
std::unique_ptr<Router> QueueRouter(bool exponential = false, bool calibration_uncertainty = true) {
  RouterConfig config = TwoModelConfig();
  config.adaptive.exponential_queue = exponential;
  config.adaptive.calibration_uncertainty = calibration_uncertainty;
  config.adaptive.queue_dither = 0.0;
  config.adaptive.explore_budget = 0.0;
  return MakeRouter(config);
}

TEST(AdaptiveInFlight, ANotedDecisionRaisesTheQueueAndClearingRestoresIt) {
  std::unique_ptr<Router> router = QueueRouter();
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = test::MustDecide(router.get(), f);
  // Fresh: backlog 0, nothing pending: Q = q_reference * exp(0) = 10.
  EXPECT_EQ(d.q, 10.0);
  // Untrained, every estimate is 0.5, below the target 0.7 + 0.003.
  ASSERT_LT(d.p[d.served], d.alpha);

  router->NoteInFlight(d);
  EXPECT_EQ(router->inflight(), 1u);
  const double raised = test::MustDecide(router.get(), f).q;
  // The request counts as a pending one does: its predicted shortfall 0.703 - 0.5 plus
  // pending_z = 2 standard deviations of its unknown outcome, whose variance 0.5 * 0.5 is
  // raised by the uncertainty of the (still empty) calibration, 0.25 / (0 + 50) for one
  // request: Q = 10 + 0.203 + 2 sqrt(0.255) (the linear queue).
  EXPECT_NEAR(raised, 10.0 + (d.alpha - d.p[d.served] + kOneUnknownOutcome), kEps);
  EXPECT_GT(raised, d.q);

  router->ClearInFlight(d);
  EXPECT_EQ(router->inflight(), 0u);
  // Clearing subtracts exactly what noting added: back to exactly 10.
  EXPECT_EQ(test::MustDecide(router.get(), f).q, d.q);
}

TEST(AdaptiveInFlight, WithTheExponentialQueueTheShortfallScalesQ) {
  std::unique_ptr<Router> router = QueueRouter(/*exponential=*/true);
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = test::MustDecide(router.get(), f);
  EXPECT_EQ(d.q, 10.0);
  router->NoteInFlight(d);
  // Q = 10 exp(b / backlog_scale), b as above, backlog_scale 6.
  EXPECT_NEAR(test::MustDecide(router.get(), f).q,
              10.0 * std::exp((d.alpha - d.p[d.served] + kOneUnknownOutcome) / 6.0), kEps);
}

TEST(AdaptiveInFlight, ClearingAnotherOriginsOrAnUnnotedDecisionChangesNothing) {
  std::unique_ptr<Router> router = QueueRouter();
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = test::MustDecide(router.get(), f);
  router->NoteInFlight(d);
  const double raised = test::MustDecide(router.get(), f).q;

  Decision other = d;
  other.origin = 7;  // the same t, made by replica 7
  router->ClearInFlight(other);
  // Replica 7's decision is not this router's to clear.
  EXPECT_EQ(router->inflight(), 1u);
  EXPECT_EQ(test::MustDecide(router.get(), f).q, raised);

  const Decision never = test::MustDecide(router.get(), f);
  router->ClearInFlight(never);
  // Clearing a decision that was never noted must not subtract its shortfall.
  EXPECT_EQ(router->inflight(), 1u);
  EXPECT_EQ(test::MustDecide(router.get(), f).q, raised);

  router->NoteInFlight(other);
  // Noting another replica's decision is ignored too.
  EXPECT_EQ(router->inflight(), 1u);
  EXPECT_EQ(test::MustDecide(router.get(), f).q, raised);
}

TEST(AdaptiveInFlight, NotingTheSameDecisionTwiceCountsOnce) {
  std::unique_ptr<Router> router = QueueRouter();
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = test::MustDecide(router.get(), f);
  router->NoteInFlight(d);
  const double once = test::MustDecide(router.get(), f).q;
  router->NoteInFlight(d);
  // A retransmitted decision (same t, same origin) is one request in flight, not two.
  EXPECT_EQ(router->inflight(), 1u);
  EXPECT_EQ(test::MustDecide(router.get(), f).q, once);
  router->ClearInFlight(d);
  // And one clear removes it entirely.
  EXPECT_EQ(test::MustDecide(router.get(), f).q, d.q);
}

TEST(AdaptivePending, CostsWithoutFeedbackCountThePredictionUntilTheLabelReplacesIt) {
  for (double s : {0.0, 1.0}) {
    SCOPED_TRACE(s);
    std::unique_ptr<Router> router = QueueRouter();
    ASSERT_NE(router, nullptr);
    const SparseFeatures f;
    const Decision d = test::MustDecide(router.get(), f);
    ASSERT_LT(d.p[d.served], d.alpha);  // 0.5 < 0.703
    ASSERT_TRUE(router->RecordCosts(d, test::Cost(d.served, 1.0)).ok());
    // Answered, label pending: shortfall alpha - p = 0.203 plus pending_z = 2 standard
    // deviations of its unknown outcome (0.25, plus 0.25 / 50 for the empty calibration).
    const double pending_q = test::MustDecide(router.get(), f).q;
    EXPECT_NEAR(pending_q, 10.0 + (d.alpha - 0.5 + kOneUnknownOutcome), kEps);

    ASSERT_TRUE(router->RecordFeedback(d, f, Label(d.served, s)).ok());
    // The label replaces the prediction: backlog alpha - s plus the buffer's first step
    // start_backlog / buffer_labels = 4 / 300; nothing pending any more.
    const double labeled_q = test::MustDecide(router.get(), f).q;
    EXPECT_NEAR(labeled_q, 10.0 + (d.alpha - s + 4.0 / 300.0), kEps);
    // Either way the variance allowance is gone; a failure still leaves Q above the start.
    EXPECT_LT(labeled_q, pending_q);
    EXPECT_EQ(labeled_q > 10.0, s == 0.0);
  }
}

TEST(AdaptivePending, WithoutCalibrationUncertaintyOnlyTheOutcomesNoiseCounts) {
  std::unique_ptr<Router> router = QueueRouter(/*exponential=*/false,
                                               /*calibration_uncertainty=*/false);
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision d = test::MustDecide(router.get(), f);
  ASSERT_TRUE(router->RecordCosts(d, test::Cost(d.served, 1.0)).ok());
  // Shortfall 0.703 - 0.5 plus 2 sqrt(0.5 * 0.5): the unknown outcome's own noise alone.
  EXPECT_NEAR(test::MustDecide(router.get(), f).q, 10.0 + (d.alpha - 0.5 + 2.0 * 0.5), kEps);
}

TEST(AdaptivePending, TheCalibrationTermGrowsWithTheUnlabeledRequestsAndShrinksWithLabels) {
  // n requests pending at prediction 0.5 after k labels: the allowance is
  // 2 sqrt(n 0.25 + n^2 0.25 / (k + 50)), the second term the calibration's own error, which
  // applies to all n at once (with 20 % feedback it outweighs the outcomes' noise).
  auto allowance = [](double n, double k) {
    return 2.0 * std::sqrt(n * 0.25 + n * n * 0.25 / (k + 50.0));
  };
  std::unique_ptr<Router> router = QueueRouter();
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  std::vector<Decision> open;
  for (int i = 0; i < 40; ++i) {
    open.push_back(test::MustDecide(router.get(), f));
    ASSERT_TRUE(router->RecordCosts(open.back(), test::Cost(open.back().served, 1.0)).ok());
  }
  for (const Decision& d : open) ASSERT_EQ(d.p[d.served], 0.5);  // untrained: all 0.5
  const double target = open.front().alpha;                      // 0.703, as no label came
  // 40 pending: Q = 10 + 40 (0.703 - 0.5) + allowance(40, 0).
  EXPECT_NEAR(test::MustDecide(router.get(), f).q,
              10.0 + 40.0 * (target - 0.5) + allowance(40.0, 0.0), 1e-9);
  // Labels for 20 of them, misses and hits in turn: the calibration stays centred (residuals
  // -0.5 and +0.5), the backlog takes 20 (0.703) - 10 plus the buffer's 20 steps of 4 / 300,
  // and the 20 still pending count with the calibration's error over 20 labels.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(router->RecordFeedback(open[i], f, Label(open[i].served, i % 2)).ok());
  }
  const double backlog = 20.0 * target - 10.0 + 20.0 * 4.0 / 300.0;
  EXPECT_NEAR(test::MustDecide(router.get(), f).q,
              10.0 + backlog + 20.0 * (target - 0.5) + allowance(20.0, 20.0), 1e-9);
}

// ---------------------------------------------------------------------------------------------
// 6b. The price integral and its hold (anti-windup)

// e^-correction of the price integral, read off a decision: V = q_reference / (price e^corr).
double IntegralFactor(const Router& router, const Decision& d) {
  return d.v * Adaptive(router).price(0) / 10.0;
}

TEST(AdaptiveIntegral, HoldsWhileTheMostSatisfyingModelIsServedBehindTheTarget) {
  // alpha 0.9 out of reach: the cheap model always fails, the dear one satisfies 80 %. Once
  // the backlog has made the dear model the choice, serving it is all any price could buy, so
  // with the hold the correction stays where it is; without it, it keeps growing (the price
  // rises, V falls) with every label of a backlog that no price can bring down.
  StreamSpec spec;
  spec.n = 400;
  spec.p = {0.0, 0.8};
  spec.cost = {1.0, 10.0};
  const std::vector<Request> stream = MakeStream(spec);
  auto run = [&](bool anti_windup, std::vector<double>* factor_when_dear) {
    RouterConfig config = TwoModelConfig();
    config.tenants = {{"gold", 0.9}};
    config.adaptive.explore_budget = 0.0;
    config.adaptive.queue_dither = 0.0;
    config.adaptive.integral_anti_windup = anti_windup;
    std::unique_ptr<Router> router = MakeRouter(config);
    ASSERT_NE(router, nullptr);
    Drive(router.get(), stream, {}, [&](const Step& s) {
      if (s.d.t > 200 && s.d.served == kDear)
        factor_when_dear->push_back(IntegralFactor(*router, s.d));
    });
  };
  std::vector<double> held, wound;
  run(true, &held);
  run(false, &wound);
  ASSERT_GT(held.size(), 150u);
  ASSERT_GT(wound.size(), 150u);
  // Held: the same factor at every decision after 200 (to rounding), and bounded by e^-1.
  for (double x : held) EXPECT_NEAR(x, held.front(), 1e-9);
  EXPECT_GE(held.front(), std::exp(-1.0) - 1e-12);
  // Wound up: pinned at the bound e^-max_price_correction, well below the held factor.
  EXPECT_NEAR(wound.back(), std::exp(-1.0), 1e-9);
  EXPECT_GT(held.front(), 1.5 * wound.back());
}

// ---------------------------------------------------------------------------------------------
// 7. Exploration budget

StreamSpec BudgetStream(size_t n) {
  StreamSpec spec;
  spec.n = n;
  spec.p = {0.55, 0.75, 0.9};
  spec.cost = {1.0, 4.0, 20.0};
  spec.cost_spread = 0.5;  // calls cost 0.5x to 1.5x their mean: estimates are never exact
  spec.tasks = {"math", "trivia"};
  spec.tenants = 2;
  return spec;
}

TEST(AdaptiveExploration, ExtraSpendStaysWithinTheBudgetAtEveryPrefix) {
  RouterConfig config = ThreeModelConfig();
  config.adaptive.explore_budget = 0.05;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  double chosen = 0.0, extra = 0.0, dearest_call = 0.0;
  size_t explored = 0;
  const std::vector<Request> stream = MakeStream(BudgetStream(3000));
  size_t i = 0;
  Drive(router.get(), stream, {}, [&](const Step& s) {
    const Request& r = stream[i++];
    for (uint32_t m : s.d.run) dearest_call = std::max(dearest_call, r.cost[m]);
    chosen += s.chosen_cost;
    extra += s.extra_cost;
    explored += s.d.explore ? 1 : 0;
    // The guarantee of adaptive_policy.h with variable costs: extra spend <= explore_budget x
    // spend on the choices + the dearest single call.
    EXPECT_LE(extra, 0.05 * chosen + dearest_call) << "after request " << s.d.t;
    // The policy's own accounting agrees with the calls the test paid for.
    EXPECT_NEAR(Adaptive(*router).explore_spend(), extra, 1e-9 * (1.0 + extra));
    EXPECT_NEAR(Adaptive(*router).serve_spend(), chosen, 1e-9 * (1.0 + chosen));
  });
  // Not vacuous: exploration ran, and spent a real share of its budget.
  EXPECT_GT(explored, 10u);
  EXPECT_GT(extra, 0.01 * chosen);
}

TEST(AdaptiveExploration, ZeroBudgetNeverRunsASecondModel) {
  RouterConfig config = ThreeModelConfig();
  config.adaptive.explore_budget = 0.0;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  Drive(router.get(), MakeStream(BudgetStream(1500)), {}, [](const Step& s) {
    // No budget, no extra call (the warm-up is off by default).
    EXPECT_EQ(s.d.run.size(), 1u) << "request " << s.d.t;
    EXPECT_FALSE(s.d.explore) << "request " << s.d.t;
    EXPECT_EQ(s.d.served, s.d.chosen) << "request " << s.d.t;
  });
}

// Cost discovery: models without a configured cost prior, decided with requests in flight
// (no outcome comes back between the decisions).
TEST(AdaptiveCostDiscovery, EveryUnknownModelRunsOnceBesideTheChoiceThenNotAgainWhileInFlight) {
  RouterConfig config = ThreeModelConfig();
  for (ModelSpec& m : config.models) m.cost_prior = -1.0;  // nothing known up front
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  const Decision first = test::MustDecide(router.get(), f);
  // Every estimate is the flat prior, every cost unknown: the choice is model 0 (ties go to
  // the lower index) and the two unknown models run beside it, outside the budget.
  EXPECT_EQ(first.chosen, 0u);
  EXPECT_TRUE(first.explore);
  EXPECT_EQ(first.explore_probability, 1.0);
  std::vector<uint32_t> run = first.run;
  std::sort(run.begin(), run.end());
  EXPECT_EQ(run, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(first.served, first.run[0]);
  for (uint32_t m = 0; m < 3; ++m) EXPECT_EQ(first.run_probability[m], 1.0) << m;
  // Seven more decisions before any outcome returns (8 in flight): none runs a second model,
  // so one discovery call per model is all that requests in flight cost.
  for (int k = 0; k < 7; ++k) {
    const Decision d = test::MustDecide(router.get(), f);
    EXPECT_EQ(d.run.size(), 1u) << "decision " << d.t;
    EXPECT_FALSE(d.explore) << "decision " << d.t;
  }
  // The first outcome makes every cost known: no discovery after it, ever.
  const std::vector<ModelCost> costs = {{0, 1.0}, {1, 4.0}, {2, 20.0}};
  ASSERT_TRUE(router->RecordCosts(first, costs).ok());
  for (int k = 0; k < 200; ++k) {
    const Decision d = test::MustDecide(router.get(), f);
    EXPECT_FALSE(d.explore && d.explore_probability == 1.0) << "decision " << d.t;
  }
}

TEST(AdaptiveCostDiscovery, AModelWhoseCostStaysUnknownIsTriedAgainEvery100Decisions) {
  RouterConfig config = ThreeModelConfig();
  for (ModelSpec& m : config.models) m.cost_prior = -1.0;
  config.adaptive.explore_budget = 0.0;
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  const SparseFeatures f;
  std::vector<uint64_t> tried;
  for (int k = 0; k < 250; ++k) {
    const Decision d = test::MustDecide(router.get(), f);
    EXPECT_EQ(d.chosen, 0u);  // all tied at the flat prior and a cost of 0
    if (d.run.size() > 1) tried.push_back(d.t);
  }
  // The calls never answer (no RecordCosts): models 1 and 2 are tried beside the choice at
  // decisions 1, 101 and 201 only.
  EXPECT_EQ(tried, (std::vector<uint64_t>{1, 101, 201}));
}

// ---------------------------------------------------------------------------------------------
// 7a. The backlog scale (AdaptiveTuning::clear_requests)

struct ScaleRun {
  double cost = 0.0;          // spend per request
  double satisfaction = 0.0;  // mean served satisfaction
  double large_share = 0.0;   // share of requests served by "large"
  double scale = 0.0;         // the backlog scale at the end
  double headroom = 0.0;      // and the headroom it was capped by
  std::vector<uint32_t> served;
};

// small / medium / large at 1, 4 and 20 per call, satisfying 60, 72 and 80 % of requests, one
// task, full feedback. At alpha 0.70 the cheapest allocation mixes small and medium, and
// large everywhere would be about 0.1 above the target: one scale of 15 could be cleared in
// 150 requests. At alpha 0.78 the headroom is about 0.02 (a scale of 3).
ScaleRun RunLongStream(double alpha, double clear_requests, uint64_t seed, size_t n) {
  RouterConfig config = ThreeModelConfig();
  config.tenants = {{"gold", alpha}};
  config.seed = seed;
  config.adaptive.clear_requests = clear_requests;
  std::unique_ptr<Router> router = MakeRouter(config);
  EXPECT_NE(router, nullptr);
  ScaleRun out;
  if (router == nullptr) return out;
  StreamSpec spec;
  spec.n = n;
  spec.seed = seed;
  spec.p = {0.60, 0.72, 0.80};
  spec.cost = {1.0, 4.0, 20.0};
  Drive(router.get(), MakeStream(spec), {}, [&](const Step& st) {
    out.cost += st.chosen_cost + st.extra_cost;
    out.satisfaction += st.satisfaction;
    out.large_share += st.d.served == 2 ? 1.0 : 0.0;
    out.served.push_back(st.d.served);
  });
  const double requests = static_cast<double>(n);
  out.cost /= requests;
  out.satisfaction /= requests;
  out.large_share /= requests;
  out.scale = Adaptive(*router).backlog_scale(0);
  out.headroom = Adaptive(*router).headroom(0);
  return out;
}

TEST(AdaptiveBacklogScale, WithHeadroomALongStreamGrowsTheScaleAndCallsTheDearestModelLess) {
  constexpr size_t kRequests = 20000;  // 4 x margin_scale: the scale doubles, to 12
  const AdaptiveTuning defaults;
  double cost_fixed = 0.0, cost_grown = 0.0, large_fixed = 0.0, large_grown = 0.0;
  int met_fixed = 0, met_grown = 0;
  constexpr int kSeeds = 8;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const ScaleRun fixed = RunLongStream(0.70, 0.0, seed, kRequests);
    const ScaleRun grown = RunLongStream(0.70, defaults.clear_requests, seed, kRequests);
    EXPECT_EQ(fixed.scale, defaults.backlog_scale) << seed;
    // sqrt(20000 / 5000) = 2 times the fixed scale, or the cap (headroom x 150: the true
    // headroom is 0.098, the estimate 0.07-0.09 in these runs) where that is lower.
    EXPECT_GT(grown.headroom, 0.05) << seed;
    EXPECT_NEAR(grown.scale,
                std::min(2.0 * defaults.backlog_scale, grown.headroom * defaults.clear_requests),
                1e-9)
        << seed;
    cost_fixed += fixed.cost / kSeeds;
    cost_grown += grown.cost / kSeeds;
    large_fixed += fixed.large_share / kSeeds;
    large_grown += grown.large_share / kSeeds;
    met_fixed += fixed.satisfaction >= 0.70 ? 1 : 0;
    met_grown += grown.satisfaction >= 0.70 ? 1 : 0;
  }
  // Measured: the large model on 4.2 % of requests at 4.24 per request with the fixed scale,
  // 2.9 % at 4.06 with the grown one; every run meets alpha either way.
  EXPECT_LT(large_grown, 0.85 * large_fixed);
  EXPECT_LT(cost_grown, 0.98 * cost_fixed);
  EXPECT_EQ(met_grown, kSeeds);
  EXPECT_EQ(met_fixed, kSeeds);
}

TEST(AdaptiveBacklogScale, WithoutHeadroomTheScaleStaysAndEveryDecisionIsUnchanged) {
  constexpr size_t kRequests = 12000;
  const AdaptiveTuning defaults;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const ScaleRun fixed = RunLongStream(0.78, 0.0, seed, kRequests);
    const ScaleRun capped = RunLongStream(0.78, defaults.clear_requests, seed, kRequests);
    EXPECT_EQ(capped.scale, defaults.backlog_scale) << seed;
    EXPECT_TRUE(capped.served == fixed.served) << seed;
    EXPECT_LT(capped.headroom * defaults.clear_requests, defaults.backlog_scale) << seed;
  }
}

// ---------------------------------------------------------------------------------------------
// 7b. Hull optimism

struct HullRun {
  double medium_share = 0.0;  // share of the second half of the requests served by "medium"
  double cost = 0.0;          // spend per request over the whole stream
  double satisfaction = 0.0;  // mean served satisfaction over the whole stream
};

// PIQA's zoo in miniature (docs/policies.md, "Hull optimism"): small / medium / large at 1, 6
// and 33 per call, satisfying 74.0, 79.3 and 82.7 % of requests, alpha 0.78. The cheapest
// allocation mixes small (25 %) and medium (75 %) at 4.8 per request; small and large would
// cost 16.2. Early labels can put medium's estimate below the chord from small to large,
// and then, without hull optimism, it is never served again. No exploration budget: only
// serving can measure medium.
HullRun RunPiqaLike(double hull_z, uint64_t seed) {
  RouterConfig config = ThreeModelConfig();
  config.models = {{"small", 1.0, 1e6}, {"medium", 6.0, 1e6}, {"large", 33.0, 1e6}};
  config.tenants = {{"gold", 0.78}};
  config.seed = seed;
  config.adaptive.hull_z = hull_z;
  config.adaptive.explore_budget = 0.0;
  std::unique_ptr<Router> router = MakeRouter(config);
  EXPECT_NE(router, nullptr);
  HullRun out;
  if (router == nullptr) return out;
  StreamSpec spec;
  spec.n = 3000;
  spec.seed = seed;
  spec.p = {0.740, 0.793, 0.827};
  spec.cost = {1.0, 6.0, 33.0};
  const std::vector<Request> stream = MakeStream(spec);
  size_t i = 0;
  Drive(router.get(), stream, {}, [&](const Step& st) {
    out.cost += st.chosen_cost + st.extra_cost;
    out.satisfaction += st.satisfaction;
    if (2 * i >= stream.size() && st.d.served == 1) out.medium_share += 1.0;
    ++i;
  });
  out.medium_share /= static_cast<double>(stream.size() / 2);
  out.cost /= static_cast<double>(stream.size());
  out.satisfaction /= static_cast<double>(stream.size());
  return out;
}

TEST(AdaptiveHull, AMiddleModelWrittenOffByEarlyLabelsIsWonBackAtLowerCost) {
  struct Tally {
    double cost = 0.0;
    int trapped = 0;  // runs where medium served under 20 % of the second half
    int met = 0;      // runs meeting alpha
  };
  auto tally = [](double hull_z) {
    Tally t;
    for (uint64_t seed = 1; seed <= 30; ++seed) {
      const HullRun r = RunPiqaLike(hull_z, seed);
      t.cost += r.cost / 30.0;
      t.trapped += r.medium_share < 0.2 ? 1 : 0;
      t.met += r.satisfaction >= 0.78 ? 1 : 0;
    }
    return t;
  };
  const Tally off = tally(0.0), on = tally(3.0);
  // Measured: 6 of 30 runs trapped at 10.6 per request without; none at 8.7 with.
  EXPECT_GE(off.trapped, 4);
  EXPECT_LE(on.trapped, 2);
  EXPECT_LT(on.cost, 0.9 * off.cost);
  // The labels are bought in place of the mix, not at the SLA's expense.
  EXPECT_GE(on.met, off.met);
  EXPECT_GE(on.met, 29);
}

// ---------------------------------------------------------------------------------------------
// 8. alpha_unreachable

TEST(AdaptiveUnreachable, FlagsATargetAboveEveryModelOnlyForThatTenant) {
  RouterConfig config = TwoModelConfig();
  config.tenants = {{"platinum", 0.99}, {"bronze", 0.3}};
  std::unique_ptr<Router> router = MakeRouter(config);
  ASSERT_NE(router, nullptr);
  StreamSpec spec;
  spec.n = 3000;
  spec.p = {0.5, 0.8};  // neither model comes near 0.99
  spec.cost = {1.0, 10.0};
  spec.tenants = 2;
  const std::vector<Step> steps = Drive(router.get(), MakeStream(spec));
  // Before any evidence (fewer than 100 labels) nothing is declared out of reach.
  EXPECT_FALSE(steps[0].d.alpha_unreachable);
  for (size_t i = 1000; i < steps.size(); ++i) {
    const Decision& d = steps[i].d;
    if (d.tenant == 0) {
      // Over 1000 labels put the dear model near 0.8: no draw of the estimates reaches 0.99.
      EXPECT_TRUE(d.alpha_unreachable) << "request " << d.t;
    }
  }
  for (const Step& s : steps) {
    if (s.d.tenant == 1) {
      // Even the cheap model (about 0.5) meets 0.3.
      EXPECT_FALSE(s.d.alpha_unreachable) << "request " << s.d.t;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 9. Determinism

std::vector<Step> DeterminismRun(uint64_t seed) {
  RouterConfig config = ThreeModelConfig();
  config.seed = seed;
  std::unique_ptr<Router> router = MakeRouter(config);
  if (router == nullptr) return {};
  StreamSpec spec = BudgetStream(1000);
  DriveOptions o;
  o.feedback_rate = 0.8;
  return Drive(router.get(), MakeStream(spec), o);
}

TEST(AdaptiveDeterminism, SameSeedSameDecisionsAndAnotherSeedDiffers) {
  const std::vector<Step> a = DeterminismRun(42);
  const std::vector<Step> b = DeterminismRun(42);
  const std::vector<Step> c = DeterminismRun(43);
  ASSERT_EQ(a.size(), 1000u);
  ASSERT_EQ(b.size(), 1000u);
  ASSERT_EQ(c.size(), 1000u);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    // Every random choice comes from the router's seeded Rng: same seed, same decisions.
    ASSERT_EQ(a[i].d.served, b[i].d.served) << i;
    ASSERT_EQ(a[i].d.run, b[i].d.run) << i;
    ASSERT_EQ(a[i].d.explore, b[i].d.explore) << i;
    ASSERT_EQ(a[i].d.q, b[i].d.q) << i;
    differs = differs || a[i].d.served != c[i].d.served || a[i].d.run != c[i].d.run ||
              a[i].d.explore != c[i].d.explore || a[i].d.q != c[i].d.q;
  }
  // Another seed draws other dithers and explorations.
  EXPECT_TRUE(differs);
}

// ---------------------------------------------------------------------------------------------
// 10. AdaptiveTuning validation

TEST(AdaptiveTuningConfig, SetTuningRejectsAnUnknownNameListingTheKnownOnes) {
  AdaptiveTuning tuning;
  const Status st = SetTuning(&tuning, "start_backlogg", 1.0);
  // A typo is not silently ignored.
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(st.message(), "start_backlogg")) << st.message();
  for (const auto& [name, value] : TuningValues(AdaptiveTuning())) {
    // The message offers every name SetTuning accepts.
    EXPECT_TRUE(Contains(st.message(), name)) << name << " missing from: " << st.message();
  }
  // Nothing was changed.
  EXPECT_EQ(TuningValues(tuning), TuningValues(AdaptiveTuning()));
}

TEST(AdaptiveTuningConfig, SetTuningSetsEachKindOfField) {
  AdaptiveTuning tuning;
  // A number, a boolean (0/1) and an integer, each by its name.
  ASSERT_TRUE(SetTuning(&tuning, "margin", 0.02).ok());
  ASSERT_TRUE(SetTuning(&tuning, "exponential_queue", 0.0).ok());
  ASSERT_TRUE(SetTuning(&tuning, "price_draws", 31.0).ok());
  EXPECT_EQ(tuning.margin, 0.02);
  EXPECT_FALSE(tuning.exponential_queue);
  EXPECT_EQ(tuning.price_draws, 31);
  // A non-finite value is rejected, and the field keeps its value.
  EXPECT_EQ(SetTuning(&tuning, "margin", std::nan("")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tuning.margin, 0.02);
}

void ExpectInvalidTuning(const std::function<void(AdaptiveTuning*)>& change,
                         std::string_view field) {
  RouterConfig config = TwoModelConfig();
  ASSERT_TRUE(config.Validate().ok());
  change(&config.adaptive);
  const Status st = config.Validate();
  // The value is out of the field's range.
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << field;
  // The message names the field, so a configuration file can be fixed.
  EXPECT_TRUE(Contains(st.message(), "adaptive." + std::string(field))) << st.message();
  // Only that problem is reported (one per line).
  EXPECT_EQ(std::count(st.message().begin(), st.message().end(), '\n'), 0) << st.message();
  // Router::Create refuses the configuration too.
  EXPECT_FALSE(Router::Create(config).ok()) << field;
}

TEST(AdaptiveTuningConfig, ValidateRejectsANegativeMargin) {
  ExpectInvalidTuning([](AdaptiveTuning* t) { t->margin = -0.01; }, "margin");
}

TEST(AdaptiveTuningConfig, ValidateRejectsAnExploreBudgetAboveOne) {
  ExpectInvalidTuning([](AdaptiveTuning* t) { t->explore_budget = 1.5; }, "explore_budget");
}

TEST(AdaptiveTuningConfig, ValidateRejectsANegativePriceQuantile) {
  ExpectInvalidTuning([](AdaptiveTuning* t) { t->price_quantile = -1.0; }, "price_quantile");
}

TEST(AdaptiveTuningConfig, ValidateRejectsZeroPriceDraws) {
  ExpectInvalidTuning([](AdaptiveTuning* t) { t->price_draws = 0; }, "price_draws");
}

}  // namespace
}  // namespace messplus::router
