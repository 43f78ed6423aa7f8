// The controller's one clock (docs/controller.md). Every time decision of
// the controller and what it drives (probes, back-off, leases, schedules)
// reads time through a Clock passed in, so tests run on simulated time
// (ManualClock) without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace plinth::controller {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time: for intervals, deadlines and back-off.
  virtual TimePoint Now() const = 0;
  // Wall-clock milliseconds since the Unix epoch: for what is stored and
  // compared across processes (lease expiry, timestamps in status).
  virtual int64_t WallMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  int64_t WallMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t wall_ms = 1'700'000'000'000) : ns_(0), wall_ms_(wall_ms) {}
  TimePoint Now() const override { return TimePoint(std::chrono::nanoseconds(ns_.load())); }
  int64_t WallMs() const override { return wall_ms_.load(); }
  void Advance(std::chrono::nanoseconds d) {
    ns_ += d.count();
    wall_ms_ += std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  }

 private:
  std::atomic<int64_t> ns_;
  std::atomic<int64_t> wall_ms_;
};

}  // namespace plinth::controller
