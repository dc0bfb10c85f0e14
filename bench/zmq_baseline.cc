// messplus_bench_zmq: what ZeroMQ itself allows on this machine, with no messplus code in the
// path. These are the ceilings the pipeline is compared with (its throughput must reach at
// least half of the raw chain of the same hop count, measured in the same run).
//
//   (a) chain: source -PUSH/PULL-> forwarder ... -> sink, `--stages` stages (stages - 1 hops),
//       `--size`-byte messages, no work; forwarders pass each message on without copying.
//       Reported: messages per second at the sink, first to last message, median of
//       `--repeat` fresh chains.
//   (b) round trip: client DEALER -> broker (ROUTER front, DEALER back) -> REP worker and back,
//       timed by the client: one request at a time (ping-pong), an open loop at a fixed rate
//       (latency counted from each request's scheduled send time, so a stall is not hidden by
//       the requests it delays), and a closed loop with `--window` requests in flight (the
//       maximum throughput, with its latency). Percentiles come from LatencyHistogram.
//
// Isolation: inproc:// runs each stage as a thread of this process (one ZeroMQ context);
// ipc:// and tcp://127.0.0.1 fork one process per stage (each with its own context), unless
// --isolation thread. Children are started downstream first; each reports its bound
// endpoint over a pipe before the next one is started (an explicit readiness handshake, no
// sleeps). Every loop is bounded by a message count and a deadline (--timeout); children
// are waited for by pid and, past the deadline, killed by pid. This process holds no ZeroMQ
// context while it forks.
//
// Output: a table on stdout, or with --json one JSON object.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "tools/loadgen/histogram.h"

namespace messplus::bench {
namespace {

using Clock = std::chrono::steady_clock;
using loadgen::LatencyHistogram;

// A request's payload starts with its sequence number and its send time (ns, steady clock);
// the rest is padding up to --size.
constexpr size_t kHeaderBytes = 16;
constexpr uint64_t kStopSeq = ~uint64_t{0};  // the client's last request: stop after it
constexpr auto kIoTimeout = std::chrono::milliseconds(200);  // blocking calls wake this often
// How long past its deadline a stage gets to report a partial result and exit.
constexpr auto kGrace = std::chrono::seconds(5);

struct Options {
  std::vector<std::string> tests{"chain", "rtt"};
  std::vector<std::string> transports{"inproc", "ipc", "tcp"};
  std::string isolation = "auto";  // auto: threads for inproc, processes otherwise
  int stages = 5;
  size_t size = 200;
  uint64_t messages = 1'000'000;
  int repeat = 3;
  uint64_t warmup = 2'000;
  uint64_t pingpong = 20'000;
  double rate = 5'000.0;
  double rate_seconds = 2.0;
  uint64_t max_count = 200'000;
  int window = 64;
  int digits = 3;
  double timeout_s = 60.0;
  bool json = false;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

bool Threads(const Options& o, const std::string& transport) {
  return transport == "inproc" || o.isolation == "thread";
}

// ---------------------------------------------------------------------------------------------
// Endpoints and readiness.

// Where stage `name` binds. tcp binds an ephemeral port; the real endpoint is read back.
std::string BindAddress(const std::string& transport, const std::string& name) {
  if (transport == "inproc") return "inproc://messplus-zmqb-" + name;
  if (transport == "ipc") {
    return "ipc:///tmp/messplus-zmqb-" + std::to_string(getpid()) + "-" + name + ".sock";
  }
  return "tcp://127.0.0.1:*";
}

void RemoveIpcFile(const std::string& endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.rfind(kIpc, 0) == 0) ::unlink(endpoint.substr(kIpc.size()).c_str());
}

std::string BoundEndpoint(zmq::socket_t& s, const std::string& address) {
  s.bind(address);
  return s.get(zmq::sockopt::last_endpoint);
}

void SetCommon(zmq::socket_t& s, int linger_ms) {
  s.set(zmq::sockopt::linger, linger_ms);
  s.set(zmq::sockopt::rcvtimeo, static_cast<int>(kIoTimeout.count()));
  s.set(zmq::sockopt::sndtimeo, static_cast<int>(kIoTimeout.count()));
}

// How a stage tells its starter a line of text (its endpoint, or its result).
using Report = std::function<void(const std::string&)>;

// Reads one '\n'-terminated line from a pipe, waiting until `deadline`.
std::optional<std::string> ReadLine(int fd, Clock::time_point deadline) {
  std::string line;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (rc < 0 && errno != EINTR) return std::nullopt;
    if (rc <= 0) continue;
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) return std::nullopt;  // the child closed the pipe without a line
    if (c == '\n') return line;
    line.push_back(c);
  }
}

