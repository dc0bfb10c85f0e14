#include "router/predictor.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <msgpack.hpp>

namespace messplus::router {
namespace {

constexpr std::string_view kFormat = "messplus.predictor";
constexpr int kVersion = 1;

template <typename T>
void AppendLittleEndian(std::string* out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(bytes, bytes + sizeof(T));
  out->append(bytes, sizeof(T));
}

template <typename T>
T ReadLittleEndian(const char* p) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(bytes, bytes + sizeof(T));
  T v;
  std::memcpy(&v, bytes, sizeof(T));
  return v;
}

// logits[j] = bias[j] + sum_k value_k * w[index_k][j] for the m models, w row-major (dim x m),
// accumulated in float in feature order. kModels > 0 fixes m at compile time (the row update
// then stays in registers); 0 takes any m, on the stack up to kStackModels models.
template <size_t kModels>
void AccumulateLogits(const float* w, uint32_t dim, size_t m, const std::vector<double>& bias,
                      const SparseFeatures& x, std::span<double> logits) {
  constexpr size_t kStackModels = 64;
  if constexpr (kModels > 0) m = kModels;
  float stack[kModels == 0 ? kStackModels : kModels] = {};
  std::vector<float> heap;
  float* acc = stack;
  if (kModels == 0 && m > kStackModels) {
    heap.assign(m, 0.0f);
    acc = heap.data();
  }
  const size_t n = x.size();
  for (size_t k = 0; k < n; ++k) {
    const uint32_t i = x.index[k];
    if (i >= dim) continue;
    const float v = x.value[k];
    const float* row = w + static_cast<size_t>(i) * m;
    for (size_t j = 0; j < m; ++j) acc[j] += v * row[j];
  }
  for (size_t j = 0; j < m; ++j) logits[j] = bias[j] + acc[j];
}

Status Corrupt(const std::string& what) { return Status::DataLoss("predictor state: " + what); }

}  // namespace

Status PredictorOptions::Validate() const {
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) {
    return Status::InvalidArgument("predictor.learning_rate must be > 0");
  }
  if (!(bias_learning_rate > 0.0) || !std::isfinite(bias_learning_rate)) {
    return Status::InvalidArgument("predictor.bias_learning_rate must be > 0");
  }
  if (!(initial_accumulator > 0.0) || !std::isfinite(initial_accumulator)) {
    return Status::InvalidArgument("predictor.initial_accumulator must be > 0");
  }
  if (!(l2 >= 0.0) || !std::isfinite(l2)) {
    return Status::InvalidArgument("predictor.l2 must be >= 0");
  }
  return Status::Ok();
}

SatisfactionPredictor::SatisfactionPredictor(uint32_t dim, size_t num_models,
                                             const PredictorOptions& options)
    : dim_(dim),
      options_(options),
      weights_(Matrix::Zero(dim, static_cast<Eigen::Index>(num_models))),
      accumulator_(Matrix::Constant(dim, static_cast<Eigen::Index>(num_models),
                                    static_cast<float>(options.initial_accumulator))),
      bias_(num_models, 0.0),
      bias_accumulator_(num_models, options.initial_accumulator),
      updates_(num_models, 0),
      touched_(dim, 0) {}

void SatisfactionPredictor::PredictLogits(const SparseFeatures& x, std::span<double> logits) const {
  const size_t m = num_models();
  // Accumulate in float over the rows (the weights are float), then add the bias in double.
  // The zoo's size is known at compile time for the common sizes, so the row update stays in
  // registers; larger zoos take the generic loop. Both do exactly what Eigen's
  // `acc += value * row` did (one float product, one float sum per element, in feature
  // order), so the logits are bit-identical, without a heap temporary per call.
  using Accumulate = void (*)(const float*, uint32_t, size_t, const std::vector<double>&,
                              const SparseFeatures&, std::span<double>);
  static constexpr Accumulate kBySize[] = {
      AccumulateLogits<0>, AccumulateLogits<1>, AccumulateLogits<2>,  AccumulateLogits<3>,
      AccumulateLogits<4>, AccumulateLogits<5>, AccumulateLogits<6>,  AccumulateLogits<7>,
      AccumulateLogits<8>, AccumulateLogits<9>, AccumulateLogits<10>, AccumulateLogits<11>,
      AccumulateLogits<12>};
  const Accumulate accumulate = m < std::size(kBySize) ? kBySize[m] : AccumulateLogits<0>;
  accumulate(weights_.data(), dim_, m, bias_, x, logits);
}

void SatisfactionPredictor::Predict(const SparseFeatures& x, std::span<double> p) const {
  PredictLogits(x, p);
  for (double& v : p) v = Sigmoid(v);
}

