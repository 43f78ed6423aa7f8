#include "runtime/providers/local/schema.h"

#include "compiler/schema/builders.h"

namespace plinth {
namespace {

using namespace schema;  // NOLINT: the builders read as a declaration language here

ResourceSchema Region() {
  ResourceSchema s{"region",
                   "local",
                   "A region of the local provider: an isolated data root directory and a port range for the "
                   "services placed in it.",
                   {}};
  s.body.attributes = {
      ForceNew(Attr("root", Type::String(), AttrMode::OptionalComputed,
                    "Data root of the region, relative to the workspace's data directory. Defaults to "
                    "regions/<name>.")),
      WithDefault(
          Attr("port_base", Type::Int(), AttrMode::Optional, "First port of the region's port range."),
          Value::Number(20000)),
      WithDefault(
          Attr("port_count", Type::Int(), AttrMode::Optional, "Number of ports in the region's range."),
          Value::Number(1000)),
      Attr("host", Type::String(), AttrMode::Optional,
           "Loopback address (127.x.y.z) the region's services listen on; unset: 127.0.0.1. Regions on "
           "different hosts can give their replicas the same ports. With isolation = \"namespace\": the "
           "region's own private address (10.x.y.z, one /24 per region)."),
      WithDefault(Attr("isolation", Type::String(), AttrMode::Optional,
                       "\"none\", or \"namespace\": the region gets its own network namespace joined to "
                       "the host by a veth pair, so `plinth region fail` can cut it off (needs root)."),
                  Value::String("none")),
      WithDefault(Attr("down", Type::Bool(), AttrMode::Optional,
                       "Marks the region as failed: nothing is placed in it (for failover drills)."),
                  Value::Bool(false)),
      Attr("labels", Type::Map(Type::String()), AttrMode::Optional, "Free-form labels."),
      Attr("path", Type::String(), AttrMode::Computed, "Absolute path of the region's data root."),
      Attr("isolated", Type::Bool(), AttrMode::Computed,
           "Whether the region's network namespace and link exist (isolation = \"namespace\"); false "
           "after they vanished (a reboot): the next apply makes them again."),
  };
  return s;
}

ResourceSchema Bucket() {
  ResourceSchema s{
      "bucket",
      "local",
      "Object storage for datasets, checkpoints and results: a directory in its region, with capacity "
      "alerts, versioning, lifecycle rules, backups to another region and access grants.",
      {}};
  s.body.attributes = {
      ForceNew(Ref("region", "region", AttrMode::Required, "Region that holds the bucket.")),
      Attr("capacity", Type::Size(), AttrMode::Optional,
           "Size quota; usage is measured against it and alerts fire at alert_at."),
      WithDefault(
          Attr("alert_at", Type::Percent(), AttrMode::Optional, "Usage that raises a capacity alert."),
          Value::Percent(80)),
      Attr("grow_to", Type::Size(), AttrMode::Optional,
           "Self-healing: when a sweep finds usage at alert_at, the bucket's quota grows by 25% steps up to "
           "this size (capacity stays what the configuration says; the grant is kept with the bucket)."),
      Caveat(
          WithDefault(Enum(Attr("encryption", Type::String(), AttrMode::Optional,
                                "Encryption at rest. On the local provider stored versions, the archive tier "
                                "and backups are always encrypted; live objects are plain files."),
                           {"none", "aes-256-gcm"}),
                      Value::String("none")),
          "live objects of a local bucket are plain files readable by path; stored versions, the archive "
          "tier "
          "and backups are encrypted (AES-256-GCM) whatever this says"),
      WithDefault(Attr("versioning", Type::Bool(), AttrMode::Optional,
                       "Keep previous versions of objects written through Plinth."),
                  Value::Bool(false)),
      Attr("labels", Type::Map(Type::String()), AttrMode::Optional, "Free-form labels."),
      WithDefault(Attr("force_destroy", Type::Bool(), AttrMode::Optional,
                       "Deleting the bucket also deletes its objects, stored versions, archived objects and "
                       "backups. Off: a bucket that holds data refuses deletion."),
                  Value::Bool(false)),
      Attr("path", Type::String(), AttrMode::Computed, "Absolute path of the bucket's directory."),
      Sensitive(Attr("key", Type::String(), AttrMode::Computed,
                     "The bucket's data key, wrapped by the workspace key (never shown).")),
  };
  s.body.blocks = {
      {"lifecycle_rule", true, "rule name", 0, SIZE_MAX,
       Body({WithDefault(Attr("prefix", Type::String(), AttrMode::Optional, "Objects the rule applies to."),
                         Value::String("")),
             Attr("archive_after", Type::Duration(), AttrMode::Optional,
                  "Age after which objects are archived."),
             Attr("expire_after", Type::Duration(), AttrMode::Optional,
                  "Age after which objects are deleted."),
             Attr("noncurrent_expire_after", Type::Duration(), AttrMode::Optional,
                  "Age after which previous versions are deleted.")}),
       "Archives or expires objects by prefix and age."},
      {"backup", false, "", 0, 1,
       Body({Attr("every", Type::Duration(), AttrMode::Required, "Interval between backups."),
             Ref("to", "region", AttrMode::Required, "Region that holds the backup repository."),
             Attr("keep", Type::Map(Type::Int()), AttrMode::Optional,
                  "Retention: counts per period (hourly, daily, weekly, monthly, yearly, last).")}),
       "Scheduled, encrypted backups to another region."},
      {"grant", true, "principal", 0, SIZE_MAX,
       Body({Enum(Attr("access", Type::String(), AttrMode::Required, "Access level of the principal."),
                  {"read", "write", "admin"})}),
       "Access for a principal (a job, a service or a user name)."},
  };
  return s;
}

ResourceSchema Marker() {
  ResourceSchema s{
      "marker",
      "local",
      "A file whose existence proves the resource exists: created on create, removed on delete. Used by "
      "tests and benchmarks to compare the world with the state.",
      {}};
  s.body.attributes = {
      ForceNew(Attr("path", Type::String(), AttrMode::Required, "File path, relative to the data root.")),
      WithDefault(Attr("content", Type::String(), AttrMode::Optional, "Text written into the file."),
                  Value::String("")),
      ForceNew(Attr("triggers", Type::Map(Type::String()), AttrMode::Optional,
                    "Any change to these values replaces the marker.")),
  };
  return s;
}

ResourceSchema Pool() {
  ResourceSchema s{
      "pool",
      "local",
      "A compute pool: nodes of one of several candidate shapes (CPUs, memory, GPUs), started when "
      "jobs wait and decommissioned after an idle time. On the local provider a node is an agent "
      "process on this machine that owns its GPUs exclusively (docs/compute.md).",
      {}};
  s.body.attributes = {
      ForceNew(Ref("region", "region", AttrMode::Required, "Region the pool belongs to.")),
      WithDefault(Attr("min_nodes", Type::Int(), AttrMode::Optional,
                       "Nodes kept running even without work (they never idle out)."),
                  Value::Number(0)),
      WithDefault(
          Attr("max_nodes", Type::Int(), AttrMode::Optional, "Most nodes the pool runs at once; at least 1."),
          Value::Number(1)),
      WithDefault(
          Attr("idle", Type::Duration(), AttrMode::Optional,
               "An idle node above min_nodes is decommissioned after this long without work; at least 1s."),
          Value::Duration(10 * 60 * 1000)),
      WithDefault(
          Enum(Attr("health", Type::String(), AttrMode::Optional,
                    "GPU probe that admits a new node before it takes work (docs/gpu.md): none, quick "
                    "or full. A node that fails it is marked failed and its GPU quarantined."),
               {"none", "quick", "full"}),
          Value::String("quick")),
      Attr("health_recheck", Type::Duration(), AttrMode::Optional,
           "How often an idle GPU node runs the health gate again (at least 10s); a node that fails it is "
           "marked failed, its GPU quarantined and a replacement provisioned. Unset: only when a node starts "
           "and after a patch."),
      Attr("team", Type::String(), AttrMode::Optional, "Team that owns the pool, for GPU quotas per team."),
      Attr("labels", Type::Map(Type::String()), AttrMode::Optional, "Free-form labels."),
      Attr("gpus_per_node", Type::Int(), AttrMode::Computed, "GPUs of a node of the first shape."),
      Attr("max_gpus", Type::Int(), AttrMode::Computed,
           "max_nodes times the largest GPU count of any shape: the most GPUs the pool can hold at once."),
      Attr("placement", Type::List(Type::String()), AttrMode::Computed,
           "Plan-time view of each shape on this machine, one line per shape in order: whether it fits and "
           "how many nodes of it, or why it is skipped."),
      Attr("nodes", Type::Int(), AttrMode::Computed, "Live nodes, read back by refresh."),
  };
  s.body.blocks = {
      {"patch", false, "", 0, 1, PatchBody(/*slurm=*/false),
       "Patching the pool's nodes (docs/compute.md, \"Patching nodes\"): a node behind the level is "
       "cordoned (takes no new job), drained (its running jobs finish), patched, probed again by the health "
       "gate and put back, at most max_unavailable at a time, inside the window."},
      {"shape", false, "", 1, SIZE_MAX,
       Body({WithDefault(
                 Attr("cpus", Type::Int(), AttrMode::Optional, "CPUs of a node of this shape; at least 1."),
                 Value::Number(1)),
             Attr("memory", Type::Size(), AttrMode::Optional,
                  "Memory of a node of this shape; unset: not limited."),
             Attr("accelerators", Type::String(), AttrMode::Optional,
                  "Accelerators of a node: \"TYPE:N\" (\"H100:8\"), \"N\" (any GPU type) or \"qpu-sim:N\" (a "
                  "state-vector simulator of N qubits). Unset: a CPU node."),
             Ref("region", "region", AttrMode::Optional,
                 "Region this candidate lives in, when not the pool's own.")}),
       "A candidate node shape. Repeatable and ordered: when a node is needed, the shapes are tried in turn "
       "and the first that has capacity wins."},
  };
  return s;
}

ResourceSchema Job() {
  ResourceSchema s{
      "job",
      "local",
      "A batch job run on a pool's nodes: a command with per-task CPUs, memory and GPUs, bucket "
      "access, dependencies, retries and a timeout. Every configurable attribute is force-new: a "
      "changed input is a new run, with a new id (docs/compute.md).",
      {}};
  s.body.attributes = {
      ForceNew(Ref("pool", "pool", AttrMode::Required, "Pool whose nodes run the job.")),
      ForceNew(
          Attr("command", Type::List(Type::String()), AttrMode::Required,
               "The program and its arguments (argv; no shell). The program is looked up on PATH when it "
               "has no '/'.")),
      ForceNew(
          WithDefault(Attr("cpus", Type::Int(), AttrMode::Optional, "CPUs per task."), Value::Number(1))),
      ForceNew(Attr("memory", Type::Size(), AttrMode::Optional, "Memory per task; unset: the node's share.")),
      ForceNew(WithDefault(Attr("gpus", Type::Int(), AttrMode::Optional,
                                "GPUs per task, given exclusively through CUDA_VISIBLE_DEVICES."),
                           Value::Number(0))),
      ForceNew(
          Attr("env", Type::Map(Type::String()), AttrMode::Optional, "Environment variables (recorded).")),
      ForceNew(
          Sensitive(Attr("secret_env", Type::Map(Type::String()), AttrMode::Optional,
                         "Sensitive environment variables: sealed with the workspace key and put only into "
                         "the job's environment; never in the state's plain values, logs or ids (their "
                         "names are)."))),
      ForceNew(Attr("principal", Type::String(), AttrMode::Optional,
                    "Who the job acts as for bucket grants; default \"job.<name>\".")),
      ForceNew(Attr("reads", Type::List(Type::Any()), AttrMode::Optional,
                    "Buckets the job reads (bucket references); each must grant the principal read, write or "
                    "admin. The job gets each path as PLINTH_BUCKET_<NAME>.")),
      ForceNew(
          Attr("writes", Type::List(Type::Any()), AttrMode::Optional,
               "Buckets the job writes (bucket references); each must grant the principal write or admin.")),
      ForceNew(
          Attr("after", Type::List(Type::Any()), AttrMode::Optional,
               "Jobs (job references) that must succeed before this one starts; a failed or cancelled one "
               "cancels it.")),
      ForceNew(Attr("timeout", Type::Duration(), AttrMode::Optional,
                    "Longest a run may take; past it the run is a program failure.")),
      ForceNew(WithDefault(Attr("wait", Type::Bool(), AttrMode::Optional,
                                "Apply waits for the job to end; a failed job fails the apply."),
                           Value::Bool(true))),
      Attr("status", Type::String(), AttrMode::Computed,
           "pending, provisioning, running, succeeded, failed or cancelled."),
      Attr("exit_code", Type::Int(), AttrMode::Computed, "Exit code of the last run; null until it exits."),
      Attr("attempts", Type::Int(), AttrMode::Computed, "Runs started."),
      Attr("node", Type::String(), AttrMode::Computed, "Node of the current or last run."),
      Attr("reason", Type::String(), AttrMode::Computed, "Why the job is pending, failed or cancelled."),
      Attr("started_at", Type::String(), AttrMode::Computed,
           "When the last run started (RFC 3339); null before."),
      Attr("finished_at", Type::String(), AttrMode::Computed, "When the job ended (RFC 3339); null before."),
      Attr("log_path", Type::String(), AttrMode::Computed, "File with the last run's stdout and stderr."),
  };
  s.body.blocks = {
      {"retries", false, "", 0, 1,
       Body({WithDefault(
                 Attr("infrastructure", Type::Int(), AttrMode::Optional,
                      "Reruns after failures that are not the job's fault (node lost, failed health gate)."),
                 Value::Number(3)),
             WithDefault(Attr("program", Type::Int(), AttrMode::Optional,
                              "Reruns after the program failed (non-zero exit, signal, timeout)."),
                         Value::Number(0))}),
       "How often a failed run is retried, by cause."},
  };
  return s;
}

// scale_up / scale_down of a service's autoscale block.
std::shared_ptr<const BlockSchema> ScalingBlock() {
  auto b = std::make_shared<BlockSchema>();
  b->attributes = {
      Attr("stabilization", Type::Duration(), AttrMode::Optional,
           "Window of recommendations considered: down only to the highest in it, up only to the lowest "
           "(default: 0s up, 300s down)."),
      Enum(Attr("select", Type::String(), AttrMode::Optional,
                "Which policy wins: max (the one that allows the most change; default), min, or disabled."),
           {"max", "min", "disabled"}),
  };
  b->blocks = {
      {"policy", false, "", 0, SIZE_MAX,
       Body({
           Attr("pods", Type::Int(), AttrMode::Optional, "At most this many replicas per period."),
           Attr("percent", Type::Int(), AttrMode::Optional,
                "At most this percentage of the replicas at the period's start."),
           WithDefault(Attr("period", Type::Duration(), AttrMode::Optional, "The period the limit spans."),
                       Value::Duration(15000)),
       }),
       "A rate limit; without any, Kubernetes' defaults (up: 100% or 4 per 15s; down: 100% per 15s)."},
  };
  return b;
}

std::shared_ptr<const BlockSchema> AutoscaleBlock() {
  auto b = std::make_shared<BlockSchema>();
  b->attributes = {
      WithDefault(Attr("min", Type::Int(), AttrMode::Optional, "Fewest replicas per region (at least 1)."),
                  Value::Number(1)),
      Attr("max", Type::Int(), AttrMode::Required,
           "Most replicas per region; ports and load-balancer servers are laid out for this many."),
      WithDefault(Attr("tolerance", Type::Number(), AttrMode::Optional,
                       "No change while every target is within this ratio of its value."),
                  Value::Number(0.1)),
  };
  b->blocks = {
      {"target", true, "signal", 0, SIZE_MAX,
       Body({Attr("average", Type::Number(), AttrMode::Required,
                  "The value wanted per replica: requests_per_second (HTTP responses through the load "
                  "balancers), in_flight (connections held) or cpu (cores).")}),
       "A signal and its wanted per-replica average (Kubernetes' AverageValue). Optional when scale_rule "
       "blocks move the service."},
      {"scale_up", false, "", 0, 1, ScalingBlock(), "How fast replicas are added."},
      {"scale_down", false, "", 0, 1, ScalingBlock(), "How fast replicas are removed."},
  };
  return b;
}

}  // namespace

// A pool's `patch` block (docs/compute.md, "Patching nodes"): the local
// pool's and, with `slurm`, the Slurm pool's (docs/providers/slurm.md).
std::shared_ptr<const BlockSchema> PatchBody(bool slurm) {
  using namespace schema;  // NOLINT
  return Body({Attr("level", Type::String(), AttrMode::Required,
                  "The level the nodes should be at: any string (a date, a kernel or driver version). A "
                  "change patches every node to it."),
             Attr("command", Type::List(Type::String()), AttrMode::Required,
                  "The program that brings one node to the level, and its arguments (argv; no shell). A name "
                  "without '/' is looked up on PATH; a relative path is taken from the configuration's "
                  "directory, which is its working directory. It gets PLINTH_NODE, PLINTH_POOL, "
                  "PLINTH_PATCH_LEVEL and PLINTH_PREVIOUS_PATCH_LEVEL (and, on the local provider, "
                  "PLINTH_REGION and PLINTH_NODE_GPUS); a non-zero exit fails the node."),
             Attr("rollback_command", Type::List(Type::String()), AttrMode::Optional,
                  "The program that takes one node back to the level it had before this one (argv; found "
                  "like command). Once failure_threshold nodes failed the level, each node already at it is "
                  "cordoned, drained, rolled back (PLINTH_PATCH_LEVEL is the level it goes back to, "
                  "PLINTH_PATCH_ROLLBACK=1), probed again and put back, max_unavailable at a time inside "
                  "the window. Unset: a halted level stays on the nodes that reached it."),
             Ref("window", "maintenance_window", AttrMode::Optional,
                 slurm ? "Maintenance window outside which no node is drained for a patch. Unset: any time."
                       : "Maintenance window outside which no running node is cordoned for a patch (a new node "
                         "is patched when it starts). Unset: any time."),
             WithDefault(Attr("max_unavailable", Type::Any(), AttrMode::Optional,
                              "Nodes cordoned for the patch at once: a number, or a percentage of the live "
                              "nodes (\"25%\", rounded up; at least 1)."),
                         Value::Number(1)),
             WithDefault(Attr("failure_threshold", Type::Int(), AttrMode::Optional,
                              "Nodes that may fail the patch (the command fails, hangs past timeout, or the "
                              "health gate fails after it) before the level is halted: no node is patched to "
                              "it any more."),
                         Value::Number(1)),
             WithDefault(Attr("timeout", Type::Duration(), AttrMode::Optional,
                              "How long the command may run on one node; past it, it is killed and the node "
                              "fails."),
                         Value::Duration(10 * 60 * 1000))});
}

namespace {

std::shared_ptr<const BlockSchema> ProbeBlock() {
  return Body({
      Attr("http", Type::String(), AttrMode::Optional,
           "Path of an HTTP GET on the replica's port (\"/healthz\"): status 200-399 passes."),
      WithDefault(
          Attr("tcp", Type::Bool(), AttrMode::Optional, "A TCP connection to the replica's port passes."),
          Value::Bool(false)),
      Attr("exec", Type::List(Type::String()), AttrMode::Optional,
           "A command run in the replica's environment: exit status 0 passes."),
      Attr("port", Type::Int(), AttrMode::Optional,
           "Port to probe when not the replica's own (one of the ports the replicas listen on)."),
      WithDefault(Attr("period", Type::Duration(), AttrMode::Optional, "How often the probe runs."),
                  Value::Duration(10000)),
      WithDefault(Attr("timeout", Type::Duration(), AttrMode::Optional, "Longest one run may take."),
                  Value::Duration(1000)),
      WithDefault(Attr("initial_delay", Type::Duration(), AttrMode::Optional,
                       "From the replica's start to the first run."),
                  Value::Duration(0)),
      WithDefault(Attr("success_threshold", Type::Int(), AttrMode::Optional,
                       "Consecutive passes that make the probe pass (1 for liveness and startup)."),
                  Value::Number(1)),
      WithDefault(Attr("failure_threshold", Type::Int(), AttrMode::Optional,
                       "Consecutive failures that make the probe fail."),
                  Value::Number(3)),
  });
}

ResourceSchema Service() {
  ResourceSchema s{
      "service",
      "local",
      "A long-running service: replicas of a command in each of its regions, each on its own port, kept "
      "running with liveness, readiness and startup probes and replaced in a rolling update (drained out of "
      "the load balancers first, at most rollout.max_unavailable at a time) when the command, version or "
      "environment changes (docs/services.md).",
      {}};
  s.body.attributes = {
      Attr("regions", Type::List(Type::Any()), AttrMode::Required,
           "Regions the service runs in (region references), in order of preference."),
      WithDefault(Attr("replicas", Type::Int(), AttrMode::Optional, "Replicas per region; at least 1."),
                  Value::Number(1)),
      Attr("port", Type::Int(), AttrMode::Required,
           "First port: replica i of a region listens on port + i (as PORT in its environment), inside the "
           "region's port range."),
      Attr("command", Type::List(Type::String()), AttrMode::Required,
           "The program and its arguments (argv; no shell). A name without '/' is looked up on PATH; a "
           "relative path is taken from the configuration's directory."),
      Attr("env", Type::Map(Type::String()), AttrMode::Optional, "Environment variables (recorded)."),
      Sensitive(Attr("secret_env", Type::Map(Type::String()), AttrMode::Optional,
                     "Sensitive environment variables: sealed with the workspace key and put only into the "
                     "replicas' environment; never in the state's plain values, logs or status.")),
      Attr("principal", Type::String(), AttrMode::Optional,
           "Who the service acts as for bucket grants; default \"service.<name>\"."),
      Attr("user", Type::String(), AttrMode::Optional,
           "Unix user the replicas run as (its primary group); Plinth must run as root to use another user "
           "than its own. Unset: Plinth's user. The configuration's directory and the program must be "
           "readable by it."),
      Attr("reads", Type::List(Type::Any()), AttrMode::Optional,
           "Buckets the service reads (bucket references); each must grant the principal read access. "
           "Each path is in the environment as PLINTH_BUCKET_<NAME>."),
      Attr("writes", Type::List(Type::Any()), AttrMode::Optional,
           "Buckets the service writes (bucket references); each must grant the principal write access."),
      Attr("version", Type::String(), AttrMode::Optional,
           "Any string naming what runs (an image tag, a model version): a change replaces every replica."),
      Attr("on_region_failure", Type::String(), AttrMode::Optional,
           "What happens to a region's replicas while it is down or failed: \"wait\" (unset; none run "
           "until it recovers) or \"relocate\" (they run in the first region of regions that is up, on "
           "ports of its relocation block, until the region's own replicas serve again)."),
      WithDefault(Attr("ready_timeout", Type::Duration(), AttrMode::Optional,
                       "How long apply waits for the replicas to become ready before it fails."),
                  Value::Duration(60000)),
      Ref("window", "maintenance_window", AttrMode::Optional,
          "Maintenance window outside which a change that replaces replicas (version, command, env, "
          "secret_env, port, user, grants) waits: apply records it and the leading controller (or an apply "
          "inside the window) rolls it out when the window opens. Unset: rolled out at apply."),
      Attr("rollout_pending", Type::Bool(), AttrMode::Computed,
           "Whether a change recorded by apply waits for the service's maintenance window."),
      Attr("endpoints", Type::List(Type::String()), AttrMode::Computed,
           "One line per replica, \"<region>/<i> <host>:<port>\", in the order of regions, then i."),
      Attr("replicas_running", Type::Int(), AttrMode::Computed,
           "Replicas whose process runs, read back by refresh; fewer than wanted plans an update that "
           "restarts them."),
      Attr("surge_endpoints", Type::List(Type::String()), AttrMode::Computed,
           "Where the rollout's extra replicas (max_surge) listen, \"<region>/<i> <host>:<port>\" with i "
           "from replicas on; empty without surge. A load balancer lists them too."),
      Attr("relocation_endpoints", Type::List(Type::String()), AttrMode::Computed,
           "With on_region_failure = \"relocate\" or flapping.remedy = \"move\": where each region hosts "
           "the replicas of the others while they are down or moved, \"<region>/<i> <host>:<port>\"; "
           "empty otherwise. A load balancer lists them too."),
  };
  s.body.blocks = {
      {"rollout", false, "", 0, 1,
       Body({
           WithDefault(Attr("max_unavailable", Type::Any(), AttrMode::Optional,
                            "Replicas of a region that may be out of service at once while a new version "
                            "replaces the old (drained, stopped, starting): a number, or a percentage of "
                            "replicas (\"25%\", rounded down)."),
                       Value::Number(1)),
           WithDefault(
               Attr("max_surge", Type::Any(), AttrMode::Optional,
                    "Extra replicas of the new version a region runs during a rollout (on the ports "
                    "after the replicas'), stopped when it ends: a number, or a percentage of replicas "
                    "(\"25%\", rounded up)."),
               Value::Number(0)),
       }),
       "How a change of command, version or environment replaces the replicas (Kubernetes' rolling update)."},
      {"autoscale", false, "", 0, 1, AutoscaleBlock(),
       "Per region, the leading controller keeps between min and max replicas by the targets "
       "(docs/automation.md); replicas is the count each region starts with."},
      {"flapping", false, "", 0, 1,
       Body({
           WithDefault(Attr("restarts", Type::Int(), AttrMode::Optional,
                            "Restarts within `within` that make a replica flapping (2 to 1000)."),
                       Value::Number(3)),
           WithDefault(Attr("within", Type::Duration(), AttrMode::Optional,
                            "The window the restarts are counted over (10s to 7d)."),
                       Value::Duration(600000)),
           WithDefault(Enum(Attr("remedy", Type::String(), AttrMode::Optional,
                                 "alert: ReplicaFlapping fires and the replica keeps restarting where it is "
                                 "(with back-off); move: the leading controller also runs it in the next "
                                 "region of regions that is up, on a port of that region's relocation "
                                 "block, for `hold`, then brings it home."),
                            {"alert", "move"}),
                       Value::String("alert")),
           WithDefault(Attr("hold", Type::Duration(), AttrMode::Optional,
                            "How long a moved replica runs away from its region before it goes home "
                            "(10s to 7d)."),
                       Value::Duration(1800000)),
       }),
       "When a replica counts as flapping and what the controller does about it (docs/automation.md, "
       "\"Flapping replicas\"); without it: 3 restarts in 10m fire ReplicaFlapping."},
      {"liveness", false, "", 0, 1, ProbeBlock(),
       "A failing liveness probe restarts the replica (back-off 10 s doubling to 5 min)."},
      {"readiness", false, "", 0, 1, ProbeBlock(),
       "A replica takes traffic (and counts as ready for apply and rollouts) only while it passes."},
      {"startup", false, "", 0, 1, ProbeBlock(),
       "Gates the other two until it passes once; failing it restarts the replica."},
  };
  return s;
}

ResourceSchema LoadBalancer() {
  ResourceSchema s{
      "load_balancer",
      "local",
      "A load balancer in front of a service: an HAProxy (Debian package haproxy) on a loopback address, "
      "reloaded without dropping connections, health-checking each replica by the service's readiness "
      "probe; round robin, failover to backup regions, or the nearest region by measured latency "
      "(docs/load-balancing.md).",
      {}};
  s.body.attributes = {
      Ref("service", "service", AttrMode::Required, "Service whose replicas take the traffic."),
      Attr("port", Type::Int(), AttrMode::Required, "Port the load balancer listens on."),
      WithDefault(Attr("listen", Type::String(), AttrMode::Optional,
                       "Loopback address (127.x.y.z) the load balancer listens on."),
                  Value::String("127.0.0.1")),
      WithDefault(Enum(Attr("mode", Type::String(), AttrMode::Optional,
                            "round_robin: every replica; failover: the primary region's replicas, the others "
                            "only when it has none up; latency: the region answering fastest, the others "
                            "as backups."),
                       {"round_robin", "failover", "latency"}),
                  Value::String("round_robin")),
      Ref("primary", "region", AttrMode::Optional,
          "Region that takes the traffic in failover mode (one of the service's regions)."),
      Attr("endpoint", Type::String(), AttrMode::Computed, "\"<listen>:<port>\", for clients and outputs."),
      Attr("url", Type::String(), AttrMode::Computed, "\"http://<listen>:<port>\"."),
      Attr("backends", Type::List(Type::String()), AttrMode::Computed,
           "The service's replicas as servers, \"<region>/<i> <host>:<port>\", with \" backup\" on those "
           "that take traffic only when the primary region has none up (failover)."),
      Attr("health", Type::String(), AttrMode::Computed,
           "How HAProxy checks each replica, from the service's readiness probe (its path, period and "
           "thresholds): \"http /ready, every 1s, rise 1, fall 3\"; \"tcp, ...\" without an HTTP probe."),
      Attr("running", Type::Bool(), AttrMode::Computed,
           "Whether the HAProxy process runs, read back by refresh; false plans an update that starts it."),
  };
  return s;
}

// config_file: file_resources.{h,cpp}; docs/providers/local.md, "Configuration files".
ResourceSchema ConfigFile() {
  ResourceSchema s{
      "config_file",
      "local",
      "A configuration file anywhere on this machine: templated content, mode, owner and group, a validation "
      "command run on the new file before it is swapped in atomically, a reload command after; drift is "
      "reported, or corrected by the controller with drift = \"correct\".",
      {}};
  s.body.attributes = {
      ForceNew(Attr("path", Type::String(), AttrMode::Required,
                    "Absolute path of the file (abspath(\"...\") makes one from a path relative to the "
                    "configuration). Its directory must exist; not inside the workspace directory.")),
      Attr(
          "content", Type::String(), AttrMode::Required,
          "The file's text: a string, a heredoc with ${...} interpolation, or file(...) with replace/format. "
          "Content built from sensitive values is sensitive: never shown, and the state keeps only a keyed "
          "digest of it."),
      WithDefault(Attr("mode", Type::String(), AttrMode::Optional, "Permission bits, octal (\"0640\")."),
                  Value::String("0644")),
      Attr("owner", Type::String(), AttrMode::Optional,
           "User that owns the file (a name or a numeric uid); unset: whoever runs Plinth, not checked."),
      Attr("group", Type::String(), AttrMode::Optional,
           "Group of the file (a name or a numeric gid); unset: the owner's default, not checked."),
      Attr("validate", Type::List(Type::String()), AttrMode::Optional,
           "Command (argv, no shell) run on the new content before the swap; \"{path}\" is replaced by the "
           "temp file's path. A nonzero exit fails the apply and leaves the old file."),
      Attr("reload", Type::List(Type::String()), AttrMode::Optional,
           "Command (argv, no shell) run after the swap, e.g. [\"systemctl\", \"reload\", \"haproxy\"]; a "
           "failure fails the apply (the file stays written)."),
      WithDefault(
          Attr("timeout", Type::Duration(), AttrMode::Optional,
               "Deadline of each validate and reload run; past it the command is killed and counts as "
               "a failure."),
          Value::Duration(30000)),
      WithDefault(Enum(Attr("drift", Type::String(), AttrMode::Optional,
                            "What the controller's drift task does when the file changes outside Plinth: "
                            "\"report\" it, or \"correct\" it (write the file again, as lifecycle "
                            "correct_drift does)."),
                       {"report", "correct"}),
                  Value::String("report")),
      WithDefault(Attr("keep_on_destroy", Type::Bool(), AttrMode::Optional,
                       "Destroying the resource leaves the file in place."),
                  Value::Bool(false)),
      Attr("content_digest", Type::String(), AttrMode::Computed,
           "\"sha256:<hex>\" of the content; for sensitive content \"hmac:<hex>\", keyed by the workspace "
           "key."),
      Attr("exists", Type::Bool(), AttrMode::Computed,
           "Whether the file is at its path, read back by refresh; false plans an update that writes it "
           "again."),
  };
  return s;
}

// Maintenance windows and Debian packages (docs/packages.md; the engine is
// packages.{h,cpp}).
ResourceSchema MaintenanceWindow() {
  ResourceSchema s{
      "maintenance_window",
      "local",
      "When changes that disturb a machine may happen: weekdays, a local start time, a duration and "
      "a time zone, with excluded dates. No side effects; resources that refer to it (package) "
      "change only while it is open.",
      {}};
  s.body.attributes = {
      Attr("days", Type::String(), AttrMode::Optional,
           "Weekdays the window opens on: \"mon-fri\", \"sat,sun\", \"tue\"; unset: every day."),
      Attr("start", Type::String(), AttrMode::Required, "Local time the window opens, HH:MM (\"02:00\")."),
      Attr("duration", Type::Duration(), AttrMode::Required,
           "How long the window stays open (at most 7 days; it may run past midnight)."),
      WithDefault(Attr("timezone", Type::String(), AttrMode::Optional,
                       "IANA time zone of start (\"Europe/Berlin\"), read from /usr/share/zoneinfo."),
                  Value::String("UTC")),
      Attr("exclude", Type::List(Type::String()), AttrMode::Optional,
           "Local dates (YYYY-MM-DD) on which the window does not open."),
  };
  return s;
}

ResourceSchema Package() {
  ResourceSchema s{"package",
                   "local",
                   "A Debian package on this machine, installed, pinned, held or removed through apt-get and "
                   "dpkg (needs root), changed only inside its maintenance window.",
                   {}};
  s.body.attributes = {
      ForceNew(Attr("package", Type::String(), AttrMode::OptionalComputed,
                    "Debian package name; unset: the block's label.")),
      Attr("version", Type::String(), AttrMode::Optional,
           "Pinned version (\"1.0-1\"): installed, upgraded or downgraded to. Unset: the installed one, or "
           "apt's candidate when none is."),
      Attr(
          "source", Type::String(), AttrMode::Optional,
          "Absolute path of a .deb file to install instead of apt's sources; its version is the pinned one."),
      WithDefault(Enum(Attr("ensure", Type::String(), AttrMode::Optional,
                            "present: installed; absent: removed (dpkg --remove, configuration files stay)."),
                       {"present", "absent"}),
                  Value::String("present")),
      Ref("window", "maintenance_window", AttrMode::Optional,
          "Maintenance window outside which the package is not changed (the plan says when it opens). "
          "Unset: changed at any apply."),
      WithDefault(Attr("hold", Type::Bool(), AttrMode::Optional,
                       "apt-mark hold the pinned version, so that upgrades outside Plinth leave it."),
                  Value::Bool(false)),
      WithDefault(
          Attr("timeout", Type::Duration(), AttrMode::Optional,
               "Longest one apt-get or dpkg run may take; past it the run is killed and the change fails."),
          Value::Duration(10 * 60 * 1000)),
      Attr("installed", Type::String(), AttrMode::Computed,
           "Version dpkg reports installed; \"\" when not installed. A change outside Plinth is drift."),
      Attr("held", Type::Bool(), AttrMode::Computed, "Whether the package is on hold."),
  };
  return s;
}

class LocalSchemas : public SchemaSource {
 public:
  std::string ProviderName() const override { return "local"; }
  std::vector<ResourceSchema> ResourceSchemas() const override {
    return {Region(), Bucket(), Marker(), Pool(), Job(), Service(), LoadBalancer(), ConfigFile(),
            MaintenanceWindow(), Package()};
  }
};

}  // namespace

const SchemaSource& LocalProviderSchemas() {
  static const LocalSchemas schemas;
  return schemas;
}

}  // namespace plinth
