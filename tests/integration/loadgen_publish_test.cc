// `messplus loadgen` and `messplus publish` against real pipelines: `messplus up
// --echo-workers` as a separate process with its frontend on ipc:// (in a temp dir) or
// tcp://127.0.0.1, the five stages as processes over ipc:// with `messplus worker echo`, the
// loadgen's own --embedded pipeline, and endpoints where nothing listens.
//
// No data files: prompts are generated and echo workers answer (text back, cost 1). Every
// process is started and ended by pid with a deadline (tests/integration/harness.h), so a
// hung client fails its test instead of hanging it; nothing here asserts on elapsed time.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace messplus::itest {
namespace {

const std::vector<std::string> kZoo = {"llama-3.2-1b-instruct", "llama-3.1-8b-instruct-bnb4bit",
                                       "llama-3.3-70b-instruct-bnb4bit"};
constexpr Millis kRunDeadline(60000);

// ---- helpers ------------------------------------------------------------------------------

// `messplus up --echo-workers 1` as a process, with config/embedded.yaml's stages (inproc://
// between them) and the frontend on `frontend`, so clients in other processes reach it.
class UpProcess {
 public:
  UpProcess(const TempDir& dir, std::string frontend, const std::string& extra_yaml = "")
      : dir_(dir.path()), frontend_(std::move(frontend)) {
    std::string yaml = ReadFile(SourceDir() + "/config/embedded.yaml");
    const std::string from = "frontend: inproc://frontend";
    const size_t at = yaml.find(from);
    EXPECT_NE(at, std::string::npos) << "config/embedded.yaml has no inproc frontend";
    if (at != std::string::npos) yaml.replace(at, from.size(), "frontend: " + frontend_);
    config_ = dir_ + "/up.yaml";
    std::ofstream(config_) << yaml << extra_yaml;
  }

