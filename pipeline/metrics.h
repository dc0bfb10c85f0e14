// StageMetrics: one stage's Prometheus metrics, resolved once and incremented per message.
//
// Every stage has these (label stage="<name>"):
//   messplus_messages_received_total{socket, type}   decoded messages taken in
//   messplus_messages_sent_total{socket, type}       messages a socket accepted
//   messplus_rejected_total{reason}                  rejected or dropped, by Reason name
//   messplus_handle_seconds                          time in the stage's handler per message
// and the stage adds its own (SLA gauges, in-flight counts) to registry() at construction.
// With a port, an HTTP endpoint on 127.0.0.1:<port>/metrics serves them (prometheus-cpp
// pull Exposer); Text() gives the same text in-process (tests, `up` summaries).
//
// Thread safety: counters may be incremented from any thread (prometheus-cpp metrics are
// atomic); the per-(socket, type) handle cache is only touched by the stage's thread.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "pipeline/protocol.h"
#include "router/status.h"

namespace prometheus {
class Exposer;
}

namespace messplus::pipeline {

class StageMetrics {
 public:
  // `sockets`: names of the stage's sockets (the `socket` label), in port order. No HTTP
  // endpoint until Serve.
  static std::unique_ptr<StageMetrics> Create(const std::string& stage,
                                              const std::vector<std::string>& sockets);
  // Starts the HTTP endpoint on 127.0.0.1:`port` (0: none); Unavailable when the port cannot
  // be bound. A stage host calls it once its sockets are bound, so that an answering /metrics
  // means the stage takes messages.
  Status Serve(int port);
  ~StageMetrics();
  StageMetrics(const StageMetrics&) = delete;
  StageMetrics& operator=(const StageMetrics&) = delete;

  const std::string& stage() const { return stage_; }
  prometheus::Registry& registry() { return *registry_; }

  void Received(size_t socket, MsgType type) {
    Handle(&received_, received_family_, socket, type).Increment();
  }
  void Sent(size_t socket, MsgType type) { Handle(&sent_, sent_family_, socket, type).Increment(); }
  void Rejected(Reason reason, double n = 1.0) {
    rejected_[static_cast<size_t>(reason)]->Increment(n);
  }
  void ObserveHandleSeconds(double seconds) { handle_seconds_->Observe(seconds); }

  // Test hooks and summaries.
  double RejectedCount(Reason reason) const {
    return rejected_[static_cast<size_t>(reason)]->Value();
  }
  double RejectedTotal() const;
  double ReceivedCount(size_t socket, MsgType type) const;
  double SentCount(size_t socket, MsgType type) const;
  // The Prometheus text exposition of every metric of this stage.
  std::string Text() const;
  // The value of one counter or gauge whose labels include `labels` (any thread); nullopt
  // when there is none.
  std::optional<double> Value(std::string_view name, const prometheus::Labels& labels = {}) const;

  class PassKey {
    friend class StageMetrics;
    PassKey() = default;
  };
  StageMetrics(PassKey, std::string stage, std::vector<std::string> sockets);

 private:
  using Cache = std::vector<std::array<prometheus::Counter*, kNumMsgTypes>>;
  prometheus::Counter& Handle(Cache* cache, prometheus::Family<prometheus::Counter>* family,
                              size_t socket, MsgType type);

  std::string stage_;
  std::vector<std::string> sockets_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* received_family_;
  prometheus::Family<prometheus::Counter>* sent_family_;
  Cache received_, sent_;
  std::array<prometheus::Counter*, kNumReasons> rejected_{};
  prometheus::Histogram* handle_seconds_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

// The value of a sample in Prometheus text (a scrape): the first line of metric `name`
// whose labels include every `labels` pair. nullopt when there is none.
std::optional<double> ParseMetric(std::string_view text, std::string_view name,
                                  const prometheus::Labels& labels = {});

}  // namespace messplus::pipeline
