// Tests of SatisfactionPredictor: predictions, the AdaGrad update (checked by hand), learning
// a toy problem, input validation, and the msgpack form (round trip and corrupt input).
#include "router/predictor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "router/feature_hasher.h"
#include "router/rng.h"

namespace messplus::router {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

SparseFeatures Features(std::vector<std::pair<uint32_t, float>> entries) {
  SparseFeatures f;
  for (const auto& [i, v] : entries) f.push_back(i, v);
  return f;
}

std::vector<double> Logits(const SatisfactionPredictor& p, const SparseFeatures& x) {
  std::vector<double> out(p.num_models());
  p.PredictLogits(x, out);
  return out;
}

std::vector<double> Probabilities(const SatisfactionPredictor& p, const SparseFeatures& x) {
  std::vector<double> out(p.num_models());
  p.Predict(x, out);
  return out;
}

TEST(SatisfactionPredictor, FreshModelPredictsOneHalfForEveryModel) {
  const SatisfactionPredictor p(1024, 4, PredictorOptions{});
  EXPECT_EQ(p.dim(), 1024u);
  EXPECT_EQ(p.num_models(), 4u);
  for (const SparseFeatures& x :
       {SparseFeatures{}, Features({{1, 0.5f}, {700, -2.0f}}), Features({{1023, 1.0f}})}) {
    for (double v : Probabilities(p, x)) EXPECT_EQ(v, 0.5);  // sigmoid(0) = 1 / (1 + 1)
    for (double z : Logits(p, x)) EXPECT_EQ(z, 0.0);
  }
  for (size_t m = 0; m < 4; ++m) EXPECT_EQ(p.updates(m), 0u);
}

TEST(SatisfactionPredictor, SigmoidAtHandComputedPoints) {
  EXPECT_EQ(SatisfactionPredictor::Sigmoid(0.0), 0.5);
  EXPECT_NEAR(SatisfactionPredictor::Sigmoid(std::log(3.0)), 0.75, 1e-15);   // 1 / (1 + 1/3)
  EXPECT_NEAR(SatisfactionPredictor::Sigmoid(-std::log(3.0)), 0.25, 1e-15);  // 1 / (1 + 3)
}

// One AdaGrad step on dim 16, two models, features {3: 0.6, 7: 0.8}, model 1, label 1, with the
// default options (learning rates 0.2, initial accumulator 0.1, l2 1e-6), following
// predictor.cc:
//   z = b + sum x_i w_i = 0;  g = weight * (sigmoid(z) - label) = 1 * (0.5 - 1) = -0.5
//   bias_acc = 0.1 + g^2 = 0.35;  b = 0 - 0.2 * g / sqrt(0.35) = 0.1 / 0.591607978 = 0.1690308509
//   row 3: gi = g * 0.6 + l2 * 0 = -0.3; acc = 0.1 + 0.09 = 0.19;
//          w = 0 - 0.2 * (-0.3) / sqrt(0.19) = 0.06 / 0.435889894 = 0.1376494403
//   row 7: gi = g * 0.8 = -0.4; acc = 0.1 + 0.16 = 0.26;
//          w = 0.08 / sqrt(0.26) = 0.08 / 0.509901951 = 0.1568929081
constexpr double kB1 = 0.16903085094570333;
constexpr double kW3 = 0.13764944032233706;
constexpr double kW7 = 0.15689290811054724;

TEST(SatisfactionPredictor, OneAdaGradStepMatchesHandComputation) {
  SatisfactionPredictor p(16, 2, PredictorOptions{});
  const SparseFeatures x = Features({{3, 0.6f}, {7, 0.8f}});
  ASSERT_TRUE(p.Update(x, 1, 1.0).ok());
  EXPECT_EQ(p.updates(0), 0u);
  EXPECT_EQ(p.updates(1), 1u);

  // The bias is the logit of the empty vector; a weight is the logit of a one-hot vector
  // minus the bias.
  const std::vector<double> bias = Logits(p, SparseFeatures{});
  EXPECT_EQ(bias[0], 0.0);  // model 0 untouched
  EXPECT_NEAR(bias[1], kB1, 1e-6);
  const std::vector<double> row3 = Logits(p, Features({{3, 1.0f}}));
  const std::vector<double> row7 = Logits(p, Features({{7, 1.0f}}));
  EXPECT_EQ(row3[0], 0.0);
  EXPECT_EQ(row7[0], 0.0);
  EXPECT_NEAR(row3[1] - bias[1], kW3, 1e-6);
  EXPECT_NEAR(row7[1] - bias[1], kW7, 1e-6);
  // Untouched row: only the bias.
  EXPECT_NEAR(Logits(p, Features({{5, 1.0f}}))[1], kB1, 1e-12);
  // The full logit: b + 0.6 w3 + 0.8 w7 = 0.16903085 + 0.08258966 + 0.12551433 = 0.37713484.
  EXPECT_NEAR(Logits(p, x)[1], 0.37713484162754335, 1e-6);
}

TEST(SatisfactionPredictor, SecondWeightedStepUsesTheAccumulatedGradients) {
  SatisfactionPredictor p(16, 2, PredictorOptions{});
  const SparseFeatures x = Features({{3, 0.6f}, {7, 0.8f}});
  ASSERT_TRUE(p.Update(x, 1, 1.0).ok());
  ASSERT_TRUE(p.Update(x, 1, 0.0, 2.0).ok());  // label 0, example weight 2
  // z = 0.37713484 (above); sigmoid(z) = 0.59318188; g = 2 * (0.59318188 - 0) = 1.18636375
  // bias_acc = 0.35 + 1.18636375^2 = 1.75745895
  // b = 0.16903085 - 0.2 * 1.18636375 / sqrt(1.75745895) = 0.16903085 - 0.17898032 = -0.00994946
  // row 3: gi = 1.18636375 * 0.6 + 1e-6 * 0.13764944 = 0.71181839; acc = 0.19 + 0.50668542
  //        = 0.69668542; w = 0.13764944 - 0.2 * 0.71181839 / 0.83467684 = -0.03291199
  // row 7: gi = 1.18636375 * 0.8 + 1e-6 * 0.15689291 = 0.94909116; acc = 0.26 + 0.90077402
  //        = 1.16077403; w = 0.15689291 - 0.2 * 0.94909116 / 1.07739224 = -0.01929012
  const std::vector<double> bias = Logits(p, SparseFeatures{});
  EXPECT_NEAR(bias[1], -0.009949464596194918, 1e-6);
  EXPECT_NEAR(Logits(p, Features({{3, 1.0f}}))[1] - bias[1], -0.032911993549410795, 1e-6);
  EXPECT_NEAR(Logits(p, Features({{7, 1.0f}}))[1] - bias[1], -0.019290124972509398, 1e-6);
  EXPECT_EQ(p.updates(1), 2u);
}

TEST(SatisfactionPredictor, PredictIsSigmoidOfPredictLogits) {
  SatisfactionPredictor p(64, 3, PredictorOptions{});
  Rng rng(5);
  for (int i = 0; i < 50; ++i) {
    SparseFeatures x;
    for (uint32_t k = 0; k < 4; ++k) {
      x.push_back(static_cast<uint32_t>(k * 16 + rng.Below(16)), static_cast<float>(rng.Normal()));
    }
    ASSERT_TRUE(p.Update(x, rng.Below(3), rng.Bernoulli(0.5) ? 1.0 : 0.0).ok());
  }
  for (int i = 0; i < 20; ++i) {
    const SparseFeatures x = Features({{static_cast<uint32_t>(rng.Below(64)), 1.0f},
                                       {static_cast<uint32_t>(rng.Below(64)), -0.5f}});
    const std::vector<double> z = Logits(p, x);
    const std::vector<double> prob = Probabilities(p, x);
    for (size_t m = 0; m < 3; ++m) {
      EXPECT_EQ(prob[m], SatisfactionPredictor::Sigmoid(z[m]));
      EXPECT_NE(z[m], 0.0);  // the model did learn something
    }
  }
}

TEST(SatisfactionPredictor, IgnoresFeatureIndicesOutsideDim) {
  SatisfactionPredictor p(16, 1, PredictorOptions{});
  ASSERT_TRUE(p.Update(Features({{16, 1.0f}, {1000, 1.0f}}), 0, 1.0).ok());
  // Only the bias moved: b = 0.2 * 0.5 / sqrt(0.35) (see the hand-computed step above).
  EXPECT_NEAR(Logits(p, Features({{16, 1.0f}, {2, 1.0f}}))[0], kB1, 1e-12);
  EXPECT_NEAR(Logits(p, SparseFeatures{})[0], kB1, 1e-12);
}

// Prompts for the toy problem: an "easy" or "hard" marker among random filler words.
std::string ToyPrompt(Rng* rng, bool easy) {
  static const char* kFiller[] = {"river",  "planet", "number", "history",  "chemistry",
                                  "music",  "animal", "city",   "language", "energy",
                                  "market", "garden", "ocean",  "engine",   "poem"};
  std::string text = "please answer this";
  const uint64_t marker_at = rng->Below(4);
  for (uint64_t k = 0; k < 4; ++k) {
    if (k == marker_at) text += easy ? " easy" : " hard";
    text += " ";
    text += kFiller[rng->Below(std::size(kFiller))];
  }
  return text + " question";
}

TEST(SatisfactionPredictor, LearnsASeparableToyProblem) {
  // Model 0 is right only on easy prompts, model 1 always; 400 updates per model.
  HashingOptions hashing;
  hashing.dim_bits = 14;
  const FeatureHasher hasher(hashing);
  SatisfactionPredictor p(hasher.dim(), 2, PredictorOptions{});
  Rng rng(99);
  for (int i = 0; i < 400; ++i) {
    const bool easy = rng.Bernoulli(0.5);
    const SparseFeatures x = hasher.Hash(ToyPrompt(&rng, easy));
    ASSERT_TRUE(p.Update(x, 0, easy ? 1.0 : 0.0).ok());
    ASSERT_TRUE(p.Update(x, 1, 1.0).ok());
  }
  EXPECT_EQ(p.updates(0), 400u);
  EXPECT_EQ(p.updates(1), 400u);

  // Held-out prompts from the same generator (a different stream).
  Rng test_rng(1234);
  int correct0 = 0, correct1 = 0, ranked = 0, hard = 0;
  constexpr int kTest = 200;
  for (int i = 0; i < kTest; ++i) {
    const bool easy = i % 2 == 0;
    const std::vector<double> prob = Probabilities(p, hasher.Hash(ToyPrompt(&test_rng, easy)));
    correct0 += (prob[0] > 0.5) == easy ? 1 : 0;
    correct1 += prob[1] > 0.5 ? 1 : 0;
    if (!easy) {
      ++hard;
      ranked += prob[1] > prob[0] ? 1 : 0;
    }
  }
  EXPECT_GT(correct0, 0.9 * kTest) << "model 0 accuracy " << correct0 << "/" << kTest;
  EXPECT_GT(correct1, 0.9 * kTest) << "model 1 accuracy " << correct1 << "/" << kTest;
  EXPECT_EQ(ranked, hard) << "model 1 should rank above model 0 on every hard prompt";
}

// Update: one test per reject reason; each leaves the predictor unchanged.
void ExpectUpdateRejected(size_t model, double label, double weight, StatusCode code) {
  SatisfactionPredictor p(16, 2, PredictorOptions{});
  const SparseFeatures x = Features({{3, 0.6f}, {7, 0.8f}});
  ASSERT_TRUE(p.Update(x, 0, 1.0).ok());
  const SatisfactionPredictor before = p;
  EXPECT_EQ(p.Update(x, model, label, weight).code(), code)
      << "model " << model << " label " << label << " weight " << weight;
  EXPECT_TRUE(p == before);
  EXPECT_EQ(p.updates(0), 1u);
  EXPECT_EQ(p.updates(1), 0u);
}

TEST(SatisfactionPredictor, UpdateRejectsUnknownModel) {
  // The header says InvalidArgument; the code returns NotFound, which status.h reserves for
  // unknown models. We pin NotFound.
  ExpectUpdateRejected(2, 1.0, 1.0, StatusCode::kNotFound);
}

TEST(SatisfactionPredictor, UpdateRejectsLabelOutsideUnitInterval) {
  ExpectUpdateRejected(1, 1.5, 1.0, StatusCode::kInvalidArgument);
  ExpectUpdateRejected(1, -0.1, 1.0, StatusCode::kInvalidArgument);
  ExpectUpdateRejected(1, kNaN, 1.0, StatusCode::kInvalidArgument);
}

TEST(SatisfactionPredictor, UpdateRejectsBadExampleWeight) {
  ExpectUpdateRejected(1, 1.0, -1.0, StatusCode::kInvalidArgument);
  ExpectUpdateRejected(1, 1.0, kNaN, StatusCode::kInvalidArgument);
  ExpectUpdateRejected(1, 1.0, kInf, StatusCode::kInvalidArgument);
}

TEST(SatisfactionPredictor, ZeroWeightUpdateIsANoOp) {
  SatisfactionPredictor p(16, 2, PredictorOptions{});
  const SparseFeatures x = Features({{3, 0.6f}, {7, 0.8f}});
  ASSERT_TRUE(p.Update(x, 0, 0.0).ok());
  const SatisfactionPredictor before = p;
  ASSERT_TRUE(p.Update(x, 1, 1.0, 0.0).ok());
  EXPECT_TRUE(p == before);
  EXPECT_EQ(p.updates(1), 0u);  // not counted as an update
  EXPECT_EQ(p.Serialize(), before.Serialize());
}

SatisfactionPredictor TrainedPredictor() {
  PredictorOptions options;
  options.learning_rate = 0.3;
  options.l2 = 1e-4;
  SatisfactionPredictor p(256, 3, options);
  Rng rng(17);
  for (int i = 0; i < 60; ++i) {
    SparseFeatures x;
    for (uint32_t k = 0; k < 4; ++k) {
      x.push_back(static_cast<uint32_t>(k * 64 + rng.Below(64)), static_cast<float>(rng.Normal()));
    }
    EXPECT_TRUE(p.Update(x, rng.Below(3), rng.Uniform(), 0.5 + rng.Uniform()).ok());
  }
  return p;
}

TEST(SatisfactionPredictor, SerializeRoundTripGivesAnEqualPredictor) {
  const SatisfactionPredictor p = TrainedPredictor();
  const std::string bytes = p.Serialize();
  Result<SatisfactionPredictor> q = SatisfactionPredictor::Deserialize(bytes);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(*q == p);
  EXPECT_EQ(q->dim(), 256u);
  EXPECT_EQ(q->num_models(), 3u);
  // operator== ignores the options, so check them separately.
  EXPECT_EQ(q->options().learning_rate, 0.3);
  EXPECT_EQ(q->options().bias_learning_rate, p.options().bias_learning_rate);
  EXPECT_EQ(q->options().initial_accumulator, p.options().initial_accumulator);
  EXPECT_EQ(q->options().l2, 1e-4);
  for (size_t m = 0; m < 3; ++m) EXPECT_EQ(q->updates(m), p.updates(m));
  Rng rng(3);
  for (int i = 0; i < 50; ++i) {
    const SparseFeatures x = Features({{static_cast<uint32_t>(rng.Below(256)), 0.7f},
                                       {static_cast<uint32_t>(rng.Below(256)), -1.2f}});
    EXPECT_EQ(Probabilities(*q, x), Probabilities(p, x));
  }
  // Serialising again gives the same bytes, and both keep learning identically.
  EXPECT_EQ(q->Serialize(), bytes);
  SatisfactionPredictor a = p;
  const SparseFeatures x = Features({{10, 1.0f}, {200, 0.5f}});
  ASSERT_TRUE(a.Update(x, 2, 1.0).ok());
  ASSERT_TRUE(q->Update(x, 2, 1.0).ok());
  EXPECT_TRUE(a == *q);
}

TEST(SatisfactionPredictor, FreshPredictorRoundTrips) {
  const SatisfactionPredictor p(32, 2, PredictorOptions{});
  Result<SatisfactionPredictor> q = SatisfactionPredictor::Deserialize(p.Serialize());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(*q == p);
}

TEST(SatisfactionPredictor, EqualityNoticesADifferentPredictor) {
  const SatisfactionPredictor p = TrainedPredictor();
  SatisfactionPredictor q = p;
  EXPECT_TRUE(q == p);
  ASSERT_TRUE(q.Update(Features({{1, 1.0f}}), 0, 1.0).ok());
  EXPECT_FALSE(q == p);
  EXPECT_FALSE(SatisfactionPredictor(32, 2, PredictorOptions{}) ==
               SatisfactionPredictor(64, 2, PredictorOptions{}));
}

// A hand-built predictor buffer in the layout Serialize writes (see predictor.cc); each test
// below breaks one thing.
struct Blob {
  std::string format = "messplus.predictor";
  int64_t version = 1;
  int64_t dim = 16;
  int64_t models = 2;
  double learning_rate = 0.2;
  double bias_learning_rate = 0.2;
  double initial_accumulator = 0.1;
  double l2 = 1e-6;
  std::vector<double> bias = {0.25, -0.5};
  std::vector<double> bias_acc = {0.3, 0.4};
  std::vector<uint64_t> updates = {3, 4};
  std::vector<uint32_t> rows = {3};
  std::vector<float> w = {0.5f, -0.25f};  // rows x models
  std::vector<float> g = {0.2f, 0.3f};
  std::optional<std::string> rows_bytes;  // overrides `rows` when set
  bool omit_rows = false;
  bool dim_as_string = false;
  size_t wg_arity = 2;

