// The executor: walks an execution Graph (runtime/plan/plan.h) with bounded
// parallelism. It owns all concurrency of apply; the step function it calls
// does one provider operation and records it durably.
//
// Semantics:
//  * A node starts only after every node in its `after` list succeeded.
//  * When a step fails, independent branches continue; nodes that (directly
//    or transitively) wait for it are skipped, never started.
//  * Retryable failures are retried with exponential backoff and full
//    jitter, up to `max_attempts`.
//  * Cancellation: after RequestStop() no new step starts; running steps
//    finish (the step function decides how to honour a hard abort).
//  * Group nodes (no real work) complete immediately.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "runtime/plan/plan.h"

namespace plinth::runtime {

struct StepOutcome {
  bool ok = true;
  bool retryable = false;
  std::string error;  // shown to the user; never contains sensitive values
};

enum class NodeStatus : uint8_t { Pending, Succeeded, Failed, Skipped, NotStarted };

struct ExecutorOptions {
  unsigned parallelism = 10;
  unsigned max_attempts = 4;
  std::chrono::milliseconds base_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  // Called from worker threads (serialised by the executor) when a step
  // starts, is retried, or ends; for progress output.
  std::function<void(const GraphNode&, const std::string& event, std::chrono::milliseconds elapsed)> on_event;
  // An outside stop request (e.g. set by a SIGINT handler); same effect as RequestStop().
  const std::atomic<bool>* stop_flag = nullptr;
};

struct ExecutionReport {
  std::vector<NodeStatus> status;  // per graph node
  std::vector<std::string> errors;  // per graph node, empty when none
  size_t succeeded = 0, failed = 0, skipped = 0, not_started = 0;
  bool stopped = false;  // RequestStop() was called
};

class Executor {
 public:
  using Step = std::function<StepOutcome(const GraphNode&)>;

  Executor(const Graph& graph, ExecutorOptions options);
  // Runs to completion (or until stopped and drained). Call once.
  ExecutionReport Run(const Step& step);
  // Thread-safe; e.g. from a SIGINT handler's helper thread.
  void RequestStop() { stop_.store(true); }

 private:
  bool Stopping() const { return stop_.load() || (options_.stop_flag && options_.stop_flag->load()); }

  const Graph& graph_;
  ExecutorOptions options_;
  std::atomic<bool> stop_{false};
};

}  // namespace plinth::runtime
