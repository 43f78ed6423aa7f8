#include "runtime/exec/executor.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

namespace plinth::runtime {

Executor::Executor(const Graph& graph, ExecutorOptions options) : graph_(graph), options_(std::move(options)) {
  if (options_.parallelism == 0) options_.parallelism = 1;
  if (options_.max_attempts == 0) options_.max_attempts = 1;
}

ExecutionReport Executor::Run(const Step& step) {
  const size_t n = graph_.nodes.size();
  ExecutionReport report;
  report.status.assign(n, NodeStatus::Pending);
  report.errors.assign(n, "");

  std::vector<std::vector<uint32_t>> dependents(n);
  std::vector<uint32_t> waiting(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t dep : graph_.nodes[i].after) {
      dependents[dep].push_back(i);
      ++waiting[i];
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<uint32_t> ready;
  size_t running = 0, finished = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (waiting[i] == 0) ready.push_back(i);
  }

  // Marks `root`'s waiting dependents as skipped (transitively). Holds mu.
  auto skip_dependents = [&](uint32_t root) {
    std::vector<uint32_t> stack(dependents[root].begin(), dependents[root].end());
    while (!stack.empty()) {
      uint32_t j = stack.back();
      stack.pop_back();
      if (report.status[j] != NodeStatus::Pending) continue;
      report.status[j] = NodeStatus::Skipped;
      ++finished;
      for (uint32_t k : dependents[j]) stack.push_back(k);
    }
  };

  auto emit = [&](const GraphNode& node, const std::string& event, std::chrono::milliseconds elapsed) {
    if (!options_.on_event || node.step == GraphNode::Step::Group) return;
    std::lock_guard<std::mutex> lock(mu);
    options_.on_event(node, event, elapsed);
  };

  auto worker = [&](unsigned seed) {
    std::mt19937 rng(seed);
    for (;;) {
      uint32_t i;
      {
        std::unique_lock<std::mutex> lock(mu);
        // Also wake when nothing can make progress any more (a cycle).
        cv.wait(lock, [&] { return !ready.empty() || finished == n || running == 0; });
        if (finished == n || ready.empty()) return;
        if (Stopping()) {
          // Drain: whatever is ready now will not start.
          while (!ready.empty()) {
            uint32_t r = ready.front();
            ready.pop_front();
            if (report.status[r] == NodeStatus::Pending) {
              report.status[r] = NodeStatus::NotStarted;
              ++finished;
              skip_dependents(r);
            }
          }
          cv.notify_all();
          return;
        }
        i = ready.front();
        ready.pop_front();
        ++running;
      }
      const GraphNode& node = graph_.nodes[i];
      StepOutcome outcome;
      auto start = std::chrono::steady_clock::now();
      if (node.step != GraphNode::Step::Group) {
        emit(node, "start", std::chrono::milliseconds(0));
        for (unsigned attempt = 1;; ++attempt) {
          outcome = step(node);
          if (outcome.ok || !outcome.retryable || attempt >= options_.max_attempts || Stopping()) break;
          // Full jitter: a random wait up to base * 2^(attempt-1), capped.
          auto cap = std::min<int64_t>(options_.max_backoff.count(),
                                       options_.base_backoff.count() << std::min<unsigned>(attempt - 1, 20));
          std::uniform_int_distribution<int64_t> wait(0, std::max<int64_t>(cap, 1));
          emit(node, "retry " + std::to_string(attempt) + ": " + outcome.error, std::chrono::milliseconds(0));
          std::this_thread::sleep_for(std::chrono::milliseconds(wait(rng)));
        }
      }
      auto elapsed =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      emit(node, outcome.ok ? "done" : "failed: " + outcome.error, elapsed);
      {
        std::lock_guard<std::mutex> lock(mu);
        --running;
        ++finished;
        if (outcome.ok) {
          report.status[i] = NodeStatus::Succeeded;
          for (uint32_t j : dependents[i]) {
            if (--waiting[j] == 0 && report.status[j] == NodeStatus::Pending) ready.push_back(j);
          }
        } else {
          report.status[i] = NodeStatus::Failed;
          report.errors[i] = outcome.error;
          skip_dependents(i);
        }
      }
      cv.notify_all();
    }
  };

  std::vector<std::thread> pool;
  unsigned threads = std::min<unsigned>(options_.parallelism, static_cast<unsigned>(std::max<size_t>(n, 1)));
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker, 1234u + t);
  for (auto& th : pool) th.join();

  for (uint32_t i = 0; i < n; ++i) {
    // Nodes never reached (a cycle, or stopped before their turn).
    if (report.status[i] == NodeStatus::Pending) report.status[i] = NodeStatus::NotStarted;
    if (graph_.nodes[i].step == GraphNode::Step::Group) continue;
    switch (report.status[i]) {
      case NodeStatus::Succeeded: ++report.succeeded; break;
      case NodeStatus::Failed: ++report.failed; break;
      case NodeStatus::Skipped: ++report.skipped; break;
      default: ++report.not_started; break;
    }
  }
  report.stopped = Stopping();
  return report;
}

}  // namespace plinth::runtime
