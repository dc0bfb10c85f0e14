// `messplus eval`: runs a grid of policies over data files, alphas and seeds, and prints one
// table (the basis of docs/policies.md). Built-in suites cover ../shared/data:
//   llama     the 8 Llama 3 benchmarks, each at the paper's alpha;
//   pooled    the 8 benchmarks in one stream at alpha 0.70 and 0.75, with and without the
//             task name given to the router;
//   routellm  RouteLLM's MMLU (GPT-4 vs Mixtral at 20:1 per call, contaminated rows
//             dropped) at alpha 0.72, 0.75, 0.78, with and without the subject as the task.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <thread>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "simulator/dataset.h"
#include "simulator/replay.h"
#include "tools/commands.h"
#include "tools/sim_options.h"

namespace messplus::tools {
namespace {

struct EvalCase {
  std::string name;
  std::vector<std::string> files;
  double alpha = 0.5;
  bool use_task = true;
  std::string task_column;
  std::vector<std::pair<std::string, double>> constant_costs;
};

struct EvalFlags {
  RouterFlags router;
  std::string data_dir;
  std::vector<std::string> suites{"llama"};
  std::vector<std::string> policies;
  std::vector<std::string> files;  // a custom case: --data ... --alpha ...
  double alpha = -1.0;
  int threads = 2;
  bool json = false;
};

// Everything one row of the table needs, over the seeds of one case and policy.
struct CaseResult {
  std::string case_name;
  std::string policy;
  double alpha = 0.0;
  double satisfaction = 0.0;
  double x_single = 0.0, x_alpha_oracle = 0.0;
  double auc = 0.0, gain_auc = 0.0, explore_cost = 0.0;
  double min_surplus = 1e300;  // (satisfaction - alpha) * requests, worst seed
  // Per seed, in the order of the seeds given; the sums over seeds are taken from these.
  std::vector<double> seed_x_eg, seed_cost;
  std::vector<int> seed_met;

