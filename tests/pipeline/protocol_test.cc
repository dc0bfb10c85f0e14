#include "pipeline/protocol.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace messplus::pipeline {
namespace {

const std::vector<std::string> kZoo = {"small", "medium", "large"};

Limits ZooLimits() {
  Limits lim;
  lim.models = &kZoo;
  lim.num_tenants = 2;
  lim.dim = 1024;
  return lim;
}

Request SampleRequest() {
  Request r;
  r.id = "req-1";
  r.text = "What is the boiling point of water at sea level?";
  r.tenant = "gold";
  r.task = "arc_challenge";
  r.metadata = {{"user", "u42"}, {"lang", "en"}};
  r.ingest_ns = 1700000000123456789;
  r.after_seq = 1234;
  return r;
}

router::SparseFeatures SampleFeatures() {
  router::SparseFeatures f;
  f.push_back(3, 0.5f);
  f.push_back(1023, -0.25f);
  f.push_back(17, 1.0f);
  return f;
}

router::Decision SampleDecision() {
  router::Decision d;
  d.t = 17;
  d.tenant = 1;
  d.task_key = 0xfeedbeefcafeull;
  d.served = 2;
  d.chosen = 1;
  d.run = {2, 1};
  d.explore = true;
  d.explore_probability = 0.25;
  d.run_probability = {0.0, 1.0, 0.25};
  d.p = {0.4, 0.55, 0.61};
  d.score = {1.5, -0.25, 0.125};
  d.cost_estimate = {80.0, 390.0, 2000.0};
  d.q = 10.5;
  d.v = 0.001;
  d.alpha = 0.5;
  d.alpha_unreachable = false;
  return d;
}

// One sample of every message type, in MsgType order.
std::vector<Message> Samples() {
  std::vector<Message> out;
  out.emplace_back(SampleRequest());
  out.emplace_back(Features{SampleRequest(), 1024, SampleFeatures()});
  out.emplace_back(DecisionMsg{SampleRequest(), 1024, SampleFeatures(), SampleDecision()});
  out.emplace_back(ModelCall{"req-1", 99, "medium", "text", "arc_challenge", 2});
  ModelReply reply;
  reply.call_id = 99;
  reply.request_id = "req-1";
  reply.model = "medium";
  reply.answer = "100 C";
  reply.cost = 393.5;
  reply.latency_s = 2.25;
  reply.metadata = {{"recorded_satisfaction", "1"}};
  out.emplace_back(reply);
  ClientReply cr;
  cr.request_id = "req-1";
  cr.model = "large";
  cr.answer = "100 C";
  cr.cost = 2000.0;
  cr.total_cost = 2390.0;
  cr.models_run = {"large", "medium"};
  cr.explored = true;
  cr.predicted = {{"small", 0.4}, {"medium", 0.55}, {"large", 0.61}};
  cr.metadata = {{"recorded_satisfaction", "0"}};
  out.emplace_back(cr);
  Outcome o;
  o.request_id = "req-1";
  o.tenant = "gold";
  o.task = "arc_challenge";
  o.decision = SampleDecision();
  o.dim = 1024;
  o.features = SampleFeatures();
  o.calls = {{"large", true, 2000.0, {{"recorded_satisfaction", "1"}}, ""},
             {"medium", false, 0.0, {}, "timeout"}};
  out.emplace_back(o);
  Feedback fb;
  fb.request_id = "req-1";
  fb.labels = {{"large", 1.0}, {"medium", 0.0}};
  fb.token = 5;
  out.emplace_back(fb);
  out.emplace_back(FeedbackAck{"req-1", 5, "ok", "", 2, 1001});
  out.emplace_back(SnapshotRequest{12345});
  out.emplace_back(StateSnapshot{12345, 7, 1000, std::string("\x81\xa1x\x01", 4)});
  StateUpdate up;
  up.epoch = 7;
  up.seq = 1001;
  up.kind = UpdateKind::kFeedback;
  up.decision = SampleDecision();
  up.labels = {{2, 1.0}, {1, 0.0}};
  up.dim = 1024;
  up.features = SampleFeatures();
  out.emplace_back(up);
  out.emplace_back(WorkerReady{"small", "worker-a"});
  out.emplace_back(WorkerHeartbeat{"small"});
  out.emplace_back(MakeError(Reason::kOversized, "text too long", "req-1", "request"));
  out.emplace_back(EmbedRequest{4, "hello"});
  out.emplace_back(EmbedReply{4, {0.25f, -1.5f, 3.0f}});
  return out;
}

TEST(Protocol, EveryMessageTypeHasASample) {
  const std::vector<Message> samples = Samples();
  ASSERT_EQ(samples.size(), kNumMsgTypes);
  for (size_t i = 0; i < samples.size(); ++i) EXPECT_EQ(samples[i].index(), i);
}

TEST(Protocol, EveryMessageRoundTripsByteForByte) {
  Encoder encoder;
  Decoder decoder(ZooLimits());
  for (const Message& m : Samples()) {
    const std::string first(encoder.Encode(m));
    Message decoded;
    ASSERT_TRUE(decoder.Decode(first, &decoded).ok())
        << MsgTypeName(TypeOf(m)) << ": " << decoder.Decode(first, &decoded).ToString();
    EXPECT_EQ(TypeOf(decoded), TypeOf(m));
    const std::string second(encoder.Encode(decoded));
    EXPECT_EQ(first, second) << MsgTypeName(TypeOf(m));
  }
}

TEST(Protocol, RoundTripKeepsFieldValues) {
  const Message m = Samples()[static_cast<size_t>(MsgType::kDecision)];
  Result<DecisionMsg> d = DecodeAs<DecisionMsg>(EncodeToString(m), ZooLimits());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->request.id, "req-1");
  EXPECT_EQ(d->request.metadata.size(), 2u);
  EXPECT_EQ(d->request.ingest_ns, 1700000000123456789);
  EXPECT_EQ(d->request.after_seq, 1234u);
  EXPECT_EQ(d->features.index, SampleFeatures().index);
  EXPECT_EQ(d->features.value, SampleFeatures().value);
  EXPECT_EQ(d->decision.run, (std::vector<uint32_t>{2, 1}));
  EXPECT_EQ(d->decision.task_key, 0xfeedbeefcafeull);
  EXPECT_DOUBLE_EQ(d->decision.q, 10.5);
  EXPECT_TRUE(d->decision.explore);
}

