#include "pipeline/config.h"

#include <string>

#include <gtest/gtest.h>

namespace messplus::pipeline {
namespace {

const char kMinimal[] = R"(
models:
  - name: small
  - name: large
    cost_prior: 100
tenants:
  - name: gold
    alpha: 0.8
  - name: free
    alpha: 0.5
endpoints:
  frontend: inproc://frontend
  requests: inproc://requests
  features: inproc://features
  decisions: inproc://decisions
  workers: inproc://workers
  replies: inproc://replies
  feedback: inproc://feedback
  updates: inproc://updates
  snapshots: inproc://snapshots
)";

std::string WithExtra(const std::string& extra) { return std::string(kMinimal) + extra; }

// Every line of a config error, for checking that each problem is reported.
bool Mentions(const Status& st, const std::string& text) {
  return st.message().find(text) != std::string::npos;
}

TEST(Config, MinimalFileGetsTheDefaults) {
  Result<Config> c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->router.models.size(), 2u);
  EXPECT_DOUBLE_EQ(c->router.models[1].cost_prior, 100.0);
  EXPECT_EQ(c->default_tenant, "gold");  // the first tenant
  EXPECT_EQ(c->router.policy, "adaptive");
  EXPECT_EQ(c->max_text_bytes, 1u << 20);
  EXPECT_EQ(c->dispatch.retries, 1);
  EXPECT_EQ(c->ingest.metrics_port, 0);
  EXPECT_EQ(c->ModelNames(), (std::vector<std::string>{"small", "large"}));
}

TEST(Config, EverySectionIsRead) {
  Result<Config> c = ParseConfig(WithExtra(R"(
default_tenant: free
policy: paper
v: 0.001
c: 0.2
seed: 7
adaptive:
  start_backlog: 3
  count_pending: false
hashing: {dim_bits: 12, char_ngram_min: 0, char_ngram_max: 0}
predictor: {learning_rate: 0.1}
limits: {max_text_bytes: 1000, max_frame_bytes: 1000000}
log_level: debug
runtime: {poll_interval_ms: 20, drain_timeout_ms: 100, linger_ms: 0}
ingest: {metrics_port: 9001, hwm: 10, request_timeout_ms: 5, max_in_flight: 3}
embed: {embedder_timeout_ms: 7, embedding_weight: 0.5}
route: {snapshot_timeout_ms: 9, silence_timeout_ms: 11}
dispatch: {call_timeout_ms: 13, retries: 2, heartbeat_interval_ms: 15, heartbeat_liveness: 4}
feedback: {checkpoint_path: /tmp/x.ckpt, checkpoint_period_ms: 17, join_window_outcomes: 19}
worker: {heartbeat_interval_ms: 21, reconnect_initial_ms: 23, reconnect_max_ms: 25}
)"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->default_tenant, "free");
  EXPECT_EQ(c->router.policy, "paper");
  EXPECT_EQ(c->router.seed, 7u);
  EXPECT_DOUBLE_EQ(c->router.adaptive.start_backlog, 3.0);
  EXPECT_FALSE(c->router.adaptive.count_pending);
  EXPECT_EQ(c->router.hashing.dim_bits, 12);
  EXPECT_EQ(c->router.hashing.max_text_bytes, 1000u);
  EXPECT_DOUBLE_EQ(c->router.predictor.learning_rate, 0.1);
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->poll_interval, Millis(20));
  EXPECT_EQ(c->ingest.metrics_port, 9001);
  EXPECT_EQ(c->ingest.max_in_flight, 3u);
  EXPECT_EQ(c->embed.embedder_timeout, Millis(7));
  EXPECT_EQ(c->route.silence_timeout, Millis(11));
  EXPECT_EQ(c->dispatch.retries, 2);
  EXPECT_EQ(c->dispatch.heartbeat_liveness, 4);
  EXPECT_EQ(c->feedback.checkpoint_path, "/tmp/x.ckpt");
  EXPECT_EQ(c->feedback.join_window_outcomes, 19u);
  EXPECT_EQ(c->worker.reconnect_max, Millis(25));
  Limits lim = c->MakeLimits();
  EXPECT_EQ(lim.dim, 1u << 12);
  EXPECT_EQ(lim.num_tenants, 2u);
}

