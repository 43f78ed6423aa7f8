// The compute queue of a workspace (docs/compute.md, "How jobs run on the
// local provider"): one SQLite database, <compute dir>/compute.db (WAL,
// synchronous=NORMAL, busy_timeout 5 s, mode 0600 under 0700 directories),
// shared by every plinth process of the workspace and by its node agents.
//
// Tables: pools (id, spec JSON, updated), nodes (one row per node ever
// provisioned: its agent's pid and start time, its GPUs, state, times,
// reason), jobs (spec JSON, status, counters, node, pid/pgid and start time
// of the current attempt, exit code or signal, reason, the sealed secrets),
// quarantine (GPUs that failed a health gate, until when) and events (every
// transition with its reason).
//
// Rules kept here:
//  * a claim is one BEGIN IMMEDIATE transaction that sets status running and
//    the node, so a job never runs twice at once;
//  * Reconcile is idempotent: an agent whose pid no longer has the recorded
//    start time is gone; its node becomes "lost", what is left of its jobs'
//    groups is killed (by group, session and start time, never a reused pid)
//    and each job is requeued as an infrastructure failure while its retries
//    allow, else failed with "node lost";
//  * secret values are sealed with the workspace key (AAD binds the job id)
//    and dropped when the job ends; they are never in an event, a reason, a
//    log or an error.
//
// Thread safety: one Queue may be used by many threads (calls are
// serialised); many processes may open the same database.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "runtime/compute/spec.h"

struct sqlite3;

namespace plinth::compute {

struct NodeState {
  // provisioning|probing|ready|draining|patching|failed|released|lost; draining and patching: cordoned
  // for a patch (docs/compute.md, "Patching nodes"), live but taking no new job.
  std::string name, pool, state, reason;
  int shape = 0, cpus = 0;
  uint64_t memory_bytes = 0;
  std::vector<int> gpus;
  std::string gpu_type;
  int pid = 0;
  int64_t started_at_ms = 0, last_busy_at_ms = 0, ended_at_ms = 0;
  std::string patch_level;  // the pool's patch level this node reached ("" = none)
  std::string previous_patch_level;  // the level it had before (a rollback returns to it)
};

struct Event {
  int64_t at_ms;
  std::string pool, node, job, text;
};

struct QueueOptions {
  std::filesystem::path agent_program;  // executable that takes `compute agent ...`; default /proc/self/exe
  std::filesystem::path workspace_key;  // seals secrets
};

// The lock directory of GPU flock files: $PLINTH_GPU_LOCK_DIR, else
// /run/plinth/gpu-locks as root, else $XDG_RUNTIME_DIR/plinth/gpu-locks, else
// /tmp/plinth-<uid>/gpu-locks.
std::filesystem::path GpuLockDir();

// A job id as a file name: every character but [A-Za-z0-9._-] becomes '_'.
std::string SafeJobName(const std::string& job_id);

// A job the agent has claimed (Queue::Claim).
struct Claimed {
  JobState job;
  std::vector<int> gpus;      // the node's GPUs given to it (CUDA_VISIBLE_DEVICES)
  std::filesystem::path dir;  // <compute dir>/jobs/<safe id>
};

class Queue {
 public:
  // Opens (create=true: creates) <compute_dir>/compute.db. Error text on failure.
  static std::unique_ptr<Queue> Open(const std::filesystem::path& compute_dir, QueueOptions options,
                                     bool create, std::string* error);
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  bool PutPool(const PoolSpec& pool, std::string* error);  // insert or update; starts min_nodes nodes
  // Refuses (false, *error says why) while jobs of the pool are pending/running unless force; stops its
  // agents (and with force cancels its active jobs) and waits for them to exit.
  bool RemovePool(const std::string& pool_id, bool force, std::string* error);
  std::optional<PoolSpec> GetPool(const std::string& pool_id);
  std::vector<PoolSpec> ListPools();
  // Inserts the job (status pending) and calls EnsureCapacity. A job whose id exists: returned as it is,
  // except a failed/cancelled one, which is reset to pending and run again. `secrets` values are sealed.
  std::optional<JobState> Submit(const JobSpec& job, std::map<std::string, std::string> secrets,
                                 std::string* error);
  std::optional<JobState> GetJob(const std::string& job_id);
  std::vector<JobState> ListJobs(const std::string& pool_id /* "" = all */);
  // How many jobs of the pool ("" = all) have each status (statuses with none are absent). Reads only
  // the index, no job spec: cheap enough to poll.
  std::map<JobStatus, int> CountJobs(const std::string& pool_id);
  bool Cancel(const std::string& job_id,
              std::string* error);  // pending: cancelled; running: group SIGTERM, grace 10 s, SIGKILL
  bool RemoveJob(const std::string& job_id,
                 std::string* error);  // cancels if active, deletes the row and its files
  // Blocks until the job is terminal or `stop`; `progress` called with each status change.
  std::optional<JobState> Wait(const std::string& job_id, std::stop_token stop,
                               const std::function<void(const JobState&)>& progress);
  std::vector<NodeState> ListNodes(const std::string& pool_id, bool include_ended);
  std::vector<Event> Events(const std::string& pool_id, size_t limit);  // newest last
  void Reconcile();  // finds dead agents/lost jobs (see Failures)
  bool EnsureCapacity(const std::string& pool_id, std::string* error);

