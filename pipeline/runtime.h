// StageRuntime: the loop every stage runs in, in a thread (inproc://, shared zmq context) or
// in its own process (ipc:// or tcp://) alike.
//
// A stage declares its sockets (PortSpec) and implements two hooks (Stage::OnMessage,
// Stage::OnTick). The runtime owns everything else:
//   1. opens the sockets (HWMs, linger, max message size, ROUTER_MANDATORY, SUB filters),
//      binding or connecting as declared, creating the directory of ipc:// endpoints;
//   2. polls the input sockets the stage is Accepting() plus the StopSignal, with a bounded
//      timeout (Config::poll_interval), so timers run even when nothing arrives;
//   3. reads up to a batch of messages per readable socket, in the order the ports are
//      declared (a stage lists first what must be handled first; a batch also ends as soon
//      as an earlier port has input), decodes each with the socket's
//      accepted types and the stage's Limits, counts it, and hands it to OnMessage. A frame
//      that does not decode is counted under its reason and, on sockets that can answer
//      (ROUTER), answered with an `error` message; the loop moves on;
//   4. calls OnTick after every poll;
//   5. on stop: stops reading the sockets not marked drain_on_shutdown, keeps serving the
//      others until the stage is Idle() and quiet, or Config::drain_timeout passed; then
//      OnShutdown (flush state), and closes the sockets with Config::linger.
// No exception escapes Run(): zmq errors other than EAGAIN / EHOSTUNREACH end the loop with a
// non-OK Status (ETERM: OK).
//
// Thread safety: a StageRuntime and its Stage belong to one thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "pipeline/clock.h"
#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/metrics.h"
#include "pipeline/protocol.h"
#include "pipeline/stop.h"
#include "router/status.h"

namespace messplus::pipeline {

// Routing frames a ROUTER socket received before the payload (identity, and an empty
// delimiter for REQ peers); empty on other sockets. Sending a reply with the same envelope
// routes it back to the peer.
using Envelope = std::vector<std::string>;

struct PortSpec {
  std::string name;  // the `socket` metrics label, e.g. "frontend"
  zmq::socket_type type = zmq::socket_type::pull;
  std::string endpoint;
  bool bind = false;               // bind (stable side) or connect
  bool input = false;              // polled for messages
  MsgTypeSet accepts = 0;          // types OnMessage may receive from this socket
  bool reply_errors = false;       // answer undecodable input with `error` (ROUTER sockets)
  bool drain_on_shutdown = false;  // keep reading while draining (replies, acks)
  int hwm = 1000;
};

// One decoded message. `message` may be moved from by the stage.
struct Inbound {
  size_t port = 0;
  const Envelope& from;
  Message& message;
};

// How a stage sends. Sends never block: a socket at its HWM, a PUSH without peers or an
// unroutable ROUTER reply makes Send return false after counting the reason
// (send_failed / unroutable); the stage decides what that means for its work.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // `to`: the envelope of the peer, on ROUTER sockets (REQUIRES: non-null there).
  virtual bool Send(size_t port, MessageRef message, const Envelope* to = nullptr) = 0;
  // Counts `reason`; when `in` arrived on a socket with reply_errors, answers the sender
  // with an `error` message.
  virtual void Reject(const Inbound& in, Reason reason, std::string_view detail,
                      std::string_view request_id = {}) = 0;
  // Counts a drop nobody can be told about (an expired entry, a lost worker).
  virtual void Count(Reason reason, double n = 1.0) = 0;
};

// What the runtime lends a stage for its lifetime (the runtime and the process own it).
struct StageContext {
  const Config& config;
  Logger log;
  const Clock& clock;
  StageMetrics& metrics;
};

// A stage: a thin adapter between sockets and a pure core (router::Router, the tables of
// in-flight work). The runtime calls the hooks from one thread.
class Stage {
 public:
  virtual ~Stage() = default;
  // One decoded, validated message from input port `in.port`. Bad content that decoding
  // cannot see (an unknown tenant, an unknown request id) goes to out.Reject. Never throws.
  virtual void OnMessage(Inbound& in, Outbox& out) = 0;
  // After every poll (at least every poll_interval): timeouts, heartbeats, checkpoints.
  virtual void OnTick(TimePoint now, Outbox& out) = 0;

  // Back-pressure: while false, the runtime does not read input `port` (its queue fills up
  // to the HWM and the senders wait). Default: always reading.
  virtual bool Accepting(size_t /*port*/) const { return true; }
  // No in-flight work left; shutdown waits for this (up to the drain deadline).
  virtual bool Idle() const { return true; }
  // Called once after draining, before the sockets close: flush state, fail what is left.
  virtual void OnShutdown(Outbox& /*out*/) {}
};

class StageRuntime {
 public:
  // `limits` must outlive the runtime. Sockets are created in Open().
  StageRuntime(zmq::context_t& zmq, StageContext& ctx, std::vector<PortSpec> ports,
               const Limits& limits);
  ~StageRuntime();
  StageRuntime(const StageRuntime&) = delete;
  StageRuntime& operator=(const StageRuntime&) = delete;

  // Creates, configures, binds and connects every socket. Unavailable naming the endpoint
  // when one cannot be bound or connected.
  Status Open();
  // The loop (see the file comment). REQUIRES: Open() succeeded.
  Status Run(Stage& stage, const StopSignal& stop);

  // The endpoint a socket actually bound (e.g. the port picked for tcp://127.0.0.1:*).
  std::string LastEndpoint(size_t port) const;

  // Metrics socket names for a port list (StageMetrics::Create takes them).
  static std::vector<std::string> SocketNames(const std::vector<PortSpec>& ports);

 private:
  class OutboxImpl;
  // Reads and handles up to `batch` messages from port i; returns how many were read.
  size_t ReadPort(size_t i, Stage& stage, size_t batch);
  bool EarlierPortReady(size_t i, Stage& stage);
  void HandleFrame(size_t i, Stage& stage, std::string_view payload);

  zmq::context_t& zmq_;
  StageContext& ctx_;
  std::vector<PortSpec> ports_;
  std::vector<zmq::socket_t> sockets_;
  Decoder decoder_;
  std::unique_ptr<OutboxImpl> outbox_;
  MessageSlots messages_;  // reused decode targets, one per type (warm buffers)
  Envelope envelope_;      // reused routing frames
  zmq::message_t frame_;
};

// zmq::poll that treats an interrupted wait (EINTR: a signal arrived) as a timeout, so the
// caller's loop runs and sees the stop signal. Other zmq errors throw as zmq::poll does.
int Poll(zmq::pollitem_t* items, size_t count, Millis timeout);

// Opens the sockets as a client-side helper would: HWMs, linger, max message size.
void ConfigureSocket(zmq::socket_t& socket, int hwm, const Config& config);
// Creates the parent directory of an ipc:// endpoint (bind fails without it).
Status PrepareEndpoint(const std::string& endpoint);

}  // namespace messplus::pipeline
