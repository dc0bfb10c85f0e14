#include "tools/loadgen/workload.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "router/rng.h"

namespace messplus::loadgen {
namespace {

constexpr uint64_t kTenantStream = 0x74656e616e74ull;  // "tenant"
constexpr uint64_t kPromptStream = 0x70726f6d7074ull;  // "prompt"
constexpr uint64_t kOrderStream = 0x6f72646572ull;     // "order"
constexpr uint64_t kSatStream = 0x736174ull;           // "sat"

// A small vocabulary: enough variety that hashed features differ from prompt to prompt.
constexpr std::string_view kWords[] = {
    "the",      "energy",   "model",   "router",    "question", "answer",   "why",
    "how",      "does",     "a",       "physics",   "ball",     "falls",    "faster",
    "water",    "boils",    "at",      "high",      "altitude", "explain",  "simple",
    "terms",    "history",  "of",      "rome",      "empire",   "trade",    "routes",
    "compute",  "integral", "sine",    "function",  "between",  "zero",     "and",
    "pi",       "protein",  "folding", "cell",      "membrane", "voltage",  "current",
    "resistor", "circuit",  "market",  "price",     "demand",   "supply",   "curve",
    "poem",     "about",    "autumn",  "leaves",    "river",    "mountain", "translate",
    "sentence", "into",     "french",  "summarise", "article",  "climate",  "policy",
    "which",    "option",   "is",      "correct",   "because",  "light",    "travels",
    "through",  "glass",    "slower",  "than",      "air",      "list",     "three",
    "reasons",  "for",      "sleep",   "memory",    "learning", "grammar",  "verb"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

}  // namespace

double DrawUniform(uint64_t seed, uint64_t stream, uint64_t seq) {
  Rng rng(Rng::Mix(Rng::Mix(seed, stream), seq));
  return rng.Uniform();
}

Result<std::vector<TenantShare>> ParseTenantShares(const std::vector<std::string>& specs) {
  std::vector<TenantShare> out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("tenant '" + spec + "': expected name=share, e.g. gold=0.2");
    }
    TenantShare t;
    t.name = spec.substr(0, eq);
    const std::string value = spec.substr(eq + 1);
    char* end = nullptr;
    t.share = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(t.share) ||
        !(t.share > 0.0)) {
      return Status::InvalidArgument("tenant '" + spec + "': the share must be a number > 0");
    }
    for (const TenantShare& other : out) {
      if (other.name == t.name) {
        return Status::InvalidArgument("tenant '" + t.name + "' is given twice");
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

TenantMix::TenantMix(std::vector<TenantShare> shares, uint64_t seed)
    : shares_(std::move(shares)), seed_(seed) {
  double total = 0.0;
  for (const TenantShare& t : shares_) total += t.share;
  double running = 0.0;
  for (TenantShare& t : shares_) {
    t.share /= total;
    running += t.share;
    cumulative_.push_back(running);
  }
  if (!cumulative_.empty()) cumulative_.back() = 1.0;
}

const std::string& TenantMix::Pick(uint64_t seq) const {
  static const std::string kNone;
  if (shares_.empty()) return kNone;
  const double u = DrawUniform(seed_, kTenantStream, seq);
  const size_t k = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) -
                                       cumulative_.begin());
  return shares_[std::min(k, shares_.size() - 1)].name;
}

Result<LengthDistribution> ParseLengthDistribution(std::string_view name) {
  if (name == "fixed") return LengthDistribution::kFixed;
  if (name == "uniform") return LengthDistribution::kUniform;
  if (name == "exponential" || name == "exp") return LengthDistribution::kExponential;
  return Status::InvalidArgument("prompt length distribution '" + std::string(name) +
                                 "': expected fixed, uniform or exponential");
}

std::string_view LengthDistributionName(LengthDistribution d) {
  switch (d) {
    case LengthDistribution::kFixed:
      return "fixed";
    case LengthDistribution::kUniform:
      return "uniform";
    case LengthDistribution::kExponential:
      return "exponential";
  }
  return "fixed";
}

Result<PromptSource> PromptSource::FromDataset(const simulator::Dataset& data, uint64_t seed) {
  if (data.rows() == 0) return Status::InvalidArgument("the data file has no rows");
  PromptSource s;
  s.data_ = &data;
  s.order_.resize(data.rows());
  for (size_t i = 0; i < s.order_.size(); ++i) s.order_[i] = i;
  Rng rng(Rng::Mix(seed, kOrderStream));
  rng.Shuffle(s.order_.begin(), s.order_.end());
  return s;
}

Result<PromptSource> PromptSource::Generated(const GeneratedPromptOptions& options, uint64_t seed) {
  if (!(options.mean_chars >= 1.0) || !std::isfinite(options.mean_chars)) {
    return Status::InvalidArgument("the prompt length must be >= 1 character");
  }
  if (options.pool == 0) return Status::InvalidArgument("the prompt pool must not be empty");
  PromptSource s;
  s.task_ = options.task;
  Rng rng(Rng::Mix(seed, kPromptStream));
  s.texts_.resize(options.pool);
  for (std::string& text : s.texts_) {
    double length = options.mean_chars;
    if (options.distribution == LengthDistribution::kUniform) {
      length = options.mean_chars * (0.5 + rng.Uniform());
    } else if (options.distribution == LengthDistribution::kExponential) {
      length = -std::log1p(-rng.Uniform()) * options.mean_chars;
    }
    const size_t n = std::max<size_t>(1, static_cast<size_t>(std::llround(length)));
    text.reserve(n + 16);
    // Words until the length is reached, then cut to exactly n characters.
    while (text.size() < n) {
      if (!text.empty()) text.push_back(' ');
      text.append(kWords[rng.Below(kNumWords)]);
    }
    text.resize(n);
  }
  return s;
}

PromptItem PromptSource::Get(uint64_t seq) const {
  if (data_ != nullptr) {
    const size_t row = order_[seq % order_.size()];
    return {data_->prompts[row], data_->tasks[row], static_cast<int64_t>(row)};
  }
  return {texts_[seq % texts_.size()], task_, -1};
}

double PromptSource::mean_chars() const {
  double sum = 0.0;
  if (data_ != nullptr) {
    for (const std::string& p : data_->prompts) sum += static_cast<double>(p.size());
    return data_->rows() > 0 ? sum / static_cast<double>(data_->rows()) : 0.0;
  }
  for (const std::string& t : texts_) sum += static_cast<double>(t.size());
  return texts_.empty() ? 0.0 : sum / static_cast<double>(texts_.size());
}

double FeedbackSatisfaction(const simulator::Dataset* data, int64_t row, int data_model, double p,
                            uint64_t seed, uint64_t seq, uint32_t slot) {
  if (data != nullptr && row >= 0 && data_model >= 0) {
    return data->Score(static_cast<size_t>(row), static_cast<size_t>(data_model));
  }
  return DrawUniform(seed, kSatStream + slot, seq) < p ? 1.0 : 0.0;
}

}  // namespace messplus::loadgen
