// The controller's drift task (cli/drift_task.h, docs/controller.md "Drift").
#include "cli/drift_task.h"

#include "cli/git_source.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "cli/workspace.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/source/source.h"
#include "runtime/engine/drift.h"
#include "runtime/engine/engine.h"
#include "runtime/controller/actions.h"

namespace plinth::cli {

using nlohmann::json;

std::string FirstError(const Diagnostics& diags, const SourceManager& sources) {
  for (const Diagnostic& d : diags.Sorted(sources)) {
    if (d.severity != Severity::Error) continue;
    std::string where;
    if (d.range.valid()) {
      const SourceFile& f = sources.Get(d.range.file);
      LineCol lc = f.Position(d.range.begin);
      where = f.path() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column) + ": ";
    }
    return where + d.message;
  }
  return "the configuration has errors";
}

DriftWatch::DriftWatch(Options options, controller::Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

controller::TaskResult DriftWatch::Pass(int64_t) {
  controller::TaskResult result;
  auto fail = [&](std::string error) {
    error = runtime::EscapeControls(error);
    std::lock_guard<std::mutex> lock(mu_);
    ++checks_;
    last_error_ = error;
    skipped_.clear();
    result.ok = false;
    result.error = std::move(error);
    return result;
  };

  // Syncing from git: the commit applied last, through the tree link.
  if (options_.from_git && !std::filesystem::exists(GitTreeLink(options_.from_git->home, options_.workspace))) {
    result.summary = "no commit applied from git yet";
    return result;
  }
  runtime::EngineOptions eo;
  eo.config_dir = ConfigDirOf(options_);
  if (options_.from_git) {
    eo.home_dir = options_.from_git->home;
    eo.display_root = options_.from_git->tree;
  }
  eo.workspace = options_.workspace;
  eo.variable_sources = VariableSourcesOf(options_);
  eo.parallelism = options_.parallelism;
  eo.refresh = true;
  // Detection writes nothing and takes no lock: a running apply is not
  // disturbed, and open intents are reported, not reconciled.
  eo.lock = false;
  if (!StateKey(options_, &eo.state_key))
    return fail("the state key file is not usable (see the controller's stderr); fix it or unset it");

  SourceManager sources;
  Diagnostics diags;
  runtime::EngineResult planned;
  {
    runtime::Engine engine(eo, sources, diags);
    planned = engine.Plan(false);
  }
  if (diags.has_errors()) return fail("the configuration has errors: " + FirstError(diags, sources));
  if (!planned.ok) {
    return fail(planned.errors.empty() ? "planning failed" : "planning failed: " + planned.errors.front());
  }

  std::map<std::string, const runtime::PlannedResource*> by_address;
  for (const runtime::PlannedResource& pr : planned.plan.resources) by_address[pr.address] = &pr;
  std::vector<DriftFinding> findings;
  std::vector<std::string> targets;
  for (const runtime::DriftedResource& d : planned.drift) {
    DriftFinding f;
    f.address = d.address;
    f.attributes = d.attributes;
    f.deleted = d.deleted;
    auto it = by_address.find(d.address);
    const runtime::PlannedResource* pr = it == by_address.end() ? nullptr : it->second;
    if (pr) {
      f.action = runtime::ActionName(pr->action);
      f.plan_changes = pr->action != runtime::Action::NoOp;
      f.correct_drift = runtime::OptsInToCorrection(*pr);
    }
    runtime::DriftDecision decision = runtime::DecideDrift(d, pr);
    if (decision.verdict == runtime::DriftDecision::Verdict::kCorrect) targets.push_back(d.address);
    f.error = std::move(decision.reason);
    findings.push_back(std::move(f));
  }

  // Changes apply recorded while their maintenance window was closed, due
  // now that it is open (DueInWindow): applied with the corrections.
  struct Due {
    std::string address, detail, window;
    bool applied = false;
    std::string error;
  };
  std::vector<Due> due;
  for (const runtime::PlannedResource& pr : planned.plan.resources) {
    if (!runtime::DueInWindow(pr)) continue;
    Due d{pr.address, "", "", false, ""};
    for (const runtime::AttributeChange& c : pr.changes)
      d.detail += (d.detail.empty() ? "" : ", ") + c.name + " " + c.before.ToString() + " -> " + c.after.ToString();
    if (auto w = pr.planned.find("window"); w != pr.planned.end() && w->second.kind() == Value::Kind::Object) {
      auto name = w->second.as_object().find("name");
      if (name != w->second.as_object().end() && name->second.kind() == Value::Kind::String)
        d.window = name->second.as_string();
    }
    if (std::find(targets.begin(), targets.end(), pr.address) == targets.end()) targets.push_back(pr.address);
    due.push_back(std::move(d));
  }

  // Corrections: the plan restricted to the opted-in addresses, applied as
  // `plinth apply --target` does, under the workspace lock.
  std::string skipped;
  size_t corrected = 0;
  if (!targets.empty()) {
    runtime::EngineOptions ao = eo;
    ao.lock = true;
    ao.targeting.targets = targets;
    const std::set<std::string> wanted(targets.begin(), targets.end());
    std::string unexpected;
    ao.review = [&](const runtime::EngineResult& first) {
      unexpected = runtime::ChangesBeyond(first.plan, wanted);
      return unexpected.empty();
    };
    std::mutex progress_mu;
    std::set<std::string> finished;
    std::map<std::string, std::string> failed;
    ao.progress = [&](const runtime::ProgressEvent& e) {
      std::lock_guard<std::mutex> lock(progress_mu);
      if (e.kind == runtime::ProgressEvent::Kind::Finished) finished.insert(e.address);
      if (e.kind == runtime::ProgressEvent::Kind::Failed) failed[e.address] = e.line;
    };
    SourceManager apply_sources;
    Diagnostics apply_diags;
    runtime::EngineResult applied;
    {
      runtime::Engine runner(std::move(ao), apply_sources, apply_diags);
      applied = runner.Apply(false);
    }
    if (applied.lock_held) {
      skipped = "corrections skipped: the workspace lock is held (" +
                (applied.errors.empty() ? std::string("another command") : applied.errors.front()) +
                "); the next check tries again";
    } else {
      std::string whole_error;
      if (applied.cancelled) {
        whole_error = "not corrected: the targeted plan would also change " + unexpected +
                      "; nothing was changed; run plinth plan to see why";
      } else if (apply_diags.has_errors()) {
        whole_error =
            "not corrected: the configuration has errors: " + FirstError(apply_diags, apply_sources);
      } else if (!applied.errors.empty()) {
        whole_error = "not corrected: " + applied.errors.front();
      }
      for (Due& d : due) {
        if (finished.count(d.address) && !applied.cancelled) {
          d.applied = true;
        } else if (auto it = failed.find(d.address); it != failed.end()) {
          d.error = it->second;
        } else {
          d.error = whole_error.empty() ? "not applied: the apply did not change it" : whole_error;
        }
      }
      for (DriftFinding& f : findings) {
        if (!wanted.count(f.address)) continue;
        if (finished.count(f.address) && !applied.cancelled) {
          f.corrected = true;
          ++corrected;
        } else if (auto it = failed.find(f.address); it != failed.end()) {
          f.error = it->second;
        } else {
          f.error = whole_error.empty() ? "not corrected: the apply did not change it" : whole_error;
        }
      }
    }
  }
  // Each change applied in its window is an automatic action (plinth history).
  size_t applied_in_window = 0;
  json in_window = json::array();
  for (Due& d : due) {
    const std::string reason =
        "maintenance window " + (d.window.empty() ? std::string("?") : d.window) + " is open; recorded by apply";
    if (d.applied) {
      ++applied_in_window;
      std::fprintf(stderr, "controller: %s: apply %s (%s)\n", d.address.c_str(), d.detail.c_str(), reason.c_str());
      std::string e;
      auto log = controller::ActionLog::Open(
          std::filesystem::path(options_.dir) / ".plinth" / options_.workspace / "controller" / "actions.db", true, &e);
      if (!log || !log->Record({0, clock_.WallMs(), "apply", d.address, d.detail, reason}, &e))
        d.error = "applied, but not recorded: " + e;
    }
    in_window.push_back({{"address", runtime::EscapeControls(d.address)},
                         {"change", runtime::EscapeControls(d.detail)},
                         {"window", d.window},
                         {"applied", d.applied},
                         {"error", runtime::EscapeControls(d.error)}});
  }

  // Status quotes addresses (for_each keys) and provider messages: never raw.
  for (DriftFinding& f : findings) {
    f.address = runtime::EscapeControls(f.address);
    f.error = runtime::EscapeControls(f.error);
  }

  size_t drifted = findings.size();
  std::lock_guard<std::mutex> lock(mu_);
  ++checks_;
  corrections_ += static_cast<int64_t>(corrected);
  findings_ = std::move(findings);
  checked_at_ms_ = clock_.WallMs();
  skipped_ = runtime::EscapeControls(skipped);
  last_error_.clear();
  if (drifted == 0) {
    result.summary = "no drift";
  } else {
    result.summary = std::to_string(drifted) + (drifted == 1 ? " resource" : " resources") +
                     " changed outside Plinth, " + std::to_string(corrected) + " corrected";
  }
  in_window_ = std::move(in_window);
  if (applied_in_window > 0)
    result.summary += "; " + std::to_string(applied_in_window) +
                      (applied_in_window == 1 ? " change" : " changes") + " applied in its maintenance window";
  if (!skipped_.empty()) result.summary += "; " + skipped_;
  return result;
}

json DriftWatch::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  json resources = json::array();
  for (const DriftFinding& f : findings_) {
    resources.push_back({{"address", f.address},
                         {"attributes", f.attributes},
                         {"deleted", f.deleted},
                         {"plan_changes", f.plan_changes},
                         {"action", f.action},
                         {"correct_drift", f.correct_drift},
                         {"corrected", f.corrected},
                         {"error", f.error}});
  }
  return {{"checked_at", controller::Rfc3339Ms(checked_at_ms_)},
          {"checks", checks_},
          {"corrections", corrections_},
          {"resources", resources},
          {"in_window", in_window_},
          {"skipped", skipped_},
          {"last_error", last_error_}};
}

void DriftWatch::Metrics(metrics::Exposition& m) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t left = 0;
  for (const DriftFinding& f : findings_) left += f.corrected ? 0 : 1;
  m.GaugeValue(
      "plinth_drift_resources",
      "Managed resources the last drift check found changed outside Plinth and left so (not corrected)",
      static_cast<double>(left));
  m.CounterValue("plinth_drift_checks_total", "Drift checks run by this controller",
                 static_cast<double>(checks_));
  m.CounterValue("plinth_drift_corrections_total",
                 "Drifted resources corrected (lifecycle correct_drift) by this controller",
                 static_cast<double>(corrections_));
}

controller::PeriodicTask DriftWatch::Task(std::chrono::milliseconds every) {
  controller::PeriodicTask t;
  t.name = "drift";
  t.every = every;
  t.run = [this](int64_t term) { return Pass(term); };
  t.status_key = "drift";
  t.status = [this] { return Status(); };
  t.metrics = [this](metrics::Exposition& m) { Metrics(m); };
  return t;
}

}  // namespace plinth::cli