void WriteLine(int fd, const std::string& line) {
  const std::string s = line + "\n";
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Child processes: started with Spawn, ended with Reap (by pid, never by name).
struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end of the child's report pipe
};

// Forks a child that runs `body` with its own ZeroMQ context and reports through a pipe.
std::optional<Child> Spawn(const std::function<void(const Report&)>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
    int code = 0;
    try {
      body([fd = fds[1]](const std::string& line) { WriteLine(fd, line); });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "messplus_bench_zmq child: %s\n", e.what());
      code = 1;
    }
    ::close(fds[1]);
    ::_exit(code);  // no static destructors or atexit handlers of the parent
  }
  ::close(fds[1]);
  return Child{pid, fds[0]};
}

// Waits for each child until `deadline`, then kills the ones left (by pid) and reaps them.
// Returns the number of children that did not exit cleanly.
int Reap(std::vector<Child>& children, Clock::time_point deadline) {
  int bad = 0;
  for (Child& c : children) {
    if (c.pid <= 0) continue;
    int status = 0;
    pid_t r = 0;
    while ((r = ::waitpid(c.pid, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (r == 0) {
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, &status, 0);
      ++bad;
    } else if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++bad;
    }
    if (c.fd >= 0) ::close(c.fd);
    c = Child{};
  }
  return bad;
}

// ---------------------------------------------------------------------------------------------
// (a) The chain.

struct ChainRun {
  uint64_t received = 0;
  double seconds = 0.0;  // first to last message at the sink
  double msgs_per_s = 0.0;
  bool ok = false;
};

// Stage k of `stages`: 0 is the source, stages - 1 the sink, the others forward. Binds its
// input (all but the source), reports the endpoint (the sink later also its result), then
// connects its output to `downstream`.
void ChainStage(zmq::context_t& ctx, const Options& o, const std::string& transport, int k,
                const std::string& downstream, Clock::time_point deadline, const Report& report) {
  const bool source = k == 0, sink = k == o.stages - 1;
  const int linger_ms = static_cast<int>(o.timeout_s * 1000);
  if (source) {
    zmq::socket_t out(ctx, zmq::socket_type::push);
    SetCommon(out, linger_ms);
    out.connect(downstream);
    report("ready");
    std::vector<char> payload(o.size, 'x');
    for (uint64_t i = 0; i < o.messages && Clock::now() < deadline;) {
      if (out.send(zmq::buffer(payload), zmq::send_flags::none)) ++i;
    }
    return;
  }
  zmq::socket_t in(ctx, zmq::socket_type::pull);
  SetCommon(in, 0);
  const std::string endpoint =
      BoundEndpoint(in, BindAddress(transport, "chain" + std::to_string(k)));
  std::optional<zmq::socket_t> out;
  if (!sink) {
    out.emplace(ctx, zmq::socket_type::push);
    SetCommon(*out, linger_ms);
    out->connect(downstream);
  }
  report(endpoint);
  zmq::message_t msg;
  uint64_t n = 0;
  int64_t first = 0, last = 0;
  while (n < o.messages && Clock::now() < deadline) {
    if (!in.recv(msg, zmq::recv_flags::none)) continue;  // timeout: check the deadline
    if (sink) {
      last = NowNs();
      if (n == 0) first = last;
      ++n;
      continue;
    }
    while (!out->send(msg, zmq::send_flags::none)) {
      if (Clock::now() >= deadline) return;
    }
    ++n;
  }
  if (sink) {
    report("result " + std::to_string(n) + " " + std::to_string(last - first));
  }
  RemoveIpcFile(endpoint);
}

ChainRun ParseChainResult(const std::optional<std::string>& line, const Options& o) {
  ChainRun run;
  unsigned long long n = 0;
  long long ns = 0;
  if (line && std::sscanf(line->c_str(), "result %llu %lld", &n, &ns) == 2) {
    run.received = n;
    run.seconds = static_cast<double>(ns) * 1e-9;
    run.ok = n == o.messages && ns > 0;
    if (n > 1 && ns > 0) run.msgs_per_s = static_cast<double>(n - 1) / run.seconds;
  }
  return run;
}

ChainRun RunChainThreads(const Options& o, const std::string& transport) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(o.timeout_s));
  std::optional<std::string> result;
  {
    zmq::context_t ctx;
    std::vector<std::thread> threads;
    std::promise<std::string> result_promise;
    std::future<std::string> result_future = result_promise.get_future();
    std::string downstream;
    bool started = true;
    for (int k = o.stages - 1; k >= 0 && started; --k) {
      auto ready = std::make_shared<std::promise<std::string>>();
      std::future<std::string> ready_future = ready->get_future();
      const bool sink = k == o.stages - 1;
      threads.emplace_back([&, k, downstream, ready, sink]() {
        bool first = true;
        ChainStage(ctx, o, transport, k, downstream, deadline, [&](const std::string& line) {
          if (first) {
            ready->set_value(line);
            first = false;
          } else if (sink) {
            result_promise.set_value(line);
          }
        });
        if (first) ready->set_value("");  // failed before reporting; unblocks the starter
      });
      if (ready_future.wait_until(deadline) != std::future_status::ready) {
        started = false;
        break;
      }
      downstream = ready_future.get();
      started = !downstream.empty();
    }
    if (started && result_future.wait_until(deadline + kGrace) == std::future_status::ready) {
      result = result_future.get();
    }
    for (std::thread& t : threads) t.join();  // every stage ends by count or deadline
  }
  return ParseChainResult(result, o);
}

