// Inputs shared by the core benchmarks (core_bench.cc) and the profiling driver
// (profile_hot.cc): the synthetic and Llama zoos, an English prompt to cut to length, and a
// router trained the way it would be in service.
//
// Thread safety: none; the cached accessors (SyntheticZoo, LlamaArcEasyBoolq) keep
// function-local caches and must be called from one thread (benchmarks run on one thread).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "router/router.h"
#include "router/sparse_features.h"
#include "simulator/dataset.h"
#include "simulator/replay.h"

namespace messplus::bench {

// Requests replayed (decide, costs, feedback for every model run) before measuring.
inline constexpr size_t kTrainRequests = 4000;
// Held-out requests the timed loops cycle through (never seen in training).
inline constexpr size_t kHeldOut = 1024;
inline constexpr size_t kZooRows = kTrainRequests + kHeldOut;

// About 2,300 characters of English in the style of the captured benchmarks (a few-shot
// multiple-choice physics prompt). Cut to the wanted length for the hashing cases.
extern const std::string_view kEnglishPrompt;

// The synthetic zoo of `num_models` (2..11) models and `rows` rows, seed 7. Costs span about
// 40x from the cheapest to the dearest model (like the Llama 1B..70B zoo) whatever the
// number of models. Built once per (num_models, rows); the reference stays valid.
const simulator::Dataset& SyntheticZoo(int num_models, size_t rows);

// The Llama arc_easy + boolq capture (5,270 rows, 3 models) from $MESSPLUS_DATA_DIR or
// <source>/../shared/data, or nullptr when the files are not there.
const simulator::Dataset* LlamaArcEasyBoolq();

// Midway between the always-cheapest and the always-best mean satisfaction: an SLA the
// router has to work for.
double MidAlpha(const simulator::Dataset& data);

// A router trained on kTrainRequests requests of `data` (shuffled with a fixed seed) with
// costs, ground truth and full feedback, plus the held-out rows it has not seen.
struct TrainedRouter {
  std::unique_ptr<router::Router> router;
  const simulator::Dataset* data = nullptr;  // not owned; outlives this
  simulator::FeatureTable features;          // every row, hashed with its task tag
  std::vector<size_t> held_out;              // rows the timed loops use
  double mean_features = 0.0;                // mean feature count over held_out
};
// REQUIRES: data has more than kHeldOut rows. Aborts on a router error (a bug).
TrainedRouter Train(const simulator::Dataset& data, const std::string& policy);

// 64 windows of 500 characters of kEnglishPrompt (offsets 0, 23, 46, ...), hashed with the
// router's hashing options, each tagged with the task of one of the held-out rows.
struct PromptPool {
  std::vector<router::SparseFeatures> features;
  std::vector<std::string> task;
  double mean_features = 0.0;
};
inline constexpr size_t kLongPromptChars = 500;
inline constexpr size_t kLongPromptWindows = 64;  // a power of two (the loops mask with it)
PromptPool LongPrompts(const TrainedRouter& t);

}  // namespace messplus::bench
