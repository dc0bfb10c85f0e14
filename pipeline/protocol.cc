// Encoding and decoding of the messplus wire protocol (see protocol.h, docs/protocol.md).
//
// Grammar (msgpack; every top-level map also has "v": uint = 1 and "type": str):
//
//   request          = { text: str, ?id: str, ?tenant: str, ?task: str,
//                        ?metadata: {str: str}, ?ingest_ns: int, ?after_seq: uint }
//   features_map     = { dim: uint, idx: bin(uint32 LE * n), val: bin(float32 LE * n) }
//   decision_map     = { t: uint, origin: uint (opt), tenant: uint, task_key: uint, served: uint,
//   chosen: uint,
//                        run: [uint], explore: bool, explore_probability: float,
//                        run_probability: [float], p: [float], score: [float],
//                        cost_estimate: [float], q: float, v: float, alpha: float,
//                        ?alpha_unreachable: bool }
//   "request"        = request fields
//   "features"       = { request: request, features: features_map }
//   "decision"       = { request: request, features: features_map, decision: decision_map }
//   "model_call"     = { request_id: str, call_id: uint, model: str, text: str, ?task: str,
//                        ?attempt: uint }
//   "model_reply"    = { call_id: uint, model: str, answer: str, cost: float,
//                        ?request_id: str, ?latency_s: float, ?metadata: {str: str},
//                        ?error: str }
//   "client_reply"   = { request_id: str, ?model: str, ?answer: str, ?cost: float,
//                        ?total_cost: float, ?models_run: [str], ?explored: bool,
//                        ?predicted: {str: float}, ?metadata: {str: str},
//                        ?error: { code: str, message: str } }
//   "outcome"        = { request_id: str, tenant: str, ?task: str, decision: decision_map,
//                        features: features_map, calls: [call] }
//   call             = { model: str, status: "ok" | "failed", cost: float,
//                        ?metadata: {str: str}, ?error: str }
//   "feedback"       = { request_id: str, (satisfaction: float | labels: {str: float}),
//                        ?token: uint }
//   "feedback_ack"   = { request_id: str, status: str, ?token: uint, ?message: str,
//                        ?applied: uint, ?seq: uint }
//   "state_snapshot_request" = { nonce: uint }
//   "state_snapshot" = { nonce: uint, epoch: uint, seq: uint, state: bin }
//   "state_update"   = { epoch: uint, seq: uint, event: "heartbeat" | "outcome" | "feedback",
//                        ?decision: decision_map, ?costs: [[uint, float]],
//                        ?labels: [[uint, float]], ?features: features_map }
//   "worker_ready"   = { model: str, ?worker: str }
//   "worker_heartbeat" = { ?model: str }
//   "error"          = { code: str, message: str, ?request_id: str, ?about: str }
//   "embed_request"  = { id: uint, text: str }
//   "embed_reply"    = { id: uint, vector: bin(float32 LE * n) }
//
// Floats are written as float64 and read from any msgpack number; integers as the smallest
// msgpack integer. Optional fields are omitted when empty / zero / absent.
#include "pipeline/protocol.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace messplus::pipeline {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;
using msgpack::object;
using msgpack::type::object_type;

// FROZEN reason names, indexed by Reason.
constexpr std::array<std::string_view, kNumReasons> kReasonNames = {"malformed_msgpack",
                                                                    "wrong_type",
                                                                    "missing_field",
                                                                    "oversized",
                                                                    "unknown_model",
                                                                    "bad_value",
                                                                    "unsupported_version",
                                                                    "unexpected_message",
                                                                    "unknown_tenant",
                                                                    "duplicate_id",
                                                                    "overloaded",
                                                                    "unknown_request",
                                                                    "timeout",
                                                                    "duplicate_feedback",
                                                                    "not_run",
                                                                    "no_worker",
                                                                    "worker_failed",
                                                                    "unroutable",
                                                                    "rejected_by_router",
                                                                    "send_failed",
                                                                    "evicted",
                                                                    "shutdown"};

// ---- little-endian helpers -----------------------------------------------------------------

void PutU32(uint32_t v, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
float GetF32(const char* p) {
  const uint32_t v = GetU32(p);
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}

// ---- encoding ------------------------------------------------------------------------------

void Str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
void Bin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}
void Header(Packer& pk, MsgType type, size_t fields) {
  pk.pack_map(static_cast<uint32_t>(fields + 2));
  Str(pk, "v");
  pk.pack_uint32(kProtocolVersion);
  Str(pk, "type");
  Str(pk, MsgTypeName(type));
}
void StrMapBody(Packer& pk, const StringMap& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    Str(pk, k);
    Str(pk, v);
  }
}
void NamedBody(Packer& pk, const NamedValues& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    Str(pk, k);
    pk.pack_double(v);
  }
}
void Doubles(Packer& pk, const std::vector<double>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (double x : v) pk.pack_double(x);
}

size_t RequestFieldCount(const Request& r) {
  return 1 + !r.id.empty() + !r.tenant.empty() + !r.task.empty() + !r.metadata.empty() +
         (r.ingest_ns != 0) + (r.after_seq != 0);
}
void RequestFields(Packer& pk, const Request& r) {
  Str(pk, "text");
  Str(pk, r.text);
  if (!r.id.empty()) {
    Str(pk, "id");
    Str(pk, r.id);
  }
  if (!r.tenant.empty()) {
    Str(pk, "tenant");
    Str(pk, r.tenant);
  }
  if (!r.task.empty()) {
    Str(pk, "task");
    Str(pk, r.task);
  }
  if (!r.metadata.empty()) {
    Str(pk, "metadata");
    StrMapBody(pk, r.metadata);
  }
  if (r.ingest_ns != 0) {
    Str(pk, "ingest_ns");
    pk.pack_int64(r.ingest_ns);
  }
  if (r.after_seq != 0) {
    Str(pk, "after_seq");
    pk.pack_uint64(r.after_seq);
  }
}
void RequestMap(Packer& pk, const Request& r) {
  pk.pack_map(static_cast<uint32_t>(RequestFieldCount(r)));
  RequestFields(pk, r);
}

// On a little-endian host the wire layout of a uint32 / float32 array is its memory layout,
// so the arrays are copied in one piece; elsewhere they are converted value by value.
constexpr bool kLittleEndian = std::endian::native == std::endian::little;

template <typename T>
void BinArray(Packer& pk, const T* values, size_t n, std::string* scratch) {
  static_assert(sizeof(T) == 4);
  if constexpr (kLittleEndian) {
    Bin(pk, std::string_view(reinterpret_cast<const char*>(values), 4 * n));
  } else {
    scratch->resize(4 * n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, &values[i], 4);
      PutU32(v, scratch->data() + 4 * i);
    }
    Bin(pk, *scratch);
  }
}

void FeaturesMap(Packer& pk, uint32_t dim, const router::SparseFeatures& f, std::string* scratch) {
  pk.pack_map(3);
  Str(pk, "dim");
  pk.pack_uint32(dim);
  const size_t n = std::min(f.index.size(), f.value.size());
  Str(pk, "idx");
  BinArray(pk, f.index.data(), n, scratch);
  Str(pk, "val");
  BinArray(pk, f.value.data(), n, scratch);
}

void DecisionMap(Packer& pk, const router::Decision& d) {
  pk.pack_map(17);
  Str(pk, "t");
  pk.pack_uint64(d.t);
  Str(pk, "origin");
  pk.pack_uint64(d.origin);
  Str(pk, "tenant");
  pk.pack_uint32(d.tenant);
  Str(pk, "task_key");
  pk.pack_uint64(d.task_key);
  Str(pk, "served");
  pk.pack_uint32(d.served);
  Str(pk, "chosen");
  pk.pack_uint32(d.chosen);
  Str(pk, "run");
  pk.pack_array(static_cast<uint32_t>(d.run.size()));
  for (uint32_t m : d.run) pk.pack_uint32(m);
  Str(pk, "explore");
  pk.pack(d.explore);
  Str(pk, "explore_probability");
  pk.pack_double(d.explore_probability);
  Str(pk, "run_probability");
  Doubles(pk, d.run_probability);
  Str(pk, "p");
  Doubles(pk, d.p);
  Str(pk, "score");
  Doubles(pk, d.score);
  Str(pk, "cost_estimate");
  Doubles(pk, d.cost_estimate);
  Str(pk, "q");
  pk.pack_double(d.q);
  Str(pk, "v");
  pk.pack_double(d.v);
  Str(pk, "alpha");
  pk.pack_double(d.alpha);
  Str(pk, "alpha_unreachable");
  pk.pack(d.alpha_unreachable);
}

