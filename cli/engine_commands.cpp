// plan, apply, destroy and output: the CLI side of runtime/engine.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/git_source.h"
#include "cli/pr_plan.h"
#include "cli/provenance.h"
#include "cli/workspace.h"
#include "compiler/types/user_json.h"
#include "runtime/engine/engine.h"
#include "runtime/io/durable.h"
#include "runtime/process/process.h"

namespace plinth::cli {

namespace {

// First Ctrl-C: stop starting changes, let running ones finish (they are
// journaled either way). Second: leave at once; the next run reconciles.
// The terminal sends Ctrl-C to Plinth's process group only: every child
// (restic, a provider) has a group of its own (docs/process.md), so it sees
// neither. On the second, the children are killed with Plinth, as no change
// may go on unobserved once it is gone: the next plan reads what they left.
std::atomic<bool> stop_requested{false};

void OnInterrupt(int) {
  if (stop_requested.exchange(true)) {
    process::SignalAllChildren(SIGKILL);
    const char msg[] =
        "\nAborted: running changes were cut short. Run plinth plan to see where things stand.\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(130);
  }
  const char msg[] = "\nStopping: no new changes start; running ones finish. Press Ctrl-C again to abort.\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
}

void InstallInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  // Restart the system calls the signal lands in (a provider's pipe, the
  // state's file): the first Ctrl-C must not fail the running changes.
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool Colored(const Options& o, FILE* stream) {
  const char* no_color = std::getenv("NO_COLOR");
  return o.color && !(no_color && *no_color) && isatty(fileno(stream));
}

// One line per change started, finished or failed (stderr). On a terminal
// a summary line under them is redrawn: done/total, running, failed, time.
std::function<void(const runtime::ProgressEvent&)> ProgressPrinter(bool live) {
  struct Counts {
    std::mutex mu;
    size_t started = 0, finished = 0, failed = 0;
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  };
  auto counts = std::make_shared<Counts>();
  return [counts, live](const runtime::ProgressEvent& e) {
    std::lock_guard<std::mutex> lock(counts->mu);
    switch (e.kind) {
      case runtime::ProgressEvent::Kind::Started: ++counts->started; break;
      case runtime::ProgressEvent::Kind::Finished: ++counts->finished; break;
      case runtime::ProgressEvent::Kind::Failed: ++counts->failed; break;
      case runtime::ProgressEvent::Kind::Still: break;
    }
    // The line may quote a provider's or a child's message: never raw.
    const std::string line = runtime::EscapeControls(e.line);
    if (!live) {
      std::fprintf(stderr, "%s\n", line.c_str());
      std::fflush(stderr);
      return;
    }
    const size_t ended = counts->finished + counts->failed;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - counts->since).count();
    std::fprintf(stderr, "\r\033[K%s\n[%zu/%zu done, %zu running, %zu failed, %.1f s]", line.c_str(),
                 counts->finished, e.total, counts->started - std::min(counts->started, ended),
                 counts->failed, secs);
    if (ended >= e.total) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  };
}

// Empty (after printing why) when the configuration directory does not
// exist or the state key file is unusable: no command creates a directory
// that is not there.
std::optional<runtime::EngineOptions> EngineOptionsFrom(const Options& o, const VariableSources& vars) {
  runtime::EngineOptions eo;
  eo.config_dir = !o.dir.empty() ? o.dir : o.paths.empty() ? "." : o.paths[0];
  if (!ExistingDir(eo.config_dir) || !StateKey(o, &eo.state_key)) return std::nullopt;
  eo.lock_timeout_ms = o.lock_timeout_ms;
  eo.on_lock_wait = [ms = o.lock_timeout_ms](const std::string& holder) {
    std::fprintf(stderr, "waiting up to %s for the workspace lock: %s\n", FormatDuration(static_cast<double>(ms)).c_str(),
                 holder.c_str());
  };
  eo.workspace = o.workspace;
  UseGitSource(o, &eo);
  eo.variable_sources = vars;
  eo.parallelism = o.parallelism;
  eo.targeting = {o.targets, o.excludes, o.replace};
  eo.refresh = o.refresh;
  eo.lock = o.lock;
  if (!o.json) eo.progress = ProgressPrinter(isatty(fileno(stderr)) != 0);
  return eo;
}

void PrintProblems(const runtime::EngineResult& r, const SourceManager& sources, const Diagnostics& diags,
                   const Options& o) {
  RenderOptions ro;
  ro.color = Colored(o, stderr);
  std::fputs(RenderText(diags.Sorted(sources), sources, ro).c_str(), stderr);
  // Notes, errors and problems quote providers and child processes
  // (restic's stderr, a provider's error): control characters are escaped.
  for (const std::string& n : r.notes) std::fprintf(stderr, "note: %s\n", runtime::EscapeControls(n).c_str());
  for (const std::string& e : r.errors)
    std::fprintf(stderr, "error: %s\n", runtime::EscapeControls(e).c_str());
  for (const runtime::PlanProblem& p : r.plan.problems) {
    // A problem of a resource block says where the block is, unless its
    // message names places itself (conflicts between several blocks).
    std::string where;
    if (p.range.valid()) {
      const SourceFile& f = sources.Get(p.range.file);
      LineCol lc = f.Position(p.range.begin);
      where = f.path() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column);
    }
    std::string line = p.message;
    if (!where.empty() && p.message.find(where) == std::string::npos) {
      bool names_address = !p.address.empty() && p.message.find(p.address) != std::string::npos;
      line = where + ": " + (names_address || p.address.empty() ? "" : p.address + ": ") + p.message;
    }
    std::fprintf(stderr, "error: %s\n", runtime::EscapeControls(line).c_str());
  }
}

