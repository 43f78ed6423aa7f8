#include "cli/command_line.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string_view>

#include "cli/workspace.h"

namespace plinth::cli {

namespace {

// ------------------------------------------------------------ definition

// What a command documents beyond its CLI11 summary. Every command sets both;
// tests/unit/cli_help_test.cpp fails for one whose help lacks either.
struct CommandDoc {
  CommandId id = CommandId::kNone;
  std::string exit_codes;  // "N  meaning" lines
  std::string example;     // a command line
};

// Option values checked after parsing (numbers, true/false), with messages
// of their own, and what only the command line itself uses.
struct RawValues {
  std::string threads, parallelism, at_serial, refresh, lock, summary_limit, lock_timeout;
  std::string workspace;  // --workspace as given; empty: see ResolveWorkspace
  bool no_color = false;
  bool version = false;        // plinth --version
  bool list_commands = false;  // plinth help --list-commands (hidden; for tests)
  std::vector<std::string> help_topic;
};

const char kConfigExits[] =
    "0  no errors (there may be warnings)\n"
    "1  the configuration has errors\n"
    "2  usage error, or DIR is neither a directory nor a .plinth file";
const char kApplyExits[] =
    "0  done, or nothing to change\n"
    "1  errors, a failed change, a plan denied by policy or refused as stale, or apply cancelled\n"
    "2  usage error";
const char kStateExits[] =
    "0  done\n"
    "1  no state for the workspace, no such resource, or the workspace is locked\n"
    "2  usage error";
const char kStorageExits[] =
    "0  done\n"
    "1  an error (no such bucket, access denied, a failed backup...); every error is printed\n"
    "2  usage error";
const char kPlainExits[] =
    "0  done\n"
    "2  usage error";

class Definition {
 public:
  Definition();
  Definition(const Definition&) = delete;
  Definition& operator=(const Definition&) = delete;

  CLI::App root{"Plinth checks, plans and applies infrastructure described in *.plinth files.", "plinth"};
  Options options;
  RawValues raw;
  std::vector<std::string> vars;       // --var, checked by Finish
  std::vector<std::string> var_files;  // --var-file; Finish interleaves both in command-line order

  const CommandDoc* Doc(const CLI::App* app) const {
    auto it = docs_.find(app);
    return it == docs_.end() ? nullptr : &it->second;
  }

 private:
  // A command (or a group's subcommand) with its summary and documentation.
  CLI::App* Command(CLI::App* parent, const std::string& name, const std::string& summary, CommandId id,
                    const std::string& exit_codes, const std::string& example);
  CLI::App* Subcommand(CLI::App* group, const std::string& name, const std::string& summary,
                       const std::string& exit_codes, const std::string& example);