struct EncodeVisitor {
  Packer& pk;
  std::string& scratch;

  void operator()(const Request* m) {
    Header(pk, MsgType::kRequest, RequestFieldCount(*m));
    RequestFields(pk, *m);
  }
  void operator()(const Features* m) {
    Header(pk, MsgType::kFeatures, 2);
    Str(pk, "request");
    RequestMap(pk, m->request);
    Str(pk, "features");
    FeaturesMap(pk, m->dim, m->features, &scratch);
  }
  void operator()(const DecisionMsg* m) {
    Header(pk, MsgType::kDecision, 3);
    Str(pk, "request");
    RequestMap(pk, m->request);
    Str(pk, "features");
    FeaturesMap(pk, m->dim, m->features, &scratch);
    Str(pk, "decision");
    DecisionMap(pk, m->decision);
  }
  void operator()(const ModelCall* m) {
    Header(pk, MsgType::kModelCall, 5 + !m->task.empty());
    Str(pk, "request_id");
    Str(pk, m->request_id);
    Str(pk, "call_id");
    pk.pack_uint64(m->call_id);
    Str(pk, "model");
    Str(pk, m->model);
    Str(pk, "text");
    Str(pk, m->text);
    Str(pk, "attempt");
    pk.pack_uint32(m->attempt);
    if (!m->task.empty()) {
      Str(pk, "task");
      Str(pk, m->task);
    }
  }
  void operator()(const ModelReply* m) {
    Header(pk, MsgType::kModelReply,
           4 + !m->request_id.empty() + m->latency_s.has_value() + !m->metadata.empty() +
               !m->error.empty());
    Str(pk, "call_id");
    pk.pack_uint64(m->call_id);
    Str(pk, "model");
    Str(pk, m->model);
    Str(pk, "answer");
    Str(pk, m->answer);
    Str(pk, "cost");
    pk.pack_double(m->cost);
    if (!m->request_id.empty()) {
      Str(pk, "request_id");
      Str(pk, m->request_id);
    }
    if (m->latency_s) {
      Str(pk, "latency_s");
      pk.pack_double(*m->latency_s);
    }
    if (!m->metadata.empty()) {
      Str(pk, "metadata");
      StrMapBody(pk, m->metadata);
    }
    if (!m->error.empty()) {
      Str(pk, "error");
      Str(pk, m->error);
    }
  }
  void operator()(const ClientReply* m) {
    if (!m->ok()) {
      Header(pk, MsgType::kClientReply, 2);
      Str(pk, "request_id");
      Str(pk, m->request_id);
      Str(pk, "error");
      pk.pack_map(2);
      Str(pk, "code");
      Str(pk, m->error_code);
      Str(pk, "message");
      Str(pk, m->error_message);
      return;
    }
    Header(pk, MsgType::kClientReply, 7 + !m->predicted.empty() + !m->metadata.empty());
    Str(pk, "request_id");
    Str(pk, m->request_id);
    Str(pk, "model");
    Str(pk, m->model);
    Str(pk, "answer");
    Str(pk, m->answer);
    Str(pk, "cost");
    pk.pack_double(m->cost);
    Str(pk, "total_cost");
    pk.pack_double(m->total_cost);
    Str(pk, "models_run");
    pk.pack_array(static_cast<uint32_t>(m->models_run.size()));
    for (const std::string& s : m->models_run) Str(pk, s);
    Str(pk, "explored");
    pk.pack(m->explored);
    if (!m->predicted.empty()) {
      Str(pk, "predicted");
      NamedBody(pk, m->predicted);
    }
    if (!m->metadata.empty()) {
      Str(pk, "metadata");
      StrMapBody(pk, m->metadata);
    }
  }
  void operator()(const Outcome* m) {
    Header(pk, MsgType::kOutcome, 5 + !m->task.empty());
    Str(pk, "request_id");
    Str(pk, m->request_id);
    Str(pk, "tenant");
    Str(pk, m->tenant);
    if (!m->task.empty()) {
      Str(pk, "task");
      Str(pk, m->task);
    }
    Str(pk, "decision");
    DecisionMap(pk, m->decision);
    Str(pk, "features");
    FeaturesMap(pk, m->dim, m->features, &scratch);
    Str(pk, "calls");
    pk.pack_array(static_cast<uint32_t>(m->calls.size()));
    for (const CallOutcome& c : m->calls) {
      pk.pack_map(static_cast<uint32_t>(3 + !c.metadata.empty() + !c.error.empty()));
      Str(pk, "model");
      Str(pk, c.model);
      Str(pk, "status");
      Str(pk, c.ok ? "ok" : "failed");
      Str(pk, "cost");
      pk.pack_double(c.cost);
      if (!c.metadata.empty()) {
        Str(pk, "metadata");
        StrMapBody(pk, c.metadata);
      }
      if (!c.error.empty()) {
        Str(pk, "error");
        Str(pk, c.error);
      }
    }
  }
  void operator()(const Feedback* m) {
    Header(pk, MsgType::kFeedback,
           1 + m->satisfaction.has_value() + !m->labels.empty() + (m->token != 0));
    Str(pk, "request_id");
    Str(pk, m->request_id);
    if (m->satisfaction) {
      Str(pk, "satisfaction");
      pk.pack_double(*m->satisfaction);
    }
    if (!m->labels.empty()) {
      Str(pk, "labels");
      NamedBody(pk, m->labels);
    }
    if (m->token != 0) {
      Str(pk, "token");
      pk.pack_uint64(m->token);
    }
  }
  void operator()(const FeedbackAck* m) {
    Header(pk, MsgType::kFeedbackAck, 3 + (m->token != 0) + !m->message.empty() + (m->seq != 0));
    Str(pk, "request_id");
    Str(pk, m->request_id);
    Str(pk, "status");
    Str(pk, m->status);
    Str(pk, "applied");
    pk.pack_uint32(m->applied);
    if (m->seq != 0) {
      Str(pk, "seq");
      pk.pack_uint64(m->seq);
    }
    if (m->token != 0) {
      Str(pk, "token");
      pk.pack_uint64(m->token);
    }
    if (!m->message.empty()) {
      Str(pk, "message");
      Str(pk, m->message);
    }
  }
  void operator()(const SnapshotRequest* m) {
    Header(pk, MsgType::kStateSnapshotRequest, 1);
    Str(pk, "nonce");
    pk.pack_uint64(m->nonce);
  }
  void operator()(const StateSnapshot* m) {
    Header(pk, MsgType::kStateSnapshot, 4);
    Str(pk, "nonce");
    pk.pack_uint64(m->nonce);
    Str(pk, "epoch");
    pk.pack_uint64(m->epoch);
    Str(pk, "seq");
    pk.pack_uint64(m->seq);
    Str(pk, "state");
    Bin(pk, m->state);
  }
  void operator()(const StateUpdate* m) {
    const bool has_decision = m->kind != UpdateKind::kHeartbeat;
    const bool feedback = m->kind == UpdateKind::kFeedback;
    Header(pk, MsgType::kStateUpdate, 3 + (has_decision ? 2 : 0) + (feedback ? 1 : 0));
    Str(pk, "epoch");
    pk.pack_uint64(m->epoch);
    Str(pk, "seq");
    pk.pack_uint64(m->seq);
    Str(pk, "event");
    Str(pk, m->kind == UpdateKind::kHeartbeat ? "heartbeat"
            : m->kind == UpdateKind::kOutcome ? "outcome"
                                              : "feedback");
    if (!has_decision) return;
    Str(pk, "decision");
    DecisionMap(pk, m->decision);
    if (m->kind == UpdateKind::kOutcome) {
      Str(pk, "costs");
      pk.pack_array(static_cast<uint32_t>(m->costs.size()));
      for (const router::ModelCost& c : m->costs) {
        pk.pack_array(2);
        pk.pack_uint32(c.model);
        pk.pack_double(c.cost);
      }
    } else {
      Str(pk, "labels");
      pk.pack_array(static_cast<uint32_t>(m->labels.size()));
      for (const router::ModelLabel& l : m->labels) {
        pk.pack_array(2);
        pk.pack_uint32(l.model);
        pk.pack_double(l.satisfaction);
      }
      Str(pk, "features");
      FeaturesMap(pk, m->dim, m->features, &scratch);
    }
  }
  void operator()(const WorkerReady* m) {
    Header(pk, MsgType::kWorkerReady, 1 + !m->worker.empty());
    Str(pk, "model");
    Str(pk, m->model);
    if (!m->worker.empty()) {
      Str(pk, "worker");
      Str(pk, m->worker);
    }
  }
  void operator()(const WorkerHeartbeat* m) {
    Header(pk, MsgType::kWorkerHeartbeat, !m->model.empty());
    if (!m->model.empty()) {
      Str(pk, "model");
      Str(pk, m->model);
    }
  }
  void operator()(const ErrorReply* m) {
    Header(pk, MsgType::kError, 2 + !m->request_id.empty() + !m->about.empty());
    Str(pk, "code");
    Str(pk, m->code);
    Str(pk, "message");
    Str(pk, m->message);
    if (!m->request_id.empty()) {
      Str(pk, "request_id");
      Str(pk, m->request_id);
    }
    if (!m->about.empty()) {
      Str(pk, "about");
      Str(pk, m->about);
    }
  }
  void operator()(const EmbedRequest* m) {
    Header(pk, MsgType::kEmbedRequest, 2);
    Str(pk, "id");
    pk.pack_uint64(m->id);
    Str(pk, "text");
    Str(pk, m->text);
  }
  void operator()(const EmbedReply* m) {
    Header(pk, MsgType::kEmbedReply, 2);
    Str(pk, "id");
    pk.pack_uint64(m->id);
    Str(pk, "vector");
    BinArray(pk, m->vector.data(), m->vector.size(), &scratch);
  }
};