void PrintOutputs(const std::vector<OutputValue>& outputs) {
  if (outputs.empty()) return;
  std::printf("\nOutputs:\n");
  for (const OutputValue& out : outputs)
    std::printf("  %s = %s\n", out.name.c_str(), out.value.ToString().c_str());
}

}  // namespace

int Plan(const Options& o, const VariableSources& vars, bool destroy) {
  if (!o.generate_config_out.empty()) {
    if (int rc = GenerateImportConfig(o, vars, destroy || o.destroy)) return rc;
  }
  SourceManager sources;
  Diagnostics diags;
  std::optional<runtime::EngineOptions> eo = EngineOptionsFrom(o, vars);
  if (!eo) return 1;
  runtime::Engine engine(std::move(*eo), sources, diags);
  // Released by the process exit (main leaves with _Exit right after): at
  // 100k resources freeing the plan is a noticeable share of the run.
  runtime::EngineResult& r = *new runtime::EngineResult(engine.Plan(destroy || o.destroy));
  destroy = destroy || o.destroy;
  // From git: the commits behind each change (cli/provenance.h).
  if (o.from_git && r.ok && !diags.has_errors()) TraceAndReport(o, r.plan, sources);
  if (o.from_git && !o.from_git->compare.empty()) {
    // A pull request's plan: Markdown on stdout, the problems on stderr too.
    if (!r.ok || diags.has_errors() || !r.plan.problems.empty()) PrintProblems(r, sources, diags, o);
    return PullRequestPlan(o, r, sources, diags);
  }
  if (o.json) {
    if (!r.ok || diags.has_errors()) {
      nlohmann::json doc = nlohmann::json::parse(RenderJson(diags.Sorted(sources), sources));
      doc["errors"] = r.errors;
      std::cout << doc.dump(2) << "\n";
      return 1;
    }
    std::cout << runtime::RenderPlanJson(r.plan);
  } else {
    PrintProblems(r, sources, diags, o);
    if (!r.ok || diags.has_errors()) return 1;
    std::fputs(runtime::RenderPlanText(r.plan, Colored(o, stdout)).c_str(), stdout);
  }
  if (!r.plan.problems.empty()) {
    if (!o.out.empty())
      std::fprintf(stderr, "error: the plan has problems; it was not saved to %s\n", o.out.c_str());
    return 1;
  }
  if (r.plan.Denied()) {
    if (!o.json) std::fprintf(stderr, "error: the plan is denied by policy; apply would refuse it\n");
    if (!o.out.empty()) {
      std::fprintf(stderr, "error: the plan was not saved to %s; fix what the policy denies and plan again\n",
                   o.out.c_str());
    }
    return 4;
  }
  if (!o.out.empty()) {
    // The saved plan: what apply checks before changing anything. It holds
    // no attribute values (so no secrets), only what identifies the plan.
    std::error_code ec;
    nlohmann::json actions = nlohmann::json::object();
    for (const auto& pr : r.plan.resources) actions[pr.address] = runtime::SavedAction(pr);
    nlohmann::json doc = {
        {"plinth_saved_plan", 1},
        {"config_dir", std::filesystem::absolute(o.paths.empty() ? "." : o.paths[0], ec).string()},
        {"workspace", o.workspace},
        {"destroy", destroy},
        {"state_serial", r.serial},
        {"config_digest", r.config_digest},
        {"actions", actions}};
    if (o.from_git) {
      doc["git"] = {{"home", o.from_git->home},
                    {"tree", o.from_git->tree},
                    {"path", o.from_git->path},
                    {"source", o.from_git->source}};
    }
    // apply FILE plans with the same targeting, or the actions would differ.
    if (!r.plan.targeting.empty()) {
      doc["targeting"] = {{"targets", o.targets}, {"excludes", o.excludes}, {"replace", o.replace}};
    }
    // A fresh, exclusively created temp file renamed over the target: a
    // file or symlink planted at a predictable temp name is never written.
    const char* stage = "write";
    if (int e = io::WriteFileAtomic(o.out, doc.dump(2) + "\n", 0644, &stage)) {
      std::fprintf(stderr, "error: cannot %s '%s': %s\n", stage, o.out.c_str(), std::strerror(e));
      return 1;
    }
    if (!o.json)
      std::printf("\nSaved the plan to %s; apply it with: plinth apply %s\n", o.out.c_str(), o.out.c_str());
  }
  if (o.detailed_exitcode && r.plan.HasChanges()) return 2;
  return 0;
}

