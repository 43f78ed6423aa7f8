// The `slurm` provider (docs/providers/slurm.md): `slurm_pool`, a partition
// of a Slurm cluster read through scontrol, and `slurm_job`, a batch job
// submitted with sbatch and followed through scontrol / sacct, through the
// client in runtime/slurm/client.h.
//
// Ownership: the partition and its nodes are the cluster's (slurm.conf);
// Plinth reads them and never changes them: a pool's Delete forgets it. A
// job is Plinth's: Create submits it, Delete cancels it while Slurm still
// runs it.
//
// Secrets: a job's secret_env values go only into sbatch's environment,
// exported by name (the client's contract); the state keeps keyed digests
// (compute_config::WithSecretDigests, the same as the local provider's jobs).
//
// Plan-time reads: planning a new pool (or one whose partition changes)
// reads the partition, its nodes and SuspendTime with scontrol; an existing
// pool keeps the values its last refresh read, so a plan never shows node
// state changes as a diff. A job's Validate checks its GPUs and CPUs
// against the pool's planned nodes when they are known.
//
// Thread safety: every method may be called concurrently (each call runs its
// own commands; the provider keeps no mutable state).
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>

#include "runtime/provider/provider.h"
#include "runtime/slurm/client.h"

namespace plinth::runtime {

struct SlurmSettings {
  slurm::ClientOptions client;    // SLURM_CONF and where the commands are
  std::string default_partition;  // a slurm_pool's partition when it sets none
  // The workspace key file for secret digests (runtime/storage/keys.h).
  std::filesystem::path workspace_key;
  // Where a pool's patch plan goes (runtime/slurm/patch.h: <compute dir>/slurm-patch)
  // and the directory its patch commands are relative to (the configuration's).
  std::filesystem::path compute_dir, config_dir;
  // Set on the first Ctrl-C: a waiting job's create stops waiting (the job
  // goes on in Slurm) and records the job as it is. May be null.
  const std::atomic<bool>* stop = nullptr;
  std::chrono::milliseconds poll{500};  // between job queries while waiting
};

class SlurmProvider : public Provider {
 public:
  explicit SlurmProvider(SlurmSettings settings);

  std::string Name() const override { return "slurm"; }
  const SchemaSource& Schemas() const override;

  // Pools: a partition name that is empty or has spaces, or none at all.
  // Jobs: compute_config::ValidateJob's checks (command, cpus, gpus, memory,
  // env names, retries), `after` entries that are not slurm_job references,
  // and per-task gpus / cpus / memory above what the pool's nodes offer when
  // the pool's planned values know them.
  std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const override;
  Result<PlanResponse> PlanChange(const PlanRequest& request) override;
  Result<ResourceObject> Create(const std::string& type, const ValueMap& planned) override;
  Result<std::optional<ResourceObject>> Read(const std::string& type, const std::string& id,
                                             const ValueMap& prior) override;
  Result<ResourceObject> Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                const ValueMap& planned) override;
  Result<Done> Delete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  // Two jobs with one id (same pool, name and configuration).
  std::vector<PlanConflict> CheckPlan(const std::vector<PlanItem>& items) override;
  // Jobs: secret_env's values become keyed digests.
  ValueMap StateValues(const std::string& type, const ValueMap& attributes) override;
  // Pools by partition name; jobs are not imported.
  Result<ResourceObject> Import(const std::string& type, const std::string& id) override;

  // A pool's computed values read from the cluster into `attrs`: max_nodes,
  // cpus_per_node, memory_per_node, gpus_per_node, gpu_type, max_gpus,
  // idle, placement, nodes. A missing partition is an error naming it.
  std::optional<ProviderError> DescribePartition(const std::string& partition, ValueMap& attrs);

  // The placement lines of `nodes` (exposed for tests): nodes grouped by
  // state, in order of first appearance, "gpu[1-3]: powered down (idle~),
  // resumed when a job needs them"; drained and down nodes one per line
  // with their reason.
  static std::vector<std::string> PlacementLines(const std::vector<slurm::SlurmNode>& nodes);

 private:
  Result<ResourceObject> WritePool(const ValueMap& planned);
  Result<ResourceObject> CreateJob(const ValueMap& planned);
  Result<std::optional<ResourceObject>> ReadJob(const std::string& id, const ValueMap& prior);
  Result<Done> DeleteJob(const ValueMap& prior);

  SlurmSettings settings_;
};

}  // namespace plinth::runtime
