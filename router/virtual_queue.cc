#include "router/virtual_queue.h"

#include <cmath>
#include <string>

namespace messplus::router {

Status ValidateSatisfaction(double s) {
  if (!(s >= 0.0 && s <= 1.0)) {  // also rejects NaN
    return Status::InvalidArgument("satisfaction must be a number in [0, 1], got " +
                                   std::to_string(s));
  }
  return Status::Ok();
}

Status VirtualQueue::UpdateAll(double s) {
  MESSPLUS_RETURN_IF_ERROR(ValidateSatisfaction(s));
  q_all_ = Step(q_all_, alpha_, s);
  return Status::Ok();
}

Status VirtualQueue::UpdateTracked(double s) {
  MESSPLUS_RETURN_IF_ERROR(ValidateSatisfaction(s));
  q_tracked_ = Step(q_tracked_, alpha_, s);
  return Status::Ok();
}

Status VirtualQueue::Restore(double q_all, double q_tracked) {
  if (!(q_all >= 0.0) || !(q_tracked >= 0.0) || !std::isfinite(q_all) ||
      !std::isfinite(q_tracked)) {
    return Status::InvalidArgument("queue lengths must be finite and >= 0");
  }
  q_all_ = q_all;
  q_tracked_ = q_tracked;
  return Status::Ok();
}

}  // namespace messplus::router
