#include "router/feature_hasher.h"

// Inlined (header-only XXH3, the same hashes as the library): most calls hash 3 to 5 bytes,
// where the call into libxxhash costs about as much as the hash.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

namespace messplus::router {
namespace {

// Per-family seeds are derived from the configured seed so families never share a hash.
constexpr uint64_t kWordStream = 1;
constexpr uint64_t kBigramStream = 2;
constexpr uint64_t kCharStream = 3;  // + n
constexpr uint64_t kTagStream = 16;

uint64_t DeriveSeed(uint64_t seed, uint64_t stream) {
  return XXH3_64bits_withSeed(&stream, sizeof(stream), seed);
}

// Murmur3's 64-bit finaliser: a cheap, well-mixing combination for bigram hashes.
uint64_t Mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// An empty open-addressing table of positions in the first `size` (a power of two) slots of
// the scratch table, emptied without writing it: a slot holds epoch << 32 | (position + 1),
// and only the slots of the current epoch are taken. (Clearing the whole table, up to three
// times per text, was most of the hasher's instructions.)
class PositionTable {
 public:
  PositionTable(FeatureHasher::Scratch* scratch, size_t size) {
    std::vector<uint64_t>& slots = scratch->slots;
    if (slots.size() < size) {
      slots.assign(size, 0);  // epoch 0: never current
      scratch->slots_epoch = 0;
    }
    if (++scratch->slots_epoch == 0) {  // wrapped: stale slots could look current
      std::fill(slots.begin(), slots.end(), 0);
      scratch->slots_epoch = 1;
    }
    slots_ = slots.data();
    mask_ = size - 1;
    epoch_ = scratch->slots_epoch;
  }

  size_t mask() const { return mask_; }
  // The position stored in `slot`, or -1 when it is empty.
  int64_t Get(size_t slot) const {
    const uint64_t s = slots_[slot];
    if ((s >> 32) != epoch_) return -1;
    return static_cast<int64_t>(s & 0xffffffffu) - 1;
  }
  void Set(size_t slot, size_t position) {
    slots_[slot] = (uint64_t{epoch_} << 32) | (position + 1);
  }

 private:
  uint64_t* slots_;
  size_t mask_;
  uint32_t epoch_;
};

// Accumulates signed hashed features into `out`, merging equal indices through a
// PositionTable.
class Accumulator {
 public:
  Accumulator(PositionTable table, SparseFeatures* out, uint32_t mask)
      : table_(table), out_(out), mask_(mask) {}

  void Add(uint64_t hash, float weight) {
    const uint32_t index = static_cast<uint32_t>(hash) & mask_;
    const float value = (hash >> 63) ? -weight : weight;
    size_t slot = Mix64(index) & table_.mask();
    while (true) {
      const int64_t p = table_.Get(slot);
      if (p < 0) {
        table_.Set(slot, out_->index.size());
        out_->push_back(index, value);
        return;
      }
      if (out_->index[static_cast<size_t>(p)] == index) {
        out_->value[static_cast<size_t>(p)] += value;
        return;
      }
      slot = (slot + 1) & table_.mask();
    }
  }