// ---- decoding ------------------------------------------------------------------------------

std::string_view View(const object& o) { return std::string_view(o.via.str.ptr, o.via.str.size); }

Status WrongType(std::string_view field, std::string_view expected) {
  return Reject(Reason::kWrongType, std::string(field) + " must be " + std::string(expected));
}

Status ReadU64(const object& o, std::string_view field, uint64_t* out) {
  if (o.type != object_type::POSITIVE_INTEGER) return WrongType(field, "an unsigned integer");
  *out = o.via.u64;
  return Status::Ok();
}
Status ReadU32(const object& o, std::string_view field, uint32_t* out) {
  uint64_t v = 0;
  MESSPLUS_RETURN_IF_ERROR(ReadU64(o, field, &v));
  if (v > std::numeric_limits<uint32_t>::max()) {
    return Reject(Reason::kBadValue, std::string(field) + " exceeds 32 bits");
  }
  *out = static_cast<uint32_t>(v);
  return Status::Ok();
}
Status ReadI64(const object& o, std::string_view field, int64_t* out) {
  if (o.type == object_type::NEGATIVE_INTEGER) {
    *out = o.via.i64;
  } else if (o.type == object_type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Reject(Reason::kBadValue, std::string(field) + " exceeds 63 bits");
    }
    *out = static_cast<int64_t>(o.via.u64);
  } else {
    return WrongType(field, "an integer");
  }
  return Status::Ok();
}
// Any msgpack number; never NaN or infinite (no field of the protocol allows those).
Status ReadF64(const object& o, std::string_view field, double* out) {
  switch (o.type) {
    case object_type::FLOAT32:
    case object_type::FLOAT64:
      *out = o.via.f64;
      break;
    case object_type::POSITIVE_INTEGER:
      *out = static_cast<double>(o.via.u64);
      break;
    case object_type::NEGATIVE_INTEGER:
      *out = static_cast<double>(o.via.i64);
      break;
    default:
      return WrongType(field, "a number");
  }
  if (!std::isfinite(*out)) return Reject(Reason::kBadValue, std::string(field) + " is not finite");
  return Status::Ok();
}
Status ReadNonNegative(const object& o, std::string_view field, double* out) {
  MESSPLUS_RETURN_IF_ERROR(ReadF64(o, field, out));
  if (*out < 0.0) return Reject(Reason::kBadValue, std::string(field) + " must be >= 0");
  return Status::Ok();
}
Status ReadUnit(const object& o, std::string_view field, double* out) {
  MESSPLUS_RETURN_IF_ERROR(ReadF64(o, field, out));
  if (!(*out >= 0.0 && *out <= 1.0)) {
    return Reject(Reason::kBadValue, std::string(field) + " must be in [0, 1]");
  }
  return Status::Ok();
}
Status ReadBool(const object& o, std::string_view field, bool* out) {
  if (o.type != object_type::BOOLEAN) return WrongType(field, "a boolean");
  *out = o.via.boolean;
  return Status::Ok();
}
Status ReadStr(const object& o, std::string_view field, size_t max, std::string* out) {
  if (o.type != object_type::STR) return WrongType(field, "a string");
  if (o.via.str.size > max) {
    return Reject(Reason::kOversized, std::string(field) + " is " + std::to_string(o.via.str.size) +
                                          " bytes, limit " + std::to_string(max));
  }
  out->assign(o.via.str.ptr, o.via.str.size);
  return Status::Ok();
}
Status ReadBin(const object& o, std::string_view field, std::string_view* out) {
  if (o.type != object_type::BIN) return WrongType(field, "binary");
  *out = std::string_view(o.via.bin.ptr, o.via.bin.size);
  return Status::Ok();
}
Status ReadMap(const object& o, std::string_view field, const msgpack::object_map** out) {
  if (o.type != object_type::MAP) return WrongType(field, "a map");
  *out = &o.via.map;
  return Status::Ok();
}
Status ReadArray(const object& o, std::string_view field, size_t max,
                 const msgpack::object_array** out) {
  if (o.type != object_type::ARRAY) return WrongType(field, "an array");
  if (o.via.array.size > max) {
    return Reject(Reason::kOversized,
                  std::string(field) + " has more than " + std::to_string(max) + " entries");
  }
  *out = &o.via.array;
  return Status::Ok();
}
Status KeyOf(const msgpack::object_kv& kv, std::string_view* key) {
  if (kv.key.type != object_type::STR)
    return Reject(Reason::kWrongType, "map keys must be strings");
  *key = View(kv.key);
  return Status::Ok();
}

Status CheckModel(std::string_view name, std::string_view field, const Limits& lim) {
  if (name.empty()) return Reject(Reason::kBadValue, std::string(field) + " is empty");
  if (lim.models == nullptr) return Status::Ok();
  if (std::find(lim.models->begin(), lim.models->end(), name) == lim.models->end()) {
    return Reject(Reason::kUnknownModel,
                  std::string(field) + " '" + std::string(name) + "' is not in the zoo");
  }
  return Status::Ok();
}
Status ReadModel(const object& o, std::string_view field, const Limits& lim, std::string* out) {
  MESSPLUS_RETURN_IF_ERROR(ReadStr(o, field, kMaxNameBytes, out));
  return CheckModel(*out, field, lim);
}

Status ReadStrMap(const object& o, std::string_view field, StringMap* out) {
  const msgpack::object_map* m = nullptr;
  MESSPLUS_RETURN_IF_ERROR(ReadMap(o, field, &m));
  if (m->size > kMaxMetadataEntries) {
    return Reject(Reason::kOversized, std::string(field) + " has more than " +
                                          std::to_string(kMaxMetadataEntries) + " entries");
  }
  out->resize(m->size);
  for (uint32_t i = 0; i < m->size; ++i) {
    MESSPLUS_RETURN_IF_ERROR(ReadStr(m->ptr[i].key, field, kMaxNameBytes, &(*out)[i].first));
    MESSPLUS_RETURN_IF_ERROR(
        ReadStr(m->ptr[i].val, field, kMaxMetadataValueBytes, &(*out)[i].second));
    for (uint32_t j = 0; j < i; ++j) {
      if ((*out)[j].first == (*out)[i].first) {
        return Reject(Reason::kBadValue,
                      std::string(field) + " repeats key '" + (*out)[i].first + "'");
      }
    }
  }
  return Status::Ok();
}

// model name -> value in [0, 1] (labels, predicted satisfaction).
Status ReadNamedUnits(const object& o, std::string_view field, const Limits& lim,
                      NamedValues* out) {
  const msgpack::object_map* m = nullptr;
  MESSPLUS_RETURN_IF_ERROR(ReadMap(o, field, &m));
  if (m->size > kMaxModels) {
    return Reject(Reason::kOversized,
                  std::string(field) + " has more than " + std::to_string(kMaxModels) + " entries");
  }
  out->resize(m->size);
  for (uint32_t i = 0; i < m->size; ++i) {
    MESSPLUS_RETURN_IF_ERROR(ReadModel(m->ptr[i].key, field, lim, &(*out)[i].first));
    MESSPLUS_RETURN_IF_ERROR(ReadUnit(m->ptr[i].val, field, &(*out)[i].second));
    for (uint32_t j = 0; j < i; ++j) {
      if ((*out)[j].first == (*out)[i].first) {
        return Reject(Reason::kBadValue,
                      std::string(field) + " repeats model '" + (*out)[i].first + "'");
      }
    }
  }
  return Status::Ok();
}

