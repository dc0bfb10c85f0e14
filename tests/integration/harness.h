// Integration-test harness: processes ended by pid with deadlines, temp directories, free
// loopback ports, Prometheus scrapes, and a five-stage pipeline of `messplus` processes.
//
// Every wait is bounded; every process is ended (SIGTERM, then SIGKILL after a deadline) and
// reaped by pid when its owner goes out of scope. Only ipc:// in a temp dir and 127.0.0.1.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "router/status.h"

namespace messplus::itest {

using Millis = std::chrono::milliseconds;

// The data file `relative` under $MESSPLUS_DATA_DIR or <source>/../shared/data; nullopt when
// it is not there.
std::optional<std::string> DataFile(const std::string& relative);

// In a test body: sets `var` to the data file, or ends the test (a failure when $CI is
// "true", else a skip).
#define MESSPLUS_REQUIRE_DATA(var, relative)                                          \
  std::string var;                                                                    \
  if (auto found_ = ::messplus::itest::DataFile(relative)) {                          \
    var = *found_;                                                                    \
  } else if (::messplus::itest::InCi()) {                                             \
    GTEST_FAIL() << "data file " << relative                                          \
                 << " not found under $MESSPLUS_DATA_DIR or <source>/../shared/data"; \
  } else {                                                                            \
    GTEST_SKIP() << "data file " << relative << " not found (set MESSPLUS_DATA_DIR)"; \
  }

bool InCi();
std::string MessplusBinary();
std::string SourceDir();

class TempDir {
 public:
  TempDir();  // a fresh directory under /tmp (short: ipc:// paths are limited to ~100 bytes)
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Process {
 public:
  // Starts argv[0] with stdout to `stdout_path` (or the log), stderr to `log_path` and stdin
  // from `stdin_path` (or /dev/null).
  static Result<std::unique_ptr<Process>> Start(const std::vector<std::string>& argv,
                                                const std::string& log_path,
                                                const std::string& stdout_path = "",
                                                const std::string& stdin_path = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  bool Running();
  // Waits up to `deadline` for the process to exit on its own: its exit code (negative:
  // killed by that signal), or nullopt when it is still running.
  std::optional<int> Wait(Millis deadline);
  // Sends `sig`, waits up to `deadline`, then SIGKILL; returns the exit status as Wait does.
  int Stop(int sig, Millis deadline);
  const std::string& log_path() const { return log_path_; }

  class PassKey {
    friend class Process;
    PassKey() = default;
  };
  Process(PassKey, pid_t pid, std::string name, std::string log_path)
      : pid_(pid), name_(std::move(name)), log_path_(std::move(log_path)) {}

 private:
  pid_t pid_;
  std::string name_;
  std::string log_path_;
  std::optional<int> status_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// n distinct such ports: each is held bound until all are chosen, so the kernel cannot hand
// the same one out twice (as n calls of FreePort may).
std::vector<int> FreePorts(size_t n);
// GET http://127.0.0.1:<port><path>; nullopt on any failure or after the timeout.
std::optional<std::string> HttpGet(int port, const std::string& path, Millis timeout);
// One metric from a stage's Prometheus endpoint.
std::optional<double> Scrape(int port, const std::string& name,
                             const std::map<std::string, std::string>& labels = {});
// Polls `ready` every `step` until it is true or `timeout` passed.
bool WaitUntil(const std::function<bool()>& ready, Millis timeout, Millis step = Millis(20));
std::string ReadFile(const std::string& path);

// Runs `messplus args...` to completion (at most `deadline`) and parses its stdout as JSON.
Result<nlohmann::json> RunJson(const std::vector<std::string>& args, const std::string& dir,
                               const std::string& tag, Millis deadline);

struct PipelineOptions {
  std::string transport = "ipc";  // ipc or tcp
  int route_replicas = 1;
  std::string extra_yaml;  // appended to the generated config
  std::vector<std::string> models = {"llama-3.2-1b-instruct", "llama-3.1-8b-instruct-bnb4bit",
                                     "llama-3.3-70b-instruct-bnb4bit"};
  double alpha = 0.5;
  std::string checkpoint;  // collector checkpoint file ("" = none)
  // More settings of one stage's section, e.g. {"dispatch", "call_timeout_ms: 1500"}.
  std::map<std::string, std::string> stage_yaml;
};

// The five stages as processes, on endpoints of their own, with metrics ports.
class ProcessPipeline {
 public:
  ProcessPipeline(const TempDir& dir, PipelineOptions options);
  ~ProcessPipeline();

  const std::string& config_path() const { return config_path_; }
  int metrics_port(const std::string& stage, int replica = 0) const;
  const std::string& endpoint(const std::string& name) const { return endpoints_.at(name); }

  Status StartStage(const std::string& stage, int replica = 0);
  Status StartStages();
  // Stops (SIGTERM, deadline) one stage; its exit code.
  int StopStage(const std::string& stage, int replica = 0, Millis deadline = Millis(10000));
  Process* stage_process(const std::string& stage, int replica = 0);

  // A `messplus worker replay` (or echo when data is empty) for one model; its index.
  Result<size_t> StartWorker(const std::string& model, const std::string& data,
                             double latency_scale = 0.0, const std::string& name = "");
  Result<size_t> StartPythonWorker(const std::string& model, const std::string& data,
                                   const std::string& name);
  Process& worker(size_t index) { return *workers_[index]; }

  // Every route replica synced and `workers_per_model` live workers of each model.
  bool WaitReady(int workers_per_model, Millis timeout);

  // `messplus replay --config ... --data ... --json <args>`.
  Result<nlohmann::json> Replay(const std::string& data, const std::vector<std::string>& args,
                                Millis deadline = Millis(180000));
  // Starts a replay in the background (stdout to a file); ReplayResult() reads it.
  Result<std::unique_ptr<Process>> StartReplay(const std::string& data,
                                               const std::vector<std::string>& args,
                                               const std::string& out_path);

  // SIGTERM to every process (workers first), each waited for by pid.
  void StopAll();
  const std::string& dir() const { return dir_; }
  std::string Logs() const;  // the tail of every process log, for failure messages

 private:
  std::string dir_;
  PipelineOptions options_;
  std::string config_path_;
  std::map<std::string, std::string> endpoints_;
  std::map<std::string, int> metrics_ports_;  // "route", "route-1", ...
  std::map<std::string, std::unique_ptr<Process>> stages_;
  std::vector<std::unique_ptr<Process>> workers_;
};

// The sim's JSON for the same data and settings (`messplus sim --json`).
Result<nlohmann::json> RunSim(const std::string& data, double alpha,
                              const std::vector<std::string>& args, const std::string& dir);

}  // namespace messplus::itest
