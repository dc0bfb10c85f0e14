// SatisfactionPredictor: one online logistic model per zoo model over hashed sparse features.
//
// p_m(x) = sigmoid(b_m + sum_i x_i * W[i, m]). The weights of all models for one feature sit
// side by side (W is row-major, dim x M), so Predict() computes every model's probability in
// one pass over the request's features. Training is AdaGrad on the log loss, one example at a
// time, with an optional weight per example (e.g. an inverse propensity) and L2 shrinkage of
// the weights an update touches.
//
// Serialised form: a msgpack map (see Serialize), so learning state can be checkpointed and
// shipped to route replicas; only the rows that were ever updated are written.
//
// Thread safety: const methods may run concurrently; Update() needs exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "router/sparse_features.h"
#include "router/status.h"

namespace messplus::router {

struct PredictorOptions {
  // AdaGrad step size: a weight moves by about learning_rate / sqrt(sum of squared gradients).
  double learning_rate = 0.2;
  // AdaGrad step size of the per-model bias (the intercept: each model's base rate).
  double bias_learning_rate = 0.2;
  // Starting value of the squared-gradient sums; caps the size of the first steps.
  double initial_accumulator = 0.1;
  // L2 shrinkage applied to the touched weights at each update.
  double l2 = 1e-6;

  Status Validate() const;
};

class SatisfactionPredictor {
 public:
  // REQUIRES: dim > 0, num_models > 0, options validated.
  SatisfactionPredictor(uint32_t dim, size_t num_models, const PredictorOptions& options);

  uint32_t dim() const { return dim_; }
  size_t num_models() const { return bias_.size(); }
  const PredictorOptions& options() const { return options_; }
  // Number of updates each model received.
  uint64_t updates(size_t model) const { return updates_[model]; }

  // Writes b_m + w_m . x into logits[m] for every model. REQUIRES: logits.size() ==
  // num_models(); feature indices < dim() (indices outside are ignored).
  void PredictLogits(const SparseFeatures& x, std::span<double> logits) const;
  // Same, through the sigmoid.
  void Predict(const SparseFeatures& x, std::span<double> probabilities) const;

  // One AdaGrad step of model `model` towards `label` in [0, 1], scaled by `weight` >= 0.
  // `offset` is added to the logit, so the model learns the residual over a base estimate
  // (p = sigmoid(offset + b_m + w_m . x)). InvalidArgument (no change) for a bad model,
  // label, weight or offset.
  Status Update(const SparseFeatures& x, size_t model, double label, double weight = 1.0,
                double offset = 0.0);

  // msgpack map: format, version, dim, models, options, bias, bias_acc, updates, and the
  // touched rows as three bin fields: rows (uint32 LE), w and g (float32 LE, rows x models).
  std::string Serialize() const;
  // Full validation of types, sizes, ranges and finiteness; DataLoss on any mismatch,
  // including trailing bytes. A non-zero expected_dim / expected_models is checked before
  // anything is allocated.
  static Result<SatisfactionPredictor> Deserialize(std::string_view bytes,
                                                   uint32_t expected_dim = 0,
                                                   size_t expected_models = 0);

  bool operator==(const SatisfactionPredictor& other) const;

  static double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

 private:
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  uint32_t dim_;
  PredictorOptions options_;
  Matrix weights_;      // dim x M
  Matrix accumulator_;  // dim x M, AdaGrad sums of squared gradients
  std::vector<double> bias_;
  std::vector<double> bias_accumulator_;
  std::vector<uint64_t> updates_;
  std::vector<uint8_t> touched_;  // per row, 1 once any model updated it
};

}  // namespace messplus::router
