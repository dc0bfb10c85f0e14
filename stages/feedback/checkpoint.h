// The feedback collector's checkpoint: everything it needs to continue where it stopped.
//
// File format (msgpack map, format "messplus.collector_checkpoint", version 1):
//   { format: str, version: 1, epoch: uint, seq: uint, router_state: bin (Router::SaveState),
//     outcomes: [[frame: bin (an encoded `outcome` message), age_ms: uint, joined: bool]] }
// Outcomes are oldest first, so their expiry order survives a restart.
//
// Written atomically: a temporary file in the same directory, fsync, rename over the old
// one, fsync of the directory. A crash leaves either the old or the new file.
//
// Thread safety: functions are reentrant; one writer per path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/protocol.h"
#include "router/status.h"

namespace messplus::stages::feedback {

struct CheckpointOutcome {
  pipeline::Outcome outcome;
  uint64_t age_ms = 0;  // time since it arrived, when the checkpoint was written
  bool joined = false;  // its feedback was already applied
};

struct Checkpoint {
  uint64_t epoch = 0;
  uint64_t seq = 0;
  std::string router_state;
  std::vector<CheckpointOutcome> outcomes;
};

// IoError when the file cannot be written; the previous checkpoint is then untouched.
Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint);
// nullopt when there is no file; DataLoss when it is not a valid checkpoint (outcomes are
// validated with `limits`).
Result<std::optional<Checkpoint>> ReadCheckpoint(const std::string& path,
                                                 const pipeline::Limits& limits);

}  // namespace messplus::stages::feedback