  template <typename T>
  static std::string LittleEndian(const std::vector<T>& v) {
    std::string out(v.size() * sizeof(T), '\0');
    // x86-64 and arm64 are little-endian, like the format.
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  static void PackBin(msgpack::packer<msgpack::sbuffer>* pk, const std::string& bytes) {
    pk->pack_bin(static_cast<uint32_t>(bytes.size()));
    pk->pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
  }

  std::string Pack() const {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> pk(buffer);
    pk.pack_map(omit_rows ? 12 : 13);
    pk.pack("format");
    pk.pack(format);
    pk.pack("version");
    pk.pack(version);
    pk.pack("dim");
    if (dim_as_string) {
      pk.pack(std::to_string(dim));
    } else {
      pk.pack(dim);
    }
    pk.pack("models");
    pk.pack(models);
    pk.pack("learning_rate");
    pk.pack(learning_rate);
    pk.pack("bias_learning_rate");
    pk.pack(bias_learning_rate);
    pk.pack("initial_accumulator");
    pk.pack(initial_accumulator);
    pk.pack("l2");
    pk.pack(l2);
    pk.pack("bias");
    pk.pack(bias);
    pk.pack("bias_acc");
    pk.pack(bias_acc);
    pk.pack("updates");
    pk.pack(updates);
    if (!omit_rows) {
      pk.pack("rows");
      PackBin(&pk, rows_bytes ? *rows_bytes : LittleEndian(rows));
    }
    pk.pack("wg");
    pk.pack_array(static_cast<uint32_t>(wg_arity));
    if (wg_arity > 0) PackBin(&pk, LittleEndian(w));
    if (wg_arity > 1) PackBin(&pk, LittleEndian(g));
    for (size_t k = 2; k < wg_arity; ++k) PackBin(&pk, LittleEndian(g));
    return std::string(buffer.data(), buffer.size());
  }
};

TEST(SatisfactionPredictor, DeserializesAHandBuiltBuffer) {
  Result<SatisfactionPredictor> p = SatisfactionPredictor::Deserialize(Blob{}.Pack());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->dim(), 16u);
  EXPECT_EQ(p->num_models(), 2u);
  EXPECT_EQ(p->updates(0), 3u);
  EXPECT_EQ(p->updates(1), 4u);
  // Logits of {3: 1}: bias + w[3] = (0.25 + 0.5, -0.5 - 0.25) = (0.75, -0.75).
  const std::vector<double> z = Logits(*p, Features({{3, 1.0f}}));
  EXPECT_EQ(z[0], 0.75);
  EXPECT_EQ(z[1], -0.75);
  // Row 4 was not in the buffer: bias only.
  const std::vector<double> z4 = Logits(*p, Features({{4, 1.0f}}));
  EXPECT_EQ(z4[0], 0.25);
  EXPECT_EQ(z4[1], -0.5);
}

void ExpectDataLoss(const std::string& bytes, const char* what) {
  Result<SatisfactionPredictor> p = SatisfactionPredictor::Deserialize(bytes);
  ASSERT_FALSE(p.ok()) << what;
  EXPECT_EQ(p.status().code(), StatusCode::kDataLoss) << what << ": " << p.status().ToString();
}

TEST(SatisfactionPredictorDeserialize, RejectsGarbageBytes) {
  ExpectDataLoss("this is not a predictor", "text");                // 't' = fixint 116
  ExpectDataLoss(std::string("\xc1\x00\x01", 3), "reserved byte");  // 0xc1 is never used
  ExpectDataLoss(std::string("\x93\x01\x02\x03", 4), "an array");
}

TEST(SatisfactionPredictorDeserialize, RejectsEveryTruncation) {
  const std::string bytes = TrainedPredictor().Serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<SatisfactionPredictor> p = SatisfactionPredictor::Deserialize(bytes.substr(0, n));
    ASSERT_FALSE(p.ok()) << "prefix of " << n << " bytes";
    ASSERT_EQ(p.status().code(), StatusCode::kDataLoss) << "prefix of " << n << " bytes";
  }
}

