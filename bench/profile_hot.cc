// messplus_profile_hot: runs one hot path a fixed number of times, for instruction counts.
//
// The timed work sits in ProfiledLoop (never inlined), so
//   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*ProfiledLoop*'
//       build/bench/messplus_profile_hot --what decide-long --models 3 --policy paper
// counts exactly the loop: instructions per call = Ir / --iterations. Set-up (training the
// router, hashing the inputs) is not counted. Perf counters are not available in the
// Firecracker VMs this project runs on, so callgrind is the repeatable measure; the wall
// time printed is only a sanity check (valgrind slows it ~50x).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/fixtures.h"
#include "router/decision.h"
#include "router/feature_hasher.h"
#include "router/predictor.h"
#include "router/router.h"
#include "simulator/replay.h"

// Counts heap allocations, so the driver can report them per call of the hot path (the loops
// are meant to allocate nothing once warmed up). malloc is interposed (glibc supports
// replacing it in the executable) rather than operator new, because Eigen allocates its
// temporaries with malloc. Global by necessity: nothing else sees every allocation.
namespace {
size_t g_allocations = 0;
}  // namespace

extern "C" {
void* __libc_malloc(size_t size);  // glibc's own allocator, exported since glibc 2.2.5
void* malloc(size_t size) {
  ++g_allocations;
  return __libc_malloc(size);
}
}

namespace messplus::bench {
namespace {

constexpr size_t kReplayRows = 10000;

struct Flags {
  std::string what = "decide";
  int models = 3;
  std::string policy = "adaptive";
  size_t chars = 500;
  size_t iterations = 2000;
};

// Outputs reused across calls, as a stage would keep them.
struct Buffers {
  router::Decision decision;
  router::FeatureHasher::Scratch scratch;
  router::SparseFeatures features;
  std::vector<double> p;
};

// Returns a checksum so the work cannot be optimised away.
__attribute__((noinline)) uint64_t ProfiledLoop(const Flags& f, TrainedRouter* t,
                                                const PromptPool* pool,
                                                router::SatisfactionPredictor* predictor,
                                                const simulator::FeatureTable* replay_features,
                                                Buffers* b) {
  uint64_t sum = 0;
  if (f.what == "decide" || f.what == "decide-long") {
    router::Decision& d = b->decision;
    for (size_t i = 0; i < f.iterations; ++i) {
      router::RouteRequest request;
      if (pool != nullptr) {
        const size_t k = i & (kLongPromptWindows - 1);
        request = {&pool->features[k], 0, pool->task[k]};
      } else {
        const size_t row = t->held_out[i % t->held_out.size()];
        request = {&t->features.rows[row], 0, t->data->tasks[row]};
      }
      if (t->router->Decide(request, &d).ok()) sum += d.served;
    }
  } else if (f.what == "hash") {
    const router::FeatureHasher hasher{router::HashingOptions()};
    const std::string_view tags[1] = {"task=high_school_physics"};
    const std::string_view text = kEnglishPrompt.substr(0, f.chars);
    for (size_t i = 0; i < f.iterations; ++i) {
      hasher.Hash(text, tags, &b->features, &b->scratch);
      sum += b->features.size();
    }
  } else if (f.what == "replay") {
    // One replay of kReplayRows synthetic requests per iteration (features hashed outside).
    const simulator::Dataset& data = SyntheticZoo(f.models, kReplayRows);
    simulator::ReplayOptions options;
    options.router.policy = f.policy;
    options.alpha = MidAlpha(data);
    for (size_t i = 0; i < f.iterations; ++i) {
      Result<simulator::ReplayResult> r = simulator::RunReplay(data, options, replay_features);
      if (r.ok()) sum += r->model_share.size();
    }
  } else if (f.what == "predict") {
    std::vector<double>& p = b->p;
    p.resize(predictor->num_models());
    for (size_t i = 0; i < f.iterations; ++i) {
      predictor->Predict(pool->features[i & (kLongPromptWindows - 1)], p);
      sum += p[0] > 0.5 ? 1 : 0;
    }
  }
  return sum;
}

int Run(const Flags& f) {
  TrainedRouter t;
  PromptPool pool;
  const PromptPool* pool_ptr = nullptr;
  std::unique_ptr<router::SatisfactionPredictor> predictor;
  simulator::FeatureTable replay_features;
  if (f.what == "decide" || f.what == "decide-long" || f.what == "predict") {
    t = Train(SyntheticZoo(f.models, kZooRows), f.policy);
    if (f.what != "decide") {
      pool = LongPrompts(t);
      pool_ptr = &pool;
    }
    if (f.what == "predict") {
      predictor = std::make_unique<router::SatisfactionPredictor>(t.router->policy().predictor());
    }
  } else if (f.what == "replay") {
    replay_features = simulator::HashRows(SyntheticZoo(f.models, kReplayRows),
                                          router::HashingOptions(), /*with_task=*/true);
  } else if (f.what != "hash") {
    std::fprintf(stderr, "messplus_profile_hot: unknown --what %s\n", f.what.c_str());
    return 2;
  }
  // One untimed call first, so buffers reused across calls are sized before counting.
  Buffers buffers;
  Flags warm = f;
  warm.iterations = 1;
  (void)ProfiledLoop(warm, &t, pool_ptr, predictor.get(), &replay_features, &buffers);
  const size_t allocations_before = g_allocations;
  const auto start = std::chrono::steady_clock::now();
  const uint64_t sum = ProfiledLoop(f, &t, pool_ptr, predictor.get(), &replay_features, &buffers);
  const size_t allocations = g_allocations - allocations_before;
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "what=%s models=%d policy=%s chars=%zu iterations=%zu features=%.1f "
      "ns_per_call=%.1f allocs_per_call=%.3f checksum=%llu\n",
      f.what.c_str(), f.models, f.policy.c_str(), f.chars, f.iterations,
      pool_ptr != nullptr ? pool.mean_features : t.mean_features,
      ns / static_cast<double>(f.iterations),
      static_cast<double>(allocations) / static_cast<double>(f.iterations),
      static_cast<unsigned long long>(sum));
  return 0;
}

}  // namespace
}  // namespace messplus::bench

int main(int argc, char** argv) {
  messplus::bench::Flags f;
  CLI::App app{"Runs one router hot path a fixed number of times (for callgrind)"};
  app.add_option(
         "--what", f.what,
         "decide | decide-long | hash | predict | replay (10,000 synthetic requests per iteration)")
      ->capture_default_str();
  app.add_option("--models", f.models, "zoo size (2..11)")->capture_default_str();
  app.add_option("--policy", f.policy, "adaptive | paper")->capture_default_str();
  app.add_option("--chars", f.chars, "prompt length for --what hash (<= 2000)")
      ->capture_default_str();
  app.add_option("--iterations", f.iterations, "calls in the measured loop")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (f.chars > messplus::bench::kEnglishPrompt.size()) {
    std::fprintf(stderr, "--chars must be <= %zu\n", messplus::bench::kEnglishPrompt.size());
    return 2;
  }
  return messplus::bench::Run(f);
}
