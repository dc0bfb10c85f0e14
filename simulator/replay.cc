#include "simulator/replay.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <string_view>

#include "router/adaptive_policy.h"
#include "router/feature_hasher.h"
#include "router/rng.h"
#include "router/router.h"

namespace messplus::simulator {
namespace {

constexpr uint64_t kOrderStream = 0x6f72646572ull;  // "order"
constexpr uint64_t kFeedbackStream = 0x666262ull;   // "fbb"
constexpr uint64_t kJitterStream = 0x6a6974ull;     // "jit"

struct PendingFeedback {
  uint64_t due;  // delivered before the decision of request `due`
  uint64_t i;    // the request's number: ties in `due` go in request order
  size_t row;
  router::Decision decision;
};
// std::push_heap keeps the largest on top: "larger" is due later.
bool DueLater(const PendingFeedback& a, const PendingFeedback& b) {
  return a.due != b.due ? a.due > b.due : a.i > b.i;
}

}  // namespace

FeatureTable HashRows(const Dataset& data, const router::HashingOptions& hashing, bool with_task) {
  FeatureTable table;
  table.with_task = with_task;
  table.rows.resize(data.rows());
  router::FeatureHasher hasher(hashing);
  router::FeatureHasher::Scratch scratch;
  std::string tag;
  for (size_t r = 0; r < data.rows(); ++r) {
    tag = "task=" + data.tasks[r];
    const std::string_view tags[1] = {tag};
    hasher.Hash(
        data.prompts[r],
        with_task ? std::span<const std::string_view>(tags) : std::span<const std::string_view>(),
        &table.rows[r], &scratch);
  }
  return table;
}

double Auc(const std::vector<double>& score, const std::vector<uint8_t>& label) {
  // Requests without a finite score (none is expected) are left out: NaN breaks the sort's
  // ordering and never equals itself.
  std::vector<size_t> idx;
  idx.reserve(score.size());
  for (size_t r = 0; r < score.size(); ++r) {
    if (std::isfinite(score[r])) idx.push_back(r);
  }
  const size_t n = idx.size();
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0.0;
  size_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && score[idx[j]] == score[idx[i]]) ++j;
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;
    for (size_t k = i; k < j; ++k) {
      if (label[idx[k]]) {
        rank_sum += avg_rank;
        ++positives;
      }
    }
    i = j;
  }
  const size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  const double p = static_cast<double>(positives);
  return (rank_sum - p * (p + 1.0) / 2.0) / (p * static_cast<double>(negatives));
}

std::vector<size_t> ReplayOrder(size_t rows, uint64_t seed, size_t limit) {
  std::vector<size_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  Rng(Rng::Mix(seed, kOrderStream)).Shuffle(order.begin(), order.end());
  if (limit > 0 && limit < order.size()) order.resize(limit);
  return order;
}

Rng FeedbackRng(uint64_t seed) { return Rng(Rng::Mix(seed, kFeedbackStream)); }

