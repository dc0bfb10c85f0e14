// messplus publish: send requests and feedback to a running pipeline's ingest frontend and
// print every answer as one JSON line.
//
//   messplus publish --endpoint ipc:///tmp/messplus/frontend "Why is the sky blue?"
//   messplus publish --config config/ipc.yaml --tenant gold --task arc --id q1 "..."
//   messplus publish --config config/ipc.yaml --feedback q1=1 --feedback q2=0.5
//   messplus publish --config config/ipc.yaml < requests.jsonl
//
// Input. A positional TEXT sends one request (--tenant, --task, --id, --metadata k=v apply to
// it); each --feedback ID=VALUE sends the satisfaction VALUE (0..1) for request ID. With
// neither, stdin is read as JSON lines, each one of
//   {"text": str, "tenant"?: str, "task"?: str, "id"?: str, "metadata"?: {str: str}}
//   {"feedback": id, "satisfaction": number in [0, 1]}
//   {"feedback": id, "per_model": {model: number in [0, 1], ...}}
// Blank lines are skipped. Requests without an id get "<prefix>-<line>" so that their replies
// (and later feedback) can name them. At most --window requests and feedbacks are in flight;
// a feedback for a request still in flight in this run waits for that request's reply, and
// a request reusing an id still in flight waits for it.
//
// Output (stdout, one JSON object per line, in the order the answers arrive; "line" is the
// stdin line, absent for command-line input):
//   a reply:     {"id", "model", "answer", "cost", "total_cost", "models_run", "explored",
//                 "line"?}
//   a failure:   {"id", "error": {"code", "message"}, "line"?}  (codes: the pipeline's reason
//                 codes, or "client_timeout" when no answer came within --timeout-ms)
//   an ack:      {"feedback": id, "status": "ok" | code, "applied"?, "message"?, "line"?}
// A malformed input line is reported on stderr as plain text, "messplus publish: stdin line
// N: <why>", and skipped; the other lines are still sent.
//
// Exit status: 0 when every request was answered and every feedback acknowledged "ok"; 1 when
// any failed, timed out or any input line was malformed; 2 for bad arguments. When nothing at
// all comes back from the endpoint within --timeout-ms of the first send (nobody is
// listening), it stops at once with one line on stderr and exit status 1: it never hangs.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "pipeline/clock.h"
#include "pipeline/config.h"
#include "pipeline/protocol.h"
#include "pipeline/runtime.h"
#include "tools/commands.h"

