// The engine: plan and apply for one workspace, on top of the checker, the
// planner core, the executor, the state store and the providers.
//
// plan  = reconcile open intents -> refresh (read every managed resource)
//         -> check the configuration with the provider planning each instance
//         -> diff against the refreshed state. Nothing is written.
// apply = lock -> plan -> run the graph; every provider call is bracketed by
//         an intent recorded before it and completed after it, so a kill at
//         any instant leaves either the old or the new resource on record and
//         the next plan finds out which by reading the provider.
// An instance whose planned configuration still depends on values only its
// dependencies' creation reveals is deferred; apply then plans again with
// the new state and runs the next wave, until nothing is deferred.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/check/checker.h"
#include "compiler/diag/diagnostic.h"
#include "runtime/plan/imports.h"
#include "runtime/plan/plan.h"
#include "runtime/provider/provider.h"

namespace plinth::runtime {

struct ProgressEvent {
  // Still: a change running for a while (EngineOptions::heartbeat), so a
  // long create (a job that runs for an hour) is never silent.
  enum class Kind : uint8_t { Started, Finished, Failed, Still } kind = Kind::Started;
  std::string address;
  // "bucket.b: creating...", "bucket.b: created (12 ms)", "bucket.b: failed (3 ms): …",
  // "job.train: still creating... (20 s elapsed)"
  std::string line;
  size_t total = 0;  // changes in this run of the graph
};

struct EngineResult;

struct EngineOptions {
  std::string config_dir;  // where the configuration's files are read
  // Where the workspace's files live (<home_dir>/.plinth/<workspace>: the
  // state, data, compute and controller directories); empty: config_dir.
  // Set apart from config_dir when the configuration comes from a git tree
  // (docs/gitops.md).
  std::string home_dir;
  // Where the configuration's relative program paths resolve when they run
  // (a service's command, a patch command); empty: config_dir. For git, a
  // stable path (a symbolic link re-pointed at each apply's tree), so that a
  // new commit alone does not change every service's working directory.
  std::string run_dir;
  // Files under it are named relative to it in diagnostics and the digest
  // (CheckOptions::display_root): the git tree.
  std::string display_root;
  // Recorded with the apply's serial (state::SerialRecord::source).
  std::string source;
  // Apply: called under the workspace lock when the apply begins, before
  // any change; returning false (with *error) stops it with nothing changed.
  std::function<bool(std::string* error)> on_begin;
  std::string workspace = "default";
  // Root variable values: PLINTH_VAR_ environment values, the variables files
  // and --var options (compiler/check/variable_inputs.h).
  VariableSources variable_sources;
  unsigned parallelism = 10;
  // --target, --exclude, --replace (docs/cli.md, "Targeting"): plan and
  // apply only part of the configuration, or force replacements. Apply
  // replaces in its first wave only; later waves keep the targets.
  Targeting targeting;
  bool refresh = true;
  // Plan takes the workspace lock (it may reconcile interrupted changes,
  // which writes the state). false: read only; open intents are reported,
  // not reconciled, so a plan beside a running apply disturbs nothing.
  bool lock = true;
  // How long plan, apply, destroy, refresh and import wait for a workspace
  // lock another process holds (--lock-timeout; 0: refused at once), and who
  // hears, once, whom they wait for.
  int64_t lock_timeout_ms = 0;
  std::function<void(const std::string&)> on_lock_wait;
  // Where the local provider keeps regions, buckets and markers; empty:
  // <home_dir>/.plinth/<workspace>/data. Apply creates it (mode 0700).
  std::string data_root;
  // The state's encryption key (docs/state.md, "Encryption"): set, a new
  // state is encrypted and an existing one must have been written with it.
  std::optional<std::array<uint8_t, 32>> state_key;
  // Only apply creates the workspace's state (and its data root). Plan,
  // refresh and destroy work on an empty state, in memory, when there is
  // none; with require_state (output) a missing state is an error instead.
  bool require_state = false;
  // Progress, one event per change started, finished or failed, from the
  // executor's worker threads (the callback must be thread-safe).
  std::function<void(const ProgressEvent&)> progress;
  // How often a change still running is reported (Kind::Still); zero: never.
  std::chrono::milliseconds heartbeat{10000};
  // Tests only: wraps the provider the engine uses (fault injection, call
  // counting). Called once, when the state is opened.
  std::function<std::unique_ptr<Provider>(std::unique_ptr<Provider>)> wrap_provider;
  // plan --generate-config-out: an import block whose target is not in the
  // configuration is no problem; the object it reads is returned in
  // EngineResult::generated for the caller to write a block for.
  bool generate_config = false;
  // Set (e.g. on the first Ctrl-C) to start no new change; running ones finish.
  const std::atomic<bool>* stop = nullptr;
  // Apply: called once, under the workspace lock, with the first plan when
  // it has no problems (and the saved plan, if any, still holds), before
  // anything changes — to show it and ask for approval on the plan that is
  // then applied, without planning twice. Returning false stops the apply
  // with nothing changed (EngineResult::cancelled).
  std::function<bool(const EngineResult& first)> review;
};

// A managed resource whose refresh found it changed outside Plinth: the
// names (never the values) of the attributes that differ from the state, or
// `deleted` when the object is gone.
struct DriftedResource {
  std::string address;
  std::vector<std::string> attributes;
  bool deleted = false;
};

struct EngineResult {
  bool ok = false;                  // false: see `errors` and the diagnostics
  std::vector<std::string> errors;  // environment, state and provider errors, one line each
  std::vector<std::string> notes;   // drift found by refresh, intents reconciled
  std::vector<DriftedResource> drift;  // what refresh found changed outside Plinth, by address
  // The workspace lock was held by another live process: nothing was done
  // (the reason is in `errors`).
  bool lock_held = false;
  Plan plan;
  std::vector<OutputValue> outputs;
  int64_t serial = 0;  // the state serial the plan was made against, or the apply's serial
  // Identifies the configuration files and variable values planned and, when
  // the plan deletes data, what its deletes remove ("<sha256>+d<sha256>").
  std::string config_digest;
  size_t applied = 0, failed = 0, skipped = 0;
  bool cancelled = false;  // EngineOptions::review declined: nothing changed
  // Import: what was imported (Engine::Import, ImportObject) or, with
  // generate_config, the objects of import blocks without a resource block.
  std::vector<ImportedObject> generated;
};

class Engine {
 public:
  Engine(EngineOptions options, SourceManager& sources, Diagnostics& diags);
  ~Engine();

