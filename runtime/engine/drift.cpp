// The drift task's rules (runtime/engine/drift.h).
#include "runtime/engine/drift.h"

namespace plinth::runtime {

bool OptsInToCorrection(const PlannedResource& planned) {
  if (planned.correct_drift) return true;
  auto it = planned.planned.find("drift");
  return it != planned.planned.end() && it->second.kind() == Value::Kind::String &&
         it->second.as_string() == "correct";
}

DriftDecision DecideDrift(const DriftedResource& drift, const PlannedResource* planned) {
  using Verdict = DriftDecision::Verdict;
  if (!planned || !OptsInToCorrection(*planned)) return {Verdict::kReport, ""};
  if (drift.deleted) {
    return {Verdict::kRefuse,
            "not corrected: the drift task never creates; run plinth apply to create it again"};
  }
  if (planned->action == Action::NoOp) return {Verdict::kReport, ""};
  if (planned->type == "service") {
    return {
        Verdict::kRefuse,
        "not corrected: a service's apply waits for this controller to converge it, so the drift task does "
        "not apply services; run plinth apply --target " +
            drift.address};
  }
  if (planned->action != Action::Update || !planned->moved_from.empty() || !planned->import_id.empty()) {
    return {Verdict::kRefuse, "not corrected: its plan would " + SavedAction(*planned) +
                                  " it and the drift task only updates in place; run plinth apply --target " +
                                  drift.address};
  }
  return {Verdict::kCorrect, ""};
}

std::string ChangesBeyond(const Plan& plan, const std::set<std::string>& wanted) {
  std::string beyond;
  for (const PlannedResource& pr : plan.resources) {
    const bool plain = pr.moved_from.empty() && pr.import_id.empty();
    if (pr.action == Action::NoOp && plain) continue;
    if (pr.action == Action::Update && plain && wanted.count(pr.address)) continue;
    beyond += (beyond.empty() ? "" : ", ") + pr.address + " (" + SavedAction(pr) + ")";
  }
  return beyond;
}

bool DueInWindow(const PlannedResource& planned) {
  if (planned.type != "package" || planned.action != Action::Update || planned.changes.empty()) return false;
  auto w = planned.planned.find("window");
  if (w == planned.planned.end() || w->second.is_null()) return false;
  for (const AttributeChange& c : planned.changes)
    if (c.name != "installed" && c.name != "held") return false;
  return true;
}

}  // namespace plinth::runtime