 private:
  PositionTable table_;
  SparseFeatures* out_;
  uint32_t mask_;
};

void ScaleRange(SparseFeatures* f, size_t begin, size_t end, float target_norm) {
  double sq = 0;
  for (size_t i = begin; i < end; ++i) sq += double(f->value[i]) * f->value[i];
  if (sq <= 0) return;
  const float scale = static_cast<float>(target_norm / std::sqrt(sq));
  for (size_t i = begin; i < end; ++i) f->value[i] *= scale;
}

}  // namespace

Status HashingOptions::Validate() const {
  if (dim_bits < 4 || dim_bits > 26) {
    return Status::InvalidArgument("hashing.dim_bits must be in [4, 26], got " +
                                   std::to_string(dim_bits));
  }
  if (char_ngram_min < 0 || char_ngram_max > 8 ||
      (char_ngram_min > 0 && char_ngram_max < char_ngram_min)) {
    return Status::InvalidArgument("hashing char n-gram range must satisfy 0 <= min <= max <= 8");
  }
  if (!(word_share >= 0.0f && word_share <= 1.0f)) {
    return Status::InvalidArgument("hashing.word_share must be in [0, 1]");
  }
  if (!std::isfinite(tag_value)) return Status::InvalidArgument("hashing.tag_value must be finite");
  if (max_text_bytes == 0) return Status::InvalidArgument("hashing.max_text_bytes must be > 0");
  return Status::Ok();
}

FeatureHasher::FeatureHasher(const HashingOptions& options)
    : options_(options), mask_(options.dim() - 1) {}

void FeatureHasher::Hash(std::string_view text, std::span<const std::string_view> tags,
                         SparseFeatures* out, Scratch* scratch) const {
  out->clear();
  if (text.size() > options_.max_text_bytes) text = text.substr(0, options_.max_text_bytes);

  // Normalise: lowercase ASCII, collapse whitespace, one space at each end.
  std::vector<char>& norm = scratch->normalised;
  norm.clear();
  norm.reserve(text.size() + 2);
  norm.push_back(' ');
  for (unsigned char c : text) {
    if (IsSpace(c)) {
      if (norm.back() != ' ') norm.push_back(' ');
    } else {
      norm.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c));
    }
  }
  if (norm.back() != ' ') norm.push_back(' ');

  const int char_sizes =
      options_.char_ngram_min > 0 ? options_.char_ngram_max - options_.char_ngram_min + 1 : 0;
  const size_t max_features = norm.size() * (2 + static_cast<size_t>(char_sizes)) + tags.size() + 8;
  const size_t table_size = std::bit_ceil(std::max<size_t>(64, 2 * max_features));
  out->index.reserve(max_features);
  out->value.reserve(max_features);
  Accumulator acc(PositionTable(scratch, table_size), out, mask_);

  // 1. Words and bigrams.
  const uint64_t word_seed = DeriveSeed(options_.seed, kWordStream);
  const uint64_t bigram_seed = DeriveSeed(options_.seed, kBigramStream);
  std::vector<uint64_t>& words = scratch->word_hashes;
  words.clear();
  const size_t n = norm.size();
  for (size_t i = 0; i < n;) {
    while (i < n && !IsWordByte(static_cast<unsigned char>(norm[i]))) ++i;
    const size_t start = i;
    while (i < n && IsWordByte(static_cast<unsigned char>(norm[i]))) ++i;
    if (i > start) words.push_back(XXH3_64bits_withSeed(norm.data() + start, i - start, word_seed));
  }
  for (size_t w = 0; w < words.size(); ++w) {
    acc.Add(words[w], 1.0f);
    if (options_.word_bigrams && w + 1 < words.size()) {
      acc.Add(Mix64(words[w] * 0x9E3779B97F4A7C15ull ^ (words[w + 1] + bigram_seed)), 1.0f);
    }
  }
  const size_t words_end = out->size();

  // 2. Character n-grams, in a table of their own so the families are normalised apart.
  if (char_sizes > 0) {
    Accumulator char_acc(PositionTable(scratch, table_size), out, mask_);
    // Entries appended by char_acc must not merge with word entries by position: the table
    // was cleared, so a char n-gram that collides with a word index gets its own entry and
    // the final merge below folds it in.
    for (int len = options_.char_ngram_min; len <= options_.char_ngram_max; ++len) {
      const uint64_t seed = DeriveSeed(options_.seed, kCharStream + static_cast<uint64_t>(len));
      const size_t ulen = static_cast<size_t>(len);
      if (n < ulen) continue;
      for (size_t i = 0; i + ulen <= n; ++i) {
        char_acc.Add(XXH3_64bits_withSeed(norm.data() + i, ulen, seed), 1.0f);
      }
    }
  }
  const size_t chars_end = out->size();

  const bool have_words = words_end > 0;
  const bool have_chars = chars_end > words_end;
  const float word_weight = have_chars ? std::sqrt(options_.word_share) : 1.0f;
  const float char_weight = have_words ? std::sqrt(1.0f - options_.word_share) : 1.0f;
  ScaleRange(out, 0, words_end, word_weight);
  ScaleRange(out, words_end, chars_end, char_weight);

  // 3. Tags, outside the normalisation.
  const uint64_t tag_seed = DeriveSeed(options_.seed, kTagStream);
  for (std::string_view tag : tags) {
    const uint64_t h = XXH3_64bits_withSeed(tag.data(), tag.size(), tag_seed);
    // Tags are always positive: they act as indicator features.
    out->push_back(static_cast<uint32_t>(h) & mask_, options_.tag_value);
  }

  // 4. Merge the rare cross-family collisions so indices are unique.
  if (have_chars || !tags.empty()) {
    PositionTable table(scratch, table_size);
    const size_t total = out->size();
    size_t write = 0;
    for (size_t read = 0; read < total; ++read) {
      const uint32_t index = out->index[read];
      const float value = out->value[read];
      size_t slot = Mix64(index) & table.mask();
      while (true) {
        const int64_t p = table.Get(slot);
        if (p < 0) {
          table.Set(slot, write);
          out->index[write] = index;
          out->value[write] = value;
          ++write;
          break;
        }
        if (out->index[static_cast<size_t>(p)] == index) {
          out->value[static_cast<size_t>(p)] += value;
          break;
        }
        slot = (slot + 1) & table.mask();
      }
    }
    out->index.resize(write);
    out->value.resize(write);
  }
}

SparseFeatures FeatureHasher::Hash(std::string_view text,
                                   std::span<const std::string_view> tags) const {
  SparseFeatures out;
  Scratch scratch;
  Hash(text, tags, &out, &scratch);
  return out;
}

}  // namespace messplus::router