ChainRun RunChainProcesses(const Options& o, const std::string& transport) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(o.timeout_s));
  std::vector<Child> children;
  std::string downstream;
  bool started = true;
  for (int k = o.stages - 1; k >= 0 && started; --k) {
    std::optional<Child> child = Spawn([&o, &transport, k, downstream, deadline](const Report& r) {
      zmq::context_t ctx;
      ChainStage(ctx, o, transport, k, downstream, deadline, r);
    });
    if (!child) {
      started = false;
      break;
    }
    children.push_back(*child);
    std::optional<std::string> line = ReadLine(child->fd, deadline);
    started = line.has_value() && !line->empty();
    if (started) downstream = *line;
  }
  std::optional<std::string> result;
  // The sink was started first.
  if (started) result = ReadLine(children.front().fd, deadline + kGrace);
  const int bad = Reap(children, deadline + kGrace);
  ChainRun run = ParseChainResult(result, o);
  run.ok = run.ok && bad == 0;
  return run;
}

// ---------------------------------------------------------------------------------------------
// (b) The round trip.

void WriteHeader(char* p, uint64_t seq, int64_t t_ns) {
  std::memcpy(p, &seq, 8);
  std::memcpy(p + 8, &t_ns, 8);
}
void ReadHeader(const void* p, uint64_t* seq, int64_t* t_ns) {
  std::memcpy(seq, p, 8);
  std::memcpy(t_ns, static_cast<const char*>(p) + 8, 8);
}

