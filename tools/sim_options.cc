#include "tools/sim_options.h"

#include <charconv>
#include <cmath>

#include "router/policy.h"

namespace messplus::tools {

void AddRouterFlags(CLI::App* cmd, RouterFlags* f) {
  std::string policies;
  for (const std::string& n : router::PolicyNames()) policies += (policies.empty() ? "" : ", ") + n;
  f->policy = router::RouterConfig().policy;
  cmd->add_option("--policy", f->policy, "routing policy: " + policies)->capture_default_str();
  cmd->add_option("--v,-V", f->v, "V: weight of cost against the SLA queue")->capture_default_str();
  cmd->add_option("--c", f->c, "exploration constant c in p_t = min(1, c / t^(1/4))")
      ->capture_default_str();
  cmd->add_option("--seed,--seeds", f->seeds, "seed(s); one run per seed (e.g. --seeds 42 43 44)")
      ->capture_default_str();
  cmd->add_option("--feedback-rate", f->feedback_rate,
                  "share of requests whose satisfaction is ever reported")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--feedback-delay", f->feedback_delay,
                  "feedback arrives this many requests after the decision")
      ->capture_default_str();
  cmd->add_option("--feedback-jitter", f->feedback_jitter,
                  "each label arrives a further 0..N requests later (seeded): out of order")
      ->capture_default_str();
  cmd->add_option("--in-flight", f->in_flight,
                  "requests in flight, as in a pipeline: outcomes reach the router N requests "
                  "after the decision, and the router counts the requests in flight meanwhile")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
      ->capture_default_str();
  cmd->add_flag("--no-task", f->no_task, "do not give the row's task to the router");
  cmd->add_option("--limit", f->limit, "replay at most this many requests (0: all)");
  cmd->add_option("--tune", f->tune,
                  "an adaptive policy setting, name=value (repeatable; see docs/policies.md)");
  cmd->add_option("--dim-bits", f->hashing.dim_bits, "feature hashing: log2 of the dimension")
      ->capture_default_str();
  cmd->add_option("--char-ngram-max", f->hashing.char_ngram_max,
                  "feature hashing: longest character n-gram")
      ->capture_default_str();
  cmd->add_option("--char-ngram-min", f->hashing.char_ngram_min,
                  "feature hashing: shortest character n-gram (0: no character n-grams)")
      ->capture_default_str();
  cmd->add_option("--learning-rate", f->predictor.learning_rate, "predictor AdaGrad step size")
      ->capture_default_str();
  cmd->add_option("--bias-learning-rate", f->predictor.bias_learning_rate,
                  "predictor AdaGrad step size of the per-model bias")
      ->capture_default_str();
  cmd->add_option("--initial-accumulator", f->predictor.initial_accumulator,
                  "predictor AdaGrad starting squared-gradient sum")
      ->capture_default_str();
  cmd->add_option("--l2", f->predictor.l2, "predictor L2 shrinkage")->capture_default_str();
}

void AddDataFlags(CLI::App* cmd, DataFlags* f) {
  cmd->add_option("--data", f->files,
                  "CSV file(s): the ../shared/data format or the MESS+ simulator format; several "
                  "files are pooled into one stream")
      ->required();
  cmd->add_option("--cost", f->cost, "cost column: energy_j, cost_usd or latency_s")
      ->check(CLI::IsMember({"", "energy_j", "cost_usd", "latency_s"}));
  cmd->add_option("--constant-cost", f->constant_costs,
                  "model=cost per call, for every model, when the file has no cost column");
  cmd->add_option("--task-column", f->task_column,
                  "column whose value is the row's task (default: benchmark)");
  cmd->add_flag("--keep-contaminated", f->keep_contaminated,
                "keep rows marked contaminated (dropped by default)");
  cmd->add_option("--models", f->models, "use only these models");
}

Result<simulator::LoadOptions> ToLoadOptions(const DataFlags& f) {
  simulator::LoadOptions o;
  o.cost = f.cost;
  o.task_column = f.task_column;
  o.drop_contaminated = !f.keep_contaminated;
  o.models = f.models;
  for (const std::string& kv : f.constant_costs) {
    Result<std::pair<std::string, double>> a = ParseAssignment(kv, "--constant-cost");
    if (!a.ok()) return a.status();
    if (a->second < 0.0) {
      return Status::InvalidArgument("--constant-cost expects a cost >= 0, got '" + kv + "'");
    }
    o.constant_costs.push_back(*a);
  }
  return o;
}

Result<std::pair<std::string, double>> ParseAssignment(const std::string& kv,
                                                       const std::string& flag) {
  const size_t eq = kv.rfind('=');
  double value = 0.0;
  const char* begin = kv.data() + (eq == std::string::npos ? 0 : eq + 1);
  const char* end = kv.data() + kv.size();
  const auto parsed = std::from_chars(begin, end, value);
  if (eq == std::string::npos || eq == 0 || parsed.ec != std::errc() || parsed.ptr != end ||
      !std::isfinite(value)) {
    return Status::InvalidArgument(flag + " expects name=number, got '" + kv + "'");
  }
  return std::make_pair(kv.substr(0, eq), value);
}

Result<simulator::ReplayOptions> ToReplayOptions(const RouterFlags& f, double alpha,
                                                 uint64_t seed) {
  simulator::ReplayOptions o;
  for (const std::string& kv : f.tune) {
    Result<std::pair<std::string, double>> a = ParseAssignment(kv, "--tune");
    if (!a.ok()) return a.status();
    MESSPLUS_RETURN_IF_ERROR(router::SetTuning(&o.router.adaptive, a->first, a->second));
  }
  o.router.policy = f.policy;
  o.router.v = f.v;
  o.router.c = f.c;
  o.router.seed = seed;
  o.router.hashing = f.hashing;
  o.router.predictor = f.predictor;
  o.alpha = alpha;
  o.feedback_rate = f.feedback_rate;
  o.feedback_delay = f.feedback_delay;
  o.feedback_jitter = f.feedback_jitter;
  o.in_flight = f.in_flight;
  o.use_task = !f.no_task;
  o.limit = f.limit;
  return o;
}

}  // namespace messplus::tools