  void Json(CLI::App* c, const std::string& what) { c->add_flag("--json", options.json, what); }
  void Vars(CLI::App* c) {
    c->add_option("--var", vars, "set root variable NAME (repeatable; also -var)")
        ->type_name("NAME=VALUE")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_option("--var-file", var_files,
                  "set root variables from a file of NAME = VALUE lines (repeatable)")
        ->type_name("FILE")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  void Workspace(CLI::App* c) {
    c->add_option("--workspace", raw.workspace,
                  "the state workspace (default: PLINTH_WORKSPACE, else the one 'plinth workspace select' "
                  "chose, else default); state in DIR/.plinth/W/")
        ->type_name("W");
    c->add_option("--state-key-file", options.state_key_file,
                  "the state's encryption key: 64 hex digits, mode 600 (also PLINTH_STATE_KEY_FILE)")
        ->type_name("FILE");
    Backend(c);
  }
  void Backend(CLI::App* c) {
    c->add_option("--backend", options.backend,
                  "where the state lives: a PostgreSQL URL (postgres://USER@HOST/DB; password from PGPASSWORD) "
                  "instead of DIR/.plinth/W/state.db (also PLINTH_BACKEND)")
        ->type_name("URL");
  }
  void LockTimeout(CLI::App* c) {
    c->add_option("--lock-timeout", raw.lock_timeout,
                  "wait up to DUR for a workspace lock another process holds, trying every second (default "
                  "0s: refused at once, naming the holder)")
        ->type_name("DUR");
  }
  void Dir(CLI::App* c, const std::string& what) {
    c->add_option("--dir", options.dir, what)->type_name("DIR");
  }
  void Git(CLI::App* c) {
    c->add_option("--git", options.git,
                  "read the configuration from a commit of a git repository (a path or a URL; REF: a branch, "
                  "tag or commit, default HEAD); DIR is then a path in it and --dir the workspace's directory")
        ->type_name("REPO[@REF]");
  }
  void Parallelism(CLI::App* c, const std::string& what) {
    c->add_option("--parallelism", raw.parallelism, what)->type_name("N");
  }
  void NoRefresh(CLI::App* c) {
    c->add_option("--refresh", raw.refresh, "plan without reading the current resources first")
        ->type_name("false");
  }
  void Targeting(CLI::App* c, bool replace) {
    auto repeatable = [](CLI::Option* opt) {
      opt->type_name("ADDR")->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    };
    repeatable(c->add_option("--target", options.targets,
                             "only ADDR and what it depends on (repeatable; for exceptional cases)"));
    repeatable(c->add_option("--exclude", options.excludes,
                             "everything but ADDR and what depends on it (repeatable)"));
    if (replace) {
      repeatable(
          c->add_option("--replace", options.replace, "replace ADDR even when nothing changed (repeatable)"));
    }
  }
  void NoColor(CLI::App* c) {
    c->add_flag("--no-color", raw.no_color,
                "plain output (also when NO_COLOR is set or output is not a terminal)");
  }

  std::map<const CLI::App*, CommandDoc> docs_;
};

CLI::App* Definition::Command(CLI::App* parent, const std::string& name, const std::string& summary,
                              CommandId id, const std::string& exit_codes, const std::string& example) {
  CLI::App* c = parent->add_subcommand(name, summary);
  docs_[c] = CommandDoc{id, exit_codes, example};
  if (parent == &root) NoColor(c);
  return c;
}

// A group's subcommand: options it does not know fall through to the group,
// so `state list --dir=D` and `state --dir=D list` are the same.
CLI::App* Definition::Subcommand(CLI::App* group, const std::string& name, const std::string& summary,
                                 const std::string& exit_codes, const std::string& example) {
  CLI::App* c = Command(group, name, summary, docs_[group].id, exit_codes, example);
  c->fallthrough();
  return c;
}

Definition::Definition() {
  root.set_help_flag("-h,--help", "print this help");
  root.allow_extras();            // unknown options and commands are reported by Report(), with suggestions
  root.require_subcommand(0, 1);  // inherited: a positional named like a command stays a positional
  root.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  root.add_flag("--version", raw.version, "print the version");
  NoColor(&root);
  docs_[&root] = {CommandId::kNone,
                  "0  ok\n"
                  "1  errors (in the configuration, the state or a provider)\n"
                  "2  usage error (plan --detailed-exitcode: changes pending; a usage error is then 1)\n"
                  "3  fmt --check found files that are not formatted\n"
                  "4  plan denied by a policy",
                  "plinth validate examples/quickstart"};

  // --- configuration
  for (bool inspect : {false, true}) {
    CLI::App* c =
        inspect
            ? Command(&root, "inspect", "check a configuration and print every resource instance it declares",
                      CommandId::kInspect, kConfigExits, "plinth inspect --json examples/quickstart")
            : Command(&root, "validate", "check a configuration; every error located", CommandId::kValidate,
                      kConfigExits, "plinth validate --var environment=prod examples/quickstart");
    c->add_option("DIR", "the root module's directory, or one .plinth file (default: .)");
    Json(c, inspect ? "print one JSON document: diagnostics, summary, resources, outputs, variables"
                    : "print one JSON document (diagnostics and a summary) instead of text");
    Vars(c);
    c->add_option("--threads", raw.threads, "parser threads (default: one per core)")->type_name("N");
    Dir(c, "the root module's directory (instead of DIR)");
    Git(c);
  }
  {
    CLI::App* c = Command(&root, "fmt", "rewrite .plinth files in canonical form", CommandId::kFmt,
                          "0  every file is (now) formatted\n"
                          "1  a file has syntax errors (it is left unchanged), or cannot be read or written\n"
                          "2  a PATH does not exist, or a usage error\n"
                          "3  --check found files that would change",
                          "plinth fmt --check --diff .");
    c->add_option("PATH", options.paths, "a file, or a directory searched for *.plinth files (default: .)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_flag("--check", options.check,
                "rewrite nothing; list the files that would change (exit 3 if any)");
    c->add_flag("--diff", options.diff, "also print each file's changed lines as a diff");
    Json(c, "print a JSON document instead of the list of files");
  }

  // --- plan and apply
  {
    CLI::App* c = Command(&root, "plan", "refresh the managed resources and show what apply would change",
                          CommandId::kPlan,
                          "0  success (with --detailed-exitcode: no changes)\n"
                          "1  errors in the configuration, the state or a provider; with --detailed-exitcode "
                          "also a usage error\n"
                          "2  usage error (with --detailed-exitcode: changes are pending)\n"
                          "4  the plan is denied by a policy",
                          "plinth plan --out=release.plan examples/quickstart");
    c->add_option("DIR", "the configuration directory (default: .)");
    Json(c, "print the plan as JSON (docs/plan-json.md)");
    c->add_flag("--detailed-exitcode", options.detailed_exitcode,
                "exit 2 when changes are pending, 0 when none");
    c->add_flag("--destroy", options.destroy, "plan the deletion of everything in the state");
    c->add_option("--out", options.out, "save the plan; 'plinth apply FILE' applies exactly it")
        ->type_name("FILE");
    NoRefresh(c);
    c->add_option("--lock", raw.lock, "plan without the workspace lock and write nothing")
        ->type_name("false");
    LockTimeout(c);
    Workspace(c);
    Dir(c, "the configuration directory (instead of DIR)");
    Git(c);
    Vars(c);
    Parallelism(c, "at most N provider reads at a time (default: 10)");
    Targeting(c, /*replace=*/true);
    c->add_option("--base", options.base,
                  "with --git: plan a pull request: --head against the state, summarised in Markdown for a "
                  "comment, compared with this branch (docs/gitops.md)")
        ->type_name("REF");
    c->add_option("--head", options.head, "with --git --base: the pull request's branch (instead of REPO@REF)")
        ->type_name("REF");
    c->add_option("--artifacts", options.artifacts,
                  "with --base: write plan.txt, plan.json and summary.md here (default plinth-plan)")
        ->type_name("DIR");
    c->add_option("--summary-limit", raw.summary_limit,
                  "with --base: at most N characters of Markdown (default 60000; GitHub's limit is 65536)")
        ->type_name("N");
    c->add_option(
         "--generate-config-out", options.generate_config_out,
         "write resource blocks for import blocks whose target is not declared to this new .plinth file "
         "in DIR, then plan with it")
        ->type_name("FILE");
  }
  for (bool destroy : {false, true}) {
    CLI::App* c =
        destroy
            ? Command(&root, "destroy", "delete everything the workspace manages, dependents first",
                      CommandId::kDestroy, kApplyExits, "plinth destroy --auto-approve examples/quickstart")
            : Command(&root, "apply", "make the world match the configuration", CommandId::kApply,
                      kApplyExits, "plinth apply --auto-approve --parallelism=4 examples/quickstart");
    if (destroy) {
      c->add_option("DIR", "the configuration directory (default: .)");
    } else {
      c->add_option("DIR|FILE", "the configuration directory (default: .), or a plan saved by plan --out");
    }
    CLI::Option* auto_approve =
        c->add_flag("--auto-approve", options.auto_approve, "do not ask for 'yes' before changing anything");
    c->add_flag("--approve-from-stdin", options.approve_from_stdin,
                "read the answer to the prompt from standard input (a pipe); only 'yes' approves")
        ->excludes(auto_approve);
    Parallelism(c, "at most N changes at a time (default: 10)");
    NoRefresh(c);
    LockTimeout(c);
    Workspace(c);
    Dir(c, "the configuration directory (instead of DIR)");
    Git(c);
    Vars(c);
    Targeting(c, /*replace=*/!destroy);
  }
  {
    CLI::App* c = Command(&root, "output", "print the outputs (one NAME: its raw value, for scripts)",
                          CommandId::kOutput,
                          "0  done\n"
                          "1  errors, no state for the workspace, or no output NAME\n"
                          "2  usage error",
                          "plinth output --dir=examples/quickstart datasets_path");
    c->add_option("NAME", "print only this output's value (strings without quotes)");
    Json(c, "print the outputs as JSON, with their sensitivity");
    Dir(c, "the configuration directory (default: .)");
    Workspace(c);
    Vars(c);
  }
  {
    CLI::App* c = Command(&root, "lsp", "the language server, for editors (LSP on stdin and stdout)", CommandId::kLsp,
                          "0  the client sent shutdown, then exit\n"
                          "1  the input ended or broke without shutdown\n"
                          "2  usage error",
                          "plinth lsp   # started by an editor: docs/editor.md");
    Vars(c);
  }
  {
    CLI::App* c = Command(
        &root, "console", "evaluate expressions against the configuration and the state", CommandId::kConsole,
        "0  done (from a pipe: every line evaluated)\n"
        "1  errors in the configuration or the state; from a pipe, also a line with an error\n"
        "2  usage error",
        "echo 'local.regions' | plinth console examples/quickstart");
    c->add_option("DIR", "the configuration directory (default: .)");
    Dir(c, "the configuration directory (instead of DIR)");
    Workspace(c);
    Vars(c);
  }

  // --- state
  {
    CLI::App* c =
        Command(&root, "show", "print the resources in the state (as they were at an earlier serial)",
                CommandId::kShow, kStateExits, "plinth show --at=3 --dir=examples/quickstart");
    Json(c, "print the resources as JSON");
    c->add_option("--at", raw.at_serial, "the state as it was after this serial (see state history)")
        ->type_name("SERIAL");
    Dir(c, "the configuration directory (default: .)");
    Workspace(c);
  }
  {
    CLI::App* c = Command(&root, "history",
                          "the applies and the controller's automatic actions (rollouts in maintenance windows, "
                          "rollbacks, scaling), with their reasons, oldest first",
                          CommandId::kHistory, kStateExits, "plinth history --dir=examples/inference service.model");
    c->add_option("ADDRESS", "only what changed this address");
    Json(c, "print the entries as JSON (docs/cli.md)");
    Dir(c, "the configuration directory (default: .)");
    Workspace(c);
  }
  {
    CLI::App* g = Command(&root, "state", "inspect and edit the recorded state", CommandId::kState,
                          kStateExits, "plinth state list --dir=examples/quickstart");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    Subcommand(g, "list", "list the addresses in the state", kStateExits,
               "plinth state list --dir=examples/quickstart");
    CLI::App* show = Subcommand(g, "show", "print one resource's recorded attributes", kStateExits,
                                "plinth state show --dir=examples/quickstart bucket.datasets");
    show->add_option("ADDRESS", "a resource instance address")->required();
    CLI::App* rm = Subcommand(g, "rm", "forget a resource; the object itself is not touched", kStateExits,
                              "plinth state rm --dir=examples/quickstart bucket.checkpoints");
    rm->add_option("ADDRESS", "the address to forget")->required();
    CLI::App* mv = Subcommand(g, "mv", "rename an address in the state", kStateExits,
                              "plinth state mv bucket.datasets 'module.data.bucket.datasets'");
    mv->add_option("FROM", "the address now")->required();
    mv->add_option("TO", "the new address")->required();
    CLI::App* history =
        Subcommand(g, "history", "the applies, and every change (of one address)", kStateExits,
                   "plinth state history --dir=examples/quickstart bucket.datasets");
    history->add_option("ADDRESS", "only this address's changes");
    Subcommand(g, "pull", "print the whole state as JSON, sensitive values included", kStateExits,
               "plinth state pull --dir=examples/quickstart > state.json");
    CLI::App* migrate = Subcommand(
        g, "migrate",
        "move the workspace's state to another backend, every serial and history row, counts and digests compared",
        kStateExits, "plinth state migrate --dir=examples/quickstart --to=postgres://plinth@db.internal/plinth");
    migrate->add_option("--to", options.migrate_to,
                        "where to: a PostgreSQL URL, or sqlite (DIR/.plinth/W/state.db)")
        ->type_name("URL|sqlite")
        ->required();
  }
  {
    CLI::App* c =
        Command(&root, "force-unlock", "remove a lock whose holder is gone for good", CommandId::kForceUnlock,
                "0  the lock was removed\n"
                "1  no state, or LOCK_ID is not the current lock\n"
                "2  usage error",
                "plinth force-unlock --dir=examples/quickstart 0123456789abcdef0123456789abcdef");
    c->add_option("LOCK_ID", "the lock id, as the error of a locked command prints it")->required();
    Dir(c, "the configuration directory (default: .)");
    Workspace(c);
  }
  {
    CLI::App* c =
        Command(&root, "graph", "print the configuration's dependency graph, or with --plan the plan's (DOT)",
                CommandId::kGraph,
                "0  done\n"
                "1  errors in the configuration, the state or a provider\n"
                "2  usage error",
                "plinth graph examples/quickstart | dot -Tsvg > graph.svg");
    c->add_option("DIR", "the configuration directory (default: .)");
    Dir(c, "the configuration directory (instead of DIR)");
    c->add_flag("--plan", options.graph_plan,
                "the execution graph of the current plan (the changes apply would make, in order) instead");
    Workspace(c);
    Vars(c);
    NoRefresh(c);
  }
  {
    CLI::App* c =
        Command(&root, "refresh", "record changes made outside Plinth in the state", CommandId::kRefresh,
                "0  the state matches the world (now)\n"
                "1  errors in the configuration, the state or a provider\n"
                "2  usage error",
                "plinth refresh examples/quickstart");
    c->add_option("DIR", "the configuration directory (default: .)");
    Dir(c, "the configuration directory (instead of DIR)");
    LockTimeout(c);
    Workspace(c);
    Vars(c);
    Parallelism(c, "at most N provider reads at a time (default: 10)");
  }
  {
    const char* exits =
        "0  every policy_test case gives its expected outcome\n"
        "1  a case does not, or the configuration has errors\n"
        "2  usage error";
    CLI::App* g = Command(&root, "policy", "test policies against their policy_test cases (docs/policy.md)",
                          CommandId::kPolicy, exits, "plinth policy test stdlib/std/guardrails");
    CLI::App* test = Subcommand(g, "test", "run the policy_test cases against the policies", exits,
                                "plinth policy test --json stdlib/std/guardrails");
    test->add_option("DIR", "the configuration or module directory (default: --dir, or .)");
    Json(test, "print the results as JSON");
    Dir(test, "the directory when DIR is not given");
    Vars(test);
  }

  {
    const char* exits =
        "0  the schemas were printed\n"
        "1  the configuration has errors, or a provider it names cannot be loaded\n"
        "2  usage error";
    CLI::App* g =
        Command(&root, "providers", "the providers a configuration uses (docs/providers/protocol.md)",
                CommandId::kProviders, exits, "plinth providers schema examples/provider-python");
    CLI::App* schema = Subcommand(g, "schema",
                                  "print every provider's schemas as JSON: built-in ones and those the "
                                  "configuration's provider blocks start in other processes",
                                  exits, "plinth providers schema examples/provider-python");
    schema->add_option("DIR", "the configuration directory (default: --dir, or .)");
    Dir(schema, "the directory when DIR is not given");
  }

  // --- storage (docs/storage.md)
  {
    CLI::App* g = Command(&root, "bucket", "objects of a local bucket", CommandId::kBucket, kStorageExits,
                          "plinth bucket ls bucket.datasets --dir=examples/quickstart");
    g->add_option("--as", options.principal,
                  "act as this principal; its grants are checked (also PLINTH_PRINCIPAL)")
        ->type_name("PRINCIPAL");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* ls = Subcommand(g, "ls", "list objects (with --versions their stored versions)", kStorageExits,
                              "plinth bucket ls bucket.datasets raw/ --versions --dir=examples/quickstart");
    ls->add_option("ADDR", "the bucket's address in the state")->required();
    ls->add_option("PREFIX", "only keys that start with PREFIX");
    ls->add_flag("--versions", options.versions, "also list each object's stored versions");
    Json(ls, "print the objects as JSON");
    CLI::App* put =
        Subcommand(g, "put", "store a file as an object", kStorageExits,
                   "plinth bucket put bucket.datasets raw/sample.bin sample.bin --dir=examples/quickstart");
    put->add_option("ADDR", "the bucket's address in the state")->required();
    put->add_option("KEY", "the object's key")->required();
    put->add_option("FILE", "the file to store")->required();
    CLI::App* get =
        Subcommand(g, "get", "read an object (an archived one is read back transparently)", kStorageExits,
                   "plinth bucket get bucket.datasets raw/sample.bin - --dir=examples/quickstart");
    get->add_option("ADDR", "the bucket's address in the state")->required();
    get->add_option("KEY", "the object's key")->required();
    get->add_option("FILE|-", "where to write it; - or none: standard output");
    get->add_option("--version", options.version, "read this stored version (see ls --versions)")
        ->type_name("ID");
    CLI::App* rm = Subcommand(g, "rm", "remove an object (kept as a stored version when versioning is on)",
                              kStorageExits,
                              "plinth bucket rm bucket.datasets raw/sample.bin --dir=examples/quickstart");
    rm->add_option("ADDR", "the bucket's address in the state")->required();
    rm->add_option("KEY", "the object's key")->required();
    rm->add_option("--version", options.version, "remove only this stored version")->type_name("ID");
  }
  {
    CLI::App* g =
        Command(&root, "storage", "lifecycle, capacity and backup work on the workspace's buckets",
                CommandId::kStorage, kStorageExits, "plinth storage status --dir=examples/quickstart");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* sweep =
        Subcommand(g, "sweep", "run the lifecycle rules, capacity alerts and backups that are due",
                   kStorageExits, "plinth storage sweep --dry-run --dir=examples/quickstart");
    sweep->add_flag("--dry-run", options.dry_run, "show what is due; change nothing, run no backup");
    sweep
        ->add_option("--now", options.now,
                     "the sweep's clock (drills and tests), RFC 3339 or 2026-11-20T10:00")
        ->type_name("TIME");
    Json(sweep, "print the sweep as JSON");
    CLI::App* status = Subcommand(g, "status", "show what a sweep would do now; nothing changes",
                                  kStorageExits, "plinth storage status --json --dir=examples/quickstart");
    status->add_option("--now", options.now, "the time to judge what is due at")->type_name("TIME");
    Json(status, "print the status as JSON");
  }
  {
    CLI::App* g = Command(&root, "backup", "a bucket's restic backups in another region", CommandId::kBackup,
                          kStorageExits, "plinth backup list bucket.datasets --dir=examples/quickstart");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* run = Subcommand(g, "run", "take a backup now", kStorageExits,
                               "plinth backup run bucket.datasets --dir=examples/quickstart");
    run->add_option("ADDR", "the bucket's address in the state")->required();
    Json(run, "print the snapshot as JSON");
    CLI::App* list = Subcommand(g, "list", "list the bucket's snapshots", kStorageExits,
                                "plinth backup list bucket.datasets --json --dir=examples/quickstart");
    list->add_option("ADDR", "the bucket's address in the state")->required();
    Json(list, "print the snapshots as JSON");
    CLI::App* check = Subcommand(g, "check", "check the backup repository's integrity", kStorageExits,
                                 "plinth backup check bucket.datasets --read-data --dir=examples/quickstart");
    check->add_option("ADDR", "the bucket's address in the state")->required();
    check->add_flag("--read-data", options.read_data, "also read and verify all data (slow)");
  }
  {
    CLI::App* c =
        Command(&root, "restore", "restore a bucket from its backups", CommandId::kRestore, kStorageExits,
                "plinth restore bucket.datasets --at=2026-11-20T10:00 --to=/tmp/datasets "
                "--dir=examples/quickstart");
    c->add_option("ADDR", "the bucket's address in the state")->required();
    c->add_option("--at", options.at_time,
                  "the latest backup at or before TIME (RFC 3339, or UTC 2026-11-20T10:00)")
        ->type_name("TIME");
    c->add_option("--snapshot", options.snapshot, "this snapshot (see backup list); instead of --at")
        ->type_name("ID");
    c->add_option("--to", options.to, "restore into this directory instead of into the bucket")
        ->type_name("DIR");
    Dir(c, "the configuration directory (default: .)");
    Workspace(c);
  }

  // --- workspaces (docs/cli.md, "Workspaces")
  {
    const char* exits =
        "0  done\n"
        "1  no such workspace, it exists already, it still manages resources, it is locked or current\n"
        "2  usage error";
    CLI::App* g = Command(&root, "workspace", "list, create, select and delete the workspaces of a directory",
                          CommandId::kWorkspace, exits, "plinth workspace list --dir=examples/quickstart");
    Dir(g, "the configuration directory (default: .)");
    g->add_option("--state-key-file", options.state_key_file,
                  "the state's encryption key: 64 hex digits, mode 600 (also PLINTH_STATE_KEY_FILE)")
        ->type_name("FILE");
    Backend(g);
    CLI::App* list = Subcommand(g, "list", "list the workspaces that have state; * marks the current one",
                                exits, "plinth workspace list --dir=examples/quickstart");
    Json(list, "print the workspaces as JSON");
    Subcommand(g, "show", "print the current workspace's name", exits,
               "plinth workspace show --dir=examples/quickstart");
    CLI::App* create = Subcommand(g, "new", "create a workspace's (empty) state and select it", exits,
                                  "plinth workspace new staging --dir=examples/quickstart");
    create->add_option("NAME", "the new workspace: letters, digits, '_', '-' and '.', not first")->required();
    CLI::App* select =
        Subcommand(g, "select", "make a workspace the directory's current one (for every command)", exits,
                   "plinth workspace select staging --dir=examples/quickstart");
    select->add_option("NAME", "an existing workspace, or default")->required();
    CLI::App* del = Subcommand(g, "delete", "delete a workspace's state; refused while it manages resources",
                               exits, "plinth workspace delete staging --dir=examples/quickstart");
    del->add_option("NAME", "the workspace to delete (not the current one)")->required();
    del->add_flag("--force", options.force,
                  "delete it although it manages resources (they are forgotten, not destroyed)");
  }

  // --- GPUs (docs/gpu.md)
  {
    const char* list_exits =
        "0  devices listed\n"
        "1  an error (a device that fails discovery, a CUDA module of another version)\n"
        "2  usage error\n"
        "3  no GPU: no driver, no device, or the CUDA module was not built";
    const char* probe_exits =
        "0  the probe passed every check\n"
        "1  an error (the device failed, a baseline that cannot be used, a record not written)\n"
        "2  usage error\n"
        "3  no GPU: no driver, no device, or the CUDA module was not built\n"
        "4  the probe failed a check: the node must not take work";
    CLI::App* g = Command(&root, "gpu", "list GPUs and probe them before work lands on them", CommandId::kGpu,
                          probe_exits, "plinth gpu probe --level=quick");
    CLI::App* list =
        Subcommand(g, "list", "list the CUDA devices: name, memory, compute capability, ECC, versions",
                   list_exits, "plinth gpu list --json");
    Json(list, "print the devices as JSON");
    CLI::App* probe =
        Subcommand(g, "probe", "measure and check a GPU: bandwidth, GEMM burn-in, memory patterns",
                   probe_exits, "plinth gpu probe --level=full --device=0 --record=gpu0.json");
    Json(probe, "print the probe's record as JSON");
    probe->add_option("--level", options.gpu.level, "quick (seconds: the gate before work) or full (minutes)")
        ->type_name("quick|full");
    probe
        ->add_option("--device", options.gpu.device,
                     "the GPU's index (default 0), or cpu: the host through the CPU reference kernels")
        ->type_name("N|cpu");
    probe
        ->add_option("--fake-fault", options.gpu.fake_fault,
                     "fail as this fault would: bandwidth, gemm or memory (tests of the gate)")
        ->type_name("KIND");
    probe->add_option("--record", options.gpu.record, "write the probe's record (JSON) to FILE")
        ->type_name("FILE");
    probe
        ->add_option("--baseline", options.gpu.baseline,
                     "an earlier record of this device: bandwidth is judged against it instead of the peak")
        ->type_name("FILE");
    probe->add_flag("--metrics", options.gpu.metrics, "print the results as Prometheus text");
    probe
        ->add_option("--min-peak-fraction", options.gpu.min_peak_fraction,
                     "pass when triad bandwidth >= X of the theoretical peak (default 0.75)")
        ->type_name("X");
    probe
        ->add_option("--min-baseline-fraction", options.gpu.min_baseline_fraction,
                     "with --baseline: pass when triad >= X of the baseline's (default 0.9)")
        ->type_name("X");
    probe
        ->add_option("--max-gemm-mismatches", options.gpu.max_gemm_mismatches,
                     "mismatched GEMM elements allowed (default 0)")
        ->type_name("N");
    probe
        ->add_option("--max-memory-errors", options.gpu.max_memory_errors,
                     "memory test errors allowed (default 0)")
        ->type_name("N");
    probe
        ->add_option("--memory-fraction", options.gpu.memory_fraction,
                     "fraction of free memory the pattern test covers (default: quick 0.1, full 0.9)")
        ->type_name("X");
    probe
        ->add_option("--gemm-seconds", options.gpu.gemm_seconds,
                     "seconds of GEMM burn-in per precision (default: quick 2 and 1, full 60 and 30)")
        ->type_name("S");
  }

  // --- import (docs/cli.md, "Importing existing objects")
  {
    CLI::App* c =
        Command(&root, "import", "take an existing object under management as ADDR, by its provider's ID",
                CommandId::kImport,
                "0  imported (with --print-config: printed)\n"
                "1  errors: ADDR is not in the configuration or already managed, or the provider "
                "cannot read the object\n"
                "2  usage error",
                "plinth import --dir=examples/quickstart marker.logs logs/today");
    // `import ADDR ID` and `import DIR ADDR ID`: DIR is taken only when it
    // names an existing directory, else the words go to ADDR and ID.
    c->validate_positionals();
    c->add_option("DIR", "the configuration directory (default: .)")->check(CLI::ExistingDirectory);
    c->add_option("ADDR",
                  "the resource instance to import to, as plans spell it: marker.logs, bucket.b[\"k\"]")
        ->required();
    c->add_option(
         "ID", "the provider's id for the object: a marker's path, a bucket's REGION/NAME, a region's name")
        ->required();
    c->add_flag(
        "--print-config", options.print_config,
        "record nothing; print a resource block for the object (ADDR is TYPE.NAME; it need not be declared)");
    Json(c, "print what was imported as JSON");
    Workspace(c);
    Dir(c, "the configuration directory (instead of DIR)");
    Vars(c);
  }

  // --- the quantum state-vector simulator (docs/qpu.md)
  {
    const char* exits =
        "0  the program ran; counts printed\n"
        "1  the program has errors, cannot be read, needs more memory than allowed, or --device=gpu has no "
        "GPU\n"
        "2  usage error";
    CLI::App* g =
        Command(&root, "qpu", "run OpenQASM 2 programs on the state-vector simulator (docs/qpu.md)",
                CommandId::kQpu, exits, "plinth qpu run examples/qpu/bell.qasm --shots=1000 --seed=7");
    CLI::App* run =
        Subcommand(g, "run", "simulate an OpenQASM 2 program and print the counts of its measurements", exits,
                   "plinth qpu run examples/qpu/bell.qasm --shots=1000 --seed=7 --json");
    run->add_option("FILE", "the OpenQASM 2 program (.qasm)")->required();
    run->add_option("--shots", options.qpu_shots, "how many times to run and measure (default 1024)")
        ->type_name("N");
    run->add_option("--seed", options.qpu_seed, "the sampling seed (default: random, printed)")
        ->type_name("S");
    run->add_option("--max-memory", options.qpu_max_memory,
                    "refuse programs whose state vector (16*2^qubits bytes) exceeds SIZE, e.g. 4G")
        ->type_name("SIZE");
    run->add_option("--device", options.qpu_device,
                    "where the state vector lives: auto (a GPU when one is usable, else the CPU), cpu or gpu")
        ->type_name("auto|cpu|gpu");
    Json(run, "print the counts as one JSON object");
  }

  // --- compute pools and jobs on the local provider (docs/compute.md)
  {
    const char* exits =
        "0  done (job submit --wait: the job succeeded)\n"
        "1  an error (no such pool or job, the queue cannot be opened); job submit --wait: the job failed "
        "or was cancelled\n"
        "2  usage error";
    CLI::App* g =
        Command(&root, "job", "submit and follow jobs on a workspace's compute pools", CommandId::kJob, exits,
                "plinth job submit --pool=east/train --gpus=1 -- python3 train.py");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* submit = Subcommand(g, "submit", "queue a command on a pool; prints the job's id", exits,
                                  "plinth job submit --pool=east/train --gpus=1 --wait -- python3 train.py");
    submit->add_option("--pool", options.job.pool, "the pool's id, REGION/POOL")
        ->type_name("REGION/POOL")
        ->required();
    submit->add_option("--name", options.job.name, "a name for people (default: the command's name)")
        ->type_name("N");
    submit->add_option("--cpus", options.job.cpus, "CPUs per task (default 1)")->type_name("N");
    submit->add_option("--memory", options.job.memory, "memory per task, e.g. 4GiB (default: not limited)")
        ->type_name("SIZE");
    submit->add_option("--gpus", options.job.gpus, "GPUs per task (default 0)")->type_name("N");
    submit->add_option("--env", options.job.env, "an environment variable of the job (repeatable)")
        ->type_name("K=V")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    submit
        ->add_option(
            "--secret-env", options.job.secret_env,
            "pass plinth's own variable K to the job as a secret: sealed, never recorded (repeatable)")
        ->type_name("K")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    submit->add_option("--timeout", options.job.timeout, "kill the job after this long, e.g. 30s, 2h")
        ->type_name("DUR");
    submit
        ->add_option("--retries-infra", options.job.retries_infra,
                     "retries after infrastructure failures (node lost; default 3)")
        ->type_name("N");
    submit
        ->add_option("--retries-program", options.job.retries_program,
                     "retries after program failures (non-zero exit, signal, timeout; default 0)")
        ->type_name("N");
    submit->add_option("--after", options.job.after, "run only after job ID succeeded (repeatable)")
        ->type_name("ID")
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    submit->add_flag("--wait", options.job.wait, "wait for the job to end; the exit code says how it ended");
    submit->add_option("ARGV", options.job.argv, "the command and its arguments, after --")->required();
    CLI::App* ls = Subcommand(g, "ls", "list jobs: id, status, attempts, node, reason", exits,
                              "plinth job ls --pool=east/train --json");
    ls->add_option("--pool", options.job.pool, "only this pool's jobs")->type_name("REGION/POOL");
    ls->add_flag("--all", options.job.all, "also jobs that ended (default: only pending and running ones)");
    Json(ls, "print the jobs as JSON");
    CLI::App* logs = Subcommand(g, "logs", "print a job's output (stdout and stderr of every attempt)", exits,
                                "plinth job logs east/train/finetune-0123456789 --follow");
    logs->add_option("ID", "the job's id")->required();
    logs->add_flag("--follow", options.job.follow, "keep printing new output until the job ends");
    CLI::App* cancel = Subcommand(g, "cancel",
                                  "cancel a job: pending ones at once, running ones by SIGTERM to "
                                  "their process group (SIGKILL 10 s later)",
                                  exits, "plinth job cancel east/train/finetune-0123456789");
    cancel->add_option("ID", "the job's id")->required();
  }
  {
    const char* exits =
        "0  done (resume, suspend: every node was handled: started, stopped, or already so)\n"
        "1  an error (the queue cannot be opened; agent: the node failed its health gate; resume, suspend: a "
        "node could not be handled, or the provisioner file cannot be used)\n"
        "2  usage error (also a malformed hostlist)\n"
        "4  resume-fail: the nodes were reported and set DOWN";
    CLI::App* g = Command(&root, "compute",
                          "the workspace's compute pools, nodes and queue; Slurm's power-saving programs",
                          CommandId::kCompute, exits, "plinth compute status --dir=examples/compute");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* status =
        Subcommand(g, "status", "pools, nodes with state and age, the queue by status, GPU-hours used", exits,
                   "plinth compute status --metrics");
    Json(status, "print the status as JSON");
    status->add_flag("--metrics", options.job.metrics, "print Prometheus text (plinth_compute_*)");
    CLI::App* agent =
        Subcommand(g, "agent", "run one node's agent (internal: started by plinth itself)", exits,
                   "plinth compute agent --compute-dir=.plinth/default/compute --node=east-train-1");
    agent->group("");  // hidden
    agent->add_option("--compute-dir", options.job.compute_dir, "the workspace's compute directory")
        ->type_name("DIR")
        ->required();
    agent->add_option("--node", options.job.node, "the node's name")->type_name("NAME")->required();
    // Slurm power saving (docs/providers/slurm.md): slurmctld runs these.
    const char* provisioner_help =
        "the provisioner file: node -> config, spool, pid file (default: $PLINTH_SLURM_PROVISIONER)";
    CLI::App* resume =
        Subcommand(g, "resume", "start slurmd for each node of HOSTLIST (Slurm's ResumeProgram)", exits,
                   "plinth compute resume --provisioner=/d/provisioner.json 'gpu[1-3,5]'");
    resume->add_option("HOSTLIST", "Slurm hostlist expression, e.g. gpu[1-3,5],cpu1")->required();
    resume->add_option("--provisioner", options.slurm_provisioner, provisioner_help)->type_name("FILE");
    CLI::App* suspend =
        Subcommand(g, "suspend", "stop each node's slurmd and what it left (Slurm's SuspendProgram)", exits,
                   "plinth compute suspend --provisioner=/d/provisioner.json gpu1");
    suspend->add_option("HOSTLIST", "Slurm hostlist expression")->required();
    suspend->add_option("--provisioner", options.slurm_provisioner, provisioner_help)->type_name("FILE");
    CLI::App* fail = Subcommand(
        g, "resume-fail", "report nodes that did not come up and set them DOWN (Slurm's ResumeFailProgram)",
        exits, "plinth compute resume-fail --provisioner=/d/provisioner.json gpu2");
    fail->add_option("HOSTLIST", "Slurm hostlist expression")->required();
    fail->add_option("--provisioner", options.slurm_provisioner, provisioner_help)->type_name("FILE");
  }

  // --- the controller (docs/controller.md)
  {
    CLI::App* c =
        Command(&root, "controller",
                "run the workspace's controller: leader election, storage sweeps and backup "
                "schedules, /healthz /metrics /status",
                CommandId::kController,
                "0  stopped by SIGTERM or SIGINT (the lease released); --once: the pass had no error\n"
                "1  cannot start (directory, lease database, token, address in use); --once: the pass "
                "had an error\n"
                "2  usage error",
                "plinth controller examples/quickstart --listen=127.0.0.1:9464");
    c->add_option("DIR", "the configuration directory (default: .)");
    Dir(c, "the configuration directory (instead of DIR)");
    Workspace(c);
    c->add_option("--listen", options.controller.listen,
                  "serve /healthz, /metrics, /status on HOST:PORT (default 127.0.0.1:0: a free port, shown "
                  "in status)")
        ->type_name("HOST:PORT");
    c->add_flag("--allow-remote", options.controller.allow_remote,
                "allow a --listen address other than 127.0.0.x (the endpoints have no TLS)");
    c->add_option("--interval", options.controller.interval, "time between passes of the loop (default 2s)")
        ->type_name("DUR");
    c->add_option("--lease-ttl", options.controller.lease_ttl,
                  "how long the leader's lease lasts unrenewed (default 10s); a standby takes over within "
                  "lease-ttl + interval")
        ->type_name("DUR");
    c->add_option("--sweep-every", options.controller.sweep_every,
                  "time between storage sweeps (lifecycle, alerts, due backups) while leading (default 1m)")
        ->type_name("DUR");
    c->add_option("--drift-interval", options.controller.drift_interval,
                  "time between drift checks (refresh and plan; corrections where lifecycle "
                  "correct_drift = true) while leading (default 5m; 0: no drift checks)")
        ->type_name("DUR");
    c->add_flag("--once", options.controller.once,
                "run one pass, print the status, release the lease and exit");
    c->add_option("--git", options.git,
                  "sync the workspace from a branch of a git repository (docs/gitops.md): DIR is then a path in "
                  "it and --dir the workspace's directory")
        ->type_name("REPO[@BRANCH]");
    c->add_option("--sync-interval", options.controller.sync_interval,
                  "with --git: time between fetches of the repository (default 1m; a webhook syncs at once)")
        ->type_name("DUR");
    c->add_flag("--auto-apply", options.controller.auto_apply,
                "with --git: apply each new commit's plan; without it a plan waits for plinth approve PLAN_ID");
    c->add_option("--webhook-secret-file", options.controller.webhook_secret_file,
                  "with --git: accept POST /hooks/git signed with this secret (HMAC-SHA-256, as GitHub and "
                  "Gitea sign); the file's mode must be 600")
        ->type_name("FILE");
  }
  {
    CLI::App* c = Command(&root, "status", "the workspace controller's status: leader, term, loops, sweeps",
                          CommandId::kStatus,
                          "0  a controller is running (its status printed)\n"
                          "1  no controller: none ever ran, or its status is stale (not updated for "
                          "3 intervals or one lease ttl)\n"
                          "2  usage error",
                          "plinth status examples/quickstart --json");
    c->add_option("DIR", "the configuration directory (default: .)");
    Dir(c, "the configuration directory (instead of DIR)");
    Workspace(c);
    Json(c, "print the status document (docs/controller.md) with \"live\" added");
  }
  {
    CLI::App* c = Command(&root, "approve", "approve the plan a controller syncing from git holds (docs/gitops.md)",
                          CommandId::kApprove,
                          "0  approved: the controller applies the plan at its next pass\n"
                          "1  no such plan waits (none does, or another one: its id is printed)\n"
                          "2  usage error",
                          "plinth approve 3f9c2a7be01d4c55 --dir=/srv/plinth/prod");
    c->add_option("PLAN_ID", options.paths, "the id the controller's status and log print")->required();
    Dir(c, "the workspace's directory (default: .)");
    Workspace(c);
  }

  // --- region drills (docs/services.md, "Regions that fail")
  {
    const char* exits =
        "0  done (also: the region was already failed, or already healthy)\n"
        "1  an error (unknown region, no workspace, the link or the replicas could not be changed)\n"
        "2  usage error";
    CLI::App* g =
        Command(&root, "region", "fail and recover a region at run time (drills), and show the regions",
                CommandId::kRegion, exits, "plinth region fail eu examples/inference");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* fail = Subcommand(g, "fail",
                                "cut a region off: its namespace's link down, or (without isolation) its "
                                "replicas stopped with SIGSTOP; recorded until recover",
                                exits, "plinth region fail eu examples/inference");
    fail->add_option("NAME", "the region's name")->required();
    fail->add_option("DIR", "the configuration directory (default: .)");
    CLI::App* recover =
        Subcommand(g, "recover", "undo fail: the link up, or the replicas continued (SIGCONT)", exits,
                   "plinth region recover eu examples/inference");
    recover->add_option("NAME", "the region's name")->required();
    recover->add_option("DIR", "the configuration directory (default: .)");
    CLI::App* delay =
        Subcommand(g, "delay",
                   "inject latency (and loss) into a namespaced region's traffic with tc netem; "
                   "0ms removes it",
                   exits, "plinth region delay eu 50ms --loss=1% examples/inference");
    delay->add_option("NAME", "the region's name")->required();
    delay->add_option("DELAY", "the added latency, e.g. 50ms (0ms: none)")->required();
    delay->add_option("DIR", "the configuration directory (default: .)");
    delay->add_option("--loss", options.region_loss, "drop this share of the region's packets, e.g. 1%")
        ->type_name("PCT");
    CLI::App* status = Subcommand(g, "status", "the regions: host, isolation, link, failed since", exits,
                                  "plinth region status examples/inference --json");
    status->add_option("DIR", "the configuration directory (default: .)");
    Json(status, "print the regions as JSON");
  }

  // --- alerts (docs/automation.md, "Alert rules")
  {
    const char* exits =
        "0  done\n"
        "1  an error (the configuration has errors, no controller state, an unknown silence)\n"
        "2  usage error";
    CLI::App* g = Command(&root, "alert",
                          "the alert rules: export them for Prometheus, show their state, silence them",
                          CommandId::kAlert, exits, "plinth alert export examples/inference --out=rules.yml");
    g->alias("alerts");
    Dir(g, "the configuration directory (default: .)");
    Workspace(g);
    CLI::App* ex = Subcommand(g, "export",
                              "write the alert blocks as a Prometheus rule file (promtool check rules accepts it)",
                              exits, "plinth alert export examples/inference --out=rules.yml");
    ex->add_option("DIR", "the configuration directory (default: .)");
    ex->add_option("--out", options.out, "write the file here instead of stdout")->type_name("FILE");
    CLI::App* st = Subcommand(g, "status", "each alert rule's state as the controller last evaluated it", exits,
                              "plinth alert status examples/inference");
    st->add_option("DIR", "the configuration directory (default: .)");
    Json(st, "print the controller's alerts section as JSON");
    CLI::App* si = Subcommand(g, "silence",
                              "mute the alerts matching every MATCHER (name=\"v\", name!=\"v\", name=~\"re\", "
                              "name!~\"re\") for a while; the controller sends none of them until it ends",
                              exits, "plinth alert silence 'alertname=ModelSlow' --for=2h --comment='deploy' --dir=examples/inference");
    si->add_option("MATCHER", "a label matcher; give one or more")->required()->expected(-1);
    si->add_option("--for", options.alert.duration, "how long it holds (default 1h)")->type_name("DURATION");
    si->add_option("--comment", options.alert.comment, "why (shown by silences)");
    si->add_option("--author", options.alert.author, "who (default: $USER)");
    Json(si, "print the new silence as JSON");
    CLI::App* ls = Subcommand(g, "silences", "the active and pending silences", exits,
                              "plinth alert silences examples/inference");
    ls->add_option("DIR", "the configuration directory (default: .)");
    Json(ls, "print the silences as JSON");
    CLI::App* exp = Subcommand(g, "expire", "end a silence now", exits, "plinth alert expire 3f2a... --dir=examples/inference");
    exp->add_option("ID", "the silence's id (see: plinth alert silences)")->required();
  }

  // --- about plinth itself
  Command(&root, "version", "print the version", CommandId::kVersion, kPlainExits, "plinth version");
  {
    CLI::App* c = Command(&root, "help", "print the overview, or a command's usage, options and exit codes",
                          CommandId::kHelp,
                          "0  done\n"
                          "2  no such command",
                          "plinth help state rm");
    c->add_option("COMMAND", raw.help_topic, "a command, and a subcommand of it")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_flag("--list-commands", raw.list_commands, "print every command path, one a line")->group("");
  }
  {
    CLI::App* g =
        Command(&root, "completion", "print a shell completion script", CommandId::kCompletion, kPlainExits,
                "plinth completion bash > ~/.local/share/bash-completion/completions/plinth");
    Subcommand(g, "bash", "the bash completion script (commands, subcommands, options)", kPlainExits,
               "source <(plinth completion bash)   # in ~/.bashrc");
  }
}

// ------------------------------------------------------------ the tree

std::vector<const CLI::App*> Children(const CLI::App* app) {
  return app->get_subcommands([](const CLI::App*) { return true; });
}

// The subcommands people see (help, summaries, "did you mean",
// completion): not the internal ones, whose group is empty.
std::vector<const CLI::App*> Listed(const CLI::App* app) {
  return app->get_subcommands([](const CLI::App* c) { return !c->get_group().empty(); });
}

const CLI::App* Child(const CLI::App* app, const std::string& name) {
  for (const CLI::App* c : Children(app)) {
    if (c->get_name() == name) return c;
  }
  return nullptr;
}

// "state rm"; "" for the root.
std::string PathOf(const CLI::App* app) {
  std::string path;
  for (; app->get_parent() != nullptr; app = app->get_parent()) {
    path = path.empty() ? app->get_name() : app->get_name() + " " + path;
  }
  return path;
}

std::string CommandText(const CLI::App* app) {
  std::string path = PathOf(app);
  return path.empty() ? "plinth" : "plinth " + path;
}

// The command the arguments selected: the deepest parsed subcommand.
const CLI::App* Selected(const CLI::App& root) {
  const CLI::App* app = &root;
  for (auto subs = app->get_subcommands(); !subs.empty(); subs = app->get_subcommands()) app = subs.front();
  return app;
}

void Walk(const CLI::App* app, std::vector<const CLI::App*>& out) {
  for (const CLI::App* c : Children(app)) {
    out.push_back(c);
    Walk(c, out);
  }
}

std::vector<const CLI::Option*> Positionals(const CLI::App* app) {
  return app->get_options([](const CLI::Option* o) { return o->get_positional(); });
}

// The options a command accepts, as its help lists them: its own, then its
// group's (reached by fallthrough), then --no-color and the help flag; hidden
// ones left out.
std::vector<const CLI::Option*> OptionsOf(const CLI::App* app) {
  std::vector<const CLI::Option*> out, last;
  for (const CLI::App* a = app; a != nullptr; a = a->get_fallthrough() ? a->get_parent() : nullptr) {
    for (const CLI::Option* o : a->get_options()) {
      if (o->get_positional() || o->get_group().empty()) continue;
      if (o->check_lname("help") || o->check_lname("no-color")) {
        if (a == app || !o->check_lname("help")) last.push_back(o);
        continue;
      }
      out.push_back(o);
    }
  }
  std::sort(last.begin(), last.end(), [](const CLI::Option* a, const CLI::Option* b) {
    return a->check_lname("no-color") > b->check_lname("no-color");
  });
  out.insert(out.end(), last.begin(), last.end());
  return out;
}

bool IsFlag(const CLI::Option* o) {
  return o->get_expected_max() == 0;
}

// "--threads=N", "--var NAME=VALUE", "-h, --help", "--json".
std::string OptionText(const CLI::Option* o) {
  std::string text;
  for (const std::string& s : o->get_snames()) text += "-" + s + ", ";
  for (const std::string& l : o->get_lnames()) text += "--" + l + ", ";
  text.resize(text.size() - 2);
  if (!IsFlag(o)) {
    const std::string type = o->get_type_name();
    text += (type.find('=') != std::string::npos ? " " : "=") + type;
  }
  return text;
}

std::string PositionalText(const CLI::Option* o) {
  std::string name = o->get_name();
  bool many = o->get_items_expected_max() > 1;
  if (o->get_required()) return many ? name + "..." : name;
  return "[" + name + "]" + (many ? "..." : "");
}

std::string UsageLine(const CLI::App* app) {
  std::string line = "Usage: " + CommandText(app);
  if (!Children(app).empty()) line += " <command>";
  line += " [options]";
  for (const CLI::Option* p : Positionals(app)) line += " " + PositionalText(p);
  return line;
}

std::string Indented(const std::string& lines) {
  std::string out;
  size_t begin = 0;
  while (begin < lines.size()) {
    size_t end = lines.find('\n', begin);
    if (end == std::string::npos) end = lines.size();
    out += "  " + lines.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  return out;
}

// Two columns: the name, then its one-line description.
std::string Table(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [name, text] : rows) width = std::max(width, name.size());
  width = std::min<size_t>(width, 24);
  std::string out;
  for (const auto& [name, text] : rows) {
    out += "  " + name + std::string(name.size() < width ? width - name.size() : 0, ' ') + "  " + text + "\n";
  }
  return out;
}

std::string Summary(const CLI::App* app) {
  std::string s = app->get_description();
  std::vector<std::string> names;
  for (const CLI::App* c : Listed(app)) names.push_back(c->get_name());
  if (!names.empty() && app->get_parent() != nullptr) {
    std::string list;
    for (size_t i = 0; i < names.size(); ++i) list += (i ? ", " : "") + names[i];
    // A description that ends with its own parenthesis ("(docs/qpu.md)")
    // takes the subcommands inside it: "(run; docs/qpu.md)".
    size_t open = s.rfind(" (");
    if (!s.empty() && s.back() == ')' && open != std::string::npos)
      s.insert(open + 2, list + "; ");
    else
      s += " (" + list + ")";
  }
  return s;
}

// A summary as the paragraph under the usage line: a sentence.
std::string Sentence(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  if (!s.empty() && s.back() != '.') s += '.';
  return s;
}

std::string HelpText(const Definition& d, const CLI::App* app) {
  std::string out = UsageLine(app) + "\n\n" + Sentence(app->get_description()) + "\n";
  if (std::vector<const CLI::App*> children = Listed(app); !children.empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const CLI::App* c : children) rows.emplace_back(c->get_name(), Summary(c));
    out += "\nCommands:\n" + Table(rows);
  }
  if (std::vector<const CLI::Option*> positionals = Positionals(app); !positionals.empty()) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const CLI::Option* p : positionals) rows.emplace_back(p->get_name(), p->get_description());
    out += "\nArguments:\n" + Table(rows);
  }
  std::vector<std::pair<std::string, std::string>> rows;
  for (const CLI::Option* o : OptionsOf(app)) rows.emplace_back(OptionText(o), o->get_description());
  out += "\nOptions:\n" + Table(rows);
  if (const CommandDoc* doc = d.Doc(app)) {
    if (!doc->exit_codes.empty()) out += "\nExit codes:\n" + Indented(doc->exit_codes);
    if (!doc->example.empty()) out += "\nExample:\n" + Indented(doc->example);
  }
  if (app->get_parent() == nullptr) {
    out +=
        "\nRun 'plinth help COMMAND' or 'plinth COMMAND --help' for a command's options; docs/cli.md has "
        "more.\n";
  } else if (!Children(app).empty()) {
    out += "\nRun '" + CommandText(app) + " COMMAND --help' for a command's options.\n";
  }
  return out;
}

