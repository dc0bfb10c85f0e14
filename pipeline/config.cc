#include "pipeline/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace messplus::pipeline {
namespace {

using Problems = std::vector<std::string>;

// Reads the keys of one YAML map, recording a problem for every wrong type, and (in
// Finish) for every key nobody asked for. yaml-cpp throws on conversions; the exceptions
// stay inside this class.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, Problems* problems)
      : node_(node), path_(std::move(path)), problems_(problems) {
    if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
      Problem(path_.empty() ? "the document" : path_, "must be a map");
      node_ = YAML::Node();
    }
  }
  MapReader(const MapReader&) = delete;
  MapReader& operator=(const MapReader&) = delete;
  ~MapReader() { Finish(); }

  bool Has(const std::string& key) const { return node_.IsMap() && node_[key].IsDefined(); }

  YAML::Node Raw(const std::string& key) {
    used_.insert(key);
    if (!node_.IsMap()) return YAML::Node();
    return node_[key];
  }

  template <typename T>
  void Get(const std::string& key, T* out) {
    const YAML::Node v = Raw(key);
    if (!v.IsDefined() || v.IsNull()) return;
    Convert(v, Path(key), out);
  }

  void GetMillis(const std::string& key, Millis* out) {
    int64_t ms = out->count();
    Get(key, &ms);
    *out = Millis(ms);
  }

  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  void Problem(const std::string& where, const std::string& what) {
    problems_->push_back(where + ": " + what);
  }

  template <typename T>
  void Convert(const YAML::Node& v, const std::string& where, T* out) {
    if (!v.IsScalar()) {
      Problem(where, "must be a single value");
      return;
    }
    try {
      if constexpr (std::is_same_v<T, bool>) {
        *out = v.as<bool>();
      } else if constexpr (std::is_same_v<T, std::string>) {
        *out = v.as<std::string>();
      } else if constexpr (std::is_floating_point_v<T>) {
        const double d = v.as<double>();
        if (!std::isfinite(d)) {
          Problem(where, "must be a finite number");
          return;
        }
        *out = static_cast<T>(d);
      } else if constexpr (std::is_unsigned_v<T>) {
        // yaml-cpp accepts "-1" for unsigned types by wrapping; read signed first.
        const int64_t i = v.as<int64_t>();
        if (i < 0 || static_cast<uint64_t>(i) > std::numeric_limits<T>::max()) {
          Problem(where, "must be a non-negative integer in range");
          return;
        }
        *out = static_cast<T>(i);
      } else {
        const int64_t i = v.as<int64_t>();
        if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) {
          Problem(where, "integer out of range");
          return;
        }
        *out = static_cast<T>(i);
      }
    } catch (const YAML::Exception&) {
      if constexpr (std::is_same_v<T, bool>) {
        Problem(where, "must be true or false");
      } else if constexpr (std::is_floating_point_v<T>) {
        Problem(where, "must be a number");
      } else if constexpr (std::is_same_v<T, std::string>) {
        Problem(where, "must be a string");
      } else {
        Problem(where, "must be an integer");
      }
    }
  }

 private:
  void Finish() {
    if (!node_.IsMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      std::string key;
      try {
        key = it->first.as<std::string>();
      } catch (const YAML::Exception&) {
        Problem(path_.empty() ? "the document" : path_, "has a key that is not a string");
        continue;
      }
      if (used_.count(key) == 0) Problem(Path(key), "unknown key");
    }
  }

  YAML::Node node_;
  std::string path_;
  Problems* problems_;
  std::set<std::string> used_;
};

void ReadModels(const YAML::Node& node, Problems* problems, std::vector<router::ModelSpec>* out) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsSequence()) {
    problems->push_back("models: must be a list of {name, cost_prior, cost_prior_weight}");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    MapReader r(node[i], "models[" + std::to_string(i) + "]", problems);
    router::ModelSpec spec;
    r.Get("name", &spec.name);
    r.Get("cost_prior", &spec.cost_prior);
    r.Get("cost_prior_weight", &spec.cost_prior_weight);
    out->push_back(std::move(spec));
  }
}

