// messplus_profile_pipeline: the whole pipeline for a fixed number of requests, for
// instruction counts (callgrind) and allocation counts per request.
//
// It runs what `messplus loadgen --embedded` runs: every stage as a thread of this process
// over inproc:// (config/embedded.yaml, logging off), one echo worker per model, and the
// load generator's closed loop (--concurrency requests in flight) for --warmup requests and
// then --requests measured ones. Only the measured part is counted:
//   * allocations: malloc is interposed (as in profile_hot.cc) and counted per thread; the
//     driver prints the count per request for the whole process and for each thread (the
//     stage threads are named "mp-<stage>" by EmbeddedPipeline, workers "mp-worker");
//   * instructions: under valgrind the measured part is bracketed with CALLGRIND_ZERO_STATS
//     and CALLGRIND_DUMP_STATS, so
//       valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out
//           build/bench/messplus_profile_pipeline
//       callgrind_annotate --inclusive=yes /tmp/cg.out.2 | head -80
//     gives the instructions of every function over the measured requests (divide by
//     --requests for per-request figures; the ".1" file is the measured dump).
//     bench/profile_pipeline.sh splits them by thread (stage) instead.
// Wall time and requests/s are printed as a sanity check only (valgrind slows it ~50x, and
// the stages share 2 vCPUs with the generator).
#include <pthread.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(x)
#endif

#include <CLI/CLI.hpp>

#include "pipeline/config.h"
#include "pipeline/logging.h"
#include "pipeline/stop.h"
#include "stages/stages.h"
#include "tools/loadgen/loadgen.h"
#include "tools/worker_threads.h"

// ---- allocation counting, per thread -------------------------------------------------------
// Each thread takes a slot on its first malloc; the slot remembers the thread so its name can
// be read while it runs. Global by necessity: nothing else sees every allocation.
namespace {
constexpr int kMaxThreads = 64;
struct AllocSlot {
  std::atomic<uint64_t> count{0};
  std::atomic<pthread_t> thread{};
};
AllocSlot g_slots[kMaxThreads];
std::atomic<int> g_next_slot{0};
std::atomic<uint64_t> g_overflow{0};  // threads beyond kMaxThreads
thread_local int t_slot = -1;
}  // namespace

extern "C" {
void* __libc_malloc(size_t size);  // glibc's own allocator
void* malloc(size_t size) {
  if (t_slot < 0) {
    const int s = g_next_slot.fetch_add(1, std::memory_order_relaxed);
    t_slot = s < kMaxThreads ? s : kMaxThreads;
    if (s < kMaxThreads) g_slots[s].thread.store(pthread_self(), std::memory_order_relaxed);
  }
  if (t_slot < kMaxThreads) {
    g_slots[t_slot].count.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_overflow.fetch_add(1, std::memory_order_relaxed);
  }
  return __libc_malloc(size);
}
}