TEST(Config, UnknownKeysAreErrorsAtEveryLevel) {
  Result<Config> c = ParseConfig(WithExtra(R"(
colour: blue
dispatch: {call_timeout_ms: 10, retires: 2}
hashing: {dimbits: 3}
)"));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Mentions(c.status(), "colour: unknown key"));
  EXPECT_TRUE(Mentions(c.status(), "dispatch.retires: unknown key"));
  EXPECT_TRUE(Mentions(c.status(), "hashing.dimbits: unknown key"));
}

TEST(Config, EveryProblemIsReportedInOneError) {
  Result<Config> c = ParseConfig(R"(
models:
  - name: a
  - name: a
tenants:
  - name: t
    alpha: 1.5
default_tenant: nobody
policy: paper
v: -1
adaptive: {no_such_setting: 1}
limits: {max_text_bytes: 0}
log_level: loud
endpoints:
  frontend: http://x
  requests: inproc://same
  features: inproc://same
ingest: {metrics_port: 70000, hwm: 0, request_timeout_ms: 0}
dispatch: {retries: 9, heartbeat_liveness: 0, call_timeout_ms: -5}
feedback: {join_window_outcomes: 0}
worker: {reconnect_initial_ms: 100, reconnect_max_ms: 10}
)");
  ASSERT_FALSE(c.ok());
  const Status& st = c.status();
  for (const char* expected :
       {"listed twice", "alpha must be in [0, 1]", "default_tenant: 'nobody'", "V must be",
        "adaptive.no_such_setting", "limits.max_text_bytes", "log_level: 'loud'",
        "endpoints.frontend: 'http://x'", "endpoints.features: 'inproc://same' is used twice",
        "endpoints.decisions: is required", "ingest.metrics_port", "ingest.hwm",
        "ingest.request_timeout_ms", "dispatch.retries", "dispatch.heartbeat_liveness",
        "dispatch.call_timeout_ms", "feedback.join_window_outcomes", "worker.reconnect_max_ms"}) {
    EXPECT_TRUE(Mentions(st, expected)) << "missing: " << expected << "\nin:\n" << st.message();
  }
}

TEST(Config, WrongTypesAreReported) {
  Result<Config> c = ParseConfig(WithExtra(R"(
seed: many
ingest: {hwm: [1, 2], max_in_flight: -3}
hashing: {word_bigrams: maybe}
)"));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Mentions(c.status(), "seed: must be"));
  EXPECT_TRUE(Mentions(c.status(), "ingest.hwm: must be a single value"));
  EXPECT_TRUE(Mentions(c.status(), "ingest.max_in_flight: must be a non-negative integer"));
  EXPECT_TRUE(Mentions(c.status(), "hashing.word_bigrams: must be true or false"));
}

TEST(Config, SameMetricsPortTwiceIsAnError) {
  Result<Config> c = ParseConfig(WithExtra(R"(
route: {metrics_port: 9100}
dispatch: {metrics_port: 9100}
)"));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Mentions(c.status(), "dispatch.metrics_port: 9100 is used by another stage"));
}

TEST(Config, WorkerHeartbeatsMustFitDispatchLiveness) {
  Result<Config> c = ParseConfig(WithExtra(R"(
dispatch: {heartbeat_interval_ms: 200, heartbeat_liveness: 3}
worker: {heartbeat_interval_ms: 1000}
)"));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Mentions(c.status(), "worker.heartbeat_interval_ms: must be at most half"));
}

TEST(Config, InvalidYamlIsAnError) {
  Result<Config> c = ParseConfig("models: [unclosed");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Mentions(c.status(), "not valid YAML"));
}

TEST(Config, MissingFileIsNotFound) {
  Result<Config> c = LoadConfig("/nonexistent/messplus.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

TEST(Config, ShippedConfigsAreValid) {
  for (const char* name : {"messplus.example.yaml", "embedded.yaml", "ipc.yaml"}) {
    Result<Config> c = LoadConfig(std::string(MESSPLUS_SOURCE_DIR) + "/config/" + name);
    EXPECT_TRUE(c.ok()) << name << ": " << c.status().ToString();
  }
}

TEST(Config, EndpointSchemes) {
  EXPECT_TRUE(ValidEndpoint("inproc://a"));
  EXPECT_TRUE(ValidEndpoint("ipc:///tmp/a"));
  EXPECT_TRUE(ValidEndpoint("tcp://127.0.0.1:5555"));
  EXPECT_FALSE(ValidEndpoint("tcp://"));
  EXPECT_FALSE(ValidEndpoint("udp://x"));
}

}  // namespace
}  // namespace messplus::pipeline
