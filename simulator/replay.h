// Replay: streams the rows of a dataset, in a seeded shuffled order, through the router core
// exactly as a live router would see them: each request is decided before its outcome is
// looked at, costs are recorded when the models "answer", and satisfaction labels arrive
// only for a share of the requests and only `feedback_delay` requests later.
//
// Thread safety: RunReplay is reentrant; a const Dataset and FeatureTable may be shared by
// concurrent replays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "router/rng.h"
#include "router/sparse_features.h"
#include "router/zoo.h"
#include "simulator/baselines.h"
#include "simulator/dataset.h"

namespace messplus::simulator {

// The hashed features of every row, computed once and shared by the runs of a grid.
struct FeatureTable {
  std::vector<router::SparseFeatures> rows;
  bool with_task = false;
};
// Hashes every prompt; with_task adds the row's task as a tag ("task=<name>").
FeatureTable HashRows(const Dataset& data, const router::HashingOptions& hashing, bool with_task);

struct ReplayOptions {
  // Router settings; models and tenants are filled from the dataset and `alpha`.
  router::RouterConfig router;
  double alpha = 0.5;
  // Share of requests whose satisfaction is ever reported, and how many requests later.
  double feedback_rate = 1.0;
  uint64_t feedback_delay = 0;
  // Each label is further delayed by a uniform 0..feedback_jitter requests (seeded), so labels
  // arrive out of order, as from users or a pipeline with requests in flight.
  uint64_t feedback_jitter = 0;
  // Requests in flight, as a pipeline has them: the outcome (costs) of request i reaches the
  // router only before decision i + in_flight, and the router counts the requests in flight
  // (Router::NoteInFlight) until then, as a route replica does. Labels come no earlier than
  // their outcome. 1: each outcome before the next decision.
  uint64_t in_flight = 1;
  // Give the row's task to the router (as RouteRequest::task and a hashed tag).
  bool use_task = true;
  // Keep a per-request trace in the result.
  bool trace = false;
  // Replay at most this many rows (0: all).
  size_t limit = 0;
};

struct TraceRow {
  uint64_t t;
  std::string id;  // the data row's id
  double q;
  double v;       // the decision's V (cost weight)
  double target;  // the satisfaction target the decision aimed at (alpha, tightened)
  double running_satisfaction;
  double satisfaction;  // of the served answer
  uint32_t served;
  double cost;
  bool explored;
  std::vector<double> p;  // predicted satisfaction per model at decision time
};

struct ReplayResult {
  uint64_t seed = 0;
  std::string policy;
  size_t requests = 0;
  double alpha = 0.0;
  double avg_cost = 0.0;
  double avg_satisfaction = 0.0;
  // Mean over t of the running average satisfaction after request t.
  double time_avg_satisfaction = 0.0;
  bool sla_met = false;
  std::vector<std::string> models;
  std::vector<double> model_share;      // share of requests whose answer came from each model
  double exploration_share = 0.0;       // share of requests that ran more than the exploit choice
  double exploration_cost_share = 0.0;  // share of the cost spent beyond the rule's choice
  double exploration_cost = 0.0;        // per request: calls beyond the rule's choice
  double chosen_cost = 0.0;             // per request: the rule's choices
  double final_q = 0.0;                 // Q_tracked at the end (tenant 0)
  double final_q_all = 0.0;             // the paper's Q over all requests
  size_t feedback_delivered = 0;        // requests whose labels reached the router
  double predictor_auc = 0.5;           // mean over models of the AUC of p_m(x) at decision time
  double gain_auc = 0.5;                // AUC of p_last - p_first for "last right, first wrong"
  // Adaptive policy only: per model, whether the text model steers its estimates at the end.
  std::vector<bool> text_gate_open;
  std::vector<BaselineResult> baselines;
  // Expected cost of the educated guess (the mix's cost by the true means, not sampled):
  // the yardstick for cost ratios, free of the sampling noise of one run.
  double eg_expected_cost = 0.0;
  std::vector<std::string> warnings;
  std::vector<TraceRow> trace;
};

// Runs one replay with seed options.router.seed. `features` must come from HashRows on the
// same dataset with options.router.hashing and use_task; pass nullptr to hash here.
// InvalidArgument for bad options (alpha, feedback rate, an invalid router config).
Result<ReplayResult> RunReplay(const Dataset& data, const ReplayOptions& options,
                               const FeatureTable* features = nullptr);

// The order in which RunReplay streams the rows for `seed` (a seeded shuffle), cut to
// `limit` rows when limit > 0. Drivers of a live pipeline use it to replay the same stream.
std::vector<size_t> ReplayOrder(size_t rows, uint64_t seed, size_t limit = 0);
// The generator RunReplay draws "is this request's feedback ever reported" from, one
// Bernoulli(feedback_rate) per request in stream order.
Rng FeedbackRng(uint64_t seed);

// Area under the ROC curve of `score` for the 0/1 `label` (ties count one half); 0.5 when
// one class is empty. Entries whose score is not finite are left out.
double Auc(const std::vector<double>& score, const std::vector<uint8_t>& label);

}  // namespace messplus::simulator
