// What the controller's drift task (cli/drift_task.h, docs/controller.md
// "Drift") may correct, decided from a refresh's findings and a plan alone,
// so the rules are tested without a controller:
//  - only a resource whose lifecycle sets correct_drift = true, or whose
//    own `drift` attribute says "correct" (OptsInToCorrection);
//  - only an in-place update: a resource deleted outside Plinth is never
//    created again, a replacement is never run;
//  - never a service: its apply waits for the leading controller to
//    converge its replicas, and that controller is the one running the task.
// And, for the targeted plan a correction applies (reviewed under the
// workspace lock before anything runs): which of its changes go beyond
// those updates, so the correction is cancelled with nothing changed.
#pragma once

#include <set>
#include <string>

#include "runtime/engine/engine.h"

namespace plinth::runtime {

struct DriftDecision {
  enum class Verdict : uint8_t {
    kReport,   // not opted in, or the plan does not change it: reported only
    kCorrect,  // opted in and an in-place update: apply its plan
    kRefuse,   // opted in but not correctable: `reason` says why and what to run
  } verdict = Verdict::kReport;
  std::string reason;  // lowercase, names the command to run instead
};

// Whether `planned` opts in to correction: its lifecycle sets
// correct_drift = true, or its own `drift` attribute is "correct" (the
// config_file of the local provider, docs/providers/local.md).
bool OptsInToCorrection(const PlannedResource& planned);

// `planned`: the resource's entry in the plan made with the refresh that
// found `drift`; null when the configuration no longer has it.
DriftDecision DecideDrift(const DriftedResource& drift, const PlannedResource* planned);

// Whether `planned` is a change that apply recorded while its maintenance
// window was closed and that is due now the window is open: a `package`
// with a `window` whose plan is an in-place update of what dpkg reports
// (`installed`, `held`) only, its configuration unchanged since apply
// recorded it (docs/packages.md, "Changes happen only inside the window").
// The controller's drift task applies such changes (an edit nobody has
// applied yet changes configuration attributes too, and is left alone).
bool DueInWindow(const PlannedResource& planned);

// The changes of `plan` other than in-place updates of `wanted` addresses
// (creates, deletes, replacements, moves, imports, other addresses), as
// "marker.x (create), bucket.y (delete)"; "" when there are none.
std::string ChangesBeyond(const Plan& plan, const std::set<std::string>& wanted);

}  // namespace plinth::runtime
