// plinth: the command-line entry point. Parses the command line
// (cli/command_line.h), dispatches to a command in cli/*_commands.cpp and
// returns its exit code:
//   0 success, 1 errors in the configuration, 2 usage or environment error
//   (plan --detailed-exitcode: changes pending; usage errors are then 1),
//   3 `fmt --check` found files that are not formatted, 4 a plan is denied
//   by a policy.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/backend_source.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/git_source.h"
#include "cli/git_sync_task.h"

namespace {

// validate, inspect, plan, apply, destroy and output hold every AST, value
// and plan of the configuration until they return; tearing that down takes a
// noticeable share of the run at 100k resources and achieves nothing, so the
// process exits directly.
[[noreturn]] void ExitNow(int rc) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(rc);
}

}  // namespace

int main(int argc, char** argv) {
  using plinth::cli::CommandId;
  plinth::cli::ParsedCommandLine parsed = plinth::cli::ParseCommandLine({argv + 1, argv + argc});
  // --git: the configuration is a commit's tree, exported before the command reads it.
  if (!parsed.options.git.empty() && parsed.command != CommandId::kController &&
      !plinth::cli::ResolveGit(&parsed.options)) {
    ExitNow(1);
  }
  // --backend is PLINTH_BACKEND for everything this process opens or starts;
  // without either, the configuration's `backend` block (cli/backend_source.h).
  if (!parsed.options.backend.empty()) ::setenv("PLINTH_BACKEND", parsed.options.backend.c_str(), 1);
  // (A controller syncing from git opens the state of each commit it plans with
  // its own --backend or PLINTH_BACKEND: docs/gitops.md.)
  if (parsed.command != CommandId::kFmt && parsed.command != CommandId::kLsp && !(parsed.command == CommandId::kController && !parsed.options.git.empty())) {
    std::string backend_error;
    if (!plinth::cli::UseBackendBlock(parsed.options, &backend_error)) {
      std::fprintf(stderr, "error: %s\n", backend_error.c_str());
      ExitNow(1);
    }
  }
  const plinth::cli::Options& o = parsed.options;
  switch (parsed.command) {
    case CommandId::kValidate: ExitNow(plinth::cli::Validate(o, false));
    case CommandId::kInspect: ExitNow(plinth::cli::Validate(o, true));
    case CommandId::kPlan: ExitNow(plinth::cli::Plan(o, plinth::cli::VariableSourcesOf(o), false));
    case CommandId::kApply: ExitNow(plinth::cli::Apply(o, plinth::cli::VariableSourcesOf(o), false));
    case CommandId::kDestroy: ExitNow(plinth::cli::Apply(o, plinth::cli::VariableSourcesOf(o), true));
    case CommandId::kOutput: ExitNow(plinth::cli::Output(o, plinth::cli::VariableSourcesOf(o)));
    case CommandId::kFmt: return plinth::cli::Fmt(o);
    case CommandId::kShow: return plinth::cli::Show(o);
    case CommandId::kHistory: return plinth::cli::History(o);
    case CommandId::kState: return plinth::cli::State(o);
    case CommandId::kForceUnlock: return plinth::cli::ForceUnlock(o);
    case CommandId::kGraph: return plinth::cli::Graph(o, plinth::cli::VariableSourcesOf(o));
    case CommandId::kRefresh: return plinth::cli::Refresh(o);
    case CommandId::kPolicy: return plinth::cli::Policy(o, plinth::cli::VariableSourcesOf(o));
    case CommandId::kProviders: return plinth::cli::Providers(o);
    case CommandId::kBucket: return plinth::cli::Bucket(o);
    case CommandId::kStorage: return plinth::cli::Storage(o);
    case CommandId::kBackup: return plinth::cli::Backup(o);
    case CommandId::kRestore: return plinth::cli::Restore(o);
    case CommandId::kWorkspace: return plinth::cli::WorkspaceCommand(o);
    case CommandId::kConsole: ExitNow(plinth::cli::Console(o, plinth::cli::VariableSourcesOf(o)));
    case CommandId::kLsp: ExitNow(plinth::cli::Lsp(o, plinth::cli::VariableSourcesOf(o)));
    case CommandId::kGpu: return plinth::cli::Gpu(o);
    case CommandId::kImport: return plinth::cli::Import(o, plinth::cli::VariableSourcesOf(o));
    case CommandId::kQpu: return plinth::cli::Qpu(o);
    case CommandId::kJob: return plinth::cli::Job(o);
    // The compute group: status and agent here; resume|suspend|resume-fail go to SlurmPower.
    case CommandId::kCompute: return plinth::cli::Compute(o);
    case CommandId::kController: return plinth::cli::Controller(o);
    case CommandId::kStatus: return plinth::cli::ControllerStatus(o);
    case CommandId::kApprove: return plinth::cli::Approve(o);
    case CommandId::kRegion: return plinth::cli::Region(o);
    case CommandId::kAlert: return plinth::cli::Alert(o);
    case CommandId::kNone:
    case CommandId::kVersion:
    case CommandId::kHelp:
    case CommandId::kCompletion: break;  // answered while parsing
  }
  return parsed.exit_code;
}
