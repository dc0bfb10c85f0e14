#include "tools/loadgen/loadgen.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "pipeline/clock.h"
#include "pipeline/protocol.h"
#include "pipeline/runtime.h"
#include "tools/loadgen/arrivals.h"

namespace messplus::loadgen {

using pipeline::ClientReply;
using pipeline::ErrorReply;
using pipeline::FeedbackAck;
using pipeline::Message;
using pipeline::MsgType;
using pipeline::TypeBit;

namespace {

constexpr uint64_t kFeedbackStream = 0x666565646261636bull;  // "feedback"
// Replies read per wake-up before the sends get a turn again.
constexpr int kReceiveBatch = 256;
// The longest single wait; the timerfd wakes the loop earlier when something is due.
constexpr int kMaxPollMs = 100;
constexpr int64_t kProgressPeriodNs = 250'000'000;  // at most 4 progress lines a second
constexpr size_t kMinRing = 1024;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             pipeline::SteadyClock::now().time_since_epoch())
      .count();
}

int64_t Ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }
int64_t Ns(pipeline::Millis ms) { return static_cast<int64_t>(ms.count()) * 1'000'000; }

// A request slot of the ring: one per request in flight.
struct Slot {
  uint64_t seq = 0;
  int64_t scheduled = 0;  // ns, steady clock
  int64_t sent = 0;
  bool busy = false;
  bool warm = false;
};

// Feedback waiting for its delay.
struct PendingFeedback {
  int64_t due = 0;
  uint64_t seq = 0;
  int64_t row = -1;
  int served = -1;        // data model index of the served model (-1: unknown)
  uint64_t run_mask = 0;  // data model indices of every model that answered (explored)
  bool labels = false;    // send per-model labels (explored, every model known to the data)
};

class Runner {
 public:
  Runner(zmq::context_t& zmq, const LoadOptions& o)
      : o_(o),
        socket_(zmq, zmq::socket_type::dealer),
        decoder_(MakeLimits(o)),
        report_(o.histogram_digits) {}

  ~Runner() {
    if (timer_fd_ >= 0) ::close(timer_fd_);
  }

  Result<LoadReport> Run();

 private:
  static pipeline::Limits MakeLimits(const LoadOptions& o) {
    pipeline::Limits l;
    l.max_text_bytes = o.max_text_bytes;
    return l;  // model names are checked for size only: the generator does not know the zoo
  }

  bool open_loop() const { return o_.rate > 0.0; }
  uint64_t window() const { return open_loop() ? o_.max_in_flight : o_.concurrency; }
  Slot& SlotOf(uint64_t seq) { return ring_[seq & mask_]; }

  void BuildId(uint64_t seq, std::string* out) const;
  bool ParseId(std::string_view id, uint64_t* seq) const;
  Slot* Find(std::string_view id);
  bool SendRequest(uint64_t seq, int64_t scheduled, int64_t now);
  bool SendFeedback(const PendingFeedback& f);
  void Finish(Slot& s, int64_t now);
  void FailRequest(Slot& s, std::string_view kind, int64_t now);
  void HandleFrame(std::string_view frame, int64_t now);
  void OnClientReply(const ClientReply& reply, int64_t now);
  void ArmTimer(int64_t at_ns);
  void Progress(int64_t now, bool last);

  const LoadOptions& o_;
  zmq::socket_t socket_;
  pipeline::Encoder encoder_;
  pipeline::Decoder decoder_;
  Message message_;
  zmq::message_t frame_;
  pipeline::Request request_;  // reused
  pipeline::Feedback feedback_;
  std::string id_prefix_;
  std::vector<Slot> ring_;
  uint64_t mask_ = 0;
  uint64_t next_seq_ = 0;  // the next request to send
  uint64_t oldest_ = 0;    // no request below it is in flight
  uint64_t in_flight_ = 0;
  std::deque<PendingFeedback> feedback_queue_;
  uint64_t acks_pending_ = 0;
  int64_t last_feedback_sent_ = 0;
  int timer_fd_ = -1;
  int64_t timer_armed_ = -1;
  int64_t measure_start_ = -1, measure_end_ = -1;
  int64_t next_progress_ = 0;
  int64_t start_ = 0;
  LoadReport report_;
};

