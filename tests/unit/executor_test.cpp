// Executor tests over hand-built graphs: ordering, bounded parallelism,
// failure isolation, retries with backoff, cancellation and cycles.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "runtime/exec/executor.h"

namespace plinth::runtime {
namespace {

// A chain a -> b -> c plus an independent d.
Graph SmallGraph() {
  Graph g;
  g.nodes = {{"a", GraphNode::Step::Apply, {}},
             {"b", GraphNode::Step::Apply, {0}},
             {"c", GraphNode::Step::Apply, {1}},
             {"d", GraphNode::Step::Apply, {}}};
  g.order = {0, 3, 1, 2};
  return g;
}

ExecutorOptions Fast() {
  ExecutorOptions o;
  o.base_backoff = std::chrono::milliseconds(1);
  o.max_backoff = std::chrono::milliseconds(5);
  return o;
}

TEST(Executor, RunsInDependencyOrder) {
  Graph g = SmallGraph();
  std::mutex mu;
  std::vector<std::string> done;
  Executor ex(g, Fast());
  ExecutionReport r = ex.Run([&](const GraphNode& n) {
    std::lock_guard<std::mutex> lock(mu);
    done.push_back(n.address);
    return StepOutcome{};
  });
  EXPECT_EQ(r.succeeded, 4u);
  auto pos = [&](const std::string& a) { return std::find(done.begin(), done.end(), a) - done.begin(); };
  EXPECT_LT(pos("a"), pos("b"));
  EXPECT_LT(pos("b"), pos("c"));
}

TEST(Executor, FailureSkipsDependentsOnly) {
  Graph g = SmallGraph();
  Executor ex(g, Fast());
  ExecutionReport r = ex.Run([&](const GraphNode& n) {
    if (n.address == "a") return StepOutcome{false, false, "disk full"};
    return StepOutcome{};
  });
  EXPECT_EQ(r.status[0], NodeStatus::Failed);
  EXPECT_EQ(r.errors[0], "disk full");
  EXPECT_EQ(r.status[1], NodeStatus::Skipped);
  EXPECT_EQ(r.status[2], NodeStatus::Skipped);
  EXPECT_EQ(r.status[3], NodeStatus::Succeeded);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.skipped, 2u);
}

TEST(Executor, RetriesRetryableErrors) {
  Graph g = SmallGraph();
  std::atomic<int> calls_a{0}, calls_d{0};
  Executor ex(g, Fast());
  ExecutionReport r = ex.Run([&](const GraphNode& n) {
    if (n.address == "a" && ++calls_a < 3) return StepOutcome{false, true, "busy"};
    if (n.address == "d") {
      ++calls_d;
      return StepOutcome{false, false, "permanent"};
    }
    return StepOutcome{};
  });
  EXPECT_EQ(calls_a.load(), 3);
  EXPECT_EQ(calls_d.load(), 1);  // not retryable: tried once
  EXPECT_EQ(r.status[2], NodeStatus::Succeeded);
}

TEST(Executor, GivesUpAfterMaxAttempts) {
  Graph g = SmallGraph();
  std::atomic<int> calls{0};
  ExecutorOptions o = Fast();
  o.max_attempts = 3;
  Executor ex(g, o);
  ExecutionReport r = ex.Run([&](const GraphNode& n) {
    if (n.address == "d") {
      ++calls;
      return StepOutcome{false, true, "still busy"};
    }
    return StepOutcome{};
  });
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(r.status[3], NodeStatus::Failed);
}

TEST(Executor, RespectsParallelism) {
  Graph g;
  for (int i = 0; i < 40; ++i) g.nodes.push_back({"n" + std::to_string(i), GraphNode::Step::Apply, {}});
  std::atomic<int> now{0}, peak{0};
  ExecutorOptions o = Fast();
  o.parallelism = 3;
  Executor ex(g, o);
  ex.Run([&](const GraphNode&) {
    int v = ++now;
    int p = peak.load();
    while (v > p && !peak.compare_exchange_weak(p, v)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --now;
    return StepOutcome{};
  });
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2);
}

TEST(Executor, StopLetsRunningStepsFinishAndStartsNothingNew) {
  Graph g;
  for (int i = 0; i < 20; ++i) {
    std::vector<uint32_t> after;
    if (i > 0) after.push_back(static_cast<uint32_t>(i - 1));
    g.nodes.push_back({"n" + std::to_string(i), GraphNode::Step::Apply, after});
  }
  Executor ex(g, Fast());
  std::atomic<int> started{0};
  ExecutionReport r = ex.Run([&](const GraphNode& n) {
    ++started;
    if (n.address == "n4") ex.RequestStop();
    return StepOutcome{};
  });
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(started.load(), 5);
  EXPECT_EQ(r.succeeded, 5u);
  EXPECT_EQ(r.succeeded + r.skipped + r.not_started, 20u);
}

TEST(Executor, CycleDoesNotHang) {
  Graph g;
  g.nodes = {{"a", GraphNode::Step::Apply, {1}}, {"b", GraphNode::Step::Apply, {0}}, {"c", GraphNode::Step::Apply, {}}};
  Executor ex(g, Fast());
  ExecutionReport r = ex.Run([](const GraphNode&) { return StepOutcome{}; });
  EXPECT_EQ(r.status[2], NodeStatus::Succeeded);
  EXPECT_EQ(r.not_started, 2u);
}

}  // namespace
}  // namespace plinth::runtime