// A valid state with bytes appended (a concatenated or partly overwritten checkpoint) is
// corrupt, not a valid state.
TEST(SatisfactionPredictorDeserialize, RejectsTrailingBytes) {
  ExpectDataLoss(TrainedPredictor().Serialize() + "trailing junk", "trailing bytes");
}

TEST(SatisfactionPredictorDeserialize, RejectsWrongFormatString) {
  Blob b;
  b.format = "messplus.router_state";
  ExpectDataLoss(b.Pack(), "format");
}

TEST(SatisfactionPredictorDeserialize, RejectsUnsupportedVersion) {
  Blob b;
  b.version = 2;
  ExpectDataLoss(b.Pack(), "version");
}

TEST(SatisfactionPredictorDeserialize, RejectsDimOutOfRange) {
  Blob zero;
  zero.dim = 0;
  ExpectDataLoss(zero.Pack(), "dim 0");
  Blob huge;
  huge.dim = (int64_t{1} << 26) + 1;
  ExpectDataLoss(huge.Pack(), "dim 2^26 + 1");
}

TEST(SatisfactionPredictorDeserialize, RejectsModelCountOutOfRange) {
  Blob b;
  b.models = 0;
  b.bias = b.bias_acc = {};
  b.updates = {};
  b.w = b.g = {};
  b.rows = {};
  ExpectDataLoss(b.Pack(), "zero models");
}