void Runner::BuildId(uint64_t seq, std::string* out) const {
  out->assign(id_prefix_);
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof(digits), seq);
  out->append(digits, r.ptr);
}

bool Runner::ParseId(std::string_view id, uint64_t* seq) const {
  if (id.size() <= id_prefix_.size() || id.compare(0, id_prefix_.size(), id_prefix_) != 0) {
    return false;
  }
  const char* begin = id.data() + id_prefix_.size();
  const char* end = id.data() + id.size();
  const auto r = std::from_chars(begin, end, *seq);
  return r.ec == std::errc() && r.ptr == end;
}

Slot* Runner::Find(std::string_view id) {
  uint64_t seq = 0;
  if (!ParseId(id, &seq) || seq >= next_seq_) return nullptr;
  Slot& s = SlotOf(seq);
  return s.busy && s.seq == seq ? &s : nullptr;
}

bool Runner::SendRequest(uint64_t seq, int64_t scheduled, int64_t now) {
  const PromptItem item = o_.prompts->Get(seq);
  BuildId(seq, &request_.id);
  request_.text.assign(item.text);
  request_.task.assign(item.task);
  request_.tenant = o_.tenants.Pick(seq);
  const std::string_view bytes = encoder_.Encode(request_);
  if (!socket_.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
    return false;  // HWM: the caller waits for POLLOUT
  }
  Slot& s = SlotOf(seq);
  s.seq = seq;
  s.scheduled = scheduled;
  s.sent = now;
  s.busy = true;
  s.warm = (o_.warmup.requests > 0 && seq < o_.warmup.requests) ||
           (o_.warmup.seconds > 0.0 && scheduled < start_ + Ns(o_.warmup.seconds));
  ++in_flight_;
  PhaseCounts& phase = s.warm ? report_.warmup : report_.measured;
  ++phase.sent;
  if (!s.warm && measure_start_ < 0) measure_start_ = now;
  return true;
}

bool Runner::SendFeedback(const PendingFeedback& f) {
  const simulator::Dataset* data = o_.prompts->data();
  BuildId(f.seq, &feedback_.request_id);
  feedback_.labels.clear();
  feedback_.satisfaction.reset();
  if (f.labels) {
    uint32_t slot = 0;
    for (size_t m = 0; m < data->num_models(); ++m) {
      if (((f.run_mask >> m) & 1u) == 0) continue;
      feedback_.labels.emplace_back(
          data->models[m], FeedbackSatisfaction(data, f.row, static_cast<int>(m), o_.satisfaction_p,
                                                o_.seed, f.seq, slot++));
    }
  } else {
    feedback_.satisfaction =
        FeedbackSatisfaction(data, f.row, f.served, o_.satisfaction_p, o_.seed, f.seq, 0);
  }
  const std::string_view bytes = encoder_.Encode(feedback_);
  if (!socket_.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
    return false;
  }
  ++report_.feedback.sent;
  ++acks_pending_;
  last_feedback_sent_ = NowNs();
  return true;
}

void Runner::Finish(Slot& s, int64_t now) {
  s.busy = false;
  --in_flight_;
  if (!s.warm) measure_end_ = now;
}

void Runner::FailRequest(Slot& s, std::string_view kind, int64_t now) {
  PhaseCounts& phase = s.warm ? report_.warmup : report_.measured;
  auto it = phase.errors.find(kind);
  if (it == phase.errors.end()) it = phase.errors.emplace(std::string(kind), 0).first;
  ++it->second;
  Finish(s, now);
}

void Runner::OnClientReply(const ClientReply& reply, int64_t now) {
  Slot* s = Find(reply.request_id);
  if (s == nullptr) {
    ++report_.stray_replies;
    return;
  }
  if (!reply.ok()) {
    FailRequest(*s, reply.error_code, now);
    return;
  }
  PhaseCounts& phase = s->warm ? report_.warmup : report_.measured;
  ++phase.answered;
  if (!s->warm) {
    report_.latency.Record(now - s->scheduled);
    report_.service.Record(now - s->sent);
    if (open_loop()) report_.send_lateness.Record(s->sent - s->scheduled);
  }
  const uint64_t seq = s->seq;
  Finish(*s, now);
  if (o_.feedback_rate <= 0.0 || DrawUniform(o_.seed, kFeedbackStream, seq) >= o_.feedback_rate) {
    return;
  }
  PendingFeedback f;
  f.due = now + Ns(o_.feedback_delay);
  f.seq = seq;
  const simulator::Dataset* data = o_.prompts->data();
  f.row = o_.prompts->Get(seq).row;
  if (data != nullptr && f.row >= 0) {
    f.served = data->ModelIndex(reply.model);
    bool all_known = f.served >= 0;
    for (const std::string& m : reply.models_run) {
      const int k = data->ModelIndex(m);
      if (k < 0 || k >= 64) {
        all_known = false;
        continue;
      }
      f.run_mask |= uint64_t{1} << k;
    }
    f.labels = reply.explored && reply.models_run.size() > 1 && all_known;
  }
  feedback_queue_.push_back(f);
}