TEST(Protocol, ReusedDecoderHandlesMixedTypes) {
  Decoder decoder(ZooLimits());
  Encoder encoder;
  Message out;
  for (int round = 0; round < 3; ++round) {
    for (const Message& m : Samples()) {
      ASSERT_TRUE(decoder.Decode(encoder.Encode(m), &out).ok());
      EXPECT_EQ(out.index(), m.index());
    }
  }
}

TEST(Protocol, FailedClientReplyCarriesOnlyTheError) {
  ClientReply r;
  r.request_id = "x";
  r.error_code = "no_worker";
  r.error_message = "no live worker for model 'large'";
  Result<ClientReply> d = DecodeAs<ClientReply>(EncodeToString(r), ZooLimits());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->ok());
  EXPECT_EQ(d->error_code, "no_worker");
  EXPECT_TRUE(d->model.empty());
}

TEST(Protocol, ClientRequestWithoutIdIsValid) {
  Request r;
  r.text = "hi";
  Result<Request> d = DecodeAs<Request>(EncodeToString(r));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->id.empty());
  EXPECT_TRUE(d->tenant.empty());
}

TEST(Protocol, UnknownKeysAreSkipped) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(4);
  pk.pack("v");
  pk.pack(1);
  pk.pack("type");
  pk.pack("request");
  pk.pack("text");
  pk.pack("hello");
  pk.pack("from_the_future");
  pk.pack_array(1);
  pk.pack(3);
  Result<Request> d = DecodeAs<Request>(std::string_view(buf.data(), buf.size()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->text, "hello");
}

