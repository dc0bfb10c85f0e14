// The synthetic zoo: a seeded generator of prompts and model outcomes, so the demo and the
// tests run with nothing beside the repository.
//
// It is synthetic, and says so: prompts are built from words that carry their topic and their
// difficulty, and models have rising ability and cost. The probability that model m answers a
// prompt of topic k and difficulty d to the user's satisfaction is
//   sigmoid(sharpness * (ability_m + skill_{m,k} - d)),
// so the text of a prompt carries real signal about which models will satisfy it, as real
// traffic does in part. Costs rise geometrically with the model's index, with noise per call
// and a share proportional to the prompt's length.
//
// Thread safety: GenerateSyntheticZoo is a pure function of its options.
#pragma once

#include <cstdint>

#include "simulator/dataset.h"

namespace messplus::simulator {

struct SyntheticOptions {
  uint64_t seed = 7;
  size_t rows = 6000;
  // Number of models, 2..11. Model i is named "synth-<size>" with rising sizes.
  int num_models = 3;
  // Number of topics (tasks), 1..12.
  int num_topics = 6;
  // Cost of the cheapest model per call and the factor between consecutive models.
  double base_cost = 50.0;
  double cost_ratio = 5.0;
  // The unit of the cost column written: "energy_j" (default), "cost_usd" or "latency_s".
  std::string cost_kind = "energy_j";
  // How sharply ability separates success from failure (larger: more deterministic outcomes).
  double sharpness = 1.6;
};

// Generates the dataset: ids "synth-<row>", task = topic name, 0/1 scores, positive costs,
// models ordered cheapest first. REQUIRES: options within the ranges above (checked; an
// out-of-range option returns InvalidArgument).
Result<Dataset> GenerateSyntheticZoo(const SyntheticOptions& options);

}  // namespace messplus::simulator