// ------------------------------------------------------------ did you mean

// Optimal string alignment distance: insertions, deletions, substitutions
// and transpositions of neighbours each cost 1.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The candidate closest to `word`, if it is close enough to be what was meant:
// a few edits away (more for longer words), or `word` is a prefix of it.
std::string Closest(const std::string& word, const std::vector<std::string>& candidates) {
  auto bare = [](std::string_view s) {
    while (!s.empty() && s.front() == '-') s.remove_prefix(1);
    return s;
  };
  std::string_view w = bare(word);
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const std::string& c : candidates) {
    std::string_view b = bare(c);
    size_t distance = EditDistance(w, b);
    if (w.size() >= 3 && b.substr(0, w.size()) == w) distance = std::min<size_t>(distance, 1);
    if (distance < best_distance) {
      best_distance = distance;
      best = c;
    }
  }
  size_t allowed = std::max<size_t>(2, w.size() / 4);
  return best_distance <= allowed && best_distance < w.size() ? best : "";
}

int UsageError(const CLI::App* app, const std::string& message) {
  std::fprintf(stderr, "%s: %s\nrun '%s --help' for usage\n", CommandText(app).c_str(), message.c_str(),
               CommandText(app).c_str());
  return 2;
}

int UnknownCommand(const CLI::App* app, const std::string& word) {
  std::vector<std::string> names;
  for (const CLI::App* c : Listed(app)) names.push_back(c->get_name());
  std::string message = "unknown command '" + word + "'";
  if (std::string near = Closest(word, names); !near.empty()) message += "; did you mean '" + near + "'?";
  return UsageError(app, message);
}

