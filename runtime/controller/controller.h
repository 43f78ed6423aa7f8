// The controller (docs/controller.md): a long-running loop per workspace
// that elects one leader among its instances through a lease and, while
// leading, runs the workspace's periodic work — today the storage sweep with
// its backup schedules (runtime/storage/service.h), wired in by the CLI as a
// PeriodicTask — and reports its status.
//
// One pass (Tick), level-triggered and idempotent:
//   1. acquire or renew the lease (Lease::TryAcquire, ttl = lease_ttl);
//      standby when another holder has it;
//   2. when leading: run every task that is due (its `every` has passed
//      since its last run, or it was requested with RequestRun), re-checking
//      the lease after each one so a deposed leader stops at once;
//   3. record the pass (loops, duration, errors) and, when leading, write
//      `<dir>/status.json` atomically.
// Takeover bound: a leader that dies renewed at most `interval` before it
// died, so its lease ends within `lease_ttl` of its last renewal and a
// standby, checking every `interval`, leads within lease_ttl + interval.
//
// Health: Healthy() is false when no pass has finished for more than three
// intervals (the loop is stuck — a task that runs long counts as stuck).
//
// Files in `dir` (.plinth/<ws>/controller, mode 0700): lease.db (Lease),
// token (the bearer token for POST endpoints, 64 hex digits, mode 0600,
// created once and shared by every controller of the workspace),
// status.json (written by the leader).
//
// Time comes only from the Clock. Thread safety: Tick, Run and Shutdown on
// one thread; Healthy, MetricsText, StatusJson and RequestRun from any
// (HTTP handlers).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "runtime/controller/clock.h"
#include "runtime/controller/http_server.h"
#include "runtime/controller/lease.h"
#include "runtime/metrics/exposition.h"

#include <nlohmann/json.hpp>

namespace plinth::controller {

struct TaskResult {
  bool ok = true;
  std::string summary;  // one line for status ("2 buckets swept")
  std::string error;    // one line when !ok; never a secret
};

struct PeriodicTask {
  std::string name;  // "storage-sweep": [a-z0-9-]+
  std::chrono::milliseconds every{60'000};
  // Runs on the loop thread, only while leading; `term` is the lease's
  // fencing token at the time. Must not throw.
  std::function<TaskResult(int64_t term)> run;
  // Optional: a section of the status document under `status_key` (e.g.
  // "services"), and metric families appended to /metrics. Called with the
  // controller's lock held, from any thread: they must not call back into
  // the Controller and must lock their own state.
  std::string status_key;
  std::function<nlohmann::json()> status;
  std::function<void(metrics::Exposition&)> metrics;
};

struct ControllerOptions {
  std::filesystem::path dir;  // .plinth/<ws>/controller
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds lease_ttl{10'000};
  std::string holder_id;  // empty: NewHolderId()
  std::string listen;     // "127.0.0.1:PORT", reported in status only
};

struct TaskStatus {
  std::string name;
  int64_t runs = 0, failures = 0;
  int64_t last_run_ms = 0, last_success_ms = 0;  // wall time; 0: never
  double last_duration_s = 0;
  std::string last_summary, last_error;
};

class Controller {
 public:
  Controller(ControllerOptions options, Clock& clock, std::vector<PeriodicTask> tasks);
  ~Controller();

  // Creates `dir` (0700), the token file when missing, and opens the lease.
  bool Open(std::string* error);
  // One pass (see above).
  void Tick();
  // Passes every `interval` (real sleeping, in short slices) until `stop`
  // is set, then Shutdown(). Needs a clock that moves by itself.
  void Run(const std::atomic<bool>& stop);
  // Releases the lease if held (a standby can take over at once) and, when
  // it was held, rewrites status.json with "stopped": true.
  void Shutdown();
  // Runs task `name` at the next pass whatever its schedule, and starts
  // that pass now when Run is sleeping; false when there is no such task.
  bool RequestRun(const std::string& name);
  // The address the endpoints listen on, for status (known once the
  // server has bound).
  void SetListen(std::string listen);

  bool Healthy() const;
  bool leading() const;
  int64_t term() const;
  const std::string& token() const { return token_; }
  std::string MetricsText() const;  // Prometheus text format
  std::string StatusJson() const;   // the document status.json holds

  // GET /healthz, /metrics, /status; POST /run?task=NAME (bearer token).
  void Attach(HttpServer& server);

 private:
  struct Task {
    PeriodicTask spec;
    TaskStatus status;
    bool ran = false;
    Clock::TimePoint next_due{};
  };
  void WriteStatusFile();
  std::string StatusJsonLocked() const;

  ControllerOptions options_;
  Clock& clock_;
  std::unique_ptr<Lease> lease_;
  std::string token_;

  mutable std::mutex mu_;  // guards everything below
  std::vector<Task> tasks_;
  std::set<std::string> requested_;
  std::atomic<bool> wake_{false};  // RequestRun: Run's sleep ends early
  bool leading_ = false;
  bool stopped_ = false;
  int64_t leader_since_ms_ = 0;  // wall time this controller last became leader; 0: not leading
  int64_t term_ = 0;
  LeaseRecord lease_record_;
  int64_t started_at_ms_ = 0;
  Clock::TimePoint last_progress_{};
  int64_t loops_ = 0, loop_errors_ = 0;
  double last_loop_s_ = 0;
  std::string last_error_;
  int64_t updated_at_ms_ = 0;
};

// "2026-12-05T14:30:00.123Z"; "" for 0.
std::string Rfc3339Ms(int64_t wall_ms);

}  // namespace plinth::controller
