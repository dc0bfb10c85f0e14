// What the load generator sends: prompts (from a captured data file or generated), tenants
// mixed by given shares, and the satisfaction its feedback reports.
//
// Everything is seeded: the same options and seed give the same prompt, task and tenant for
// request i, whatever order the replies come back in (each draw is keyed by the request's
// sequence number, not by the order of events).
//
// Thread safety: const objects may be read from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "router/status.h"
#include "simulator/dataset.h"

namespace messplus::loadgen {

// A deterministic uniform draw in [0, 1) for (seed, stream, sequence number).
double DrawUniform(uint64_t seed, uint64_t stream, uint64_t seq);

// ---- tenants ------------------------------------------------------------------------------

struct TenantShare {
  std::string name;
  double share = 0.0;  // > 0; shares are normalised to sum to 1
};

// Parses "name=share" specs (e.g. "gold=0.2"). InvalidArgument naming the bad spec: no '=',
// an empty name, a share that is not a positive finite number, or a name given twice.
Result<std::vector<TenantShare>> ParseTenantShares(const std::vector<std::string>& specs);

class TenantMix {
 public:
  TenantMix() = default;  // empty: every request leaves the tenant out (the default tenant)
  TenantMix(std::vector<TenantShare> shares, uint64_t seed);

  bool empty() const { return shares_.empty(); }
  // The tenant of request `seq` ("" when the mix is empty).
  const std::string& Pick(uint64_t seq) const;
  const std::vector<TenantShare>& shares() const { return shares_; }

 private:
  std::vector<TenantShare> shares_;
  std::vector<double> cumulative_;  // normalised, last = 1
  uint64_t seed_ = 0;
};

// ---- prompts ------------------------------------------------------------------------------

enum class LengthDistribution { kFixed, kUniform, kExponential };
// "fixed", "uniform" (on [mean/2, 3 mean/2]), "exponential"; InvalidArgument otherwise.
Result<LengthDistribution> ParseLengthDistribution(std::string_view name);
std::string_view LengthDistributionName(LengthDistribution d);

struct GeneratedPromptOptions {
  double mean_chars = 200.0;  // >= 1
  LengthDistribution distribution = LengthDistribution::kFixed;
  size_t pool = 4096;  // distinct prompts generated at start and used round robin
  std::string task;    // task tag of every request ("" = none)
};

// One request's content. Views into the PromptSource (valid while it lives).
struct PromptItem {
  std::string_view text;
  std::string_view task;
  int64_t row = -1;  // the data row, or -1 for generated prompts
};

class PromptSource {
 public:
  // Rows of `data` in a seeded random order, cycling when the run needs more requests than
  // rows. `data` must outlive the source. InvalidArgument when it has no rows.
  static Result<PromptSource> FromDataset(const simulator::Dataset& data, uint64_t seed);
  // English-like prompts of seeded words with the given length distribution.
  // InvalidArgument for a mean below 1 or an empty pool.
  static Result<PromptSource> Generated(const GeneratedPromptOptions& options, uint64_t seed);

  PromptItem Get(uint64_t seq) const;
  const simulator::Dataset* data() const { return data_; }
  size_t size() const { return data_ != nullptr ? order_.size() : texts_.size(); }
  double mean_chars() const;  // of the prompts in the pool (or of the data's rows)

 private:
  const simulator::Dataset* data_ = nullptr;
  std::vector<size_t> order_;       // data rows, shuffled
  std::vector<std::string> texts_;  // generated pool
  std::string task_;
};

// ---- feedback -----------------------------------------------------------------------------

// The satisfaction a feedback reports for one model that answered request `seq` (`slot`: its
// position in the reply's models_run, 0 = the served model). With a data row and a model the
// data knows: the recorded score. Otherwise a Bernoulli with probability `p`, drawn from
// (seed, seq, slot), so it is the same in every run.
double FeedbackSatisfaction(const simulator::Dataset* data, int64_t row, int data_model, double p,
                            uint64_t seed, uint64_t seq, uint32_t slot);

}  // namespace messplus::loadgen
