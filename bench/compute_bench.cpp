// plinth-compute-bench PLINTH [JOBS] [SLOTS]: JOBS short jobs (/bin/true)
// through a local pool of SLOTS one-CPU nodes (real agents: the plinth
// binary PLINTH), against spawning the same processes bare through the
// process layer, SLOTS at a time. Prints both wall times and the ratio.
// Run by bench/compute_bench.sh; figures in docs/benchmarks.md.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/compute/queue.h"
#include "runtime/process/process.h"

namespace fs = std::filesystem;
using namespace plinth;
using Clock = std::chrono::steady_clock;

namespace {

double TimevalSeconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}
// User and system CPU seconds of this process (all threads).
double SelfCpu() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return TimevalSeconds(u.ru_utime) + TimevalSeconds(u.ru_stime);
}
// ... of its reaped children.
double ChildrenCpu() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  return TimevalSeconds(u.ru_utime) + TimevalSeconds(u.ru_stime);
}
// User and system CPU seconds of a live process and of the children it reaped (/proc/PID/stat).
double ProcessCpu(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i >= 14 && i <= 17) ticks += std::stod(f);  // utime, stime, cutime, cstime
    if (i == 17) break;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: plinth-compute-bench PLINTH [JOBS] [SLOTS]\n");
    return 2;
  }
  const int jobs = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int slots = argc > 3 ? std::atoi(argv[3]) : 8;
  std::string load;
  std::getline(std::ifstream("/proc/loadavg"), load);
  load = load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1));
  fs::path root = fs::temp_directory_path() / ("plinth-compute-bench-" + std::to_string(::getpid()));
  fs::create_directories(root);
  ::setenv("PLINTH_GPU_LOCK_DIR", (root / "locks").c_str(), 1);
  // The machine the pool sees: SLOTS CPUs (the fake inventory's "cpus"), so
  // its SLOTS one-CPU nodes fit whatever this machine has; no GPU.
  {
    std::ofstream(root / "machine.json") << "{\"cpus\": " << slots << ", \"gpus\": []}\n";
    ::setenv("PLINTH_FAKE_GPUS", (root / "machine.json").c_str(), 1);
  }
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
  double cpu0 = SelfCpu();
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
    auto counts = queue->CountJobs(pool.id);
    int ok = counts[compute::JobStatus::kSucceeded];
    failed = counts[compute::JobStatus::kFailed] + counts[compute::JobStatus::kCancelled];
    done = ok + failed;
    if (done == jobs) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto t_queue = Clock::now();
  // CPU time of the queue side: the agents with the jobs they reaped, and this process (submits, polls).
  double queue_cpu = SelfCpu() - cpu0;
  for (const auto& n : queue->ListNodes(pool.id, false)) queue_cpu += ProcessCpu(n.pid);
  size_t nodes = queue->ListNodes(pool.id, true).size();
  queue->RemovePool(pool.id, true, &error);

  std::atomic<int> next{0}, bare_failed{0};
  double bare_cpu0 = SelfCpu() + ChildrenCpu();
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
  double bare_cpu = SelfCpu() + ChildrenCpu() - bare_cpu0;
  auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  double q = secs(t_queue - t0), b = secs(t_bare - t1);
  std::printf("jobs %d, slots %d (nodes started: %zu)\n", jobs, slots, nodes);
  std::printf("queue: %.2f s (submit %.2f s), %d failed\n", q, secs(t_submitted - t0), failed);
  std::printf("bare:  %.2f s, %d failed\n", b, bare_failed.load());
  std::printf("ratio: %.2fx\n", q / b);
  std::printf("cpu: queue %.2f s, bare %.2f s (ratio %.2fx; load average before: %s)\n", queue_cpu, bare_cpu,
              queue_cpu / bare_cpu, load.c_str());
  fs::remove_all(root);
  return failed == 0 && bare_failed == 0 ? 0 : 1;
}
