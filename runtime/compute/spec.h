// Compute pools and jobs as plain data (docs/compute.md): what a pool offers
// (ordered candidate shapes, node counts, idle time, health gate) and what a
// job asks for (argv, per-task resources, retries, timeout, dependencies).
// Shared by the local provider (runtime/providers/local/), the queue and node
// agents (runtime/compute/), the Slurm boundary and the CLI; nothing here
// knows the configuration language or a provider.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/controller/maintenance.h"

namespace plinth::compute {

// An accelerator request or offer: "H100:8" (type and count), "8" (any
// GPU type), "qpu-sim:24" (a state-vector simulator of 24 qubits on the
// node's host or GPU memory). Empty type with a count: any type.
struct Accelerators {
  std::string type;  // "H100", "A100", "qpu-sim"; "" = any GPU
  int count = 0;     // GPUs, or qubits for qpu-sim
  bool IsQpuSim() const { return type == "qpu-sim"; }
  bool empty() const { return count == 0; }
};

// "" -> {} (none); "H100:8" -> {"H100", 8}; "4" -> {"", 4};
// "qpu-sim:24" -> {"qpu-sim", 24}. Counts 1..4096 (qubits 1..64). The
// type is kept as written (matching is case-insensitive). On error: nullopt
// and *why says what is wrong ("count must be a whole number from 1",
// "write TYPE:COUNT, e.g. \"H100:8\"").
inline std::optional<Accelerators> ParseAccelerators(std::string_view text, std::string* why) {
  Accelerators a;
  if (text.empty()) return a;
  std::string_view count = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    a.type = std::string(text.substr(0, colon));
    count = text.substr(colon + 1);
    bool ok_type = !a.type.empty();
    for (char c : a.type) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.'))
        ok_type = false;
    }
    if (!ok_type) {
      if (why) *why = "accelerator type '" + a.type + "' is not a name: write TYPE:COUNT, e.g. \"H100:8\"";
      return std::nullopt;
    }
  }
  int64_t n = 0;
  bool digits = !count.empty() && count.size() <= 5;
  for (char c : count) {
    if (c < '0' || c > '9')
      digits = false;
    else
      n = n * 10 + (c - '0');
  }
  const int64_t max = a.IsQpuSim() ? 64 : 4096;
  if (!digits || n < 1 || n > max) {
    if (why)
      *why = "accelerator count '" + std::string(count) + "' must be a whole number from 1 to " +
             std::to_string(max) + ": write TYPE:COUNT, e.g. \"H100:8\"";
    return std::nullopt;
  }
  a.count = static_cast<int>(n);
  return a;
}

// One candidate node shape of a pool, tried in order.
struct Shape {
  int cpus = 1;
  uint64_t memory_bytes = 0;  // 0: not limited
  Accelerators accelerators;  // empty: a CPU node
  std::string region;         // the region's name; "" = the pool's region
};

enum class HealthGate { kNone, kQuick, kFull };  // which GPU probe admits a node (docs/gpu.md)

// A pool's `patch` block (docs/compute.md, "Patching nodes"): the level its
// nodes should be at and the command that brings a node there. A new node
// runs the command before its health gate; a node that is running is
// cordoned (takes no new job), drained (its running jobs finish), patched,
// probed again and put back, at most max_unavailable at a time and only while
// the window is open. failure_threshold failed nodes halt the level.
struct PatchSpec {
  std::string level;                 // "": no patch policy
  std::vector<std::string> command;  // argv; argv[0] an absolute path (the provider resolves it)
  // argv that takes a node back to the level it had before this one, run on
  // the nodes already at a halted level; empty: a halted level stays where it is.
  std::vector<std::string> rollback_command;
  std::string cwd;                   // the command's working directory ("" = the agent's)
  int64_t timeout_ms = 10 * 60 * 1000;
  int max_unavailable = 1;          // nodes at once, or
  int max_unavailable_percent = 0;  // > 0: this percent of the live nodes (rounded up, at least 1)
  int failure_threshold = 1;
  std::optional<controller::NamedWindow> window;  // unset: any time
  bool empty() const { return level.empty(); }
  // How many of `live` nodes may be cordoned for a patch at once (at least 1).
  int Allowed(int live) const {
    int n = max_unavailable_percent > 0 ? (live * max_unavailable_percent + 99) / 100 : max_unavailable;
    return n < 1 ? 1 : n;
  }
};

