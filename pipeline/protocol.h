// The messplus wire protocol, version 1: every message the pipeline's sockets carry.
//
// Every message is ONE zmq frame holding a msgpack map with the keys "v" (protocol version,
// kProtocolVersion) and "type" (one of the names in kMsgTypeNames), plus the fields of its
// type. ROUTER sockets prepend routing frames (identity, and for REQ peers an empty
// delimiter); those are transport, not message. docs/protocol.md is the reference for other
// languages; the grammar of every map is also written out at the top of protocol.cc, next to
// the encoder.
//
// Decoding validates everything (types, sizes, ranges, model names when the zoo is known)
// and never throws: a bad frame is a Status whose reason (ReasonOf) is a metrics label and
// the `code` of the error reply. Unknown keys are skipped, so newer peers may add fields.
//
// FROZEN: the type names, field keys and reason names below are the wire format and the
// metrics interface. Do not change or reuse existing entries; add new ones at the end.
//
// Thread safety: the message structs are values. A Decoder keeps scratch memory; use one per
// thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "router/decision.h"
#include "router/sparse_features.h"
#include "router/status.h"

namespace messplus::pipeline {

// FROZEN. Bumped only for incompatible changes; receivers reject other versions.
inline constexpr uint32_t kProtocolVersion = 1;

// Size limits that do not depend on the configuration. Ids and names are short keys; the
// bounds keep a hostile peer from making us store megabytes per request.
inline constexpr size_t kMaxIdBytes = 128;         // request ids
inline constexpr size_t kMaxNameBytes = 128;       // model, tenant, task, worker names
inline constexpr size_t kMaxMetadataEntries = 64;  // entries of a metadata map
inline constexpr size_t kMaxMetadataValueBytes = 4096;
inline constexpr size_t kMaxModels = 64;               // the router's zoo limit
inline constexpr size_t kMaxFeatureEntries = 1 << 20;  // non-zeros of one sparse vector
inline constexpr uint32_t kMaxFeatureDim = 1u << 30;
inline constexpr size_t kMaxEmbeddingDims = 4096;
inline constexpr size_t kMaxMessageBytes = 1 << 16;  // answer-less texts: error messages
inline constexpr float kMaxFeatureValue = 1e4f;      // the router rejects larger values

// FROZEN: values are the index in Message and in kMsgTypeNames.
enum class MsgType : uint8_t {
  kRequest = 0,
  kFeatures = 1,
  kDecision = 2,
  kModelCall = 3,
  kModelReply = 4,
  kClientReply = 5,
  kOutcome = 6,
  kFeedback = 7,
  kFeedbackAck = 8,
  kStateSnapshotRequest = 9,
  kStateSnapshot = 10,
  kStateUpdate = 11,
  kWorkerReady = 12,
  kWorkerHeartbeat = 13,
  kError = 14,
  kEmbedRequest = 15,
  kEmbedReply = 16,
};
inline constexpr size_t kNumMsgTypes = 17;
// FROZEN wire names, indexed by MsgType.
inline constexpr std::array<std::string_view, kNumMsgTypes> kMsgTypeNames = {
    "request",        "features",     "decision",     "model_call",       "model_reply",
    "client_reply",   "outcome",      "feedback",     "feedback_ack",     "state_snapshot_request",
    "state_snapshot", "state_update", "worker_ready", "worker_heartbeat", "error",
    "embed_request",  "embed_reply"};
std::string_view MsgTypeName(MsgType type);

// A set of message types (bit i = MsgType i), e.g. what one socket accepts.
using MsgTypeSet = uint32_t;
constexpr MsgTypeSet TypeBit(MsgType t) { return MsgTypeSet{1} << static_cast<unsigned>(t); }
inline constexpr MsgTypeSet kAllTypes = (MsgTypeSet{1} << kNumMsgTypes) - 1;

// Why a message was rejected: decode failures first, then the stages' own reasons. The name
// is the `reason` label of messplus_rejected_total and the `code` of error replies.
// FROZEN (append only).
enum class Reason : uint8_t {
  kMalformedMsgpack = 0,    // not msgpack, truncated, trailing bytes, or not a map
  kWrongType = 1,           // a field (or a map key) has the wrong msgpack type
  kMissingField = 2,        // a required field is absent
  kOversized = 3,           // frame, text, id, name, array or map beyond its limit
  kUnknownModel = 4,        // a model name not in the zoo
  kBadValue = 5,            // a value out of range (satisfaction, cost, index, enum string)
  kUnsupportedVersion = 6,  // "v" is not kProtocolVersion
  kUnexpectedMessage = 7,   // unknown "type", or a type this socket does not take
  kUnknownTenant = 8,       // tenant not configured
  kDuplicateId = 9,         // a request id already in flight
  kOverloaded = 10,         // in-flight limit reached or the next stage is not taking input
  kUnknownRequest = 11,     // no such request (never seen, expired, or already answered)
  kTimeout = 12,            // no answer within the configured time
  kDuplicateFeedback = 13,  // feedback for a request that already had its feedback
  kNotRun = 14,             // a label for a model the request did not run
  kNoWorker = 15,           // no live worker of the model within the timeout
  kWorkerFailed = 16,       // the worker reported an error, or died, and retries ran out
  kUnroutable = 17,         // the peer of a ROUTER reply is gone (EHOSTUNREACH)
  kRejectedByRouter = 18,   // router::Router refused the input (Decide/Record*)
  kSendFailed = 19,         // a socket refused a message (HWM reached or no peer)
  kEvicted = 20,            // dropped from a bounded window to make room
  kShutdown = 21,           // the stage stopped before the work was done
};
inline constexpr size_t kNumReasons = 22;
std::string_view ReasonName(Reason reason);
// Reason by name; nullopt when unknown.
std::optional<Reason> ReasonFromName(std::string_view name);

// A non-OK Status whose message is "<reason name>: <detail>", with a code that fits.
Status Reject(Reason reason, std::string_view detail);
// The reason of a Status made by Reject; kBadValue for any other non-OK Status.
Reason ReasonOf(const Status& status);

using StringMap = std::vector<std::pair<std::string, std::string>>;  // keys unique, order kept
using NamedValues = std::vector<std::pair<std::string, double>>;     // model name -> value

// ---- message structs (field keys in comments; "opt" = may be absent on the wire) ----------

// "request": client -> ingest, ingest -> embed. Also nested as "request" in later messages.
struct Request {
  std::string id;         // "id", opt from clients (ingest assigns one), <= kMaxIdBytes
  std::string text;       // "text", <= Limits::max_text_bytes
  std::string tenant;     // "tenant", opt (ingest fills the default tenant)
  std::string task;       // "task", opt tag, e.g. a benchmark name
  StringMap metadata;     // "metadata", opt map str -> str
  int64_t ingest_ns = 0;  // "ingest_ns", set by ingest: wall clock ns since the Unix epoch
  // "after_seq", opt: route this request only once the replica has applied the collector's
  // state seq >= after_seq (a feedback_ack's "seq"): read-your-feedback ordering.
  uint64_t after_seq = 0;
};

// "features": embed -> route. The request plus its sparse feature vector.
struct Features {
  Request request;                  // "request"
  uint32_t dim = 0;                 // "features" { "dim",
  router::SparseFeatures features;  //   "idx": bin uint32 LE, "val": bin float32 LE }
};

// "decision": route -> dispatch.
struct DecisionMsg {
  Request request;   // "request"
  uint32_t dim = 0;  // "features" (as in Features)
  router::SparseFeatures features;
  router::Decision decision;  // "decision" (map; see protocol.cc)
};

// "model_call": dispatch -> worker.
struct ModelCall {
  std::string request_id;  // "request_id"
  uint64_t call_id = 0;    // "call_id": unique per call at this dispatch
  std::string model;       // "model"
  std::string text;        // "text"
  std::string task;        // "task", opt
  uint32_t attempt = 1;    // "attempt", opt: 1, then 2 on the retry
};

// "model_reply": worker -> dispatch.
struct ModelReply {
  uint64_t call_id = 0;             // "call_id" (echoed)
  std::string request_id;           // "request_id", opt (echoed)
  std::string model;                // "model"
  std::string answer;               // "answer", <= max_text_bytes
  double cost = 0.0;                // "cost": finite, >= 0
  std::optional<double> latency_s;  // "latency_s", opt: finite, >= 0
  StringMap metadata;               // "metadata", opt (replay: "recorded_satisfaction")
  std::string error;                // "error", opt: the call failed (empty: success)
};

// "client_reply": dispatch -> ingest -> client.
struct ClientReply {
  std::string request_id;               // "request_id"
  std::string model;                    // "model": the served model (absent on error)
  std::string answer;                   // "answer"
  double cost = 0.0;                    // "cost": of the served call
  double total_cost = 0.0;              // "total_cost": of every call of the request
  std::vector<std::string> models_run;  // "models_run": models that answered, served first
  bool explored = false;                // "explored"
  NamedValues predicted;                // "predicted", opt: model -> predicted satisfaction
  StringMap metadata;                   // "metadata", opt: the served reply's metadata
  std::string error_code;               // "error" { "code", "message" }, opt: failure
  std::string error_message;
  bool ok() const { return error_code.empty(); }
};

// One model call of a request, in an outcome.
struct CallOutcome {
  std::string model;   // "model"
  bool ok = false;     // "status": "ok" | "failed"
  double cost = 0.0;   // "cost" (0 when failed)
  StringMap metadata;  // "metadata", opt
  std::string error;   // "error", opt
};

// "outcome": dispatch -> feedback collector, when every call of a request is done.
struct Outcome {
  std::string request_id;     // "request_id"
  std::string tenant;         // "tenant"
  std::string task;           // "task", opt
  router::Decision decision;  // "decision"
  uint32_t dim = 0;           // "features"
  router::SparseFeatures features;
  std::vector<CallOutcome> calls;  // "calls": one per model run, in decision.run order
};

// "feedback": client -> ingest -> feedback collector. Exactly one of "satisfaction" (for the
// served answer) and "labels" (model -> satisfaction, for explored requests).
struct Feedback {
  std::string request_id;              // "request_id"
  std::optional<double> satisfaction;  // "satisfaction", in [0, 1]
  NamedValues labels;                  // "labels", values in [0, 1]
  uint64_t token = 0;                  // "token", opt: set by ingest to route the ack
};

// "feedback_ack": feedback collector -> ingest -> client.
struct FeedbackAck {
  std::string request_id;  // "request_id"
  uint64_t token = 0;      // "token", opt (ingest strips it)
  std::string status;      // "status": "ok" or a reason name
  std::string message;     // "message", opt
  uint32_t applied = 0;    // "applied": labels recorded
  uint64_t seq = 0;        // "seq", opt: the collector's state seq once this was handled
  bool ok() const { return status == "ok"; }
};

// "state_snapshot_request": route -> feedback collector (snapshot ROUTER).
struct SnapshotRequest {
  uint64_t nonce = 0;  // "nonce", echoed in the snapshot
};

// "state_snapshot": feedback collector -> route.
struct StateSnapshot {
  uint64_t nonce = 0;  // "nonce"
  uint64_t epoch = 0;  // "epoch": changes each time the collector starts
  uint64_t seq = 0;    // "seq": the last update included in `state`
  std::string state;   // "state": bin, router::Router::SaveState() bytes
};

// "state_update": feedback collector PUB -> route SUB. One applied learning event.
enum class UpdateKind : uint8_t { kHeartbeat = 0, kOutcome = 1, kFeedback = 2 };
struct StateUpdate {
  uint64_t epoch = 0;                        // "epoch"
  uint64_t seq = 0;                          // "seq": heartbeats repeat the last seq
  UpdateKind kind = UpdateKind::kHeartbeat;  // "event": "heartbeat" | "outcome" | "feedback"
  router::Decision decision;                 // "decision" (outcome, feedback)
  std::vector<router::ModelCost> costs;      // "costs": [[model index, cost]] (outcome)
  std::vector<router::ModelLabel> labels;    // "labels": [[model index, s]] (feedback)
  uint32_t dim = 0;                          // "features" (feedback)
  router::SparseFeatures features;
};

// "worker_ready": worker -> dispatch, on connect (and after each reconnect).
struct WorkerReady {
  std::string model;   // "model"
  std::string worker;  // "worker", opt: a name for logs
};

// "worker_heartbeat": both ways between dispatch and an idle worker.
struct WorkerHeartbeat {
  std::string model;  // "model", opt
};

// "error": a stage -> the sender of a rejected message (when it can be answered).
struct ErrorReply {
  std::string code;        // "code": a reason name
  std::string message;     // "message"
  std::string request_id;  // "request_id", opt
  std::string about;       // "about", opt: the type of the rejected message
};

// "embed_request": embed -> external embedding worker.
struct EmbedRequest {
  uint64_t id = 0;   // "id"
  std::string text;  // "text"
};

// "embed_reply": external embedding worker -> embed.
struct EmbedReply {
  uint64_t id = 0;            // "id" (echoed)
  std::vector<float> vector;  // "vector": bin float32 LE, <= kMaxEmbeddingDims
};

// Alternatives in MsgType order: Message::index() == static_cast<size_t>(MsgType).
using Message =
    std::variant<Request, Features, DecisionMsg, ModelCall, ModelReply, ClientReply, Outcome,
                 Feedback, FeedbackAck, SnapshotRequest, StateSnapshot, StateUpdate, WorkerReady,
                 WorkerHeartbeat, ErrorReply, EmbedRequest, EmbedReply>;
inline MsgType TypeOf(const Message& m) { return static_cast<MsgType>(m.index()); }

// A non-owning reference to any message struct, to send one without copying it into a
// Message. Valid while the referenced struct lives.
class MessageRef {
 public:
  using Ptr = std::variant<const Request*, const Features*, const DecisionMsg*, const ModelCall*,
                           const ModelReply*, const ClientReply*, const Outcome*, const Feedback*,
                           const FeedbackAck*, const SnapshotRequest*, const StateSnapshot*,
                           const StateUpdate*, const WorkerReady*, const WorkerHeartbeat*,
                           const ErrorReply*, const EmbedRequest*, const EmbedReply*>;
  template <typename T>
  MessageRef(const T& message) : ptr_(&message) {}  // NOLINT: implicit by design
  MessageRef(const Message& message);               // NOLINT
  const Ptr& ptr() const { return ptr_; }
  MsgType type() const { return static_cast<MsgType>(ptr_.index()); }

