// Rolling patches of a Slurm partition's nodes (docs/providers/slurm.md,
// "Patching nodes"): a `slurm_pool` with a `patch` block keeps its nodes at
// a level, like a local pool (docs/compute.md, "Patching nodes"), but Slurm
// has no Plinth agent on its nodes, so the leading controller drives it.
//
// Input: the patch plans apply writes (<compute dir>/slurm-patch/<partition>.json:
// the pool's address, its partition, its PatchSpec with absolute commands,
// how to reach Slurm) and the cluster as scontrol shows it. Output: Slurm
// node states (scontrol update State=DRAIN / State=RESUME with Plinth's
// reason), the patch and rollback commands run on this machine, and the
// progress in <compute dir>/slurm-patch/progress.db (SQLite): each node's
// level, previous level and phase, and the nodes that failed each level.
//
// Each pass (Step), for one plan:
//  - a node whose patch (or rollback) command ended: on success it records
//    the level and is resumed; on failure it stays drained with the reason
//    and counts against failure_threshold (reaching it halts the level);
//  - a node Plinth drained that Slurm reports drained (no job left): its
//    command starts (in a thread of this process, killed at the patch's
//    timeout); a node still draining when the window closes is resumed;
//  - while the window is open, nodes behind the level are drained, idle ones
//    first, so that at most max_unavailable (N or N% of the partition's
//    nodes) are draining or patching; with a halted level and a
//    rollback_command, the nodes at it are drained and rolled back instead.
//
// Invariants: Plinth drains only nodes that no one else drained (a node
// drained by an admin or a failed health check is left alone, unless the
// reason is Plinth's own); a controller that stops mid-patch leaves the node
// drained in phase "patching", and the next leader runs its command again
// (commands must be safe to repeat); the running jobs of a draining node
// finish (Slurm's drain), never killed.
//
// Thread safety: a SlurmPatcher is driven by one thread (the controller's
// loop); its command threads only touch their own Worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/compute/spec.h"
#include "runtime/slurm/client.h"

struct sqlite3;

namespace plinth::slurm {

struct SlurmPatchPlan {
  std::string pool;       // the slurm_pool's address, "slurm_pool.gpu" (history's subject)
  std::string partition;  // the partition whose nodes are patched
  compute::PatchSpec patch;
  ClientOptions client;
};

nlohmann::json PatchPlanJson(const SlurmPatchPlan& p);
std::optional<SlurmPatchPlan> PatchPlanFromJson(const nlohmann::json& j);

// <compute dir>/slurm-patch: where the plans and the progress live.
std::filesystem::path PatchDir(const std::filesystem::path& compute_dir);
// Writes (atomically, 0600) or removes the plan of `partition`.
bool WritePatchPlan(const std::filesystem::path& compute_dir, const SlurmPatchPlan& plan, std::string* error);
void RemovePatchPlan(const std::filesystem::path& compute_dir, const std::string& partition);
// Every plan under `compute_dir`, by partition; unreadable files are skipped
// and named in *error.
std::vector<SlurmPatchPlan> ReadPatchPlans(const std::filesystem::path& compute_dir, std::string* error);

// Whether a node in Slurm state `state` ("IDLE+DRAIN", "MIXED+DRAIN",
// "IDLE+DRAIN+POWERED_DOWN") is drained: the DRAIN flag with no job left
// (its base state IDLE or DOWN).
bool Drained(const std::string& state);

class SlurmPatcher {
 public:
  // Opens (creating) <compute dir>/slurm-patch/progress.db.
  static std::unique_ptr<SlurmPatcher> Open(const std::filesystem::path& compute_dir, std::string* error);
  ~SlurmPatcher();  // stops the commands still running (their nodes stay in phase "patching")
  SlurmPatcher(const SlurmPatcher&) = delete;
  SlurmPatcher& operator=(const SlurmPatcher&) = delete;

  struct Action {
    std::string kind;  // "patch", "halt patch", "roll back patch"
    std::string detail, reason;
  };
  struct StepResult {
    std::vector<Action> actions;  // for plinth history
    std::vector<std::string> events;  // one line each, for the controller's log
    std::string summary;              // "gpu: 2 of 4 nodes at level 2026-12 (1 patching)"
    std::string error;                // Slurm could not be read or changed
  };
  // One pass over `plan` at wall-clock `now_ms` (see the file comment).
  StepResult Step(const SlurmPatchPlan& plan, Client& client, int64_t now_ms);

  struct NodeProgress {
    // phase: "", "draining", "patching", "rolling back", "resuming" (its command done), "failed"
    std::string node, level, previous_level, phase;
  };
  std::vector<NodeProgress> Progress(const std::string& partition);
  int Failures(const std::string& partition, const std::string& level);

  // Waits (up to `timeout_ms`) until no command runs: for tests.
  bool WaitIdle(int64_t timeout_ms);

 private:
  SlurmPatcher() = default;
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
    std::string result;  // empty: succeeded
    bool rollback = false;
    std::string level;   // the level the command brings the node to (a rollback: the one it leaves)
  };
  void Start(const SlurmPatchPlan& plan, const NodeProgress& node, bool rollback);
  void SetNode(const std::string& partition, const NodeProgress& n);
  std::filesystem::path dir_;
  sqlite3* db_ = nullptr;
  std::atomic<bool> stop_{false};
  std::map<std::string, std::unique_ptr<Worker>> workers_;  // by "<partition>/<node>"
};

}  // namespace plinth::slurm
