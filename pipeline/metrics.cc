#include "pipeline/metrics.h"

#include <algorithm>

#include <prometheus/exposer.h>
#include <prometheus/text_serializer.h>

namespace messplus::pipeline {

StageMetrics::StageMetrics(PassKey, std::string stage, std::vector<std::string> sockets)
    : stage_(std::move(stage)),
      sockets_(std::move(sockets)),
      registry_(std::make_shared<prometheus::Registry>()) {
  const prometheus::Labels stage_label{{"stage", stage_}};
  received_family_ = &prometheus::BuildCounter()
                          .Name("messplus_messages_received_total")
                          .Help("Decoded messages taken in, by socket and message type")
                          .Labels(stage_label)
                          .Register(*registry_);
  sent_family_ = &prometheus::BuildCounter()
                      .Name("messplus_messages_sent_total")
                      .Help("Messages a socket accepted, by socket and message type")
                      .Labels(stage_label)
                      .Register(*registry_);
  auto& rejected = prometheus::BuildCounter()
                       .Name("messplus_rejected_total")
                       .Help("Messages rejected or dropped, by reason")
                       .Labels(stage_label)
                       .Register(*registry_);
  for (size_t r = 0; r < kNumReasons; ++r) {
    rejected_[r] = &rejected.Add({{"reason", std::string(ReasonName(static_cast<Reason>(r)))}});
  }
  auto& handle = prometheus::BuildHistogram()
                     .Name("messplus_handle_seconds")
                     .Help("Time the stage spent handling one message")
                     .Labels(stage_label)
                     .Register(*registry_);
  handle_seconds_ = &handle.Add(
      {}, prometheus::Histogram::BucketBoundaries{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3,
                                                  1e-2, 5e-2, 0.1, 0.5, 1.0});
  received_.resize(sockets_.size());
  sent_.resize(sockets_.size());
  for (auto& row : received_) row.fill(nullptr);
  for (auto& row : sent_) row.fill(nullptr);
}

StageMetrics::~StageMetrics() = default;

std::unique_ptr<StageMetrics> StageMetrics::Create(const std::string& stage,
                                                   const std::vector<std::string>& sockets) {
  return std::make_unique<StageMetrics>(PassKey(), stage, sockets);
}

Status StageMetrics::Serve(int port) {
  if (port == 0 || exposer_ != nullptr) return Status::Ok();
  try {
    exposer_ = std::make_unique<prometheus::Exposer>("127.0.0.1:" + std::to_string(port), 1);
    exposer_->RegisterCollectable(registry_);
  } catch (const std::exception& e) {
    return Status::Unavailable("metrics of stage " + stage_ + ": cannot listen on 127.0.0.1:" +
                               std::to_string(port) + ": " + e.what());
  }
  return Status::Ok();
}

prometheus::Counter& StageMetrics::Handle(Cache* cache,
                                          prometheus::Family<prometheus::Counter>* family,
                                          size_t socket, MsgType type) {
  prometheus::Counter*& slot = (*cache)[socket][static_cast<size_t>(type)];
  if (slot == nullptr) {
    slot = &family->Add({{"socket", sockets_[socket]}, {"type", std::string(MsgTypeName(type))}});
  }
  return *slot;
}

double StageMetrics::RejectedTotal() const {
  double total = 0.0;
  for (const prometheus::Counter* c : rejected_) total += c->Value();
  return total;
}

double StageMetrics::ReceivedCount(size_t socket, MsgType type) const {
  const prometheus::Counter* c = received_[socket][static_cast<size_t>(type)];
  return c ? c->Value() : 0.0;
}

double StageMetrics::SentCount(size_t socket, MsgType type) const {
  const prometheus::Counter* c = sent_[socket][static_cast<size_t>(type)];
  return c ? c->Value() : 0.0;
}

std::optional<double> StageMetrics::Value(std::string_view name,
                                          const prometheus::Labels& labels) const {
  for (const prometheus::MetricFamily& family : registry_->Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      bool match = true;
      for (const auto& [key, value] : labels) {
        match = match && std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) {
                  return l.name == key && l.value == value;
                });
      }
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return m.counter.value;
      if (family.type == prometheus::MetricType::Gauge) return m.gauge.value;
    }
  }
  return std::nullopt;
}

std::optional<double> ParseMetric(std::string_view text, std::string_view name,
                                  const prometheus::Labels& labels) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    if (line.substr(0, name.size()) != name) continue;
    const std::string_view rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') continue;  // a longer name
    bool match = true;
    for (const auto& [key, value] : labels) {
      const std::string pair = key + "=\"" + value + "\"";
      match = match && rest.find(pair) != std::string_view::npos;
    }
    if (!match) continue;
    const size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    try {
      return std::stod(std::string(line.substr(space + 1)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string StageMetrics::Text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace messplus::pipeline
