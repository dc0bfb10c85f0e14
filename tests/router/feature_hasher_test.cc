// Tests of FeatureHasher and HashingOptions: normalisation, uniqueness of indices,
// determinism, text normalisation, tags, truncation and option validation.
#include "router/feature_hasher.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace messplus::router {
namespace {

double Norm(const SparseFeatures& f) {
  double sq = 0.0;
  for (float v : f.value) sq += double(v) * v;
  return std::sqrt(sq);
}

std::map<uint32_t, float> AsMap(const SparseFeatures& f) {
  std::map<uint32_t, float> m;
  for (size_t k = 0; k < f.size(); ++k) m[f.index[k]] = f.value[k];
  return m;
}

void ExpectUniqueIndicesBelowDim(const SparseFeatures& f, uint32_t dim) {
  ASSERT_EQ(f.index.size(), f.value.size());
  std::set<uint32_t> seen;
  for (uint32_t i : f.index) {
    EXPECT_LT(i, dim);
    EXPECT_TRUE(seen.insert(i).second) << "index " << i << " appears twice";
  }
}

const std::vector<std::string> kTexts = {
    "What is the capital of France?",
    "a",
    "Which of these is a mammal: shark, dolphin, trout?",
    "12 + 30 = ?",
    "!!!",  // no word bytes: only character n-grams
};

TEST(FeatureHasher, TextPartHasUnitNorm) {
  const FeatureHasher hasher(HashingOptions{});
  for (const std::string& text : kTexts) {
    const SparseFeatures f = hasher.Hash(text);
    ASSERT_FALSE(f.empty()) << text;
    // Word family scaled to sqrt(0.5), char family to sqrt(0.5): 0.5 + 0.5 = 1. (A word index
    // colliding with a char index would perturb this; with 2^18 buckets and these short texts
    // none does.)
    EXPECT_NEAR(Norm(f), 1.0, 1e-5) << text;
  }
}

TEST(FeatureHasher, WordOnlyAndCharOnlyShareHaveUnitNorm) {
  // With word_share 0 (or 1) one family is scaled to 0, so cross-family collisions cannot
  // change the norm: it is 1 even for a long text.
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "token" + std::to_string(i * 7919 % 1000) + " ";
  for (float share : {0.0f, 1.0f, 0.25f}) {
    HashingOptions options;
    options.word_share = share;
    const FeatureHasher hasher(options);
    for (const std::string& text : {kTexts[0], long_text}) {
      const SparseFeatures f = hasher.Hash(text);
      if (share == 0.25f && text == long_text) continue;  // collisions possible at 0.25
      EXPECT_NEAR(Norm(f), 1.0, 1e-5) << "share " << share << ": " << text.substr(0, 20);
    }
  }
}

TEST(FeatureHasher, WordsOnlyWhenCharNgramsDisabled) {
  HashingOptions options;
  options.char_ngram_min = 0;
  options.word_bigrams = false;
  const FeatureHasher hasher(options);
  // Three distinct words, no bigrams, no char n-grams: three features of |value| 1/sqrt(3).
  const SparseFeatures f = hasher.Hash("alpha beta gamma");
  ASSERT_EQ(f.size(), 3u);
  for (float v : f.value) EXPECT_NEAR(std::fabs(v), 1.0 / std::sqrt(3.0), 1e-6);
  // A repeated word accumulates: "x x y" -> x: +-2, y: +-1, norm sqrt(5): |x| = 2/sqrt(5).
  const SparseFeatures g = hasher.Hash("x x y");
  ASSERT_EQ(g.size(), 2u);
  std::vector<double> mags = {std::fabs(g.value[0]), std::fabs(g.value[1])};
  EXPECT_NEAR(mags[0], 2.0 / std::sqrt(5.0), 1e-6);  // "x" is hashed first
  EXPECT_NEAR(mags[1], 1.0 / std::sqrt(5.0), 1e-6);
}

TEST(FeatureHasher, IndicesAreUniqueAndBelowDim) {
  for (int bits : {4, 10, 18}) {
    HashingOptions options;
    options.dim_bits = bits;
    const FeatureHasher hasher(options);
    EXPECT_EQ(hasher.dim(), 1u << bits);
    for (const std::string& text : kTexts) {
      // dim 16 forces many collisions: they must be merged, not duplicated.
      ExpectUniqueIndicesBelowDim(hasher.Hash(text), hasher.dim());
    }
  }
}

TEST(FeatureHasher, SameTextGivesIdenticalOutput) {
  const FeatureHasher hasher(HashingOptions{});
  FeatureHasher::Scratch scratch;
  SparseFeatures a, b;
  hasher.Hash(kTexts[2], {}, &a, &scratch);
  hasher.Hash(kTexts[0], {}, &b, &scratch);  // dirty the scratch and the output in between
  hasher.Hash(kTexts[2], {}, &b, &scratch);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.value, b.value);
  const SparseFeatures c = hasher.Hash(kTexts[2]);  // temporary-scratch overload
  EXPECT_EQ(a.index, c.index);
  EXPECT_EQ(a.value, c.value);
}