  // Starts the process and waits (bounded) for its "ready" line on stderr.
  void Start() {
    log_ = dir_ + "/up.log";
    Result<std::unique_ptr<Process>> p =
        Process::Start({MessplusBinary(), "up", "--config", config_, "--echo-workers", "1"}, log_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    process_ = std::move(*p);
    const bool ready = WaitUntil(
        [&] {
          return ReadFile(log_).find("messplus up: ready") != std::string::npos ||
                 !process_->Running();
        },
        Millis(30000), Millis(20));
    ASSERT_TRUE(ready && process_->Running()) << "messplus up did not get ready\n"
                                              << ReadFile(log_);
    EXPECT_NE(ReadFile(log_).find("frontend " + frontend_), std::string::npos) << ReadFile(log_);
  }

  // SIGTERM by pid; `messplus up` drains and exits 0.
  void Stop() {
    if (process_) {
      EXPECT_EQ(process_->Stop(SIGTERM, Millis(15000)), 0) << ReadFile(log_);
    }
  }

  ~UpProcess() {
    if (process_) process_->Stop(SIGTERM, Millis(15000));
  }

  const std::string& frontend() const { return frontend_; }
  const std::string& config() const { return config_; }
  std::string log() const { return ReadFile(log_); }

 private:
  std::string dir_;
  std::string frontend_;
  std::string config_;
  std::string log_;
  std::unique_ptr<Process> process_;
};

// What a finished `messplus` process left: its exit code, stdout and stderr.
struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::vector<nlohmann::json> lines;  // stdout's lines, each parsed as JSON
};

// Runs `messplus args...` with stdin from `stdin_path` ("" = /dev/null), at most `deadline`.
Outcome RunMessplus(const std::vector<std::string>& args, const std::string& dir,
                    const std::string& tag, Millis deadline = kRunDeadline,
                    const std::string& stdin_path = "") {
  std::vector<std::string> argv = {MessplusBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out = dir + "/" + tag + ".out";
  const std::string err = dir + "/" + tag + ".err";
  Outcome o;
  Result<std::unique_ptr<Process>> p = Process::Start(argv, err, out, stdin_path);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return o;
  const std::optional<int> code = (*p)->Wait(deadline);
  EXPECT_TRUE(code.has_value()) << tag << " did not finish within " << deadline.count() << " ms\n"
                                << ReadFile(err);
  o.exit_code = code ? *code : (*p)->Stop(SIGKILL, Millis(5000));
  o.out = ReadFile(out);
  o.err = ReadFile(err);
  std::istringstream lines(o.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << tag << ": stdout line is not JSON: " << line;
    if (!j.is_discarded()) o.lines.push_back(std::move(j));
  }
  return o;
}

// `messplus loadgen ... --json --no-progress`, parsed.
nlohmann::json Loadgen(const std::vector<std::string>& args, const std::string& dir,
                       const std::string& tag) {
  std::vector<std::string> a = {"loadgen", "--json", "--no-progress"};
  a.insert(a.end(), args.begin(), args.end());
  Result<nlohmann::json> r = RunJson(a, dir, tag, kRunDeadline);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : nlohmann::json::object();
}

uint64_t U(const nlohmann::json& j, const char* key) { return j.at(key).get<uint64_t>(); }

uint64_t SumValues(const nlohmann::json& object) {
  uint64_t n = 0;
  for (const auto& [k, v] : object.items()) n += v.get<uint64_t>();
  return n;
}

// The counting rules of tools/loadgen/report.h, whatever happened in the run.
void ExpectCountsAddUp(const nlohmann::json& r, uint64_t requests, uint64_t warmup_requests) {
  ASSERT_TRUE(r.contains("sent")) << r.dump();
  EXPECT_EQ(U(r, "sent"), requests) << r.dump(2);
  EXPECT_EQ(U(r, "sent"), U(r, "answered") + U(r, "errors_total")) << r.dump(2);
  EXPECT_EQ(SumValues(r.at("errors")), U(r, "errors_total")) << r.dump(2);
  const nlohmann::json& w = r.at("warmup");
  EXPECT_EQ(U(w, "sent"), warmup_requests) << r.dump(2);
  EXPECT_EQ(U(w, "sent"), U(w, "answered") + U(w, "errors_total")) << r.dump(2);
  const nlohmann::json& f = r.at("feedback");
  EXPECT_EQ(U(f, "sent"), U(f, "acked") + SumValues(f.at("refused")) + U(f, "unacked"))
      << r.dump(2);
}

// A run where the pipeline answered everything: no errors, a throughput, and percentiles in
// order.
void ExpectHealthy(const nlohmann::json& r) {
  ASSERT_TRUE(r.contains("latency_us")) << r.dump();
  EXPECT_EQ(r.at("exit_code").get<int>(), 0) << r.dump(2);
  EXPECT_EQ(U(r, "errors_total"), 0u) << r.dump(2);
  EXPECT_EQ(U(r.at("warmup"), "errors_total"), 0u) << r.dump(2);
  EXPECT_EQ(U(r, "answered"), U(r, "sent"));
  EXPECT_TRUE(r.at("ok").get<bool>()) << r.dump(2);
  EXPECT_GT(r.at("seconds").get<double>(), 0.0);
  EXPECT_GT(r.at("throughput_rps").get<double>(), 0.0) << r.dump(2);
  EXPECT_EQ(U(r, "stray_replies"), 0u);
  const nlohmann::json& l = r.at("latency_us");
  EXPECT_EQ(U(l, "count"), U(r, "answered"));  // every measured answer, no warm-up one
  const double chain[] = {l.at("min").get<double>(),   l.at("p50").get<double>(),
                          l.at("p90").get<double>(),   l.at("p99").get<double>(),
                          l.at("p99_9").get<double>(), l.at("max").get<double>()};
  EXPECT_GT(chain[0], 0.0) << l.dump();
  for (size_t i = 1; i < std::size(chain); ++i) {
    EXPECT_LE(chain[i - 1], chain[i]) << "latency percentiles out of order: " << l.dump();
  }
  EXPECT_GE(l.at("mean").get<double>(), chain[0]);
  EXPECT_LE(l.at("mean").get<double>(), chain[5]);
}

// Every feedback acknowledged "ok".
void ExpectFeedbackAcked(const nlohmann::json& r) {
  const nlohmann::json& f = r.at("feedback");
  EXPECT_GT(U(f, "sent"), 0u) << r.dump(2);
  EXPECT_EQ(U(f, "acked"), U(f, "sent")) << r.dump(2);
  EXPECT_EQ(U(f, "unacked"), 0u);
  EXPECT_TRUE(f.at("refused").empty()) << r.dump(2);
}

std::string IpcIn(const TempDir& dir, const std::string& name) {
  return "ipc://" + dir.path() + "/" + name;
}

std::string Write(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// ---- loadgen ------------------------------------------------------------------------------

TEST(Loadgen, ClosedLoopAgainstUpOverIpcWithFeedback) {
  TempDir dir;
  UpProcess up(dir, IpcIn(dir, "frontend"));
  ASSERT_NO_FATAL_FAILURE(up.Start());
  const nlohmann::json r =
      Loadgen({"--endpoint", up.frontend(), "--concurrency", "8", "--requests", "400", "--warmup",
               "40", "--feedback-rate", "0.5", "--prompt-length", "120", "--prompt-length-dist",
               "uniform", "--tenant", "default=1", "--seed", "3"},
              dir.path(), "closed");
  ExpectCountsAddUp(r, 400, 40);
  ExpectHealthy(r);
  ExpectFeedbackAcked(r);
  EXPECT_EQ(r.at("mode"), "closed");
  EXPECT_EQ(U(r, "concurrency"), 8u);
  EXPECT_EQ(r.at("endpoint"), up.frontend());
  EXPECT_EQ(U(r, "seed"), 3u);
  EXPECT_EQ(U(r.at("warmup"), "answered"), 40u);
  // Feedback goes for about half of the 440 answered requests (a seeded draw per request).
  EXPECT_GT(U(r.at("feedback"), "sent"), 100u);
  EXPECT_LT(U(r.at("feedback"), "sent"), 340u);
  EXPECT_EQ(r.at("prompts").at("source"), "generated (uniform, mean 120)");
  up.Stop();
}

TEST(Loadgen, ErrorRepliesAreCountedByTheirCode) {
  TempDir dir;
  UpProcess up(dir, IpcIn(dir, "frontend"));
  ASSERT_NO_FATAL_FAILURE(up.Start());
  // Half the requests name a tenant the pipeline does not have: ingest refuses them with an
  // unknown_tenant error reply, and the report counts them under that code.
  const nlohmann::json r =
      Loadgen({"--endpoint", up.frontend(), "--concurrency", "4", "--requests", "200", "--warmup",
               "20", "--tenant", "gold=1", "--tenant", "default=1", "--seed", "5"},
              dir.path(), "tenants");
  ExpectCountsAddUp(r, 200, 20);
  ASSERT_TRUE(r.at("errors").contains("unknown_tenant")) << r.dump(2);
  EXPECT_EQ(r.at("errors").size(), 1u) << r.dump(2);  // no other kind of error
  const uint64_t refused = r.at("errors").at("unknown_tenant").get<uint64_t>();
  // Binomial(200, 1/2): mean 100, sd 7.1; 6 sd either side.
  EXPECT_GT(refused, 57u);
  EXPECT_LT(refused, 143u);
  EXPECT_GT(U(r.at("warmup"), "errors_total"), 0u);
  EXPECT_LT(U(r.at("warmup"), "errors_total"), 20u);
  EXPECT_EQ(U(r.at("latency_us"), "count"), U(r, "answered"));
  EXPECT_FALSE(r.at("ok").get<bool>());
  EXPECT_EQ(r.at("exit_code").get<int>(), 1);
  up.Stop();
}

TEST(Loadgen, OpenLoopAgainstUpOverTcpLoopback) {
  TempDir dir;
  UpProcess up(dir, "tcp://127.0.0.1:" + std::to_string(FreePort()));
  ASSERT_NO_FATAL_FAILURE(up.Start());
  const nlohmann::json r = Loadgen({"--endpoint", up.frontend(), "--rate", "800", "--requests",
                                    "400", "--warmup", "25", "--prompt-length-dist", "exponential"},
                                   dir.path(), "open");
  ExpectCountsAddUp(r, 400, 25);
  ExpectHealthy(r);
  EXPECT_EQ(r.at("mode"), "open");
  EXPECT_EQ(r.at("target_rate").get<double>(), 800.0);
  EXPECT_EQ(U(r.at("feedback"), "sent"), 0u);  // --feedback-rate 0 (the default)
  // Open loop: the service time and the send lateness are recorded for every answer too.
  EXPECT_EQ(U(r.at("service_us"), "count"), U(r, "answered"));
  EXPECT_EQ(U(r.at("send_lateness_us"), "count"), U(r, "answered"));
  // The latency is charged from the scheduled send, so it is never below the service time.
  EXPECT_GE(r.at("latency_us").at("max").get<double>(),
            r.at("service_us").at("max").get<double>() - 1.0);
  up.Stop();
}

TEST(Loadgen, DurationBoundAgainstUpWithTheConfigsEndpoint) {
  TempDir dir;
  UpProcess up(dir, IpcIn(dir, "frontend"));
  ASSERT_NO_FATAL_FAILURE(up.Start());
  // --config gives the endpoint; --duration bounds the run instead of a count.
  const nlohmann::json r = Loadgen(
      {"--config", up.config(), "--concurrency", "4", "--duration", "0.5", "--warmup", "100ms"},
      dir.path(), "duration");
  ASSERT_TRUE(r.contains("sent")) << r.dump();
  ExpectCountsAddUp(r, U(r, "sent"), U(r.at("warmup"), "sent"));
  ExpectHealthy(r);
  EXPECT_GT(U(r, "sent"), 0u);
  EXPECT_GT(U(r.at("warmup"), "sent"), 0u);
  EXPECT_EQ(r.at("endpoint"), up.frontend());
  up.Stop();
}

TEST(Loadgen, FiveStageProcessesOverIpcWithEchoWorkers) {
  TempDir dir;
  ProcessPipeline p(dir, PipelineOptions());
  ASSERT_TRUE(p.StartStages().ok());
  for (const std::string& m : kZoo) ASSERT_TRUE(p.StartWorker(m, "").ok());
  ASSERT_TRUE(p.WaitReady(1, Millis(30000))) << p.Logs();
  ASSERT_EQ(p.endpoint("frontend").rfind("ipc://", 0), 0u);
  // WaitReady covers route and dispatch; ingest refuses requests as "overloaded" until embed
  // has connected to it, so wait (bounded) until a request goes through end to end.
  int probes = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        return RunMessplus({"publish", "--endpoint", p.endpoint("frontend"), "--timeout-ms", "5000",
                            "probe"},
                           dir.path(), "probe" + std::to_string(probes++), Millis(20000))
                   .exit_code == 0;
      },
      Millis(30000), Millis(100)))
      << p.Logs();
  const double decided_before =
      Scrape(p.metrics_port("route"), "messplus_requests_total").value_or(-1.0);
  EXPECT_GE(decided_before, 1.0);  // the probe that went through
  const nlohmann::json closed =
      Loadgen({"--config", p.config_path(), "--concurrency", "8", "--requests", "300", "--warmup",
               "20", "--feedback-rate", "0.3"},
              dir.path(), "closed");
  ExpectCountsAddUp(closed, 300, 20);
  ExpectHealthy(closed);
  ExpectFeedbackAcked(closed);
  const nlohmann::json open =
      Loadgen({"--endpoint", p.endpoint("frontend"), "--rate", "600", "--requests", "200"},
              dir.path(), "open");
  ExpectCountsAddUp(open, 200, 0);
  ExpectHealthy(open);
  // The route stage decided every request of both runs (warm-up included).
  EXPECT_EQ(
      Scrape(p.metrics_port("route"), "messplus_requests_total").value_or(0.0) - decided_before,
      520.0)
      << p.Logs();
}