void ReadTenants(const YAML::Node& node, Problems* problems, std::vector<router::TenantSpec>* out) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsSequence()) {
    problems->push_back("tenants: must be a list of {name, alpha}");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    MapReader r(node[i], "tenants[" + std::to_string(i) + "]", problems);
    router::TenantSpec spec;
    r.Get("name", &spec.name);
    r.Get("alpha", &spec.alpha);
    out->push_back(std::move(spec));
  }
}

void ReadAdaptive(const YAML::Node& node, Problems* problems, router::AdaptiveTuning* out) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    problems->push_back("adaptive: must be a map of setting: number");
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key;
    double value = 0.0;
    try {
      key = it->first.as<std::string>();
    } catch (const YAML::Exception&) {
      problems->push_back("adaptive: has a key that is not a string");
      continue;
    }
    try {
      // Booleans (count_pending, exponential_queue) may be written true/false.
      if (it->second.IsScalar() &&
          (it->second.Scalar() == "true" || it->second.Scalar() == "false")) {
        value = it->second.as<bool>() ? 1.0 : 0.0;
      } else {
        value = it->second.as<double>();
      }
    } catch (const YAML::Exception&) {
      problems->push_back("adaptive." + key + ": must be a number");
      continue;
    }
    if (Status st = router::SetTuning(out, key, value); !st.ok()) {
      problems->push_back("adaptive." + key + ": " + st.message());
    }
  }
}

void ReadStage(MapReader& r, int* metrics_port, int* hwm) {
  r.Get("metrics_port", metrics_port);
  r.Get("hwm", hwm);
}