Status ReadDoubles(const object& o, std::string_view field, std::vector<double>* out) {
  const msgpack::object_array* a = nullptr;
  MESSPLUS_RETURN_IF_ERROR(ReadArray(o, field, kMaxModels, &a));
  out->resize(a->size);
  for (uint32_t i = 0; i < a->size; ++i)
    MESSPLUS_RETURN_IF_ERROR(ReadF64(a->ptr[i], field, &(*out)[i]));
  return Status::Ok();
}

// Required-field bookkeeping: bit i set once field i was read.
class Seen {
 public:
  void Mark(int bit) { bits_ |= 1u << bit; }
  bool Has(int bit) const { return (bits_ >> bit) & 1u; }

 private:
  uint32_t bits_ = 0;
};

Status Missing(std::string_view field) {
  return Reject(Reason::kMissingField, std::string(field) + " is required");
}

Status DecodeRequestMap(const msgpack::object_map& m, const Limits& lim, std::string_view path,
                        bool top_level, Request* out) {
  out->id.clear();
  out->tenant.clear();
  out->task.clear();
  out->metadata.clear();
  out->ingest_ns = 0;
  out->after_seq = 0;
  bool has_text = false;
  for (uint32_t i = 0; i < m.size; ++i) {
    std::string_view key;
    MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
    const object& v = m.ptr[i].val;
    if (key == "text") {
      MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "text", lim.max_text_bytes, &out->text));
      has_text = true;
    } else if (key == "id") {
      MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "id", kMaxIdBytes, &out->id));
    } else if (key == "tenant") {
      MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "tenant", kMaxNameBytes, &out->tenant));
    } else if (key == "task") {
      MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "task", kMaxNameBytes, &out->task));
    } else if (key == "metadata") {
      MESSPLUS_RETURN_IF_ERROR(ReadStrMap(v, "metadata", &out->metadata));
    } else if (key == "ingest_ns") {
      MESSPLUS_RETURN_IF_ERROR(ReadI64(v, "ingest_ns", &out->ingest_ns));
    } else if (key == "after_seq") {
      MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "after_seq", &out->after_seq));
    }
  }
  if (!has_text) return Missing(top_level ? "text" : std::string(path) + ".text");
  if (!top_level && out->id.empty()) return Missing(std::string(path) + ".id");
  return Status::Ok();
}

Status DecodeFeaturesMap(const object& o, const Limits& lim, uint32_t* dim,
                         router::SparseFeatures* out) {
  const msgpack::object_map* m = nullptr;
  MESSPLUS_RETURN_IF_ERROR(ReadMap(o, "features", &m));
  std::string_view idx, val;
  Seen seen;
  for (uint32_t i = 0; i < m->size; ++i) {
    std::string_view key;
    MESSPLUS_RETURN_IF_ERROR(KeyOf(m->ptr[i], &key));
    const object& v = m->ptr[i].val;
    if (key == "dim") {
      MESSPLUS_RETURN_IF_ERROR(ReadU32(v, "features.dim", dim));
      seen.Mark(0);
    } else if (key == "idx") {
      MESSPLUS_RETURN_IF_ERROR(ReadBin(v, "features.idx", &idx));
      seen.Mark(1);
    } else if (key == "val") {
      MESSPLUS_RETURN_IF_ERROR(ReadBin(v, "features.val", &val));
      seen.Mark(2);
    }
  }
  if (!seen.Has(0)) return Missing("features.dim");
  if (!seen.Has(1)) return Missing("features.idx");
  if (!seen.Has(2)) return Missing("features.val");
  if (*dim == 0 || *dim > kMaxFeatureDim)
    return Reject(Reason::kBadValue, "features.dim out of range");
  if (lim.dim != 0 && *dim != lim.dim) {
    return Reject(Reason::kBadValue, "features.dim " + std::to_string(*dim) +
                                         " differs from the configured " + std::to_string(lim.dim));
  }
  if (idx.size() % 4 != 0 || val.size() != idx.size()) {
    return Reject(Reason::kBadValue,
                  "features.idx and features.val must hold the same number of "
                  "4-byte entries");
  }
  const size_t n = idx.size() / 4;
  if (n > kMaxFeatureEntries) return Reject(Reason::kOversized, "features has too many entries");
  out->index.resize(n);
  out->value.resize(n);
  if constexpr (kLittleEndian) {
    if (n > 0) {
      std::memcpy(out->index.data(), idx.data(), 4 * n);
      std::memcpy(out->value.data(), val.data(), 4 * n);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      out->index[i] = GetU32(idx.data() + 4 * i);
      out->value[i] = GetF32(val.data() + 4 * i);
    }
  }
  // Validate in two branch-free passes the compiler vectorises; only when something is wrong
  // does the entry-by-entry walk find the first bad entry (and so the same message as before).
  //  * indices: with a power-of-two dim (what the hasher makes), every index < dim exactly
  //    when their bitwise OR has no bit at or above dim's; otherwise take the maximum;
  //  * values: for a float with the sign bit cleared, the bit pattern as an int32 orders like
  //    the value, and infinities and NaNs (all exponent bits set) exceed every finite value,
  //    so |v| <= kMaxFeatureValue exactly when that int32 is at most the bound's.
  bool indices_ok;
  if (std::has_single_bit(*dim)) {
    uint32_t any = 0;
    for (size_t i = 0; i < n; ++i) any |= out->index[i];
    indices_ok = (any & ~(*dim - 1)) == 0;
  } else {
    uint32_t max_index = 0;
    for (size_t i = 0; i < n; ++i) max_index = std::max(max_index, out->index[i]);
    indices_ok = n == 0 || max_index < *dim;
  }
  constexpr int32_t kBound = std::bit_cast<int32_t>(kMaxFeatureValue);
  uint32_t out_of_range = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t bits;
    std::memcpy(&bits, &out->value[i], 4);
    out_of_range |= static_cast<uint32_t>((bits & 0x7fffffff) > kBound);
  }
  if (indices_ok && out_of_range == 0) return Status::Ok();
  for (size_t i = 0; i < n; ++i) {
    if (out->index[i] >= *dim) return Reject(Reason::kBadValue, "features.idx entry out of range");
    const float value = out->value[i];
    if (!std::isfinite(value) || std::fabs(value) > kMaxFeatureValue) {
      return Reject(Reason::kBadValue, "features.val entry not finite or out of range");
    }
  }
  return Status::Ok();
}

size_t KnownModelCount(const Limits& lim) { return lim.models ? lim.models->size() : 0; }