namespace messplus::tools {
namespace {

using pipeline::Millis;
using pipeline::SteadyClock;
using pipeline::TimePoint;

// A line longer than this is malformed (requests are limited to 1 MiB of text by default).
constexpr size_t kMaxLineBytes = 8 << 20;
constexpr int kMaxPollMs = 50;

struct PublishFlags {
  std::string config;
  std::string endpoint;
  std::string text;
  std::string tenant;
  std::string task;
  std::string id;
  std::vector<std::string> metadata;
  std::vector<std::string> feedback;
  int64_t timeout_ms = 10000;
  size_t window = 64;
};

// One thing to send: a request or a feedback.
struct Item {
  bool is_request = true;
  size_t line = 0;  // stdin line number; 0 for command-line input
  pipeline::Request request;
  pipeline::Feedback feedback;
  const std::string& id() const { return is_request ? request.id : feedback.request_id; }
};

struct Pending {
  size_t line = 0;
  TimePoint deadline{};
};

void Print(nlohmann::json j, size_t line) {
  if (line > 0) j["line"] = line;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

Result<double> ParseUnit(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number()) return Status::InvalidArgument(what + " must be a number in [0, 1]");
  const double s = v.get<double>();
  if (!(s >= 0.0 && s <= 1.0)) return Status::InvalidArgument(what + " must be in [0, 1]");
  return s;
}

Result<std::string> ParseString(const nlohmann::json& o, const char* key, size_t max) {
  const nlohmann::json& v = o.at(key);
  if (!v.is_string()) return Status::InvalidArgument(fmt::format("\"{}\" must be a string", key));
  std::string s = v.get<std::string>();
  if (s.size() > max) {
    return Status::InvalidArgument(fmt::format("\"{}\" is longer than {} bytes", key, max));
  }
  return s;
}

// One stdin line as an Item; InvalidArgument says why it is malformed.
Result<Item> ParseLine(const std::string& text, size_t line, const std::string& id_prefix) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");
  Item item;
  item.line = line;
  const bool has_text = j.contains("text"), has_feedback = j.contains("feedback");
  if (!has_text && !has_feedback) {
    return Status::InvalidArgument(
        "no \"text\" (a request) and no \"feedback\" (an id): give one of them");
  }
  if (has_text && has_feedback) {
    return Status::InvalidArgument("give \"text\" (a request) or \"feedback\" (an id), not both");
  }
  if (has_feedback) {
    item.is_request = false;
    Result<std::string> id = ParseString(j, "feedback", pipeline::kMaxIdBytes);
    if (!id.ok()) return id.status();
    if (id->empty()) return Status::InvalidArgument("\"feedback\" must name a request id");
    item.feedback.request_id = *id;
    const bool sat = j.contains("satisfaction"), per_model = j.contains("per_model");
    if (sat == per_model) {
      return Status::InvalidArgument("give \"satisfaction\" or \"per_model\", exactly one");
    }
    if (sat) {
      Result<double> s = ParseUnit(j.at("satisfaction"), "\"satisfaction\"");
      if (!s.ok()) return s.status();
      item.feedback.satisfaction = *s;
    } else {
      const nlohmann::json& m = j.at("per_model");
      if (!m.is_object() || m.empty()) {
        return Status::InvalidArgument("\"per_model\" must be a non-empty object model -> value");
      }
      for (const auto& [model, v] : m.items()) {
        Result<double> s = ParseUnit(v, "\"per_model\"." + model);
        if (!s.ok()) return s.status();
        item.feedback.labels.emplace_back(model, *s);
      }
    }
    return item;
  }
  Result<std::string> text_field = ParseString(j, "text", std::string::npos);
  if (!text_field.ok()) return text_field.status();
  item.request.text = std::move(*text_field);
  for (const char* key : {"tenant", "task", "id"}) {
    if (!j.contains(key)) continue;
    Result<std::string> s = ParseString(j, key, pipeline::kMaxNameBytes);
    if (!s.ok()) return s.status();
    std::string& field = std::string_view(key) == "tenant" ? item.request.tenant
                         : std::string_view(key) == "task" ? item.request.task
                                                           : item.request.id;
    field = std::move(*s);
  }
  if (j.contains("metadata")) {
    const nlohmann::json& m = j.at("metadata");
    if (!m.is_object()) return Status::InvalidArgument("\"metadata\" must be an object");
    for (const auto& [k, v] : m.items()) {
      if (!v.is_string()) return Status::InvalidArgument("\"metadata\" values must be strings");
      item.request.metadata.emplace_back(k, v.get<std::string>());
    }
  }
  if (item.request.id.empty()) item.request.id = fmt::format("{}-{}", id_prefix, line);
  return item;
}

class Publisher {
 public:
  Publisher(zmq::context_t& zmq, std::string endpoint, const pipeline::Limits& limits,
            Millis timeout, size_t window)
      : endpoint_(std::move(endpoint)),
        socket_(zmq, zmq::socket_type::dealer),
        decoder_(limits),
        timeout_(timeout),
        window_(window) {
    socket_.set(zmq::sockopt::linger, 0);  // an unreachable endpoint must not hold the exit
    socket_.set(zmq::sockopt::sndhwm, 100000);
    socket_.set(zmq::sockopt::rcvhwm, 100000);
    socket_.connect(endpoint_);
  }

  // Sends `items` (and, with read_stdin, every stdin line) and prints the answers; the exit
  // status (see the file comment).
  int Run(std::deque<Item> items, bool read_stdin, const std::string& id_prefix);

 private:
  bool Send(const Item& item);
  void Receive();
  void Expire(TimePoint now);
  void ReadStdin(const std::string& id_prefix, std::deque<Item>* items);
  bool InFlight(const std::string& id) const {
    auto it = requests_.find(id);
    return it != requests_.end() && !it->second.empty();
  }
  size_t in_flight() const { return in_flight_; }