  // ---- Added members (beyond the design's API) ----
  const std::filesystem::path& compute_dir() const { return dir_; }
  // Events of one job (newest last).
  std::vector<Event> JobEvents(const std::string& job_id, size_t limit);

  // ---- For the node agent (agent.cpp); not for other callers ----
  std::optional<NodeState> GetNode(const std::string& name);
  // Records the agent's own pid and start time and a new state for the node.
  bool SetNodeState(const std::string& name, const std::string& state, const std::string& reason, bool ended);
  bool RecordAgent(const std::string& name, pid_t pid, uint64_t start);
  void Quarantine(int gpu, int64_t until_ms, const std::string& reason);
  // Claims the first pending job of the node's pool (FIFO, `after` satisfied) that fits the free
  // resources given; cancels jobs whose dependencies failed. nullopt: none.
  std::optional<Claimed> Claim(const NodeState& node, int free_cpus, uint64_t free_memory,
                               const std::vector<int>& free_gpus);
  // Records the child's pid (group) and start time for the running attempt.
  void RecordJobPid(const std::string& job_id, int attempt, pid_t pid, uint64_t start);
  bool CancelRequested(const std::string& job_id);
  // The attempt ended. kind: "exit" (program outcome), "infrastructure" (the node stopped it), "cancelled".
  void FinishAttempt(const std::string& job_id, int attempt, const std::string& kind,
                     std::optional<int> exit_code, std::optional<int> signal, const std::string& reason);
  // Opens the job's secrets (only for the spawn). Empty when it has none.
  bool OpenSecrets(const std::string& job_id, std::map<std::string, std::string>* out, std::string* error);
  // Whether the pool has eligible pending jobs (deps met).
  bool AnyPendingEligible(const std::string& pool_id);
  // Marks the node released after `idle` unless that would leave the pool below min_nodes or it has work.
  bool Decommission(const std::string& name, const std::string& reason);
  void AddEvent(const std::string& pool, const std::string& node, const std::string& job,
                const std::string& text);

  // ---- Patching nodes (docs/compute.md, "Patching nodes"); for the agent ----
  // Cordons a ready node for its pool's patch (state draining) when fewer than
  // PatchSpec::Allowed(live nodes) of the pool are cordoned: a node behind the
  // level while it is not halted, or, once it is halted and the patch has a
  // rollback_command, a node at it (to be rolled back); one transaction, so
  // agents racing for the last slot take it once.
  bool CordonForPatch(const std::string& name);
  // Moves the node from `from` to `to` (with `reason`) only if it is still in
  // `from`: a node released or lost meanwhile stays so.
  bool MoveNode(const std::string& name, const std::string& from, const std::string& to,
                const std::string& reason);
  // The node's level becomes `level`; the one it had becomes its previous_patch_level.
  bool SetPatchLevel(const std::string& name, const std::string& level);
  void RecordPatchFailure(const std::string& pool, const std::string& level, const std::string& node,
                          const std::string& reason);
  // Nodes that failed `level` of the pool.
  int PatchFailures(const std::string& pool, const std::string& level);
  // failure_threshold nodes failed the pool's level: no node is patched to it any more.
  bool PatchHalted(const PoolSpec& pool);

 private:
  Queue() = default;
  bool Init(bool create, std::string* error);
  bool EnsureCapacityLocked(const std::string& pool_id, std::string* error);
  void ReconcileLocked();
  bool SpawnAgent(const std::string& node, std::string* error);

  std::filesystem::path dir_;
  QueueOptions options_;
  sqlite3* db_ = nullptr;
  std::recursive_mutex mu_;
  int64_t last_checkpoint_ms_ = 0;  // this connection's last WAL checkpoint (Init's WAL hook)
};

// The hidden command `plinth compute agent --compute-dir=D --node=NAME`:
// runs the node until it idles out, is removed, is told to stop (SIGTERM)
// or fails its health gate. Returns the process exit code.
int RunAgent(const std::filesystem::path& compute_dir, const std::string& node, QueueOptions options);

}  // namespace plinth::compute
