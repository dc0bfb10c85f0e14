// Google Benchmark cases for the router core's hot paths and the replay simulator.
//
// What is measured, and on what inputs (bench/README.md has the figures and how to read them):
//   * Router::Decide for a zoo of 3 and 11 models, policies "adaptive" and "paper", on
//     pre-hashed features of held-out prompts, after the router was trained on kTrainRequests
//     replayed requests with costs and full feedback (so estimates, prices, text gates and the
//     predictor's weights are those of a router in service, not of a fresh one);
//   * FeatureHasher::Hash of a 100 / 500 / 2000-character English prompt plus one task tag;
//   * SatisfactionPredictor::Update and Predict for 3 and 11 models;
//   * VirtualQueue::UpdateTracked; Router::RecordFeedback and RecordCosts;
//   * LatencyHistogram::Record and Percentile (tools/loadgen);
//   * RunReplay of 10,000 synthetic requests (3 models), and of the Llama arc_easy + boolq
//     capture when ../shared/data is present, as requests per second.
//
// Every timed loop reuses its outputs (Decision, SparseFeatures + Scratch, probability
// buffers), so it allocates nothing where the API allows it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/fixtures.h"
#include "router/decision.h"
#include "router/feature_hasher.h"
#include "router/predictor.h"
#include "router/rng.h"
#include "router/router.h"
#include "router/sparse_features.h"
#include "router/virtual_queue.h"
#include "router/zoo.h"
#include "simulator/dataset.h"
#include "simulator/replay.h"
#include "simulator/synthetic.h"
#include "tools/loadgen/histogram.h"