TEST(SatisfactionPredictorDeserialize, RejectsWrongFieldType) {
  Blob b;
  b.dim_as_string = true;
  ExpectDataLoss(b.Pack(), "dim as a string");
}

TEST(SatisfactionPredictorDeserialize, RejectsInvalidOptions) {
  Blob b;
  b.learning_rate = 0.0;
  ExpectDataLoss(b.Pack(), "learning_rate 0");
}

TEST(SatisfactionPredictorDeserialize, RejectsBiasArrayOfTheWrongSize) {
  Blob b;
  b.bias = {0.25};
  ExpectDataLoss(b.Pack(), "bias size");
  Blob u;
  u.updates = {1, 2, 3};
  ExpectDataLoss(u.Pack(), "updates size");
}

TEST(SatisfactionPredictorDeserialize, RejectsNonFiniteBias) {
  Blob b;
  b.bias[1] = kNaN;
  ExpectDataLoss(b.Pack(), "NaN bias");
}

TEST(SatisfactionPredictorDeserialize, RejectsNonPositiveBiasAccumulator) {
  Blob b;
  b.bias_acc[0] = 0.0;
  ExpectDataLoss(b.Pack(), "zero bias accumulator");
}

TEST(SatisfactionPredictorDeserialize, RejectsMissingRows) {
  Blob b;
  b.omit_rows = true;
  ExpectDataLoss(b.Pack(), "rows missing");
}

