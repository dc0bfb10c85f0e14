// Options shared by the commands that replay data through the router (sim, eval, demo):
// the router's settings and how the data is read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "router/zoo.h"
#include "simulator/dataset.h"
#include "simulator/replay.h"

namespace messplus::tools {

struct RouterFlags {
  std::string policy;
  double v = 1e-4;
  double c = 0.1;
  std::vector<uint64_t> seeds{42};
  double feedback_rate = 1.0;
  uint64_t feedback_delay = 0;
  uint64_t feedback_jitter = 0;
  uint64_t in_flight = 1;
  bool no_task = false;
  size_t limit = 0;
  router::HashingOptions hashing;
  router::PredictorOptions predictor;
  std::vector<std::string> tune;  // adaptive settings, "name=value"
};

struct DataFlags {
  std::vector<std::string> files;
  std::string cost;
  std::vector<std::string> constant_costs;  // "model=value"
  std::string task_column;
  bool keep_contaminated = false;
  std::vector<std::string> models;
};

void AddRouterFlags(CLI::App* cmd, RouterFlags* flags);
void AddDataFlags(CLI::App* cmd, DataFlags* flags);

// Parses the data flags into load options; InvalidArgument for a malformed model=value.
Result<simulator::LoadOptions> ToLoadOptions(const DataFlags& flags);

// Replay options for one seed. InvalidArgument for a malformed or unknown --tune.
Result<simulator::ReplayOptions> ToReplayOptions(const RouterFlags& flags, double alpha,
                                                 uint64_t seed);

// Parses "name=value" into a number; InvalidArgument naming the flag otherwise.
Result<std::pair<std::string, double>> ParseAssignment(const std::string& text,
                                                       const std::string& flag);

}  // namespace messplus::tools