// ---- one test per reject reason ----------------------------------------------------------

// Builds a frame from a map written by `fill` (after "v" and "type").
template <typename Fill>
std::string Frame(std::string_view type, int extra_fields, Fill fill, int version = 1) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(static_cast<uint32_t>(2 + extra_fields));
  pk.pack("v");
  pk.pack(version);
  pk.pack("type");
  pk.pack(std::string(type));
  fill(pk);
  return std::string(buf.data(), buf.size());
}

Reason DecodeReason(std::string_view frame, const Limits& lim = ZooLimits(),
                    MsgTypeSet accept = kAllTypes) {
  Decoder decoder(lim);
  Message m;
  Status st = decoder.Decode(frame, &m, accept);
  EXPECT_FALSE(st.ok());
  return ReasonOf(st);
}

TEST(ProtocolReject, GarbageIsMalformedMsgpack) {
  EXPECT_EQ(DecodeReason(std::string("\xc1\xc1\xc1 garbage", 11)), Reason::kMalformedMsgpack);
}

TEST(ProtocolReject, TruncatedFrameIsMalformedMsgpack) {
  const std::string full = EncodeToString(SampleRequest());
  EXPECT_EQ(DecodeReason(full.substr(0, full.size() - 3)), Reason::kMalformedMsgpack);
}

TEST(ProtocolReject, TrailingBytesAreMalformedMsgpack) {
  EXPECT_EQ(DecodeReason(EncodeToString(SampleRequest()) + "x"), Reason::kMalformedMsgpack);
}

TEST(ProtocolReject, NonMapIsMalformedMsgpack) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::vector<int>{1, 2, 3});
  EXPECT_EQ(DecodeReason(std::string_view(buf.data(), buf.size())), Reason::kMalformedMsgpack);
}

TEST(ProtocolReject, EmptyFrameIsMalformedMsgpack) {
  EXPECT_EQ(DecodeReason(""), Reason::kMalformedMsgpack);
}

TEST(ProtocolReject, TextAsIntegerIsWrongType) {
  const std::string f = Frame("request", 1, [](auto& pk) {
    pk.pack("text");
    pk.pack(42);
  });
  EXPECT_EQ(DecodeReason(f), Reason::kWrongType);
}

TEST(ProtocolReject, NonStringKeyIsWrongType) {
  const std::string f = Frame("request", 2, [](auto& pk) {
    pk.pack("text");
    pk.pack("x");
    pk.pack(7);
    pk.pack("y");
  });
  EXPECT_EQ(DecodeReason(f), Reason::kWrongType);
}

TEST(ProtocolReject, RequestWithoutTextIsMissingField) {
  const std::string f = Frame("request", 1, [](auto& pk) {
    pk.pack("id");
    pk.pack("a");
  });
  EXPECT_EQ(DecodeReason(f), Reason::kMissingField);
}

TEST(ProtocolReject, MissingVersionIsMissingField) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(2);
  pk.pack("type");
  pk.pack("request");
  pk.pack("text");
  pk.pack("x");
  EXPECT_EQ(DecodeReason(std::string_view(buf.data(), buf.size())), Reason::kMissingField);
}

TEST(ProtocolReject, TextOverTheLimitIsOversized) {
  Request r;
  r.text.assign(2000, 'a');
  Limits lim = ZooLimits();
  lim.max_text_bytes = 1000;
  EXPECT_EQ(DecodeReason(EncodeToString(r), lim), Reason::kOversized);
}

TEST(ProtocolReject, TenMegabyteTextIsOversizedAtTheDefaultLimit) {
  Request r;
  r.text.assign(10 << 20, 'a');
  EXPECT_EQ(DecodeReason(EncodeToString(r), Limits()), Reason::kOversized);
}

