// Helpers for testing stages without sockets: an inline config, a fake clock, a context, and
// an Outbox that records what a stage sends (each message encoded and decoded again, so the
// tests also see exactly what would go on the wire).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "pipeline/clock.h"
#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/metrics.h"
#include "pipeline/runtime.h"

namespace messplus::testing {

inline std::string TestConfigYaml(const std::string& extra = "") {
  return R"(
models:
  - name: small
  - name: medium
  - name: large
tenants:
  - name: gold
    alpha: 0.6
  - name: free
    alpha: 0.5
hashing: {dim_bits: 12}
endpoints:
  frontend: inproc://frontend
  requests: inproc://requests
  features: inproc://features
  decisions: inproc://decisions
  workers: inproc://workers
  replies: inproc://replies
  feedback: inproc://feedback
  updates: inproc://updates
  snapshots: inproc://snapshots
)" + extra;
}

struct Sent {
  size_t port;
  pipeline::Envelope to;
  pipeline::Message message;
};

class RecordingOutbox final : public pipeline::Outbox {
 public:
  explicit RecordingOutbox(pipeline::StageMetrics& metrics) : metrics_(metrics) {}

  bool Send(size_t port, pipeline::MessageRef message, const pipeline::Envelope* to) override {
    if (refuse_) {
      metrics_.Rejected(pipeline::Reason::kSendFailed);
      return false;
    }
    const std::string bytes = pipeline::EncodeToString(message);
    pipeline::Decoder decoder(pipeline::Limits{});
    Sent s{port, to ? *to : pipeline::Envelope(), {}};
    Status st = decoder.Decode(bytes, &s.message);
    EXPECT_TRUE(st.ok()) << "a stage sent an invalid message: " << st.ToString();
    sent_.push_back(std::move(s));
    return true;
  }
  void Reject(const pipeline::Inbound& in, pipeline::Reason reason, std::string_view detail,
              std::string_view request_id) override {
    metrics_.Rejected(reason);
    rejects_.push_back({reason, std::string(detail)});
    if (!in.from.empty()) {
      Send(in.port, pipeline::MakeError(reason, std::string(detail), std::string(request_id)),
           &in.from);
    }
  }
  void Count(pipeline::Reason reason, double n) override { metrics_.Rejected(reason, n); }

  std::vector<Sent>& sent() { return sent_; }
  void Clear() { sent_.clear(); }
  void set_refuse(bool refuse) { refuse_ = refuse; }
  const std::vector<std::pair<pipeline::Reason, std::string>>& rejects() const { return rejects_; }

  // Messages of type T sent on `port`.
  template <typename T>
  std::vector<T> Of(size_t port) const {
    std::vector<T> out;
    for (const Sent& s : sent_) {
      if (s.port == port && std::holds_alternative<T>(s.message))
        out.push_back(std::get<T>(s.message));
    }
    return out;
  }

 private:
  pipeline::StageMetrics& metrics_;
  std::vector<Sent> sent_;
  std::vector<std::pair<pipeline::Reason, std::string>> rejects_;
  bool refuse_ = false;
};

// Everything a stage borrows, for one test.
struct StageFixture {
  explicit StageFixture(const std::string& name, const std::string& extra_yaml = "")
      : config(Parse(extra_yaml)),
        metrics(pipeline::StageMetrics::Create(name, {"p0", "p1", "p2", "p3"})),
        ctx{config, pipeline::NullLogger(), clock, *metrics},
        out(*metrics) {}

  static pipeline::Config Parse(const std::string& extra) {
    Result<pipeline::Config> c = pipeline::ParseConfig(TestConfigYaml(extra));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : pipeline::Config();
  }

  // Delivers one message to the stage as the runtime would.
  void Deliver(pipeline::Stage& stage, size_t port, pipeline::Message message,
               pipeline::Envelope from = {}) {
    pipeline::Inbound in{port, from, message};
    stage.OnMessage(in, out);
  }
  void Advance(pipeline::Stage& stage, pipeline::SteadyClock::duration d) {
    clock.Advance(d);
    stage.OnTick(clock.Now(), out);
  }

  pipeline::Config config;
  pipeline::FakeClock clock;
  std::unique_ptr<pipeline::StageMetrics> metrics;
  pipeline::StageContext ctx;
  RecordingOutbox out;
};

}  // namespace messplus::testing
