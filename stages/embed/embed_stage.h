// The embed stage: request text -> hashed sparse features (router::FeatureHasher).
//
// Sockets (PortSpec order = the Port enum):
//   requests  PULL   connect  <- ingest: request
//   features  PUSH   bind     -> route replicas: features
//   embedder  DEALER connect  <-> optional external embedding worker (endpoints.embedder):
//                               embed_request out, embed_reply in
//
// Features are the hashed text plus the tags "task=<task>" (when the request has a task) and
// "tenant=<tenant>". With an embedder, each request is first sent as embed_request {id,
// text}; its embed_reply's vector is L2-normalised, scaled by embed.embedding_weight and
// added as dense features whose indices are hashed with their own seed (so they collide with
// text features no more than any two features do; a collision adds the values). A request
// whose embedding does not arrive within embed.embedder_timeout goes on with hashing only,
// and the embedder is not asked again for embed.embedder_retry (counted as `timeout`).
// When the features socket refuses a message (no route replica connected yet, or its HWM
// reached), the stage holds it, stops reading requests and sends it again on the next tick:
// back-pressure, not loss.
//
// Thread safety: one thread (the runtime's).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/expiring_map.h"
#include "pipeline/runtime.h"
#include "router/feature_hasher.h"

namespace messplus::stages::embed {

class EmbedStage final : public pipeline::Stage {
 public:
  enum Port : size_t { kRequests = 0, kFeatures = 1, kEmbedder = 2 };
  static std::vector<pipeline::PortSpec> Ports(const pipeline::Config& config);

  explicit EmbedStage(pipeline::StageContext& ctx);

  void OnMessage(pipeline::Inbound& in, pipeline::Outbox& out) override;
  void OnTick(pipeline::TimePoint now, pipeline::Outbox& out) override;
  bool Accepting(size_t port) const override { return port != kRequests || held_.empty(); }
  bool Idle() const override { return pending_.empty() && held_.empty(); }
  void OnShutdown(pipeline::Outbox& out) override;

  // Adds the dense embedding to `features` (see the file comment). Exposed for tests.
  void AddDense(const std::vector<float>& vector, router::SparseFeatures* features);

 private:
  void Emit(pipeline::Request&& request, const std::vector<float>* dense, pipeline::Outbox& out);

  pipeline::StageContext& ctx_;
  const bool has_embedder_;
  router::FeatureHasher hasher_;
  router::FeatureHasher::Scratch scratch_;
  pipeline::Features features_;  // reused output message
  std::string task_tag_, tenant_tag_;
  std::unordered_map<uint32_t, size_t> positions_;  // scratch of AddDense
  uint64_t next_embed_id_ = 0;
  pipeline::ExpiringMap<uint64_t, pipeline::Request> pending_;
  pipeline::TimePoint embedder_retry_at_{};
  std::deque<pipeline::Features> held_;  // refused by the features socket, oldest first
};

}  // namespace messplus::stages::embed