TEST(SatisfactionPredictorDeserialize, RejectsMissingWeightBlock) {
  Blob b;
  b.wg_arity = 1;
  ExpectDataLoss(b.Pack(), "wg with one block");
}

TEST(SatisfactionPredictorDeserialize, RejectsRowsLengthNotAMultipleOfFour) {
  Blob b;
  b.rows_bytes = std::string("\x03\x00\x00\x00\x00", 5);
  ExpectDataLoss(b.Pack(), "5-byte rows");
}

TEST(SatisfactionPredictorDeserialize, RejectsMismatchedBlockSizes) {
  Blob w;
  w.w = {0.5f};  // 1 float for 1 row x 2 models
  ExpectDataLoss(w.Pack(), "short w block");
  Blob g;
  g.g = {0.2f, 0.3f, 0.4f};
  ExpectDataLoss(g.Pack(), "long g block");
  Blob rows;
  rows.rows = {3, 4};  // 2 rows, but blocks for 1
  ExpectDataLoss(rows.Pack(), "more rows than weights");
}

TEST(SatisfactionPredictorDeserialize, RejectsRowIndexOutOfRange) {
  Blob b;
  b.rows = {16};  // dim is 16: valid rows are 0..15
  ExpectDataLoss(b.Pack(), "row 16");
}

TEST(SatisfactionPredictorDeserialize, RejectsNaNWeight) {
  Blob b;
  b.w[1] = std::numeric_limits<float>::quiet_NaN();
  ExpectDataLoss(b.Pack(), "NaN weight");
}

TEST(SatisfactionPredictorDeserialize, RejectsNonPositiveOrInfiniteAccumulator) {
  Blob zero;
  zero.g[0] = 0.0f;
  ExpectDataLoss(zero.Pack(), "zero accumulator");
  Blob inf;
  inf.g[1] = std::numeric_limits<float>::infinity();
  ExpectDataLoss(inf.Pack(), "infinite accumulator");
}

}  // namespace
}  // namespace messplus::router
