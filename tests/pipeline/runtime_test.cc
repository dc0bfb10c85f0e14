#include "pipeline/runtime.h"

#include <thread>

#include <zmq_addon.hpp>

#include <gtest/gtest.h>

#include "pipeline/client.h"

namespace messplus::pipeline {
namespace {

Config TestConfig() {
  Result<Config> c = ParseConfig(R"(
models: [{name: small}, {name: large}]
tenants: [{name: default, alpha: 0.5}]
runtime: {poll_interval_ms: 10, drain_timeout_ms: 2000, linger_ms: 0}
endpoints:
  frontend: inproc://rt-frontend
  requests: inproc://rt-requests
  features: inproc://rt-features
  decisions: inproc://rt-decisions
  workers: inproc://rt-workers
  replies: inproc://rt-replies
  feedback: inproc://rt-feedback
  updates: inproc://rt-updates
  snapshots: inproc://rt-snapshots
)");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

// Answers each request on the ROUTER with a client_reply echoing the text; records the
// order in which messages arrived from each port.
class EchoStage final : public Stage {
 public:
  void OnMessage(Inbound& in, Outbox& out) override {
    order.push_back(in.port);
    auto* r = std::get_if<Request>(&in.message);
    if (r != nullptr && !in.from.empty()) {  // only the ROUTER port can answer
      if (r->text == "reject me") {
        out.Reject(in, Reason::kUnknownTenant, "no such tenant", r->id);
        return;
      }
      ClientReply reply;
      reply.request_id = r->id;
      reply.model = "small";
      reply.answer = r->text;
      out.Send(0, reply, &in.from);
    }
  }
  void OnTick(TimePoint, Outbox&) override { ++ticks; }
  void OnShutdown(Outbox&) override { shut_down = true; }
  std::vector<size_t> order;
  int ticks = 0;
  bool shut_down = false;
};

struct RuntimeFixture {
  RuntimeFixture(std::vector<PortSpec> ports)
      : config(TestConfig()),
        zoo(config.ModelNames()),
        limits(config.MakeLimits(&zoo)),
        metrics(StageMetrics::Create("test", StageRuntime::SocketNames(ports))),
        ctx{config, NullLogger(), clock, *metrics},
        runtime(zmq, ctx, std::move(ports), limits) {
    EXPECT_TRUE(runtime.Open().ok());
    stop = StopSignal::Create().value();
  }
  void Start() {
    thread = std::thread([this] { result = runtime.Run(stage, *stop); });
  }
  void StopAndJoin() {
    stop->Request();
    thread.join();
  }

  zmq::context_t zmq{1};
  Config config;
  std::vector<std::string> zoo;
  Limits limits;
  SystemClock clock;
  std::unique_ptr<StageMetrics> metrics;
  StageContext ctx;
  StageRuntime runtime;
  std::unique_ptr<StopSignal> stop;
  EchoStage stage;
  std::thread thread;
  Status result;
};

PortSpec RouterPort() {
  return {"frontend",
          zmq::socket_type::router,
          "inproc://rt-frontend",
          true,
          true,
          TypeBit(MsgType::kRequest),
          true,
          false,
          1000};
}

TEST(StageRuntime, AnswersUndecodableFramesAndKeepsServing) {
  RuntimeFixture f({RouterPort()});
  f.Start();
  Client client(f.zmq, f.config, "inproc://rt-frontend");
  Message m;
  ASSERT_TRUE(client.SendRaw("definitely not msgpack"));
  ASSERT_TRUE(*client.Receive(&m, Millis(5000)));
  ASSERT_TRUE(std::holds_alternative<ErrorReply>(m));
  EXPECT_EQ(std::get<ErrorReply>(m).code, "malformed_msgpack");

  ASSERT_TRUE(client.Send(SnapshotRequest{1}));  // a type this socket does not take
  ASSERT_TRUE(*client.Receive(&m, Millis(5000)));
  EXPECT_EQ(std::get<ErrorReply>(m).code, "unexpected_message");

  Request r;
  r.id = "a";
  r.text = "reject me";
  ASSERT_TRUE(client.Send(r));  // rejected by the stage itself, answered by the runtime
  ASSERT_TRUE(*client.Receive(&m, Millis(5000)));
  EXPECT_EQ(std::get<ErrorReply>(m).code, "unknown_tenant");
  EXPECT_EQ(std::get<ErrorReply>(m).request_id, "a");

  r.id = "b";
  r.text = "hello";
  ASSERT_TRUE(client.Send(r));
  ASSERT_TRUE(*client.Receive(&m, Millis(5000)));
  ASSERT_TRUE(std::holds_alternative<ClientReply>(m));
  EXPECT_EQ(std::get<ClientReply>(m).answer, "hello");
  f.StopAndJoin();
  EXPECT_TRUE(f.result.ok()) << f.result.ToString();
  EXPECT_TRUE(f.stage.shut_down);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kMalformedMsgpack), 1.0);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kUnexpectedMessage), 1.0);
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kUnknownTenant), 1.0);
  EXPECT_EQ(f.metrics->ReceivedCount(0, MsgType::kRequest), 2.0);
  EXPECT_EQ(f.metrics->SentCount(0, MsgType::kClientReply), 1.0);
}

