// StopSignal: a one-shot "please stop" that wakes every zmq::poll waiting on it.
//
// It is a self-pipe (zguide chapter 2, "Handling Interrupt Signals"): Request() writes one
// byte, which nobody reads, so the read end stays readable and every stage loop that polls
// fd() wakes up, in one process or in several threads. Request() is async-signal-safe.
//
// SignalScope routes SIGINT and SIGTERM to one StopSignal while it lives. A signal handler
// can only reach a global, so the write end's descriptor is the one global of the pipeline
// (an atomic int, set and cleared by SignalScope); the handler does nothing but write().
//
// Thread safety: Request(), requested() and fd() may be called from any thread.
#pragma once

#include <atomic>
#include <memory>

#include "router/status.h"

namespace messplus::pipeline {

class StopSignal {
 public:
  static Result<std::unique_ptr<StopSignal>> Create();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void Request();
  bool requested() const { return requested_.load(std::memory_order_acquire); }
  // Poll this for POLLIN; it stays readable once a stop was requested (by Request or by a
  // signal routed here).
  int fd() const { return read_fd_; }
  int write_fd() const { return write_fd_; }
  // True once fd() is readable (a signal may have written without going through Request).
  bool Poll() const;

  class PassKey {
    friend class StopSignal;
    PassKey() = default;
  };
  StopSignal(PassKey, int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

 private:
  int read_fd_;
  int write_fd_;
  std::atomic<bool> requested_{false};
};

// Installs SIGINT / SIGTERM handlers that call stop->Request()'s async-signal-safe part;
// restores the previous handlers when destroyed. One at a time per process.
class SignalScope {
 public:
  explicit SignalScope(StopSignal* stop);
  ~SignalScope();
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

}  // namespace messplus::pipeline