Status DecodeDecisionMap(const object& o, const Limits& lim, router::Decision* d) {
  const msgpack::object_map* m = nullptr;
  MESSPLUS_RETURN_IF_ERROR(ReadMap(o, "decision", &m));
  Seen seen;
  d->alpha_unreachable = false;
  d->origin = 0;
  for (uint32_t i = 0; i < m->size; ++i) {
    std::string_view key;
    MESSPLUS_RETURN_IF_ERROR(KeyOf(m->ptr[i], &key));
    const object& v = m->ptr[i].val;
    if (key == "t") {
      MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "decision.t", &d->t));
      seen.Mark(0);
    } else if (key == "tenant") {
      MESSPLUS_RETURN_IF_ERROR(ReadU32(v, "decision.tenant", &d->tenant));
      seen.Mark(1);
    } else if (key == "task_key") {
      MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "decision.task_key", &d->task_key));
      seen.Mark(2);
    } else if (key == "served") {
      MESSPLUS_RETURN_IF_ERROR(ReadU32(v, "decision.served", &d->served));
      seen.Mark(3);
    } else if (key == "chosen") {
      MESSPLUS_RETURN_IF_ERROR(ReadU32(v, "decision.chosen", &d->chosen));
      seen.Mark(4);
    } else if (key == "run") {
      const msgpack::object_array* a = nullptr;
      MESSPLUS_RETURN_IF_ERROR(ReadArray(v, "decision.run", kMaxModels, &a));
      d->run.resize(a->size);
      for (uint32_t k = 0; k < a->size; ++k) {
        MESSPLUS_RETURN_IF_ERROR(ReadU32(a->ptr[k], "decision.run", &d->run[k]));
      }
      seen.Mark(5);
    } else if (key == "explore") {
      MESSPLUS_RETURN_IF_ERROR(ReadBool(v, "decision.explore", &d->explore));
      seen.Mark(6);
    } else if (key == "explore_probability") {
      MESSPLUS_RETURN_IF_ERROR(ReadF64(v, "decision.explore_probability", &d->explore_probability));
      seen.Mark(7);
    } else if (key == "run_probability") {
      MESSPLUS_RETURN_IF_ERROR(ReadDoubles(v, "decision.run_probability", &d->run_probability));
      seen.Mark(8);
    } else if (key == "p") {
      MESSPLUS_RETURN_IF_ERROR(ReadDoubles(v, "decision.p", &d->p));
      seen.Mark(9);
    } else if (key == "score") {
      MESSPLUS_RETURN_IF_ERROR(ReadDoubles(v, "decision.score", &d->score));
      seen.Mark(10);
    } else if (key == "cost_estimate") {
      MESSPLUS_RETURN_IF_ERROR(ReadDoubles(v, "decision.cost_estimate", &d->cost_estimate));
      seen.Mark(11);
    } else if (key == "q") {
      MESSPLUS_RETURN_IF_ERROR(ReadF64(v, "decision.q", &d->q));
      seen.Mark(12);
    } else if (key == "v") {
      MESSPLUS_RETURN_IF_ERROR(ReadF64(v, "decision.v", &d->v));
      seen.Mark(13);
    } else if (key == "alpha") {
      MESSPLUS_RETURN_IF_ERROR(ReadF64(v, "decision.alpha", &d->alpha));
      seen.Mark(14);
    } else if (key == "alpha_unreachable") {
      MESSPLUS_RETURN_IF_ERROR(ReadBool(v, "decision.alpha_unreachable", &d->alpha_unreachable));
    } else if (key == "origin") {
      MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "decision.origin", &d->origin));
    }
  }
  static constexpr const char* kNames[] = {"decision.t",
                                           "decision.tenant",
                                           "decision.task_key",
                                           "decision.served",
                                           "decision.chosen",
                                           "decision.run",
                                           "decision.explore",
                                           "decision.explore_probability",
                                           "decision.run_probability",
                                           "decision.p",
                                           "decision.score",
                                           "decision.cost_estimate",
                                           "decision.q",
                                           "decision.v",
                                           "decision.alpha"};
  for (int bit = 0; bit < 15; ++bit) {
    if (!seen.Has(bit)) return Missing(kNames[bit]);
  }
  const size_t known = KnownModelCount(lim);
  return ValidateDecision(*d, known != 0 ? known : d->p.size(), lim.num_tenants);
}

// Walks the top-level map once for "v" and "type".
Status ReadHeader(const msgpack::object_map& m, MsgType* type) {
  bool has_v = false, has_type = false;
  std::string_view name;
  for (uint32_t i = 0; i < m.size; ++i) {
    std::string_view key;
    MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
    if (key == "v") {
      uint64_t v = 0;
      MESSPLUS_RETURN_IF_ERROR(ReadU64(m.ptr[i].val, "v", &v));
      if (v != kProtocolVersion) {
        return Reject(Reason::kUnsupportedVersion, "protocol version " + std::to_string(v) +
                                                       ", this peer speaks " +
                                                       std::to_string(kProtocolVersion));
      }
      has_v = true;
    } else if (key == "type") {
      if (m.ptr[i].val.type != object_type::STR) return WrongType("type", "a string");
      name = View(m.ptr[i].val);
      has_type = true;
    }
  }
  if (!has_v) return Missing("v");
  if (!has_type) return Missing("type");
  for (size_t t = 0; t < kNumMsgTypes; ++t) {
    if (kMsgTypeNames[t] == name) {
      *type = static_cast<MsgType>(t);
      return Status::Ok();
    }
  }
  return Reject(Reason::kUnexpectedMessage,
                "unknown message type '" + std::string(name.substr(0, kMaxNameBytes)) + "'");
}

// One decoder per message type: a key switch over the top-level map.
struct BodyDecoder {
  const msgpack::object_map& m;
  const Limits& lim;

  Status operator()(Request* out) { return DecodeRequestMap(m, lim, "request", true, out); }

  Status Nested(const object& v, Request* out) {
    const msgpack::object_map* r = nullptr;
    MESSPLUS_RETURN_IF_ERROR(ReadMap(v, "request", &r));
    return DecodeRequestMap(*r, lim, "request", false, out);
  }