TEST(Loadgen, NothingListeningEndsInClientTimeouts) {
  TempDir dir;
  for (const std::string& endpoint :
       {IpcIn(dir, "nobody"), "tcp://127.0.0.1:" + std::to_string(FreePort())}) {
    const nlohmann::json r = Loadgen({"--endpoint", endpoint, "--concurrency", "4", "--requests",
                                      "12", "--warmup", "2", "--timeout-ms", "300"},
                                     dir.path(), "nobody");
    ExpectCountsAddUp(r, 12, 2);
    EXPECT_EQ(U(r, "answered"), 0u) << r.dump(2);
    EXPECT_EQ(r.at("errors"), nlohmann::json({{"client_timeout", 12}})) << r.dump(2);
    EXPECT_EQ(U(r.at("warmup"), "errors_total"), 2u);
    EXPECT_EQ(r.at("throughput_rps").get<double>(), 0.0);
    EXPECT_EQ(U(r.at("latency_us"), "count"), 0u);
    EXPECT_FALSE(r.at("ok").get<bool>());
    EXPECT_EQ(r.at("exit_code").get<int>(), 1) << endpoint;
  }
}

TEST(Loadgen, DeadlineEndsARunWhoseRequestsGetNoAnswer) {
  TempDir dir;
  // The request timeout is far beyond the run's absolute deadline: the requests still out
  // when it passes count as "deadline" errors, and the run ends (bounded) with the sums exact.
  const nlohmann::json r =
      Loadgen({"--endpoint", IpcIn(dir, "nobody"), "--concurrency", "4", "--requests", "100",
               "--timeout-ms", "600000", "--deadline-s", "0.5"},
              dir.path(), "deadline");
  ASSERT_TRUE(r.contains("sent")) << r.dump();
  EXPECT_EQ(U(r, "sent"), 4u) << r.dump(2);  // the closed loop's window, never answered
  ExpectCountsAddUp(r, 4, 0);
  EXPECT_EQ(r.at("errors"), nlohmann::json({{"deadline", 4}})) << r.dump(2);
  EXPECT_EQ(r.at("exit_code").get<int>(), 1);
}

