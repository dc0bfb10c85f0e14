// LoadReport's renderings (ToJson, FormatTable) of known values, its counting rules, ok(),
// and ParseWarmup's accepted and rejected forms.
#include "tools/loadgen/report.h"

#include <gtest/gtest.h>

#include <string>

#include "tools/loadgen/loadgen.h"

namespace messplus::loadgen {
namespace {

// 100 latencies below 2048 ns, where a 3-digit histogram is exact: 50 x 1.0 us, 40 x 1.5 us,
// 9 x 1.9 us, 1 x 2.0 us. Nearest rank: p50 = 1.0, p90 = 1.5, p99 = 1.9, p99.9 = 2.0 us;
// the mean is (50 + 60 + 17.1 + 2) / 100 = 1.291 us.
void FillLatency(LatencyHistogram& h) {
  h.RecordN(1000, 50);
  h.RecordN(1500, 40);
  h.RecordN(1900, 9);
  h.RecordN(2000, 1);
}

LoadReport Known() {
  LoadReport r;
  r.mode = "open";
  r.target_rate = 500.0;
  r.concurrency = 0;
  r.endpoint = "ipc:///tmp/x/frontend";
  r.seed = 42;
  r.prompt_source = "generated (fixed, mean 200)";
  r.prompt_mean_chars = 200.0;
  r.seconds = 2.0;
  r.measured.sent = 10;
  r.measured.answered = 7;
  r.measured.errors["timeout"] = 2;
  r.measured.errors["client_timeout"] = 1;
  r.warmup.sent = 4;
  r.warmup.answered = 3;
  r.warmup.errors["overloaded"] = 1;
  r.feedback.sent = 6;
  r.feedback.acked = 3;
  r.feedback.refused["unknown_request"] = 1;
  r.feedback.refused["duplicate_feedback"] = 1;
  r.feedback.unacked = 1;
  r.stray_replies = 2;
  FillLatency(r.latency);
  FillLatency(r.service);
  r.send_lateness.RecordN(100, 100);
  return r;
}

TEST(LoadReport, SumsAndRates) {
  const LoadReport r = Known();
  EXPECT_EQ(r.measured.errors_total(), 3u);
  EXPECT_EQ(r.warmup.errors_total(), 1u);
  EXPECT_EQ(r.feedback.refused_total(), 2u);
  // The counting rules hold for these values.
  EXPECT_EQ(r.measured.sent, r.measured.answered + r.measured.errors_total());
  EXPECT_EQ(r.warmup.sent, r.warmup.answered + r.warmup.errors_total());
  EXPECT_EQ(r.feedback.sent, r.feedback.acked + r.feedback.refused_total() + r.feedback.unacked);
  EXPECT_DOUBLE_EQ(r.throughput_rps(), 3.5);  // 7 answered / 2 s
  EXPECT_DOUBLE_EQ(r.offered_rps(), 5.0);     // 10 sent / 2 s
  LoadReport empty;
  EXPECT_EQ(empty.measured.errors_total(), 0u);
  EXPECT_EQ(empty.throughput_rps(), 0.0);  // no window: no rate (not a division by zero)
  EXPECT_EQ(empty.offered_rps(), 0.0);
}

TEST(LoadReport, OkMeansNoErrorAnywhereAndEveryFeedbackAcknowledged) {
  LoadReport r = Known();
  EXPECT_FALSE(r.ok());
  r.measured.errors.clear();
  EXPECT_FALSE(r.ok());  // warm-up errors count too
  r.warmup.errors.clear();
  EXPECT_FALSE(r.ok());  // feedback refused / unacknowledged
  r.feedback.refused.clear();
  EXPECT_FALSE(r.ok());  // one still unacknowledged
  r.feedback.unacked = 0;
  r.feedback.acked = r.feedback.sent;
  EXPECT_TRUE(r.ok());
  // An error kind present with a zero count is no error.
  r.measured.errors["timeout"] = 0;
  EXPECT_TRUE(r.ok());
  r.measured.errors["timeout"] = 1;
  EXPECT_FALSE(r.ok());
  // A run with nothing sent has nothing wrong.
  EXPECT_TRUE(LoadReport().ok());
}

TEST(LoadReport, JsonHasEveryDocumentedKeyWithTheValues) {
  const nlohmann::json j = ToJson(Known());
  for (const char* key : {"mode",        "target_rate",      "concurrency",      "endpoint",
                          "seed",        "prompts",          "seconds",          "sent",
                          "answered",    "errors",           "errors_total",     "throughput_rps",
                          "offered_rps", "warmup",           "feedback",         "latency_us",
                          "service_us",  "send_lateness_us", "histogram_digits", "stray_replies",
                          "ok"}) {
    EXPECT_TRUE(j.contains(key)) << key << " missing from " << j.dump();
  }
  EXPECT_EQ(j["mode"], "open");
  EXPECT_EQ(j["target_rate"], 500.0);
  EXPECT_EQ(j["concurrency"], 0);
  EXPECT_EQ(j["endpoint"], "ipc:///tmp/x/frontend");
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["prompts"]["source"], "generated (fixed, mean 200)");
  EXPECT_EQ(j["prompts"]["mean_chars"], 200.0);
  EXPECT_EQ(j["seconds"], 2.0);
  EXPECT_EQ(j["sent"], 10);
  EXPECT_EQ(j["answered"], 7);
  EXPECT_EQ(j["errors"], nlohmann::json({{"timeout", 2}, {"client_timeout", 1}}));
  EXPECT_EQ(j["errors_total"], 3);
  EXPECT_DOUBLE_EQ(j["throughput_rps"].get<double>(), 3.5);
  EXPECT_DOUBLE_EQ(j["offered_rps"].get<double>(), 5.0);
  EXPECT_EQ(j["warmup"], nlohmann::json({{"sent", 4}, {"answered", 3}, {"errors_total", 1}}));
  EXPECT_EQ(j["feedback"]["sent"], 6);
  EXPECT_EQ(j["feedback"]["acked"], 3);
  EXPECT_EQ(j["feedback"]["refused"],
            nlohmann::json({{"unknown_request", 1}, {"duplicate_feedback", 1}}));
  EXPECT_EQ(j["feedback"]["unacked"], 1);
  EXPECT_EQ(j["histogram_digits"], 3);
  EXPECT_EQ(j["stray_replies"], 2);
  EXPECT_EQ(j["ok"], false);