namespace {

// A saved plan given to apply: returns false (after printing why) when the
// file is not one.
bool LoadSavedPlan(const std::string& path, Options& o, runtime::Engine::SavedPlan& saved, bool& destroy) {
  std::ifstream f(path);
  nlohmann::json doc = nlohmann::json::parse(f, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("plinth_saved_plan", 0) != 1) {
    std::fprintf(stderr, "error: '%s' is not a plan saved by plinth plan --out\n", path.c_str());
    return false;
  }
  o.paths = {doc.value("config_dir", std::string("."))};
  o.dir.clear();
  if (doc.contains("git") && doc["git"].is_object()) {
    // Made from a commit: its exported tree is read again (trees in the
    // cache never change), and the workspace is where the plan was made.
    const nlohmann::json& g = doc["git"];
    o.from_git = Options::FromGit{g.value("home", std::string()), g.value("tree", std::string()),
                                  g.value("path", std::string()), g.value("source", std::string()), ""};
    std::error_code ec;
    if (o.from_git->home.empty() || !std::filesystem::exists(o.paths[0], ec)) {
      std::fprintf(stderr, "error: the tree plan '%s' was made from (%s) is gone; plan again\n", path.c_str(),
                   o.paths[0].c_str());
      return false;
    }
  }
  o.workspace = doc.value("workspace", std::string("default"));
  destroy = doc.value("destroy", false);
  saved.serial = doc.value("state_serial", int64_t{0});
  saved.config_digest = doc.value("config_digest", std::string());
  if (!o.targets.empty() || !o.excludes.empty() || !o.replace.empty()) {
    std::fprintf(
        stderr,
        "error: a saved plan keeps the --target, --exclude and --replace it was made with; apply '%s' "
        "without them, or make a new plan with them\n",
        path.c_str());
    return false;
  }
  if (doc.contains("targeting") && doc["targeting"].is_object()) {
    auto list = [&](const char* key, std::vector<std::string>& into) {
      const nlohmann::json& v = doc["targeting"].value(key, nlohmann::json::array());
      if (!v.is_array()) return;
      for (const auto& a : v) {
        if (a.is_string()) into.push_back(a.get<std::string>());
      }
    };
    list("targets", o.targets);
    list("excludes", o.excludes);
    list("replace", o.replace);
  }
  if (doc.contains("actions") && doc["actions"].is_object()) {
    for (auto it = doc["actions"].begin(); it != doc["actions"].end(); ++it) {
      if (it.value().is_string()) saved.actions[it.key()] = it.value().get<std::string>();
    }
  }
  return !saved.config_digest.empty();
}

}  // namespace

