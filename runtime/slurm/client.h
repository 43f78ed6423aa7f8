// A Slurm client over its commands (docs/providers/slurm.md): sbatch to
// submit, scontrol / squeue / sacct to read job and node state, scancel to
// cancel, scontrol update to drain. Every command runs through
// runtime/process with a deadline and exactly the environment built here
// (SLURM_CONF, PATH, the job's variables); secret values only ever travel in
// sbatch's environment, exported by name (--export=NAME,...), never in argv.
//
// The parsers are separate from the runs so they are unit tested on captured
// outputs (tests/unit/slurm_test.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/compute/spec.h"

namespace plinth::slurm {

struct ClientOptions {
  std::filesystem::path slurm_conf;           // SLURM_CONF for every command; empty: $SLURM_CONF
  std::string path_list;                      // where sbatch etc. are found; empty: $PATH, else /usr/bin:/bin
  std::chrono::milliseconds deadline{30000};  // per command
};

// What to submit: the job as Plinth describes it, and where it goes.
struct SubmitRequest {
  compute::JobSpec job;
  std::string partition;
  bool gres = false;                           // --gres=gpu[:TYPE]:N instead of --gpus=[TYPE:]N
  std::string gpu_type;                        // "" = any
  std::filesystem::path output;                // --output (stdout and stderr); "" = Slurm's default
  std::filesystem::path workdir;               // --chdir; "" = the caller's
  std::vector<std::string> after_slurm_ids;    // --dependency=afterok:ID:ID
  std::vector<std::string> exclude_nodes;      // --exclude (nodes a retry must avoid)
  std::map<std::string, std::string> secrets;  // exported by name; values only in sbatch's environment
};

// sbatch's arguments for `r` (no script: it goes on stdin). Never holds an
// environment value: --export lists names only.
std::vector<std::string> SbatchArgs(const SubmitRequest& r);
// The batch script on sbatch's stdin: "#!/bin/sh\nexec 'argv0' 'argv1' ...\n"
// with every word single-quoted.
std::string BatchScript(const std::vector<std::string>& argv);
// The job id from `sbatch --parsable` output ("123" or "123;cluster"); nullopt if none.
std::optional<std::string> ParseSbatchParsable(std::string_view out);

// One job as Slurm reports it.
struct SlurmJob {
  std::string id;
  std::string name;
  std::string state;   // JobState: PENDING, CONFIGURING, RUNNING, COMPLETED, FAILED, NODE_FAIL, ...
  std::string reason;  // Reason=
  std::string nodes;   // NodeList (hostlist), "" or "(null)" when none
  int exit_code = 0;   // ExitCode=X:Y -> X
  int signal = 0;      //                -> Y
  int restarts = 0;
  std::string submit_time, start_time, end_time;  // Slurm's local time text, "Unknown"/"None" when unset
};

// `scontrol show job -o` output: one job per line, Key=Value words (a value
// may hold spaces: words without "Key=" continue the previous value).
std::vector<SlurmJob> ParseScontrolJobs(std::string_view out);
// `sacct -P -n -X -o JobID,JobName,State,ExitCode,NodeList,Submit,Start,End`
// (kSacctFormat): '|'-separated; "CANCELLED by 0" is CANCELLED.
inline constexpr const char* kSacctFormat = "JobID,JobName,State,ExitCode,NodeList,Submit,Start,End";
std::vector<SlurmJob> ParseSacct(std::string_view out);

// Whose fault a failed job is.
enum class Failure { kNone, kProgram, kInfrastructure };

struct Classified {
  compute::JobStatus status = compute::JobStatus::kPending;
  Failure failure = Failure::kNone;
  std::string reason;  // for people: "node failure (NODE_FAIL)", "exit code 3", "time limit (TIMEOUT)"
};

// Slurm's job state -> Plinth's. PENDING/REQUEUED -> pending;
// CONFIGURING -> provisioning (its nodes are powering up); RUNNING,
// COMPLETING, SUSPENDED, ... -> running; COMPLETED -> succeeded; CANCELLED,
// REVOKED -> cancelled; FAILED, TIMEOUT, OUT_OF_MEMORY, DEADLINE,
// SPECIAL_EXIT -> failed (program); NODE_FAIL, BOOT_FAIL, PREEMPTED -> failed
// (infrastructure).
Classified Classify(const SlurmJob& job);

// One node as `scontrol show node -o NAME` reports it.
struct SlurmNode {
  std::string name, state, reason, address;
  std::string boot_time;
  int cpus = 0;                // CPUTot
  int64_t real_memory_mb = 0;  // RealMemory (MiB; Slurm's "M")
  std::string gres;            // Gres, e.g. "gpu:H100:2" or "(null)"
};
std::vector<SlurmNode> ParseScontrolNodes(std::string_view out);

// The GPUs of a node's Gres ("gpu:H100:2", "gpu:2", "gpu:H100:2(S:0),gpu:A100:1"):
// their total count and, when every gpu entry names the same type, that type.
struct GresGpus {
  int count = 0;
  std::string type;  // "" = untyped or mixed
};
GresGpus ParseGresGpus(std::string_view gres);

// One partition as `scontrol show partition -o NAME` reports it.
struct SlurmPartition {
  std::string name;
  std::string nodes;  // hostlist ("gpu[1-3]"), "" when none
  std::string state;  // UP, DOWN, DRAIN, INACTIVE
  int total_nodes = 0;
};
std::vector<SlurmPartition> ParseScontrolPartitions(std::string_view out);

// SuspendTime in seconds from `scontrol show config` ("SuspendTime = 300 sec");
// nullopt when power saving is off (NONE, INFINITE) or the line is missing.
std::optional<int64_t> ParseSuspendTime(std::string_view config_out);

class Client {
 public:
  explicit Client(ClientOptions options);

