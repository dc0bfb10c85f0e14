#include "pipeline/worker.h"

#include <algorithm>
#include <thread>

#include "pipeline/clock.h"
#include "pipeline/runtime.h"

namespace messplus::pipeline {

void EchoBackend::Call(const ModelCall& call, ModelReply* reply, const StopSignal& /*stop*/) {
  reply->answer = call.text;
  reply->cost = 1.0;
  reply->latency_s = 0.0;
}

ModelWorker::ModelWorker(zmq::context_t& zmq, const Config& config, std::string endpoint,
                         std::string model, std::string name, ModelBackend& backend, Logger log)
    : zmq_(zmq),
      config_(config),
      endpoint_(std::move(endpoint)),
      model_(std::move(model)),
      name_(std::move(name)),
      backend_(backend),
      log_(std::move(log)),
      zoo_(config.ModelNames()),
      decoder_(config.MakeLimits(&zoo_)) {}

void ModelWorker::Connect() {
  socket_ = zmq::socket_t(zmq_, zmq::socket_type::dealer);
  ConfigureSocket(socket_, 1000, config_);
  // A dead dispatch must not keep old calls queued for the next connection.
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint_);
  liveness_ = config_.worker.heartbeat_liveness;
  SendMessage(WorkerReady{model_, name_});
}

bool ModelWorker::SendMessage(MessageRef message) {
  const std::string_view bytes = encoder_.Encode(message);
  return socket_.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)
      .has_value();
}

void ModelWorker::HandleFrame(std::string_view frame, const StopSignal& stop) {
  Status st = decoder_.Decode(
      frame, &message_,
      TypeBit(MsgType::kModelCall) | TypeBit(MsgType::kWorkerHeartbeat) | TypeBit(MsgType::kError));
  if (!st.ok()) {
    ++counters_.rejected;
    log_->warn("worker {}: bad frame from dispatch: {}", name_, st.message());
    return;
  }
  if (const auto* e = std::get_if<ErrorReply>(&message_)) {
    log_->warn("worker {}: dispatch says {}: {}", name_, e->code, e->message);
    return;
  }
  const auto* call = std::get_if<ModelCall>(&message_);
  if (call == nullptr) return;  // heartbeat: liveness was already restored
  reply_ = ModelReply();
  reply_.call_id = call->call_id;
  reply_.request_id = call->request_id;
  reply_.model = model_;
  if (call->model != model_) {
    ++counters_.rejected;
    reply_.error = "this worker serves '" + model_ + "', not '" + call->model + "'";
  } else {
    backend_.Call(*call, &reply_, stop);
    if (!reply_.error.empty()) {
      reply_.answer.clear();
      reply_.cost = 0.0;
    }
  }
  ++counters_.calls;
  if (!SendMessage(reply_))
    log_->warn("worker {}: reply to call {} dropped", name_, reply_.call_id);
}

Status ModelWorker::Run(const StopSignal& stop) {
  if (std::find(zoo_.begin(), zoo_.end(), model_) == zoo_.end()) {
    return Status::InvalidArgument("model '" + model_ + "' is not in the configured zoo");
  }
  const WorkerOptions& opt = config_.worker;
  auto backoff = opt.reconnect_initial;
  try {
    Connect();
    TimePoint next_heartbeat = SteadyClock::now() + opt.heartbeat_interval;
    zmq::message_t frame;
    // Bounded: every wait is at most one heartbeat interval (or one back-off, itself
    // interrupted by the stop signal).
    while (!stop.Poll()) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, stop.fd(), ZMQ_POLLIN, 0}};
      Poll(items, 2, opt.heartbeat_interval);
      if (items[1].revents & ZMQ_POLLIN) break;
      if (items[0].revents & ZMQ_POLLIN) {
        // Any sign of life from dispatch restores liveness.
        for (int n = 0; n < 64 && socket_.recv(frame, zmq::recv_flags::dontwait); ++n) {
          liveness_ = opt.heartbeat_liveness;
          backoff = opt.reconnect_initial;
          if (frame.more()) {  // messplus messages are one frame; skip the rest
            while (frame.more() && socket_.recv(frame, zmq::recv_flags::none)) {
            }
            ++counters_.rejected;
            continue;
          }
          HandleFrame(frame.to_string_view(), stop);
        }
      } else if (--liveness_ <= 0) {
        log_->warn("worker {}: dispatch silent for {} heartbeats; reconnecting in {} ms", name_,
                   opt.heartbeat_liveness, backoff.count());
        zmq::pollitem_t wait[] = {{nullptr, stop.fd(), ZMQ_POLLIN, 0}};
        Poll(wait, 1, backoff);
        if (wait[0].revents & ZMQ_POLLIN) break;
        backoff = std::min(backoff * 2, opt.reconnect_max);
        ++counters_.reconnects;
        Connect();
      }
      if (SteadyClock::now() >= next_heartbeat) {
        SendMessage(WorkerHeartbeat{model_});
        next_heartbeat = SteadyClock::now() + opt.heartbeat_interval;
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) return Status::Internal("worker " + name_ + ": zmq error: " + e.what());
  }
  socket_.close();
  return Status::Ok();
}

}  // namespace messplus::pipeline