// A patch policy as JSON (null when empty) and back: what the queue records
// with a pool, and what the controller reads for a Slurm pool's patch
// (runtime/slurm/patch.h).
nlohmann::json PatchJson(const PatchSpec& p);
PatchSpec PatchFromJson(const nlohmann::json& j);

struct PoolSpec {
  std::string id;             // "<region>/<pool>": the pool's provider id
  std::string region;         // the pool's region (name)
  std::string name;           // the pool's name
  std::vector<Shape> shapes;  // at least one; the first that has capacity wins
  int min_nodes = 0;
  int max_nodes = 1;
  int64_t idle_ms = 10 * 60 * 1000;  // an idle node is decommissioned after this
  HealthGate health = HealthGate::kQuick;
  // > 0: an idle node probes its GPUs again this long after its last probe;
  // a failure fails the node (docs/compute.md, "Health gate").
  int64_t health_recheck_ms = 0;
  PatchSpec patch;
};

struct Retries {
  int infrastructure = 3;  // node lost, preempted, failed health gate: the job is not to blame
  int program = 0;         // the program exited non-zero, was killed by a signal or ran past its timeout
};

// A bucket a job reads or writes; the job gets its path in its environment
// as PLINTH_BUCKET_<NAME> (name upper-cased, '-' as '_').
struct BucketAccess {
  std::string name;
  std::string path;
  bool write = false;
};

struct JobSpec {
  std::string id;                 // stable: the provider id (docs/compute.md, "Job ids")
  std::string name;               // for people: the address or --name
  std::string pool;               // PoolSpec::id
  std::vector<std::string> argv;  // argv[0] is looked up on the job's PATH when it has no '/'
  int cpus = 1;
  uint64_t memory_bytes = 0;  // 0: the node's share
  int gpus = 0;
  std::map<std::string, std::string> env;  // plain values; recorded
  // Names of sensitive variables. Their values are never in this struct,
  // the queue's plain columns, logs or state (docs/compute.md, "Secrets").
  std::vector<std::string> secret_names;
  std::string principal;  // who the job acts as for bucket grants
  std::vector<BucketAccess> buckets;
  Retries retries;
  int64_t timeout_ms = 0;          // 0: none
  std::vector<std::string> after;  // job ids that must succeed first
};

enum class JobStatus { kPending, kProvisioning, kRunning, kSucceeded, kFailed, kCancelled };

inline const char* JobStatusName(JobStatus s) {
  switch (s) {
    case JobStatus::kPending: return "pending";
    case JobStatus::kProvisioning: return "provisioning";
    case JobStatus::kRunning: return "running";
    case JobStatus::kSucceeded: return "succeeded";
    case JobStatus::kFailed: return "failed";
    case JobStatus::kCancelled: return "cancelled";
  }
  return "pending";
}

inline bool IsTerminal(JobStatus s) {
  return s == JobStatus::kSucceeded || s == JobStatus::kFailed || s == JobStatus::kCancelled;
}

// What a job's record says now (read back by refresh, `plinth job ls`).
struct JobState {
  JobSpec spec;
  JobStatus status = JobStatus::kPending;
  std::optional<int> exit_code;  // the last attempt's, when it exited
  std::optional<int> signal;     // the last attempt's, when a signal ended it
  int infrastructure_failures = 0;
  int program_failures = 0;
  int attempts = 0;             // runs started
  std::string reason;           // why it is pending, failed or cancelled, for people
  std::string node;             // the node of the current or last attempt
  int64_t submitted_at_ms = 0;  // Unix time, milliseconds
  int64_t started_at_ms = 0;    // 0: never started
  int64_t finished_at_ms = 0;   // 0: not finished
  std::string log_path;         // the last attempt's output (stdout and stderr)
};

}  // namespace plinth::compute