  // sbatch --parsable; the job id, or nullopt and *error ("sbatch exited with status 1: ...").
  std::optional<std::string> Submit(const SubmitRequest& r, std::string* error);
  // scontrol show job -o ID, then (a job scontrol no longer knows) sacct.
  std::optional<SlurmJob> Query(const std::string& id, std::string* error);
  bool Cancel(const std::string& id, std::string* error);
  std::optional<SlurmNode> Node(const std::string& name, std::string* error);
  // scontrol show partition -o NAME. nullopt and *error when it cannot be
  // read; *missing (may be null) is set when Slurm says there is no such
  // partition.
  std::optional<SlurmPartition> Partition(const std::string& name, bool* missing, std::string* error);
  // scontrol show node -o for every node of `hostlist` (one command per node).
  std::optional<std::vector<SlurmNode>> Nodes(const std::string& hostlist, std::string* error);
  // scontrol show config -> ParseSuspendTime. *error set (and nullopt) only
  // when the command fails; nullopt with *error empty: power saving is off.
  std::optional<int64_t> SuspendTime(std::string* error);
  // scontrol update NodeName=N State=DRAIN Reason=R (a node failing the GPU gate).
  bool Drain(const std::string& node, const std::string& reason, std::string* error);
  // scontrol update NodeName=N State=RESUME (a drained node takes jobs again).
  bool Resume(const std::string& node, std::string* error);

  // One run of a job to its end, with Plinth's retries: an infrastructure
  // failure is resubmitted (avoiding the failed node) while
  // infrastructure_failures <= job.retries.infrastructure, a program failure
  // while program_failures <= job.retries.program. `progress` gets one line
  // per change. `poll` is the interval between queries; `limit` bounds the
  // whole wait (0: none). `stop` (may be null): once set, the wait ends
  // and the result holds the job as it is then (still running in Slurm, a
  // non-terminal state). The state says how it ended; slurm_ids holds each
  // attempt's Slurm id; first_running_ms is the steady time from the first
  // submit to the first time the job was seen running (0: never).
  struct RunResult {
    compute::JobState state;
    std::vector<std::string> slurm_ids;
    int64_t first_running_ms = 0;
    Failure last_failure = Failure::kNone;
  };
  std::optional<RunResult> RunToEnd(SubmitRequest r, std::chrono::milliseconds poll,
                                    std::chrono::milliseconds limit,
                                    const std::function<void(const std::string&)>& progress,
                                    std::string* error, const std::atomic<bool>* stop = nullptr);

 private:
  struct Ran {
    bool ok = false;
    std::string out, error;
  };
  Ran RunTool(const std::string& tool, std::vector<std::string> args,
              std::map<std::string, std::string> extra_env, std::string stdin_data);
  ClientOptions options_;
};

}  // namespace plinth::slurm