int UnknownOption(const Definition& d, const CLI::App* app, const std::string& arg) {
  std::string name = arg.substr(0, arg.find('='));
  std::vector<std::string> known;
  for (const CLI::Option* o : OptionsOf(app)) {
    for (const std::string& l : o->get_lnames()) known.push_back("--" + l);
  }
  std::string message = "unknown option '" + name + "'";
  if (std::string near = Closest(name, known); !near.empty()) {
    message += "; did you mean '" + near + "'?";
  } else {
    // An option of other commands: say which.
    std::vector<const CLI::App*> all;
    Walk(&d.root, all);
    std::vector<std::string> takers;
    for (const CLI::App* c : all) {
      if (!Children(c).empty()) continue;
      for (const CLI::Option* o : OptionsOf(c)) {
        if (name.size() > 2 && name.rfind("--", 0) == 0 && o->check_lname(name.substr(2))) {
          takers.push_back(PathOf(c));
          break;
        }
      }
    }
    if (!takers.empty()) {
      message += " (";
      for (size_t i = 0; i < takers.size() && i < 4; ++i) message += (i ? ", " : "") + takers[i];
      message += takers.size() > 4 ? ", ... take it)" : (takers.size() == 1 ? " takes it)" : " take it)");
    }
  }
  return UsageError(app, message);
}