TEST(ProtocolReject, FrameOverTheLimitIsOversized) {
  Request r;
  r.text.assign(5000, 'a');
  Limits lim = ZooLimits();
  lim.max_frame_bytes = 4096;
  EXPECT_EQ(DecodeReason(EncodeToString(r), lim), Reason::kOversized);
}

TEST(ProtocolReject, LongIdIsOversized) {
  Request r = SampleRequest();
  r.id.assign(kMaxIdBytes + 1, 'i');
  EXPECT_EQ(DecodeReason(EncodeToString(r)), Reason::kOversized);
}

TEST(ProtocolReject, HugeMetadataIsOversized) {
  Request r = SampleRequest();
  for (size_t i = 0; i <= kMaxMetadataEntries; ++i) {
    std::string key = "k";  // not "k" + to_string(i): g++ 12 -O3 warns (false -Wrestrict)
    key += std::to_string(i);
    r.metadata.push_back({key, "v"});
  }
  EXPECT_EQ(DecodeReason(EncodeToString(r)), Reason::kOversized);
}

TEST(ProtocolReject, ReplyFromUnknownModelIsUnknownModel) {
  ModelReply reply;
  reply.call_id = 1;
  reply.model = "gpt-99";
  reply.answer = "a";
  reply.cost = 1.0;
  EXPECT_EQ(DecodeReason(EncodeToString(reply)), Reason::kUnknownModel);
  // Without a zoo the name is only checked for size.
  EXPECT_TRUE(DecodeAs<ModelReply>(EncodeToString(reply)).ok());
}

TEST(ProtocolReject, SatisfactionAboveOneIsBadValue) {
  Feedback fb;
  fb.request_id = "r";
  fb.satisfaction = 1.5;
  EXPECT_EQ(DecodeReason(EncodeToString(fb)), Reason::kBadValue);
}

TEST(ProtocolReject, NegativeCostIsBadValue) {
  ModelReply reply;
  reply.call_id = 1;
  reply.model = "small";
  reply.answer = "a";
  reply.cost = -1.0;
  EXPECT_EQ(DecodeReason(EncodeToString(reply)), Reason::kBadValue);
}

TEST(ProtocolReject, NanCostIsBadValue) {
  ModelReply reply;
  reply.call_id = 1;
  reply.model = "small";
  reply.answer = "a";
  reply.cost = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(DecodeReason(EncodeToString(reply)), Reason::kBadValue);
}

TEST(ProtocolReject, FeatureIndexBeyondDimIsBadValue) {
  Features f{SampleRequest(), 1024, SampleFeatures()};
  f.features.index[0] = 5000;
  EXPECT_EQ(DecodeReason(EncodeToString(f)), Reason::kBadValue);
}