namespace messplus::bench {
namespace {

struct Flags {
  std::string config = std::string(MESSPLUS_SOURCE_DIR) + "/config/embedded.yaml";
  uint64_t requests = 20000;
  uint64_t warmup = 5000;
  uint64_t concurrency = 32;
  double prompt_chars = 200;
  bool callgrind_bracket = true;  // zero the counts before the measured run, dump after
};

struct ThreadSnapshot {
  std::array<uint64_t, kMaxThreads> allocs{};
  std::array<double, kMaxThreads> cpu_s{};  // the thread's CPU time (user + system)
};

ThreadSnapshot Snapshot() {
  ThreadSnapshot s;
  const int n = std::min(g_next_slot.load(), kMaxThreads);
  for (int i = 0; i < n; ++i) {
    s.allocs[i] = g_slots[i].count.load();
    clockid_t clock;
    timespec ts{};
    if (pthread_getcpuclockid(g_slots[i].thread.load(), &clock) == 0 &&
        clock_gettime(clock, &ts) == 0) {
      s.cpu_s[i] = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    }
  }
  return s;
}

__attribute__((noinline)) Result<loadgen::LoadReport> ProfiledRun(zmq::context_t& zmq,
                                                                  const loadgen::LoadOptions& o,
                                                                  bool bracket) {
  if (bracket) CALLGRIND_ZERO_STATS;
  Result<loadgen::LoadReport> r = loadgen::RunLoad(zmq, o);
  if (bracket) CALLGRIND_DUMP_STATS_AT("measured");
  return r;
}

int Run(const Flags& f) {
  Result<pipeline::Config> config = pipeline::LoadConfig(f.config);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 2;
  }
  config->log_level = "off";
  pipeline::Logger log = pipeline::MakeLogger("profile", "off");
  Result<std::unique_ptr<pipeline::StopSignal>> stop = pipeline::StopSignal::Create();
  if (!stop.ok()) return 1;
  zmq::context_t zmq(1);
  Result<std::unique_ptr<stages::EmbeddedPipeline>> pipe =
      stages::EmbeddedPipeline::Start(*config, zmq, log, **stop);
  if (!pipe.ok()) {
    std::fprintf(stderr, "%s\n", pipe.status().message().c_str());
    return 2;
  }
  int code = 0;
  {
    tools::WorkerThreads workers(zmq, *config, 1, **stop, log);
    if (!(*pipe)->WaitReady(pipeline::Millis(60000))) {
      std::fprintf(stderr, "the pipeline was not ready in 60 s\n");
      code = 1;
    }
    loadgen::GeneratedPromptOptions g;
    g.mean_chars = f.prompt_chars;
    Result<loadgen::PromptSource> prompts = loadgen::PromptSource::Generated(g, 1);
    loadgen::LoadOptions o;
    o.endpoint = config->endpoints.frontend;
    o.concurrency = f.concurrency;
    o.prompts = &*prompts;
    o.request_timeout = pipeline::Millis(600000);
    o.deadline_s = 3600;
    if (code == 0 && f.warmup > 0) {
      o.requests = f.warmup;
      o.seed = 1;
      if (!loadgen::RunLoad(zmq, o).ok()) code = 1;
    }
    if (code == 0) {
      o.requests = f.requests;
      o.seed = 2;
      const auto before = Snapshot();
      const auto start = std::chrono::steady_clock::now();
      Result<loadgen::LoadReport> r = ProfiledRun(zmq, o, f.callgrind_bracket);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto after = Snapshot();
      if (!r.ok() || r->measured.answered != f.requests) {
        std::fprintf(stderr, "run failed: %s\n",
                     r.ok() ? loadgen::FormatTable(*r).c_str() : r.status().message().c_str());
        code = 1;
      } else {
        const double n = static_cast<double>(f.requests);
        uint64_t total = 0;
        double cpu = 0.0;
        for (int i = 0; i < kMaxThreads; ++i) {
          total += after.allocs[i] - before.allocs[i];
          cpu += after.cpu_s[i] - before.cpu_s[i];
        }
        std::printf(
            "requests=%llu concurrency=%llu prompt_chars=%.0f seconds=%.3f requests_per_s=%.0f "
            "allocs_per_request=%.3f cpu_us_per_request=%.2f\n",
            static_cast<unsigned long long>(f.requests),
            static_cast<unsigned long long>(f.concurrency), f.prompt_chars, s, n / s,
            static_cast<double>(total) / n, cpu * 1e6 / n);
        // Per thread, while the threads still run (their names are readable).
        struct Row {
          std::string name;
          uint64_t allocs = 0;
          double cpu_s = 0.0;
        };
        std::vector<Row> rows;
        for (int i = 0; i < std::min(g_next_slot.load(), kMaxThreads); ++i) {
          char name[32] = "?";
          pthread_getname_np(g_slots[i].thread.load(), name, sizeof(name));
          Row* row = nullptr;
          for (Row& r : rows) {
            if (r.name == name) row = &r;
          }
          if (row == nullptr) row = &rows.emplace_back(Row{name});
          row->allocs += after.allocs[i] - before.allocs[i];
          row->cpu_s += after.cpu_s[i] - before.cpu_s[i];
        }
        for (const Row& r : rows) {
          std::printf("  thread %-16s allocs_per_request=%.3f cpu_us_per_request=%.2f\n",
                      r.name.c_str(), static_cast<double>(r.allocs) / n, r.cpu_s * 1e6 / n);
        }
      }
    }
    (*stop)->Request();
    workers.Join();
  }
  (void)(*pipe)->Join();
  return code;
}

}  // namespace
}  // namespace messplus::bench

int main(int argc, char** argv) {
  messplus::bench::Flags f;
  CLI::App app{"The embedded pipeline with echo workers for a fixed number of requests"};
  app.add_option("--config", f.config, "embedded configuration")->capture_default_str();
  app.add_option("--requests", f.requests, "measured requests")->capture_default_str();
  app.add_option("--warmup", f.warmup, "requests before measuring")->capture_default_str();
  app.add_option("--concurrency", f.concurrency, "requests in flight")->capture_default_str();
  app.add_option("--prompt-chars", f.prompt_chars, "generated prompt length")
      ->capture_default_str();
  app.add_option("--callgrind-bracket", f.callgrind_bracket,
                 "zero callgrind's counts before the measured run and dump them after (one "
                 "file for all threads; with --separate-threads=yes, pass false and divide the "
                 "per-thread totals by warmup + requests)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return messplus::bench::Run(f);
}