void Parse(const YAML::Node& root, Problems* problems, Config* c) {
  MapReader top(root, "", problems);
  ReadModels(top.Raw("models"), problems, &c->router.models);
  ReadTenants(top.Raw("tenants"), problems, &c->router.tenants);
  top.Get("default_tenant", &c->default_tenant);
  top.Get("policy", &c->router.policy);
  top.Get("v", &c->router.v);
  top.Get("c", &c->router.c);
  top.Get("seed", &c->router.seed);
  ReadAdaptive(top.Raw("adaptive"), problems, &c->router.adaptive);
  {
    MapReader h(top.Raw("hashing"), "hashing", problems);
    router::HashingOptions& o = c->router.hashing;
    h.Get("dim_bits", &o.dim_bits);
    h.Get("word_bigrams", &o.word_bigrams);
    h.Get("char_ngram_min", &o.char_ngram_min);
    h.Get("char_ngram_max", &o.char_ngram_max);
    h.Get("word_share", &o.word_share);
    h.Get("tag_value", &o.tag_value);
    h.Get("seed", &o.seed);
  }
  {
    MapReader p(top.Raw("predictor"), "predictor", problems);
    router::PredictorOptions& o = c->router.predictor;
    p.Get("learning_rate", &o.learning_rate);
    p.Get("bias_learning_rate", &o.bias_learning_rate);
    p.Get("initial_accumulator", &o.initial_accumulator);
    p.Get("l2", &o.l2);
  }
  {
    MapReader l(top.Raw("limits"), "limits", problems);
    l.Get("max_text_bytes", &c->max_text_bytes);
    l.Get("max_frame_bytes", &c->max_frame_bytes);
  }
  top.Get("log_level", &c->log_level);
  {
    MapReader r(top.Raw("runtime"), "runtime", problems);
    r.GetMillis("poll_interval_ms", &c->poll_interval);
    r.GetMillis("drain_timeout_ms", &c->drain_timeout);
    r.GetMillis("linger_ms", &c->linger);
  }
  {
    MapReader e(top.Raw("endpoints"), "endpoints", problems);
    Endpoints& ep = c->endpoints;
    e.Get("frontend", &ep.frontend);
    e.Get("requests", &ep.requests);
    e.Get("features", &ep.features);
    e.Get("decisions", &ep.decisions);
    e.Get("workers", &ep.workers);
    e.Get("replies", &ep.replies);
    e.Get("feedback", &ep.feedback);
    e.Get("updates", &ep.updates);
    e.Get("snapshots", &ep.snapshots);
    e.Get("embedder", &ep.embedder);
  }
  {
    MapReader s(top.Raw("ingest"), "ingest", problems);
    IngestOptions& o = c->ingest;
    ReadStage(s, &o.metrics_port, &o.hwm);
    s.GetMillis("request_timeout_ms", &o.request_timeout);
    s.Get("max_in_flight", &o.max_in_flight);
    s.GetMillis("feedback_timeout_ms", &o.feedback_timeout);
    s.Get("max_pending_feedback", &o.max_pending_feedback);
  }
  {
    MapReader s(top.Raw("embed"), "embed", problems);
    EmbedOptions& o = c->embed;
    ReadStage(s, &o.metrics_port, &o.hwm);
    s.GetMillis("embedder_timeout_ms", &o.embedder_timeout);
    s.GetMillis("embedder_retry_ms", &o.embedder_retry);
    s.Get("embedding_weight", &o.embedding_weight);
  }
  {
    MapReader s(top.Raw("route"), "route", problems);
    RouteOptions& o = c->route;
    ReadStage(s, &o.metrics_port, &o.hwm);
    s.GetMillis("snapshot_timeout_ms", &o.snapshot_timeout);
    s.GetMillis("silence_timeout_ms", &o.silence_timeout);
    s.GetMillis("after_seq_timeout_ms", &o.after_seq_timeout);
  }
  {
    MapReader s(top.Raw("dispatch"), "dispatch", problems);
    DispatchOptions& o = c->dispatch;
    ReadStage(s, &o.metrics_port, &o.hwm);
    s.GetMillis("call_timeout_ms", &o.call_timeout);
    s.Get("retries", &o.retries);
    s.GetMillis("heartbeat_interval_ms", &o.heartbeat_interval);
    s.Get("heartbeat_liveness", &o.heartbeat_liveness);
    s.Get("max_pending_calls", &o.max_pending_calls);
  }
  {
    MapReader s(top.Raw("feedback"), "feedback", problems);
    FeedbackOptions& o = c->feedback;
    ReadStage(s, &o.metrics_port, &o.hwm);
    s.Get("checkpoint_path", &o.checkpoint_path);
    s.GetMillis("checkpoint_period_ms", &o.checkpoint_period);
    s.Get("join_window_outcomes", &o.join_window_outcomes);
    s.GetMillis("join_window_ms", &o.join_window);
    s.GetMillis("early_feedback_wait_ms", &o.early_feedback_wait);
    s.GetMillis("heartbeat_interval_ms", &o.heartbeat_interval);
  }
  {
    MapReader s(top.Raw("worker"), "worker", problems);
    WorkerOptions& o = c->worker;
    s.GetMillis("heartbeat_interval_ms", &o.heartbeat_interval);
    s.Get("heartbeat_liveness", &o.heartbeat_liveness);
    s.GetMillis("reconnect_initial_ms", &o.reconnect_initial);
    s.GetMillis("reconnect_max_ms", &o.reconnect_max);
  }
}

void CheckPositive(Millis value, const char* name, Problems* problems) {
  if (value.count() <= 0) problems->push_back(std::string(name) + ": must be > 0");
}
void CheckHwm(int hwm, const char* name, Problems* problems) {
  if (hwm <= 0) problems->push_back(std::string(name) + ".hwm: must be > 0");
}

}  // namespace

bool ValidEndpoint(std::string_view e) {
  for (std::string_view scheme : {"inproc://", "ipc://", "tcp://"}) {
    if (e.size() > scheme.size() && e.substr(0, scheme.size()) == scheme) return true;
  }
  return false;
}

std::vector<std::string> Config::ModelNames() const {
  std::vector<std::string> names;
  for (const router::ModelSpec& m : router.models) names.push_back(m.name);
  return names;
}

Limits Config::MakeLimits(const std::vector<std::string>* zoo) const {
  Limits lim;
  lim.models = zoo;
  lim.max_text_bytes = max_text_bytes;
  lim.max_frame_bytes = max_frame_bytes;
  lim.dim = router.hashing.dim();
  lim.num_tenants = router.tenants.size();
  return lim;
}