void Runner::HandleFrame(std::string_view frame, int64_t now) {
  const Status st = decoder_.Decode(
      frame, &message_,
      TypeBit(MsgType::kClientReply) | TypeBit(MsgType::kError) | TypeBit(MsgType::kFeedbackAck));
  if (!st.ok()) {
    ++report_.stray_replies;
    return;
  }
  if (const auto* reply = std::get_if<ClientReply>(&message_)) {
    OnClientReply(*reply, now);
  } else if (const auto* ack = std::get_if<FeedbackAck>(&message_)) {
    if (acks_pending_ > 0) --acks_pending_;
    if (ack->ok()) {
      ++report_.feedback.acked;
    } else {
      ++report_.feedback.refused[ack->status];
    }
  } else if (const auto* error = std::get_if<ErrorReply>(&message_)) {
    if (error->about == "feedback") {
      if (acks_pending_ > 0) --acks_pending_;
      ++report_.feedback.refused[error->code];
      return;
    }
    Slot* s = Find(error->request_id);
    if (s == nullptr) {
      ++report_.stray_replies;
      return;
    }
    FailRequest(*s, error->code, now);
  }
}

void Runner::ArmTimer(int64_t at_ns) {
  if (at_ns == timer_armed_) return;
  itimerspec spec{};
  spec.it_value.tv_sec = at_ns / 1'000'000'000;
  spec.it_value.tv_nsec = at_ns % 1'000'000'000;
  // steady_clock is CLOCK_MONOTONIC on Linux, so absolute steady times arm the timer directly.
  ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  timer_armed_ = at_ns;
}

void Runner::Progress(int64_t now, bool last) {
  if (!o_.progress) return;
  if (!last && now < next_progress_) return;
  next_progress_ = now + kProgressPeriodNs;
  const double t = static_cast<double>(now - start_) / 1e9;
  const uint64_t answered = report_.measured.answered + report_.warmup.answered;
  const uint64_t errors = report_.measured.errors_total() + report_.warmup.errors_total();
  std::fprintf(stderr,
               "\r[%6.1fs] sent %llu  answered %llu  errors %llu  in flight %llu  p99 %.0f us   ",
               t, static_cast<unsigned long long>(report_.measured.sent + report_.warmup.sent),
               static_cast<unsigned long long>(answered), static_cast<unsigned long long>(errors),
               static_cast<unsigned long long>(in_flight_),
               static_cast<double>(report_.latency.Percentile(99)) / 1e3);
  if (last) std::fprintf(stderr, "\n");
}

