#include "tools/loadgen/report.h"

#include <fmt/format.h>

namespace messplus::loadgen {
namespace {

double Us(int64_t ns) { return static_cast<double>(ns) / 1e3; }

std::string Codes(const std::map<std::string, uint64_t, std::less<>>& m) {
  std::string s;
  for (const auto& [k, n] : m) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", n, k);
  return s.empty() ? "none" : s;
}

}  // namespace

uint64_t PhaseCounts::errors_total() const {
  uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

uint64_t FeedbackCounts::refused_total() const {
  uint64_t n = 0;
  for (const auto& [code, count] : refused) n += count;
  return n;
}

double LoadReport::throughput_rps() const {
  return seconds > 0.0 ? static_cast<double>(measured.answered) / seconds : 0.0;
}

double LoadReport::offered_rps() const {
  return seconds > 0.0 ? static_cast<double>(measured.sent) / seconds : 0.0;
}

bool LoadReport::ok() const {
  return measured.errors_total() == 0 && warmup.errors_total() == 0 &&
         feedback.acked == feedback.sent;
}

nlohmann::json LatencyJson(const LatencyHistogram& h) {
  return {{"count", h.Count()},          {"min", Us(h.Min())},
          {"p50", Us(h.Percentile(50))}, {"p90", Us(h.Percentile(90))},
          {"p99", Us(h.Percentile(99))}, {"p99_9", Us(h.Percentile(99.9))},
          {"max", Us(h.Max())},          {"mean", h.Mean() / 1e3}};
}

nlohmann::json ToJson(const LoadReport& r) {
  nlohmann::json j;
  j["mode"] = r.mode;
  j["target_rate"] = r.target_rate;
  j["concurrency"] = r.concurrency;
  j["endpoint"] = r.endpoint;
  j["seed"] = r.seed;
  j["prompts"] = {{"source", r.prompt_source}, {"mean_chars", r.prompt_mean_chars}};
  j["seconds"] = r.seconds;
  j["sent"] = r.measured.sent;
  j["answered"] = r.measured.answered;
  j["errors"] = nlohmann::json::object();
  for (const auto& [kind, n] : r.measured.errors) j["errors"][kind] = n;
  j["errors_total"] = r.measured.errors_total();
  j["throughput_rps"] = r.throughput_rps();
  j["offered_rps"] = r.offered_rps();
  j["warmup"] = {{"sent", r.warmup.sent},
                 {"answered", r.warmup.answered},
                 {"errors_total", r.warmup.errors_total()}};
  nlohmann::json refused = nlohmann::json::object();
  for (const auto& [code, n] : r.feedback.refused) refused[code] = n;
  j["feedback"] = {{"sent", r.feedback.sent},
                   {"acked", r.feedback.acked},
                   {"refused", refused},
                   {"unacked", r.feedback.unacked}};
  j["latency_us"] = LatencyJson(r.latency);
  j["service_us"] = LatencyJson(r.service);
  j["send_lateness_us"] = LatencyJson(r.send_lateness);
  j["histogram_digits"] = r.latency.significant_digits();
  j["stray_replies"] = r.stray_replies;
  j["ok"] = r.ok();
  return j;
}

std::string FormatTable(const LoadReport& r) {
  std::string s;
  const std::string load =
      r.mode == "open"
          ? fmt::format("open loop, Poisson arrivals at {:.0f} requests/s", r.target_rate)
          : fmt::format("closed loop, {} requests in flight", r.concurrency);
  s += fmt::format("messplus loadgen: {} -> {} (seed {})\n", load, r.endpoint, r.seed);
  s += fmt::format("  prompts: {}, mean {:.0f} chars\n", r.prompt_source, r.prompt_mean_chars);
  s += fmt::format("  measured {:.2f} s: sent {}, answered {}, errors {} ({})\n", r.seconds,
                   r.measured.sent, r.measured.answered, r.measured.errors_total(),
                   Codes(r.measured.errors));
  s += fmt::format("  throughput {:.0f} answered/s (offered {:.0f}/s)\n", r.throughput_rps(),
                   r.offered_rps());
  s += fmt::format("  warm-up (excluded): sent {}, answered {}, errors {}\n", r.warmup.sent,
                   r.warmup.answered, r.warmup.errors_total());
  if (r.feedback.sent > 0) {
    s += fmt::format("  feedback: sent {}, acknowledged {}, refused {} ({}), unacknowledged {}\n",
                     r.feedback.sent, r.feedback.acked, r.feedback.refused_total(),
                     Codes(r.feedback.refused), r.feedback.unacked);
  }
  s += fmt::format("  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "latency (us)", "min",
                   "p50", "p90", "p99", "p99.9", "max", "mean");
  auto row = [&](const char* name, const LatencyHistogram& h) {
    s += fmt::format("  {:<28} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n",
                     name, Us(h.Min()), Us(h.Percentile(50)), Us(h.Percentile(90)),
                     Us(h.Percentile(99)), Us(h.Percentile(99.9)), Us(h.Max()), h.Mean() / 1e3);
  };
  row(r.mode == "open" ? "from scheduled send" : "from send", r.latency);
  if (r.mode == "open") {
    row("from actual send", r.service);
    row("send lateness", r.send_lateness);
  }
  s += fmt::format("  ({} answered requests recorded; percentiles within {:.2f}%)\n",
                   r.latency.Count(), 100.0 * r.latency.RelativePrecision());
  return s;
}

}  // namespace messplus::loadgen