  Status operator()(Features* out) {
    Seen seen;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "request") {
        MESSPLUS_RETURN_IF_ERROR(Nested(m.ptr[i].val, &out->request));
        seen.Mark(0);
      } else if (key == "features") {
        MESSPLUS_RETURN_IF_ERROR(DecodeFeaturesMap(m.ptr[i].val, lim, &out->dim, &out->features));
        seen.Mark(1);
      }
    }
    if (!seen.Has(0)) return Missing("request");
    if (!seen.Has(1)) return Missing("features");
    return Status::Ok();
  }

  Status operator()(DecisionMsg* out) {
    Seen seen;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "request") {
        MESSPLUS_RETURN_IF_ERROR(Nested(m.ptr[i].val, &out->request));
        seen.Mark(0);
      } else if (key == "features") {
        MESSPLUS_RETURN_IF_ERROR(DecodeFeaturesMap(m.ptr[i].val, lim, &out->dim, &out->features));
        seen.Mark(1);
      } else if (key == "decision") {
        MESSPLUS_RETURN_IF_ERROR(DecodeDecisionMap(m.ptr[i].val, lim, &out->decision));
        seen.Mark(2);
      }
    }
    if (!seen.Has(0)) return Missing("request");
    if (!seen.Has(1)) return Missing("features");
    if (!seen.Has(2)) return Missing("decision");
    return Status::Ok();
  }

  Status operator()(ModelCall* out) {
    Seen seen;
    out->task.clear();
    out->attempt = 1;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
        seen.Mark(0);
      } else if (key == "call_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "call_id", &out->call_id));
        seen.Mark(1);
      } else if (key == "model") {
        MESSPLUS_RETURN_IF_ERROR(ReadModel(v, "model", lim, &out->model));
        seen.Mark(2);
      } else if (key == "text") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "text", lim.max_text_bytes, &out->text));
        seen.Mark(3);
      } else if (key == "task") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "task", kMaxNameBytes, &out->task));
      } else if (key == "attempt") {
        MESSPLUS_RETURN_IF_ERROR(ReadU32(v, "attempt", &out->attempt));
      }
    }
    if (!seen.Has(0)) return Missing("request_id");
    if (!seen.Has(1)) return Missing("call_id");
    if (!seen.Has(2)) return Missing("model");
    if (!seen.Has(3)) return Missing("text");
    return Status::Ok();
  }

  Status operator()(ModelReply* out) {
    Seen seen;
    out->request_id.clear();
    out->latency_s.reset();
    bool has_metadata = false;  // cleared after the loop when absent (keeps capacity)
    out->error.clear();
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "call_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "call_id", &out->call_id));
        seen.Mark(0);
      } else if (key == "model") {
        MESSPLUS_RETURN_IF_ERROR(ReadModel(v, "model", lim, &out->model));
        seen.Mark(1);
      } else if (key == "answer") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "answer", lim.max_text_bytes, &out->answer));
        seen.Mark(2);
      } else if (key == "cost") {
        MESSPLUS_RETURN_IF_ERROR(ReadNonNegative(v, "cost", &out->cost));
        seen.Mark(3);
      } else if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
      } else if (key == "latency_s") {
        double latency = 0.0;
        MESSPLUS_RETURN_IF_ERROR(ReadNonNegative(v, "latency_s", &latency));
        out->latency_s = latency;
      } else if (key == "metadata") {
        MESSPLUS_RETURN_IF_ERROR(ReadStrMap(v, "metadata", &out->metadata));
        has_metadata = true;
      } else if (key == "error") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "error", kMaxMessageBytes, &out->error));
      }
    }
    if (!has_metadata) out->metadata.clear();
    if (!seen.Has(0)) return Missing("call_id");
    if (!seen.Has(1)) return Missing("model");
    // A failed call needs neither an answer nor a cost.
    if (out->error.empty()) {
      if (!seen.Has(2)) return Missing("answer");
      if (!seen.Has(3)) return Missing("cost");
    } else {
      if (!seen.Has(2)) out->answer.clear();
      if (!seen.Has(3)) out->cost = 0.0;
    }
    return Status::Ok();
  }

  Status operator()(ClientReply* out) {
    Seen seen;
    out->model.clear();
    out->answer.clear();
    out->cost = out->total_cost = 0.0;
    // Lists are cleared after the loop when absent, not before: a reused slot keeps its
    // strings' capacity.
    bool has_models_run = false, has_predicted = false, has_metadata = false;
    out->explored = false;
    out->error_code.clear();
    out->error_message.clear();
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
        seen.Mark(0);
      } else if (key == "model") {
        MESSPLUS_RETURN_IF_ERROR(ReadModel(v, "model", lim, &out->model));
        seen.Mark(1);
      } else if (key == "answer") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "answer", lim.max_text_bytes, &out->answer));
      } else if (key == "cost") {
        MESSPLUS_RETURN_IF_ERROR(ReadNonNegative(v, "cost", &out->cost));
      } else if (key == "total_cost") {
        MESSPLUS_RETURN_IF_ERROR(ReadNonNegative(v, "total_cost", &out->total_cost));
      } else if (key == "models_run") {
        const msgpack::object_array* a = nullptr;
        MESSPLUS_RETURN_IF_ERROR(ReadArray(v, "models_run", kMaxModels, &a));
        out->models_run.resize(a->size);
        has_models_run = true;
        for (uint32_t k = 0; k < a->size; ++k) {
          MESSPLUS_RETURN_IF_ERROR(ReadModel(a->ptr[k], "models_run", lim, &out->models_run[k]));
        }
      } else if (key == "explored") {
        MESSPLUS_RETURN_IF_ERROR(ReadBool(v, "explored", &out->explored));
      } else if (key == "predicted") {
        MESSPLUS_RETURN_IF_ERROR(ReadNamedUnits(v, "predicted", lim, &out->predicted));
        has_predicted = true;
      } else if (key == "metadata") {
        MESSPLUS_RETURN_IF_ERROR(ReadStrMap(v, "metadata", &out->metadata));
        has_metadata = true;
      } else if (key == "error") {
        const msgpack::object_map* e = nullptr;
        MESSPLUS_RETURN_IF_ERROR(ReadMap(v, "error", &e));
        for (uint32_t k = 0; k < e->size; ++k) {
          std::string_view ekey;
          MESSPLUS_RETURN_IF_ERROR(KeyOf(e->ptr[k], &ekey));
          if (ekey == "code") {
            MESSPLUS_RETURN_IF_ERROR(
                ReadStr(e->ptr[k].val, "error.code", kMaxNameBytes, &out->error_code));
          } else if (ekey == "message") {
            MESSPLUS_RETURN_IF_ERROR(
                ReadStr(e->ptr[k].val, "error.message", kMaxMessageBytes, &out->error_message));
          }
        }
        if (out->error_code.empty()) return Missing("error.code");
        seen.Mark(2);
      }
    }
    if (!has_models_run) out->models_run.clear();
    if (!has_predicted) out->predicted.clear();
    if (!has_metadata) out->metadata.clear();
    if (!seen.Has(0)) return Missing("request_id");
    if (!seen.Has(1) && !seen.Has(2)) return Missing("model");
    return Status::Ok();
  }

  Status operator()(Outcome* out) {
    Seen seen;
    out->task.clear();
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
        seen.Mark(0);
      } else if (key == "tenant") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "tenant", kMaxNameBytes, &out->tenant));
        seen.Mark(1);
      } else if (key == "task") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "task", kMaxNameBytes, &out->task));
      } else if (key == "decision") {
        MESSPLUS_RETURN_IF_ERROR(DecodeDecisionMap(v, lim, &out->decision));
        seen.Mark(2);
      } else if (key == "features") {
        MESSPLUS_RETURN_IF_ERROR(DecodeFeaturesMap(v, lim, &out->dim, &out->features));
        seen.Mark(3);
      } else if (key == "calls") {
        const msgpack::object_array* a = nullptr;
        MESSPLUS_RETURN_IF_ERROR(ReadArray(v, "calls", kMaxModels, &a));
        out->calls.resize(a->size);
        for (uint32_t k = 0; k < a->size; ++k) {
          MESSPLUS_RETURN_IF_ERROR(DecodeCall(a->ptr[k], &out->calls[k]));
        }
        seen.Mark(4);
      }
    }
    if (!seen.Has(0)) return Missing("request_id");
    if (!seen.Has(1)) return Missing("tenant");
    if (!seen.Has(2)) return Missing("decision");
    if (!seen.Has(3)) return Missing("features");
    if (!seen.Has(4)) return Missing("calls");
    if (out->calls.size() != out->decision.run.size()) {
      return Reject(Reason::kBadValue, "calls must list every model of decision.run");
    }
    if (lim.models != nullptr) {
      for (size_t k = 0; k < out->calls.size(); ++k) {
        if ((*lim.models)[out->decision.run[k]] != out->calls[k].model) {
          return Reject(Reason::kBadValue, "calls must follow the order of decision.run");
        }
      }
    }
    return Status::Ok();
  }

  Status DecodeCall(const object& o, CallOutcome* c) {
    const msgpack::object_map* cm = nullptr;
    MESSPLUS_RETURN_IF_ERROR(ReadMap(o, "calls[]", &cm));
    Seen seen;
    c->metadata.clear();
    c->error.clear();
    for (uint32_t k = 0; k < cm->size; ++k) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(cm->ptr[k], &key));
      const object& v = cm->ptr[k].val;
      if (key == "model") {
        MESSPLUS_RETURN_IF_ERROR(ReadModel(v, "calls[].model", lim, &c->model));
        seen.Mark(0);
      } else if (key == "status") {
        if (v.type != object_type::STR) return WrongType("calls[].status", "a string");
        const std::string_view s = View(v);
        if (s != "ok" && s != "failed") {
          return Reject(Reason::kBadValue, "calls[].status must be \"ok\" or \"failed\"");
        }
        c->ok = s == "ok";
        seen.Mark(1);
      } else if (key == "cost") {
        MESSPLUS_RETURN_IF_ERROR(ReadNonNegative(v, "calls[].cost", &c->cost));
        seen.Mark(2);
      } else if (key == "metadata") {
        MESSPLUS_RETURN_IF_ERROR(ReadStrMap(v, "calls[].metadata", &c->metadata));
      } else if (key == "error") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "calls[].error", kMaxMessageBytes, &c->error));
      }
    }
    if (!seen.Has(0)) return Missing("calls[].model");
    if (!seen.Has(1)) return Missing("calls[].status");
    if (!seen.Has(2)) return Missing("calls[].cost");
    return Status::Ok();
  }

  Status operator()(Feedback* out) {
    Seen seen;
    out->satisfaction.reset();
    out->labels.clear();
    out->token = 0;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
        seen.Mark(0);
      } else if (key == "satisfaction") {
        double s = 0.0;
        MESSPLUS_RETURN_IF_ERROR(ReadUnit(v, "satisfaction", &s));
        out->satisfaction = s;
      } else if (key == "labels") {
        MESSPLUS_RETURN_IF_ERROR(ReadNamedUnits(v, "labels", lim, &out->labels));
        if (out->labels.empty()) return Reject(Reason::kBadValue, "labels is empty");
        seen.Mark(1);
      } else if (key == "token") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "token", &out->token));
      }
    }
    if (!seen.Has(0)) return Missing("request_id");
    if (out->request_id.empty()) return Reject(Reason::kBadValue, "request_id is empty");
    if (out->satisfaction.has_value() == seen.Has(1)) {
      return out->satisfaction ? Reject(Reason::kBadValue, "give satisfaction or labels, not both")
                               : Missing("satisfaction (or labels)");
    }
    return Status::Ok();
  }

  Status operator()(FeedbackAck* out) {
    Seen seen;
    out->token = 0;
    out->message.clear();
    out->applied = 0;
    out->seq = 0;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
        seen.Mark(0);
      } else if (key == "status") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "status", kMaxNameBytes, &out->status));
        if (out->status != "ok" && !ReasonFromName(out->status)) {
          return Reject(Reason::kBadValue, "status must be \"ok\" or a reason name");
        }
        seen.Mark(1);
      } else if (key == "token") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "token", &out->token));
      } else if (key == "message") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "message", kMaxMessageBytes, &out->message));
      } else if (key == "applied") {
        MESSPLUS_RETURN_IF_ERROR(ReadU32(v, "applied", &out->applied));
      } else if (key == "seq") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "seq", &out->seq));
      }
    }
    if (!seen.Has(0)) return Missing("request_id");
    if (!seen.Has(1)) return Missing("status");
    return Status::Ok();
  }

  Status operator()(SnapshotRequest* out) {
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "nonce") return ReadU64(m.ptr[i].val, "nonce", &out->nonce);
    }
    return Missing("nonce");
  }

  Status operator()(StateSnapshot* out) {
    Seen seen;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "nonce") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "nonce", &out->nonce));
        seen.Mark(0);
      } else if (key == "epoch") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "epoch", &out->epoch));
        seen.Mark(1);
      } else if (key == "seq") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "seq", &out->seq));
        seen.Mark(2);
      } else if (key == "state") {
        std::string_view state;
        MESSPLUS_RETURN_IF_ERROR(ReadBin(v, "state", &state));
        out->state.assign(state.data(), state.size());
        seen.Mark(3);
      }
    }
    if (!seen.Has(0)) return Missing("nonce");
    if (!seen.Has(1)) return Missing("epoch");
    if (!seen.Has(2)) return Missing("seq");
    if (!seen.Has(3)) return Missing("state");
    return Status::Ok();
  }

  Status ReadPairs(const object& v, std::string_view field, size_t num_models, bool unit,
                   std::vector<std::pair<uint32_t, double>>* out) {
    const msgpack::object_array* a = nullptr;
    MESSPLUS_RETURN_IF_ERROR(ReadArray(v, field, kMaxModels, &a));
    out->resize(a->size);
    for (uint32_t k = 0; k < a->size; ++k) {
      const msgpack::object_array* pair = nullptr;
      MESSPLUS_RETURN_IF_ERROR(ReadArray(a->ptr[k], field, 2, &pair));
      if (pair->size != 2) return WrongType(field, "an array of [model index, value] pairs");
      MESSPLUS_RETURN_IF_ERROR(ReadU32(pair->ptr[0], field, &(*out)[k].first));
      if ((*out)[k].first >= num_models) {
        return Reject(Reason::kBadValue, std::string(field) + " has a model index out of range");
      }
      MESSPLUS_RETURN_IF_ERROR(unit ? ReadUnit(pair->ptr[1], field, &(*out)[k].second)
                                    : ReadNonNegative(pair->ptr[1], field, &(*out)[k].second));
    }
    return Status::Ok();
  }

  Status operator()(StateUpdate* out) {
    Seen seen;
    out->costs.clear();
    out->labels.clear();
    out->features.clear();
    out->dim = 0;
    const object* decision = nullptr;
    const object* costs = nullptr;
    const object* labels = nullptr;
    const object* features = nullptr;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "epoch") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "epoch", &out->epoch));
        seen.Mark(0);
      } else if (key == "seq") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(v, "seq", &out->seq));
        seen.Mark(1);
      } else if (key == "event") {
        if (v.type != object_type::STR) return WrongType("event", "a string");
        const std::string_view e = View(v);
        if (e == "heartbeat") {
          out->kind = UpdateKind::kHeartbeat;
        } else if (e == "outcome") {
          out->kind = UpdateKind::kOutcome;
        } else if (e == "feedback") {
          out->kind = UpdateKind::kFeedback;
        } else {
          return Reject(Reason::kBadValue, "event must be heartbeat, outcome or feedback");
        }
        seen.Mark(2);
      } else if (key == "decision") {
        decision = &v;
      } else if (key == "costs") {
        costs = &v;
      } else if (key == "labels") {
        labels = &v;
      } else if (key == "features") {
        features = &v;
      }
    }
    if (!seen.Has(0)) return Missing("epoch");
    if (!seen.Has(1)) return Missing("seq");
    if (!seen.Has(2)) return Missing("event");
    if (out->kind == UpdateKind::kHeartbeat) return Status::Ok();
    if (decision == nullptr) return Missing("decision");
    MESSPLUS_RETURN_IF_ERROR(DecodeDecisionMap(*decision, lim, &out->decision));
    const size_t num_models = out->decision.p.size();
    std::vector<std::pair<uint32_t, double>> pairs;
    if (out->kind == UpdateKind::kOutcome) {
      if (costs == nullptr) return Missing("costs");
      MESSPLUS_RETURN_IF_ERROR(ReadPairs(*costs, "costs", num_models, false, &pairs));
      for (const auto& [model, cost] : pairs) out->costs.push_back({model, cost});
      return Status::Ok();
    }
    if (labels == nullptr) return Missing("labels");
    if (features == nullptr) return Missing("features");
    MESSPLUS_RETURN_IF_ERROR(ReadPairs(*labels, "labels", num_models, true, &pairs));
    for (const auto& [model, s] : pairs) out->labels.push_back({model, s});
    return DecodeFeaturesMap(*features, lim, &out->dim, &out->features);
  }

  Status operator()(WorkerReady* out) {
    out->worker.clear();
    bool has_model = false;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "model") {
        MESSPLUS_RETURN_IF_ERROR(ReadModel(m.ptr[i].val, "model", lim, &out->model));
        has_model = true;
      } else if (key == "worker") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(m.ptr[i].val, "worker", kMaxNameBytes, &out->worker));
      }
    }
    if (!has_model) return Missing("model");
    return Status::Ok();
  }

  Status operator()(WorkerHeartbeat* out) {
    out->model.clear();
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "model") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(m.ptr[i].val, "model", kMaxNameBytes, &out->model));
      }
    }
    return Status::Ok();
  }

  Status operator()(ErrorReply* out) {
    Seen seen;
    out->request_id.clear();
    out->about.clear();
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      const object& v = m.ptr[i].val;
      if (key == "code") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "code", kMaxNameBytes, &out->code));
        seen.Mark(0);
      } else if (key == "message") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "message", kMaxMessageBytes, &out->message));
        seen.Mark(1);
      } else if (key == "request_id") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "request_id", kMaxIdBytes, &out->request_id));
      } else if (key == "about") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(v, "about", kMaxNameBytes, &out->about));
      }
    }
    if (!seen.Has(0)) return Missing("code");
    if (!seen.Has(1)) return Missing("message");
    return Status::Ok();
  }

  Status operator()(EmbedRequest* out) {
    Seen seen;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "id") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(m.ptr[i].val, "id", &out->id));
        seen.Mark(0);
      } else if (key == "text") {
        MESSPLUS_RETURN_IF_ERROR(ReadStr(m.ptr[i].val, "text", lim.max_text_bytes, &out->text));
        seen.Mark(1);
      }
    }
    if (!seen.Has(0)) return Missing("id");
    if (!seen.Has(1)) return Missing("text");
    return Status::Ok();
  }

  Status operator()(EmbedReply* out) {
    Seen seen;
    std::string_view vec;
    for (uint32_t i = 0; i < m.size; ++i) {
      std::string_view key;
      MESSPLUS_RETURN_IF_ERROR(KeyOf(m.ptr[i], &key));
      if (key == "id") {
        MESSPLUS_RETURN_IF_ERROR(ReadU64(m.ptr[i].val, "id", &out->id));
        seen.Mark(0);
      } else if (key == "vector") {
        MESSPLUS_RETURN_IF_ERROR(ReadBin(m.ptr[i].val, "vector", &vec));
        seen.Mark(1);
      }
    }
    if (!seen.Has(0)) return Missing("id");
    if (!seen.Has(1)) return Missing("vector");
    if (vec.size() % 4 != 0) return Reject(Reason::kBadValue, "vector must hold float32 values");
    if (vec.size() / 4 > kMaxEmbeddingDims) {
      return Reject(Reason::kOversized,
                    "vector has more than " + std::to_string(kMaxEmbeddingDims) + " dimensions");
    }
    out->vector.resize(vec.size() / 4);
    for (size_t k = 0; k < out->vector.size(); ++k) {
      out->vector[k] = GetF32(vec.data() + 4 * k);
      if (!std::isfinite(out->vector[k])) return Reject(Reason::kBadValue, "vector is not finite");
    }
    return Status::Ok();
  }
};