  int runs() const { return static_cast<int>(seed_cost.size()); }
  int met() const { return std::accumulate(seed_met.begin(), seed_met.end(), 0); }
  double cost() const { return std::accumulate(seed_cost.begin(), seed_cost.end(), 0.0); }
  double x_eg() const { return std::accumulate(seed_x_eg.begin(), seed_x_eg.end(), 0.0); }
};

const char* kLlama[] = {"arc_challenge", "arc_easy", "boolq",      "logiqa",
                        "piqa",          "sciq",     "social_iqa", "winogrande"};
const double kLlamaAlpha[] = {0.50, 0.75, 0.80, 0.40, 0.78, 0.96, 0.44, 0.70};

std::vector<EvalCase> SuiteCases(const std::string& suite, const std::string& dir) {
  std::vector<EvalCase> out;
  const std::string llama = dir + "/messplus_llama3/messplus_llama3_";
  std::vector<std::string> all;
  for (const char* b : kLlama) all.push_back(llama + b + ".csv");
  if (suite == "llama") {
    for (size_t i = 0; i < std::size(kLlama); ++i) {
      out.push_back({kLlama[i], {llama + kLlama[i] + ".csv"}, kLlamaAlpha[i], true, "", {}});
    }
  } else if (suite == "pooled") {
    for (double a : {0.70, 0.75}) {
      out.push_back({fmt::format("pooled@{:.2f}+task", a), all, a, true, "", {}});
      out.push_back({fmt::format("pooled@{:.2f}-task", a), all, a, false, "", {}});
    }
  } else if (suite == "routellm") {
    std::vector<std::string> mmlu;
    for (int i = 1; i <= 3; ++i)
      mmlu.push_back(fmt::format("{}/routellm/routellm_mmlu_part{}.csv", dir, i));
    const std::vector<std::pair<std::string, double>> costs = {
        {"mistralai/Mixtral-8x7B-Instruct-v0.1", 1.0}, {"gpt-4-1106-preview", 20.0}};
    for (double a : {0.72, 0.75, 0.78}) {
      out.push_back({fmt::format("mmlu@{:.2f}+subject", a), mmlu, a, true, "subject", costs});
      out.push_back({fmt::format("mmlu@{:.2f}-subject", a), mmlu, a, false, "subject", costs});
    }
  }
  return out;
}

int RunEval(const EvalFlags& f) {
  std::vector<EvalCase> cases;
  if (!f.files.empty()) {
    if (f.alpha < 0.0 || f.alpha > 1.0) {
      std::fprintf(stderr, "messplus eval: --data needs --alpha in [0, 1]\n");
      return 2;
    }
    cases.push_back({"custom", f.files, f.alpha, !f.router.no_task, "", {}});
  } else {
    for (const std::string& s : f.suites) {
      if (s != "llama" && s != "pooled" && s != "routellm") {
        std::fprintf(stderr, "messplus eval: unknown suite '%s' (llama, pooled, routellm)\n",
                     s.c_str());
        return 2;
      }
      for (EvalCase& c : SuiteCases(s, f.data_dir)) cases.push_back(std::move(c));
    }
  }
  for (const EvalCase& c : cases) {
    for (const std::string& file : c.files) {
      if (!std::filesystem::exists(file)) {
        std::fprintf(stderr,
                     "messplus eval: data file %s is missing (the suites read ../shared/data; "
                     "set --data-dir)\n",
                     file.c_str());
        return 2;
      }
    }
  }
  std::vector<std::string> policies = f.policies;
  if (policies.empty()) policies = {"adaptive", "paper"};

  // One job per (case, policy, seed); datasets and feature tables are shared per case.
  struct Job {
    size_t case_index;
    size_t policy_index;
    uint64_t seed;
  };
  std::vector<std::shared_ptr<const simulator::Dataset>> datasets(cases.size());
  std::vector<std::shared_ptr<const simulator::FeatureTable>> features(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    simulator::LoadOptions lo;
    lo.task_column = cases[i].task_column;
    lo.constant_costs = cases[i].constant_costs;
    // Cases over the same files share one load.
    for (size_t j = 0; j < i; ++j) {
      if (cases[j].files == cases[i].files && cases[j].task_column == cases[i].task_column) {
        datasets[i] = datasets[j];
        if (cases[j].use_task == cases[i].use_task) features[i] = features[j];
      }
    }
    if (!datasets[i]) {
      Result<simulator::Dataset> d = simulator::LoadDatasets(cases[i].files, lo);
      if (!d.ok()) {
        std::fprintf(stderr, "messplus eval: %s\n", d.status().message().c_str());
        return 2;
      }
      datasets[i] = std::make_shared<const simulator::Dataset>(std::move(*d));
    }
    if (!features[i]) {
      Result<simulator::ReplayOptions> o = ToReplayOptions(f.router, cases[i].alpha, 0);
      if (!o.ok()) {
        std::fprintf(stderr, "messplus eval: %s\n", o.status().message().c_str());
        return 2;
      }
      features[i] = std::make_shared<const simulator::FeatureTable>(
          simulator::HashRows(*datasets[i], o->router.hashing, cases[i].use_task));
    }
  }
  std::vector<Job> jobs;
  for (size_t c = 0; c < cases.size(); ++c) {
    for (size_t p = 0; p < policies.size(); ++p) {
      for (uint64_t s : f.router.seeds) jobs.push_back({c, p, s});
    }
  }
  std::vector<Result<simulator::ReplayResult>> results(jobs.size(), Status::Internal("not run"));
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      const Job& job = jobs[i];
      RouterFlags rf = f.router;
      rf.policy = policies[job.policy_index];
      rf.no_task = !cases[job.case_index].use_task;
      Result<simulator::ReplayOptions> o =
          ToReplayOptions(rf, cases[job.case_index].alpha, job.seed);
      if (!o.ok()) {
        results[i] = o.status();
        continue;
      }
      results[i] =
          simulator::RunReplay(*datasets[job.case_index], *o, features[job.case_index].get());
    }
  };
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < std::max(1, f.threads); ++t) threads.emplace_back(worker);
  }

  std::map<std::pair<size_t, size_t>, CaseResult> rows;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].ok()) {
      std::fprintf(stderr, "messplus eval: %s\n", results[i].status().message().c_str());
      return 2;
    }
    const simulator::ReplayResult& r = *results[i];
    CaseResult& row = rows[{jobs[i].case_index, jobs[i].policy_index}];
    row.case_name = cases[jobs[i].case_index].name;
    row.policy = policies[jobs[i].policy_index];
    row.alpha = r.alpha;
    row.satisfaction += r.avg_satisfaction;
    row.seed_x_eg.push_back(r.avg_cost / r.eg_expected_cost);
    row.seed_cost.push_back(r.avg_cost);
    row.seed_met.push_back(r.sla_met ? 1 : 0);
    double single = INFINITY, alpha_oracle = 0.0;
    for (const simulator::BaselineResult& b : r.baselines) {
      if (b.name.rfind("always:", 0) == 0 && b.avg_satisfaction >= r.alpha) {
        single = std::min(single, b.avg_cost);
      }
      if (b.name == "alpha_oracle") alpha_oracle = b.avg_cost;
    }
    row.x_single += std::isfinite(single) ? r.avg_cost / single : NAN;
    row.x_alpha_oracle += r.avg_cost / alpha_oracle;
    row.auc += r.predictor_auc;
    row.gain_auc += r.gain_auc;
    row.explore_cost += r.exploration_cost_share;
    row.min_surplus =
        std::min(row.min_surplus, (r.avg_satisfaction - r.alpha) * static_cast<double>(r.requests));
  }

  nlohmann::json json = nlohmann::json::array();
  std::string table =
      fmt::format("{:<22} {:<9} {:>6} {:>7} {:>10} {:>7} {:>8} {:>9} {:>6} {:>6} {:>7} {:>9}\n",
                  "case", "policy", "alpha", "SLA", "cost", "x EG", "x single", "x a-orcl", "AUC",
                  "gAUC", "explore", "surplus");
  std::map<std::string, std::vector<const CaseResult*>> by_policy;
  for (auto& [key, row] : rows) {
    const double n = row.runs();
    by_policy[row.policy].push_back(&row);
    table += fmt::format(
        "{:<22} {:<9} {:>6.2f} {:>4}/{:<2} {:>10.2f} {:>7.3f} {:>8.3f} {:>9.3f} {:>6.3f} {:>6.3f} "
        "{:>6.1f}% {:>9.1f}\n",
        row.case_name, row.policy, row.alpha, row.met(), row.runs(), row.cost() / n, row.x_eg() / n,
        row.x_single / n, row.x_alpha_oracle / n, row.auc / n, row.gain_auc / n,
        100.0 * row.explore_cost / n, row.min_surplus);
    json.push_back({{"case", row.case_name},
                    {"policy", row.policy},
                    {"alpha", row.alpha},
                    {"sla_met", row.met()},
                    {"runs", row.runs()},
                    {"avg_cost", row.cost() / n},
                    {"avg_satisfaction", row.satisfaction / n},
                    {"cost_x_educated_guess", row.x_eg() / n},
                    {"cost_x_cheapest_single", row.x_single / n},
                    {"cost_x_alpha_oracle", row.x_alpha_oracle / n},
                    {"predictor_auc", row.auc / n},
                    {"gain_auc", row.gain_auc / n},
                    {"exploration_cost_share", row.explore_cost / n},
                    {"worst_surplus_units", row.min_surplus},
                    {"seed_cost_x_educated_guess", row.seed_x_eg},
                    {"seed_avg_cost", row.seed_cost},
                    {"seed_sla_met", row.seed_met}});
  }
  table += "\n";
  for (auto& [policy, list] : by_policy) {
    int met = 0, runs = 0;
    double sum = 0.0, worst = 0.0;
    for (const CaseResult* r : list) {
      met += r->met();
      runs += r->runs();
      sum += r->x_eg() / r->runs();
      worst = std::max(worst, r->x_eg() / r->runs());
    }
    table += fmt::format("{:<9} SLA met {}/{}; cost x EG mean {:.3f}, worst case {:.3f}\n", policy,
                         met, runs, sum / static_cast<double>(list.size()), worst);
  }
  if (by_policy.count("paper") && by_policy.size() > 1) {
    for (auto& [policy, list] : by_policy) {
      if (policy == "paper") continue;
      double ratio = 0.0;
      const auto& paper = by_policy["paper"];
      for (size_t i = 0; i < list.size() && i < paper.size(); ++i) {
        ratio += list[i]->cost() / paper[i]->cost();
      }
      table += fmt::format("{:<9} cost / paper's on the same streams: {:.3f} (mean over cases)\n",
                           policy, ratio / static_cast<double>(list.size()));
      // Where paper missed alpha it under-delivered, often by spending less; on the runs where
      // it kept its promise the two are compared like for like.
      double cost = 0.0, paper_cost = 0.0, run_ratio = 0.0;
      int kept = 0, all = 0;
      for (size_t i = 0; i < list.size() && i < paper.size(); ++i) {
        const CaseResult& a = *list[i];
        const CaseResult& b = *paper[i];
        for (size_t k = 0; k < a.seed_cost.size() && k < b.seed_cost.size(); ++k) {
          ++all;
          if (!b.seed_met[k]) continue;
          ++kept;
          cost += a.seed_cost[k];
          paper_cost += b.seed_cost[k];
          run_ratio += a.seed_cost[k] / b.seed_cost[k];
        }
      }
      if (kept > 0) {
        table += fmt::format(
            "{:<9} ... on the {} of {} runs where paper met alpha: {:.3f} by total cost, {:.3f} "
            "as the mean of per-run ratios\n",
            policy, kept, all, cost / paper_cost, run_ratio / kept);
      }
    }
  }
  if (f.json) {
    std::printf("%s\n", json.dump(2).c_str());
  } else {
    std::printf("%s", table.c_str());
  }
  return 0;
}

}  // namespace

void RegisterEval(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Run policies over data files, alphas and seeds; print one comparison table");
  AddRouterFlags(cmd, &flags->router);
  flags->router.seeds = {42, 43, 44};
  flags->data_dir = (std::filesystem::path("..") / "shared" / "data").string();
  cmd->add_option("--data-dir", flags->data_dir, "folder holding the captured data")
      ->capture_default_str();
  cmd->add_option("--suite", flags->suites, "suites: llama, pooled, routellm")
      ->capture_default_str();
  cmd->add_option("--policies", flags->policies, "policies to compare (default: adaptive paper)");
  cmd->add_option("--data", flags->files, "a custom case: these files pooled (needs --alpha)");
  cmd->add_option("--alpha", flags->alpha, "alpha of the custom case");
  cmd->add_option("--threads", flags->threads, "replays run in parallel")->capture_default_str();
  cmd->add_flag("--json", flags->json, "print JSON rows instead of the table");
  cmd->callback([flags, exit_code] { *exit_code = RunEval(*flags); });
}

}  // namespace messplus::tools
