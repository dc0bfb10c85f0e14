#include "pipeline/client.h"

#include "pipeline/runtime.h"

namespace messplus::pipeline {

Client::Client(zmq::context_t& zmq, const Config& config, const std::string& endpoint)
    : zoo_(config.ModelNames()),
      decoder_(config.MakeLimits(&zoo_)),
      socket_(zmq, zmq::socket_type::dealer) {
  ConfigureSocket(socket_, 100000, config);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

bool Client::Send(MessageRef message) { return SendRaw(encoder_.Encode(message)); }

bool Client::SendRaw(std::string_view bytes) {
  return socket_.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)
      .has_value();
}

Result<bool> Client::Receive(Message* out, Millis timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  Poll(&item, 1, timeout);
  if (!(item.revents & ZMQ_POLLIN)) return false;
  if (!socket_.recv(frame_, zmq::recv_flags::dontwait)) return false;
  if (frame_.more()) {
    while (frame_.more() && socket_.recv(frame_, zmq::recv_flags::none)) {
    }
    return Reject(Reason::kMalformedMsgpack, "multi-frame reply");
  }
  MESSPLUS_RETURN_IF_ERROR(decoder_.Decode(frame_.to_string_view(), out));
  return true;
}

}  // namespace messplus::pipeline
