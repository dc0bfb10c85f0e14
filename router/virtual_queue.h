// VirtualQueue: how far behind its SLA one class of requests (a tenant) is.
//
// The MESS+ virtual queue Q <- max(0, Q + alpha - s) accumulates the shortfall of the
// satisfaction s in [0, 1] against the target alpha. Two copies are kept, as in the paper:
//   * q_all: moved by the satisfaction of every request. Only an offline replay knows it
//     (a live router never learns the outcome of requests without feedback); it is the
//     yardstick for evaluation.
//   * q_tracked: moved only by feedback that arrived. Decisions use this one.
// Since max(0, x) >= x, the shortfall over any stretch of requests is bounded by the queue's
// growth over it: sum(alpha - s) <= Q_end - Q_start. That bound is what SLA guarantees rest on.
//
// Thread safety: none (a value type; the owner synchronises).
#pragma once

#include <cstdint>

#include "router/status.h"

namespace messplus::router {

class VirtualQueue {
 public:
  // REQUIRES: alpha in [0, 1], initial >= 0 (checked by the router's config validation).
  explicit VirtualQueue(double alpha = 0.0, double initial = 0.0)
      : alpha_(alpha), q_all_(initial), q_tracked_(initial) {}

  double alpha() const { return alpha_; }
  double q_all() const { return q_all_; }
  double q_tracked() const { return q_tracked_; }

  // Q <- max(0, Q + alpha - s). InvalidArgument (and no change) unless s is in [0, 1].
  Status UpdateAll(double satisfaction);
  Status UpdateTracked(double satisfaction);

  // Restores a saved state (snapshots, checkpoints). InvalidArgument on negative or NaN.
  Status Restore(double q_all, double q_tracked);

  // The update rule itself, for callers that keep their own queues.
  static double Step(double q, double alpha, double satisfaction) {
    const double next = q + alpha - satisfaction;
    return next > 0.0 ? next : 0.0;
  }

 private:
  double alpha_;
  double q_all_;
  double q_tracked_;
};

// Checks that a satisfaction value is a number in [0, 1].
Status ValidateSatisfaction(double satisfaction);

}  // namespace messplus::router
