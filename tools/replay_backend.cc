#include "tools/replay_backend.h"

#include <poll.h>

#include <cmath>

#include <fmt/format.h>

namespace messplus::tools {

Result<std::unique_ptr<ReplayBackend>> ReplayBackend::Create(const simulator::Dataset& data,
                                                             const std::string& model,
                                                             double latency_scale) {
  const int m = data.ModelIndex(model);
  if (m < 0) return Status::InvalidArgument("the data has no model '" + model + "'");
  if (!(latency_scale >= 0.0) || !std::isfinite(latency_scale)) {
    return Status::InvalidArgument("--latency-scale must be >= 0");
  }
  return std::make_unique<ReplayBackend>(PassKey(), data, static_cast<size_t>(m), latency_scale);
}

ReplayBackend::ReplayBackend(PassKey, const simulator::Dataset& data, size_t model,
                             double latency_scale)
    : data_(data), model_(model), latency_scale_(latency_scale) {
  for (size_t r = 0; r < data.rows(); ++r) {
    by_id_.emplace(data.ids[r], r);  // first row wins on duplicate ids
    by_prompt_.emplace(data.prompts[r], r);
  }
}

void ReplayBackend::Call(const pipeline::ModelCall& call, pipeline::ModelReply* reply,
                         const pipeline::StopSignal& stop) {
  size_t row = 0;
  if (auto it = by_id_.find(call.request_id); it != by_id_.end()) {
    row = it->second;
  } else if (auto jt = by_prompt_.find(call.text); jt != by_prompt_.end()) {
    row = jt->second;
  } else {
    reply->error = "no recorded answer for request '" + call.request_id + "'";
    return;
  }
  const double score = data_.Score(row, model_);
  reply->answer =
      fmt::format("[recorded answer of {} to {}]", data_.models[model_], data_.ids[row]);
  reply->cost = data_.Cost(row, model_);
  reply->metadata = {{"recorded_satisfaction", fmt::format("{}", score)}, {"row", data_.ids[row]}};
  if (!data_.latency_s.empty()) {
    const double latency = data_.latency_s[row * data_.num_models() + model_];
    if (std::isfinite(latency) && latency >= 0.0) {
      reply->latency_s = latency;
      const int sleep_ms = static_cast<int>(std::lround(latency * latency_scale_ * 1000.0));
      if (sleep_ms > 0) {
        pollfd p{stop.fd(), POLLIN, 0};  // wakes early on stop
        poll(&p, 1, sleep_ms);
      }
    }
  }
}

}  // namespace messplus::tools