TEST(FeatureHasher, NormalisesCaseAndWhitespace) {
  const FeatureHasher hasher(HashingOptions{});
  const SparseFeatures reference = hasher.Hash("hello world");
  for (std::string_view variant :
       {"Hello  World", "HELLO WORLD", "  hello\tworld\n", "hello\r\n\nworld "}) {
    const SparseFeatures f = hasher.Hash(variant);
    EXPECT_EQ(f.index, reference.index) << variant;
    EXPECT_EQ(f.value, reference.value) << variant;
  }
}

TEST(FeatureHasher, DifferentTextsDiffer) {
  const FeatureHasher hasher(HashingOptions{});
  const auto a = AsMap(hasher.Hash("hello world"));
  const auto b = AsMap(hasher.Hash("hello there"));
  const auto c = AsMap(hasher.Hash("world hello"));  // same words, other order
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(FeatureHasher, SeedChangesTheHashes) {
  HashingOptions other;
  other.seed = 1;
  const auto a = AsMap(FeatureHasher(HashingOptions{}).Hash("hello world"));
  const auto b = AsMap(FeatureHasher(other).Hash("hello world"));
  EXPECT_NE(a, b);
}

TEST(FeatureHasher, TagsAddFeaturesOutsideTheNormalisation) {
  HashingOptions options;
  options.tag_value = 0.75f;
  const FeatureHasher hasher(options);
  const std::vector<std::string_view> tags = {"task=arc_easy", "tenant=gold"};
  const SparseFeatures plain = hasher.Hash(kTexts[0]);
  const SparseFeatures tagged = hasher.Hash(kTexts[0], tags);
  ExpectUniqueIndicesBelowDim(tagged, hasher.dim());

  // The tagged vector is the plain one plus tag_value at one index per tag.
  const auto p = AsMap(plain);
  auto t = AsMap(tagged);
  std::map<uint32_t, float> extra;
  for (const auto& [index, value] : t) {
    const auto it = p.find(index);
    const float diff = value - (it == p.end() ? 0.0f : it->second);
    if (diff != 0.0f) extra[index] = diff;
  }
  ASSERT_EQ(extra.size(), tags.size());
  for (const auto& [index, value] : extra) EXPECT_FLOAT_EQ(value, 0.75f);
  // Removing the tag contributions leaves the unit-norm text part.
  SparseFeatures text_part = tagged;
  for (size_t k = 0; k < text_part.size(); ++k) {
    const auto it = extra.find(text_part.index[k]);
    if (it != extra.end()) text_part.value[k] -= it->second;
  }
  EXPECT_NEAR(Norm(text_part), 1.0, 1e-5);
  // Norm with tags: sqrt(1 + 2 * 0.75^2) = sqrt(2.125), when no tag collides with the text.
  EXPECT_NEAR(Norm(tagged), std::sqrt(2.125), 1e-5);
}

TEST(FeatureHasher, TagsDoNotDependOnTheText) {
  const FeatureHasher hasher(HashingOptions{});
  const std::vector<std::string_view> tags = {"task=gsm8k"};
  const SparseFeatures a = hasher.Hash("", tags);
  const SparseFeatures b = hasher.Hash("   ", tags);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a.value[0], 1.0f);  // default tag_value
  EXPECT_EQ(a.index, b.index);
  // The same tag with a text lands on the same index.
  const auto with_text = AsMap(hasher.Hash("some words", tags));
  EXPECT_TRUE(with_text.count(a.index[0]));
}

TEST(FeatureHasher, EmptyTextGivesEmptyVector) {
  const FeatureHasher hasher(HashingOptions{});
  EXPECT_TRUE(hasher.Hash("").empty());
  EXPECT_TRUE(hasher.Hash(" \t\n ").empty());  // normalises to " ": no words, too short for 3-grams
}

TEST(FeatureHasher, ReusedOutputIsReplacedNotAppended) {
  const FeatureHasher hasher(HashingOptions{});
  FeatureHasher::Scratch scratch;
  SparseFeatures out = hasher.Hash(kTexts[2]);
  ASSERT_FALSE(out.empty());
  hasher.Hash("", {}, &out, &scratch);
  EXPECT_TRUE(out.empty());
}

TEST(FeatureHasher, TruncatesTextBeyondMaxTextBytes) {
  HashingOptions options;
  options.max_text_bytes = 11;  // "hello world" is 11 bytes
  const FeatureHasher truncating(options);
  const FeatureHasher full(HashingOptions{});
  const SparseFeatures cut = truncating.Hash("hello world and much more text");
  const SparseFeatures expected = full.Hash("hello world");
  EXPECT_EQ(cut.index, expected.index);
  EXPECT_EQ(cut.value, expected.value);
  EXPECT_NE(AsMap(full.Hash("hello world and much more text")), AsMap(expected));
}