// A CSV in the ../shared/data format for the config's zoo, written by the test: prompts come
// from it, and feedback reports its recorded scores.
std::string WriteZooCsv(const TempDir& dir, size_t rows, double* mean_chars) {
  std::string csv = "id,benchmark,prompt";
  for (const std::string& m : kZoo) csv += ",score__" + m + ",energy_j__" + m;
  csv += "\n";
  double chars = 0.0;
  for (size_t i = 0; i < rows; ++i) {
    // fmt::format, not "a" + to_string(i): g++ 12 -O3 reports a false -Wrestrict there.
    const std::string prompt = fmt::format("question number {} about physics", i);
    chars += static_cast<double>(prompt.size());
    csv += fmt::format("r{},arc,{}", i, prompt);
    for (size_t m = 0; m < kZoo.size(); ++m)
      csv += fmt::format(",{},{}", (i + m) % 2, 10 * (m + 1));
    csv += "\n";
  }
  *mean_chars = chars / static_cast<double>(rows);
  return Write(dir, "zoo.csv", csv);
}

TEST(Loadgen, DataFilePromptsAndRecordedFeedbackThroughTheEmbeddedPipeline) {
  TempDir dir;
  double mean_chars = 0.0;
  const std::string data = WriteZooCsv(dir, 25, &mean_chars);
  // 60 measured requests cycle through the 25 rows; every answer gets feedback.
  const nlohmann::json r =
      Loadgen({"--config", SourceDir() + "/config/embedded.yaml", "--embedded", "--concurrency",
               "4", "--requests", "60", "--warmup", "5", "--data", data, "--feedback-rate", "1"},
              dir.path(), "data");
  ExpectCountsAddUp(r, 60, 5);
  ExpectHealthy(r);
  ExpectFeedbackAcked(r);
  EXPECT_EQ(U(r.at("feedback"), "sent"), 65u);  // every answer, warm-up included
  EXPECT_EQ(r.at("prompts").at("source"), data);
  EXPECT_NEAR(r.at("prompts").at("mean_chars").get<double>(), mean_chars, 1e-9);
}

