// PoissonArrivals: the open-loop arrival process of the load generator.
//
// Request i is due at t_i = X_1 + ... + X_i after the start, the gaps X_k independent and
// exponential with mean 1/rate (a Poisson process of `rate` requests per second). The gaps
// come from a seeded messplus::Rng (inverse CDF: X = -ln(1 - U) / rate), so a seed gives the
// same schedule on every machine and in every run. Times are accumulated in double
// nanoseconds and rounded once per arrival, so rounding does not drift the rate.
//
// The schedule does not depend on when requests actually go out: a sender that falls behind
// still charges each request its due time (no coordinated omission).
//
// Thread safety: none (a value owned by the sending thread).
#pragma once

#include <cstdint>
#include <vector>

#include "router/rng.h"

namespace messplus::loadgen {

class PoissonArrivals {
 public:
  // REQUIRES: rate_per_s > 0 (finite).
  PoissonArrivals(double rate_per_s, uint64_t seed);

  // The due time of the next arrival, in ns after the start (non-decreasing).
  int64_t Next();
  double rate_per_s() const { return rate_; }

 private:
  double rate_;
  double mean_gap_ns_;
  double t_ns_ = 0.0;
  Rng rng_;
};

// The first `n` due times of PoissonArrivals(rate_per_s, seed), ns after the start.
std::vector<int64_t> PoissonSchedule(double rate_per_s, uint64_t seed, size_t n);

}  // namespace messplus::loadgen
