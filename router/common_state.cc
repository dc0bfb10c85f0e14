#include "router/common_state.h"

#include <algorithm>
#include <cmath>

#include "router/state_codec.h"

namespace messplus::router {

CommonState::CommonState(const RouterConfig& config, double initial_queue)
    : costs(config.models.size()),
      predictor(config.hashing.dim(), config.models.size(), config.predictor) {
  queues.reserve(config.tenants.size());
  for (const TenantSpec& t : config.tenants) queues.emplace_back(t.alpha, initial_queue);
  for (size_t m = 0; m < config.models.size(); ++m) {
    const ModelSpec& spec = config.models[m];
    if (spec.cost_prior >= 0.0) {
      // Validated with the config, so this cannot fail.
      (void)costs.SetPrior(m, spec.cost_prior, spec.cost_prior_weight);
    }
  }
}

uint64_t CommonState::BeginDecision(const RouteRequest& request, uint64_t task_key, Decision* out) {
  const size_t m = predictor.num_models();
  out->t = ++decisions;
  out->tenant = request.tenant;
  out->task_key = task_key;
  out->p.resize(m);
  out->score.resize(m);
  out->cost_estimate.resize(m);
  out->run_probability.assign(m, 0.0);
  return out->t;
}

uint32_t CommonState::ArgminScore(const std::vector<double>& score,
                                  const std::vector<double>& cost) {
  uint32_t best = 0;
  for (uint32_t m = 1; m < score.size(); ++m) {
    if (score[m] < score[best] || (score[m] == score[best] && cost[m] < cost[best])) best = m;
  }
  return best;
}

void CommonState::Save(Packer* pk) const {
  pk->pack_map(5);
  pk->pack("outcomes");
  pk->pack(outcomes);
  pk->pack("queues");
  pk->pack_array(static_cast<uint32_t>(queues.size()));
  for (const VirtualQueue& q : queues) {
    pk->pack_array(2);
    pk->pack(q.q_all());
    pk->pack(q.q_tracked());
  }
  std::vector<uint64_t> counts(costs.num_models());
  std::vector<double> sums(costs.num_models());
  for (size_t m = 0; m < costs.num_models(); ++m) {
    counts[m] = costs.observations(m);
    sums[m] = costs.observed_sum(m);
  }
  pk->pack("cost_counts");
  pk->pack(counts);
  pk->pack("cost_sums");
  pk->pack(sums);
  const std::string p = predictor.Serialize();
  pk->pack("predictor");
  pk->pack_bin(static_cast<uint32_t>(p.size()));
  pk->pack_bin_body(p.data(), static_cast<uint32_t>(p.size()));
}

Status CommonState::Load(const msgpack::object& state) {
  Result<StateMap> map = StateMap::Of(state, "common state");
  if (!map.ok()) return map.status();
  uint64_t n = 0;
  std::vector<std::vector<double>> q;
  std::vector<uint64_t> counts;
  std::vector<double> sums;
  MESSPLUS_RETURN_IF_ERROR(map->Get("outcomes", &n));
  MESSPLUS_RETURN_IF_ERROR(map->Get("queues", &q));
  MESSPLUS_RETURN_IF_ERROR(map->Get("cost_counts", &counts));
  MESSPLUS_RETURN_IF_ERROR(map->Get("cost_sums", &sums));
  const msgpack::object* p = map->Find("predictor");
  if (p == nullptr || p->type != msgpack::type::BIN) {
    return Status::DataLoss("common state: predictor missing");
  }
  if (q.size() != queues.size()) {
    return Status::DataLoss("common state: tenant count differs from the configuration");
  }
  Result<SatisfactionPredictor> pred = SatisfactionPredictor::Deserialize(
      std::string_view(p->via.bin.ptr, p->via.bin.size), predictor.dim(), predictor.num_models());
  if (!pred.ok()) return pred.status();
  if (pred->dim() != predictor.dim() || pred->num_models() != predictor.num_models()) {
    return Status::DataLoss("common state: predictor shape differs from the configuration");
  }
  CostModel restored = costs;
  if (Status st = restored.Restore(counts, sums); !st.ok()) return Status::DataLoss(st.message());
  std::vector<VirtualQueue> restored_queues = queues;
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i].size() != 2) return Status::DataLoss("common state: bad queue entry");
    if (Status st = restored_queues[i].Restore(q[i][0], q[i][1]); !st.ok()) {
      return Status::DataLoss(st.message());
    }
  }
  // Commit only once everything parsed. A route replica that loads the learning state of
  // the collector continues its exploration schedule from the requests answered anywhere.
  outcomes = n;
  decisions = std::max(decisions, n);
  queues = std::move(restored_queues);
  costs = std::move(restored);
  predictor = std::move(*pred);
  return Status::Ok();
}

}  // namespace messplus::router