TEST(Loadgen, EmbeddedPipelineCountsAddUp) {
  TempDir dir;
  const nlohmann::json r = Loadgen(
      {"--config", SourceDir() + "/config/embedded.yaml", "--embedded", "--echo-workers", "1",
       "--concurrency", "16", "--requests", "500", "--warmup", "50", "--feedback-rate", "0.2"},
      dir.path(), "embedded");
  ExpectCountsAddUp(r, 500, 50);
  ExpectHealthy(r);
  ExpectFeedbackAcked(r);
  EXPECT_TRUE(r.at("embedded").get<bool>());
  EXPECT_EQ(r.at("endpoint"), "inproc://frontend");
}

TEST(Loadgen, BadArgumentsAreClearErrors) {
  TempDir dir;
  const std::string broken = Write(dir, "broken.csv",
                                   "id,benchmark,prompt,score__a,energy_j__a\n"
                                   "q0,arc,hello,1,1.0\n"
                                   "q1,arc,world,not-a-number,1.0\n");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string ep = IpcIn(dir, "nobody");
  const std::vector<Case> cases = {
      {{"--endpoint", ep, "--concurrency", "1", "--requests", "1", "--data", broken},
       broken + ":3"},
      {{"--endpoint", ep, "--concurrency", "1", "--requests", "1", "--data",
        dir.path() + "/no.csv"},
       "no.csv"},
      {{"--endpoint", ep, "--concurrency", "1", "--requests", "1", "--warmup", "2m"},
       "--warmup '2m'"},
      {{"--endpoint", ep, "--concurrency", "1", "--requests", "1", "--tenant", "gold"},
       "tenant 'gold'"},
      {{"--endpoint", ep, "--concurrency", "1", "--requests", "1", "--prompt-length-dist",
        "normal"},
       "fixed, uniform or exponential"},
      {{"--endpoint", ep, "--concurrency", "1", "--rate", "10", "--requests", "1"},
       "exactly one of --rate"},
      {{"--endpoint", ep, "--concurrency", "1"}, "--duration or --requests"},
      {{"--concurrency", "1", "--requests", "1"}, "give --endpoint or --config"},
      {{"--endpoint", "http://x", "--concurrency", "1", "--requests", "1"}, "bad endpoint"},
      {{"--endpoint", ep, "--concurrency", "1", "--requests", "1", "--embedded"},
       "--embedded needs --config"},
  };
  int k = 0;
  for (const Case& c : cases) {
    std::vector<std::string> args = {"loadgen", "--no-progress"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Outcome o = RunMessplus(args, dir.path(), "bad" + std::to_string(k++), Millis(20000));
    EXPECT_EQ(o.exit_code, 2) << c.message << "\n" << o.err;
    EXPECT_NE(o.err.find(c.message), std::string::npos) << "stderr: " << o.err;
    EXPECT_NE(o.err.find("messplus loadgen: "), std::string::npos) << o.err;
    EXPECT_TRUE(o.out.empty()) << o.out;
  }
}

// ---- publish ------------------------------------------------------------------------------

// The frontend on ipc://, and a short wait for feedback that names no known request (the
// collector refuses it as unknown_request once the wait is over).
class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    up_ = std::make_unique<UpProcess>(dir_, IpcIn(dir_, "frontend"),
                                      "feedback: {early_feedback_wait_ms: 500}\n");
    ASSERT_NO_FATAL_FAILURE(up_->Start());
  }
  void TearDown() override {
    if (up_) up_->Stop();
  }
  Outcome Publish(std::vector<std::string> args, const std::string& tag,
                  const std::string& stdin_path = "") {
    args.insert(args.begin(), {"publish", "--endpoint", up_->frontend(), "--timeout-ms", "10000"});
    return RunMessplus(args, dir_.path(), tag, kRunDeadline, stdin_path);
  }

  TempDir dir_;
  std::unique_ptr<UpProcess> up_;
};