// ROUTER front / DEALER back, forwarding whole multipart messages both ways, until the reply
// to the stop request has gone back (or the deadline).
void Broker(zmq::context_t& ctx, const std::string& transport, Clock::time_point deadline,
            const Report& report) {
  zmq::socket_t front(ctx, zmq::socket_type::router), back(ctx, zmq::socket_type::dealer);
  SetCommon(front, 0);
  SetCommon(back, 0);
  const std::string fe = BoundEndpoint(front, BindAddress(transport, "front"));
  const std::string be = BoundEndpoint(back, BindAddress(transport, "back"));
  report(fe + " " + be);
  zmq::message_t msg;
  bool stop = false;
  while (!stop && Clock::now() < deadline) {
    zmq::pollitem_t items[] = {{front.handle(), 0, ZMQ_POLLIN, 0},
                               {back.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 2, kIoTimeout) <= 0) continue;
    for (int side = 0; side < 2; ++side) {
      if (!(items[side].revents & ZMQ_POLLIN)) continue;
      zmq::socket_t& from = side == 0 ? front : back;
      zmq::socket_t& to = side == 0 ? back : front;
      // Drain what is queued on this side (bounded: a batch per poll).
      for (int batch = 0; batch < 256; ++batch) {
        if (!from.recv(msg, zmq::recv_flags::dontwait)) break;
        while (true) {
          const bool more = msg.more();
          if (!more && side == 1 && msg.size() >= 8) {
            uint64_t seq;
            std::memcpy(&seq, msg.data(), 8);
            stop = seq == kStopSeq;
          }
          (void)to.send(msg, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
          if (!more) break;
          (void)from.recv(msg, zmq::recv_flags::none);
        }
      }
    }
  }
  RemoveIpcFile(fe);
  RemoveIpcFile(be);
}

// REP echo until the stop request.
void Worker(zmq::context_t& ctx, const std::string& backend, Clock::time_point deadline) {
  zmq::socket_t rep(ctx, zmq::socket_type::rep);
  SetCommon(rep, 1000);
  rep.connect(backend);
  zmq::message_t msg;
  while (Clock::now() < deadline) {
    if (!rep.recv(msg, zmq::recv_flags::none)) continue;
    uint64_t seq = 0;
    if (msg.size() >= 8) std::memcpy(&seq, msg.data(), 8);
    while (!rep.send(msg, zmq::send_flags::none) && Clock::now() < deadline) {
    }
    if (seq == kStopSeq) return;
  }
}

struct RttResult {
  std::string mode;
  double target_rate = 0.0;  // fixed-rate only
  int window = 1;
  uint64_t requests = 0;
  uint64_t replies = 0;
  double seconds = 0.0;
  double replies_per_s = 0.0;
  LatencyHistogram hist;
  LatencyHistogram lateness;  // fixed-rate: how late the client sent each request
  bool ok = false;
};

class Client {
 public:
  Client(zmq::context_t& ctx, const std::string& frontend, const Options& o,
         Clock::time_point deadline)
      : o_(o),
        deadline_(deadline),
        dealer_(ctx, zmq::socket_type::dealer),
        payload_(std::max(o.size, kHeaderBytes), 'x') {
    SetCommon(dealer_, 0);
    dealer_.connect(frontend);
  }

  // Window 1: one request at a time; latency = reply time - send time.
  RttResult PingPong(uint64_t count, bool record = true) {
    RttResult r = Make("ping-pong", count);
    const int64_t start = NowNs();
    for (uint64_t i = 0; i < count && Clock::now() < deadline_; ++i) {
      if (!Send(i, NowNs())) break;
      if (!Receive(record ? &r : nullptr)) break;
    }
    Finish(&r, start);
    return r;
  }

  // Open loop: request i is due at start + i / rate; latency = reply time - due time. The
  // client waits in zmq_poll on the socket and a timerfd armed for the next due time, so it
  // neither spins (which would take a core from the broker and the worker) nor misses a reply.
  RttResult FixedRate(double rate, double seconds) {
    const uint64_t count = static_cast<uint64_t>(rate * seconds);
    RttResult r = Make("fixed-rate", count);
    r.target_rate = rate;
    const double interval_ns = 1e9 / rate;
    const int64_t start = NowNs() + 1'000'000;  // first request 1 ms from now
    auto due = [&](uint64_t i) {
      return start + static_cast<int64_t>(static_cast<double>(i) * interval_ns);
    };
    // steady_clock is CLOCK_MONOTONIC on Linux, so due times arm the timer directly.
    const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) return r;
    uint64_t sent = 0;
    while (r.replies < count && Clock::now() < deadline_) {
      while (Receive(&r, zmq::recv_flags::dontwait)) {
      }
      if (r.replies >= count) break;
      const int64_t now = NowNs();
      if (sent < count && now >= due(sent)) {
        if (Send(sent, due(sent))) {
          r.lateness.Record(now - due(sent));
          ++sent;
        }
        continue;
      }
      itimerspec when{};  // all zero: disarmed once everything is sent
      if (sent < count) {
        when.it_value.tv_sec = static_cast<time_t>(due(sent) / 1'000'000'000);
        when.it_value.tv_nsec = static_cast<long>(due(sent) % 1'000'000'000);
      }
      ::timerfd_settime(tfd, TFD_TIMER_ABSTIME, &when, nullptr);
      zmq::pollitem_t items[] = {{dealer_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, tfd, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, kIoTimeout);
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t expirations;
        (void)!::read(tfd, &expirations, sizeof(expirations));
      }
    }
    ::close(tfd);
    Finish(&r, start);
    return r;
  }

  // Closed loop with `window` requests in flight; latency = reply time - send time.
  RttResult MaxThroughput(uint64_t count, int window) {
    RttResult r = Make("max-throughput", count);
    r.window = window;
    const int64_t start = NowNs();
    uint64_t sent = 0;
    for (; sent < std::min<uint64_t>(count, static_cast<uint64_t>(window)); ++sent) {
      if (!Send(sent, NowNs())) break;
    }
    while (r.replies < sent && Clock::now() < deadline_) {
      if (!Receive(&r)) continue;
      if (sent < count && Send(sent, NowNs())) ++sent;
    }
    Finish(&r, start);
    return r;
  }

  // The last request: the worker and the broker end after its reply.
  bool Stop() {
    if (!Send(kStopSeq, NowNs())) return false;
    zmq::message_t delimiter, body;
    while (Clock::now() < deadline_) {
      if (!dealer_.recv(delimiter, zmq::recv_flags::none)) continue;
      if (!delimiter.more()) continue;
      (void)dealer_.recv(body, zmq::recv_flags::none);
      uint64_t seq = 0;
      int64_t t = 0;
      if (body.size() >= kHeaderBytes) ReadHeader(body.data(), &seq, &t);
      if (seq == kStopSeq) return true;
    }
    return false;
  }

 private:
  RttResult Make(const std::string& mode, uint64_t count) {
    RttResult r{
        mode, 0.0, 1, count, 0, 0.0, 0.0, LatencyHistogram(o_.digits), LatencyHistogram(o_.digits),
        false};
    return r;
  }

  void Finish(RttResult* r, int64_t start_ns) const {
    r->seconds = static_cast<double>(NowNs() - start_ns) * 1e-9;
    if (r->seconds > 0) r->replies_per_s = static_cast<double>(r->replies) / r->seconds;
    r->ok = r->replies == r->requests;
  }

  bool Send(uint64_t seq, int64_t t_ns) {
    WriteHeader(payload_.data(), seq, t_ns);
    // The REP worker expects the envelope delimiter (an empty frame) before the body.
    while (Clock::now() < deadline_) {
      if (dealer_.send(zmq::const_buffer(), zmq::send_flags::sndmore)) break;
    }
    while (Clock::now() < deadline_) {
      if (dealer_.send(zmq::buffer(payload_), zmq::send_flags::none)) return true;
    }
    return false;
  }

  // One reply: records its latency against the time in its header (the send time, or the
  // due time in the fixed-rate run) if r is given, and counts it.
  bool Receive(RttResult* r, zmq::recv_flags flags = zmq::recv_flags::none) {
    if (!dealer_.recv(delimiter_, flags)) return false;
    if (!delimiter_.more()) return false;  // not a reply envelope; cannot happen here
    (void)dealer_.recv(body_, zmq::recv_flags::none);
    const int64_t now = NowNs();
    uint64_t seq = 0;
    int64_t t = 0;
    if (body_.size() >= kHeaderBytes) ReadHeader(body_.data(), &seq, &t);
    if (r != nullptr) {
      r->hist.Record(now - t);
      ++r->replies;
    }
    return true;
  }

  const Options& o_;
  Clock::time_point deadline_;
  zmq::socket_t dealer_;
  std::vector<char> payload_;
  zmq::message_t delimiter_, body_;
};

std::vector<RttResult> RunClient(zmq::context_t& ctx, const std::string& frontend, const Options& o,
                                 Clock::time_point deadline) {
  Client client(ctx, frontend, o, deadline);
  std::vector<RttResult> results;
  (void)client.PingPong(o.warmup, /*record=*/false);  // connections up, caches warm
  results.push_back(client.PingPong(o.pingpong));
  results.push_back(client.FixedRate(o.rate, o.rate_seconds));
  results.push_back(client.MaxThroughput(o.max_count, o.window));
  if (!client.Stop()) {
    for (RttResult& r : results) r.ok = false;
  }
  return results;
}

std::vector<RttResult> RunRttThreads(const Options& o, const std::string& transport) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(o.timeout_s));
  std::vector<RttResult> results;
  zmq::context_t ctx;
  std::promise<std::string> ready;
  std::future<std::string> ready_future = ready.get_future();
  std::thread broker([&]() {
    Broker(ctx, transport, deadline, [&](const std::string& s) { ready.set_value(s); });
  });
  if (ready_future.wait_until(deadline) == std::future_status::ready) {
    const std::string line = ready_future.get();
    const std::string fe = line.substr(0, line.find(' ')), be = line.substr(line.find(' ') + 1);
    std::thread worker([&]() { Worker(ctx, be, deadline); });
    results = RunClient(ctx, fe, o, deadline);
    worker.join();
  }
  broker.join();
  return results;
}

