#include "runtime/providers/slurm/schema.h"

#include "compiler/schema/builders.h"
#include "runtime/providers/local/schema.h"

namespace plinth {
namespace {

using namespace schema;  // NOLINT: the builders read as a declaration language here

ResourceSchema Pool() {
  ResourceSchema s{
      "slurm_pool",
      "slurm",
      "A partition of a Slurm cluster as a compute pool: its nodes (usually CLOUD nodes that Slurm's power "
      "saving resumes through plinth compute resume) run slurm_job resources. The partition is the "
      "cluster's: Plinth reads it and never creates, changes or deletes it (docs/providers/slurm.md).",
      {}};
  s.body.attributes = {
      ForceNew(Attr("partition", Type::String(), AttrMode::Optional,
                    "The partition's name; it must exist (scontrol show partition). Unset: the provider "
                    "block's partition.")),
      Attr("labels", Type::Map(Type::String()), AttrMode::Optional, "Free-form labels."),
      Attr("max_nodes", Type::Int(), AttrMode::Computed, "The partition's node count (scontrol)."),
      Attr("cpus_per_node", Type::Int(), AttrMode::Computed,
           "CPUs of the partition's smallest node (CPUTot)."),
      Attr("memory_per_node", Type::Size(), AttrMode::Computed,
           "Memory of the partition's smallest node (RealMemory)."),
      Attr("gpus_per_node", Type::Int(), AttrMode::Computed,
           "GPUs of the partition's largest node (its gpu gres); 0 on a CPU partition."),
      Attr("gpu_type", Type::String(), AttrMode::Computed,
           "The GPU type the nodes' gres name (\"H100\"); empty when untyped or mixed."),
      Attr("max_gpus", Type::Int(), AttrMode::Computed, "GPUs of all the partition's nodes together."),
      Attr("idle", Type::Duration(), AttrMode::Computed,
           "Slurm's SuspendTime (scontrol show config): how long a node stays idle before Slurm powers it "
           "down. Read-only: it is the cluster's setting (slurm.conf); null when power saving is off."),
      Attr("placement", Type::List(Type::String()), AttrMode::Computed,
           "The partition's nodes by state, one line per state, as last read: powered down (idle~), idle, "
           "allocated, drained (with the reason) or down."),
      Attr("nodes", Type::Int(), AttrMode::Computed, "Nodes powered up now, read back by refresh."),
  };
  s.body.blocks = {
      {"patch", false, "", 0, 1, PatchBody(/*slurm=*/true),
       "Patching the partition's nodes (docs/providers/slurm.md, \"Patching nodes\"): the leading "
       "controller drains a node behind the level (scontrol; its jobs finish), runs the command on this "
       "machine, and resumes it, at most max_unavailable at a time, inside the window."},
  };
  return s;
}

ResourceSchema Job() {
  ResourceSchema s{
      "slurm_job",
      "slurm",
      "A batch job submitted to a slurm_pool's partition with sbatch: a command with per-task CPUs, memory "
      "and GPUs, dependencies (afterok), retries by cause and a timeout. Every configurable attribute is "
      "force-new: a changed input is a new run, with a new id (docs/compute.md).",
      {}};
  s.body.attributes = {
      ForceNew(Ref("pool", "slurm_pool", AttrMode::Required, "Pool (partition) whose nodes run the job.")),
      ForceNew(Attr("command", Type::List(Type::String()), AttrMode::Required,
                    "The program and its arguments (argv; no shell), run by the batch script with exec.")),
      ForceNew(WithDefault(Attr("cpus", Type::Int(), AttrMode::Optional, "CPUs per task (--cpus-per-task)."),
                           Value::Number(1))),
      ForceNew(Attr("memory", Type::Size(), AttrMode::Optional,
                    "Memory per task (--mem); unset: Slurm's default.")),
      ForceNew(WithDefault(Attr("gpus", Type::Int(), AttrMode::Optional,
                                "GPUs per task (--gpus); Slurm sets CUDA_VISIBLE_DEVICES."),
                           Value::Number(0))),
      ForceNew(Attr("env", Type::Map(Type::String()), AttrMode::Optional,
                    "Environment variables (recorded; exported to the job by name).")),
      ForceNew(Sensitive(Attr("secret_env", Type::Map(Type::String()), AttrMode::Optional,
                              "Sensitive environment variables: only in sbatch's environment, exported by "
                              "name; never in argv, logs, ids or the state's plain values (the state keeps "
                              "keyed digests)."))),
      ForceNew(Attr("after", Type::List(Type::Any()), AttrMode::Optional,
                    "slurm_job references that must succeed first (--dependency=afterok).")),
      ForceNew(Attr("timeout", Type::Duration(), AttrMode::Optional,
                    "Longest a run may take (--time, rounded up to minutes); past it the run is a program "
                    "failure (TIMEOUT).")),
      ForceNew(Attr("workdir", Type::String(), AttrMode::Optional,
                    "The job's working directory on the node (--chdir); unset: where plinth runs.")),
      ForceNew(Attr("output", Type::String(), AttrMode::Optional,
                    "File for stdout and stderr (--output; %j is the Slurm job id); unset: Slurm's "
                    "slurm-%j.out in the working directory.")),
      ForceNew(WithDefault(Attr("wait", Type::Bool(), AttrMode::Optional,
                                "Apply waits for the job to end, retrying by cause; a failed job fails the "
                                "apply."),
                           Value::Bool(true))),
      Attr("status", Type::String(), AttrMode::Computed,
           "pending, provisioning, running, succeeded, failed or cancelled (Slurm's state mapped)."),
      Attr("exit_code", Type::Int(), AttrMode::Computed, "Exit code of the last run; null until it exits."),
      Attr("attempts", Type::Int(), AttrMode::Computed, "Submissions (one per retry)."),
      Attr("node", Type::String(), AttrMode::Computed, "Node(s) of the last run (a hostlist)."),
      Attr("reason", Type::String(), AttrMode::Computed, "Why the job is pending, failed or cancelled."),
      Attr("started_at", Type::String(), AttrMode::Computed,
           "When the last run started (RFC 3339); null before."),
      Attr("finished_at", Type::String(), AttrMode::Computed,
           "When the last run ended (RFC 3339); null before."),
      Attr("slurm_job_id", Type::String(), AttrMode::Computed, "Slurm's id of the last submission."),
  };
  s.body.blocks = {
      {"retries", false, "", 0, 1,
       Body({WithDefault(Attr("infrastructure", Type::Int(), AttrMode::Optional,
                              "Resubmissions after failures that are not the job's fault (NODE_FAIL, "
                              "BOOT_FAIL, PREEMPTED), avoiding the failed node."),
                         Value::Number(3)),
             WithDefault(Attr("program", Type::Int(), AttrMode::Optional,
                              "Resubmissions after the program failed (non-zero exit, signal, TIMEOUT, "
                              "OUT_OF_MEMORY)."),
                         Value::Number(0))}),
       "How often a failed run is resubmitted, by cause."},
  };
  return s;
}

class SlurmSchemas : public SchemaSource {
 public:
  std::string ProviderName() const override { return "slurm"; }
  std::vector<ResourceSchema> ResourceSchemas() const override { return {Pool(), Job()}; }
};

}  // namespace

const SchemaSource& SlurmProviderSchemas() {
  static const SlurmSchemas schemas;
  return schemas;
}

}  // namespace plinth
