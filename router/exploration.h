// ExplorationSchedule: the probability of exploring at request t, p_t = min(1, c / t^(1/4)).
//
// The paper's schedule: exploration decays slowly, so the predictor keeps receiving labels
// for every model, and the share of explored requests over T requests is about
// (4/3) c T^(-1/4). c = 0 disables exploration.
//
// Thread safety: immutable after construction.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "router/rng.h"

namespace messplus::router {

class ExplorationSchedule {
 public:
  // REQUIRES: c >= 0 and finite (validated with the router's configuration).
  explicit ExplorationSchedule(double c = 0.1) : c_(c) {}

  double c() const { return c_; }

  // p_t for the t-th request, t >= 1 (t = 0 is treated as 1).
  double Probability(uint64_t t) const {
    const double tt = t == 0 ? 1.0 : static_cast<double>(t);
    return std::min(1.0, c_ / std::pow(tt, 0.25));
  }

  // Draws the exploration coin for request t.
  bool Draw(uint64_t t, Rng* rng) const { return rng->Bernoulli(Probability(t)); }

 private:
  double c_;
};

}  // namespace messplus::router