  for (const char* h : {"latency_us", "service_us", "send_lateness_us"}) {
    for (const char* key : {"count", "min", "p50", "p90", "p99", "p99_9", "max", "mean"}) {
      EXPECT_TRUE(j[h].contains(key)) << h << "." << key;
    }
  }
  const nlohmann::json& l = j["latency_us"];
  EXPECT_EQ(l["count"], 100);
  EXPECT_DOUBLE_EQ(l["min"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(l["p50"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(l["p90"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(l["p99"].get<double>(), 1.9);
  EXPECT_DOUBLE_EQ(l["p99_9"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(l["max"].get<double>(), 2.0);
  EXPECT_NEAR(l["mean"].get<double>(), 1.291, 1e-9);
  EXPECT_EQ(j["service_us"], l);
  EXPECT_EQ(j["send_lateness_us"]["count"], 100);
  EXPECT_DOUBLE_EQ(j["send_lateness_us"]["p99"].get<double>(), 0.1);

  // Errors are an object even when there are none; ok is then true.
  LoadReport clean;
  clean.measured.sent = clean.measured.answered = 3;
  const nlohmann::json c = ToJson(clean);
  EXPECT_TRUE(c["errors"].is_object());
  EXPECT_TRUE(c["errors"].empty());
  EXPECT_TRUE(c["feedback"]["refused"].is_object());
  EXPECT_EQ(c["ok"], true);
  EXPECT_EQ(c["latency_us"]["count"], 0);
  EXPECT_EQ(c["latency_us"]["max"], 0.0);
}

TEST(LoadReport, TableOfAnOpenLoopRun) {
  const std::string t = FormatTable(Known());
  auto has = [&](const std::string& s) {
    EXPECT_NE(t.find(s), std::string::npos) << "'" << s << "' not in\n" << t;
  };
  has("open loop, Poisson arrivals at 500 requests/s -> ipc:///tmp/x/frontend (seed 42)");
  has("prompts: generated (fixed, mean 200), mean 200 chars");
  has("measured 2.00 s: sent 10, answered 7, errors 3 (1 client_timeout, 2 timeout)");
  has("throughput 4 answered/s (offered 5/s)");  // 3.5 rounds to even
  has("warm-up (excluded): sent 4, answered 3, errors 1");
  has("feedback: sent 6, acknowledged 3, refused 2 (1 duplicate_feedback, 1 unknown_request), "
      "unacknowledged 1");
  has("from scheduled send");
  has("from actual send");
  has("send lateness");
  has("(100 answered requests recorded;");
  // The latency row: min, p50, p90, p99, p99.9, max, mean in microseconds.
  has("      1.0       1.0       1.5       1.9       2.0       2.0       1.3");
}

TEST(LoadReport, TableOfAClosedLoopRunWithoutFeedback) {
  LoadReport r;
  r.mode = "closed";
  r.concurrency = 8;
  r.endpoint = "tcp://127.0.0.1:5555";
  r.seed = 1;
  r.prompt_source = "data.csv";
  r.measured.sent = r.measured.answered = 5;
  r.seconds = 0.5;
  FillLatency(r.latency);
  const std::string t = FormatTable(r);
  EXPECT_NE(t.find("closed loop, 8 requests in flight -> tcp://127.0.0.1:5555 (seed 1)"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("errors 0 (none)"), std::string::npos) << t;
  EXPECT_NE(t.find("from send"), std::string::npos) << t;
  EXPECT_EQ(t.find("from actual send"), std::string::npos) << t;  // open loop only
  EXPECT_EQ(t.find("send lateness"), std::string::npos) << t;
  EXPECT_EQ(t.find("feedback:"), std::string::npos) << t;  // no feedback sent
}

// ---- ParseWarmup ------------------------------------------------------------------------

TEST(ParseWarmup, AcceptsRequestsAndTimes) {
  struct Case {
    const char* text;
    uint64_t requests;
    double seconds;
  };
  for (const Case& c :
       {Case{"", 0, 0.0}, Case{"0", 0, 0.0}, Case{"500", 500, 0.0}, Case{"1", 1, 0.0},
        Case{"2s", 0, 2.0}, Case{"1.5s", 0, 1.5}, Case{"0s", 0, 0.0}, Case{"300ms", 0, 0.3},
        Case{"0.5ms", 0, 0.0005}, Case{"0ms", 0, 0.0}}) {
    Result<Warmup> w = ParseWarmup(c.text);
    ASSERT_TRUE(w.ok()) << "'" << c.text << "': " << w.status().ToString();
    EXPECT_EQ(w->requests, c.requests) << c.text;
    EXPECT_DOUBLE_EQ(w->seconds, c.seconds) << c.text;
  }
}

TEST(ParseWarmup, RejectsEverythingElse) {
  for (const char* bad : {"abc", "-1", "-1s", "-5ms", "1.5", "2m", "2h", "s", "ms", "2 s", "1e3",
                          "infs", "nans", "2S", "10MS", "5x", "0x10", "+3"}) {
    Result<Warmup> w = ParseWarmup(bad);
    ASSERT_FALSE(w.ok()) << "'" << bad << "' was accepted";
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(w.status().message().find("--warmup '" + std::string(bad) + "'"), std::string::npos)
        << w.status().message();
  }
}

}  // namespace
}  // namespace messplus::loadgen