// ------------------------------------------------------------ completion

std::string BashCompletion(const Definition& d) {
  std::vector<const CLI::App*> all = {&d.root};
  Walk(&d.root, all);
  auto join = [](const std::vector<std::string>& words) {
    std::string s;
    for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
    return s;
  };
  std::string commands, options;
  for (const CLI::App* app : all) {
    std::vector<std::string> names, flags;
    for (const CLI::App* c : Listed(app)) names.push_back(c->get_name());
    for (const CLI::Option* o : OptionsOf(app)) {
      for (const std::string& l : o->get_lnames()) {
        bool inline_value = !IsFlag(o) && o->get_type_name().find('=') == std::string::npos;
        flags.push_back("--" + l + (inline_value ? "=" : ""));
      }
      for (const std::string& s : o->get_snames()) flags.push_back("-" + s);
    }
    std::string path = PathOf(app);
    if (!names.empty()) {
      commands += "    \"" + path + "\") echo \"" + join(names) + "\" ;;\n";
      // plinth help COMMAND...: the same tree under "help".
      commands += "    \"help" + (path.empty() ? "" : " " + path) + "\") echo \"" + join(names) + "\" ;;\n";
    }
    options += "    \"" + path + "\") echo \"" + join(flags) + "\" ;;\n";
  }
  return "# bash completion for plinth " + std::string(kVersion) +
         ", generated by `plinth completion bash` from the command\n"
         "# definitions. Install it for your user with\n"
         "#   plinth completion bash > ~/.local/share/bash-completion/completions/plinth\n"
         "# or load it from ~/.bashrc with: source <(plinth completion bash)\n"
         "\n"
         "_plinth_commands() {\n"
         "  case \"$1\" in\n" +
         commands +
         "  esac\n"
         "}\n"
         "\n"
         "_plinth_options() {\n"
         "  case \"$1\" in\n" +
         options +
         "  esac\n"
         "}\n"
         "\n"
         "_plinth() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} path=\"\" word i\n"
         "  # The command path so far: the words that name a (sub)command.\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    word=${COMP_WORDS[i]}\n"
         "    case \" $(_plinth_commands \"$path\") \" in\n"
         "      *\" $word \"*) path=${path:+$path }$word ;;\n"
         "    esac\n"
         "  done\n"
         "  COMPREPLY=()\n"
         "  if [[ $cur == -* ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$(_plinth_options \"$path\")\" -- \"$cur\"))\n"
         "    if [[ ${#COMPREPLY[@]} == 1 && ${COMPREPLY[0]} == *= ]]; then compopt -o nospace 2>/dev/null; "
         "fi\n"
         "  elif [[ $cur != = && ${COMP_WORDS[COMP_CWORD-1]} != = ]]; then\n"
         "    COMPREPLY=($(compgen -W \"$(_plinth_commands \"$path\")\" -- \"$cur\"))\n"
         "  fi\n"
         "  # Otherwise (arguments, option values): file names, by -o default.\n"
         "}\n"
         "\n"
         "complete -o default -F _plinth plinth\n";
}

