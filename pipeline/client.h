// Client: the client side of ingest's frontend (a DEALER), for tools and tests.
//
// Send() never blocks; Receive() waits at most the given time. Messages are the protocol's
// structs; the client validates replies with the zoo of its configuration.
//
// Thread safety: one thread per Client.
#pragma once

#include <string>
#include <vector>

#include <zmq.hpp>

#include "pipeline/config.h"
#include "pipeline/protocol.h"
#include "router/status.h"

namespace messplus::pipeline {

class Client {
 public:
  Client(zmq::context_t& zmq, const Config& config, const std::string& endpoint);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // False when the socket refused (HWM reached).
  bool Send(MessageRef message);
  // Sends raw bytes as one frame (tests of malformed input).
  bool SendRaw(std::string_view bytes);
  // Waits up to `timeout` for one message: true and *out set when one arrived, false on
  // timeout; a frame that does not decode is a non-OK Status (the client keeps working).
  Result<bool> Receive(Message* out, Millis timeout);

  zmq::socket_t& socket() { return socket_; }

 private:
  std::vector<std::string> zoo_;
  Decoder decoder_;
  Encoder encoder_;
  zmq::socket_t socket_;
  zmq::message_t frame_;
};

}  // namespace messplus::pipeline
