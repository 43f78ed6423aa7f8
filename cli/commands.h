// CLI commands. Each returns the process exit code (see cli/main.cpp); the
// command line that fills Options is defined in cli/command_line.cpp.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compiler/check/checker.h"
#include "compiler/check/variable_inputs.h"
#include "compiler/types/types.h"

namespace plinth::runtime {
class ExternalProviders;
}

namespace plinth::cli {

inline constexpr const char* kVersion = "0.1.0";

struct Options {
  std::vector<std::string> paths;  // positional arguments; a group's subcommand first (`state rm`: {"rm", ADDR})
  std::vector<VariableArgument> vars;  // --var NAME=VALUE and --var-file=FILE, in command-line order
  bool json = false;
  bool check = false;  // fmt --check
  bool diff = false;   // fmt --diff
  bool color = true;
  unsigned threads = 0;
  // plan / apply / destroy / output and every command on a workspace's state:
  // --workspace, else $PLINTH_WORKSPACE, else the one selected for the
  // directory (cli/workspace.h, SelectedWorkspace), else "default"
  std::string workspace = "default";
  // --state-key-file: the state's encryption key (64 hex digits, mode 0600);
  // empty: $PLINTH_STATE_KEY_FILE, else none (docs/state.md, "Key source and default")
  std::string state_key_file;
  int64_t lock_timeout_ms = 0;  // --lock-timeout
  std::string migrate_to;  // state migrate --to: a PostgreSQL URL, or "sqlite"
  std::string backend;  // --backend: the state backend (exported as PLINTH_BACKEND; docs/state.md)
  std::string dir;  // --dir: the configuration directory for commands whose argument is something else
  // --git=REPO[@REF] (validate, inspect, plan, apply, destroy; docs/gitops.md): the configuration is the
  // tree of a commit, DIR a path in it (default: its root) and --dir the directory whose .plinth holds the
  // workspace (default: .)
  std::string git;
  // Set by ResolveGit (cli/git_source.h) or a saved plan made from git.
  struct FromGit {
    std::string home;    // where .plinth/<workspace> lives
    std::string tree;    // the commit's tree, exported (<home>/.plinth/.git-cache/trees/<id>)
    std::string path;    // the configuration's directory in the tree ("" for its root)
    std::string source;  // JSON for the state's history (state::SerialRecord::source)
    // plan --base: the head compared with the base (cli/pr_plan.h), as JSON; empty otherwise
    std::string compare;
  };
  std::optional<FromGit> from_git;
  // plan --git --base=REF --head=REF (cli/pr_plan.h): a pull request's plan, summarised in Markdown
  std::string base, head;
  std::string artifacts;      // --artifacts=DIR: plan.txt, plan.json, summary.md (default plinth-plan)
  size_t summary_limit = 0;   // --summary-limit=N characters of Markdown (0: 60000)
  unsigned parallelism = 10;
  bool refresh = true;
  bool lock = true;  // plan --lock=false: read only, no workspace lock
  bool auto_approve = false;
  bool approve_from_stdin = false;  // apply / destroy --approve-from-stdin: the prompt's answer from a pipe
  bool detailed_exitcode = false;
  int64_t at_serial = 0;  // show --at=SERIAL
  std::string out;        // plan --out=FILE: save the plan for apply
  bool destroy = false;   // plan --destroy
  bool graph_plan = false;  // graph --plan: the plan's execution graph, not the configuration's
  // plan / apply / destroy --target, --exclude; plan / apply --replace (docs/cli.md, "Targeting")
  std::vector<std::string> targets, excludes, replace;
  // bucket / storage / backup / restore (docs/storage.md)
  std::string principal;  // --as=P: act as this principal (grants are checked); also PLINTH_PRINCIPAL
  bool versions = false;  // bucket ls --versions
  std::string version;    // bucket get|rm --version=ID
  bool dry_run = false;   // storage sweep --dry-run
  std::string now;        // storage sweep --now=TIME: the sweep's clock (drills and tests)
  std::string at_time;    // restore --at=TIME
  std::string snapshot;   // restore --snapshot=ID
  std::string to;         // restore --to=DIR
  bool read_data = false;  // backup check --read-data
  bool force = false;      // workspace delete --force
  // gpu list|probe (docs/gpu.md): values as given, checked by cli/gpu_commands.cpp
  struct Gpu {
    std::string level, device, fake_fault, record, baseline;
    std::string min_peak_fraction, min_baseline_fraction, max_gemm_mismatches, max_memory_errors;
    std::string memory_fraction, gemm_seconds;
    bool metrics = false;
  } gpu;
  bool print_config = false;        // import --print-config: print a resource block, record nothing
  std::string generate_config_out;  // plan --generate-config-out=FILE: write blocks for import blocks
  // qpu run --shots, --seed, --max-memory as given; checked by the command (docs/qpu.md)
  std::string qpu_shots, qpu_seed, qpu_max_memory;
  std::string qpu_device;  // qpu run --device=auto|cpu|gpu
  // job submit|ls|logs|cancel, compute status|agent (docs/compute.md): values as given, checked by
  // cli/compute_commands.cpp
  struct Job {
    std::string pool, name, cpus, memory, gpus, timeout, retries_infra, retries_program;
    std::vector<std::string> env, secret_env, after, argv;
    bool wait = false, follow = false, all = false, metrics = false;
    std::string compute_dir, node;  // compute agent (hidden)
  } job;
  // controller [DIR] (docs/controller.md): values as given, checked by cli/controller_commands.cpp
  struct Controller {
    std::string listen, interval, lease_ttl, sweep_every;
    std::string drift_interval;  // --drift-interval (cli/drift_task.h); "0" disables the drift task
    bool once = false, allow_remote = false;
    // with --git (cli/git_sync_task.h): --sync-interval, --webhook-secret-file, --auto-apply
    std::string sync_interval, webhook_secret_file;
    bool auto_apply = false;
  } controller;
  std::string region_loss;  // region delay --loss=PCT (tc's syntax: "1%")
  // alert silence (cli/alert_commands.cpp)
  struct AlertFlags {
    std::string duration, comment, author;
  } alert;
  // compute resume|suspend|resume-fail --provisioner=FILE (docs/providers/slurm.md); empty: $PLINTH_SLURM_PROVISIONER
  std::string slurm_provisioner;
};

int Validate(const Options& options, bool inspect);
int Fmt(const Options& options);

// Where root variable values come from: the PLINTH_VAR_ environment
// variables, the variables files in the configuration directory, and --var
// and --var-file in command-line order.
VariableSources VariableSourcesOf(const Options& options);
// What every command that checks a configuration starts from: the built-in
// schemas, the providers in other processes `external` loads (started to
// learn their schemas; it must outlive the check), and the variable values.
// Diagnostics as text on stderr (nothing with --json).
void PrintDiagnostics(const Options& o, const SourceManager& sources, const Diagnostics& diags);
// "main.plinth:3:5: <message>" for the first error diagnostic.
std::string FirstError(const Diagnostics& diags, const SourceManager& sources);
CheckOptions ConfigCheckOptions(const VariableSources& vars, runtime::ExternalProviders& external);

int Plan(const Options& options, const VariableSources& vars, bool destroy);
int Apply(const Options& options, const VariableSources& vars, bool destroy);
int Output(const Options& options, const VariableSources& vars);
int State(const Options& options);  // state list|show|rm|mv|history|pull
int History(const Options& options);  // history: applies and the controller's automatic actions
int Show(const Options& options);
int Refresh(const Options& options);
int ForceUnlock(const Options& options);
int Graph(const Options& options, const VariableSources& vars);  // cli/graph_command.cpp
int Policy(const Options& options, const VariableSources& vars);  // policy test
int Providers(const Options& options);                                            // providers schema
int Bucket(const Options& options);   // bucket ls|put|get|rm
int Storage(const Options& options);  // storage sweep|status
// One `storage sweep` of the workspace at `now_ms` under the workspace lock,
// for the controller (cli/controller_commands.cpp): true with a one-line
// *summary, or false with the first error in *error. A workspace with no
// state or no buckets is a success with nothing done.
bool StorageSweepOnce(const Options& options, int64_t now_ms, std::string* summary, std::string* error);
// A duration option: "30s", "10m", "2h", "500ms", "1h30m" (> 0) in ms; false
// when malformed (cli/compute_commands.cpp).
bool ParseDuration(const std::string& s, int64_t* ms);
int Controller(const Options& options);        // controller (cli/controller_commands.cpp)
int ControllerStatus(const Options& options);  // status: the workspace's controller
int Region(const Options& options);            // region fail|recover|status (cli/region_commands.cpp)
int Alert(const Options& options);             // alert export|status|silence|silences|expire (cli/alert_commands.cpp)
int Backup(const Options& options);   // backup run|list|check
int Restore(const Options& options);
int WorkspaceCommand(const Options& options);  // workspace list|new|select|delete|show
int Console(const Options& options, const VariableSources& vars);  // cli/console_command.cpp
int Lsp(const Options& options, const VariableSources& vars);  // cli/lsp_command.cpp: the language server
int Gpu(const Options& options);               // gpu list|probe (cli/gpu_commands.cpp)
int Import(const Options& options, const VariableSources& vars);  // cli/import_command.cpp
// plan --generate-config-out: writes the file (0) before the plan runs, or
// returns the exit code of why not.
int GenerateImportConfig(const Options& options, const VariableSources& vars, bool destroy);
int Qpu(const Options& options);               // qpu run (cli/qpu_commands.cpp)
int Job(const Options& options);      // job submit|ls|logs|cancel (cli/compute_commands.cpp)
int Compute(const Options& options);  // compute status|agent (cli/compute_commands.cpp)
// compute resume|suspend|resume-fail HOSTLIST: Slurm's power-saving programs (cli/slurm_commands.cpp)
int SlurmPower(const Options& options);

}  // namespace plinth::cli