  std::string endpoint_;
  zmq::socket_t socket_;
  pipeline::Encoder encoder_;
  pipeline::Decoder decoder_;
  pipeline::Message message_;
  Millis timeout_;
  size_t window_;
  std::map<std::string, std::deque<Pending>> requests_, feedbacks_;
  size_t in_flight_ = 0;
  bool heard_ = false;
  std::optional<TimePoint> first_send_;
  bool failed_ = false;
  // stdin
  std::string buffer_;
  size_t line_ = 0;
  bool eof_ = false;
  bool discarding_ = false;  // inside an over-long line
};

bool Publisher::Send(const Item& item) {
  const std::string_view bytes =
      item.is_request ? encoder_.Encode(item.request) : encoder_.Encode(item.feedback);
  if (!socket_.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
    return false;
  }
  const TimePoint now = SteadyClock::now();
  if (!first_send_) first_send_ = now;
  (item.is_request ? requests_ : feedbacks_)[item.id()].push_back({item.line, now + timeout_});
  ++in_flight_;
  return true;
}

void Publisher::Receive() {
  zmq::message_t frame;
  for (int n = 0; n < 256 && socket_.recv(frame, zmq::recv_flags::dontwait); ++n) {
    heard_ = true;
    if (frame.more()) {
      while (frame.more() && socket_.recv(frame, zmq::recv_flags::none)) {
      }
      continue;
    }
    const Status st = decoder_.Decode(frame.to_string_view(), &message_);
    if (!st.ok()) {
      std::fprintf(stderr, "messplus publish: undecodable answer: %s\n", st.message().c_str());
      failed_ = true;
      continue;
    }
    // Takes the oldest pending entry for `id` from `table`; its stdin line, or nullopt.
    auto take = [this](std::map<std::string, std::deque<Pending>>& table,
                       const std::string& id) -> std::optional<size_t> {
      auto it = table.find(id);
      if (it == table.end() || it->second.empty()) return std::nullopt;
      const size_t line = it->second.front().line;
      it->second.pop_front();
      if (it->second.empty()) table.erase(it);
      --in_flight_;
      return line;
    };
    if (const auto* r = std::get_if<pipeline::ClientReply>(&message_)) {
      std::optional<size_t> line = take(requests_, r->request_id);
      if (!line) continue;  // not ours (a late answer after its timeout)
      if (!r->ok()) {
        failed_ = true;
        Print({{"id", r->request_id},
               {"error", {{"code", r->error_code}, {"message", r->error_message}}}},
              *line);
        continue;
      }
      Print({{"id", r->request_id},
             {"model", r->model},
             {"answer", r->answer},
             {"cost", r->cost},
             {"total_cost", r->total_cost},
             {"models_run", r->models_run},
             {"explored", r->explored}},
            *line);
    } else if (const auto* a = std::get_if<pipeline::FeedbackAck>(&message_)) {
      std::optional<size_t> line = take(feedbacks_, a->request_id);
      if (!line) continue;
      if (!a->ok()) failed_ = true;
      nlohmann::json j = {{"feedback", a->request_id}, {"status", a->status}};
      if (a->ok()) j["applied"] = a->applied;
      if (!a->message.empty()) j["message"] = a->message;
      Print(std::move(j), *line);
    } else if (const auto* e = std::get_if<pipeline::ErrorReply>(&message_)) {
      failed_ = true;
      const bool about_feedback = e->about == "feedback";
      std::optional<size_t> line = take(about_feedback ? feedbacks_ : requests_, e->request_id);
      nlohmann::json j;
      j[about_feedback ? "feedback" : "id"] = e->request_id;
      if (about_feedback) j["status"] = e->code;
      j["error"] = {{"code", e->code}, {"message", e->message}};
      Print(std::move(j), line.value_or(0));
    }
  }
}

void Publisher::Expire(TimePoint now) {
  for (auto* table : {&requests_, &feedbacks_}) {
    const bool is_request = table == &requests_;
    for (auto it = table->begin(); it != table->end();) {
      std::deque<Pending>& q = it->second;
      while (!q.empty() && q.front().deadline <= now) {
        failed_ = true;
        nlohmann::json j;
        j[is_request ? "id" : "feedback"] = it->first;
        if (!is_request) j["status"] = "client_timeout";
        j["error"] = {{"code", "client_timeout"},
                      {"message", fmt::format("no answer within {} ms", timeout_.count())}};
        Print(std::move(j), q.front().line);
        q.pop_front();
        --in_flight_;
      }
      it = q.empty() ? table->erase(it) : std::next(it);
    }
  }
}

void Publisher::ReadStdin(const std::string& id_prefix, std::deque<Item>* items) {
  char chunk[65536];
  const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    eof_ = true;
  } else if (n == 0) {
    eof_ = true;
  } else {
    buffer_.append(chunk, static_cast<size_t>(n));
  }
  // Complete lines (and, at EOF, the last one without a newline).
  size_t start = 0;
  while (true) {
    const size_t nl = buffer_.find('\n', start);
    if (nl == std::string::npos && !(eof_ && start < buffer_.size())) break;
    const size_t end = nl == std::string::npos ? buffer_.size() : nl;
    std::string text = buffer_.substr(start, end - start);
    start = nl == std::string::npos ? buffer_.size() : nl + 1;
    ++line_;
    if (discarding_) {  // the tail of an over-long line
      discarding_ = false;
      continue;
    }
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    Result<Item> item = ParseLine(text, line_, id_prefix);
    if (!item.ok()) {
      std::fprintf(stderr, "messplus publish: stdin line %zu: %s\n", line_,
                   item.status().message().c_str());
      failed_ = true;
      continue;
    }
    items->push_back(std::move(*item));
  }
  buffer_.erase(0, start);
  if (buffer_.size() > kMaxLineBytes) {
    std::fprintf(stderr, "messplus publish: stdin line %zu: longer than %zu bytes\n", line_ + 1,
                 kMaxLineBytes);
    failed_ = true;
    buffer_.clear();
    discarding_ = true;
  }
}