Status SatisfactionPredictor::Update(const SparseFeatures& x, size_t model, double label,
                                     double weight, double offset) {
  if (model >= num_models()) return Status::NotFound("predictor update for unknown model");
  if (!(label >= 0.0 && label <= 1.0)) {
    return Status::InvalidArgument("predictor label must be in [0, 1]");
  }
  if (!(weight >= 0.0) || !std::isfinite(weight)) {
    return Status::InvalidArgument("predictor example weight must be finite and >= 0");
  }
  if (!std::isfinite(offset)) return Status::InvalidArgument("predictor offset must be finite");
  if (weight == 0.0) return Status::Ok();

  const Eigen::Index col = static_cast<Eigen::Index>(model);
  double z = offset + bias_[model];
  for (size_t k = 0; k < x.size(); ++k) {
    if (x.index[k] < dim_) z += double(x.value[k]) * weights_(x.index[k], col);
  }
  const double g = weight * (Sigmoid(z) - label);  // d(log loss)/dz

  const double lr = options_.learning_rate;
  bias_accumulator_[model] += g * g;
  bias_[model] -= options_.bias_learning_rate * g / std::sqrt(bias_accumulator_[model]);

  const float l2 = static_cast<float>(options_.l2);
  for (size_t k = 0; k < x.size(); ++k) {
    const uint32_t i = x.index[k];
    if (i >= dim_) continue;
    float& w = weights_(i, col);
    float& acc = accumulator_(i, col);
    const float gi = static_cast<float>(g) * x.value[k] + l2 * w;
    const float next = acc + gi * gi;
    if (!std::isfinite(next)) continue;  // cannot happen with bounded features; never poison
    acc = next;
    w -= static_cast<float>(lr) * gi / std::sqrt(acc);
    touched_[i] = 1;
  }
  ++updates_[model];
  return Status::Ok();
}

std::string SatisfactionPredictor::Serialize() const {
  const size_t m = num_models();
  std::string rows, w, g;
  for (uint32_t i = 0; i < dim_; ++i) {
    if (!touched_[i]) continue;
    AppendLittleEndian<uint32_t>(&rows, i);
    for (size_t j = 0; j < m; ++j) {
      AppendLittleEndian<float>(&w, weights_(i, static_cast<Eigen::Index>(j)));
      AppendLittleEndian<float>(&g, accumulator_(i, static_cast<Eigen::Index>(j)));
    }
  }

  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(13);
  pk.pack("format");
  pk.pack(kFormat);
  pk.pack("version");
  pk.pack(kVersion);
  pk.pack("dim");
  pk.pack(dim_);
  pk.pack("models");
  pk.pack(static_cast<uint32_t>(m));
  pk.pack("learning_rate");
  pk.pack(options_.learning_rate);
  pk.pack("bias_learning_rate");
  pk.pack(options_.bias_learning_rate);
  pk.pack("initial_accumulator");
  pk.pack(options_.initial_accumulator);
  pk.pack("l2");
  pk.pack(options_.l2);
  pk.pack("bias");
  pk.pack(bias_);
  pk.pack("bias_acc");
  pk.pack(bias_accumulator_);
  pk.pack("updates");
  pk.pack(updates_);
  pk.pack("rows");
  pk.pack_bin(static_cast<uint32_t>(rows.size()));
  pk.pack_bin_body(rows.data(), static_cast<uint32_t>(rows.size()));
  pk.pack("wg");
  pk.pack_array(2);
  pk.pack_bin(static_cast<uint32_t>(w.size()));
  pk.pack_bin_body(w.data(), static_cast<uint32_t>(w.size()));
  pk.pack_bin(static_cast<uint32_t>(g.size()));
  pk.pack_bin_body(g.data(), static_cast<uint32_t>(g.size()));
  return std::string(buffer.data(), buffer.size());
}

