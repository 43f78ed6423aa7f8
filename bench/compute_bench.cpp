// plinth-compute-bench PLINTH [JOBS] [SLOTS]: JOBS short jobs (/bin/true)
// through a local pool of SLOTS one-CPU nodes (real agents: the plinth
// binary PLINTH), against spawning the same processes bare through the
// process layer, SLOTS at a time. Prints both wall times and the ratio.
// Run by bench/compute_bench.sh; figures in docs/benchmarks.md.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "runtime/compute/queue.h"
#include "runtime/process/process.h"

namespace fs = std::filesystem;
using namespace plinth;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: plinth-compute-bench PLINTH [JOBS] [SLOTS]\n");
    return 2;
  }
  const int jobs = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int slots = argc > 3 ? std::atoi(argv[3]) : 8;
  fs::path root = fs::temp_directory_path() / ("plinth-compute-bench-" + std::to_string(::getpid()));
  fs::create_directories(root);
  ::setenv("PLINTH_GPU_LOCK_DIR", (root / "locks").c_str(), 1);
  compute::QueueOptions o;
  o.agent_program = fs::absolute(argv[1]);
  o.workspace_key = root / "workspace.key";
  std::string error;
  auto queue = compute::Queue::Open(root / "compute", o, true, &error);
  if (!queue) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  compute::PoolSpec pool;
  pool.id = "bench/pool";
  pool.region = "bench";
  pool.name = "pool";
  pool.shapes.push_back(compute::Shape{});
  pool.max_nodes = slots;
  pool.idle_ms = 5000;
  pool.health = compute::HealthGate::kNone;
  if (!queue->PutPool(pool, &error)) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  auto t0 = Clock::now();
  for (int i = 0; i < jobs; ++i) {
    compute::JobSpec j;
    j.id = "bench/pool/true-" + std::to_string(i);
    j.name = "true";
    j.pool = pool.id;
    j.argv = {"/bin/true"};
    if (!queue->Submit(j, {}, &error)) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return 1;
    }
  }
  auto t_submitted = Clock::now();
  int done = 0, failed = 0;
  for (;;) {
    done = failed = 0;
    for (const auto& j : queue->ListJobs(pool.id)) {
      if (compute::IsTerminal(j.status)) ++done;
      if (j.status != compute::JobStatus::kSucceeded && compute::IsTerminal(j.status)) ++failed;
    }
    if (done == jobs) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto t_queue = Clock::now();
  size_t nodes = queue->ListNodes(pool.id, true).size();
  queue->RemovePool(pool.id, true, &error);

  std::atomic<int> next{0}, bare_failed{0};
  auto t1 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < slots; ++s) {
    threads.emplace_back([&] {
      while (next.fetch_add(1) < jobs) {
        process::Spec spec;
        spec.program = "/bin/true";
        if (!process::Run(std::move(spec)).ok()) ++bare_failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  auto t_bare = Clock::now();
  auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  double q = secs(t_queue - t0), b = secs(t_bare - t1);
  std::printf("jobs %d, slots %d (nodes started: %zu)\n", jobs, slots, nodes);
  std::printf("queue: %.2f s (submit %.2f s), %d failed\n", q, secs(t_submitted - t0), failed);
  std::printf("bare:  %.2f s, %d failed\n", b, bare_failed.load());
  std::printf("ratio: %.1fx\n", q / b);
  fs::remove_all(root);
  return failed == 0 && bare_failed == 0 ? 0 : 1;
}