int Apply(const Options& given, const VariableSources& vars, bool destroy) {
  Options o = given;
  std::error_code ec;
  runtime::Engine::SavedPlan saved;
  bool from_file = !o.paths.empty() && std::filesystem::is_regular_file(o.paths[0], ec) &&
                   std::filesystem::path(o.paths[0]).extension() != ".plinth";
  if (from_file) {
    // A saved plan was reviewed already: no prompt.
    if (!LoadSavedPlan(o.paths[0], o, saved, destroy)) return 1;
    o.auto_approve = true;
  }
  std::optional<runtime::EngineOptions> eo = EngineOptionsFrom(o, vars);
  if (!eo) return 1;
  SourceManager sources;
  Diagnostics diags;
  runtime::Engine engine(*eo, sources, diags);
  // The engine that applies (below) reads the configuration again, into these.
  SourceManager sources2;
  Diagnostics diags2;
  bool shown_no_changes = false;
  if (!from_file && o.auto_approve) {
    // The plan is shown before anything runs, with --auto-approve too (as
    // Terraform does): the engine hands over its first plan, under the
    // workspace lock and before any change, so what is shown is what is
    // applied and nothing is planned twice.
    eo->review = [&](const runtime::EngineResult& first) {
      for (const std::string& n : first.notes)
        std::fprintf(stderr, "note: %s\n", runtime::EscapeControls(n).c_str());
      if (o.from_git) {
        // The commits behind each change, on a copy: the plan applied is the engine's.
        runtime::Plan shown = first.plan;
        TraceAndReport(o, shown, sources2);
        std::fputs(runtime::RenderPlanText(shown, Colored(o, stdout)).c_str(), stdout);
      } else {
        std::fputs(runtime::RenderPlanText(first.plan, Colored(o, stdout)).c_str(), stdout);
      }
      std::fflush(stdout);
      shown_no_changes = !first.plan.HasChanges();
      return true;
    };
  } else if (!from_file) {
    // With a prompt the plan is made and shown before the state is opened
    // for writing (a cancelled apply creates nothing), then applied only if
    // it is still what was approved. A saved plan was shown when it was made.
    runtime::EngineResult preview = engine.Plan(destroy);
    PrintProblems(preview, sources, diags, o);
    if (!preview.ok || diags.has_errors() || !preview.plan.problems.empty()) {
      std::printf("\n%s failed: 0 changed, 0 failed, 0 skipped.\n", destroy ? "Destroy" : "Apply");
      return 1;
    }
    if (o.from_git) TraceAndReport(o, preview.plan, sources);
    std::fputs(runtime::RenderPlanText(preview.plan, Colored(o, stdout)).c_str(), stdout);
    std::fflush(stdout);
    if (preview.plan.Denied()) {
      for (const runtime::PolicyFinding& f : preview.plan.policy_findings) {
        if (f.outcome != runtime::PolicyFinding::Outcome::Violated || !f.deny) continue;
        std::fprintf(stderr, "error: %s\n",
                     runtime::EscapeControls(f.policy + " denies " + f.address + ": " + f.message).c_str());
      }
      std::fprintf(stderr, "error: the plan is denied by policy; nothing was changed\n");
      return 1;
    }
    shown_no_changes = !preview.plan.HasChanges();
    if (!o.auto_approve) {
      if (shown_no_changes) return 0;
      // An answer is read from a pipe only when asked for explicitly: a
      // script that pipes something in by accident must not approve.
      if (!o.approve_from_stdin && !isatty(fileno(stdin))) {
        std::fprintf(stderr,
                     "error: input is not a terminal; pass --auto-approve to apply without a prompt, or "
                     "--approve-from-stdin to read the answer from standard input\n");
        return 1;
      }
      std::printf("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
      std::fflush(stdout);
      std::string answer;
      std::getline(std::cin, answer);
      if (o.approve_from_stdin) std::printf("%s\n", answer == "yes" ? "yes" : "");
      if (answer != "yes") {
        std::printf("Apply cancelled.\n");
        return 1;
      }
    }
    // Apply exactly what was shown and approved: if the state, the
    // configuration or the world changed since, apply refuses.
    saved.what = "approved plan";
    saved.serial = preview.serial;
    saved.config_digest = preview.config_digest;
    for (const auto& pr : preview.plan.resources) saved.actions[pr.address] = runtime::SavedAction(pr);
  }
  eo->stop = &stop_requested;
  InstallInterruptHandler();
  runtime::Engine runner(std::move(*eo), sources2, diags2);
  runtime::EngineResult r = runner.ApplySaved(saved, destroy);
  PrintProblems(r, sources2, diags2, o);
  if (r.ok && r.applied == 0 && !r.plan.HasChanges()) {
    if (!shown_no_changes) {
      std::printf(r.plan.targeting.Restricts()
                      ? "No changes in the targeted resources.\n"
                      : "No changes. The infrastructure matches the configuration.\n");
    }
  } else {
    std::printf("\n%s %s: %zu changed, %zu failed, %zu skipped.\n", destroy ? "Destroy" : "Apply",
                r.ok ? "complete" : "failed", r.applied, r.failed, r.skipped);
  }
  if (!destroy && r.ok) PrintOutputs(r.outputs);
  if (r.plan.targeting.Restricts()) {
    std::fprintf(
        stderr,
        "note: targeting was in effect: %zu other resource%s left as %s (%zu with changes pending); run "
        "plinth plan to see what is pending\n",
        r.plan.left_out, r.plan.left_out == 1 ? " was" : "s were",
        r.plan.left_out == 1 ? "it is" : "they are", r.plan.left_out_changes);
  }
  return r.ok ? 0 : 1;
}

int Refresh(const Options& o) {
  SourceManager sources;
  Diagnostics diags;
  std::optional<runtime::EngineOptions> eo = EngineOptionsFrom(o, {});
  if (!eo) return 1;
  runtime::Engine engine(std::move(*eo), sources, diags);
  runtime::EngineResult r = engine.Refresh();
  PrintProblems(r, sources, diags, o);
  if (!r.ok) return 1;
  if (r.applied == 0) {
    std::printf("The state matches the world; nothing recorded.\n");
  } else {
    std::printf("Recorded %zu refreshed resource%s in serial %lld.\n", r.applied, r.applied == 1 ? "" : "s",
                static_cast<long long>(r.serial));
  }
  return 0;
}

int Output(const Options& o, const VariableSources& vars) {
  SourceManager sources;
  Diagnostics diags;
  Options at_dir = o;
  at_dir.paths.clear();  // the argument is an output name; the directory comes from --dir
  // Outputs come from the configuration and the recorded state: no refresh,
  // no lock, nothing written (it works while an apply runs).
  at_dir.refresh = false;
  at_dir.lock = false;
  std::optional<runtime::EngineOptions> eo = EngineOptionsFrom(at_dir, vars);
  if (!eo) return 1;
  // Outputs are evaluated against the recorded state: a missing state (a
  // mistyped --dir or --workspace) is an error, not outputs computed from
  // nothing.
  eo->require_state = true;
  runtime::Engine engine(std::move(*eo), sources, diags);
  runtime::EngineResult r = engine.Plan(false);
  if (!r.ok) {
    PrintProblems(r, sources, diags, o);
    return 1;
  }
  std::string wanted = o.paths.empty() ? "" : o.paths[0];
  nlohmann::json doc = nlohmann::json::object();
  bool found = wanted.empty();
  for (const OutputValue& out : r.outputs) {
    if (!wanted.empty() && out.name != wanted) continue;
    found = true;
    if (o.json) {
      doc[out.name] = {{"value", ValueToUserJson(out.value)}, {"sensitive", out.sensitive}};
    } else if (!wanted.empty()) {
      // A single output prints its raw value (strings unquoted), for scripts.
      if (out.value.sensitive()) {
        std::printf("(sensitive)\n");
      } else {
        std::printf("%s\n", out.value.kind() == Value::Kind::String ? out.value.as_string().c_str()
                                                                    : out.value.ToString().c_str());
      }
    } else {
      std::printf("%s = %s\n", out.name.c_str(), out.value.ToString().c_str());
    }
  }
  if (!found) {
    std::fprintf(stderr, "error: no output named '%s'\n", wanted.c_str());
    return 1;
  }
  if (o.json) std::cout << doc.dump(2) << "\n";
  return 0;
}

}  // namespace plinth::cli