// ------------------------------------------------------------ after parsing

bool ParseNumber(const std::string& text, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

bool ParseBool(const std::string& text, bool* out) {
  if (text == "true")
    *out = true;
  else if (text == "false")
    *out = false;
  else
    return false;
  return true;
}

// Checks and converts what CLI11 left as text; fills options.paths.
// `workspace_dir`: the directory whose selected workspace applies.
bool Finish(Definition& d, const CLI::App* command, std::string* error, std::string* workspace_dir) {
  Options& o = d.options;
  RawValues& raw = d.raw;
  uint64_t n = 0;
  if (!raw.threads.empty()) {
    if (!ParseNumber(raw.threads, &n) || n > std::numeric_limits<unsigned>::max()) {
      return *error = "--threads takes a number", false;
    }
    o.threads = static_cast<unsigned>(n);
  }
  if (!raw.summary_limit.empty()) {
    if (!ParseNumber(raw.summary_limit, &n) || n < 1000 || n > 10'000'000)
      return *error = "--summary-limit takes a number of characters from 1000 to 10000000", false;
    o.summary_limit = static_cast<size_t>(n);
  }
  if ((!o.base.empty() || !o.head.empty() || !o.artifacts.empty() || !raw.summary_limit.empty()) && o.git.empty())
    return *error = "--base, --head, --artifacts and --summary-limit plan a pull request: they go with --git=REPO", false;
  if (!o.head.empty() && o.base.empty()) return *error = "--head goes with --base (the branch it is compared with)", false;
  if (!o.base.empty() && (!o.out.empty() || o.json))
    return *error = "--base writes the plan's artifacts (--artifacts) and prints Markdown; drop --out and --json", false;
  if (!raw.parallelism.empty()) {
    if (!ParseNumber(raw.parallelism, &n) || n > std::numeric_limits<unsigned>::max()) {
      return *error = "--parallelism takes a number", false;
    }
    if (n == 0) return *error = "--parallelism must be at least 1", false;
    o.parallelism = static_cast<unsigned>(n);
  }
  if (!raw.at_serial.empty()) {
    if (!ParseNumber(raw.at_serial, &n) || n > uint64_t{std::numeric_limits<int64_t>::max()}) {
      return *error = "--at takes a serial number", false;
    }
    o.at_serial = static_cast<int64_t>(n);
  }
  if (!raw.refresh.empty() && !ParseBool(raw.refresh, &o.refresh)) {
    return *error = "--refresh takes true or false", false;
  }
  if (!raw.lock.empty() && !ParseBool(raw.lock, &o.lock)) return *error = "--lock takes true or false", false;
  if (!raw.lock_timeout.empty() && !ParseDuration(raw.lock_timeout, &o.lock_timeout_ms)) {
    return *error = "--lock-timeout takes a duration (30s, 5m)", false;
  }
  o.color = !raw.no_color;
  // --var and --var-file in command-line order: later values win.
  size_t next_var = 0, next_file = 0;
  for (const CLI::Option* opt : command->parse_order()) {
    if (opt->get_name() == "--var-file" && next_file < d.var_files.size()) {
      o.vars.push_back({true, "", d.var_files[next_file++]});
    } else if (opt->get_name() == "--var" && next_var < d.vars.size()) {
      const std::string& v = d.vars[next_var++];
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0)
        return *error = "--var takes NAME=VALUE, got '" + v + "'", false;
      o.vars.push_back({false, v.substr(0, eq), v.substr(eq + 1)});
    }
  }
  // A group's subcommand runs the group's function, which reads the
  // subcommand's name first: `state mv A B` -> {"mv", "A", "B"}.
  std::vector<std::string> paths;
  if (command->get_fallthrough()) paths.push_back(command->get_name());
  for (const CLI::Option* p : Positionals(command)) {
    for (const std::string& r : p->results()) paths.push_back(r);
  }
  // The directory, as DIR or as --dir (not both): --dir=D is D given as DIR.
  // DIR need not come first (`region fail NAME DIR`).
  std::vector<const CLI::Option*> positionals = Positionals(command);
  auto dir_at = std::find_if(positionals.begin(), positionals.end(),
                             [](const CLI::Option* p) { return p->get_name().rfind("DIR", 0) == 0; });
  if (dir_at != positionals.end()) std::rotate(positionals.begin(), dir_at, dir_at + 1);
  std::string dir = o.dir;
  if (!o.git.empty()) {
    // --git: DIR is a path in the repository and --dir the workspace's
    // directory (cli/git_source.h resolves both).
    std::error_code ec;
    if (!positionals.empty() && positionals[0]->count() > 0 && positionals[0]->get_name() == "DIR|FILE" &&
        std::filesystem::is_regular_file(positionals[0]->results()[0], ec) &&
        std::filesystem::path(positionals[0]->results()[0]).extension() != ".plinth") {
      return *error = "a saved plan records where its configuration came from; drop --git", false;
    }
    o.paths = std::move(paths);
    *workspace_dir = dir.empty() ? "." : dir;
    return true;
  }
  if (!positionals.empty() && positionals[0]->get_name().rfind("DIR", 0) == 0) {
    std::error_code ec;
    const bool saved_plan = positionals[0]->count() > 0 && positionals[0]->get_name() == "DIR|FILE" &&
                            std::filesystem::is_regular_file(positionals[0]->results()[0], ec) &&
                            std::filesystem::path(positionals[0]->results()[0]).extension() != ".plinth";
    if (saved_plan && (!o.dir.empty() || !raw.workspace.empty())) {
      return *error = "a saved plan records its directory and workspace; drop " +
                      std::string(o.dir.empty() ? "--workspace" : "--dir"),
             false;
    }
    if (positionals[0]->count() > 0 && !o.dir.empty()) {
      return *error = "the directory is given twice, as " + positionals[0]->get_name() + " '" +
                      positionals[0]->results()[0] + "' and as --dir='" + o.dir + "'; give one of them",
             false;
    }
    if (positionals[0]->count() > 0) {
      if (std::filesystem::is_directory(positionals[0]->results()[0], ec)) dir = positionals[0]->results()[0];
    } else if (!o.dir.empty()) {
      paths.push_back(o.dir);
    }
  }
  o.paths = std::move(paths);
  *workspace_dir = dir.empty() ? "." : dir;
  return true;
}

