// Malformed frames to every input socket of every stage, each stage running alone as its
// own process with the test playing its neighbours: garbage bytes, a field of the wrong
// msgpack type, a missing field and a 10 MB text. Each is counted under its reason (read from
// the stage's Prometheus endpoint), answered with an `error` where the sender can be (ROUTER
// sockets), and the stage then serves the next valid message.
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <gtest/gtest.h>

#include "pipeline/config.h"
#include "pipeline/protocol.h"
#include "router/router.h"
#include "tests/integration/harness.h"

namespace messplus::itest {
namespace {

using pipeline::EncodeToString;
using pipeline::Message;
using pipeline::Reason;

constexpr size_t kTenMegabytes = 10u << 20;

// A frame "map {v: 1, type: <type>, <field>: 42}", or "<field>: \"42\"" for integer fields.
std::string WrongType(const std::string& type, const std::string& field, bool as_string = false) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(3);
  pk.pack("v");
  pk.pack(1);
  pk.pack("type");
  pk.pack(type);
  pk.pack(field);
  if (as_string) {
    pk.pack("42");
  } else {
    pk.pack(42);
  }
  return std::string(buf.data(), buf.size());
}

// A frame "map {v: 1, type: <type>}": every required field missing.
std::string Missing(const std::string& type) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(2);
  pk.pack("v");
  pk.pack(1);
  pk.pack("type");
  pk.pack(type);
  return std::string(buf.data(), buf.size());
}

const std::string kGarbage = std::string("\xc1\xc1\xc1 this is not msgpack", 24);

pipeline::Request BigRequest() {
  pipeline::Request r;
  r.id = "big";
  r.text.assign(kTenMegabytes, 'a');
  r.tenant = "default";
  return r;
}

pipeline::Request ValidRequest(const std::string& id) {
  pipeline::Request r;
  r.id = id;
  r.text = "What do plants absorb from the air?";
  r.tenant = "default";
  r.task = "arc";
  return r;
}

