#include "stages/embed/embed_stage.h"

#include <cmath>
#include <string_view>

#include "router/rng.h"

namespace messplus::stages::embed {

using pipeline::Config;
using pipeline::EmbedReply;
using pipeline::EmbedRequest;
using pipeline::Inbound;
using pipeline::MsgType;
using pipeline::Outbox;
using pipeline::PortSpec;
using pipeline::Reason;
using pipeline::Request;
using pipeline::StageContext;
using pipeline::TimePoint;
using pipeline::TypeBit;

namespace {
constexpr uint64_t kDenseSeed = 0x64656e7365ull;  // "dense"
}  // namespace

std::vector<PortSpec> EmbedStage::Ports(const Config& c) {
  const int hwm = c.embed.hwm;
  std::vector<PortSpec> ports = {
      {"requests", zmq::socket_type::pull, c.endpoints.requests, false, true,
       TypeBit(MsgType::kRequest), false, false, hwm},
      {"features", zmq::socket_type::push, c.endpoints.features, true, false, 0, false, false, hwm},
  };
  if (!c.endpoints.embedder.empty()) {
    ports.push_back({"embedder", zmq::socket_type::dealer, c.endpoints.embedder, false, true,
                     TypeBit(MsgType::kEmbedReply), false, true, hwm});
  }
  return ports;
}

EmbedStage::EmbedStage(StageContext& ctx)
    : ctx_(ctx),
      has_embedder_(!ctx.config.endpoints.embedder.empty()),
      hasher_(ctx.config.router.hashing) {
  features_.dim = hasher_.dim();
}

void EmbedStage::OnMessage(Inbound& in, Outbox& out) {
  if (auto* request = std::get_if<Request>(&in.message)) {
    const TimePoint now = ctx_.clock.Now();
    if (has_embedder_ && now >= embedder_retry_at_) {
      const uint64_t id = ++next_embed_id_;
      if (out.Send(kEmbedder, EmbedRequest{id, request->text})) {
        pending_.Insert(id, std::move(*request), now + ctx_.config.embed.embedder_timeout);
        return;
      }
    }
    Emit(std::move(*request), nullptr, out);
  } else if (auto* reply = std::get_if<EmbedReply>(&in.message)) {
    Request* request = pending_.Find(reply->id);
    if (request == nullptr) {
      out.Count(Reason::kUnknownRequest);  // late: the request went on without it
      return;
    }
    Request r = std::move(*request);
    pending_.Erase(reply->id);
    Emit(std::move(r), &reply->vector, out);
  }
}

void EmbedStage::AddDense(const std::vector<float>& vector, router::SparseFeatures* f) {
  double norm = 0.0;
  for (float v : vector) norm += static_cast<double>(v) * v;
  norm = std::sqrt(norm);
  if (!(norm > 0.0)) return;
  const double scale = ctx_.config.embed.embedding_weight / norm;
  const uint32_t mask = hasher_.dim() - 1;
  positions_.clear();
  for (size_t k = 0; k < f->size(); ++k) positions_[f->index[k]] = k;
  for (size_t i = 0; i < vector.size(); ++i) {
    const uint32_t index = static_cast<uint32_t>(Rng::Mix(kDenseSeed, i)) & mask;
    const float value = static_cast<float>(vector[i] * scale);
    auto [it, inserted] = positions_.try_emplace(index, f->size());
    if (inserted) {
      f->push_back(index, value);
    } else {
      f->value[it->second] += value;
    }
  }
}

void EmbedStage::Emit(Request&& request, const std::vector<float>* dense, Outbox& out) {
  task_tag_.assign("task=").append(request.task);  // in place: no temporary strings
  tenant_tag_.assign("tenant=").append(request.tenant);
  std::string_view tags[2];
  size_t n = 0;
  if (!request.task.empty()) tags[n++] = task_tag_;
  tags[n++] = tenant_tag_;
  hasher_.Hash(request.text, std::span<const std::string_view>(tags, n), &features_.features,
               &scratch_);
  if (dense != nullptr) AddDense(*dense, &features_.features);
  // Swapped, not moved: the decoder's slot keeps warm buffers for the next request.
  std::swap(features_.request, request);
  if (!held_.empty() || !out.Send(kFeatures, features_)) held_.push_back(std::move(features_));
}

void EmbedStage::OnTick(TimePoint now, Outbox& out) {
  while (!held_.empty() && out.Send(kFeatures, held_.front())) held_.pop_front();
  const size_t late = pending_.Expire(now, [&](const uint64_t&, Request&& r) {
    out.Count(Reason::kTimeout);
    Emit(std::move(r), nullptr, out);
  });
  if (late > 0 && now >= embedder_retry_at_) {
    embedder_retry_at_ = now + ctx_.config.embed.embedder_retry;
    ctx_.log->warn("embed: the embedder did not answer within {} ms; hashing only for {} ms",
                   ctx_.config.embed.embedder_timeout.count(),
                   ctx_.config.embed.embedder_retry.count());
  }
}

void EmbedStage::OnShutdown(Outbox& out) {
  pending_.Drain([&](const uint64_t&, Request&& r) { Emit(std::move(r), nullptr, out); });
  while (!held_.empty() && out.Send(kFeatures, held_.front())) held_.pop_front();
  if (!held_.empty()) out.Count(Reason::kShutdown, static_cast<double>(held_.size()));
}

}  // namespace messplus::stages::embed
