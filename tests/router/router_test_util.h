// Shared fixtures for the Router and PaperPolicy tests: a small zoo with known cost priors and
// helpers to build a router and feed it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "router/decision.h"
#include "router/router.h"
#include "router/sparse_features.h"
#include "router/zoo.h"

namespace messplus::router::test {

// Three models with cost priors 10, 50 and 200 worth 1e6 observations each (so the estimates
// are exactly the priors until costs are recorded, and barely move after), two tenants
// (gold: alpha 0.7, silver: alpha 0.3), V = 0.001 and no exploration (c = 0).
inline RouterConfig ThreeModelConfig() {
  RouterConfig config;
  config.models = {{"small", 10.0, 1e6}, {"medium", 50.0, 1e6}, {"large", 200.0, 1e6}};
  config.tenants = {{"gold", 0.7}, {"silver", 0.3}};
  config.policy = "paper";
  config.v = 0.001;
  config.c = 0.0;
  config.seed = 42;
  config.hashing.dim_bits = 12;  // small predictor: 4096 x 3
  return config;
}

inline std::unique_ptr<Router> MakeRouter(const RouterConfig& config) {
  Result<std::unique_ptr<Router>> router = Router::Create(config);
  if (!router.ok()) {
    ADD_FAILURE() << "Router::Create: " << router.status().ToString();
    return nullptr;
  }
  return std::move(*router);
}

// Decides for `features` (which must outlive the call) and fails the test on an error.
inline Decision MustDecide(Router* router, const SparseFeatures& features, uint32_t tenant = 0) {
  Decision d;
  const Status st = router->Decide(RouteRequest{&features, tenant, ""}, &d);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return d;
}

inline std::vector<ModelLabel> Label(uint32_t model, double satisfaction) {
  return {ModelLabel{model, satisfaction}};
}

inline std::vector<ModelCost> Cost(uint32_t model, double cost) { return {ModelCost{model, cost}}; }

}  // namespace messplus::router::test
