// plinth: the command-line entry point. Parses the command line, dispatches to
// a command in cli/commands.cpp and maps results to exit codes:
//   0 success, 1 errors in the configuration, 2 usage or environment error,
//   3 `fmt --check` found files that are not formatted, 4 a plan is denied
//   by a policy.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

const char kUsage[] =
    "usage: plinth <command> [options] [PATH]\n"
    "\n"
    "commands:\n"
    "  validate [--json] [--var NAME=VALUE]... [DIR]   check a configuration; every error located\n"
    "  inspect  [--json] [--var NAME=VALUE]... [DIR]   check it and print every resource instance it declares\n"
    "  fmt      [--check] [--diff] [PATH]...           rewrite files in canonical form\n"
    "  plan     [--json] [--detailed-exitcode] [DIR]\n"
    "                                                  show what apply would change (exit 2 with --detailed-exitcode)\n"
    "  apply    [--auto-approve] [--parallelism=N] [DIR] make the world match the configuration\n"
    "  destroy  [--auto-approve] [DIR]                 delete everything the workspace manages\n"
    "  output   [--json] [--dir=DIR] [NAME]            print outputs (one NAME prints its raw value)\n"
    "  show     [--json] [--at=SERIAL] [--dir=DIR]     print the resources in the state (at an earlier serial)\n"
    "  state    list | show ADDR | rm ADDR | mv A B | history [ADDR] | pull   [--dir=DIR]\n"
    "  force-unlock [--dir=DIR] LOCK_ID                remove a lock whose holder is gone for good\n"
    "  graph    [DIR]                                  the execution graph of the current plan (DOT)\n"
    "  refresh  [DIR]                                  record changes made outside Plinth in the state\n"
    "  policy test [--json] [DIR]                      run the policy_test cases against the policies\n"
    "  bucket   ls ADDR [PREFIX] [--versions] | put ADDR KEY FILE | get ADDR KEY [FILE] [--version=V]\n"
    "           | rm ADDR KEY [--version=V]   [--as=PRINCIPAL] [--dir=DIR]   objects of a local bucket\n"
    "  storage  sweep [--dry-run] [--now=TIME] | status   [--json] [--dir=DIR]\n"
    "                                                  run due lifecycle, capacity and backup work / show it\n"
    "  backup   run ADDR | list ADDR | check ADDR [--read-data]   [--dir=DIR]   a bucket's backups\n"
    "  restore  ADDR --at=TIME | --snapshot=ID [--to=DIR] [--dir=DIR]   restore a bucket from its backups\n"
    "  version                                         print the version\n"
    "\n"
    "options:\n"
    "  --no-color      plain output (also when NO_COLOR is set or output is not a terminal)\n"
    "  --threads=N     parser threads (default: one per core)\n"
    "  --workspace=W   state workspace (default: default); state in DIR/.plinth/W/\n"
    "  --var NAME=VALUE  a root variable value (repeatable)\n"
    "  --refresh=false   plan without reading the current resources first\n"
    "\n"
    "exit codes: 0 ok, 1 errors, 2 usage error (plan --detailed-exitcode: 2 changes pending),\n"
    "            3 fmt --check found unformatted files, 4 plan denied by a policy\n"
    "docs: docs/cli.md\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  plinth::cli::Options options;
  std::string error;
  if (!plinth::cli::ParseOptions(command, args, options, &error)) {
    std::fprintf(stderr, "plinth %s: %s\n\n%s", command.c_str(), error.c_str(), kUsage);
    return 2;
  }
  // validate and inspect hold every AST and value of the configuration until
  // they return; tearing that down takes a noticeable share of the run at
  // 100k resources and achieves nothing, so the process exits directly.
  if (command == "validate" || command == "inspect") {
    int rc = plinth::cli::Validate(options, command == "inspect");
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(rc);
  }
  if (command == "fmt") return plinth::cli::Fmt(options);
  if (command == "state") return plinth::cli::State(options);
  if (command == "show") return plinth::cli::Show(options);
  if (command == "refresh") return plinth::cli::Refresh(options);
  if (command == "force-unlock") return plinth::cli::ForceUnlock(options);
  if (command == "graph") return plinth::cli::GraphDot(options, plinth::cli::VariableValues(options));
  if (command == "policy") return plinth::cli::Policy(options, plinth::cli::VariableValues(options));
  if (command == "bucket") return plinth::cli::Bucket(options);
  if (command == "storage") return plinth::cli::Storage(options);
  if (command == "backup") return plinth::cli::Backup(options);
  if (command == "restore") return plinth::cli::Restore(options);
  if (command == "plan" || command == "apply" || command == "destroy" || command == "output") {
    auto vars = plinth::cli::VariableValues(options);
    int rc = 2;
    if (command == "plan") rc = plinth::cli::Plan(options, vars, false);
    if (command == "apply") rc = plinth::cli::Apply(options, vars, false);
    if (command == "destroy") rc = plinth::cli::Apply(options, vars, true);
    if (command == "output") rc = plinth::cli::Output(options, vars);
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(rc);
  }
  if (command == "version" || command == "--version") {
    std::printf("plinth %s\n", plinth::cli::kVersion);
    return 0;
  }
  std::fprintf(stderr, "plinth: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return 2;
}