TEST(FeatureHasher, TenMegabyteTextDoesNotCrash) {
  // Default max_text_bytes (1 MiB) applies, so this hashes the first MiB.
  std::string text;
  text.reserve(10u << 20);
  const char* words[] = {"lorem ", "ipsum ", "dolor ", "sit ", "amet ", "\xc3\xa9t\xc3\xa9 "};
  for (size_t i = 0; text.size() < (10u << 20); ++i) text += words[(i * 7 + i / 5) % 6];
  const FeatureHasher hasher(HashingOptions{});
  const SparseFeatures f = hasher.Hash(text);
  EXPECT_FALSE(f.empty());
  ExpectUniqueIndicesBelowDim(f, hasher.dim());
  for (float v : f.value) ASSERT_TRUE(std::isfinite(v));
  // The same as hashing the first MiB on its own.
  const SparseFeatures first_mib = hasher.Hash(std::string_view(text).substr(0, 1u << 20));
  EXPECT_EQ(f.index, first_mib.index);
  EXPECT_EQ(f.value, first_mib.value);
}

TEST(FeatureHasher, FiveHundredCharacterPromptHasASensibleFeatureCount) {
  std::string prompt =
      "Question: A student places a beaker of water on a hot plate and measures the "
      "temperature every minute. After ten minutes the water begins to boil and the "
      "temperature stops rising even though the hot plate is still on. Which statement best "
      "explains why the temperature of the water stays the same while it boils? Options: "
      "(A) the thermometer has stopped working; (B) energy is being used to change the "
      "water from a liquid into a gas; (C) the hot plate has turned off; (D) heat escapes.";
  prompt.resize(500, ' ');
  ASSERT_EQ(prompt.size(), 500u);
  const FeatureHasher hasher(HashingOptions{});
  const SparseFeatures f = hasher.Hash(prompt);
  std::cout << "[ info ] 500-character prompt -> " << f.size() << " features\n";
  RecordProperty("features_500_chars", static_cast<int>(f.size()));
  // Upper bound, by hand: ~85 words + ~84 bigrams + (n - 2) 3-grams + (n - 3) 4-grams where
  // the normalised text has n <= 502 bytes: about 85 + 84 + 500 + 499 = 1168. Repeated
  // n-grams ("the ", " wa") merge, so the count is lower; it is far above the word count.
  EXPECT_GT(f.size(), 300u);
  EXPECT_LT(f.size(), 1168u);
  ExpectUniqueIndicesBelowDim(f, hasher.dim());
}

// HashingOptions::Validate: one test per reject reason.
Status ValidateWith(void (*mutate)(HashingOptions*)) {
  HashingOptions options;
  mutate(&options);
  return options.Validate();
}

TEST(HashingOptions, DefaultsAreValid) { EXPECT_TRUE(HashingOptions{}.Validate().ok()); }

TEST(HashingOptions, RejectsDimBitsOutsideFourToTwentySix) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->dim_bits = 3; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->dim_bits = 27; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->dim_bits = -1; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateWith([](HashingOptions* o) { o->dim_bits = 4; }).ok());
  EXPECT_TRUE(ValidateWith([](HashingOptions* o) { o->dim_bits = 26; }).ok());
}

TEST(HashingOptions, RejectsNegativeCharNgramMin) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->char_ngram_min = -1; }).code(),
            StatusCode::kInvalidArgument);
}

TEST(HashingOptions, RejectsCharNgramMaxAboveEight) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->char_ngram_max = 9; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateWith([](HashingOptions* o) { o->char_ngram_max = 8; }).ok());
}

TEST(HashingOptions, RejectsCharNgramMaxBelowMin) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) {
              o->char_ngram_min = 4;
              o->char_ngram_max = 3;
            }).code(),
            StatusCode::kInvalidArgument);
  // min = 0 disables char n-grams; max is then irrelevant (within [0, 8]).
  EXPECT_TRUE(ValidateWith([](HashingOptions* o) {
                o->char_ngram_min = 0;
                o->char_ngram_max = 0;
              }).ok());
}

TEST(HashingOptions, RejectsWordShareOutsideUnitInterval) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->word_share = 1.5f; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->word_share = -0.1f; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWith([](HashingOptions* o) {
              o->word_share = std::numeric_limits<float>::quiet_NaN();
            }).code(),
            StatusCode::kInvalidArgument);
}

TEST(HashingOptions, RejectsNonFiniteTagValue) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) {
              o->tag_value = std::numeric_limits<float>::infinity();
            }).code(),
            StatusCode::kInvalidArgument);
}

TEST(HashingOptions, RejectsZeroMaxTextBytes) {
  EXPECT_EQ(ValidateWith([](HashingOptions* o) { o->max_text_bytes = 0; }).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace messplus::router
