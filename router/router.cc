#include "router/router.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>

#include "router/state_codec.h"
#include "router/virtual_queue.h"

namespace messplus::router {
namespace {

constexpr std::string_view kStateFormat = "messplus.router_state";
constexpr int kStateVersion = 1;
constexpr uint64_t kTaskSeed = 0x7461736bull;  // "task"

bool Ran(const Decision& d, uint32_t model) {
  return std::find(d.run.begin(), d.run.end(), model) != d.run.end();
}

// Feature values from the hasher are at most 1 (text) or the tag value; anything beyond
// this bound is malformed input, and would overflow the predictor's accumulators.
constexpr float kMaxFeatureValue = 1e4f;

Status CheckFeatures(const SparseFeatures& f, uint32_t dim) {
  if (f.index.size() != f.value.size()) {
    return Status::InvalidArgument("features malformed: index and value lengths differ");
  }
  // The common case in two branch-free passes, which vectorise: every index in range, every
  // value finite and bounded (!(|v| <= max) also holds for NaN and infinities). Only a bad
  // vector takes the loop below, which finds the first offender for the message.
  const size_t n = f.size();
  uint32_t bad = 0;
  for (size_t k = 0; k < n; ++k) bad |= static_cast<uint32_t>(f.index[k] >= dim);
  for (size_t k = 0; k < n; ++k) {
    bad |= static_cast<uint32_t>(!(std::fabs(f.value[k]) <= kMaxFeatureValue));
  }
  if (bad == 0) return Status::Ok();
  for (size_t k = 0; k < f.size(); ++k) {
    if (f.index[k] >= dim) {
      return Status::InvalidArgument("feature index " + std::to_string(f.index[k]) +
                                     " out of range (dimension " + std::to_string(dim) + ")");
    }
    if (!std::isfinite(f.value[k]) || std::fabs(f.value[k]) > kMaxFeatureValue) {
      return Status::InvalidArgument("feature value not finite or out of range");
    }
  }
  return Status::Ok();
}

// A model listed twice in one call would be counted twice.
template <typename T>
bool HasDuplicateModel(std::span<const T> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    for (size_t j = i + 1; j < items.size(); ++j) {
      if (items[i].model == items[j].model) return true;
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<Router>> Router::Create(const RouterConfig& config) {
  MESSPLUS_RETURN_IF_ERROR(config.Validate());
  Result<std::unique_ptr<Policy>> policy = MakePolicy(config);
  if (!policy.ok()) return policy.status();
  return std::make_unique<Router>(PassKey(), config, std::move(*policy));
}

Router::Router(PassKey, RouterConfig config, std::unique_ptr<Policy> policy)
    : config_(std::move(config)), policy_(std::move(policy)) {}

Result<uint32_t> Router::ModelIndex(std::string_view name) const {
  for (uint32_t i = 0; i < config_.models.size(); ++i) {
    if (config_.models[i].name == name) return i;
  }
  return Status::NotFound("unknown model '" + std::string(name) + "'");
}

Result<uint32_t> Router::TenantIndex(std::string_view name) const {
  for (uint32_t i = 0; i < config_.tenants.size(); ++i) {
    if (config_.tenants[i].name == name) return i;
  }
  return Status::NotFound("unknown tenant '" + std::string(name) + "'");
}

uint64_t Router::TaskKey(std::string_view task) {
  if (task.empty()) return 0;
  const uint64_t h = XXH3_64bits_withSeed(task.data(), task.size(), kTaskSeed);
  return h == 0 ? 1 : h;
}

Status Router::Decide(const RouteRequest& request, Decision* out) {
  const SparseFeatures* f = request.features;
  Status st;
  if (f == nullptr) {
    st = Status::InvalidArgument("request features missing");
  } else if (request.tenant >= config_.tenants.size()) {
    st = Status::NotFound("unknown tenant index " + std::to_string(request.tenant));
  } else {
    st = CheckFeatures(*f, config_.hashing.dim());
  }
  if (!st.ok()) {
    ++counters_.rejected_requests;
    return st;
  }
  policy_->Decide(request, TaskKey(request.task), out);
  out->origin = config_.instance;
  ++counters_.decisions;
  return Status::Ok();
}

Status Router::CheckDecision(const Decision& d) const {
  if (d.tenant >= config_.tenants.size()) return Status::NotFound("decision has unknown tenant");
  if (d.served >= num_models() || d.chosen >= num_models() || d.run.empty()) {
    return Status::InvalidArgument("decision has no valid served model");
  }
  for (uint32_t m : d.run) {
    if (m >= num_models()) return Status::InvalidArgument("decision runs an unknown model");
  }
  if (d.p.size() != num_models() || d.run_probability.size() != num_models()) {
    return Status::InvalidArgument("decision record does not match the zoo size");
  }
  return Status::Ok();
}

Status Router::RecordCosts(const Decision& decision, std::span<const ModelCost> costs) {
  Status st = CheckDecision(decision);
  if (st.ok() && HasDuplicateModel(costs))
    st = Status::InvalidArgument("a model's cost is given twice");
  for (size_t i = 0; st.ok() && i < costs.size(); ++i) {
    const ModelCost& c = costs[i];
    if (c.model >= num_models()) {
      st = Status::NotFound("cost for unknown model index " + std::to_string(c.model));
    } else if (!Ran(decision, c.model)) {
      st = Status::InvalidArgument("cost for model '" + config_.models[c.model].name +
                                   "', which the decision did not run");
    } else if (!(c.cost >= 0.0) || !std::isfinite(c.cost)) {
      st = Status::InvalidArgument("cost of model '" + config_.models[c.model].name +
                                   "' must be finite and >= 0, got " + std::to_string(c.cost));
    }
  }
  if (!st.ok()) {
    ++counters_.rejected_costs;
    return st;
  }
  policy_->OnCosts(decision, costs);
  return Status::Ok();
}

Status Router::RecordFeedback(const Decision& decision, const SparseFeatures& features,
                              std::span<const ModelLabel> labels) {
  Status st = CheckDecision(decision);
  if (st.ok() && HasDuplicateModel(labels))
    st = Status::InvalidArgument("a model's label is given twice");
  for (size_t i = 0; st.ok() && i < labels.size(); ++i) {
    const ModelLabel& l = labels[i];
    if (l.model >= num_models()) {
      st = Status::NotFound("feedback for unknown model index " + std::to_string(l.model));
    } else if (!Ran(decision, l.model)) {
      st = Status::InvalidArgument("feedback for model '" + config_.models[l.model].name +
                                   "', which the decision did not run");
    } else {
      st = ValidateSatisfaction(l.satisfaction);
    }
  }
  if (st.ok()) st = CheckFeatures(features, config_.hashing.dim());
  if (!st.ok()) {
    ++counters_.rejected_feedback;
    return st;
  }
  policy_->OnFeedback(decision, features, labels);
  return Status::Ok();
}

void Router::NoteInFlight(const Decision& decision) {
  if (decision.origin != config_.instance || CheckDecision(decision).ok() == false) return;
  if (inflight_.count(decision.t) != 0) return;
  if (inflight_free_.empty()) {
    inflight_.emplace(decision.t, decision);
  } else {
    InFlightMap::node_type node = std::move(inflight_free_.back());
    inflight_free_.pop_back();
    node.key() = decision.t;
    node.mapped() = decision;  // copy-assigned: the vectors keep their capacity
    inflight_.insert(std::move(node));
  }
  inflight_order_.push_back(decision.t);
  policy_->OnInFlight(decision, +1.0);
  while (inflight_.size() > kMaxInFlight && !inflight_order_.empty()) {
    auto it = inflight_.find(inflight_order_.front());
    inflight_order_.pop_front();
    if (it == inflight_.end()) continue;  // cleared already
    EraseInFlight(it);
    ++counters_.inflight_dropped;
  }
  TrimInFlightOrder();
}

void Router::ClearInFlight(const Decision& decision) {
  if (decision.origin != config_.instance) return;
  auto it = inflight_.find(decision.t);
  if (it == inflight_.end()) return;
  EraseInFlight(it);
  TrimInFlightOrder();
}

void Router::ForgetInFlight() {
  while (!inflight_.empty()) {
    EraseInFlight(inflight_.begin());
    ++counters_.inflight_forgotten;
  }
  inflight_order_.clear();
}

void Router::EraseInFlight(InFlightMap::iterator it) {
  policy_->OnInFlight(it->second, -1.0);
  InFlightMap::node_type node = inflight_.extract(it);
  if (inflight_free_.size() < kMaxFreeInFlight) inflight_free_.push_back(std::move(node));
}

void Router::TrimInFlightOrder() {
  // Cleared entries leave their t in the order queue; trim them from the front.
  while (!inflight_order_.empty() && !inflight_.count(inflight_order_.front())) {
    inflight_order_.pop_front();
  }
}

Status Router::RecordGroundTruth(const Decision& decision, double satisfaction) {
  MESSPLUS_RETURN_IF_ERROR(CheckDecision(decision));
  MESSPLUS_RETURN_IF_ERROR(ValidateSatisfaction(satisfaction));
  policy_->OnGroundTruth(decision, satisfaction);
  return Status::Ok();
}

std::string Router::SaveState() const {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  pk.pack_map(6);
  pk.pack("format");
  pk.pack(kStateFormat);
  pk.pack("version");
  pk.pack(kStateVersion);
  pk.pack("policy");
  pk.pack(policy_->name());
  pk.pack("models");
  pk.pack_array(static_cast<uint32_t>(config_.models.size()));
  for (const ModelSpec& m : config_.models) pk.pack(m.name);
  pk.pack("tenants");
  pk.pack_array(static_cast<uint32_t>(config_.tenants.size()));
  for (const TenantSpec& t : config_.tenants) pk.pack(t.name);
  pk.pack("learning");
  policy_->SaveLearningState(&pk);
  return std::string(buffer.data(), buffer.size());
}

Status Router::LoadState(std::string_view bytes) {
  msgpack::object_handle handle;
  try {
    size_t offset = 0;
    handle = msgpack::unpack(bytes.data(), bytes.size(), offset);
    if (offset != bytes.size()) return Status::DataLoss("router state has trailing bytes");
  } catch (const std::exception& e) {
    return Status::DataLoss(std::string("router state is not msgpack: ") + e.what());
  }
  Result<StateMap> map = StateMap::Of(handle.get(), "router state");
  if (!map.ok()) return map.status();
  std::string format, policy;
  int version = 0;
  std::vector<std::string> models, tenants;
  MESSPLUS_RETURN_IF_ERROR(map->Get("format", &format));
  MESSPLUS_RETURN_IF_ERROR(map->Get("version", &version));
  MESSPLUS_RETURN_IF_ERROR(map->Get("policy", &policy));
  MESSPLUS_RETURN_IF_ERROR(map->Get("models", &models));
  MESSPLUS_RETURN_IF_ERROR(map->Get("tenants", &tenants));
  if (format != kStateFormat || version != kStateVersion) {
    return Status::DataLoss("router state: unsupported format or version");
  }
  if (policy != policy_->name()) {
    return Status::DataLoss("router state is for policy '" + policy + "', this router runs '" +
                            std::string(policy_->name()) + "'");
  }
  for (size_t i = 0; i < models.size() || i < config_.models.size(); ++i) {
    if (i >= models.size() || i >= config_.models.size() || models[i] != config_.models[i].name) {
      return Status::DataLoss("router state: the zoo differs from the configuration");
    }
  }
  for (size_t i = 0; i < tenants.size() || i < config_.tenants.size(); ++i) {
    if (i >= tenants.size() || i >= config_.tenants.size() ||
        tenants[i] != config_.tenants[i].name) {
      return Status::DataLoss("router state: the tenants differ from the configuration");
    }
  }
  const msgpack::object* learning = map->Find("learning");
  if (learning == nullptr) return Status::DataLoss("router state: learning state missing");
  return policy_->LoadLearningState(*learning);
}

}  // namespace messplus::router