// Sets options.workspace: --workspace, else $PLINTH_WORKSPACE, else the one
// selected for `dir`, else default; read only where a command works on a
// workspace. False, after printing why, when the selection record is not
// usable (`workspace select` and `workspace new`, which rewrite it, ignore it).
bool ResolveWorkspace(Definition& d, const CLI::App* command, const std::string& dir) {
  const bool workspace_group = d.Doc(command) != nullptr && d.Doc(command)->id == CommandId::kWorkspace;
  bool takes_workspace = workspace_group;
  for (const CLI::Option* opt : OptionsOf(command)) takes_workspace |= opt->check_lname("workspace");
  if (!d.raw.workspace.empty()) {
    d.options.workspace = d.raw.workspace;
  } else if (takes_workspace) {
    std::string error;
    d.options.workspace = CurrentWorkspace(dir, &error);
    const bool rewrites =
        workspace_group && (command->get_name() == "select" || command->get_name() == "new");
    if (!error.empty() && !rewrites) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

ParsedCommandLine ParseCommandLine(std::vector<std::string> args) {
  ParsedCommandLine result;
  int usage_status = 2;
  auto done = [&result, &usage_status](int code) {
    result.command = CommandId::kNone;
    result.exit_code = code == 2 ? usage_status : code;
    return std::move(result);
  };
  Definition d;
  if (args.empty()) {
    std::fputs(HelpText(d, &d.root).c_str(), stderr);
    return done(2);
  }
  // Terraform's single-dash spelling of a long option (`-auto-approve`,
  // `-var-file=F`) is that option; -h stays the one short option. Only known
  // names are rewritten, so an argument such as `-` keeps its meaning.
  {
    std::set<std::string> long_names;
    std::vector<const CLI::App*> all = {&d.root};
    Walk(&d.root, all);
    for (const CLI::App* app : all) {
      for (const CLI::Option* o : app->get_options()) {
        for (const std::string& l : o->get_lnames()) long_names.insert(l);
      }
    }
    for (std::string& a : args) {
      if (a == "--") break;
      if (a.size() > 2 && a[0] == '-' && a[1] != '-' && long_names.count(a.substr(1, a.find('=') - 1)) > 0) {
        a.insert(0, "-");
      }
    }
  }
  // With --detailed-exitcode, 2 means "changes pending": a usage error is 1.
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a == "--detailed-exitcode" || a.rfind("--detailed-exitcode=", 0) == 0) usage_status = 1;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    d.root.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::fputs(HelpText(d, Selected(d.root)).c_str(), stdout);
    return done(0);
  } catch (const CLI::RequiredError& e) {
    const CLI::App* app = Selected(d.root);
    for (const CLI::Option* p : Positionals(app)) {
      if (p->get_required() && p->count() == 0) return done(UsageError(app, "missing " + p->get_name()));
    }
    return done(UsageError(app, e.what()));
  } catch (const CLI::ArgumentMismatch& e) {
    // "--var: 1 required NAME=VALUE missing": an option without its value.
    std::string what = e.what();
    std::string option = what.substr(0, what.find(':'));
    if (what.find("missing") != std::string::npos && option.rfind("-", 0) == 0) {
      return done(UsageError(Selected(d.root), option + " needs a value"));
    }
    return done(UsageError(Selected(d.root), what));
  } catch (const CLI::ParseError& e) {
    return done(UsageError(Selected(d.root), e.what()));
  }

  const CLI::App* command = Selected(d.root);
  // What no command took: an unknown option or command, or one argument too many.
  for (const CLI::App* a = command; a != nullptr; a = a->get_parent()) {
    // Words a command passed on to its group (fallthrough) are said of the
    // command; words before the command's name (`plinth --bogus plan`), of
    // the group or of plinth itself.
    const CLI::App* via = command;
    while (via != a && via->get_fallthrough()) via = via->get_parent();
    const CLI::App* context = via == a ? command : a;
    for (const std::string& extra : a->remaining()) {
      if (extra == "--") continue;
      if (extra.size() > 1 && extra[0] == '-') return done(UnknownOption(d, context, extra));
      if (!Children(context).empty()) return done(UnknownCommand(context, extra));
      return done(UsageError(context, "unexpected argument '" + extra + "'"));
    }
  }
  if (d.raw.version) {
    std::printf("plinth %s\n", kVersion);
    return done(0);
  }
  if (command == &d.root) {
    std::fputs(HelpText(d, &d.root).c_str(), stderr);
    return done(2);
  }
  const CommandDoc* doc = d.Doc(command);
  const CommandId id = doc ? doc->id : CommandId::kNone;
  if (id == CommandId::kHelp) {
    if (d.raw.list_commands) {
      std::vector<const CLI::App*> all;
      Walk(&d.root, all);
      for (const CLI::App* c : all) std::printf("%s\n", PathOf(c).c_str());
      return done(0);
    }
    const CLI::App* topic = &d.root;
    for (const std::string& word : d.raw.help_topic) {
      const CLI::App* next = Child(topic, word);
      if (next == nullptr) return done(UnknownCommand(topic, word));
      topic = next;
    }
    std::fputs(HelpText(d, topic).c_str(), stdout);
    return done(0);
  }
  if (!Children(command).empty()) {
    std::string names;
    for (const CLI::App* c : Children(command)) names += (names.empty() ? "" : ", ") + c->get_name();
    return done(UsageError(command, "missing command (" + names + ")"));
  }
  if (id == CommandId::kVersion) {
    std::printf("plinth %s\n", kVersion);
    return done(0);
  }
  if (id == CommandId::kCompletion) {
    std::fputs(BashCompletion(d).c_str(), stdout);
    return done(0);
  }
  std::string error;
  std::string workspace_dir;
  if (!Finish(d, command, &error, &workspace_dir)) return done(UsageError(command, error));
  if (!ResolveWorkspace(d, command, workspace_dir)) return done(1);
  result.command = id;
  result.options = std::move(d.options);
  return result;
}

std::string ClosestName(const std::string& word, const std::vector<std::string>& candidates) {
  return Closest(word, candidates);
}

}  // namespace plinth::cli