int Publisher::Run(std::deque<Item> items, bool read_stdin, const std::string& id_prefix) {
  eof_ = !read_stdin;
  // Bounded: each wait is at most kMaxPollMs; every item sent ends by its answer or its
  // timeout, and silence from the endpoint ends the run after one timeout.
  while (true) {
    // Send what may go, in input order.
    while (!items.empty() && in_flight() < window_) {
      const Item& next = items.front();
      if (InFlight(next.id())) break;  // a request with this id (or this feedback's request)
      if (!Send(next)) break;          // HWM: after the next receive
      items.pop_front();
    }
    if (items.empty() && eof_ && in_flight() == 0) break;

    const TimePoint now = SteadyClock::now();
    if (!heard_ && first_send_ && now - *first_send_ >= timeout_) {
      std::fprintf(stderr,
                   "messplus publish: no answer from %s within %lld ms: is the pipeline "
                   "running there?\n",
                   endpoint_.c_str(), static_cast<long long>(timeout_.count()));
      return 1;
    }
    Expire(now);

    zmq::pollitem_t poll_items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                     {nullptr, STDIN_FILENO, ZMQ_POLLIN, 0}};
    // Read stdin only while there is room to send (the window bounds memory too).
    const bool want_stdin = !eof_ && items.size() < window_;
    pipeline::Poll(poll_items, want_stdin ? 2 : 1, Millis(kMaxPollMs));
    if (poll_items[0].revents & ZMQ_POLLIN) Receive();
    if (want_stdin && (poll_items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
      ReadStdin(id_prefix, &items);
  }
  return failed_ ? 1 : 0;
}

int RunPublish(const PublishFlags& f) {
  std::optional<pipeline::Config> config;
  if (!f.config.empty()) {
    Result<pipeline::Config> c = pipeline::LoadConfig(f.config);
    if (!c.ok()) {
      std::fprintf(stderr, "messplus publish: %s\n", c.status().message().c_str());
      return 2;
    }
    config = std::move(*c);
  }
  const std::string endpoint = !f.endpoint.empty() ? f.endpoint
                               : config            ? config->endpoints.frontend
                                                   : std::string();
  if (endpoint.empty()) {
    std::fprintf(stderr, "messplus publish: give --endpoint or --config (ingest's frontend)\n");
    return 2;
  }
  if (!pipeline::ValidEndpoint(endpoint) || endpoint.rfind("inproc://", 0) == 0) {
    std::fprintf(stderr, "messplus publish: '%s' is not an ipc:// or tcp:// endpoint\n",
                 endpoint.c_str());
    return 2;
  }
  const std::string id_prefix = fmt::format(
      "pub{:x}{:x}", static_cast<unsigned>(::getpid()) & 0xffff,
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) >> 24 &
          0xffffff);

  std::deque<Item> items;
  if (!f.text.empty()) {
    Item item;
    item.request.text = f.text;
    item.request.tenant = f.tenant;
    item.request.task = f.task;
    item.request.id = f.id.empty() ? id_prefix + "-0" : f.id;
    for (const std::string& kv : f.metadata) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "messplus publish: --metadata '%s': expected key=value\n", kv.c_str());
        return 2;
      }
      item.request.metadata.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    items.push_back(std::move(item));
  } else if (!f.tenant.empty() || !f.task.empty() || !f.id.empty() || !f.metadata.empty()) {
    std::fprintf(stderr,
                 "messplus publish: --tenant, --task, --id and --metadata go with a TEXT "
                 "argument (stdin lines carry their own)\n");
    return 2;
  }
  for (const std::string& spec : f.feedback) {
    const size_t eq = spec.rfind('=');
    char* end = nullptr;
    const std::string value = eq == std::string::npos ? "" : spec.substr(eq + 1);
    const double s = std::strtod(value.c_str(), &end);
    if (eq == std::string::npos || eq == 0 || value.empty() ||
        end != value.c_str() + value.size() || !(s >= 0.0 && s <= 1.0)) {
      std::fprintf(stderr,
                   "messplus publish: --feedback '%s': expected ID=VALUE with VALUE in [0, 1]\n",
                   spec.c_str());
      return 2;
    }
    Item item;
    item.is_request = false;
    item.feedback.request_id = spec.substr(0, eq);
    item.feedback.satisfaction = s;
    items.push_back(std::move(item));
  }
  const bool read_stdin = items.empty();

  pipeline::Limits limits;  // model names are checked for size only: the zoo may be unknown
  if (config) {
    limits.max_text_bytes = config->max_text_bytes;
    limits.max_frame_bytes = config->max_frame_bytes;
  }
  zmq::context_t zmq(1);
  Publisher publisher(zmq, endpoint, limits, Millis(f.timeout_ms), f.window);
  return publisher.Run(std::move(items), read_stdin, id_prefix);
}

}  // namespace