  EngineResult Plan(bool destroy = false);
  EngineResult Apply(bool destroy = false);
  // Applies a saved plan: refuses, changing nothing, unless the state is
  // still at `serial`, the configuration and variables still digest to
  // `config_digest` (which covers what the plan's deletes remove), and
  // planning now gives the same action per address. Each delete reads its
  // resource's data again right before it runs and refuses when it grew.
  struct SavedPlan {
    int64_t serial = 0;
    std::string config_digest;
    std::map<std::string, std::string> actions;  // address -> action name
    std::string what = "saved plan";             // how refusals name it ("approved plan" after a prompt)
  };
  EngineResult ApplySaved(const SavedPlan& saved, bool destroy);
  // Reads every managed resource and records what the provider reports
  // (changes made outside Plinth, resources deleted outside it) as a new
  // serial. Changes nothing in the world.
  EngineResult Refresh();
  // `plinth import ADDR ID`: reads the object `id` names with the provider
  // of ADDR's type and records it in the state as ADDR, and nothing else.
  // ADDR must be an instance of the configuration and not in the state.
  // Creates the workspace's state when there is none (as apply does).
  // The imported object is in EngineResult::generated.
  EngineResult Import(const std::string& address, const std::string& id);
  // Reads the object `id` names as a resource of `type` without recording
  // anything (`plinth import --print-config`); in EngineResult::generated.
  EngineResult ImportObject(const std::string& address, const std::string& type, const std::string& id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plinth::runtime