 private:
  Ptr ptr_;
};

// What the receiver knows, for validation.
struct Limits {
  size_t max_text_bytes = 1 << 20;    // request text and model answers
  size_t max_frame_bytes = 16 << 20;  // whole frame (snapshots are the largest messages)
  uint32_t dim = 0;                   // feature dimension; 0: any up to kMaxFeatureDim
  // The zoo (names, cheapest first) and the number of tenants, when the stage knows them;
  // null / 0: names and indices are checked for size only. Must outlive the Limits' users.
  const std::vector<std::string>* models = nullptr;
  size_t num_tenants = 0;
};

// Encodes messages into one reused buffer (a stage keeps one Encoder and so allocates
// nothing per message once warm). Not thread-safe; one per thread.
class Encoder {
 public:
  // The encoding of `message` (one frame); valid until the next call.
  std::string_view Encode(MessageRef message);

 private:
  msgpack::sbuffer buffer_;
  std::string scratch_;  // little-endian arrays
};

// Replaces *out with the encoding of `message` (one frame).
void Encode(MessageRef message, msgpack::sbuffer* out);

// One Message per type, each holding its own alternative, for decoders fed several types in
// turn (a stage's sockets): decoding into the slot of the frame's type keeps every type's
// strings and vectors, so a warm decoder allocates nothing even when types alternate.
class MessageSlots {
 public:
  MessageSlots();
  Message& operator[](MsgType type) { return slots_[static_cast<size_t>(type)]; }