void RegisterPublish(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<PublishFlags>();
  CLI::App* cmd = app.add_subcommand(
      "publish",
      "Send a request (TEXT), feedback (--feedback ID=VALUE) or JSON lines from stdin to a "
      "running pipeline; print each answer as a JSON line");
  cmd->add_option("text", f->text, "the request's prompt (omit to read JSON lines from stdin)");
  cmd->add_option("--config", f->config, "pipeline configuration (YAML): the frontend endpoint");
  cmd->add_option("--endpoint", f->endpoint, "ingest's frontend (default: the config's)");
  cmd->add_option("--tenant", f->tenant, "the request's tenant (default: the pipeline's)");
  cmd->add_option("--task", f->task, "the request's task tag");
  cmd->add_option("--id", f->id, "the request's id (default: generated)");
  cmd->add_option("--metadata", f->metadata, "key=value, repeatable");
  cmd->add_option("--feedback", f->feedback,
                  "ID=VALUE: satisfaction VALUE in [0, 1] for request ID, repeatable");
  cmd->add_option("--timeout-ms", f->timeout_ms,
                  "wait at most this long for each answer (and for the endpoint's first one)")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--window", f->window, "stdin: requests and feedbacks in flight at most")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  cmd->callback([f, exit_code] { *exit_code = RunPublish(*f); });
}

}  // namespace messplus::tools