std::vector<RttResult> RunRttProcesses(const Options& o, const std::string& transport) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(o.timeout_s));
  std::vector<Child> children;
  std::vector<RttResult> results;
  std::optional<Child> broker = Spawn([&](const Report& r) {
    zmq::context_t ctx;
    Broker(ctx, transport, deadline, r);
  });
  std::optional<std::string> line;
  if (broker) {
    children.push_back(*broker);
    line = ReadLine(broker->fd, deadline);
  }
  if (line && line->find(' ') != std::string::npos) {
    const std::string fe = line->substr(0, line->find(' ')), be = line->substr(line->find(' ') + 1);
    std::optional<Child> worker = Spawn([&](const Report&) {
      zmq::context_t ctx;
      Worker(ctx, be, deadline);
    });
    if (worker) {
      children.push_back(*worker);
      zmq::context_t ctx;  // created after the forks
      results = RunClient(ctx, fe, o, deadline);
    }
  }
  if (Reap(children, deadline + kGrace) != 0) {
    for (RttResult& r : results) r.ok = false;
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Report.

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct ChainSummary {
  std::string transport, isolation;
  std::vector<ChainRun> runs;
  double median = 0, min = 0, max = 0;
  bool ok = true;
};

ChainSummary Summarise(std::string transport, std::string isolation, std::vector<ChainRun> runs) {
  ChainSummary s{std::move(transport), std::move(isolation), std::move(runs)};
  std::vector<double> rates;
  for (const ChainRun& r : s.runs) {
    rates.push_back(r.msgs_per_s);
    s.ok = s.ok && r.ok;
  }
  std::sort(rates.begin(), rates.end());
  if (!rates.empty()) {
    s.min = rates.front();
    s.max = rates.back();
    s.median = rates.size() % 2 ? rates[rates.size() / 2]
                                : 0.5 * (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]);
  }
  return s;
}

