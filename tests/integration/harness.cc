#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "pipeline/metrics.h"

extern char** environ;

namespace messplus::itest {

std::string SourceDir() { return MESSPLUS_SOURCE_DIR; }
std::string MessplusBinary() { return std::string(MESSPLUS_BINARY_DIR) + "/tools/messplus"; }

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::optional<std::string> DataFile(const std::string& relative) {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("MESSPLUS_DATA_DIR")) roots.push_back(env);
  roots.push_back(SourceDir() + "/../shared/data");
  for (const std::string& root : roots) {
    const std::string path = root + "/" + relative;
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path;
  }
  return std::nullopt;
}

TempDir::TempDir() {
  char templ[] = "/tmp/messplus-it-XXXXXX";
  const char* made = mkdtemp(templ);
  path_ = made != nullptr ? made : "/tmp/messplus-it-fallback";
}

TempDir::~TempDir() {
  if (std::getenv("MESSPLUS_KEEP_TEST_DIR") != nullptr) return;  // for post-mortems
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<std::unique_ptr<Process>> Process::Start(const std::vector<std::string>& argv,
                                                const std::string& log_path,
                                                const std::string& stdout_path,
                                                const std::string& stdin_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(
      &actions, STDIN_FILENO, (stdin_path.empty() ? "/dev/null" : stdin_path.c_str()), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO,
                                   (stdout_path.empty() ? log_path : stdout_path).c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::IoError("spawn " + argv[0] + ": " + std::strerror(rc));
  std::string name = std::filesystem::path(argv[0]).filename().string();
  if (argv.size() > 1) name += " " + argv[1];
  return std::make_unique<Process>(PassKey(), pid, name, log_path);
}

Process::~Process() {
  if (!status_) Stop(SIGKILL, Millis(5000));
}

bool Process::Running() { return !Wait(Millis(0)).has_value(); }

std::optional<int> Process::Wait(Millis deadline) {
  if (status_) return status_;
  const auto end = std::chrono::steady_clock::now() + deadline;
  // Bounded by the deadline: one waitpid every 5 ms.
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      return status_;
    }
    if (r < 0 && errno != EINTR) {
      status_ = -1;
      return status_;
    }
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(Millis(5));
  }
}

int Process::Stop(int sig, Millis deadline) {
  if (status_) return *status_;
  kill(pid_, sig);
  if (std::optional<int> s = Wait(deadline)) return *s;
  kill(pid_, SIGKILL);
  return Wait(Millis(5000)).value_or(-SIGKILL);
}

namespace {
// A socket bound to an ephemeral port of 127.0.0.1, closed when it goes out of scope.
class BoundPort {
 public:
  BoundPort() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      socklen_t len = sizeof(addr);
      if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port_ = ntohs(addr.sin_port);
      }
    }
  }
  ~BoundPort() {
    if (fd_ >= 0) close(fd_);
  }
  BoundPort(const BoundPort&) = delete;
  BoundPort& operator=(const BoundPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};
}  // namespace

int FreePort() { return BoundPort().port(); }

std::vector<int> FreePorts(size_t n) {
  const std::vector<BoundPort> held(n);  // all bound at once, closed on return
  std::vector<int> ports;
  for (const BoundPort& b : held) ports.push_back(b.port());
  return ports;
}

std::optional<std::string> HttpGet(int port, const std::string& path, Millis timeout) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const auto end = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<Millis>(end - std::chrono::steady_clock::now()).count()));
  };
  std::optional<std::string> result;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return std::nullopt;
  }
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, left()) == 1) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (err == 0 && send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                        static_cast<ssize_t>(request.size())) {
      std::string response;
      char buf[8192];
      // Bounded by the deadline.
      while (left() > 0) {
        pollfd r{fd, POLLIN, 0};
        if (poll(&r, 1, left()) != 1) break;
        const ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          if (n == 0) result = response;
          break;
        }
        response.append(buf, static_cast<size_t>(n));
      }
      if (result) {
        const size_t body = result->find("\r\n\r\n");
        result = body == std::string::npos ? std::string() : result->substr(body + 4);
      }
    }
  }
  close(fd);
  return result;
}

std::optional<double> Scrape(int port, const std::string& name,
                             const std::map<std::string, std::string>& labels) {
  std::optional<std::string> text = HttpGet(port, "/metrics", Millis(2000));
  if (!text) return std::nullopt;
  prometheus::Labels l(labels.begin(), labels.end());
  return pipeline::ParseMetric(*text, name, l);
}

