// FeatureHasher: request text -> a sparse, L2-normalised vector of hashed n-grams.
//
// Two families of features, each normalised to unit length and weighted so the text part has
// unit length overall:
//   1. words (ASCII-lowercased runs of letters and digits; UTF-8 bytes count as letters):
//      unigrams and bigrams;
//   2. character n-grams (n in [char_ngram_min, char_ngram_max]) of the lowercased text with
//      whitespace runs collapsed to one space and a space at each end.
// Each n-gram is hashed with XXH3 (seeded per family) into [0, 2^dim_bits); one hash bit
// gives the feature's sign, so collisions cancel in expectation. Extra features (tags such as
// "task=arc_easy" or "tenant=gold") are hashed into the same space with value `tag_value`
// each, outside the normalisation, so a tag acts like a bias for the requests that carry it.
//
// Thread safety: Hash() is const but uses the caller's Scratch; one Scratch per thread.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "router/sparse_features.h"
#include "router/status.h"

namespace messplus::router {

struct HashingOptions {
  // Dimension of the hashed space is 2^dim_bits. 18 (262,144) keeps collisions rare for
  // prompts of a few hundred words; the predictor's memory grows linearly with it.
  int dim_bits = 18;
  bool word_bigrams = true;
  // Character n-grams from min to max length; min = 0 disables them.
  int char_ngram_min = 3;
  int char_ngram_max = 4;
  // Weight of the word family relative to the character family (both are unit-normalised
  // first); 0.5 means equal weight.
  float word_share = 0.5f;
  float tag_value = 1.0f;
  // Text beyond this many bytes is ignored (the stages reject larger requests before this).
  size_t max_text_bytes = 1 << 20;
  uint64_t seed = 0x6d657373706c7573ull;  // "messplus"

  Status Validate() const;
  uint32_t dim() const { return 1u << dim_bits; }
};

class FeatureHasher {
 public:
  // Reusable working memory, so hashing allocates nothing once warmed up.
  struct Scratch {
    std::vector<uint64_t> slots;  // open-addressing table: epoch << 32 | (position + 1)
    uint32_t slots_epoch = 0;     // the slots of this epoch are taken, the others empty
    std::vector<uint32_t> used;
    std::vector<uint64_t> word_hashes;
    std::vector<char> normalised;
  };

  // REQUIRES: options.Validate().ok().
  explicit FeatureHasher(const HashingOptions& options);

  const HashingOptions& options() const { return options_; }
  uint32_t dim() const { return options_.dim(); }

  // Replaces *out with the features of `text` plus one feature per tag.
  void Hash(std::string_view text, std::span<const std::string_view> tags, SparseFeatures* out,
            Scratch* scratch) const;

  // Convenience overload with a temporary scratch (tests, tools).
  SparseFeatures Hash(std::string_view text, std::span<const std::string_view> tags = {}) const;

 private:
  HashingOptions options_;
  uint32_t mask_;
};

}  // namespace messplus::router