bool ReferenceAll(msgpack::type::object_type, std::size_t, void*) { return true; }

// Emplaces alternative `index` of the variant when it is not the current one.
template <size_t I = 0>
void EmplaceIndex(Message* m, size_t index) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (I == index) {
      if (m->index() != I) m->emplace<I>();
      return;
    }
    EmplaceIndex<I + 1>(m, index);
  }
}

}  // namespace

std::string_view MsgTypeName(MsgType type) {
  const size_t i = static_cast<size_t>(type);
  return i < kNumMsgTypes ? kMsgTypeNames[i] : std::string_view("unknown");
}

std::string_view ReasonName(Reason reason) {
  const size_t i = static_cast<size_t>(reason);
  return i < kNumReasons ? kReasonNames[i] : std::string_view("unknown");
}

std::optional<Reason> ReasonFromName(std::string_view name) {
  for (size_t i = 0; i < kNumReasons; ++i) {
    if (kReasonNames[i] == name) return static_cast<Reason>(i);
  }
  return std::nullopt;
}

Status Reject(Reason reason, std::string_view detail) {
  StatusCode code = StatusCode::kInvalidArgument;
  switch (reason) {
    case Reason::kOversized:
      code = StatusCode::kOutOfRange;
      break;
    case Reason::kUnknownModel:
    case Reason::kUnknownTenant:
    case Reason::kUnknownRequest:
      code = StatusCode::kNotFound;
      break;
    case Reason::kOverloaded:
    case Reason::kTimeout:
    case Reason::kNoWorker:
    case Reason::kWorkerFailed:
    case Reason::kUnroutable:
    case Reason::kSendFailed:
    case Reason::kShutdown:
      code = StatusCode::kUnavailable;
      break;
    case Reason::kDuplicateId:
    case Reason::kDuplicateFeedback:
    case Reason::kEvicted:
      code = StatusCode::kFailedPrecondition;
      break;
    default:
      break;
  }
  std::string message(ReasonName(reason));
  message += ": ";
  message += detail;
  return Status(code, std::move(message));
}

