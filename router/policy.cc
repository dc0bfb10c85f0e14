#include "router/policy.h"

#include "router/adaptive_policy.h"
#include "router/paper_policy.h"

namespace messplus::router {

const std::vector<std::string>& PolicyNames() {
  static const std::vector<std::string> kNames = {"adaptive", "paper"};
  return kNames;
}

Result<std::unique_ptr<Policy>> MakePolicy(const RouterConfig& config) {
  if (config.policy == "adaptive") {
    return std::unique_ptr<Policy>(std::make_unique<AdaptivePolicy>(config));
  }
  if (config.policy == "paper")
    return std::unique_ptr<Policy>(std::make_unique<PaperPolicy>(config));
  std::string known;
  for (const std::string& n : PolicyNames()) known += (known.empty() ? "" : ", ") + n;
  return Status::NotFound("unknown policy '" + config.policy + "' (known: " + known + ")");
}

}  // namespace messplus::router
