#include "pipeline/stop.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace messplus::pipeline {
namespace {

// The write end of the pipe the signal handler writes to; -1 when no SignalScope is alive.
// The only global of the pipeline: a signal handler has no other way to find its target.
std::atomic<int> g_signal_fd{-1};

void OnSignal(int /*signo*/) {
  const int saved_errno = errno;
  const int fd = g_signal_fd.load();
  if (fd >= 0) {
    const char byte = 1;
    // Nothing useful to do on failure inside a handler; a full pipe is already "stopped".
    [[maybe_unused]] ssize_t n = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

Result<std::unique_ptr<StopSignal>> StopSignal::Create() {
  int fds[2];
  if (pipe(fds) != 0) return Status::IoError(std::string("pipe: ") + std::strerror(errno));
  for (int fd : fds) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  return std::make_unique<StopSignal>(PassKey(), fds[0], fds[1]);
}

StopSignal::~StopSignal() {
  close(read_fd_);
  close(write_fd_);
}

void StopSignal::Request() {
  if (requested_.exchange(true, std::memory_order_acq_rel)) return;
  const char byte = 1;
  [[maybe_unused]] ssize_t n = write(write_fd_, &byte, 1);
}

bool StopSignal::Poll() const {
  if (requested()) return true;
  pollfd p{read_fd_, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

struct SignalScope::Saved {
  struct sigaction int_action;
  struct sigaction term_action;
};

SignalScope::SignalScope(StopSignal* stop) : saved_(std::make_unique<Saved>()) {
  g_signal_fd.store(stop->write_fd());
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &saved_->int_action);
  sigaction(SIGTERM, &action, &saved_->term_action);
}

SignalScope::~SignalScope() {
  sigaction(SIGINT, &saved_->int_action, nullptr);
  sigaction(SIGTERM, &saved_->term_action, nullptr);
  g_signal_fd.store(-1);
}

}  // namespace messplus::pipeline