Result<ReplayResult> RunReplay(const Dataset& data, const ReplayOptions& options,
                               const FeatureTable* features) {
  if (!(options.alpha >= 0.0 && options.alpha <= 1.0)) {
    return Status::InvalidArgument("alpha must be in [0, 1]");
  }
  if (options.in_flight == 0) return Status::InvalidArgument("in_flight must be at least 1");
  if (!(options.feedback_rate >= 0.0 && options.feedback_rate <= 1.0)) {
    return Status::InvalidArgument("feedback rate must be in [0, 1]");
  }
  if (data.rows() == 0 || data.num_models() == 0) {
    return Status::InvalidArgument("the dataset is empty");
  }
  const size_t m = data.num_models();

  router::RouterConfig config = options.router;
  if (config.models.empty()) {
    for (const std::string& name : data.models) config.models.push_back({name});
  } else if (config.models.size() != m) {
    return Status::InvalidArgument("router zoo does not match the dataset's models");
  } else {
    for (size_t j = 0; j < m; ++j) {
      if (config.models[j].name != data.models[j]) {
        return Status::InvalidArgument("router zoo does not match the dataset's models");
      }
    }
  }
  config.tenants = {{"default", options.alpha}};
  Result<std::unique_ptr<router::Router>> created = router::Router::Create(config);
  if (!created.ok()) return created.status();
  router::Router& router = **created;

  FeatureTable local;
  if (features == nullptr) {
    local = HashRows(data, config.hashing, options.use_task);
    features = &local;
  }
  if (features->rows.size() != data.rows()) {
    return Status::InvalidArgument("feature table does not match the dataset");
  }

  const std::vector<size_t> order = ReplayOrder(data.rows(), config.seed, options.limit);
  const size_t n = order.size();

  Rng feedback_rng = FeedbackRng(config.seed);
  Rng jitter_rng(Rng::Mix(config.seed, kJitterStream));
  std::vector<PendingFeedback> pending;  // a heap by (due, i)
  std::vector<router::ModelCost> costs;
  struct PendingOutcome {
    uint64_t due;
    router::Decision decision;
    std::vector<router::ModelCost> costs;
  };
  std::deque<PendingOutcome> outcomes;  // due in request order
  std::vector<router::ModelLabel> labels;
  router::Decision decision;

  ReplayResult res;
  res.seed = config.seed;
  res.policy = config.policy;
  res.requests = n;
  res.alpha = options.alpha;
  res.models = data.models;
  res.model_share.assign(m, 0.0);
  std::vector<std::vector<double>> predicted(m, std::vector<double>(n));
  std::vector<double> predicted_gain(n);

  double total_cost = 0.0, unserved_cost = 0.0, total_sat = 0.0, running_sum = 0.0;
  size_t explored = 0;

  auto deliver = [&](const PendingFeedback& f) -> Status {
    labels.clear();
    for (uint32_t j : f.decision.run) labels.push_back({j, data.Score(f.row, j)});
    ++res.feedback_delivered;
    return router.RecordFeedback(f.decision, features->rows[f.row], labels);
  };

  for (size_t i = 0; i < n; ++i) {
    while (!outcomes.empty() && outcomes.front().due <= i) {
      const PendingOutcome& o = outcomes.front();
      router.ClearInFlight(o.decision);
      MESSPLUS_RETURN_IF_ERROR(router.RecordCosts(o.decision, o.costs));
      outcomes.pop_front();
    }
    while (!pending.empty() && pending.front().due <= i) {
      std::pop_heap(pending.begin(), pending.end(), DueLater);
      MESSPLUS_RETURN_IF_ERROR(deliver(pending.back()));
      pending.pop_back();
    }
    const size_t row = order[i];
    router::RouteRequest request;
    request.features = &features->rows[row];
    request.tenant = 0;
    if (options.use_task) request.task = data.tasks[row];
    MESSPLUS_RETURN_IF_ERROR(router.Decide(request, &decision));

    costs.clear();
    for (uint32_t j : decision.run) {
      const double c = data.Cost(row, j);
      costs.push_back({j, c});
      total_cost += c;
      // Everything but the decision rule's own choice is exploration.
      if (j != decision.chosen) unserved_cost += c;
    }
    if (options.in_flight > 1) {
      router.NoteInFlight(decision);
      outcomes.push_back({i + options.in_flight, decision, costs});
    } else {
      MESSPLUS_RETURN_IF_ERROR(router.RecordCosts(decision, costs));
    }

    const double s = data.Score(row, decision.served);
    total_sat += s;
    running_sum += total_sat / static_cast<double>(i + 1);
    MESSPLUS_RETURN_IF_ERROR(router.RecordGroundTruth(decision, s));
    res.model_share[decision.served] += 1.0;
    if (decision.explore) ++explored;
    for (size_t j = 0; j < m; ++j) predicted[j][i] = decision.p[j];
    predicted_gain[i] = decision.p[m - 1] - decision.p[0];
    // Judged on the last decision, when the router has learned what it can: early on an
    // untrained predictor says nothing reaches alpha.
    if (i + 1 == n && decision.alpha_unreachable) {
      res.warnings.push_back("at the end of the stream no model is predicted to reach alpha " +
                             std::to_string(options.alpha));
    }

    if (feedback_rng.Bernoulli(options.feedback_rate)) {
      uint64_t delay = options.feedback_delay;
      if (options.feedback_jitter > 0) delay += jitter_rng.Below(options.feedback_jitter + 1);
      if (options.in_flight > 1) delay = std::max<uint64_t>(delay, options.in_flight);
      PendingFeedback f{i + delay, i, row, decision};
      if (delay == 0) {
        MESSPLUS_RETURN_IF_ERROR(deliver(f));
      } else {
        pending.push_back(std::move(f));
        std::push_heap(pending.begin(), pending.end(), DueLater);
      }
    }
    if (options.trace) {
      res.trace.push_back({i + 1, data.ids[row], decision.q, decision.v, decision.alpha,
                           total_sat / static_cast<double>(i + 1), s, decision.served, 0.0,
                           decision.explore, decision.p});
      for (const router::ModelCost& c : costs) res.trace.back().cost += c.cost;
    }
  }
  // Feedback still pending at the end never arrives: the stream is over.

  const double nn = static_cast<double>(n);
  res.avg_cost = total_cost / nn;
  res.avg_satisfaction = total_sat / nn;
  res.time_avg_satisfaction = running_sum / nn;
  res.sla_met = res.avg_satisfaction >= options.alpha;
  for (double& share : res.model_share) share /= nn;
  res.exploration_share = static_cast<double>(explored) / nn;
  res.exploration_cost_share = total_cost > 0.0 ? unserved_cost / total_cost : 0.0;
  res.exploration_cost = unserved_cost / nn;
  res.chosen_cost = (total_cost - unserved_cost) / nn;
  res.final_q = router.policy().queue(0).q_tracked();
  res.final_q_all = router.policy().queue(0).q_all();
  if (const auto* adaptive = dynamic_cast<const router::AdaptivePolicy*>(&router.policy())) {
    for (size_t j = 0; j < m; ++j) res.text_gate_open.push_back(adaptive->text_gate_open(j));
  }

  double auc_sum = 0.0;
  std::vector<uint8_t> label(n);
  for (size_t j = 0; j < m; ++j) {
    for (size_t i = 0; i < n; ++i) label[i] = data.Score(order[i], j) >= 0.5;
    auc_sum += Auc(predicted[j], label);
  }
  res.predictor_auc = auc_sum / static_cast<double>(m);
  for (size_t i = 0; i < n; ++i) {
    label[i] = data.Score(order[i], m - 1) >= 0.5 && data.Score(order[i], 0) < 0.5;
  }
  res.gain_auc = Auc(predicted_gain, label);

  res.baselines = ComputeBaselines(data, order, options.alpha, config.seed);
  res.eg_expected_cost = EducatedGuessExpectedCost(data, order, options.alpha);
  for (const BaselineResult& b : res.baselines) {
    if (b.name == "oracle" && !b.sla_met) {
      res.warnings.push_back("alpha " + std::to_string(options.alpha) +
                             " is out of reach: even the per-request oracle reaches only " +
                             std::to_string(b.avg_satisfaction));
    }
  }
  return res;
}

}  // namespace messplus::simulator
