// The node agent (`plinth compute agent`, docs/compute.md "Nodes and
// agents"): one process per node, in its own session. It locks its GPUs,
// runs the health gate, then claims and runs jobs (one thread each) until it
// idles out, its row is removed, or it is told to stop (SIGTERM).
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <thread>

#include "kernels/gpu/cuda_backend.h"
#include "kernels/gpu/gpu.h"
#include "kernels/gpu/reference.h"
#include "runtime/compute/inventory.h"
#include "runtime/compute/ledger.h"
#include "runtime/compute/queue.h"
#include "runtime/controller/actions.h"
#include "runtime/controller/maintenance.h"
#include "runtime/process/process.h"

namespace plinth::compute {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::atomic<bool> g_stop{false};

// Wakes the agent's loop when a job ends, so the next claim does not wait for the poll.
std::mutex g_wake_mu;
std::condition_variable g_wake;
bool g_woken = false;

void Wake() {
  {
    std::lock_guard lock(g_wake_mu);
    g_woken = true;
  }
  g_wake.notify_all();
}
void OnStopSignal(int) {
  g_stop.store(true);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DurationText(int64_t ms) {
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// "2.4 s"
std::string SecondsText(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

// Runs the pool's GPU probe on one GPU. Empty when it passed, else why not.
std::string ProbeGpu(const Gpu& g, HealthGate level) {
  std::unique_ptr<gpu::Backend> backend;
  gpu::ProbeOptions po;
  po.level = level == HealthGate::kFull ? gpu::Level::kFull : gpu::Level::kQuick;
  std::string error;
  if (g.fake) {
    // A fake GPU: the CPU reference kernels at a tiny size, with its fault.
    backend = gpu::MakeCpuBackend();
    auto fault = gpu::ParseFakeFault(g.fault);
    if (!fault) return "unknown fake fault '" + g.fault + "'";
    po.fault = *fault;
    po.level = gpu::Level::kQuick;
    po.memory_fraction = 0.0005;
    po.gemm_seconds = 0.02;
    // The CPU's own measured peak is noisy on a shared machine (0.6-0.8 of it
    // is common); the injected bandwidth fault moves an eighth of the data, so
    // a quarter of the peak tells the two apart.
    po.thresholds.min_peak_fraction = 0.25;
  } else {
    const gpu::Discovery d = gpu::DiscoverCuda();
    if (d.why != gpu::NoGpu::kNone)
      return "GPU " + std::to_string(g.index) + " cannot be opened: no usable CUDA";
    backend = gpu::OpenCuda(d, g.index, &error);
    if (!backend) return "GPU " + std::to_string(g.index) + " cannot be opened: " + error;
  }
  gpu::ProbeReport report;
  if (!gpu::RunProbe(*backend, po, &report, &error))
    return "GPU " + std::to_string(g.index) + " failed: " + error;
  if (report.passed) return "";
  std::string why;
  for (const gpu::Check& c : report.checks) {
    if (!c.passed) why += (why.empty() ? "" : "; ") + c.name + ": " + c.detail;
  }
  return "GPU " + std::to_string(g.index) + " failed the " +
         (po.level == gpu::Level::kFull ? "full" : "quick") +
         " probe: " + (why.empty() ? "a check failed" : why);
}

// An automatic action of a node agent for `plinth history` (the workspace's
// controller/actions.db, docs/controller.md "Automatic actions"): a node
// patched, a level halted, a node replaced after a failed probe or patch.
// Best effort: a history that cannot be written does not stop the node.
void RecordAction(const fs::path& compute_dir, const PoolSpec& pool, const std::string& kind,
                  const std::string& detail, const std::string& reason) {
  std::string error;
  auto log = controller::ActionLog::Open(compute_dir.parent_path() / "controller" / "actions.db", true, &error);
  controller::Action a;
  a.at_ms = NowMs();
  a.kind = kind;
  a.subject = "pool." + pool.name;
  a.detail = detail;
  a.reason = reason;
  if (!log || !log->Record(a, &error))
    std::fprintf(stderr, "warning: cannot record %s: %s\n", kind.c_str(), error.c_str());
}

// Runs the pool's patch command for a node (docs/compute.md, "Patching
// nodes"): argv only, the agent's PATH/HOME/LANG and the node's names, its
// output appended to <compute dir>/patches/<node>.log, killed at the
// timeout (SIGTERM, SIGKILL 5 s later) or when the agent is told to stop.
// With `rollback`, the rollback_command, taking the node from its level back
// to its previous one (PLINTH_PATCH_ROLLBACK=1). Empty when it succeeded,
// else why not; *cancelled when a stop ended it.
std::string RunPatchCommand(const fs::path& compute_dir, const PoolSpec& pool, const NodeState& node,
                            bool rollback, bool* cancelled) {
  *cancelled = false;
  const PatchSpec& patch = pool.patch;
  const std::vector<std::string>& argv = rollback ? patch.rollback_command : patch.command;
  if (argv.empty()) return rollback ? "the patch has no rollback_command" : "the patch has no command";
  process::Spec spec;
  spec.program = argv[0];
  spec.args.assign(argv.begin() + 1, argv.end());
  for (const char* k : {"PATH", "HOME", "LANG", "TZ"})
    if (const char* v = std::getenv(k)) spec.env[k] = v;
  if (!spec.env.count("PATH")) spec.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  std::string gpus;
  for (int g : node.gpus) {
    if (!gpus.empty()) gpus += ',';
    gpus += std::to_string(g);
  }
  spec.env["PLINTH_NODE"] = node.name;
  spec.env["PLINTH_POOL"] = pool.name;
  spec.env["PLINTH_REGION"] = pool.region;
  spec.env["PLINTH_PATCH_LEVEL"] = rollback ? node.previous_patch_level : patch.level;
  spec.env["PLINTH_PREVIOUS_PATCH_LEVEL"] = node.patch_level;
  if (rollback) spec.env["PLINTH_PATCH_ROLLBACK"] = "1";
  spec.env["PLINTH_NODE_GPUS"] = gpus;
  spec.env["CUDA_VISIBLE_DEVICES"] = gpus;
  spec.cwd = patch.cwd;
  spec.deadline = std::chrono::milliseconds(std::max<int64_t>(1, patch.timeout_ms));
  spec.cancel = &g_stop;
  std::error_code ec;
  fs::create_directories(compute_dir / "patches", ec);
  spec.output_file = compute_dir / "patches" / (SafeJobName(node.name) + ".log");
  process::Outcome o = process::Run(std::move(spec));
  if (o.ok()) return "";
  if (o.cancelled) {
    *cancelled = true;
    return "the agent was told to stop";
  }
  return o.Describe(rollback ? "the rollback command" : "the patch command");
}

// A cgroup v2 leaf for one job directly under /sys/fs/cgroup (the root is
// exempt from the no-internal-processes rule), or empty when cgroups cannot
// be used here (not writable, no memory controller): then RLIMIT_AS.
fs::path MakeCgroup(const std::string& name, const JobSpec& job) {
  fs::path root = "/sys/fs/cgroup";
  // Only a writable cgroup v2 root whose children get the memory controller.
  std::ifstream controllers(root / "cgroup.subtree_control");
  std::string word;
  bool memory = false;
  while (controllers >> word) memory = memory || word == "memory";
  if (!memory || ::access(root.c_str(), W_OK) != 0) return {};
  fs::path leaf = root / ("plinth-" + name);
  std::error_code ec;
  fs::create_directory(leaf, ec);
  if (ec || !fs::exists(leaf / "memory.max")) {
    fs::remove(leaf, ec);
    return {};
  }
  auto write = [](const fs::path& p, const std::string& v) {
    std::ofstream f(p);
    f << v;
    return static_cast<bool>(f.flush());
  };
  bool ok = job.memory_bytes == 0 || write(leaf / "memory.max", std::to_string(job.memory_bytes));
  if (ok && fs::exists(leaf / "cpu.max"))
    ok = write(leaf / "cpu.max", std::to_string(job.cpus * 100000) + " 100000");
  if (!ok) {
    fs::remove(leaf, ec);
    return {};
  }
  return leaf;
}

struct Running {
  std::string id;
  int cpus = 0;
  uint64_t memory = 0;
  std::vector<int> gpus;
  std::atomic<bool> cancel{false};
  std::atomic<bool> infra{false};  // the agent stops it: an infrastructure failure
  std::atomic<bool> done{false};
  std::thread thread;
};

void RunJob(Queue& queue, const NodeState& node, Claimed c, Running* r) {
  const JobSpec& job = c.job.spec;
  std::error_code ec;
  fs::create_directories(c.dir, ec);
  ::chmod(c.dir.c_str(), 0700);
  fs::path log = c.dir / "log";
  {
    int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::string head =
          "--- plinth: attempt " + std::to_string(c.job.attempts) + " on node " + node.name + "\n";
      (void)!::write(fd, head.data(), head.size());
      ::close(fd);
    }
  }
  process::Spec spec;
  std::map<std::string, std::string> env = job.env;
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  if (!env.count("HOME")) env["HOME"] = std::getenv("HOME") ? std::getenv("HOME") : c.dir.string();
  env["PLINTH_JOB_ID"] = job.id;
  std::string visible;
  for (int g : c.gpus) {
    if (!visible.empty()) visible += ",";
    visible += std::to_string(g);
  }
  env["CUDA_VISIBLE_DEVICES"] = visible;  // empty: no GPU at all
  for (const auto& b : job.buckets) {
    std::string name = b.name;
    for (char& ch : name)
      ch = ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    env["PLINTH_BUCKET_" + name] = b.path;
  }
  std::string error;
  std::map<std::string, std::string> secrets;
  if (!queue.OpenSecrets(job.id, &secrets, &error)) {
    queue.FinishAttempt(job.id, c.job.attempts, "infrastructure", std::nullopt, std::nullopt, error);
    r->done = true;
    Wake();
    return;
  }
  for (auto& [k, v] : secrets) env[k] = std::move(v);
  process::WipeEnvironment(secrets);
  auto program = job.argv.empty() ? std::nullopt : process::FindExecutable(job.argv[0], env["PATH"]);
  if (!program) {
    process::WipeEnvironment(env);
    queue.FinishAttempt(job.id, c.job.attempts, "exit", 127, std::nullopt,
                        "cannot start " + (job.argv.empty() ? std::string("?") : job.argv[0]) +
                            ": not found on the job's PATH");
    r->done = true;
    Wake();
    return;
  }
  spec.program = *program;
  spec.args.assign(job.argv.begin() + 1, job.argv.end());
  spec.env = std::move(env);
  spec.cwd = c.dir;
  spec.output_file = log;
  spec.die_with_parent = true;
  spec.deadline = std::chrono::milliseconds(job.timeout_ms);
  spec.kill_grace = 10s;
  spec.cancel = &r->cancel;
  fs::path cgroup;
  if (job.memory_bytes > 0 || job.cpus > 0) cgroup = MakeCgroup(node.name + "-" + SafeJobName(job.id), job);
  if (!cgroup.empty()) {
    spec.cgroup = cgroup;
  } else if (job.memory_bytes > 0) {
    spec.address_space_limit = job.memory_bytes;
  }
  const std::string id = job.id;
  const int attempt = c.job.attempts;
  spec.on_start = [&queue, id, attempt](pid_t pid) {
    queue.RecordJobPid(id, attempt, pid, process::ProcessStartTime(pid).value_or(0));
  };
  process::Outcome o = process::Run(std::move(spec));
  if (!cgroup.empty()) fs::remove(cgroup, ec);
  if (r->infra.load()) {
    queue.FinishAttempt(id, attempt, "infrastructure", std::nullopt, std::nullopt,
                        "node " + node.name + " stopped while the job ran");
  } else if (o.cancelled) {
    queue.FinishAttempt(id, attempt, "cancelled", std::nullopt, std::nullopt, "cancelled");
  } else {
    std::optional<int> code =
        o.signal == 0 && o.exit_code >= 0 ? std::optional<int>(o.exit_code) : std::nullopt;
    std::optional<int> sig = o.signal != 0 ? std::optional<int>(o.signal) : std::nullopt;
    if (!o.started) code = 127;
    std::string what = job.argv[0];
    queue.FinishAttempt(id, attempt, "exit", code, sig, o.ok() ? "" : o.Describe(what));
  }
  r->done = true;
  Wake();
}

class GpuLocks {
 public:
  ~GpuLocks() {
    for (int fd : fds_) ::close(fd);
  }
  // Locks GPU `index` for the life of this object; false with *why when held.
  bool Lock(int index, std::string* why) {
    fs::path dir = GpuLockDir();
    std::error_code ec;
    fs::create_directories(dir, ec);
    fs::path p = dir / ("gpu-" + std::to_string(index) + ".lock");
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return *why = "cannot open " + p.string() + ": " + std::strerror(errno), false;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return *why = "GPU " + std::to_string(index) + " is held by another node (" + p.string() + ")", false;
    }
    fds_.push_back(fd);
    return true;
  }

 private:
  std::vector<int> fds_;
};

}  // namespace

int RunAgent(const fs::path& compute_dir, const std::string& node_name, QueueOptions options) {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::string error;
  auto queue = Queue::Open(compute_dir, options, false, &error);
  if (!queue) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  Queue& q = *queue;
  const fs::path db_path = compute_dir / "compute.db";
  struct stat db_st {};
  if (::stat(db_path.c_str(), &db_st) != 0) return 1;
  auto node = q.GetNode(node_name);
  if (!node) {
    std::fprintf(stderr, "error: no node %s in %s\n", node_name.c_str(), compute_dir.string().c_str());
    return 1;
  }
  q.RecordAgent(node_name, ::getpid(), process::ProcessStartTime(::getpid()).value_or(0));
  auto pool = q.GetPool(node->pool);
  if (!pool) return 0;
  // The node's CPUs and memory in the machine-wide ledger, held for the agent's life.
  NodeReservation reservation;
  auto fail = [&](const std::string& why) {
    reservation.Release();
    q.SetNodeState(node_name, "failed", why, true);
    q.AddEvent(node->pool, node_name, "", "node failed: " + why);
    std::string e;
    q.EnsureCapacity(node->pool, &e);  // provisions another node when work waits
    std::fprintf(stderr, "error: %s\n", why.c_str());
    return 1;
  };

  if (!reservation.Claim(q.compute_dir(), node_name, node->cpus, node->memory_bytes, &error))
    return fail(error);
  // GPUs: exclusive for the agent's life, then the health gate.
  GpuLocks locks;
  for (int g : node->gpus) {
    if (!locks.Lock(g, &error)) return fail(error);
  }
  // The health gate: each GPU probed at the pool's level; a GPU that fails is
  // quarantined for an hour. Empty when the node passed, else why not.
  auto health_gate = [&](const PoolSpec& spec) -> std::string {
    if (node->gpus.empty() || spec.health == HealthGate::kNone) return "";
    Inventory inv;
    std::string why;
    if (!DiscoverInventory(&inv, &why)) return "cannot read the inventory: " + why;
    for (int g : node->gpus) {
      auto it = std::find_if(inv.gpus.begin(), inv.gpus.end(), [&](const Gpu& x) { return x.index == g; });
      if (it == inv.gpus.end()) return "GPU " + std::to_string(g) + " is not in the inventory";
      why = ProbeGpu(*it, spec.health);
      if (!why.empty()) {
        q.Quarantine(g, NowMs() + 3600 * 1000, why);
        q.AddEvent(node->pool, node_name, "", "health gate failed: " + why + " (GPU quarantined for 1h)");
        return "health gate failed: " + why;
      }
    }
    return "";
  };
  // Brings the node to the pool's patch level (a new node: before its health
  // gate; a cordoned one: once drained). Empty when done, else why not (the
  // failure is recorded; the caller fails the node).
  auto patch_node = [&](const PoolSpec& spec, bool probe, bool* cancelled) -> std::string {
    const auto begin = std::chrono::steady_clock::now();
    auto me = q.GetNode(node_name);
    NodeState current = me ? *me : *node;
    std::string why = RunPatchCommand(q.compute_dir(), spec, current, /*rollback=*/false, cancelled);
    if (*cancelled) return why;
    if (why.empty() && probe && spec.health != HealthGate::kNone && !node->gpus.empty()) {
      q.MoveNode(node_name, "patching", "probing", "probing after patch level " + spec.patch.level);
      why = health_gate(spec);
    }
    const int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - begin)
                             .count();
    if (!why.empty()) {
      q.RecordPatchFailure(spec.id, spec.patch.level, node_name, why);
      q.AddEvent(spec.id, node_name, "", "patch level " + spec.patch.level + " failed: " + why);
      RecordAction(q.compute_dir(), spec, "replace node",
                   "node " + node_name + " failed patch level " + spec.patch.level + "; a replacement is provisioned",
                   why);
      if (q.PatchHalted(spec)) {
        const std::string count = std::to_string(q.PatchFailures(spec.id, spec.patch.level)) +
                                  " node(s) failed it (failure_threshold " +
                                  std::to_string(spec.patch.failure_threshold) + ")";
        q.AddEvent(spec.id, "", "",
                   "patch level " + spec.patch.level + " halted: " + count + "; apply another level to try again");
        RecordAction(q.compute_dir(), spec, "halt patch", "level " + spec.patch.level, count);
      }
      return "patch level " + spec.patch.level + " failed: " + why;
    }
    q.SetPatchLevel(node_name, spec.patch.level);
    q.AddEvent(spec.id, node_name, "",
               "patched to level " + spec.patch.level + " in " + SecondsText(took) +
                   (current.patch_level.empty() ? "" : " (from " + current.patch_level + ")"));
    if (probe)  // a running node (a new one's patch is part of its start)
      RecordAction(q.compute_dir(), spec, "patch",
                   "node " + node_name + " to level " + spec.patch.level +
                       (current.patch_level.empty() ? "" : " from " + current.patch_level),
                   spec.patch.window ? "maintenance window " + spec.patch.window->name + " open"
                                     : "the pool's patch level changed");
    return "";
  };