nlohmann::json ToJson(const RttResult& r) {
  nlohmann::json j{{"mode", r.mode},
                   {"requests", r.requests},
                   {"replies", r.replies},
                   {"seconds", r.seconds},
                   {"replies_per_s", r.replies_per_s},
                   {"window", r.window},
                   {"ok", r.ok}};
  if (r.mode == "fixed-rate") j["target_rate"] = r.target_rate;
  j["latency_us"] = {{"min", r.hist.Min() / 1e3},
                     {"p50", r.hist.Percentile(50) / 1e3},
                     {"p90", r.hist.Percentile(90) / 1e3},
                     {"p99", r.hist.Percentile(99) / 1e3},
                     {"p99_9", r.hist.Percentile(99.9) / 1e3},
                     {"max", r.hist.Max() / 1e3},
                     {"mean", r.hist.Mean() / 1e3}};
  j["latency_from"] = r.mode == "fixed-rate" ? "scheduled send time" : "send time";
  if (r.mode == "fixed-rate") {
    j["send_lateness_us"] = {{"p50", r.lateness.Percentile(50) / 1e3},
                             {"p99", r.lateness.Percentile(99) / 1e3},
                             {"max", r.lateness.Max() / 1e3}};
  }
  return j;
}

std::string Si(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%.2f M", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof(buf), "%.1f k", v / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  }
  return buf;
}