namespace messplus::bench {
namespace {

using router::Decision;
using router::ModelCost;
using router::ModelLabel;
using router::Router;
using router::SparseFeatures;

// Trained routers are built once per (zoo, policy) and shared by the cases: training takes
// far longer than a measurement.
TrainedRouter& Trained(const std::string& zoo, int num_models, const std::string& policy) {
  static std::map<std::tuple<std::string, int, std::string>, TrainedRouter> cache;
  const auto key = std::make_tuple(zoo, num_models, policy);
  auto it = cache.find(key);
  if (it == cache.end()) {
    const simulator::Dataset& data =
        zoo == "llama" ? *LlamaArcEasyBoolq() : SyntheticZoo(num_models, kZooRows);
    it = cache.emplace(key, Train(data, policy)).first;
  }
  return it->second;
}

std::string PolicyName(int64_t arg) { return arg == 0 ? "adaptive" : "paper"; }

// ---------------------------------------------------------------------------------------------
// Router::Decide

void DecideLoop(benchmark::State& state, TrainedRouter& t) {
  Decision decision;
  const size_t n = t.held_out.size();
  size_t i = 0;
  size_t explored = 0;
  for (auto _ : state) {
    const size_t row = t.held_out[i];
    const router::RouteRequest request{&t.features.rows[row], 0, t.data->tasks[row]};
    const Status st = t.router->Decide(request, &decision);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(decision.served);
    explored += decision.explore ? 1 : 0;
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["models"] = static_cast<double>(t.router->num_models());
  state.counters["features"] = t.mean_features;
  state.counters["explore_share"] =
      static_cast<double>(explored) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
}

// Args: {num_models, policy (0 adaptive, 1 paper)}.
void BM_Decide(benchmark::State& state) {
  const int models = static_cast<int>(state.range(0));
  const std::string policy = PolicyName(state.range(1));
  state.SetLabel(policy + "/synthetic");
  DecideLoop(state, Trained("synthetic", models, policy));
}
BENCHMARK(BM_Decide)
    ->ArgNames({"M", "paper"})
    ->Args({3, 0})
    ->Args({11, 0})
    ->Args({3, 1})
    ->Args({11, 1});

// The same router, deciding on 500-character English prompts (64 windows of kEnglishPrompt,
// each tagged with one of the zoo's tasks): the cost of Decide grows with the number of
// features (the predictor's dot product and the input check), and the synthetic and Llama
// prompts are short (about 100 characters); MMLU prompts average 370. Args as BM_Decide.
void BM_DecideLongPrompt(benchmark::State& state) {
  const int models = static_cast<int>(state.range(0));
  const std::string policy = PolicyName(state.range(1));
  state.SetLabel(policy + "/synthetic, 500-char prompts");
  TrainedRouter& t = Trained("synthetic", models, policy);
  const PromptPool pool = LongPrompts(t);
  Decision decision;
  size_t i = 0;
  for (auto _ : state) {
    const router::RouteRequest request{&pool.features[i], 0, pool.task[i]};
    const Status st = t.router->Decide(request, &decision);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(decision.served);
    i = (i + 1) & (kLongPromptWindows - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["models"] = static_cast<double>(models);
  state.counters["features"] = pool.mean_features;
}
BENCHMARK(BM_DecideLongPrompt)
    ->ArgNames({"M", "paper"})
    ->Args({3, 0})
    ->Args({11, 0})
    ->Args({3, 1})
    ->Args({11, 1});

// The same on the Llama capture (real prompts, 3 models). Arg: policy.
void BM_DecideLlama(benchmark::State& state) {
  const std::string policy = PolicyName(state.range(0));
  if (LlamaArcEasyBoolq() == nullptr) {
    state.SkipWithError("no ../shared/data (set MESSPLUS_DATA_DIR)");
    return;
  }
  state.SetLabel(policy + "/llama arc_easy+boolq");
  DecideLoop(state, Trained("llama", 3, policy));
}
BENCHMARK(BM_DecideLlama)->ArgName("paper")->Arg(0)->Arg(1);

// ---------------------------------------------------------------------------------------------
// Feature hashing. Arg: prompt length in characters.

void BM_Hash(benchmark::State& state) {
  const std::string_view text = kEnglishPrompt.substr(0, static_cast<size_t>(state.range(0)));
  const router::FeatureHasher hasher{router::HashingOptions()};
  const std::string_view tags[1] = {"task=high_school_physics"};
  router::FeatureHasher::Scratch scratch;
  SparseFeatures out;
  hasher.Hash(text, tags, &out, &scratch);  // warm the scratch and output buffers
  for (auto _ : state) {
    hasher.Hash(text, tags, &out, &scratch);
    benchmark::DoNotOptimize(out.index.data());
    benchmark::DoNotOptimize(out.value.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.counters["features"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Hash)->ArgName("chars")->Arg(100)->Arg(500)->Arg(2000);

// ---------------------------------------------------------------------------------------------
// SatisfactionPredictor. Arg: number of models. The predictor has the default 2^18 rows and
// is warmed up by one pass of updates over the prompts, so the rows they touch are non-zero.

struct PredictorFixture {
  std::unique_ptr<router::SatisfactionPredictor> predictor;
  std::vector<SparseFeatures> x;
  std::vector<double> label;  // model 0's score, reused for every model
};

PredictorFixture& Predictor(int num_models) {
  static std::map<int, PredictorFixture> cache;
  auto it = cache.find(num_models);
  if (it == cache.end()) {
    PredictorFixture f;
    const simulator::Dataset& data = SyntheticZoo(num_models, kZooRows);
    const router::HashingOptions hashing;
    f.predictor = std::make_unique<router::SatisfactionPredictor>(
        hashing.dim(), static_cast<size_t>(num_models), router::PredictorOptions());
    const simulator::FeatureTable table = simulator::HashRows(data, hashing, true);
    f.x.assign(table.rows.begin(), table.rows.begin() + static_cast<std::ptrdiff_t>(kHeldOut));
    for (size_t r = 0; r < kHeldOut; ++r) f.label.push_back(data.Score(r, 0));
    for (size_t r = 0; r < kHeldOut; ++r) {
      for (size_t m = 0; m < static_cast<size_t>(num_models); ++m) {
        (void)f.predictor->Update(f.x[r], m, data.Score(r, m));
      }
    }
    it = cache.emplace(num_models, std::move(f)).first;
  }
  return it->second;
}

void BM_PredictorPredict(benchmark::State& state) {
  PredictorFixture& f = Predictor(static_cast<int>(state.range(0)));
  std::vector<double> p(f.predictor->num_models());
  size_t i = 0;
  for (auto _ : state) {
    f.predictor->Predict(f.x[i], p);
    benchmark::DoNotOptimize(p.data());
    if (++i == f.x.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PredictorPredict)->ArgName("M")->Arg(3)->Arg(11);

// One Update is one model's AdaGrad step on one example (what one label costs).
void BM_PredictorUpdate(benchmark::State& state) {
  PredictorFixture& f = Predictor(static_cast<int>(state.range(0)));
  const size_t models = f.predictor->num_models();
  size_t i = 0, m = 0;
  for (auto _ : state) {
    const Status st = f.predictor->Update(f.x[i], m, f.label[i], 1.0, 0.3);
    benchmark::DoNotOptimize(st);
    if (++m == models) {
      m = 0;
      if (++i == f.x.size()) i = 0;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PredictorUpdate)->ArgName("M")->Arg(3)->Arg(11);

// ---------------------------------------------------------------------------------------------
// VirtualQueue

void BM_VirtualQueueUpdate(benchmark::State& state) {
  std::vector<double> s(4096);
  Rng rng(5);
  for (double& v : s) v = rng.Bernoulli(0.7) ? 1.0 : 0.0;
  router::VirtualQueue queue(0.7, 0.0);
  size_t i = 0;
  for (auto _ : state) {
    const Status st = queue.UpdateTracked(s[i]);
    benchmark::DoNotOptimize(st);
    i = (i + 1) & (s.size() - 1);
  }
  benchmark::DoNotOptimize(queue.q_tracked());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VirtualQueueUpdate);

// ---------------------------------------------------------------------------------------------
// LatencyHistogram (tools/loadgen), as the load generator uses it: one Record per reply.
// Arg: significant digits. Values are exponential around 100 us (pre-drawn).

void BM_HistogramRecord(benchmark::State& state) {
  loadgen::LatencyHistogram h(static_cast<int>(state.range(0)));
  std::vector<int64_t> v(4096);
  Rng rng(9);
  for (int64_t& x : v) x = static_cast<int64_t>(-1e5 * std::log(1.0 - rng.Uniform()));
  size_t i = 0;
  for (auto _ : state) {
    h.Record(v[i]);
    i = (i + 1) & (v.size() - 1);
  }
  benchmark::DoNotOptimize(h.Count());
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(h.MemoryBytes());
}
BENCHMARK(BM_HistogramRecord)->ArgName("digits")->Arg(2)->Arg(3);

// Reading one percentile walks the buckets: a reporting cost, not a per-request one.
void BM_HistogramPercentile(benchmark::State& state) {
  loadgen::LatencyHistogram h(static_cast<int>(state.range(0)));
  Rng rng(9);
  for (int k = 0; k < 100000; ++k)
    h.Record(static_cast<int64_t>(-1e5 * std::log(1.0 - rng.Uniform())));
  for (auto _ : state) benchmark::DoNotOptimize(h.Percentile(99.9));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramPercentile)->ArgName("digits")->Arg(2)->Arg(3);

// ---------------------------------------------------------------------------------------------
// Router::RecordFeedback and RecordCosts, on decisions made for the held-out requests. Each
// feedback carries a label for every model the decision ran (1, or 2 when it explored), as
// the simulator sends them. Args: {num_models, policy}.

struct FeedbackPool {
  std::vector<Decision> decisions;
  std::vector<size_t> rows;
  std::vector<std::vector<ModelLabel>> labels;
  std::vector<std::vector<ModelCost>> costs;
  double labels_per_call = 0.0;
};

FeedbackPool MakeFeedbackPool(TrainedRouter& t) {
  FeedbackPool pool;
  size_t total = 0;
  for (size_t row : t.held_out) {
    Decision d;
    const router::RouteRequest request{&t.features.rows[row], 0, t.data->tasks[row]};
    if (!t.router->Decide(request, &d).ok()) std::abort();
    std::vector<ModelLabel> labels;
    std::vector<ModelCost> costs;
    for (uint32_t m : d.run) {
      labels.push_back({m, t.data->Score(row, m)});
      costs.push_back({m, t.data->Cost(row, m)});
    }
    total += labels.size();
    pool.decisions.push_back(std::move(d));
    pool.rows.push_back(row);
    pool.labels.push_back(std::move(labels));
    pool.costs.push_back(std::move(costs));
  }
  pool.labels_per_call = static_cast<double>(total) / static_cast<double>(pool.rows.size());
  return pool;
}

void BM_RecordFeedback(benchmark::State& state) {
  const int models = static_cast<int>(state.range(0));
  const std::string policy = PolicyName(state.range(1));
  state.SetLabel(policy + "/synthetic");
  // A router of its own: feedback changes the learning state the Decide cases measure.
  static std::map<std::pair<int, std::string>, std::pair<TrainedRouter, FeedbackPool>> cache;
  auto it = cache.find({models, policy});
  if (it == cache.end()) {
    TrainedRouter t = Train(SyntheticZoo(models, kZooRows), policy);
    FeedbackPool pool = MakeFeedbackPool(t);
    it =
        cache.emplace(std::make_pair(models, policy), std::make_pair(std::move(t), std::move(pool)))
            .first;
  }
  TrainedRouter& t = it->second.first;
  const FeedbackPool& pool = it->second.second;
  size_t i = 0;
  for (auto _ : state) {
    const Status st =
        t.router->RecordFeedback(pool.decisions[i], t.features.rows[pool.rows[i]], pool.labels[i]);
    benchmark::DoNotOptimize(st);
    if (++i == pool.rows.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["labels_per_call"] = pool.labels_per_call;
}
BENCHMARK(BM_RecordFeedback)
    ->ArgNames({"M", "paper"})
    ->Args({3, 0})
    ->Args({11, 0})
    ->Args({3, 1})
    ->Args({11, 1});

void BM_RecordCosts(benchmark::State& state) {
  const int models = static_cast<int>(state.range(0));
  static std::map<int, std::pair<TrainedRouter, FeedbackPool>> cache;
  auto it = cache.find(models);
  if (it == cache.end()) {
    TrainedRouter t = Train(SyntheticZoo(models, kZooRows), "adaptive");
    FeedbackPool pool = MakeFeedbackPool(t);
    it = cache.emplace(models, std::make_pair(std::move(t), std::move(pool))).first;
  }
  TrainedRouter& t = it->second.first;
  const FeedbackPool& pool = it->second.second;
  state.SetLabel("adaptive/synthetic");
  size_t i = 0;
  for (auto _ : state) {
    const Status st = t.router->RecordCosts(pool.decisions[i], pool.costs[i]);
    benchmark::DoNotOptimize(st);
    if (++i == pool.rows.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordCosts)->ArgName("M")->Arg(3)->Arg(11);

// ---------------------------------------------------------------------------------------------
// Whole-stream simulator throughput: one RunReplay per iteration, features hashed beforehand
// (as `messplus sim` does once per grid). items/s = requests replayed per second.

void ReplayLoop(benchmark::State& state, const simulator::Dataset& data,
                const simulator::FeatureTable* features) {
  simulator::ReplayOptions options;
  options.router.policy = PolicyName(state.range(0));
  options.alpha = MidAlpha(data);
  size_t served_by_last = 0;
  for (auto _ : state) {
    Result<simulator::ReplayResult> r = simulator::RunReplay(data, options, features);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(r->avg_cost);
    served_by_last = static_cast<size_t>(r->model_share.back() * static_cast<double>(r->requests));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(data.rows()));
  state.counters["requests"] = static_cast<double>(data.rows());
  state.counters["served_by_dearest"] = static_cast<double>(served_by_last);
}

constexpr size_t kReplayRows = 10000;

void BM_ReplaySynthetic(benchmark::State& state) {
  const simulator::Dataset& data = SyntheticZoo(3, kReplayRows);
  static const simulator::FeatureTable features =
      simulator::HashRows(data, router::HashingOptions(), true);
  state.SetLabel(PolicyName(state.range(0)) + "/synthetic 10k x 3");
  ReplayLoop(state, data, &features);
}
BENCHMARK(BM_ReplaySynthetic)->ArgName("paper")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// The same with hashing inside the replay (features = nullptr): the cost of a one-off run.
void BM_ReplaySyntheticWithHashing(benchmark::State& state) {
  const simulator::Dataset& data = SyntheticZoo(3, kReplayRows);
  state.SetLabel(PolicyName(state.range(0)) + "/synthetic 10k x 3, hashing included");
  ReplayLoop(state, data, nullptr);
}
BENCHMARK(BM_ReplaySyntheticWithHashing)->ArgName("paper")->Arg(0)->Unit(benchmark::kMillisecond);

void BM_ReplayLlama(benchmark::State& state) {
  const simulator::Dataset* data = LlamaArcEasyBoolq();
  if (data == nullptr) {
    state.SkipWithError("no ../shared/data (set MESSPLUS_DATA_DIR)");
    return;
  }
  static const simulator::FeatureTable features =
      simulator::HashRows(*data, router::HashingOptions(), true);
  state.SetLabel(PolicyName(state.range(0)) + "/llama arc_easy+boolq 5270 x 3");
  ReplayLoop(state, *data, &features);
}
BENCHMARK(BM_ReplayLlama)->ArgName("paper")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace messplus::bench

BENCHMARK_MAIN();
