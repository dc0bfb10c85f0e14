#include "pipeline/runtime.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

namespace messplus::pipeline {
namespace {

// Messages read from one socket before the others get a turn (fairness between inputs) and
// before timers run again.
constexpr size_t kBatch = 256;
// A ROUTER message carries an identity and maybe a delimiter; proxies may add a few more.
constexpr size_t kMaxEnvelopeFrames = 8;

}  // namespace

class StageRuntime::OutboxImpl final : public Outbox {
 public:
  OutboxImpl(std::vector<zmq::socket_t>& sockets, const std::vector<PortSpec>& ports,
             StageContext& ctx)
      : sockets_(sockets), ports_(ports), ctx_(ctx) {}

  bool Send(size_t port, MessageRef message, const Envelope* to) override {
    zmq::socket_t& s = sockets_[port];
    const std::string_view bytes = encoder_.Encode(message);
    try {
      if (to != nullptr) {
        for (const std::string& frame : *to) {
          if (!s.send(zmq::buffer(frame), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            ctx_.metrics.Rejected(Reason::kSendFailed);
            return false;
          }
        }
      }
      if (!s.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
        ctx_.metrics.Rejected(Reason::kSendFailed);
        ctx_.log->debug("{}: {} refused a {} (HWM or no peer)", ctx_.metrics.stage(),
                        ports_[port].name, MsgTypeName(message.type()));
        return false;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) throw;  // Run() turns it into a Status
      ctx_.metrics.Rejected(Reason::kUnroutable);
      return false;
    }
    ctx_.metrics.Sent(port, message.type());
    return true;
  }

  void Reject(const Inbound& in, Reason reason, std::string_view detail,
              std::string_view request_id) override {
    ctx_.metrics.Rejected(reason);
    ctx_.log->debug("{}: rejected {} from {}: {}: {}", ctx_.metrics.stage(),
                    MsgTypeName(TypeOf(in.message)), ports_[in.port].name, ReasonName(reason),
                    detail);
    if (ports_[in.port].reply_errors && !in.from.empty()) {
      const ErrorReply error = MakeError(reason, std::string(detail), std::string(request_id),
                                         MsgTypeName(TypeOf(in.message)));
      Send(in.port, error, &in.from);
    }
  }

  void Count(Reason reason, double n) override { ctx_.metrics.Rejected(reason, n); }

 private:
  std::vector<zmq::socket_t>& sockets_;
  const std::vector<PortSpec>& ports_;
  StageContext& ctx_;
  Encoder encoder_;
};

int Poll(zmq::pollitem_t* items, size_t count, Millis timeout) {
  try {
    return zmq::poll(items, count, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    for (size_t i = 0; i < count; ++i) items[i].revents = 0;
    return 0;
  }
}

void ConfigureSocket(zmq::socket_t& socket, int hwm, const Config& config) {
  socket.set(zmq::sockopt::sndhwm, hwm);
  socket.set(zmq::sockopt::rcvhwm, hwm);
  socket.set(zmq::sockopt::linger, static_cast<int>(config.linger.count()));
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(config.max_frame_bytes));
}

Status PrepareEndpoint(const std::string& endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.rfind(kIpc, 0) != 0) return Status::Ok();
  const std::filesystem::path path(endpoint.substr(kIpc.size()));
  if (!path.has_parent_path()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    return Status::IoError("cannot create the directory of " + endpoint + ": " + ec.message());
  }
  return Status::Ok();
}

StageRuntime::StageRuntime(zmq::context_t& zmq, StageContext& ctx, std::vector<PortSpec> ports,
                           const Limits& limits)
    : zmq_(zmq), ctx_(ctx), ports_(std::move(ports)), decoder_(limits) {}

StageRuntime::~StageRuntime() = default;

std::vector<std::string> StageRuntime::SocketNames(const std::vector<PortSpec>& ports) {
  std::vector<std::string> names;
  for (const PortSpec& p : ports) names.push_back(p.name);
  return names;
}

Status StageRuntime::Open() {
  sockets_.clear();
  sockets_.reserve(ports_.size());
  for (const PortSpec& spec : ports_) {
    try {
      zmq::socket_t& s = sockets_.emplace_back(zmq_, spec.type);
      ConfigureSocket(s, spec.hwm, ctx_.config);
      if (spec.type == zmq::socket_type::router) s.set(zmq::sockopt::router_mandatory, 1);
      if (spec.type == zmq::socket_type::sub) s.set(zmq::sockopt::subscribe, "");
      if (spec.bind) {
        MESSPLUS_RETURN_IF_ERROR(PrepareEndpoint(spec.endpoint));
        s.bind(spec.endpoint);
      } else {
        s.connect(spec.endpoint);
      }
    } catch (const zmq::error_t& e) {
      return Status::Unavailable(ctx_.metrics.stage() + ": cannot " +
                                 (spec.bind ? "bind " : "connect ") + spec.name + " to " +
                                 spec.endpoint + ": " + e.what());
    }
    ctx_.log->debug("{}: {} {} {}", ctx_.metrics.stage(), spec.name,
                    spec.bind ? "bound to" : "connected to", spec.endpoint);
  }
  outbox_ = std::make_unique<OutboxImpl>(sockets_, ports_, ctx_);
  return Status::Ok();
}

std::string StageRuntime::LastEndpoint(size_t port) const {
  return sockets_[port].get(zmq::sockopt::last_endpoint);
}

void StageRuntime::HandleFrame(size_t i, Stage& stage, std::string_view payload) {
  Message* message = nullptr;
  Status st = decoder_.Decode(payload, &messages_, &message, ports_[i].accepts);
  if (!st.ok()) {
    const Reason reason = ReasonOf(st);
    ctx_.metrics.Rejected(reason);
    ctx_.log->debug("{}: undecodable frame on {}: {}", ctx_.metrics.stage(), ports_[i].name,
                    st.message());
    if (ports_[i].reply_errors && !envelope_.empty()) {
      outbox_->Send(i, MakeError(reason, st.message()), &envelope_);
    }
    return;
  }
  ctx_.metrics.Received(i, TypeOf(*message));
  Inbound in{i, envelope_, *message};
  const auto start = SteadyClock::now();
  stage.OnMessage(in, *outbox_);
  ctx_.metrics.ObserveHandleSeconds(
      std::chrono::duration<double>(SteadyClock::now() - start).count());
}

size_t StageRuntime::ReadPort(size_t i, Stage& stage, size_t batch) {
  zmq::socket_t& s = sockets_[i];
  size_t n = 0;
  for (; n < batch; ++n) {
    if (!s.recv(frame_, zmq::recv_flags::dontwait)) break;
    // Every frame before the last is routing (ROUTER) or, elsewhere, a protocol violation:
    // messplus messages are one frame. The rest of a multipart message is already here.
    size_t frames = 0;
    while (frame_.more()) {
      if (frames < kMaxEnvelopeFrames) {
        if (envelope_.size() <= frames) envelope_.emplace_back();
        envelope_[frames].assign(frame_.data<char>(), frame_.size());
      }
      ++frames;
      if (!s.recv(frame_, zmq::recv_flags::none)) break;
    }
    envelope_.resize(std::min(frames, kMaxEnvelopeFrames));
    const bool router = ports_[i].type == zmq::socket_type::router;
    if ((!router && frames > 0) || frames > kMaxEnvelopeFrames || (router && frames == 0)) {
      ctx_.metrics.Rejected(Reason::kMalformedMsgpack);
      ctx_.log->debug("{}: {}-frame message on {}", ctx_.metrics.stage(), frames + 1,
                      ports_[i].name);
      if (router && ports_[i].reply_errors && frames <= kMaxEnvelopeFrames && frames > 0) {
        outbox_->Send(i, MakeError(Reason::kMalformedMsgpack, "messages are one frame"),
                      &envelope_);
      }
      continue;
    }
    HandleFrame(i, stage, std::string_view(frame_.data<char>(), frame_.size()));
    // Ports declared earlier go first: when one of them has input now, stop this batch so
    // the next round serves it (route: an update that arrived meanwhile is applied before
    // the next decision).
    if (EarlierPortReady(i, stage)) {
      ++n;
      break;
    }
  }
  return n;
}

bool StageRuntime::EarlierPortReady(size_t i, Stage& stage) {
  for (size_t j = 0; j < i; ++j) {
    if (!ports_[j].input || !stage.Accepting(j)) continue;
    if (sockets_[j].get(zmq::sockopt::events) & ZMQ_POLLIN) return true;
  }
  return false;
}

Status StageRuntime::Run(Stage& stage, const StopSignal& stop) {
  if (outbox_ == nullptr) return Status::FailedPrecondition("StageRuntime::Run before Open");
  const std::string& name = ctx_.metrics.stage();
  Status result;
  try {
    std::vector<zmq::pollitem_t> items;
    std::vector<size_t> item_port;
    bool stopping = false;
    TimePoint deadline{};
    // Bounded: each iteration waits at most poll_interval; the loop ends once stopping
    // and idle, or at the drain deadline.
    while (true) {
      items.clear();
      item_port.clear();
      for (size_t i = 0; i < ports_.size(); ++i) {
        if (!ports_[i].input || !stage.Accepting(i)) continue;
        if (stopping && !ports_[i].drain_on_shutdown) continue;
        items.push_back({sockets_[i].handle(), 0, ZMQ_POLLIN, 0});
        item_port.push_back(i);
      }
      const size_t stop_item = items.size();
      if (!stopping) items.push_back({nullptr, stop.fd(), ZMQ_POLLIN, 0});

      auto timeout = ctx_.config.poll_interval;
      if (stopping) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now());
        timeout = std::clamp(left, Millis(0), timeout);
      }
      Poll(items.data(), items.size(), timeout);

      size_t handled = 0;
      for (size_t k = 0; k < item_port.size(); ++k) {
        if (items[k].revents & ZMQ_POLLIN) handled += ReadPort(item_port[k], stage, kBatch);
      }
      stage.OnTick(ctx_.clock.Now(), *outbox_);

      if (!stopping) {
        if (stop.requested() || (items[stop_item].revents & ZMQ_POLLIN)) {
          stopping = true;
          deadline = SteadyClock::now() + ctx_.config.drain_timeout;
          ctx_.log->info("{}: stopping; draining in-flight work for up to {} ms", name,
                         ctx_.config.drain_timeout.count());
        }
        continue;
      }
      if (stage.Idle() && handled == 0) break;
      if (SteadyClock::now() >= deadline) {
        ctx_.log->warn("{}: drain deadline passed with work in flight", name);
        break;
      }
    }
    stage.OnShutdown(*outbox_);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) result = Status::Internal(name + ": zmq error: " + e.what());
  }
  sockets_.clear();  // closes with the configured linger
  outbox_.reset();
  ctx_.log->info("{}: stopped", name);
  return result;
}

}  // namespace messplus::pipeline