Status ValidateConfig(const Config& c) {
  Problems problems;
  if (Status st = c.router.Validate(); !st.ok()) {
    std::istringstream lines(st.message());
    for (std::string line; std::getline(lines, line);) problems.push_back(line);
  }
  if (!c.default_tenant.empty()) {
    const bool known =
        std::any_of(c.router.tenants.begin(), c.router.tenants.end(),
                    [&](const router::TenantSpec& t) { return t.name == c.default_tenant; });
    if (!known) problems.push_back("default_tenant: '" + c.default_tenant + "' is not a tenant");
  }
  for (const router::ModelSpec& m : c.router.models) {
    if (m.name.size() > kMaxNameBytes)
      problems.push_back("models: name '" + m.name + "' is too long");
  }
  for (const router::TenantSpec& t : c.router.tenants) {
    if (t.name.size() > kMaxNameBytes)
      problems.push_back("tenants: name '" + t.name + "' is too long");
  }

  const Endpoints& e = c.endpoints;
  const std::pair<const char*, const std::string*> endpoints[] = {
      {"frontend", &e.frontend},   {"requests", &e.requests}, {"features", &e.features},
      {"decisions", &e.decisions}, {"workers", &e.workers},   {"replies", &e.replies},
      {"feedback", &e.feedback},   {"updates", &e.updates},   {"snapshots", &e.snapshots}};
  std::set<std::string> seen;
  for (const auto& [name, value] : endpoints) {
    if (value->empty()) {
      problems.push_back(std::string("endpoints.") + name + ": is required");
    } else if (!ValidEndpoint(*value)) {
      problems.push_back(std::string("endpoints.") + name + ": '" + *value +
                         "' must start with inproc://, ipc:// or tcp://");
    } else if (!seen.insert(*value).second) {
      problems.push_back(std::string("endpoints.") + name + ": '" + *value + "' is used twice");
    }
  }
  if (!e.embedder.empty() && !ValidEndpoint(e.embedder)) {
    problems.push_back("endpoints.embedder: '" + e.embedder +
                       "' must start with inproc://, ipc:// or tcp://");
  }

  if (c.max_frame_bytes < 4096 || c.max_frame_bytes > (256u << 20)) {
    problems.push_back("limits.max_frame_bytes: must be in [4096, 268435456]");
  }
  if (c.max_text_bytes == 0 || c.max_text_bytes + 65536 > c.max_frame_bytes) {
    problems.push_back(
        "limits.max_text_bytes: must be > 0 and at least 64 KiB below max_frame_bytes");
  }
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (kLevels.count(c.log_level) == 0) {
    problems.push_back("log_level: '" + c.log_level +
                       "' must be one of trace, debug, info, warn, error, critical, off");
  }
  CheckPositive(c.poll_interval, "runtime.poll_interval_ms", &problems);
  CheckPositive(c.drain_timeout, "runtime.drain_timeout_ms", &problems);
  if (c.linger.count() < 0) problems.push_back("runtime.linger_ms: must be >= 0");

  std::set<int> ports;
  const std::pair<const char*, int> metrics[] = {{"ingest", c.ingest.metrics_port},
                                                 {"embed", c.embed.metrics_port},
                                                 {"route", c.route.metrics_port},
                                                 {"dispatch", c.dispatch.metrics_port},
                                                 {"feedback", c.feedback.metrics_port}};
  for (const auto& [stage, port] : metrics) {
    if (port < 0 || port > 65535) {
      problems.push_back(std::string(stage) + ".metrics_port: must be in [0, 65535]");
    } else if (port != 0 && !ports.insert(port).second) {
      problems.push_back(std::string(stage) + ".metrics_port: " + std::to_string(port) +
                         " is used by another stage");
    }
  }
  CheckHwm(c.ingest.hwm, "ingest", &problems);
  CheckHwm(c.embed.hwm, "embed", &problems);
  CheckHwm(c.route.hwm, "route", &problems);
  CheckHwm(c.dispatch.hwm, "dispatch", &problems);
  CheckHwm(c.feedback.hwm, "feedback", &problems);

  CheckPositive(c.ingest.request_timeout, "ingest.request_timeout_ms", &problems);
  CheckPositive(c.ingest.feedback_timeout, "ingest.feedback_timeout_ms", &problems);
  if (c.ingest.max_in_flight == 0) problems.push_back("ingest.max_in_flight: must be > 0");
  if (c.ingest.max_pending_feedback == 0) {
    problems.push_back("ingest.max_pending_feedback: must be > 0");
  }
  CheckPositive(c.embed.embedder_timeout, "embed.embedder_timeout_ms", &problems);
  CheckPositive(c.embed.embedder_retry, "embed.embedder_retry_ms", &problems);
  if (!(c.embed.embedding_weight >= 0.0 && c.embed.embedding_weight <= kMaxFeatureValue)) {
    problems.push_back("embed.embedding_weight: must be in [0, 10000]");
  }
  CheckPositive(c.route.snapshot_timeout, "route.snapshot_timeout_ms", &problems);
  CheckPositive(c.route.silence_timeout, "route.silence_timeout_ms", &problems);
  CheckPositive(c.route.after_seq_timeout, "route.after_seq_timeout_ms", &problems);
  CheckPositive(c.dispatch.call_timeout, "dispatch.call_timeout_ms", &problems);
  CheckPositive(c.dispatch.heartbeat_interval, "dispatch.heartbeat_interval_ms", &problems);
  if (c.dispatch.retries < 0 || c.dispatch.retries > 5) {
    problems.push_back("dispatch.retries: must be in [0, 5]");
  }
  if (c.dispatch.heartbeat_liveness < 1)
    problems.push_back("dispatch.heartbeat_liveness: must be >= 1");
  if (c.dispatch.max_pending_calls == 0)
    problems.push_back("dispatch.max_pending_calls: must be > 0");
  CheckPositive(c.feedback.checkpoint_period, "feedback.checkpoint_period_ms", &problems);
  CheckPositive(c.feedback.join_window, "feedback.join_window_ms", &problems);
  CheckPositive(c.feedback.early_feedback_wait, "feedback.early_feedback_wait_ms", &problems);
  CheckPositive(c.feedback.heartbeat_interval, "feedback.heartbeat_interval_ms", &problems);
  if (c.feedback.join_window_outcomes == 0) {
    problems.push_back("feedback.join_window_outcomes: must be > 0");
  }
  CheckPositive(c.worker.heartbeat_interval, "worker.heartbeat_interval_ms", &problems);
  CheckPositive(c.worker.reconnect_initial, "worker.reconnect_initial_ms", &problems);
  if (c.worker.reconnect_max < c.worker.reconnect_initial) {
    problems.push_back("worker.reconnect_max_ms: must be >= reconnect_initial_ms");
  }
  if (c.worker.heartbeat_liveness < 1)
    problems.push_back("worker.heartbeat_liveness: must be >= 1");
  if (c.worker.heartbeat_interval * 2 >
      c.dispatch.heartbeat_interval * c.dispatch.heartbeat_liveness) {
    problems.push_back(
        "worker.heartbeat_interval_ms: must be at most half of dispatch.heartbeat_interval_ms x "
        "dispatch.heartbeat_liveness, or dispatch declares idle workers dead between heartbeats");
  }

  if (problems.empty()) return Status::Ok();
  std::string all;
  for (const std::string& p : problems) all += (all.empty() ? "" : "\n") + p;
  return Status::InvalidArgument(all);
}

Result<Config> ParseConfig(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("not valid YAML: ") + e.what());
  }
  Config config;
  Problems problems;
  Parse(root, &problems, &config);
  if (config.default_tenant.empty() && !config.router.tenants.empty()) {
    config.default_tenant = config.router.tenants.front().name;
  }
  config.router.hashing.max_text_bytes = config.max_text_bytes;
  Status st = ValidateConfig(config);
  if (!st.ok()) {
    std::istringstream lines(st.message());
    for (std::string line; std::getline(lines, line);) problems.push_back(line);
  }
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "\n") + p;
    return Status::InvalidArgument(all);
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read config file " + path);
  Result<Config> config = ParseConfig(text.str());
  if (!config.ok()) {
    return Status(config.status().code(), path + ":\n" + config.status().message());
  }
  return config;
}

}  // namespace messplus::pipeline
