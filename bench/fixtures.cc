#include "bench/fixtures.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <utility>

#include "router/feature_hasher.h"
#include "router/rng.h"
#include "simulator/synthetic.h"

namespace messplus::bench {

const std::string_view kEnglishPrompt =
    "The following are multiple choice questions (with answers) about high school physics. "
    "Question: A student drops a ball from the roof of a building that is 45 meters tall. "
    "Ignoring air resistance, how long does it take the ball to reach the ground, and what is "
    "its speed just before it lands? A. 3.0 s and 30 m/s B. 4.5 s and 45 m/s C. 3.0 s and 15 "
    "m/s D. 9.0 s and 90 m/s Answer: A. Question: Which of the following best explains why a "
    "metal spoon feels colder to the touch than a wooden spoon at the same room temperature? "
    "A. Metal has a lower specific heat than wood. B. Metal conducts heat away from the hand "
    "faster than wood does. C. Wood absorbs more light than metal. D. Metal is always at a "
    "lower temperature than wood. Answer: B. Question: A car accelerates uniformly from rest "
    "to 20 m/s in 8 seconds. What distance does it cover in that time, and what net force acts "
    "on it if its mass is 1200 kg? A. 80 m and 3000 N B. 160 m and 3000 N C. 80 m and 1500 N "
    "D. 160 m and 2400 N Answer: A. Question: When white light passes through a glass prism it "
    "separates into a spectrum of colours. Which property of light is mainly responsible for "
    "this effect, and which colour is bent the most? A. Diffraction; red B. Dispersion; violet "
    "C. Polarisation; green D. Interference; yellow Answer: B. Question: An electric kettle "
    "rated at 2 kW is used for 3 minutes each morning. How much energy does it transfer in one "
    "week, expressed in kilowatt-hours, and roughly how much would that cost at 30 cents per "
    "kilowatt-hour? A. 0.7 kWh and 21 cents B. 6 kWh and 1.80 dollars C. 0.1 kWh and 3 cents "
    "D. 42 kWh and 12.60 dollars Answer: A. Question: A satellite moves in a circular orbit "
    "around the Earth at constant speed. Which statement about its motion is correct? A. No "
    "force acts on it. B. Its velocity is constant. C. Its acceleration points toward the "
    "centre of the Earth. D. Its kinetic energy increases steadily. Answer: C. Question: Two "
    "resistors of 6 ohms and 3 ohms are connected in parallel across a 12 volt battery with "
    "negligible internal resistance. What is the current drawn from the battery? A. 1.3 A "
    "B. 2 A C. 4 A D. 6 A Answer: D. Question: A sound wave travels from air into water. Which "
    "of its properties stays the same? A. Speed B. Wavelength C. Frequency D. Amplitude "
    "Answer:";

namespace {

std::filesystem::path DataDir() {
  if (const char* env = std::getenv("MESSPLUS_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return std::filesystem::path(MESSPLUS_SOURCE_DIR) / ".." / "shared" / "data";
}

}  // namespace

const simulator::Dataset& SyntheticZoo(int num_models, size_t rows) {
  static std::map<std::pair<int, size_t>, simulator::Dataset> cache;
  auto it = cache.find({num_models, rows});
  if (it == cache.end()) {
    simulator::SyntheticOptions o;
    o.num_models = num_models;
    o.rows = rows;
    o.cost_ratio = std::pow(40.0, 1.0 / (num_models - 1));
    Result<simulator::Dataset> data = simulator::GenerateSyntheticZoo(o);
    if (!data.ok()) std::abort();  // num_models outside 2..11: a bug of the caller
    it = cache.emplace(std::make_pair(num_models, rows), std::move(*data)).first;
  }
  return it->second;
}

const simulator::Dataset* LlamaArcEasyBoolq() {
  static const std::unique_ptr<simulator::Dataset> data = []() {
    const std::filesystem::path dir = DataDir() / "messplus_llama3";
    Result<simulator::Dataset> d =
        simulator::LoadDatasets({(dir / "messplus_llama3_arc_easy.csv").string(),
                                 (dir / "messplus_llama3_boolq.csv").string()},
                                simulator::LoadOptions());
    return d.ok() ? std::make_unique<simulator::Dataset>(std::move(*d)) : nullptr;
  }();
  return data.get();
}

double MidAlpha(const simulator::Dataset& data) {
  double best = 0.0;
  for (size_t m = 0; m < data.num_models(); ++m) best = std::max(best, data.MeanScore(m));
  return 0.5 * (data.MeanScore(0) + best);
}

TrainedRouter Train(const simulator::Dataset& data, const std::string& policy) {
  TrainedRouter t;
  t.data = &data;
  router::RouterConfig config;
  config.policy = policy;
  for (const std::string& name : data.models) config.models.push_back({name});
  config.tenants = {{"default", MidAlpha(data)}};
  Result<std::unique_ptr<router::Router>> created = router::Router::Create(config);
  if (!created.ok()) std::abort();  // a default configuration with a valid zoo
  t.router = std::move(*created);
  t.features = simulator::HashRows(data, config.hashing, /*with_task=*/true);

  std::vector<size_t> order(data.rows());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Rng(1234).Shuffle(order.begin(), order.end());
  const size_t train = std::min(kTrainRequests, order.size() - kHeldOut);
  router::Decision d;
  std::vector<router::ModelCost> costs;
  std::vector<router::ModelLabel> labels;
  for (size_t i = 0; i < train; ++i) {
    const size_t row = order[i];
    const router::RouteRequest request{&t.features.rows[row], 0, data.tasks[row]};
    if (!t.router->Decide(request, &d).ok()) std::abort();
    costs.clear();
    labels.clear();
    for (uint32_t m : d.run) {
      costs.push_back({m, data.Cost(row, m)});
      labels.push_back({m, data.Score(row, m)});
    }
    if (!t.router->RecordCosts(d, costs).ok()) std::abort();
    if (!t.router->RecordGroundTruth(d, data.Score(row, d.served)).ok()) std::abort();
    if (!t.router->RecordFeedback(d, t.features.rows[row], labels).ok()) std::abort();
  }
  t.held_out.assign(order.begin() + static_cast<std::ptrdiff_t>(train), order.end());
  double sum = 0.0;
  for (size_t row : t.held_out) sum += static_cast<double>(t.features.rows[row].size());
  t.mean_features = sum / static_cast<double>(t.held_out.size());
  return t;
}

PromptPool LongPrompts(const TrainedRouter& t) {
  constexpr size_t kStride = 23;
  PromptPool pool;
  const router::FeatureHasher hasher(t.router->config().hashing);
  double features = 0.0;
  for (size_t w = 0; w < kLongPromptWindows; ++w) {
    pool.task.push_back(t.data->tasks[t.held_out[w]]);
    const std::string tag = "task=" + pool.task.back();
    const std::string_view tags[1] = {tag};
    pool.features.push_back(
        hasher.Hash(kEnglishPrompt.substr(w * kStride, kLongPromptChars), tags));
    features += static_cast<double>(pool.features.back().size());
  }
  pool.mean_features = features / static_cast<double>(kLongPromptWindows);
  return pool;
}

}  // namespace messplus::bench