TEST(StageRuntime, MultiFrameMessagesOnAPullSocketAreRejected) {
  RuntimeFixture f({{"in", zmq::socket_type::pull, "inproc://rt-requests", true, true,
                     TypeBit(MsgType::kRequest), false, false, 1000}});
  f.Start();
  zmq::socket_t push(f.zmq, zmq::socket_type::push);
  push.connect("inproc://rt-requests");
  Request r;
  r.text = "x";
  const std::string frame = EncodeToString(r);
  std::vector<zmq::const_buffer> parts = {zmq::buffer(frame), zmq::buffer(frame)};
  ASSERT_TRUE(zmq::send_multipart(push, parts));
  ASSERT_TRUE(push.send(zmq::buffer(frame), zmq::send_flags::none));
  // Bounded wait for the one good message.
  for (int i = 0; i < 500 && f.metrics->ReceivedCount(0, MsgType::kRequest) < 1.0; ++i) {
    std::this_thread::sleep_for(Millis(10));
  }
  f.StopAndJoin();
  EXPECT_TRUE(f.result.ok()) << f.result.ToString();
  EXPECT_EQ(f.metrics->RejectedCount(Reason::kMalformedMsgpack), 1.0);
  EXPECT_EQ(f.metrics->ReceivedCount(0, MsgType::kRequest), 1.0);
}

TEST(StageRuntime, EarlierPortsAreServedFirst) {
  RuntimeFixture f({{"first", zmq::socket_type::pull, "inproc://rt-updates", true, true,
                     TypeBit(MsgType::kRequest), false, false, 1000},
                    {"second", zmq::socket_type::pull, "inproc://rt-features", true, true,
                     TypeBit(MsgType::kRequest), false, false, 1000}});
  zmq::socket_t a(f.zmq, zmq::socket_type::push), b(f.zmq, zmq::socket_type::push);
  a.connect("inproc://rt-updates");
  b.connect("inproc://rt-features");
  Request r;
  r.text = "x";
  const std::string frame = EncodeToString(r);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.send(zmq::buffer(frame), zmq::send_flags::none));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.send(zmq::buffer(frame), zmq::send_flags::none));
  f.Start();
  for (int i = 0; i < 500 && f.metrics->ReceivedCount(1, MsgType::kRequest) < 5.0; ++i) {
    std::this_thread::sleep_for(Millis(10));
  }
  f.StopAndJoin();
  EXPECT_TRUE(f.result.ok()) << f.result.ToString();
  ASSERT_EQ(f.stage.order.size(), 10u);
  EXPECT_EQ(f.stage.order, (std::vector<size_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
}

TEST(StageRuntime, TimersRunWithoutTraffic) {
  RuntimeFixture f({RouterPort()});
  f.Start();
  for (int i = 0; i < 500 && f.metrics->RejectedTotal() == 0.0; ++i) {
    std::this_thread::sleep_for(Millis(10));
    if (i > 10) break;
  }
  f.StopAndJoin();
  EXPECT_GT(f.stage.ticks, 2);
}

TEST(StageRuntime, BindFailureIsAClearError) {
  Config config = TestConfig();
  std::vector<std::string> zoo = config.ModelNames();
  Limits limits = config.MakeLimits(&zoo);
  zmq::context_t zmq(1);
  SystemClock clock;
  auto metrics = StageMetrics::Create("test", {"x"});
  StageContext ctx{config, NullLogger(), clock, *metrics};
  StageRuntime runtime(
      zmq, ctx,
      {{"x", zmq::socket_type::pull, "tcp://256.1.1.1:1", true, true, 0, false, false, 10}},
      limits);
  Status st = runtime.Open();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("tcp://256.1.1.1:1"), std::string::npos);
}

}  // namespace
}  // namespace messplus::pipeline