Result<SatisfactionPredictor> SatisfactionPredictor::Deserialize(std::string_view bytes,
                                                                 uint32_t expected_dim,
                                                                 size_t expected_models) {
  msgpack::object_handle handle;
  try {
    size_t offset = 0;
    handle = msgpack::unpack(bytes.data(), bytes.size(), offset);
    if (offset != bytes.size()) return Corrupt("trailing bytes");
  } catch (const std::exception& e) {
    return Corrupt(std::string("not msgpack: ") + e.what());
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) return Corrupt("not a map");

  std::string format;
  int64_t version = -1, dim = -1, models = -1;
  PredictorOptions options;
  std::vector<double> bias, bias_acc;
  std::vector<uint64_t> updates;
  const msgpack::object* rows = nullptr;
  const msgpack::object* wg = nullptr;
  try {
    for (uint32_t k = 0; k < root.via.map.size; ++k) {
      const auto& kv = root.via.map.ptr[k];
      if (kv.key.type != msgpack::type::STR) return Corrupt("non-string key");
      const std::string key = kv.key.as<std::string>();
      if (key == "format")
        format = kv.val.as<std::string>();
      else if (key == "version")
        version = kv.val.as<int64_t>();
      else if (key == "dim")
        dim = kv.val.as<int64_t>();
      else if (key == "models")
        models = kv.val.as<int64_t>();
      else if (key == "learning_rate")
        options.learning_rate = kv.val.as<double>();
      else if (key == "bias_learning_rate")
        options.bias_learning_rate = kv.val.as<double>();
      else if (key == "initial_accumulator")
        options.initial_accumulator = kv.val.as<double>();
      else if (key == "l2")
        options.l2 = kv.val.as<double>();
      else if (key == "bias")
        bias = kv.val.as<std::vector<double>>();
      else if (key == "bias_acc")
        bias_acc = kv.val.as<std::vector<double>>();
      else if (key == "updates")
        updates = kv.val.as<std::vector<uint64_t>>();
      else if (key == "rows")
        rows = &kv.val;
      else if (key == "wg")
        wg = &kv.val;
    }
  } catch (const std::exception& e) {
    return Corrupt(std::string("wrong field type: ") + e.what());
  }
  if (format != kFormat) return Corrupt("format is not " + std::string(kFormat));
  if (version != kVersion) return Corrupt("unsupported version " + std::to_string(version));
  if (dim <= 0 || dim > (int64_t{1} << 26)) return Corrupt("dim out of range");
  if (models <= 0 || models > 1024) return Corrupt("model count out of range");
  // Check the shape before allocating dim x models: a forged header must not exhaust memory.
  if (expected_dim != 0 && static_cast<uint64_t>(dim) != expected_dim) {
    return Corrupt("dimension differs from the configuration");
  }
  if (expected_models != 0 && static_cast<uint64_t>(models) != expected_models) {
    return Corrupt("model count differs from the configuration");
  }
  if (Status st = options.Validate(); !st.ok()) return Corrupt(st.message());
  const size_t m = static_cast<size_t>(models);
  if (bias.size() != m || bias_acc.size() != m || updates.size() != m) {
    return Corrupt("bias/updates arrays do not match the model count");
  }
  for (size_t j = 0; j < m; ++j) {
    if (!std::isfinite(bias[j]) || !(bias_acc[j] > 0.0) || !std::isfinite(bias_acc[j])) {
      return Corrupt("non-finite bias state");
    }
  }
  if (rows == nullptr || rows->type != msgpack::type::BIN) return Corrupt("rows missing");
  if (wg == nullptr || wg->type != msgpack::type::ARRAY || wg->via.array.size != 2 ||
      wg->via.array.ptr[0].type != msgpack::type::BIN ||
      wg->via.array.ptr[1].type != msgpack::type::BIN) {
    return Corrupt("weights missing");
  }
  const auto& rbin = rows->via.bin;
  const auto& wbin = wg->via.array.ptr[0].via.bin;
  const auto& gbin = wg->via.array.ptr[1].via.bin;
  if (rbin.size % 4 != 0) return Corrupt("rows length not a multiple of 4");
  const size_t nrows = rbin.size / 4;
  if (wbin.size != nrows * m * 4 || gbin.size != nrows * m * 4) {
    return Corrupt("weight block sizes do not match rows x models");
  }

  SatisfactionPredictor p(static_cast<uint32_t>(dim), m, options);
  p.bias_ = bias;
  p.bias_accumulator_ = bias_acc;
  p.updates_ = updates;
  for (size_t r = 0; r < nrows; ++r) {
    const uint32_t i = ReadLittleEndian<uint32_t>(rbin.ptr + 4 * r);
    if (i >= p.dim_) return Corrupt("row index out of range");
    for (size_t j = 0; j < m; ++j) {
      const float w = ReadLittleEndian<float>(wbin.ptr + 4 * (r * m + j));
      const float g = ReadLittleEndian<float>(gbin.ptr + 4 * (r * m + j));
      if (!std::isfinite(w) || !std::isfinite(g) || !(g > 0.0f)) {
        return Corrupt("non-finite weight");
      }
      p.weights_(i, static_cast<Eigen::Index>(j)) = w;
      p.accumulator_(i, static_cast<Eigen::Index>(j)) = g;
    }
    p.touched_[i] = 1;
  }
  return p;
}

bool SatisfactionPredictor::operator==(const SatisfactionPredictor& o) const {
  return dim_ == o.dim_ && bias_ == o.bias_ && bias_accumulator_ == o.bias_accumulator_ &&
         updates_ == o.updates_ && touched_ == o.touched_ && weights_ == o.weights_ &&
         accumulator_ == o.accumulator_;
}

}  // namespace messplus::router