  // Takes a drained node at a halted level back to the level it had before
  // (the rollback_command, then the health gate). Empty when done, else why
  // not (the caller fails the node: a replacement joins).
  auto roll_back_node = [&](const PoolSpec& spec, bool* cancelled) -> std::string {
    const auto begin = std::chrono::steady_clock::now();
    auto me = q.GetNode(node_name);
    NodeState current = me ? *me : *node;
    std::string why = RunPatchCommand(q.compute_dir(), spec, current, /*rollback=*/true, cancelled);
    if (*cancelled) return why;
    if (why.empty() && spec.health != HealthGate::kNone && !node->gpus.empty()) {
      q.MoveNode(node_name, "patching", "probing", "probing after rolling back patch level " + spec.patch.level);
      why = health_gate(spec);
    }
    const std::string back_to = current.previous_patch_level.empty() ? "no level" : "level " + current.previous_patch_level;
    if (!why.empty()) {
      q.AddEvent(spec.id, node_name, "", "rollback of patch level " + spec.patch.level + " failed: " + why);
      RecordAction(q.compute_dir(), spec, "replace node",
                   "node " + node_name + " failed to roll back patch level " + spec.patch.level +
                       "; a replacement is provisioned",
                   why);
      return "rollback of patch level " + spec.patch.level + " failed: " + why;
    }
    q.SetPatchLevel(node_name, current.previous_patch_level);
    const int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - begin)
                             .count();
    q.AddEvent(spec.id, node_name, "",
               "rolled back from patch level " + spec.patch.level + " to " + back_to + " in " + SecondsText(took));
    RecordAction(q.compute_dir(), spec, "roll back patch",
                 "node " + node_name + " from level " + spec.patch.level + " to " + back_to,
                 "patch level " + spec.patch.level + " halted: " +
                     std::to_string(q.PatchFailures(spec.id, spec.patch.level)) + " node(s) failed it");
    return "";
  };

  // A new node joins at the pool's patch level: it has no work yet, so its
  // patch needs no window. The health gate follows as for any new node; its
  // failure is the node's (a bad GPU), not the patch's.
  if (!pool->patch.empty() && node->patch_level != pool->patch.level && !q.PatchHalted(*pool)) {
    q.SetNodeState(node_name, "patching", "new node: patch level " + pool->patch.level, false);
    bool cancelled = false;
    std::string why = patch_node(*pool, /*probe=*/false, &cancelled);
    if (cancelled) {
      reservation.Release();
      q.SetNodeState(node_name, "released", "stopped by a signal", true);
      return 0;
    }
    if (!why.empty()) return fail(why);
  }
  if (!node->gpus.empty() && pool->health != HealthGate::kNone) {
    q.SetNodeState(node_name, "probing", "", false);
    std::string why = health_gate(*pool);
    if (!why.empty()) return fail(why);
  }
  q.SetNodeState(node_name, "ready", "", false);
  q.AddEvent(node->pool, node_name, "", "ready");

  std::list<Running> running;
  int64_t last_busy = NowMs();
  int64_t last_probe = NowMs();
  auto next_reconcile = std::chrono::steady_clock::now();
  auto next_capacity = std::chrono::steady_clock::now();
  auto next_patch_check = std::chrono::steady_clock::now();
  int64_t drain_began_ms = 0;
  std::string exit_reason;
  for (;;) {
    // Reap finished jobs.
    for (auto it = running.begin(); it != running.end();) {
      if (it->done.load()) {
        it->thread.join();
        it = running.erase(it);
        last_busy = NowMs();
      } else {
        ++it;
      }
    }
    auto me = q.GetNode(node_name);
    if (!me || me->state == "lost" || me->state == "released" || me->state == "failed") {
      exit_reason = me ? "node marked " + me->state : "node removed";
      break;
    }
    if (g_stop.load()) {
      exit_reason = "stopped by a signal";
      break;
    }
    // The compute directory was removed (or replaced) under the agent: its
    // database is gone, and so is its node.
    struct stat now_st {};
    if (::stat(db_path.c_str(), &now_st) != 0 || now_st.st_ino != db_st.st_ino ||
        now_st.st_dev != db_st.st_dev) {
      exit_reason = "compute directory removed";
      break;
    }
    for (auto& r : running) {
      if (q.CancelRequested(r.id)) r.cancel = true;
    }
    if (std::chrono::steady_clock::now() >= next_reconcile) {
      q.Reconcile();
      next_reconcile = std::chrono::steady_clock::now() + 2s;
    }
    // Patching (docs/compute.md, "Patching nodes"): the pool's spec is read
    // again each second; a node behind its pool's level is cordoned while the
    // window is open and a slot is free, drained, patched, probed and put back.
    if (std::chrono::steady_clock::now() >= next_patch_check) {
      next_patch_check = std::chrono::steady_clock::now() + 1s;
      if (auto fresh = q.GetPool(node->pool)) pool = std::move(fresh);
      const PatchSpec& patch = pool->patch;
      // A halted level patches no node; with a rollback_command, the nodes
      // already at it go back to the level they had (docs/compute.md, "Rolling back").
      const bool halted = !patch.empty() && q.PatchHalted(*pool);
      const bool behind = !patch.empty() && !halted && me->patch_level != patch.level;
      const bool roll_back = halted && !patch.rollback_command.empty() && me->patch_level == patch.level;
      bool window_open = true;
      std::string window_why;
      if ((behind || roll_back) && patch.window) {
        std::string e;
        auto d = controller::DecideNamedWindow(*patch.window, NowMs() / 1000, &e);
        window_open = d && d->open;
        window_why = d ? "maintenance window " + patch.window->name + " closed (" + d->next + ")" : e;
      }
      if (me->state == "ready" && (behind || roll_back) && window_open && q.CordonForPatch(node_name)) {
        me->state = "draining";
        drain_began_ms = NowMs();
        q.AddEvent(node->pool, node_name, "",
                   (roll_back ? "cordoned to roll back patch level " : "cordoned for patch level ") + patch.level +
                       "; draining " + std::to_string(running.size()) + " running job(s)");
      } else if (me->state == "draining" && (!(behind || roll_back) || !window_open)) {
        const std::string why = !window_open ? window_why
                                : halted     ? "patch level " + patch.level + " halted"
                                             : "the pool's patch level changed";
        if (q.MoveNode(node_name, "draining", "ready", "")) {
          me->state = "ready";
          q.AddEvent(node->pool, node_name, "", "uncordoned before its patch: " + why);
        }
      }
      if (me->state == "draining" && running.empty() &&
          q.MoveNode(node_name, "draining", "patching",
                     (roll_back ? "rolling back patch level " : "patch level ") + patch.level)) {
        q.AddEvent(node->pool, node_name, "",
                   "drained in " + SecondsText(NowMs() - drain_began_ms) +
                       (roll_back ? "; rolling back patch level " : "; patching to level ") + patch.level);
        bool cancelled = false;
        std::string why = roll_back ? roll_back_node(*pool, &cancelled) : patch_node(*pool, /*probe=*/true, &cancelled);
        if (cancelled) {
          exit_reason = "stopped by a signal";
          break;
        }
        if (!why.empty()) {
          reservation.Release();
          q.SetNodeState(node_name, "failed", why, true);
          q.AddEvent(node->pool, node_name, "", "node failed: " + why);
          std::string e;
          q.EnsureCapacity(node->pool, &e);  // a replacement when work waits or min_nodes asks
          std::fprintf(stderr, "error: %s\n", why.c_str());
          return 1;
        }
        q.MoveNode(node_name, "patching", "ready", "");
        q.MoveNode(node_name, "probing", "ready", "");
        me->state = "ready";
        last_busy = NowMs();
        last_probe = NowMs();
      }
    }
    // The health gate again on an idle GPU node every health_recheck (docs/compute.md,
    // "Health gate"): a GPU that went bad fails the node before work lands on it.
    if (pool->health_recheck_ms > 0 && me->state == "ready" && running.empty() && !node->gpus.empty() &&
        pool->health != HealthGate::kNone && NowMs() - last_probe >= pool->health_recheck_ms &&
        q.MoveNode(node_name, "ready", "probing", "periodic health check")) {
      std::string why = health_gate(*pool);
      last_probe = NowMs();
      if (!why.empty()) {
        reservation.Release();
        q.SetNodeState(node_name, "failed", "periodic " + why, true);
        q.AddEvent(node->pool, node_name, "", "node failed: periodic " + why);
        RecordAction(q.compute_dir(), *pool, "replace node",
                     "node " + node_name + " failed its periodic health check; a replacement is provisioned when "
                     "work waits or min_nodes asks",
                     why);
        std::string e;
        q.EnsureCapacity(node->pool, &e);
        std::fprintf(stderr, "error: periodic %s\n", why.c_str());
        return 1;
      }
      q.MoveNode(node_name, "probing", "ready", "");
    }
    // Claim what fits the free part of the node (a cordoned node takes none).
    for (; me->state == "ready";) {
      int cpus = node->cpus;
      uint64_t memory = node->memory_bytes;
      std::vector<int> gpus = node->gpus;
      for (const auto& r : running) {
        cpus -= r.cpus;
        memory -= std::min(memory, r.memory);
        for (int g : r.gpus) gpus.erase(std::remove(gpus.begin(), gpus.end(), g), gpus.end());
      }
      auto c = q.Claim(*node, cpus, node->memory_bytes == 0 ? 0 : std::max<uint64_t>(memory, 1), gpus);
      if (!c) break;
      Running& r = running.emplace_back();
      r.id = c->job.spec.id;
      r.cpus = c->job.spec.cpus;
      r.memory = c->job.spec.memory_bytes;
      r.gpus = c->gpus;
      last_busy = NowMs();
      r.thread = std::thread(RunJob, std::ref(q), *node, std::move(*c), &r);
    }
    if (!running.empty()) last_busy = NowMs();
    // Work this node cannot take now: let the pool grow.
    if (std::chrono::steady_clock::now() >= next_capacity && q.AnyPendingEligible(node->pool)) {
      std::string e;
      q.EnsureCapacity(node->pool, &e);
      next_capacity = std::chrono::steady_clock::now() + 1s;
    }
    if (running.empty() && NowMs() - last_busy >= pool->idle_ms) {
      if (q.Decommission(node_name, "decommissioned after " + DurationText(pool->idle_ms) + " idle")) {
        exit_reason = "idle";
        break;
      }
      last_busy = NowMs();  // below min_nodes or work arrived: stay
    }
    std::unique_lock lock(g_wake_mu);
    g_wake.wait_for(lock, 100ms, [] { return g_woken; });
    g_woken = false;
  }
  // Stopping with jobs running: they end as infrastructure failures (retried elsewhere).
  for (auto& r : running) {
    r.infra = true;
    r.cancel = true;
  }
  for (auto& r : running) r.thread.join();
  if (exit_reason == "stopped by a signal") {
    q.SetNodeState(node_name, "released", "stopped by a signal", true);
    q.AddEvent(node->pool, node_name, "", "released: stopped by a signal");
  }
  // The node's CPUs and memory are free: pools of this workspace whose jobs
  // wait get their chance now (other workspaces' on their next Reconcile).
  reservation.Release();
  if (exit_reason == "stopped by a signal" || exit_reason == "idle") {
    for (const PoolSpec& p : q.ListPools()) {
      bool own = p.id == node->pool && exit_reason == "stopped by a signal";
      if (!own && !q.AnyPendingEligible(p.id)) continue;
      std::string e;
      q.EnsureCapacity(p.id, &e);
    }
  }
  return 0;
}

}  // namespace plinth::compute