bool WaitUntil(const std::function<bool()>& ready, Millis timeout, Millis step) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(step);
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<nlohmann::json> RunJson(const std::vector<std::string>& args, const std::string& dir,
                               const std::string& tag, Millis deadline) {
  std::vector<std::string> argv = {MessplusBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out = dir + "/" + tag + ".json";
  const std::string log = dir + "/" + tag + ".log";
  std::filesystem::remove(out);
  Result<std::unique_ptr<Process>> p = Process::Start(argv, log, out);
  if (!p.ok()) return p.status();
  std::optional<int> code = (*p)->Wait(deadline);
  if (!code) {
    (*p)->Stop(SIGKILL, Millis(2000));
    return Status::Unavailable(tag + " did not finish within " + std::to_string(deadline.count()) +
                               " ms\n" + ReadFile(log));
  }
  try {
    nlohmann::json j = nlohmann::json::parse(ReadFile(out));
    j["exit_code"] = *code;
    return j;
  } catch (const std::exception& e) {
    return Status::Internal(tag + " (exit " + std::to_string(*code) + ") printed no JSON: " +
                            e.what() + "\n" + ReadFile(log).substr(0, 4000));
  }
}

Result<nlohmann::json> RunSim(const std::string& data, double alpha,
                              const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> a = {"sim",   "--data", data, "--alpha", fmt::format("{}", alpha),
                                "--json"};
  a.insert(a.end(), args.begin(), args.end());
  return RunJson(a, dir, "sim", Millis(120000));
}

// ---- ProcessPipeline ------------------------------------------------------------------------

namespace {
const char* const kEndpointNames[] = {"frontend", "requests", "features", "decisions", "workers",
                                      "replies",  "feedback", "updates",  "snapshots"};
}  // namespace

ProcessPipeline::ProcessPipeline(const TempDir& dir, PipelineOptions options)
    : dir_(dir.path()), options_(std::move(options)) {
  // Every TCP port of the pipeline at once, so that no two of them coincide.
  const size_t replicas = static_cast<size_t>(std::max(1, options_.route_replicas));
  const std::vector<int> ports = FreePorts(std::size(kEndpointNames) + 5 + replicas - 1);
  size_t next = 0;
  for (const char* name : kEndpointNames) {
    const int port = ports[next++];
    endpoints_[name] = options_.transport == "tcp" ? fmt::format("tcp://127.0.0.1:{}", port)
                                                   : fmt::format("ipc://{}/{}", dir_, name);
  }
  for (const char* stage : {"ingest", "embed", "route", "dispatch", "feedback"}) {
    metrics_ports_[stage] = ports[next++];
  }
  for (size_t r = 1; r < replicas; ++r) metrics_ports_[fmt::format("route-{}", r)] = ports[next++];

  std::string yaml = "models:\n";
  for (const std::string& m : options_.models) yaml += "  - name: " + m + "\n";
  yaml += fmt::format("tenants:\n  - name: default\n    alpha: {}\n", options_.alpha);
  yaml += "log_level: info\nendpoints:\n";
  for (const auto& [name, e] : endpoints_) yaml += "  " + name + ": " + e + "\n";
  yaml += "runtime: {drain_timeout_ms: 2000, linger_ms: 200}\n";
  auto more = [&](const std::string& stage) {
    auto it = options_.stage_yaml.find(stage);
    return it == options_.stage_yaml.end() ? std::string() : ", " + it->second;
  };
  for (const char* stage : {"ingest", "embed", "route", "dispatch"}) {
    yaml += fmt::format("{}: {{metrics_port: {}{}}}\n", stage, metrics_ports_[stage], more(stage));
  }
  yaml += fmt::format("feedback: {{metrics_port: {}, checkpoint_path: \"{}\"{}}}\n",
                      metrics_ports_["feedback"], options_.checkpoint, more("feedback"));
  yaml += options_.extra_yaml;
  config_path_ = dir_ + "/messplus.yaml";
  std::ofstream(config_path_) << yaml;
}

ProcessPipeline::~ProcessPipeline() { StopAll(); }

int ProcessPipeline::metrics_port(const std::string& stage, int replica) const {
  const std::string key = replica == 0 ? stage : fmt::format("{}-{}", stage, replica);
  auto it = metrics_ports_.find(key);
  return it == metrics_ports_.end() ? 0 : it->second;
}

Status ProcessPipeline::StartStage(const std::string& stage, int replica) {
  const std::string key = replica == 0 ? stage : fmt::format("{}-{}", stage, replica);
  std::vector<std::string> argv = {MessplusBinary(), stage, "--config", config_path_};
  if (replica > 0) {
    argv.insert(argv.end(), {"--replica", std::to_string(replica), "--metrics-port",
                             std::to_string(metrics_port(stage, replica))});
  }
  Result<std::unique_ptr<Process>> p = Process::Start(argv, dir_ + "/" + key + ".log");
  if (!p.ok()) return p.status();
  stages_[key] = std::move(*p);
  return Status::Ok();
}

Status ProcessPipeline::StartStages() {
  MESSPLUS_RETURN_IF_ERROR(StartStage("feedback"));
  for (int r = 0; r < options_.route_replicas; ++r)
    MESSPLUS_RETURN_IF_ERROR(StartStage("route", r));
  MESSPLUS_RETURN_IF_ERROR(StartStage("dispatch"));
  MESSPLUS_RETURN_IF_ERROR(StartStage("embed"));
  return StartStage("ingest");
}

Process* ProcessPipeline::stage_process(const std::string& stage, int replica) {
  const std::string key = replica == 0 ? stage : fmt::format("{}-{}", stage, replica);
  auto it = stages_.find(key);
  return it == stages_.end() ? nullptr : it->second.get();
}

int ProcessPipeline::StopStage(const std::string& stage, int replica, Millis deadline) {
  Process* p = stage_process(stage, replica);
  return p == nullptr ? -1 : p->Stop(SIGTERM, deadline);
}

Result<size_t> ProcessPipeline::StartWorker(const std::string& model, const std::string& data,
                                            double latency_scale, const std::string& name) {
  const std::string n = name.empty() ? fmt::format("w{}", workers_.size()) : name;
  std::vector<std::string> argv = {MessplusBinary(),
                                   "worker",
                                   data.empty() ? "echo" : "replay",
                                   "--config",
                                   config_path_,
                                   "--model",
                                   model,
                                   "--name",
                                   n};
  if (!data.empty()) {
    argv.insert(argv.end(), {"--data", data, "--latency-scale", fmt::format("{}", latency_scale)});
  }
  Result<std::unique_ptr<Process>> p = Process::Start(argv, dir_ + "/worker-" + n + ".log");
  if (!p.ok()) return p.status();
  workers_.push_back(std::move(*p));
  return workers_.size() - 1;
}

Result<size_t> ProcessPipeline::StartPythonWorker(const std::string& model, const std::string& data,
                                                  const std::string& name) {
  std::vector<std::string> argv = {"/usr/bin/python3", SourceDir() + "/examples/python_worker.py",
                                   "--endpoint",       endpoints_.at("workers"),
                                   "--model",          model,
                                   "--name",           name};
  if (!data.empty()) argv.insert(argv.end(), {"--data", data});
  Result<std::unique_ptr<Process>> p =
      Process::Start(argv, dir_ + "/worker-" + name + ".log", dir_ + "/worker-" + name + ".out");
  if (!p.ok()) return p.status();
  workers_.push_back(std::move(*p));
  return workers_.size() - 1;
}

bool ProcessPipeline::WaitReady(int workers_per_model, Millis timeout) {
  return WaitUntil(
      [&] {
        for (int r = 0; r < options_.route_replicas; ++r) {
          if (Scrape(metrics_port("route", r), "messplus_route_synced").value_or(0) != 1.0) {
            return false;
          }
        }
        for (const std::string& m : options_.models) {
          if (Scrape(metrics_port("dispatch"), "messplus_dispatch_workers", {{"model", m}})
                  .value_or(0) < workers_per_model) {
            return false;
          }
        }
        return true;
      },
      timeout, Millis(50));
}

Result<nlohmann::json> ProcessPipeline::Replay(const std::string& data,
                                               const std::vector<std::string>& args,
                                               Millis deadline) {
  std::vector<std::string> a = {"replay", "--config", config_path_, "--data", data, "--json"};
  a.insert(a.end(), args.begin(), args.end());
  return RunJson(a, dir_, "replay", deadline);
}

Result<std::unique_ptr<Process>> ProcessPipeline::StartReplay(const std::string& data,
                                                              const std::vector<std::string>& args,
                                                              const std::string& out_path) {
  std::vector<std::string> argv = {MessplusBinary(), "replay", "--config", config_path_,
                                   "--data",         data,     "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Process::Start(argv, out_path + ".log", out_path);
}

void ProcessPipeline::StopAll() {
  // Signal everything first and then reap: each stage's metrics server takes about a second
  // to close, and the stages do not need each other to drain.
  for (auto& w : workers_) {
    if (w->Running()) kill(w->pid(), SIGTERM);
  }
  for (auto& [key, p] : stages_) {
    if (p->Running()) kill(p->pid(), SIGTERM);
  }
  for (auto& w : workers_) w->Stop(SIGTERM, Millis(5000));
  for (auto& [key, p] : stages_) p->Stop(SIGTERM, Millis(10000));
}

std::string ProcessPipeline::Logs() const {
  std::string out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.path().extension() != ".log") continue;
    std::string text = ReadFile(entry.path().string());
    if (text.size() > 1500) text = "..." + text.substr(text.size() - 1500);
    out += "---- " + entry.path().filename().string() + "\n" + text;
  }
  return out;
}

}  // namespace messplus::itest
