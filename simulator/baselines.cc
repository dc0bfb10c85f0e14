#include "simulator/baselines.h"

#include <algorithm>
#include <cmath>

#include "router/rng.h"

namespace messplus::simulator {

FixedMix CheapestFixedMix(std::span<const double> sat, std::span<const double> cost, double alpha) {
  const size_t m = sat.size();
  FixedMix best;
  best.weight.assign(m, 0.0);
  best.expected_cost = INFINITY;
  // The optimum of this two-constraint LP mixes at most two models: try singles and pairs.
  for (size_t i = 0; i < m; ++i) {
    if (sat[i] >= alpha && cost[i] < best.expected_cost) {
      std::fill(best.weight.begin(), best.weight.end(), 0.0);
      best.weight[i] = 1.0;
      best.expected_cost = cost[i];
      best.expected_satisfaction = sat[i];
      best.feasible = true;
    }
    for (size_t j = 0; j < m; ++j) {
      if (!(sat[i] < alpha && sat[j] > alpha)) continue;
      const double wj = (alpha - sat[i]) / (sat[j] - sat[i]);
      const double c = (1.0 - wj) * cost[i] + wj * cost[j];
      if (c < best.expected_cost) {
        std::fill(best.weight.begin(), best.weight.end(), 0.0);
        best.weight[i] = 1.0 - wj;
        best.weight[j] = wj;
        best.expected_cost = c;
        best.expected_satisfaction = alpha;
        best.feasible = true;
      }
    }
  }
  if (!best.feasible) {
    size_t top = 0;
    for (size_t i = 1; i < m; ++i) {
      if (sat[i] > sat[top] || (sat[i] == sat[top] && cost[i] < cost[top])) top = i;
    }
    best.weight[top] = 1.0;
    best.expected_cost = cost[top];
    best.expected_satisfaction = sat[top];
  }
  return best;
}

double EducatedGuessExpectedCost(const Dataset& data, std::span<const size_t> rows, double alpha) {
  const size_t m = data.num_models();
  const double n = static_cast<double>(rows.size());
  std::vector<double> mean_sat(m, 0.0), mean_cost(m, 0.0);
  for (size_t r : rows) {
    for (size_t j = 0; j < m; ++j) {
      mean_sat[j] += data.Score(r, j) / n;
      mean_cost[j] += data.Cost(r, j) / n;
    }
  }
  return CheapestFixedMix(mean_sat, mean_cost, alpha).expected_cost;
}

namespace {

// One step up a row's efficient frontier: from option `from` to option `to`.
struct Upgrade {
  double slope;  // satisfaction gained per unit of cost
  double d_sat;
  double d_cost;
  size_t order;  // position along the row's frontier, to keep steps in order on equal slopes
};

}  // namespace

std::vector<BaselineResult> ComputeBaselines(const Dataset& data, std::span<const size_t> rows,
                                             double alpha, uint64_t seed) {
  const size_t m = data.num_models();
  const double n = static_cast<double>(rows.size());
  std::vector<BaselineResult> out;
  if (rows.empty()) return out;

  std::vector<double> mean_sat(m, 0.0), mean_cost(m, 0.0);
  for (size_t r : rows) {
    for (size_t j = 0; j < m; ++j) {
      mean_sat[j] += data.Score(r, j);
      mean_cost[j] += data.Cost(r, j);
    }
  }
  for (size_t j = 0; j < m; ++j) {
    mean_sat[j] /= n;
    mean_cost[j] /= n;
    out.push_back({"always:" + data.models[j], mean_cost[j], mean_sat[j], mean_sat[j] >= alpha});
  }

  // Educated guess: sampled per request from the cheapest feasible mix.
  {
    const FixedMix mix = CheapestFixedMix(mean_sat, mean_cost, alpha);
    Rng rng(Rng::Mix(seed, 0x6567ull /* "eg" */));
    double cost = 0.0, sat = 0.0;
    for (size_t r : rows) {
      double u = rng.Uniform();
      size_t pick = m - 1;
      for (size_t j = 0; j < m; ++j) {
        if (u < mix.weight[j]) {
          pick = j;
          break;
        }
        u -= mix.weight[j];
      }
      // Guard against rounding: never pick a model with zero weight.
      while (mix.weight[pick] == 0.0 && pick > 0) --pick;
      cost += data.Cost(r, pick);
      sat += data.Score(r, pick);
    }
    out.push_back({"educated_guess", cost / n, sat / n, sat / n >= alpha});
  }

  // Oracle: best satisfaction per request, cheapest among ties.
  {
    double cost = 0.0, sat = 0.0;
    for (size_t r : rows) {
      size_t best = 0;
      for (size_t j = 1; j < m; ++j) {
        const double s = data.Score(r, j), sb = data.Score(r, best);
        if (s > sb || (s == sb && data.Cost(r, j) < data.Cost(r, best))) best = j;
      }
      cost += data.Cost(r, best);
      sat += data.Score(r, best);
    }
    out.push_back({"oracle", cost / n, sat / n, sat / n >= alpha});
  }

  // Alpha oracle: start every request at its cheapest model, then buy satisfaction where it
  // is cheapest (steps along each row's efficient frontier, best slope first) until the
  // average reaches alpha.
  {
    double cost = 0.0, sat = 0.0;
    std::vector<Upgrade> upgrades;
    std::vector<size_t> options(m);
    for (size_t r : rows) {
      for (size_t j = 0; j < m; ++j) options[j] = j;
      std::sort(options.begin(), options.end(), [&](size_t a, size_t b) {
        const double ca = data.Cost(r, a), cb = data.Cost(r, b);
        return ca < cb || (ca == cb && data.Score(r, a) > data.Score(r, b));
      });
      size_t at = options[0];
      cost += data.Cost(r, at);
      sat += data.Score(r, at);
      size_t step = 0;
      while (true) {
        double best_slope = 0.0;
        size_t next = m;
        for (size_t j : options) {
          const double ds = data.Score(r, j) - data.Score(r, at);
          const double dc = data.Cost(r, j) - data.Cost(r, at);
          if (ds <= 0.0 || dc < 0.0) continue;
          const double slope = dc == 0.0 ? INFINITY : ds / dc;
          if (slope > best_slope) {
            best_slope = slope;
            next = j;
          }
        }
        if (next == m) break;
        upgrades.push_back({best_slope, data.Score(r, next) - data.Score(r, at),
                            data.Cost(r, next) - data.Cost(r, at), step++});
        at = next;
      }
    }
    std::sort(upgrades.begin(), upgrades.end(), [](const Upgrade& a, const Upgrade& b) {
      return a.slope > b.slope || (a.slope == b.slope && a.order < b.order);
    });
    const double target = alpha * n;
    for (const Upgrade& u : upgrades) {
      if (sat >= target - 1e-9) break;
      sat += u.d_sat;
      cost += u.d_cost;
    }
    out.push_back({"alpha_oracle", cost / n, sat / n, sat / n >= alpha - 1e-12});
  }
  return out;
}

}  // namespace messplus::simulator