class Sock {
 public:
  Sock(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint, bool bind)
      : s_(ctx, type) {
    s_.set(zmq::sockopt::linger, 0);
    if (type == zmq::socket_type::sub) s_.set(zmq::sockopt::subscribe, "");
    if (bind) {
      s_.bind(endpoint);
    } else {
      s_.connect(endpoint);
    }
  }
  void Send(const std::string& frame) {
    ASSERT_TRUE(s_.send(zmq::buffer(frame), zmq::send_flags::none));
  }
  // The next single-frame message within `timeout`, decoded; nullopt on timeout.
  std::optional<Message> Recv(Millis timeout) {
    zmq::pollitem_t item{s_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t frame;
    if (!s_.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    pipeline::Decoder decoder{pipeline::Limits{}};
    Message m;
    if (!decoder.Decode(frame.to_string_view(), &m).ok()) return std::nullopt;
    return m;
  }
  zmq::socket_t& socket() { return s_; }

 private:
  zmq::socket_t s_;
};

// The stage's count of rejects for `reason` reaches `n`.
bool RejectedReaches(int port, Reason reason, double n) {
  return WaitUntil(
      [&] {
        return Scrape(port, "messplus_rejected_total",
                      {{"reason", std::string(pipeline::ReasonName(reason))}})
                   .value_or(0) >= n;
      },
      Millis(10000));
}

// Sends the four bad frames and checks that each is counted under its reason and, with
// `replies`, answered with that code. The 10 MB frame is rejected as `big_reason`.
void SendBadFrames(Sock& to, int metrics_port, const std::string& type,
                   const std::string& wrong_frame, const std::string& ten_megabytes, bool replies,
                   Reason big_reason = Reason::kOversized) {
  ASSERT_GE(ten_megabytes.size(), kTenMegabytes);
  const std::pair<std::string, Reason> cases[] = {
      {kGarbage, Reason::kMalformedMsgpack},
      {wrong_frame, Reason::kWrongType},
      {Missing(type), Reason::kMissingField},
      {ten_megabytes, big_reason},
  };
  for (const auto& [frame, reason] : cases) {
    const double already = Scrape(metrics_port, "messplus_rejected_total",
                                  {{"reason", std::string(pipeline::ReasonName(reason))}})
                               .value_or(0.0);
    to.Send(frame);
    EXPECT_TRUE(RejectedReaches(metrics_port, reason, already + 1.0))
        << type << ": no " << pipeline::ReasonName(reason) << " counted";
    if (replies) {
      std::optional<Message> m = to.Recv(Millis(10000));
      ASSERT_TRUE(m.has_value()) << "no error reply for " << pipeline::ReasonName(reason);
      ASSERT_TRUE(std::holds_alternative<pipeline::ErrorReply>(*m));
      EXPECT_EQ(std::get<pipeline::ErrorReply>(*m).code, pipeline::ReasonName(reason));
    }
  }
}

struct Fixture {
  Fixture() : p(dir, PipelineOptions{}) {
    Result<pipeline::Config> c = pipeline::LoadConfig(p.config_path());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) config = *c;
  }
  std::string Endpoint(const std::string& name) { return p.endpoint(name); }
  // Waits for the stage's metrics endpoint: the stage is up.
  bool Up(const std::string& stage) {
    return WaitUntil(
        [&] { return HttpGet(p.metrics_port(stage), "/metrics", Millis(500)).has_value(); },
        Millis(20000));
  }
  TempDir dir;
  ProcessPipeline p;
  pipeline::Config config;
  zmq::context_t zmq{1};
};

TEST(MalformedFrames, IngestAnswersEachAndForwardsTheNextRequest) {
  Fixture f;
  ASSERT_TRUE(f.p.StartStage("ingest").ok());
  ASSERT_TRUE(f.Up("ingest"));
  Sock requests(f.zmq, zmq::socket_type::pull, f.Endpoint("requests"), false);  // as embed
  Sock client(f.zmq, zmq::socket_type::dealer, f.Endpoint("frontend"), false);
  const int port = f.p.metrics_port("ingest");
  SendBadFrames(client, port, "request", WrongType("request", "text"), EncodeToString(BigRequest()),
                true);
  client.Send(EncodeToString(ValidRequest("good")));
  std::optional<Message> forwarded = requests.Recv(Millis(10000));
  if (!forwarded) {
    std::optional<Message> m = client.Recv(Millis(100));
    if (m && std::holds_alternative<pipeline::ErrorReply>(*m)) {
      ADD_FAILURE() << "ingest answered " << std::get<pipeline::ErrorReply>(*m).code << ": "
                    << std::get<pipeline::ErrorReply>(*m).message;
    }
  }
  ASSERT_TRUE(forwarded && std::holds_alternative<pipeline::Request>(*forwarded));
  EXPECT_EQ(std::get<pipeline::Request>(*forwarded).id, "good");

  // The replies socket (from dispatch and the collector) has nobody to answer: counted only.
  Sock replies(f.zmq, zmq::socket_type::push, f.Endpoint("replies"), false);
  pipeline::ClientReply big;
  big.request_id = "good";
  big.model = "llama-3.2-1b-instruct";
  big.answer.assign(kTenMegabytes, 'b');
  const std::pair<std::string, Reason> cases[] = {
      {kGarbage, Reason::kMalformedMsgpack},
      {WrongType("client_reply", "request_id"), Reason::kWrongType},
      {Missing("client_reply"), Reason::kMissingField},
      {EncodeToString(big), Reason::kOversized}};
  for (const auto& [frame, reason] : cases) {
    replies.Send(frame);
    EXPECT_TRUE(RejectedReaches(port, reason, 2.0)) << pipeline::ReasonName(reason);
  }
  // ... and the good reply still reaches its client.
  pipeline::ClientReply good;
  good.request_id = "good";
  good.model = "llama-3.2-1b-instruct";
  good.answer = "CO2";
  replies.Send(EncodeToString(good));
  std::optional<Message> answer = client.Recv(Millis(10000));
  ASSERT_TRUE(answer && std::holds_alternative<pipeline::ClientReply>(*answer));
  EXPECT_EQ(std::get<pipeline::ClientReply>(*answer).answer, "CO2");
}

TEST(MalformedFrames, EmbedCountsEachAndHashesTheNextRequest) {
  Fixture f;
  Sock requests(f.zmq, zmq::socket_type::push, f.Endpoint("requests"), true);  // as ingest
  ASSERT_TRUE(f.p.StartStage("embed").ok());
  ASSERT_TRUE(f.Up("embed"));
  Sock features(f.zmq, zmq::socket_type::pull, f.Endpoint("features"), false);  // as route
  SendBadFrames(requests, f.p.metrics_port("embed"), "request", WrongType("request", "text"),
                EncodeToString(BigRequest()), false);
  requests.Send(EncodeToString(ValidRequest("good")));
  std::optional<Message> out = features.Recv(Millis(10000));
  ASSERT_TRUE(out && std::holds_alternative<pipeline::Features>(*out));
  EXPECT_EQ(std::get<pipeline::Features>(*out).request.id, "good");
  EXPECT_FALSE(std::get<pipeline::Features>(*out).features.empty());
}

TEST(MalformedFrames, RouteCountsBadFeaturesAndUpdatesAndDecidesTheNext) {
  Fixture f;
  Sock features(f.zmq, zmq::socket_type::push, f.Endpoint("features"), true);      // as embed
  Sock decisions(f.zmq, zmq::socket_type::pull, f.Endpoint("decisions"), true);    // as dispatch
  Sock updates(f.zmq, zmq::socket_type::pub, f.Endpoint("updates"), true);         // as collector
  Sock snapshots(f.zmq, zmq::socket_type::router, f.Endpoint("snapshots"), true);  // as collector
  ASSERT_TRUE(f.p.StartStage("route").ok());
  ASSERT_TRUE(f.Up("route"));
  const int port = f.p.metrics_port("route");

  // Answer the replica's snapshot request, so it reads updates.
  zmq::pollitem_t item{snapshots.socket().handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, Millis(10000)), 1);
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(snapshots.socket(), std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);
  Result<pipeline::SnapshotRequest> ask =
      pipeline::DecodeAs<pipeline::SnapshotRequest>(frames[1].to_string_view());
  ASSERT_TRUE(ask.ok());
  auto router = router::Router::Create(f.config.router).value();
  const std::string snap =
      EncodeToString(pipeline::StateSnapshot{ask->nonce, 9, 0, router->SaveState()});
  snapshots.socket().send(frames[0], zmq::send_flags::sndmore);
  snapshots.socket().send(zmq::buffer(snap), zmq::send_flags::none);
  ASSERT_TRUE(WaitUntil([&] { return Scrape(port, "messplus_route_synced").value_or(0) == 1; },
                        Millis(10000)));

