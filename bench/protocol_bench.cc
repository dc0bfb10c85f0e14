// Google Benchmark cases for the wire protocol (pipeline/protocol.h): encoding and decoding
// of every message type a request's path carries, at realistic sizes.
//
// Inputs (built once, the same for every case):
//   * the prompt: 370 characters of English (the mean MMLU prompt), id "lg1f2e3d4c-123456",
//     tenant "default", task "high_school_physics", an ingest timestamp;
//   * its features: the prompt hashed with the router's default options and the task= and
//     tenant= tags, as the embed stage does (about 700 non-zeros, 2 x 2.8 KB of bin);
//   * a decision for the Llama zoo of 3 models (served 1, run [1], explored, every vector
//     filled); a model answer of 600 characters with cost, latency and one metadata entry;
//   * a client reply with the predicted satisfaction of every model; an outcome with one
//     call; feedback by satisfaction and by per-model labels; state updates of both kinds.
// Each case encodes with one reused Encoder (as a stage does) or decodes with one reused
// Decoder into one reused Message (as the runtime does), validating against the zoo.
// Counters: bytes (encoded size) and bytes_per_second.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "bench/fixtures.h"
#include "pipeline/protocol.h"
#include "router/feature_hasher.h"
#include "router/zoo.h"

namespace messplus::bench {
namespace {

using namespace messplus::pipeline;  // NOLINT: the message structs, in a bench file

constexpr size_t kPromptChars = 370;
constexpr size_t kAnswerChars = 600;

struct Samples {
  std::vector<std::string> zoo = {"llama-3.2-1b-instruct", "llama-3.1-8b-instruct-bnb4bit",
                                  "llama-3.3-70b-instruct-bnb4bit"};
  Request request;
  Features features;
  DecisionMsg decision;
  ModelCall call;
  ModelReply reply;
  ClientReply client_reply;
  Outcome outcome;
  Feedback feedback;
  Feedback feedback_labels;
  StateUpdate update_outcome;
  StateUpdate update_feedback;
  Limits limits;

  Samples() {
    const router::HashingOptions hashing;
    request.id = "lg1f2e3d4c-123456";
    request.text = std::string(kEnglishPrompt.substr(0, kPromptChars));
    request.tenant = "default";
    request.task = "high_school_physics";
    request.ingest_ns = 1'764'000'000'123'456'789;

    const router::FeatureHasher hasher(hashing);
    router::FeatureHasher::Scratch scratch;
    const std::string task_tag = "task=" + request.task, tenant_tag = "tenant=" + request.tenant;
    const std::string_view tags[2] = {task_tag, tenant_tag};
    features.request = request;
    features.dim = hasher.dim();
    hasher.Hash(request.text, tags, &features.features, &scratch);

    router::Decision d;
    d.t = 123457;
    d.tenant = 0;
    d.task_key = 0x1234567890abcdefull;
    d.served = 1;
    d.chosen = 1;
    d.run = {1};
    d.explore = false;
    d.explore_probability = 0.031;
    d.run_probability = {0.01, 0.98, 0.01};
    d.p = {0.41, 0.63, 0.78};
    d.score = {0.012, -0.004, 0.021};
    d.cost_estimate = {81.5, 390.25, 2290.0};
    d.q = 3.25;
    d.v = 1e-4;
    d.alpha = 0.52;
    decision.request = request;
    decision.dim = features.dim;
    decision.features = features.features;
    decision.decision = d;

    call.request_id = request.id;
    call.call_id = 987654;
    call.model = zoo[1];
    call.text = request.text;
    call.task = request.task;
    call.attempt = 1;

    const std::string answer(kEnglishPrompt.substr(100, kAnswerChars));
    reply.call_id = call.call_id;
    reply.request_id = request.id;
    reply.model = zoo[1];
    reply.answer = answer;
    reply.cost = 391.7;
    reply.latency_s = 0.84;
    reply.metadata = {{"recorded_satisfaction", "1"}};

    client_reply.request_id = request.id;
    client_reply.model = zoo[1];
    client_reply.answer = answer;
    client_reply.cost = 391.7;
    client_reply.total_cost = 391.7;
    client_reply.models_run = {zoo[1]};
    client_reply.explored = false;
    client_reply.predicted = {{zoo[0], 0.41}, {zoo[1], 0.63}, {zoo[2], 0.78}};
    client_reply.metadata = reply.metadata;

    outcome.request_id = request.id;
    outcome.tenant = request.tenant;
    outcome.task = request.task;
    outcome.decision = d;
    outcome.dim = features.dim;
    outcome.features = features.features;
    outcome.calls = {CallOutcome{zoo[1], true, 391.7, reply.metadata, ""}};

    feedback.request_id = request.id;
    feedback.satisfaction = 1.0;
    feedback.token = 42;
    feedback_labels.request_id = request.id;
    feedback_labels.labels = {{zoo[1], 1.0}, {zoo[2], 0.0}};
    feedback_labels.token = 43;

    update_outcome.epoch = 0x5eed;
    update_outcome.seq = 246913;
    update_outcome.kind = UpdateKind::kOutcome;
    update_outcome.decision = d;
    update_outcome.costs = {{1, 391.7}};
    update_feedback = update_outcome;
    update_feedback.seq = 246914;
    update_feedback.kind = UpdateKind::kFeedback;
    update_feedback.costs.clear();
    update_feedback.labels = {{1, 1.0}};
    update_feedback.dim = features.dim;
    update_feedback.features = features.features;

    limits.dim = hasher.dim();
    limits.models = &zoo;
    limits.num_tenants = 1;
  }
};

const Samples& S() {
  static const Samples samples;
  return samples;
}

template <typename T>
void BM_Encode(benchmark::State& state, const T& message) {
  Encoder encoder;
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string_view out = encoder.Encode(message);
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

template <typename T>
void BM_Decode(benchmark::State& state, const T& message) {
  const std::string frame = EncodeToString(message);
  Decoder decoder(S().limits);
  Message out{std::in_place_type<T>};
  for (auto _ : state) {
    Status st = decoder.Decode(frame, &out);
    if (!st.ok()) {
      state.SkipWithError(st.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(&out);
  }
  state.counters["bytes"] = static_cast<double>(frame.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size()));
}

#define MESSPLUS_PROTOCOL_CASES(name, member)                                      \
  void BM_Encode_##name(benchmark::State& state) { BM_Encode(state, S().member); } \
  void BM_Decode_##name(benchmark::State& state) { BM_Decode(state, S().member); } \
  BENCHMARK(BM_Encode_##name);                                                     \
  BENCHMARK(BM_Decode_##name)

MESSPLUS_PROTOCOL_CASES(request, request);
MESSPLUS_PROTOCOL_CASES(features, features);
MESSPLUS_PROTOCOL_CASES(decision, decision);
MESSPLUS_PROTOCOL_CASES(model_call, call);
MESSPLUS_PROTOCOL_CASES(model_reply, reply);
MESSPLUS_PROTOCOL_CASES(client_reply, client_reply);
MESSPLUS_PROTOCOL_CASES(outcome, outcome);
MESSPLUS_PROTOCOL_CASES(feedback, feedback);
MESSPLUS_PROTOCOL_CASES(feedback_labels, feedback_labels);
MESSPLUS_PROTOCOL_CASES(state_update_outcome, update_outcome);
MESSPLUS_PROTOCOL_CASES(state_update_feedback, update_feedback);

}  // namespace
}  // namespace messplus::bench

BENCHMARK_MAIN();
