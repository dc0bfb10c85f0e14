// ReplayBackend: a model worker's backend that answers from captured data.
//
// A call is looked up by its request id among the dataset's ids (the CSV's id column), else
// by its exact prompt text. The reply carries the recorded cost of this model on that row,
// the recorded satisfaction as metadata "recorded_satisfaction" (and "row", the row's id),
// and latency_s when the file has latencies; the worker sleeps the recorded latency times
// latency_scale (0: no sleep), waking early when asked to stop. An unknown prompt is an
// error reply.
//
// Thread safety: Call() may run in several threads at once (the dataset is read-only).
#pragma once

#include <string>
#include <unordered_map>

#include "pipeline/worker.h"
#include "simulator/dataset.h"

namespace messplus::tools {

class ReplayBackend final : public pipeline::ModelBackend {
 public:
  // InvalidArgument when the dataset has no column for `model`.
  static Result<std::unique_ptr<ReplayBackend>> Create(const simulator::Dataset& data,
                                                       const std::string& model,
                                                       double latency_scale);

  void Call(const pipeline::ModelCall& call, pipeline::ModelReply* reply,
            const pipeline::StopSignal& stop) override;

  class PassKey {
    friend class ReplayBackend;
    PassKey() = default;
  };
  ReplayBackend(PassKey, const simulator::Dataset& data, size_t model, double latency_scale);

 private:
  const simulator::Dataset& data_;
  const size_t model_;
  const double latency_scale_;
  std::unordered_map<std::string, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_prompt_;
};

}  // namespace messplus::tools
