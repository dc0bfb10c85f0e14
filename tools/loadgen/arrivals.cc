#include "tools/loadgen/arrivals.h"

#include <cmath>

namespace messplus::loadgen {

namespace {
constexpr uint64_t kArrivalStream = 0x61727269766c73ull;  // "arrivls"
}  // namespace

PoissonArrivals::PoissonArrivals(double rate_per_s, uint64_t seed)
    : rate_(rate_per_s), mean_gap_ns_(1e9 / rate_per_s), rng_(Rng::Mix(seed, kArrivalStream)) {}

int64_t PoissonArrivals::Next() {
  // 1 - U is in (0, 1], so the log is finite.
  t_ns_ += -std::log1p(-rng_.Uniform()) * mean_gap_ns_;
  return std::llround(t_ns_);
}

std::vector<int64_t> PoissonSchedule(double rate_per_s, uint64_t seed, size_t n) {
  PoissonArrivals a(rate_per_s, seed);
  std::vector<int64_t> out(n);
  for (int64_t& t : out) t = a.Next();
  return out;
}

}  // namespace messplus::loadgen