int Main(const Options& o) {
  auto wants = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  std::vector<ChainSummary> chains;
  std::vector<std::pair<std::string, std::vector<RttResult>>> rtts;
  for (const std::string& transport : o.transports) {
    const bool threads = Threads(o, transport);
    const std::string isolation = threads ? "threads" : "processes";
    if (wants(o.tests, "chain")) {
      std::vector<ChainRun> runs;
      for (int i = 0; i < o.repeat; ++i) {
        runs.push_back(threads ? RunChainThreads(o, transport) : RunChainProcesses(o, transport));
      }
      chains.push_back(Summarise(transport, isolation, std::move(runs)));
    }
    if (wants(o.tests, "rtt")) {
      rtts.emplace_back(transport + "/" + isolation,
                        threads ? RunRttThreads(o, transport) : RunRttProcesses(o, transport));
    }
  }

  bool ok = true;
  for (const ChainSummary& c : chains) ok = ok && c.ok;
  for (const auto& [name, results] : rtts) {
    ok = ok && !results.empty();
    for (const RttResult& r : results) ok = ok && r.ok;
  }
  int major = 0, minor = 0, patch = 0;
  zmq::version(&major, &minor, &patch);
  const std::string zmq_version =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);

  if (o.json) {
    nlohmann::json j;
    j["machine"] = {{"nproc", std::thread::hardware_concurrency()},
                    {"cpu", CpuModel()},
                    {"libzmq", zmq_version},
                    {"date_utc", UtcNow()}};
    j["params"] = {{"stages", o.stages},       {"hops", o.stages - 1},
                   {"size", o.size},           {"messages", o.messages},
                   {"repeat", o.repeat},       {"pingpong", o.pingpong},
                   {"rate", o.rate},           {"rate_seconds", o.rate_seconds},
                   {"max_count", o.max_count}, {"window", o.window},
                   {"digits", o.digits}};
    j["chain"] = nlohmann::json::array();
    for (const ChainSummary& c : chains) {
      nlohmann::json runs = nlohmann::json::array();
      for (const ChainRun& r : c.runs) {
        runs.push_back({{"received", r.received},
                        {"seconds", r.seconds},
                        {"msgs_per_s", r.msgs_per_s},
                        {"ok", r.ok}});
      }
      j["chain"].push_back({{"transport", c.transport},
                            {"isolation", c.isolation},
                            {"msgs_per_s_median", c.median},
                            {"msgs_per_s_min", c.min},
                            {"msgs_per_s_max", c.max},
                            {"mb_per_s_median", c.median * static_cast<double>(o.size) / 1e6},
                            {"ok", c.ok},
                            {"runs", runs}});
    }
    j["rtt"] = nlohmann::json::array();
    for (const auto& [name, results] : rtts) {
      for (const RttResult& r : results) {
        nlohmann::json e = ToJson(r);
        e["transport"] = name.substr(0, name.find('/'));
        e["isolation"] = name.substr(name.find('/') + 1);
        j["rtt"].push_back(e);
      }
    }
    j["ok"] = ok;
    std::printf("%s\n", j.dump(2).c_str());
    return ok ? 0 : 1;
  }

  std::printf("ZeroMQ raw baselines: libzmq %s, %u CPUs (%s), %s\n", zmq_version.c_str(),
              std::thread::hardware_concurrency(), CpuModel().c_str(), UtcNow().c_str());
  if (!chains.empty()) {
    std::printf(
        "\n(a) PUSH/PULL chain: %d stages (%d hops), %zu-byte messages, %llu messages, "
        "%d runs; rate at the sink, first to last message\n",
        o.stages, o.stages - 1, o.size, static_cast<unsigned long long>(o.messages), o.repeat);
    std::printf("  %-9s %-10s %14s %24s %10s  %s\n", "transport", "isolation", "msgs/s median",
                "[min - max]", "MB/s", "ok");
    for (const ChainSummary& c : chains) {
      const std::string range = "[" + Si(c.min) + " - " + Si(c.max) + "]";
      std::printf("  %-9s %-10s %14s %24s %10.0f  %s\n", c.transport.c_str(), c.isolation.c_str(),
                  Si(c.median).c_str(), range.c_str(), c.median * static_cast<double>(o.size) / 1e6,
                  c.ok ? "yes" : "NO");
    }
  }
  if (!rtts.empty()) {
    std::printf(
        "\n(b) round trip: DEALER -> ROUTER/DEALER broker -> REP worker, %zu bytes; "
        "latency in us\n",
        std::max(o.size, kHeaderBytes));
    std::printf("  %-18s %-22s %10s %10s %8s %8s %8s %8s %8s %8s  %s\n", "transport", "mode",
                "replies", "replies/s", "p50", "p90", "p99", "p99.9", "max", "mean", "ok");
    for (const auto& [name, results] : rtts) {
      if (results.empty()) std::printf("  %-18s (did not start)\n", name.c_str());
      for (const RttResult& r : results) {
        std::string mode = r.mode;
        if (r.mode == "fixed-rate") mode += " " + Si(r.target_rate) + "/s";
        if (r.mode == "max-throughput") mode += " w" + std::to_string(r.window);
        std::printf("  %-18s %-22s %10llu %10s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f  %s\n",
                    name.c_str(), mode.c_str(), static_cast<unsigned long long>(r.replies),
                    Si(r.replies_per_s).c_str(), r.hist.Percentile(50) / 1e3,
                    r.hist.Percentile(90) / 1e3, r.hist.Percentile(99) / 1e3,
                    r.hist.Percentile(99.9) / 1e3, r.hist.Max() / 1e3, r.hist.Mean() / 1e3,
                    r.ok ? "yes" : "NO");
      }
    }
    std::printf("  (fixed-rate latency counts from each request's scheduled send time)\n");
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace messplus::bench

int main(int argc, char** argv) {
  messplus::bench::Options o;
  CLI::App app{
      "Raw ZeroMQ ceilings on this machine: a PUSH/PULL chain and a DEALER-ROUTER/"
      "DEALER-REP round trip, with no messplus code in the path"};
  app.add_option("--test", o.tests, "chain and/or rtt")
      ->check(CLI::IsMember({"chain", "rtt"}))
      ->capture_default_str();
  app.add_option("--transport", o.transports, "inproc (threads), ipc, tcp (processes)")
      ->check(CLI::IsMember({"inproc", "ipc", "tcp"}))
      ->capture_default_str();
  app.add_option("--isolation", o.isolation,
                 "auto: threads for inproc, processes for ipc/tcp; thread: threads for all")
      ->check(CLI::IsMember({"auto", "thread"}))
      ->capture_default_str();
  app.add_option("--stages", o.stages, "chain stages including source and sink (hops = stages-1)")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  app.add_option("--size", o.size, "message size in bytes (round trips use at least 16)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--messages", o.messages, "messages per chain run")
      ->check(CLI::Range(uint64_t{2}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--repeat", o.repeat, "chain runs per transport (median reported)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "round trips before measuring")->capture_default_str();
  app.add_option("--pingpong", o.pingpong, "ping-pong round trips")->capture_default_str();
  app.add_option("--rate", o.rate, "fixed-rate requests per second")
      ->check(CLI::Range(1.0, 1e7))
      ->capture_default_str();
  app.add_option("--rate-seconds", o.rate_seconds, "duration of the fixed-rate run")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--max-count", o.max_count, "replies in the max-throughput run")
      ->capture_default_str();
  app.add_option("--window", o.window, "requests in flight in the max-throughput run")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--digits", o.digits, "histogram significant digits (1..4)")
      ->check(CLI::Range(1, 4))
      ->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "deadline of each chain run / round-trip test, s")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app.add_flag("--json", o.json, "print one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return messplus::bench::Main(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "messplus_bench_zmq: %s\n", e.what());
    return 2;
  }
}