  pipeline::Features big;
  big.request = BigRequest();
  big.dim = f.config.router.hashing.dim();
  SendBadFrames(features, port, "features", WrongType("features", "request"), EncodeToString(big),
                false);
  // Bad updates are counted too (the PUB side cannot be answered).
  updates.Send(kGarbage);
  updates.Send(WrongType("state_update", "event"));
  EXPECT_TRUE(RejectedReaches(port, Reason::kMalformedMsgpack, 2.0));
  EXPECT_TRUE(RejectedReaches(port, Reason::kWrongType, 2.0));

  pipeline::Features good;
  good.request = ValidRequest("good");
  good.dim = f.config.router.hashing.dim();
  good.features.push_back(3, 1.0f);
  features.Send(EncodeToString(good));
  std::optional<Message> out = decisions.Recv(Millis(10000));
  ASSERT_TRUE(out && std::holds_alternative<pipeline::DecisionMsg>(*out));
  EXPECT_EQ(std::get<pipeline::DecisionMsg>(*out).request.id, "good");
}

TEST(MalformedFrames, DispatchCountsBadDecisionsAnswersBadWorkersAndCallsTheNext) {
  Fixture f;
  ASSERT_TRUE(f.p.StartStage("dispatch").ok());
  ASSERT_TRUE(f.Up("dispatch"));
  const int port = f.p.metrics_port("dispatch");
  Sock decisions(f.zmq, zmq::socket_type::push, f.Endpoint("decisions"), false);  // as route
  Sock worker(f.zmq, zmq::socket_type::dealer, f.Endpoint("workers"), false);

  pipeline::DecisionMsg big;
  big.request = BigRequest();
  SendBadFrames(decisions, port, "decision", WrongType("decision", "request"), EncodeToString(big),
                false);
  pipeline::ModelReply bad_reply;
  bad_reply.call_id = 1;
  bad_reply.model = "llama-3.2-1b-instruct";
  bad_reply.answer.assign(kTenMegabytes, 'x');
  SendBadFrames(worker, port, "model_reply", WrongType("model_reply", "model"),
                EncodeToString(bad_reply), true);
  // A worker of a model that is not in the zoo is told so.
  worker.Send(EncodeToString(pipeline::WorkerReady{"gpt-99", "impostor"}));
  std::optional<Message> e = worker.Recv(Millis(10000));
  ASSERT_TRUE(e && std::holds_alternative<pipeline::ErrorReply>(*e));
  EXPECT_EQ(std::get<pipeline::ErrorReply>(*e).code, "unknown_model");

  worker.Send(EncodeToString(pipeline::WorkerReady{"llama-3.2-1b-instruct", "w"}));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Scrape(port, "messplus_dispatch_workers", {{"model", "llama-3.2-1b-instruct"}})
                   .value_or(0) == 1;
      },
      Millis(10000)));
  auto router = router::Router::Create(f.config.router).value();
  pipeline::DecisionMsg good;
  good.request = ValidRequest("good");
  good.dim = f.config.router.hashing.dim();
  good.features.push_back(3, 1.0f);
  ASSERT_TRUE(router->Decide({&good.features, 0, "arc"}, &good.decision).ok());
  good.decision.served = good.decision.chosen = 0;  // the model our worker serves
  good.decision.run = {0};
  good.decision.explore = false;
  decisions.Send(EncodeToString(good));
  // Heartbeats may come first; the call must come.
  std::optional<Message> call;
  ASSERT_TRUE(WaitUntil(
      [&] {
        call = worker.Recv(Millis(200));
        return call && std::holds_alternative<pipeline::ModelCall>(*call);
      },
      Millis(10000)));
  EXPECT_EQ(std::get<pipeline::ModelCall>(*call).request_id, "good");
}

