// The controller's drift task (docs/controller.md, "Drift"): every
// --drift-interval, while leading, load the configuration of the
// controller's DIR as `plinth plan DIR` does (the workspace's variables:
// PLINTH_VAR_ and the automatic variables files), refresh every managed
// resource and plan, without the workspace lock (as `plinth plan
// --lock=false`: nothing is written, a running apply is not disturbed).
// What refresh found changed outside Plinth is recorded per address: the
// names of the attributes that differ (never their values: they may be
// secret), whether the plan would change the resource, and its action.
//
// Changes apply recorded while their maintenance window was closed (a
// package's pinned version: runtime::DueInWindow) are applied the same way
// once the window is open, and recorded as automatic actions (plinth
// history; controller/actions.db).
//
// Correction, opt-in only: drifted resources whose lifecycle sets
// `correct_drift = true` (or, for a config_file, `drift = "correct"`:
// runtime::OptsInToCorrection) and whose plan is an in-place update are applied
// as `plinth apply --target ADDR...` applies (Engine::Apply with those
// targets), holding the workspace lock, taken without waiting: when an
// apply or plan holds it the correction is skipped for this round and the
// status says so. The targeted plan is reviewed under the lock before
// anything runs and the apply is cancelled, changing nothing, when it would
// do anything but those updates (a create, a delete, a replacement, another
// address). A resource deleted outside Plinth, one whose correction would
// replace it, and a service (its apply waits for the leading controller,
// which is this one, busy in this task) are never corrected: each is
// reported with the reason.
//
// A configuration that does not load or check is the task's error (the
// first diagnostic's file:line:col and message); the previous findings
// stay in the status with that error beside them.
//
// Thread safety: Pass on the controller's loop thread; Status and Metrics
// from any thread (they lock the task's own state).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/controller.h"
#include "runtime/metrics/exposition.h"

namespace plinth::cli {

struct DriftFinding {
  std::string address;
  std::vector<std::string> attributes;  // names only; empty when deleted
  bool deleted = false;                 // the object is gone
  bool plan_changes = false;            // the plan would change it (its action is not no-op)
  std::string action;                   // the plan's action for it ("update"); "" when not in the plan
  bool correct_drift = false;           // it opts in to correction (OptsInToCorrection)
  bool corrected = false;               // this check applied its plan
  std::string error;                    // why an opted-in resource was not corrected
};

class DriftWatch {
 public:
  // `options`: the controller's (dir set to its DIR, workspace, state key
  // file). `clock` must outlive the watch.
  DriftWatch(Options options, controller::Clock& clock);

  // One check (and the corrections it allows).
  controller::TaskResult Pass(int64_t term);

  // {checked_at, checks, corrections, resources: [{address, attributes,
  // deleted, plan_changes, action, correct_drift, corrected, error}],
  // skipped, last_error} as of the last pass.
  nlohmann::json Status() const;

  // plinth_drift_resources (gauge: drifted and not corrected in the last
  // check), plinth_drift_checks_total, plinth_drift_corrections_total
  // (counters).
  void Metrics(metrics::Exposition& m) const;

  // The task for the Controller ("drift", status key "drift").
  controller::PeriodicTask Task(std::chrono::milliseconds every);

 private:
  Options options_;
  controller::Clock& clock_;

  mutable std::mutex mu_;  // guards everything below
  std::vector<DriftFinding> findings_;
  // Changes due in their maintenance window at the last check (DueInWindow):
  // [{address, change, window, applied, error}].
  nlohmann::json in_window_ = nlohmann::json::array();
  int64_t checked_at_ms_ = 0;  // wall time of the last check that completed; 0: none
  int64_t checks_ = 0, corrections_ = 0;
  std::string skipped_;     // why the last check's corrections did not run (the lock was held)
  std::string last_error_;  // the last check's error; "" when it completed
};

}  // namespace plinth::cli