void ExpectReply(const nlohmann::json& j, const std::string& text) {
  ASSERT_TRUE(j.contains("id")) << j.dump();
  EXPECT_FALSE(j.contains("error")) << j.dump();
  EXPECT_FALSE(j.at("id").get<std::string>().empty());
  ASSERT_TRUE(j.contains("model")) << j.dump();
  EXPECT_NE(std::find(kZoo.begin(), kZoo.end(), j.at("model").get<std::string>()), kZoo.end())
      << j.dump();
  EXPECT_EQ(j.at("answer"), text);                         // echo workers answer with the prompt
  EXPECT_EQ(j.at("cost").get<double>(), 1.0) << j.dump();  // and cost 1 per call
  EXPECT_GE(j.at("total_cost").get<double>(), j.at("cost").get<double>());
  EXPECT_TRUE(j.at("models_run").is_array());
  EXPECT_TRUE(j.at("explored").is_boolean());
}

TEST_F(PublishTest, OneRequestThenFeedbackForItThenForAnUnknownId) {
  const std::string text = "Why is the sky blue?";
  const Outcome one = Publish({text}, "one");
  EXPECT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(one.lines.size(), 1u) << one.out << one.err;
  ExpectReply(one.lines[0], text);
  EXPECT_FALSE(one.lines[0].contains("line"));  // command-line input has no stdin line
  const std::string id = one.lines[0].at("id").get<std::string>();

  // An id of our own, with metadata.
  const Outcome named = Publish({"--id", "q-named", "--tenant", "default", "--metadata", "k=v",
                                 "--task", "arc", "hello there"},
                                "named");
  EXPECT_EQ(named.exit_code, 0) << named.err;
  ASSERT_EQ(named.lines.size(), 1u) << named.out << named.err;
  ExpectReply(named.lines[0], "hello there");
  EXPECT_EQ(named.lines[0].at("id"), "q-named");

  // Feedback for the answered requests: acknowledged.
  const Outcome ack = Publish({"--feedback", id + "=1", "--feedback", "q-named=0.25"}, "ack");
  EXPECT_EQ(ack.exit_code, 0) << ack.out << ack.err;
  ASSERT_EQ(ack.lines.size(), 2u) << ack.out << ack.err;
  std::set<std::string> acked;
  for (const nlohmann::json& j : ack.lines) {
    EXPECT_EQ(j.at("status"), "ok") << j.dump();
    EXPECT_EQ(j.at("applied"), 1) << j.dump();
    acked.insert(j.at("feedback").get<std::string>());
  }
  EXPECT_EQ(acked, (std::set<std::string>{id, "q-named"}));

  // Feedback for an id the pipeline never saw: refused, with a message saying why.
  const Outcome unknown = Publish({"--feedback", "no-such-request=0.5"}, "unknown");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out << unknown.err;
  ASSERT_EQ(unknown.lines.size(), 1u) << unknown.out << unknown.err;
  const nlohmann::json& refused = unknown.lines[0];
  EXPECT_EQ(refused.at("feedback"), "no-such-request");
  EXPECT_EQ(refused.at("status"), "unknown_request") << refused.dump();
  EXPECT_NE(refused.value("message", "").find("no outcome for this request id"), std::string::npos)
      << refused.dump();
  EXPECT_FALSE(refused.contains("applied"));

  // The same request and its feedback in one invocation: the feedback waits for the reply.
  const Outcome both = Publish({"--id", "q-both", "both", "--feedback", "q-both=0"}, "both");
  EXPECT_EQ(both.exit_code, 0) << both.out << both.err;
  ASSERT_EQ(both.lines.size(), 2u) << both.out << both.err;
  EXPECT_EQ(both.lines[0].at("id"), "q-both");
  EXPECT_EQ(both.lines[1].at("feedback"), "q-both");
  EXPECT_EQ(both.lines[1].at("status"), "ok");
}