Reason ReasonOf(const Status& status) {
  const std::string& msg = status.message();
  const size_t colon = msg.find(':');
  if (colon != std::string::npos) {
    if (std::optional<Reason> r = ReasonFromName(std::string_view(msg).substr(0, colon))) return *r;
  }
  return Reason::kBadValue;
}

MessageRef::MessageRef(const Message& message)
    : ptr_(std::visit([](const auto& m) -> Ptr { return &m; }, message)) {}

void Encode(MessageRef message, msgpack::sbuffer* out) {
  out->clear();
  Packer pk(*out);
  std::string scratch;
  std::visit(EncodeVisitor{pk, scratch}, message.ptr());
}

std::string_view Encoder::Encode(MessageRef message) {
  buffer_.clear();
  Packer pk(buffer_);
  std::visit(EncodeVisitor{pk, scratch_}, message.ptr());
  return std::string_view(buffer_.data(), buffer_.size());
}

std::string EncodeToString(MessageRef message) {
  msgpack::sbuffer buffer;
  Encode(message, &buffer);
  return std::string(buffer.data(), buffer.size());
}

// Every alternative, in MsgType order.
template <size_t... I>
std::array<Message, kNumMsgTypes> AllAlternatives(std::index_sequence<I...>) {
  return {Message(std::in_place_index<I>)...};
}

MessageSlots::MessageSlots() : slots_(AllAlternatives(std::make_index_sequence<kNumMsgTypes>())) {}

struct Decoder::Unpacker {
  using Visitor = msgpack::v3::detail::create_object_visitor;

  explicit Unpacker(const msgpack::unpack_limit& limit)
      : visitor(&ReferenceAll, nullptr, limit), parser(visitor) {}

  // What msgpack::unpack(zone, data, len, off, referenced, &ReferenceAll, nullptr, limit)
  // does (same results, same exceptions), on the kept parser and visitor.
  msgpack::object Unpack(msgpack::zone& zone, const char* data, std::size_t len, std::size_t& off) {
    parser.init();  // and the visitor's
    visitor.set_zone(zone);
    visitor.set_referenced(false);
    std::size_t noff = off;
    if (len <= noff) visitor.insufficient_bytes(noff, noff);  // throws
    const msgpack::parse_return ret = parser.execute(data, len, noff);
    off = noff;
    if (ret == msgpack::PARSE_CONTINUE) visitor.insufficient_bytes(noff - 1, noff);  // throws
    return visitor.data();
  }

  Visitor visitor;
  msgpack::v3::detail::parse_helper<Visitor> parser;
};

Decoder::Decoder(const Limits& limits)
    : limits_(limits),
      // Arrays hold at most one entry per model or call; maps are messages, metadata and
      // labels. Depth: message > decision > run, plus one level to spare.
      unpacker_(std::make_unique<Unpacker>(msgpack::unpack_limit(
          /*array=*/1024, /*map=*/1024, /*str=*/limits.max_frame_bytes,
          /*bin=*/limits.max_frame_bytes, /*ext=*/0, /*depth=*/6))) {}
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

Status Decoder::DecodeHeader(std::string_view frame, MsgTypeSet accept,
                             const msgpack::object_map** map, MsgType* type) {
  if (frame.size() > limits_.max_frame_bytes) {
    return Reject(Reason::kOversized, "frame is " + std::to_string(frame.size()) +
                                          " bytes, limit " +
                                          std::to_string(limits_.max_frame_bytes));
  }
  zone_.clear();
  try {
    std::size_t offset = 0;
    root_ = unpacker_->Unpack(zone_, frame.data(), frame.size(), offset);
    if (offset != frame.size())
      return Reject(Reason::kMalformedMsgpack, "trailing bytes after the map");
  } catch (const msgpack::size_overflow& e) {
    return Reject(Reason::kOversized, std::string("msgpack limit exceeded: ") + e.what());
  } catch (const std::exception& e) {
    return Reject(Reason::kMalformedMsgpack, e.what());
  }
  if (root_.type != object_type::MAP) {
    return Reject(Reason::kMalformedMsgpack, "frame is not a map");
  }
  MESSPLUS_RETURN_IF_ERROR(ReadHeader(root_.via.map, type));
  if ((accept & TypeBit(*type)) == 0) {
    return Reject(Reason::kUnexpectedMessage,
                  "'" + std::string(MsgTypeName(*type)) + "' is not accepted on this socket");
  }
  *map = &root_.via.map;
  return Status::Ok();
}

Status Decoder::DecodeBody(const msgpack::object_map& map, Message* out) {
  BodyDecoder body{map, limits_};
  return std::visit([&body](auto& m) { return body(&m); }, *out);
}

Status Decoder::Decode(std::string_view frame, Message* out, MsgTypeSet accept) {
  const msgpack::object_map* map = nullptr;
  MsgType type = MsgType::kError;
  MESSPLUS_RETURN_IF_ERROR(DecodeHeader(frame, accept, &map, &type));
  EmplaceIndex(out, static_cast<size_t>(type));
  return DecodeBody(*map, out);
}

Status Decoder::Decode(std::string_view frame, MessageSlots* slots, Message** out,
                       MsgTypeSet accept) {
  *out = nullptr;
  const msgpack::object_map* map = nullptr;
  MsgType type = MsgType::kError;
  MESSPLUS_RETURN_IF_ERROR(DecodeHeader(frame, accept, &map, &type));
  *out = &(*slots)[type];
  return DecodeBody(*map, *out);
}

Status ValidateDecision(const router::Decision& d, size_t num_models, size_t num_tenants) {
  if (num_models == 0 || num_models > kMaxModels) {
    return Reject(Reason::kBadValue, "decision has no or too many models");
  }
  if (d.p.size() != num_models || d.score.size() != num_models ||
      d.cost_estimate.size() != num_models || d.run_probability.size() != num_models) {
    return Reject(Reason::kBadValue, "decision vectors must have one entry per model (" +
                                         std::to_string(num_models) + ")");
  }
  if (d.served >= num_models || d.chosen >= num_models) {
    return Reject(Reason::kBadValue, "decision.served or decision.chosen out of range");
  }
  if (d.run.empty() || d.run.size() > num_models || d.run[0] != d.served) {
    return Reject(Reason::kBadValue, "decision.run must start with the served model");
  }
  for (size_t i = 0; i < d.run.size(); ++i) {
    if (d.run[i] >= num_models) return Reject(Reason::kBadValue, "decision.run index out of range");
    for (size_t j = 0; j < i; ++j) {
      if (d.run[j] == d.run[i]) return Reject(Reason::kBadValue, "decision.run repeats a model");
    }
  }
  if (num_tenants != 0 && d.tenant >= num_tenants) {
    return Reject(Reason::kBadValue, "decision.tenant out of range");
  }
  auto unit = [](double x) { return x >= 0.0 && x <= 1.0; };
  if (!unit(d.explore_probability) || !unit(d.alpha)) {
    return Reject(Reason::kBadValue, "decision probabilities must be in [0, 1]");
  }
  for (size_t m = 0; m < num_models; ++m) {
    if (!unit(d.p[m]) || !unit(d.run_probability[m])) {
      return Reject(Reason::kBadValue, "decision.p and run_probability must be in [0, 1]");
    }
    if (!std::isfinite(d.score[m]) || !(d.cost_estimate[m] >= 0.0) ||
        !std::isfinite(d.cost_estimate[m])) {
      return Reject(Reason::kBadValue, "decision.score / cost_estimate must be finite, costs >= 0");
    }
  }
  if (!std::isfinite(d.q) || !std::isfinite(d.v)) {
    return Reject(Reason::kBadValue, "decision.q and v must be finite");
  }
  return Status::Ok();
}

ErrorReply MakeError(Reason reason, std::string message, std::string request_id,
                     std::string_view about) {
  ErrorReply e;
  e.code = std::string(ReasonName(reason));
  e.message = std::move(message);
  e.request_id = std::move(request_id);
  e.about = std::string(about);
  return e;
}

}  // namespace messplus::pipeline
