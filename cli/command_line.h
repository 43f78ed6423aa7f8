// The command line: every command and subcommand of plinth — its options,
// positional arguments, one-line summary, exit codes and example — defined
// once, on CLI11. Help (`plinth COMMAND --help`, `plinth help COMMAND`), the
// overview, "did you mean" suggestions and the bash completion script are all
// generated from that one definition, so none of them can go stale.
//
// Input: the arguments after the program name. Output: the command to run
// and its Options, or an exit code when the command line itself was the
// whole job (help, version, completion) or was wrong (usage error, status 2).
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"

namespace plinth::cli {

// The commands main() dispatches to (cli/commands.h). Subcommands of a group
// (`state rm`, `bucket put`) run their group's function, which finds the
// subcommand in Options::paths[0].
enum class CommandId {
  kNone,  // nothing to run: exit with ParsedCommandLine::exit_code
  kValidate,
  kInspect,
  kFmt,
  kPlan,
  kApply,
  kDestroy,
  kOutput,
  kShow,
  kState,
  kHistory,  // history: applies and the controller's actions (cli/state_commands.cpp)
  kForceUnlock,
  kGraph,
  kRefresh,
  kPolicy,
  kProviders,
  kBucket,
  kStorage,
  kBackup,
  kRestore,
  kWorkspace,
  kConsole,
  kLsp,
  kGpu,
  kImport,
  kQpu,
  kJob,
  kCompute,  // compute status|agent (cli/compute_commands.cpp), resume|suspend|resume-fail (Slurm power saving; cli/slurm_commands.cpp)
  kController,  // controller (cli/controller_commands.cpp)
  kStatus,      // status: the workspace's controller (cli/controller_commands.cpp)
  kApprove,     // approve PLAN_ID: a plan the git sync holds (cli/git_sync_task.cpp)
  kRegion,      // region fail|recover|status (cli/region_commands.cpp)
  kAlert,       // alert export|status|silence|silences|expire (cli/alert_commands.cpp)
  // Answered by ParseCommandLine itself.
  kVersion,
  kHelp,
  kCompletion,
};

struct ParsedCommandLine {
  CommandId command = CommandId::kNone;
  int exit_code = 0;  // when command is kNone
  // Positional arguments are in options.paths, after the subcommand's name
  // for a group's subcommand: `state mv A B` gives {"mv", "A", "B"}.
  Options options;
};

// Parses the arguments (without the program name). Help, version and
// completion are printed here (standard output, status 0); usage errors too
// (standard error, status 2 — status 1 when --detailed-exitcode is given, so
// that 2 only ever means "changes pending"), each naming the closest known
// command or option and pointing at `plinth COMMAND --help`. A single-dash
// spelling of a long option (`-auto-approve`, `-var-file=F`) is that option.
// Options::workspace is resolved here: --workspace, else $PLINTH_WORKSPACE,
// else the workspace `plinth workspace select` recorded for the directory,
// else "default".
ParsedCommandLine ParseCommandLine(std::vector<std::string> args);

// The candidate `word` is most likely a typo of (by edit distance, or `word`
// is a prefix of it), or "" when none is close: the "did you mean" of usage
// errors, also used for workspace names.
std::string ClosestName(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace plinth::cli
