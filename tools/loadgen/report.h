// LoadReport: what one load-generator run measured, and its two renderings (a table for
// people, JSON for scripts). Pure functions of the struct, so tests can feed it known values.
//
// Counting rules (they make the sums exact):
//   * every request sent is, at the end, exactly one of: answered (a client_reply for a
//     model), or an error of one kind (`errors`, keyed by kind: a client_reply error code such
//     as "timeout" or "no_worker", an error reply code such as "overloaded" or
//     "duplicate_id", "client_timeout" when nothing came back within the request timeout,
//     "deadline" when the run's absolute deadline ended it first);
//     so sent == answered + sum(errors), for the measured requests and for the warm-up ones
//     separately;
//   * warm-up requests (the first --warmup requests or seconds) are sent and received like
//     the others but counted only under `warmup`, and their latencies are not recorded;
//   * feedback is counted over the whole run: sent == acked + sum(refused) + unacked.
//
// Latency (ns in the histograms): `latency` is from each request's scheduled send time to its
// reply (open loop: the Poisson due time, so time the generator or the pipeline fell behind is
// charged to the requests it delayed; closed loop: the actual send time); `service` is from
// the actual send; `send_lateness` is actual send - scheduled (open loop). Only answered
// requests are recorded.
//
// JSON keys (stable; tests and bench/pipeline.sh read them):
//   mode ("open" | "closed"), target_rate, concurrency, endpoint, seed, prompts {source,
//   mean_chars}, seconds (measurement window: first measured send to last measured
//   completion), sent, answered, errors {kind: n}, errors_total, throughput_rps (answered /
//   seconds), offered_rps (measured sent / seconds), warmup {sent, answered, errors_total},
//   feedback {sent, acked, refused {code: n}, unacked}, latency_us, service_us,
//   send_lateness_us (each {count, min, p50, p90, p99, p99_9, max, mean}), histogram_digits,
//   stray_replies, ok (no errors and every feedback acknowledged).
//
// Thread safety: a value.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "tools/loadgen/histogram.h"

namespace messplus::loadgen {

struct PhaseCounts {
  uint64_t sent = 0;
  uint64_t answered = 0;
  std::map<std::string, uint64_t, std::less<>> errors;  // by kind
  uint64_t errors_total() const;
};

struct FeedbackCounts {
  uint64_t sent = 0;
  uint64_t acked = 0;
  std::map<std::string, uint64_t, std::less<>> refused;  // by ack status / error code
  uint64_t unacked = 0;
  uint64_t refused_total() const;
};

struct LoadReport {
  explicit LoadReport(int digits = 3) : latency(digits), service(digits), send_lateness(digits) {}

  // What was asked for.
  std::string mode = "closed";  // "open" (Poisson at target_rate) or "closed" (concurrency)
  double target_rate = 0.0;
  uint64_t concurrency = 0;
  std::string endpoint;
  uint64_t seed = 0;
  std::string prompt_source;  // the data file, or "generated (<dist>, mean N)"
  double prompt_mean_chars = 0.0;

  // What happened.
  double seconds = 0.0;  // measurement window
  PhaseCounts measured;
  PhaseCounts warmup;
  FeedbackCounts feedback;
  uint64_t stray_replies = 0;  // replies that matched no request of this run, or undecodable
  LatencyHistogram latency;
  LatencyHistogram service;
  LatencyHistogram send_lateness;

  double throughput_rps() const;
  double offered_rps() const;
  bool ok() const;
};

nlohmann::json ToJson(const LoadReport& r);
// A multi-line table (latencies in microseconds, one decimal).
std::string FormatTable(const LoadReport& r);
// The percentile summary of one histogram in microseconds: {count, min, p50, p90, p99,
// p99_9, max, mean}.
nlohmann::json LatencyJson(const LatencyHistogram& h);

}  // namespace messplus::loadgen
