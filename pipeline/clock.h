// Clock: where stages get the time, so tests can move it by hand (FakeClock).
//
// Now() is monotonic (timeouts, expiry, latency); WallNanos() is the wall clock in ns since
// the Unix epoch (timestamps on the wire).
//
// Thread safety: SystemClock is stateless. FakeClock is read by the stage's thread and
// moved by the test's thread; its fields are atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace messplus::pipeline {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  virtual int64_t WallNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return SteadyClock::now(); }
  int64_t WallNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Starts at an arbitrary fixed point; moves only when told.
class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return TimePoint(SteadyClock::duration(now_.load())); }
  int64_t WallNanos() const override { return 1'700'000'000'000'000'000 + now_.load(); }
  void Advance(SteadyClock::duration d) { now_ += d.count(); }

 private:
  std::atomic<SteadyClock::rep> now_{1'000'000'000};
};

}  // namespace messplus::pipeline