TEST_F(PublishTest, StdinLinesWithMalformedOnesInBetween) {
  const std::string input = Write(dir_, "requests.jsonl",
                                  "{\"text\": \"first prompt\", \"id\": \"s1\"}\n"
                                  "this is not json\n"
                                  "{\"tenant\": \"default\", \"id\": \"s3\"}\n"
                                  "{\"text\": \"fourth prompt\", \"metadata\": {\"k\": \"v\"}}\n"
                                  "\n"
                                  "{\"text\": \"sixth prompt\", \"tenant\": \"default\", \"id\": "
                                  "\"s6\", \"task\": \"arc\"}\n"
                                  "{\"feedback\": \"s1\", \"satisfaction\": 1}\n"
                                  "[1, 2]\n"
                                  "{\"text\": \"ninth prompt\", \"id\": \"s9\"}\n"
                                  "{\"text\": \"x\", \"feedback\": \"s1\", \"satisfaction\": 1}\n"
                                  "{\"text\": \"last line, no newline\", \"id\": \"s11\"}");
  const Outcome o = Publish({}, "stdin", input);
  // Malformed lines make the exit status 1, and the rest is still sent and answered.
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  EXPECT_NE(o.err.find("messplus publish: stdin line 2: not valid JSON"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("messplus publish: stdin line 3: no \"text\" (a request) and no "
                       "\"feedback\""),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("messplus publish: stdin line 10: give \"text\" (a request) or "
                       "\"feedback\" (an id), not both"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("messplus publish: stdin line 8: not a JSON object"), std::string::npos)
      << o.err;
  for (const char* good :
       {"line 1:", "line 4:", "line 5:", "line 6:", "line 7:", "line 9:", "line 11:"}) {
    EXPECT_EQ(o.err.find(good), std::string::npos) << good << " reported as malformed:\n" << o.err;
  }
  std::map<size_t, nlohmann::json> by_line;
  for (const nlohmann::json& j : o.lines) {
    ASSERT_TRUE(j.contains("line")) << j.dump();
    by_line[j.at("line").get<size_t>()] = j;
  }
  ASSERT_EQ(o.lines.size(), 6u) << o.out << o.err;  // 5 replies and 1 ack
  ASSERT_EQ(by_line.size(), 6u) << o.out;
  for (size_t line : {1u, 4u, 6u, 7u, 9u, 11u}) ASSERT_TRUE(by_line.count(line)) << line << o.out;
  ExpectReply(by_line[1], "first prompt");
  EXPECT_EQ(by_line[1].at("id"), "s1");
  ExpectReply(by_line[4], "fourth prompt");
  // A line without an id gets "<prefix>-<line>".
  const std::string generated = by_line[4].at("id").get<std::string>();
  EXPECT_EQ(generated.substr(generated.size() - 2), "-4") << generated;
  ExpectReply(by_line[6], "sixth prompt");
  EXPECT_EQ(by_line[6].at("id"), "s6");
  EXPECT_EQ(by_line[7].at("feedback"), "s1");
  EXPECT_EQ(by_line[7].at("status"), "ok") << by_line[7].dump();
  ExpectReply(by_line[9], "ninth prompt");
  EXPECT_EQ(by_line[9].at("id"), "s9");
  ExpectReply(by_line[11], "last line, no newline");
  EXPECT_EQ(by_line[11].at("id"), "s11");
}

TEST_F(PublishTest, AWellFormedStdinExitsZero) {
  const std::string input = Write(dir_, "good.jsonl",
                                  "{\"text\": \"a\", \"id\": \"g1\"}\n"
                                  "{\"text\": \"b\", \"id\": \"g2\"}\n"
                                  "{\"feedback\": \"g1\", \"satisfaction\": 0.5}\n");
  const Outcome o = Publish({"--window", "2"}, "good", input);
  EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_TRUE(o.err.empty()) << o.err;
  ASSERT_EQ(o.lines.size(), 3u) << o.out << o.err;
  size_t replies = 0, acks = 0;
  for (const nlohmann::json& j : o.lines) {
    if (j.contains("feedback")) {
      ++acks;
      EXPECT_EQ(j.at("feedback"), "g1");
      EXPECT_EQ(j.at("status"), "ok") << j.dump();
      EXPECT_EQ(j.at("line"), 3);
    } else {
      ++replies;
      ExpectReply(j, j.at("line") == 1 ? "a" : "b");
    }
  }
  EXPECT_EQ(replies, 2u);
  EXPECT_EQ(acks, 1u);
}

TEST_F(PublishTest, ARepeatedIdWaitsForTheFirstAndAnUnknownTenantIsAnError) {
  const std::string input = Write(dir_, "dup.jsonl",
                                  "{\"text\": \"one\", \"id\": \"dup\"}\n"
                                  "{\"text\": \"two\", \"id\": \"dup\"}\n"
                                  "{\"text\": \"three\", \"id\": \"t3\", \"tenant\": "
                                  "\"nobody\"}\n");
  const Outcome o = Publish({}, "dup", input);
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;  // the unknown tenant failed
  ASSERT_EQ(o.lines.size(), 3u) << o.out << o.err;
  std::map<size_t, nlohmann::json> by_line;
  for (const nlohmann::json& j : o.lines) by_line[j.at("line").get<size_t>()] = j;
  // Both requests named "dup" were answered (the second went after the first's reply).
  ExpectReply(by_line[1], "one");
  ExpectReply(by_line[2], "two");
  EXPECT_EQ(by_line[1].at("id"), "dup");
  EXPECT_EQ(by_line[2].at("id"), "dup");
  const nlohmann::json& failed = by_line[3];
  EXPECT_EQ(failed.at("id"), "t3");
  EXPECT_EQ(failed.at("error").at("code"), "unknown_tenant") << failed.dump();
  EXPECT_NE(failed.at("error").at("message").get<std::string>().find("nobody"), std::string::npos)
      << failed.dump();
}

TEST(Publish, UnreachableEndpointTimesOutWithAClearMessage) {
  TempDir dir;
  for (const std::string& endpoint :
       {IpcIn(dir, "nobody"), "tcp://127.0.0.1:" + std::to_string(FreePort())}) {
    const Outcome one =
        RunMessplus({"publish", "--endpoint", endpoint, "--timeout-ms", "500", "hello"}, dir.path(),
                    "unreachable", Millis(20000));
    EXPECT_EQ(one.exit_code, 1) << endpoint << "\n" << one.err;
    EXPECT_NE(one.err.find("messplus publish: no answer from " + endpoint + " within 500 ms"),
              std::string::npos)
        << one.err;
    EXPECT_TRUE(one.lines.empty()) << one.out;

    // The same for stdin input and for feedback.
    const std::string input =
        Write(dir, "two.jsonl", "{\"text\": \"a\"}\n{\"feedback\": \"x\", \"satisfaction\": 1}\n");
    const Outcome lines = RunMessplus({"publish", "--endpoint", endpoint, "--timeout-ms", "500"},
                                      dir.path(), "unreachable-stdin", Millis(20000), input);
    EXPECT_EQ(lines.exit_code, 1) << lines.err;
    EXPECT_NE(lines.err.find("no answer from " + endpoint), std::string::npos) << lines.err;
  }
}

TEST(Publish, BadArgumentsAreClearErrors) {
  TempDir dir;
  const std::string ep = IpcIn(dir, "nobody");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"hello"}, "give --endpoint or --config"},
      {{"--endpoint", "inproc://frontend", "hello"}, "is not an ipc:// or tcp:// endpoint"},
      {{"--endpoint", ep, "--feedback", "q1"}, "--feedback 'q1': expected ID=VALUE"},
      {{"--endpoint", ep, "--feedback", "q1=2"}, "--feedback 'q1=2'"},
      {{"--endpoint", ep, "--feedback", "=1"}, "--feedback '=1'"},
      {{"--endpoint", ep, "hello", "--metadata", "novalue"}, "--metadata 'novalue'"},
      {{"--endpoint", ep, "--tenant", "gold"}, "go with a TEXT argument"},
  };
  int k = 0;
  for (const Case& c : cases) {
    std::vector<std::string> args = {"publish"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Outcome o = RunMessplus(args, dir.path(), "bad" + std::to_string(k++), Millis(20000));
    EXPECT_EQ(o.exit_code, 2) << c.message << "\n" << o.err;
    EXPECT_NE(o.err.find(c.message), std::string::npos) << "stderr: " << o.err;
    EXPECT_TRUE(o.out.empty()) << o.out;
  }
}

}  // namespace
}  // namespace messplus::itest
