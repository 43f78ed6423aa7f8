// The drift task's rules (runtime/engine/drift.h): what it corrects, what it
// only reports, what it refuses with a reason, and which changes of a
// targeted plan cancel a correction.
#include <gtest/gtest.h>

#include "runtime/engine/drift.h"

namespace plinth::runtime {
namespace {

using Verdict = DriftDecision::Verdict;

PlannedResource Planned(const std::string& address, Action action, bool correct_drift,
                        const std::string& type = "marker") {
  PlannedResource pr;
  pr.address = address;
  pr.type = type;
  pr.action = action;
  pr.correct_drift = correct_drift;
  return pr;
}

TEST(DriftRules, OnlyAnOptedInInPlaceUpdateIsCorrected) {
  const DriftedResource edited{"marker.a", {"content"}, false};
  PlannedResource update = Planned("marker.a", Action::Update, true);
  EXPECT_EQ(DecideDrift(edited, &update).verdict, Verdict::kCorrect);
  EXPECT_EQ(DecideDrift(edited, &update).reason, "");

  PlannedResource not_opted = Planned("marker.a", Action::Update, false);
  EXPECT_EQ(DecideDrift(edited, &not_opted).verdict, Verdict::kReport);
  EXPECT_EQ(DecideDrift(edited, &not_opted).reason, "");

  // ignore_changes covers the drift: the plan keeps it, nothing to correct.
  PlannedResource kept = Planned("marker.a", Action::NoOp, true);
  EXPECT_EQ(DecideDrift(edited, &kept).verdict, Verdict::kReport);

  // No longer in the configuration: reported only.
  EXPECT_EQ(DecideDrift(edited, nullptr).verdict, Verdict::kReport);
}

TEST(DriftRules, CreatesReplacementsAndServicesAreRefusedWithTheCommandToRun) {
  const DriftedResource gone{"marker.a", {}, true};
  PlannedResource create = Planned("marker.a", Action::Create, true);
  DriftDecision d = DecideDrift(gone, &create);
  EXPECT_EQ(d.verdict, Verdict::kRefuse);
  EXPECT_NE(d.reason.find("never creates; run plinth apply"), std::string::npos) << d.reason;

  const DriftedResource edited{"bucket.b", {"region"}, false};
  PlannedResource replace = Planned("bucket.b", Action::Replace, true, "bucket");
  d = DecideDrift(edited, &replace);
  EXPECT_EQ(d.verdict, Verdict::kRefuse);
  EXPECT_NE(d.reason.find("would replace it"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("plinth apply --target bucket.b"), std::string::npos) << d.reason;

  const DriftedResource replicas{"service.api", {"replicas_running"}, false};
  PlannedResource service = Planned("service.api", Action::Update, true, "service");
  d = DecideDrift(replicas, &service);
  EXPECT_EQ(d.verdict, Verdict::kRefuse);
  EXPECT_NE(d.reason.find("does not apply services"), std::string::npos) << d.reason;

  PlannedResource moved = Planned("marker.a", Action::Update, true);
  moved.moved_from = "marker.old";
  EXPECT_EQ(DecideDrift({"marker.a", {"content"}, false}, &moved).verdict, Verdict::kRefuse);
}

TEST(DriftRules, ATargetedPlanMayOnlyUpdateTheWantedAddresses) {
  Plan plan;
  plan.resources.push_back(Planned("marker.a", Action::Update, true));
  plan.resources.push_back(Planned("marker.b", Action::NoOp, false));
  EXPECT_EQ(ChangesBeyond(plan, {"marker.a"}), "");

  plan.resources.push_back(Planned("marker.c", Action::Create, false));
  plan.resources.push_back(Planned("marker.d", Action::Update, false));
  EXPECT_EQ(ChangesBeyond(plan, {"marker.a"}), "marker.c (create), marker.d (update)");

  Plan replacing;
  replacing.resources.push_back(Planned("marker.a", Action::Replace, true));
  EXPECT_EQ(ChangesBeyond(replacing, {"marker.a"}), "marker.a (replace)");

  Plan importing;
  importing.resources.push_back(Planned("marker.a", Action::NoOp, true));
  importing.resources.back().import_id = "m/a";
  EXPECT_EQ(ChangesBeyond(importing, {"marker.a"}), "marker.a (import \"m/a\")");
}

// A package change apply recorded while its window was closed is due once
// the plan (inside the window) changes only what dpkg reports; an edit not
// applied yet, a package without a window, or another type is not.
TEST(DriftRules, OnlyARecordedPackageChangeIsDueInItsWindow) {
  PlannedResource due = Planned("package.htop", Action::Update, false, "package");
  due.planned["window"] = Value::Object({{"name", Value::String("nightly")}});
  due.changes.push_back({"installed", Value::String("1.0-1"), Value::String("1.1-1"), false});
  due.changes.push_back({"held", Value::Bool(false), Value::Bool(true), false});
  EXPECT_TRUE(DueInWindow(due));
  PlannedResource edited = due;
  edited.changes.push_back({"version", Value::String("1.0-1"), Value::String("1.1-1"), false});
  EXPECT_FALSE(DueInWindow(edited)) << "an edit nobody applied";
  PlannedResource no_window = due;
  no_window.planned.erase("window");
  EXPECT_FALSE(DueInWindow(no_window));
  PlannedResource nothing = due;
  nothing.action = Action::NoOp;
  nothing.changes.clear();
  EXPECT_FALSE(DueInWindow(nothing));
  PlannedResource other = due;
  other.type = "config_file";
  EXPECT_FALSE(DueInWindow(other));
  PlannedResource replace = due;
  replace.action = Action::Replace;
  EXPECT_FALSE(DueInWindow(replace));
}

}  // namespace
}  // namespace plinth::runtime