 private:
  std::array<Message, kNumMsgTypes> slots_;
};

// Decodes one frame. The reused alternative of *out keeps its capacity.
//
// Flow: 1. size check, 2. msgpack unpack (zero copy, bounded sizes and depth), 3. "v" and
// "type", 4. a hand-written key switch per type that validates each field as it is read,
// 5. required fields and cross-field checks. On failure *out is unspecified and the Status
// carries the reason (ReasonOf).
class Decoder {
 public:
  explicit Decoder(const Limits& limits);
  ~Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;
  const Limits& limits() const { return limits_; }

  // `accept`: the types this socket takes; others fail with kUnexpectedMessage (after the
  // version check, so a peer learns about version mismatches first).
  Status Decode(std::string_view frame, Message* out, MsgTypeSet accept = kAllTypes);
  // The same, into the slot of the frame's type; *out points at that slot once the type is
  // known (also when the body then fails), and stays null when the header itself fails.
  Status Decode(std::string_view frame, MessageSlots* slots, Message** out,
                MsgTypeSet accept = kAllTypes);

 private:
  // Steps 1-3 of the flow: the unpacked top-level map and the message type.
  Status DecodeHeader(std::string_view frame, MsgTypeSet accept, const msgpack::object_map** map,
                      MsgType* type);
  Status DecodeBody(const msgpack::object_map& map, Message* out);

  // msgpack's parser and object builder, kept between frames: msgpack::unpack makes new
  // ones (and allocates their stacks) for every frame.
  struct Unpacker;

  Limits limits_;
  msgpack::zone zone_;
  msgpack::object root_;
  std::unique_ptr<Unpacker> unpacker_;
};

// Convenience for tools and tests: decodes a frame that must hold a T.
template <typename T>
Result<T> DecodeAs(std::string_view frame, const Limits& limits = Limits()) {
  Decoder decoder(limits);
  Message m{std::in_place_type<T>};
  Status st = decoder.Decode(frame, &m, MsgTypeSet{1} << m.index());
  if (!st.ok()) return st;
  return std::move(std::get<T>(m));
}

// Encodes into a new string (tools and tests; stages reuse one sbuffer).
std::string EncodeToString(MessageRef message);

// The router's per-model vectors of a decision must match the zoo; shared by the decoder
// and the stages that build decisions.
Status ValidateDecision(const router::Decision& d, size_t num_models, size_t num_tenants);

// The body of error replies and of failed client replies.
// `about`: the type of the rejected message, or empty.
ErrorReply MakeError(Reason reason, std::string message, std::string request_id = {},
                     std::string_view about = {});

}  // namespace messplus::pipeline