Result<LoadReport> Runner::Run() {
  if (o_.prompts == nullptr) return Status::InvalidArgument("loadgen: no prompt source");
  if ((o_.rate > 0.0) == (o_.concurrency > 0)) {
    return Status::InvalidArgument("give exactly one of --rate (open loop) and --concurrency");
  }
  if (!std::isfinite(o_.rate) || o_.rate < 0.0) {
    return Status::InvalidArgument("--rate must be a finite number > 0");
  }
  if (o_.requests == 0 && !(o_.duration_s > 0.0)) {
    return Status::InvalidArgument("give --duration or --requests (or both) to bound the run");
  }
  if (!(o_.feedback_rate >= 0.0 && o_.feedback_rate <= 1.0)) {
    return Status::InvalidArgument("--feedback-rate must be in [0, 1]");
  }
  if (window() == 0) return Status::InvalidArgument("--max-in-flight must be > 0");

  const size_t ring = std::bit_ceil(std::max<uint64_t>(kMinRing, window()));
  ring_.assign(ring, Slot());
  mask_ = ring - 1;
  id_prefix_ = fmt::format(
      "lg{:x}{:x}-", static_cast<unsigned>(::getpid()),
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) >> 16 &
          0xffffffffu);
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return Status::Internal("loadgen: timerfd_create failed");

  socket_.set(zmq::sockopt::sndhwm, o_.hwm);
  socket_.set(zmq::sockopt::rcvhwm, o_.hwm);
  socket_.set(zmq::sockopt::linger, 0);  // an unreachable endpoint must not hold the exit
  try {
    socket_.connect(o_.endpoint);
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument("cannot connect to " + o_.endpoint + ": " + e.what());
  }

  report_.mode = open_loop() ? "open" : "closed";
  report_.target_rate = o_.rate;
  report_.concurrency = o_.concurrency;
  report_.endpoint = o_.endpoint;
  report_.seed = o_.seed;
  report_.prompt_mean_chars = o_.prompts->mean_chars();

  const int64_t timeout = Ns(o_.request_timeout);
  double deadline_s = o_.deadline_s;
  if (deadline_s <= 0.0) {
    deadline_s = o_.duration_s > 0.0 ? o_.warmup.seconds + o_.duration_s + 60.0 : 600.0;
    deadline_s += 2.0 * static_cast<double>(o_.request_timeout.count()) / 1e3;
  }
  start_ = NowNs();
  const int64_t deadline = start_ + Ns(deadline_s);
  // Set once the first measured request goes out (the duration counts from there).
  int64_t send_end = std::numeric_limits<int64_t>::max();
  PoissonArrivals arrivals(open_loop() ? o_.rate : 1.0, o_.seed);
  int64_t next_due = open_loop() ? start_ + arrivals.Next() : start_;
  bool sending = true;
  bool blocked = false;  // the socket refused a send (HWM): wait for POLLOUT

  // Bounded: every wait is at most kMaxPollMs, sending ends by count or time (or the
  // deadline), and draining by the request / ack timeouts or the deadline.
  while (true) {
    int64_t now = NowNs();
    if (now >= deadline) break;

    // 1. Requests.
    if (sending) {
      while (!blocked) {
        const uint64_t measured_sent = report_.measured.sent;
        if (o_.requests > 0 && measured_sent >= o_.requests) {
          sending = false;
          break;
        }
        if (measure_start_ >= 0 && send_end == std::numeric_limits<int64_t>::max() &&
            o_.duration_s > 0.0) {
          send_end = measure_start_ + Ns(o_.duration_s);
        }
        if (now >= send_end) {
          sending = false;
          break;
        }
        if (in_flight_ >= window() || SlotOf(next_seq_).busy) break;
        const int64_t scheduled = open_loop() ? next_due : now;
        if (open_loop() && scheduled > now) break;
        if (!SendRequest(next_seq_, scheduled, now)) {
          blocked = true;
          break;
        }
        ++next_seq_;
        if (open_loop()) next_due = start_ + arrivals.Next();
        now = NowNs();
      }
    }

    // 2. Feedback whose delay has passed.
    while (!blocked && !feedback_queue_.empty() && feedback_queue_.front().due <= now) {
      if (!SendFeedback(feedback_queue_.front())) {
        blocked = true;
        break;
      }
      feedback_queue_.pop_front();
    }

    // 4 (first, so a timed-out slot is free for the next send). Requests past the timeout.
    while (oldest_ < next_seq_) {
      Slot& s = SlotOf(oldest_);
      if (!s.busy || s.seq != oldest_) {
        ++oldest_;
        continue;
      }
      if (now - s.sent < timeout) break;
      FailRequest(s, "client_timeout", now);
      ++oldest_;
    }

    // Done? Every request answered, every feedback sent and acknowledged (or timed out).
    if (!sending && in_flight_ == 0 && feedback_queue_.empty()) {
      if (acks_pending_ == 0) break;
      if (now - last_feedback_sent_ >= Ns(o_.ack_timeout)) break;
    }

    // 3. Wait for replies or the next due time.
    int64_t wake = now + int64_t{kMaxPollMs} * 1'000'000;
    if (sending && open_loop() && !blocked && in_flight_ < window())
      wake = std::min(wake, next_due);
    if (sending && send_end != std::numeric_limits<int64_t>::max()) wake = std::min(wake, send_end);
    if (!feedback_queue_.empty()) wake = std::min(wake, feedback_queue_.front().due);
    if (oldest_ < next_seq_) wake = std::min(wake, SlotOf(oldest_).sent + timeout);
    if (o_.progress) wake = std::min(wake, next_progress_);
    wake = std::min(wake, deadline);
    zmq::pollitem_t items[3] = {
        {socket_.handle(), 0, static_cast<short>(ZMQ_POLLIN | (blocked ? ZMQ_POLLOUT : 0)), 0},
        {nullptr, timer_fd_, ZMQ_POLLIN, 0},
        {nullptr, o_.stop != nullptr ? o_.stop->fd() : -1, ZMQ_POLLIN, 0}};
    const size_t polled = o_.stop != nullptr && sending ? 3 : 2;
    if (wake > now) {
      ArmTimer(wake);
      pipeline::Poll(items, polled, pipeline::Millis(kMaxPollMs));
    } else {
      items[1].revents = items[2].revents = 0;
      pipeline::Poll(items, 1, pipeline::Millis(0));
    }
    if (polled == 3 && (items[2].revents & ZMQ_POLLIN)) sending = false;  // Ctrl-C: drain
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t expirations = 0;
      if (::read(timer_fd_, &expirations, sizeof(expirations)) < 0) {
        // EAGAIN: already read; nothing to do.
      }
      timer_armed_ = -1;
    }
    if (items[0].revents & ZMQ_POLLOUT) blocked = false;
    if (items[0].revents & ZMQ_POLLIN) {
      for (int n = 0; n < kReceiveBatch; ++n) {
        if (!socket_.recv(frame_, zmq::recv_flags::dontwait)) break;
        const int64_t t = NowNs();
        if (frame_.more()) {  // messplus messages are one frame
          while (frame_.more() && socket_.recv(frame_, zmq::recv_flags::none)) {
          }
          ++report_.stray_replies;
          continue;
        }
        HandleFrame(frame_.to_string_view(), t);
      }
    }
    // A send refused at the HWM is retried after a receive freed room, even without POLLOUT.
    if (items[0].revents & ZMQ_POLLIN) blocked = false;
    Progress(NowNs(), false);
  }

  // The deadline (or the end): whatever is still out did not finish.
  const int64_t end = NowNs();
  for (uint64_t seq = oldest_; seq < next_seq_; ++seq) {
    Slot& s = SlotOf(seq);
    if (s.busy && s.seq == seq)
      FailRequest(s, end >= deadline ? "deadline" : "client_timeout", end);
  }
  const uint64_t answered_acks = report_.feedback.acked + report_.feedback.refused_total();
  report_.feedback.unacked =
      report_.feedback.sent > answered_acks ? report_.feedback.sent - answered_acks : 0;
  if (measure_start_ >= 0 && measure_end_ > measure_start_) {
    report_.seconds = static_cast<double>(measure_end_ - measure_start_) / 1e9;
  }
  Progress(end, true);
  return std::move(report_);
}

}  // namespace

Result<Warmup> ParseWarmup(std::string_view text) {
  Warmup w;
  if (text.empty() || text == "0") return w;
  auto number = [&](std::string_view digits, double* out) {
    const std::string s(digits);
    char* end = nullptr;
    *out = std::strtod(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size() && std::isfinite(*out) && *out >= 0.0;
  };
  double v = 0.0;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms" &&
      number(text.substr(0, text.size() - 2), &v)) {
    w.seconds = v / 1e3;
    return w;
  }
  if (text.size() > 1 && text.back() == 's' && number(text.substr(0, text.size() - 1), &v)) {
    w.seconds = v;
    return w;
  }
  uint64_t n = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  if (r.ec == std::errc() && r.ptr == text.data() + text.size()) {
    w.requests = n;
    return w;
  }
  return Status::InvalidArgument("--warmup '" + std::string(text) +
                                 "': give a number of requests (500) or a time (2s, 300ms)");
}

Result<LoadReport> RunLoad(zmq::context_t& zmq, const LoadOptions& options) {
  Runner runner(zmq, options);
  return runner.Run();
}

}  // namespace messplus::loadgen