// The features decoder validates in bulk and walks entry by entry only when something is
// wrong: every kind of bad entry, anywhere in a long vector, is still found, and the message
// names the first bad entry's field.
TEST(ProtocolReject, EveryBadFeatureEntryIsFoundWhereverItIs) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float bad_values[] = {
      std::numeric_limits<float>::quiet_NaN(), kInf, -kInf, 1.0001e4f, -2e4f, 3e38f};
  for (const uint32_t dim : {1024u, 1000u}) {  // a power of two (bulk OR check) and not
    Limits lim = ZooLimits();
    lim.dim = 0;  // any dim
    Features good{SampleRequest(), dim, {}};
    for (uint32_t i = 0; i < 300; ++i) good.features.push_back(i * 3 % dim, 0.01f * i - 1.0f);
    good.features.push_back(dim - 1, kMaxFeatureValue);  // both bounds are inclusive ...
    good.features.push_back(0, -kMaxFeatureValue);
    ASSERT_TRUE(DecodeAs<Features>(EncodeToString(good), lim).ok()) << dim;
    for (size_t at : {size_t{0}, size_t{7}, size_t{150}, good.features.size() - 1}) {
      for (float v : bad_values) {
        Features f = good;
        f.features.value[at] = v;
        Result<Features> r = DecodeAs<Features>(EncodeToString(f), lim);
        ASSERT_FALSE(r.ok()) << "dim " << dim << " value " << v << " at " << at;
        EXPECT_EQ(ReasonOf(r.status()), Reason::kBadValue);
        EXPECT_NE(r.status().message().find("features.val"), std::string::npos);
      }
      for (uint32_t index : {dim, dim + 1, 2 * dim, 0xffffffffu}) {
        Features f = good;
        f.features.index[at] = index;
        Result<Features> r = DecodeAs<Features>(EncodeToString(f), lim);
        ASSERT_FALSE(r.ok()) << "dim " << dim << " index " << index << " at " << at;
        EXPECT_EQ(ReasonOf(r.status()), Reason::kBadValue);
        EXPECT_NE(r.status().message().find("features.idx"), std::string::npos);
      }
      // Two bad entries: the message is about the first one.
      Features f = good;
      f.features.index[at == 0 ? 1 : 0] = dim;
      f.features.value[at] = kInf;
      Result<Features> r = DecodeAs<Features>(EncodeToString(f), lim);
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.status().message().find(at == 0 ? "features.val" : "features.idx"),
                std::string::npos)
          << r.status().message();
    }
  }
}

TEST(ProtocolReject, DecisionNotMatchingTheZooIsBadValue) {
  DecisionMsg d{SampleRequest(), 1024, SampleFeatures(), SampleDecision()};
  d.decision.p.pop_back();
  EXPECT_EQ(DecodeReason(EncodeToString(d)), Reason::kBadValue);
}

TEST(ProtocolReject, BothSatisfactionAndLabelsIsBadValue) {
  Feedback fb;
  fb.request_id = "r";
  fb.satisfaction = 1.0;
  fb.labels = {{"small", 1.0}};
  EXPECT_EQ(DecodeReason(EncodeToString(fb)), Reason::kBadValue);
}

TEST(ProtocolReject, OtherVersionIsUnsupportedVersion) {
  const std::string f = Frame(
      "request", 1,
      [](auto& pk) {
        pk.pack("text");
        pk.pack("x");
      },
      2);
  EXPECT_EQ(DecodeReason(f), Reason::kUnsupportedVersion);
}

TEST(ProtocolReject, UnknownTypeIsUnexpectedMessage) {
  const std::string f = Frame("teleport", 0, [](auto&) {});
  EXPECT_EQ(DecodeReason(f), Reason::kUnexpectedMessage);
}

TEST(ProtocolReject, TypeNotAcceptedBySocketIsUnexpectedMessage) {
  EXPECT_EQ(DecodeReason(EncodeToString(SnapshotRequest{1}), ZooLimits(),
                         TypeBit(MsgType::kRequest) | TypeBit(MsgType::kFeedback)),
            Reason::kUnexpectedMessage);
}

TEST(ProtocolReject, DeepNestingIsOversized) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(3);
  pk.pack("v");
  pk.pack(1);
  pk.pack("type");
  pk.pack("request");
  pk.pack("text");
  for (int i = 0; i < 20; ++i) pk.pack_array(1);
  pk.pack(1);
  EXPECT_EQ(DecodeReason(std::string_view(buf.data(), buf.size())), Reason::kOversized);
}

TEST(ProtocolReason, NamesRoundTrip) {
  for (size_t i = 0; i < kNumReasons; ++i) {
    const Reason r = static_cast<Reason>(i);
    EXPECT_EQ(ReasonFromName(ReasonName(r)), r);
    EXPECT_EQ(ReasonOf(Reject(r, "detail")), r);
  }
  EXPECT_FALSE(ReasonFromName("nope").has_value());
}

}  // namespace
}  // namespace messplus::pipeline