TEST(MalformedFrames, CollectorCountsBadInputAnswersBadSnapshotRequestsAndServesTheNext) {
  Fixture f;
  ASSERT_TRUE(f.p.StartStage("feedback").ok());
  ASSERT_TRUE(f.Up("feedback"));
  const int port = f.p.metrics_port("feedback");
  Sock input(f.zmq, zmq::socket_type::push, f.Endpoint("feedback"), false);  // as dispatch
  Sock replica(f.zmq, zmq::socket_type::dealer, f.Endpoint("snapshots"), false);

  pipeline::Outcome big;
  big.request_id = "big";
  big.tenant = "default";
  big.task.assign(kTenMegabytes, 't');  // over the 128-byte name limit and in a 10 MB frame
  SendBadFrames(input, port, "feedback", WrongType("feedback", "request_id"), EncodeToString(big),
                false);
  // The snapshot socket takes only snapshot requests: a 10 MB request there is unexpected.
  SendBadFrames(replica, port, "state_snapshot_request",
                WrongType("state_snapshot_request", "nonce", true), EncodeToString(BigRequest()),
                true, Reason::kUnexpectedMessage);

  replica.Send(EncodeToString(pipeline::SnapshotRequest{5}));
  std::optional<Message> snap = replica.Recv(Millis(10000));
  ASSERT_TRUE(snap && std::holds_alternative<pipeline::StateSnapshot>(*snap));
  EXPECT_EQ(std::get<pipeline::StateSnapshot>(*snap).nonce, 5u);
}

}  // namespace
}  // namespace messplus::itest
