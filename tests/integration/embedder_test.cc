// The embed stage with an external embedding worker over real sockets (inproc://, the stage
// hosted in this process), and the replay client against an endpoint nobody serves.
#include <atomic>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <gtest/gtest.h>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/protocol.h"
#include "pipeline/stop.h"
#include "stages/stages.h"
#include "tests/integration/harness.h"
#include "tools/replay_driver.h"

namespace messplus::itest {
namespace {

pipeline::Config EmbedConfig() {
  Result<pipeline::Config> c = pipeline::ParseConfig(R"(
models: [{name: small}, {name: large}]
tenants: [{name: default, alpha: 0.5}]
hashing: {dim_bits: 12}
runtime: {poll_interval_ms: 10, linger_ms: 0}
embed: {embedder_timeout_ms: 300, embedder_retry_ms: 60000}
endpoints:
  frontend: inproc://e-frontend
  requests: inproc://e-requests
  features: inproc://e-features
  decisions: inproc://e-decisions
  workers: inproc://e-workers
  replies: inproc://e-replies
  feedback: inproc://e-feedback
  updates: inproc://e-updates
  snapshots: inproc://e-snapshots
  embedder: inproc://e-embedder
)");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

std::optional<pipeline::Features> NextFeatures(zmq::socket_t& pull, Millis timeout) {
  zmq::pollitem_t item{pull.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
  zmq::message_t m;
  if (!pull.recv(m, zmq::recv_flags::dontwait)) return std::nullopt;
  Result<pipeline::Features> f = pipeline::DecodeAs<pipeline::Features>(m.to_string_view());
  if (!f.ok()) return std::nullopt;
  return std::move(*f);
}

TEST(Embedder, DenseVectorIsAddedAndASilentEmbedderFallsBackToHashing) {
  const pipeline::Config config = EmbedConfig();
  zmq::context_t zmq(1);
  // The embedding worker: answers the first request with a 16-dim vector, then goes silent.
  zmq::socket_t embedder(zmq, zmq::socket_type::router);
  embedder.bind("inproc://e-embedder");
  zmq::socket_t requests(zmq, zmq::socket_type::push);  // as ingest
  requests.bind("inproc://e-requests");
  auto host = stages::StageHost::Create("embed", config, zmq, pipeline::NullLogger()).value();
  auto stop = pipeline::StopSignal::Create().value();
  std::thread runner([&] { EXPECT_TRUE(host->Run(*stop).ok()); });
  zmq::socket_t features(zmq, zmq::socket_type::pull);  // as route
  features.connect("inproc://e-features");

  pipeline::Request r;
  r.id = "r1";
  r.text = "Which gas do plants absorb?";
  r.tenant = "default";
  requests.send(zmq::buffer(pipeline::EncodeToString(r)), zmq::send_flags::none);

  std::vector<zmq::message_t> ask;
  zmq::pollitem_t item{embedder.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, Millis(5000)), 1);
  ASSERT_TRUE(zmq::recv_multipart(embedder, std::back_inserter(ask)));
  ASSERT_EQ(ask.size(), 2u);
  Result<pipeline::EmbedRequest> er =
      pipeline::DecodeAs<pipeline::EmbedRequest>(ask[1].to_string_view());
  ASSERT_TRUE(er.ok());
  EXPECT_EQ(er->text, r.text);
  pipeline::EmbedReply reply{er->id, std::vector<float>(16, 0.25f)};
  embedder.send(ask[0], zmq::send_flags::sndmore);
  embedder.send(zmq::buffer(pipeline::EncodeToString(reply)), zmq::send_flags::none);
  std::optional<pipeline::Features> with = NextFeatures(features, Millis(5000));
  ASSERT_TRUE(with.has_value());

  // The same text again: the embedder does not answer; hashing only after the timeout.
  r.id = "r2";
  requests.send(zmq::buffer(pipeline::EncodeToString(r)), zmq::send_flags::none);
  std::optional<pipeline::Features> without = NextFeatures(features, Millis(5000));
  ASSERT_TRUE(without.has_value());
  EXPECT_EQ(without->request.id, "r2");
  EXPECT_GT(with->features.size(), without->features.size());
  EXPECT_EQ(host->metrics().RejectedCount(pipeline::Reason::kTimeout), 1.0);
  stop->Request();
  runner.join();
}

TEST(ReplayClient, UnreachableIngestIsATimeoutNotAHang) {
  MESSPLUS_REQUIRE_DATA(data, "messplus_llama3/messplus_llama3_arc_challenge.csv");
  TempDir dir;
  ProcessPipeline p(dir, PipelineOptions{});  // configured, never started
  Result<nlohmann::json> r = RunJson({"replay", "--config", p.config_path(), "--data", data,
                                      "--json", "--connect-timeout-ms", "500"},
                                     dir.path(), "replay-nothing", Millis(30000));
  ASSERT_FALSE(r.ok());  // no JSON: the command failed
  const std::string log = ReadFile(dir.path() + "/replay-nothing.log");
  EXPECT_NE(log.find("no answer from ingest at ipc://"), std::string::npos) << log;
}

}  // namespace
}  // namespace messplus::itest
