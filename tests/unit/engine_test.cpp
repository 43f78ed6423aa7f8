// End-to-end tests of the engine against the local provider, with faults
// injected at chosen provider calls (tests/support/fault_provider.h): a
// failing change, a transient error, a hung call with a stop request, a
// second apply or plan while one runs, and what the world and the state
// hold after each.
#include <gtest/gtest.h>

#include <condition_variable>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "runtime/engine/engine.h"
#include "runtime/state/state_store.h"
#include "tests/support/fault_provider.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;
using testing::FaultProvider;
using testing::FaultSpec;
using testing::ParseFaultSpec;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
  }

  void Write(const std::string& text) { std::ofstream(dir_ / "main.plinth") << text; }

  // Marker files that exist in the world.
  size_t Markers() const {
    size_t n = 0;
    std::error_code ec;
    fs::path m = dir_ / ".plinth" / "default" / "data" / "m";
    if (!fs::exists(m, ec)) return 0;
    for (const auto& e : fs::recursive_directory_iterator(m, ec)) n += e.is_regular_file();
    return n;
  }

  // Addresses the state holds.
  size_t StateCount() {
    auto store = state::StateStore::OpenWorkspace(dir_.string(), "default");
    EXPECT_TRUE(store.ok());
    auto rs = store.value()->Resources();
    EXPECT_TRUE(rs.ok());
    return rs.ok() ? rs.value().size() : 0;
  }

  EngineOptions Options(FaultProvider** fault = nullptr, std::optional<FaultSpec> spec = std::nullopt) {
    EngineOptions eo;
    eo.config_dir = dir_.string();
    eo.parallelism = 4;
    if (spec) {
      eo.wrap_provider = [fault, spec](std::unique_ptr<Provider> inner) -> std::unique_ptr<Provider> {
        auto p = std::make_unique<FaultProvider>(std::move(inner), *spec);
        if (fault) *fault = p.get();
        return p;
      };
    }
    return eo;
  }

  EngineResult Run(EngineOptions eo, bool destroy = false) {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(std::move(eo), sources, diags);
    EngineResult r = engine.Apply(destroy);
    EXPECT_FALSE(diags.has_errors());
    return r;
  }

  EngineResult PlanNow(bool lock = true) {
    SourceManager sources;
    Diagnostics diags;
    EngineOptions eo = Options();
    eo.lock = lock;
    Engine engine(std::move(eo), sources, diags);
    return engine.Plan();
  }

  plinth::testing::TempDir tmp_{"plinth-engine"};
  fs::path dir_;
};

constexpr const char* kFive = R"(
marker "m" {
  count = 5
  path  = "m/${count.index}"
}
)";

constexpr const char* kChain = R"(
marker "root" {
  path = "m/root"
}
marker "leaf" {
  count   = 3
  path    = "m/leaf-${count.index}"
  content = marker.root.path
}
)";

TEST(FaultSpecTest, ParsesEveryKindAndRejectsTheRest) {
  std::string error;
  auto s = ParseFaultSpec("kill-after@12", &error);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, FaultSpec::Kind::KillAfter);
  EXPECT_EQ(s->at, 12u);
  EXPECT_TRUE(ParseFaultSpec("fail@1", &error));
  EXPECT_TRUE(ParseFaultSpec("flaky@2", &error));
  EXPECT_TRUE(ParseFaultSpec("hang@3", &error));
  EXPECT_TRUE(ParseFaultSpec("kill-before@4", &error));
  for (const char* bad : {"fail", "fail@", "fail@0", "fail@x", "boom@1", "@1", "fail@-1"}) {
    EXPECT_FALSE(ParseFaultSpec(bad, &error)) << bad;
    EXPECT_NE(error.find("is not a fault spec"), std::string::npos);
  }
}

TEST_F(EngineTest, AFailedChangeLeavesTheOthersAppliedAndIsRetriedNextRun) {
  Write(kFive);
  FaultProvider* fault = nullptr;
  EngineResult r = Run(Options(&fault, FaultSpec{FaultSpec::Kind::Fail, 3}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.applied, 4u);
  EXPECT_EQ(r.failed, 1u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("injected failure at call 3"), std::string::npos) << r.errors[0];
  EXPECT_EQ(Markers(), 4u);
  EXPECT_EQ(StateCount(), 4u);
  // The next plan wants exactly the missing one; the next apply makes it.
  EngineResult p = PlanNow();
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.plan.Count(Action::Create), 1u);
  EXPECT_EQ(p.plan.Count(Action::NoOp), 4u);
  EngineResult again = Run(Options());
  EXPECT_TRUE(again.ok);
  EXPECT_EQ(again.applied, 1u);
  EXPECT_EQ(Markers(), 5u);
  EXPECT_FALSE(PlanNow().plan.HasChanges());
}

TEST_F(EngineTest, DependentsOfAFailedChangeAreSkipped) {
  Write(kChain);
  EngineResult r = Run(Options(nullptr, FaultSpec{FaultSpec::Kind::Fail, 1}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(r.skipped, 3u);
  EXPECT_EQ(Markers(), 0u);
  EXPECT_EQ(StateCount(), 0u);
  EXPECT_TRUE(Run(Options()).ok);
  EXPECT_EQ(Markers(), 4u);
}

TEST_F(EngineTest, ATransientErrorIsRetried) {
  Write(kFive);
  FaultProvider* fault = nullptr;
  EngineResult r = Run(Options(&fault, FaultSpec{FaultSpec::Kind::Flaky, 2}));
  EXPECT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.applied, 5u);
  EXPECT_EQ(r.failed, 0u);
  ASSERT_NE(fault, nullptr);
  EXPECT_EQ(fault->calls(), 6u);  // five changes and one retry
  EXPECT_EQ(Markers(), 5u);
  EXPECT_EQ(StateCount(), 5u);
}

TEST_F(EngineTest, DestroyFailureKeepsTheResourceInState) {
  Write(kFive);
  ASSERT_TRUE(Run(Options()).ok);
  EngineResult r = Run(Options(nullptr, FaultSpec{FaultSpec::Kind::Fail, 2}), /*destroy=*/true);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.applied, 4u);
  EXPECT_EQ(Markers(), 1u);
  EXPECT_EQ(StateCount(), 1u);
  EXPECT_TRUE(Run(Options(), true).ok);
  EXPECT_EQ(Markers(), 0u);
  EXPECT_EQ(StateCount(), 0u);
}

// While one apply hangs inside a provider call: a second apply and a locked
// plan are refused with the holder named; an unlocked plan reads without
// disturbing the running apply's journal; a stop request lets the hung
// call finish and starts nothing new; the next apply converges.
TEST_F(EngineTest, HungApplyLocksOutOthersAndStopsCleanly) {
  Write(kFive);
  FaultProvider* fault = nullptr;
  std::atomic<bool> stop{false};
  EngineOptions eo = Options(&fault, FaultSpec{FaultSpec::Kind::Hang, 2});
  eo.parallelism = 1;
  eo.stop = &stop;
  EngineResult first;
  std::thread runner([&] { first = Run(eo); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((fault == nullptr || !fault->hanging()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(fault != nullptr && fault->hanging());

  EngineResult second = Run(Options());
  EXPECT_FALSE(second.ok);
  EXPECT_TRUE(second.lock_held);  // the controller's drift task skips its corrections on this
  ASSERT_FALSE(second.errors.empty());
  EXPECT_NE(second.errors[0].find("the workspace is locked by pid " + std::to_string(getpid())),
            std::string::npos)
      << second.errors[0];
  EXPECT_NE(second.errors[0].find("(apply, since "), std::string::npos) << second.errors[0];
  EXPECT_NE(second.errors[0].find("force-unlock"), std::string::npos);

  EngineResult locked_plan = PlanNow(/*lock=*/true);
  EXPECT_FALSE(locked_plan.ok);
  EXPECT_TRUE(locked_plan.lock_held);
  ASSERT_FALSE(locked_plan.errors.empty());
  EXPECT_NE(locked_plan.errors[0].find("--lock=false"), std::string::npos) << locked_plan.errors[0];

  EngineResult unlocked_plan = PlanNow(/*lock=*/false);
  EXPECT_TRUE(unlocked_plan.ok);
  bool noted = false;
  for (const auto& n : unlocked_plan.notes)
    noted = noted || n.find("not reconciled without the lock") != std::string::npos;
  EXPECT_TRUE(noted);

  stop = true;
  fault->Release();
  runner.join();
  EXPECT_FALSE(first.ok);
  EXPECT_EQ(first.applied, 2u);  // the first change and the one that hung
  bool stopped = false;
  for (const auto& e : first.errors) stopped = stopped || e.find("stopped on request") != std::string::npos;
  EXPECT_TRUE(stopped);
  EXPECT_EQ(Markers(), 2u);
  EXPECT_EQ(StateCount(), 2u);  // the running apply's journal was not disturbed

  EngineResult rest = Run(Options());
  EXPECT_TRUE(rest.ok);
  EXPECT_EQ(rest.applied, 3u);
  EXPECT_EQ(Markers(), 5u);
  EXPECT_FALSE(PlanNow().plan.HasChanges());
}

TEST_F(EngineTest, SavedPlanIsRefusedWhenTheStateMoved) {
  Write(kFive);
  EngineResult p = PlanNow();
  ASSERT_TRUE(p.ok);
  ASSERT_TRUE(Run(Options()).ok);  // someone else applied meanwhile
  Engine::SavedPlan saved;
  saved.serial = p.serial;
  saved.config_digest = p.config_digest;
  for (const auto& pr : p.plan.resources) saved.actions[pr.address] = ActionName(pr.action);
  SourceManager sources;
  Diagnostics diags;
  Engine engine(Options(), sources, diags);
  EngineResult r = engine.ApplySaved(saved, false);
  EXPECT_FALSE(r.ok);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].find("refusing the saved plan: the state changed"), std::string::npos) << r.errors[0];
  EXPECT_EQ(r.applied, 0u);
}

// timestamp() and uuid() are unknown in a plan and fixed by apply (an
// apply that waited for them to become known would never finish).
TEST_F(EngineTest, ImpureFunctionsGetTheirValueAtApply) {
  Write(R"(
marker "stamp" {
  path    = "m/stamp"
  content = "id ${uuid()}"
}
)");
  EngineResult p = PlanNow();
  ASSERT_TRUE(p.ok);
  ASSERT_EQ(p.plan.resources.size(), 1u);
  EXPECT_TRUE(p.plan.resources[0].planned.at("content").is_unknown());
  EngineResult r = Run(Options());
  EXPECT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(Markers(), 1u);
  std::ifstream in(dir_ / ".plinth" / "default" / "data" / "m" / "stamp");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content.size(), 3u + 36u) << content;  // "id " and a UUID
}

TEST_F(EngineTest, ProgressReportsEveryChangeWithTheTotal) {
  Write(kFive);
  std::mutex mu;
  std::vector<ProgressEvent> events;
  EngineOptions eo = Options(nullptr, FaultSpec{FaultSpec::Kind::Fail, 4});
  eo.progress = [&](const ProgressEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  };
  Run(eo);
  size_t started = 0, finished = 0, failed = 0;
  for (const auto& e : events) {
    EXPECT_EQ(e.total, 5u);
    EXPECT_EQ(e.line.rfind(e.address + ": ", 0), 0u) << e.line;
    started += e.kind == ProgressEvent::Kind::Started;
    finished += e.kind == ProgressEvent::Kind::Finished;
    if (e.kind == ProgressEvent::Kind::Failed) {
      ++failed;
      EXPECT_NE(e.line.find(": failed to create ("), std::string::npos) << e.line;
    }
  }
  EXPECT_EQ(started, 5u);
  EXPECT_EQ(finished, 4u);
  EXPECT_EQ(failed, 1u);
}

// ------------------------------------------------------------------ deletes of data

constexpr const char* kBucketWithData = R"(region "eu" {}

bucket "b" {
  region = region.eu
}

marker "m" {
  path = "m/a"
}
)";

// Forwards to the real provider; `before_plan_delete(n)` runs before the
// n-th PlanDelete call (to write data between a plan and its delete).
class WatchingProvider : public Provider {
 public:
  WatchingProvider(std::unique_ptr<Provider> inner, std::function<void(int)> before_plan_delete)
      : inner_(std::move(inner)), before_(std::move(before_plan_delete)) {}
  std::string Name() const override { return inner_->Name(); }
  const SchemaSource& Schemas() const override { return inner_->Schemas(); }
  std::vector<std::string> Validate(const std::string& t, const ValueMap& c) const override {
    return inner_->Validate(t, c);
  }
  Result<PlanResponse> PlanChange(const PlanRequest& r) override { return inner_->PlanChange(r); }
  Result<ResourceObject> Create(const std::string& t, const ValueMap& p) override {
    return inner_->Create(t, p);
  }
  Result<std::optional<ResourceObject>> Read(const std::string& t, const std::string& id,
                                             const ValueMap& prior) override {
    return inner_->Read(t, id, prior);
  }
  Result<ResourceObject> Update(const std::string& t, const std::string& id, const ValueMap& prior,
                                const ValueMap& planned) override {
    return inner_->Update(t, id, prior, planned);
  }
  Result<Done> Delete(const std::string& t, const std::string& id, const ValueMap& prior) override {
    return inner_->Delete(t, id, prior);
  }
  Result<DeletePreview> PlanDelete(const std::string& t, const std::string& id,
                                   const ValueMap& prior) override {
    if (t == "bucket") before_(++calls_);
    return inner_->PlanDelete(t, id, prior);
  }
  Result<ResourceObject> Import(const std::string& t, const std::string& id) override {
    return inner_->Import(t, id);
  }

 private:
  std::unique_ptr<Provider> inner_;
  std::function<void(int)> before_;
  std::atomic<int> calls_{0};
};

// A create that runs long (a job) is reported while it runs: its Create
// returns only after the heartbeat said "still creating...".
TEST_F(EngineTest, AChangeStillRunningIsReportedByTheHeartbeat) {
  Write(R"(marker "slow" {
  path = "slow"
}
)");
  struct Seen {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<ProgressEvent> still;
  };
  auto seen = std::make_shared<Seen>();
  class SlowCreates : public WatchingProvider {
   public:
    SlowCreates(std::unique_ptr<Provider> inner, std::shared_ptr<Seen> seen)
        : WatchingProvider(std::move(inner), [](int) {}), seen_(std::move(seen)) {}
    Result<ResourceObject> Create(const std::string& t, const ValueMap& p) override {
      std::unique_lock<std::mutex> lock(seen_->mu);
      seen_->cv.wait_for(lock, std::chrono::seconds(30), [&] { return !seen_->still.empty(); });
      lock.unlock();
      return WatchingProvider::Create(t, p);
    }

   private:
    std::shared_ptr<Seen> seen_;
  };
  EngineOptions eo = Options();
  eo.heartbeat = std::chrono::milliseconds(20);
  eo.wrap_provider = [seen](std::unique_ptr<Provider> inner) -> std::unique_ptr<Provider> {
    return std::make_unique<SlowCreates>(std::move(inner), seen);
  };
  eo.progress = [seen](const ProgressEvent& e) {
    if (e.kind != ProgressEvent::Kind::Still) return;
    std::lock_guard<std::mutex> lock(seen->mu);
    seen->still.push_back(e);
    seen->cv.notify_all();
  };
  EngineResult r = Run(eo);
  ASSERT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  std::lock_guard<std::mutex> lock(seen->mu);
  ASSERT_FALSE(seen->still.empty()) << "the create returned without a heartbeat (waited 30 s)";
  EXPECT_EQ(seen->still[0].address, "marker.slow");
  EXPECT_EQ(seen->still[0].line.rfind("marker.slow: still creating... (", 0), 0u) << seen->still[0].line;
  EXPECT_NE(seen->still[0].line.find(" elapsed)"), std::string::npos) << seen->still[0].line;
}

TEST_F(EngineTest, ADeleteThatWouldBeRefusedStopsTheDestroyBeforeAnyChange) {
  Write(kBucketWithData);
  ASSERT_TRUE(Run(Options()).ok);
  fs::path bucket = dir_ / ".plinth/default/data/regions/eu/buckets/b";
  std::ofstream(bucket / "data.csv") << "a,b\n";
  EngineResult plan = [&] {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(Options(), sources, diags);
    return engine.Plan(/*destroy=*/true);
  }();
  ASSERT_EQ(plan.plan.problems.size(), 1u);
  EXPECT_EQ(plan.plan.problems[0].address, "bucket.b");
  EXPECT_EQ(plan.plan.problems[0].message,
            "bucket.b still holds 1 object (4 B); empty it first, or, to delete it with its data, set "
            "force_destroy = "
            "true on bucket.b, apply, then destroy");
  EngineResult r = Run(Options(), /*destroy=*/true);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(Markers(), 1u) << "the marker, which could go, was not deleted either";
  EXPECT_EQ(StateCount(), 3u);
  EXPECT_TRUE(fs::exists(bucket / "data.csv"));

  // Opting in is an in-place update; then the destroy takes the data too.
  std::string text = kBucketWithData;
  text.replace(text.find("  region = region.eu\n"), 21, "  region = region.eu\n  force_destroy = true\n");
  Write(text);
  EngineResult update = Run(Options());
  ASSERT_TRUE(update.ok);
  EXPECT_EQ(update.plan.Count(Action::Update), 1u);
  EXPECT_EQ(update.plan.Count(Action::Replace), 0u);
  r = Run(Options(), /*destroy=*/true);
  EXPECT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(StateCount(), 0u);
  EXPECT_FALSE(fs::exists(dir_ / ".plinth/default/data/regions"));
}

TEST_F(EngineTest, ADeleteRefusesDataWrittenSinceItsPlan) {
  std::string text = kBucketWithData;
  text.replace(text.find("  region = region.eu\n"), 21, "  region = region.eu\n  force_destroy = true\n");
  Write(text);
  ASSERT_TRUE(Run(Options()).ok);
  fs::path bucket = dir_ / ".plinth/default/data/regions/eu/buckets/b";
  std::ofstream(bucket / "data.csv") << "a,b\n";
  // The plan (first PlanDelete) sees data.csv; a job writes late.csv before
  // the delete's own check (the second).
  EngineOptions eo = Options();
  eo.wrap_provider = [&](std::unique_ptr<Provider> inner) -> std::unique_ptr<Provider> {
    return std::make_unique<WatchingProvider>(std::move(inner), [&](int call) {
      if (call == 2) std::ofstream(bucket / "late.csv") << "c\n";
    });
  };
  EngineResult r = Run(std::move(eo), /*destroy=*/true);
  EXPECT_FALSE(r.ok);
  std::string errors;
  for (const auto& e : r.errors) errors += e + "\n";
  EXPECT_NE(
      errors.find("refusing to delete bucket.b: it now holds more than the plan showed (object_bytes, "
                  "objects): 2 objects (6 B), where the plan showed 1 object (4 B); nothing was deleted"),
      std::string::npos)
      << errors;
  EXPECT_TRUE(fs::exists(bucket / "data.csv"));
  EXPECT_TRUE(fs::exists(bucket / "late.csv"));
  EXPECT_EQ(Markers(), 0u) << "the marker's delete was not concerned";

  // A saved plan is refused once what its deletes remove changed.
  EngineResult saved_plan = [&] {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(Options(), sources, diags);
    return engine.Plan(/*destroy=*/true);
  }();
  ASSERT_TRUE(saved_plan.ok);
  std::ofstream(bucket / "later.csv") << "d\n";
  Engine::SavedPlan saved;
  saved.serial = saved_plan.serial;
  saved.config_digest = saved_plan.config_digest;
  for (const auto& pr : saved_plan.plan.resources) saved.actions[pr.address] = ActionName(pr.action);
  SourceManager sources;
  Diagnostics diags;
  Engine engine(Options(), sources, diags);
  EngineResult refused = engine.ApplySaved(saved, /*destroy=*/true);
  EXPECT_FALSE(refused.ok);
  ASSERT_FALSE(refused.errors.empty());
  EXPECT_NE(refused.errors[0].find("refusing the saved plan: the data its deletes remove changed"),
            std::string::npos)
      << refused.errors[0];
  EXPECT_TRUE(fs::exists(bucket / "later.csv"));
}

// EngineOptions::review (apply --auto-approve shows the plan it applies):
// called once, with the first plan, under the lock and before any change;
// declining stops the apply with nothing changed.
TEST_F(EngineTest, ReviewSeesTheFirstPlanOnceBeforeAnyChangeAndCanStopIt) {
  Write(kFive);
  int calls = 0;
  size_t markers_seen = 99;
  EngineOptions declined = Options();
  declined.review = [&](const EngineResult& first) {
    ++calls;
    markers_seen = Markers();
    EXPECT_EQ(first.plan.Count(Action::Create), 5u);
    return false;
  };
  EngineResult r = Run(std::move(declined));
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(markers_seen, 0u);
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(Markers(), 0u) << "a declined review changes nothing";

  calls = 0;
  EngineOptions approved = Options();
  approved.review = [&](const EngineResult& first) {
    ++calls;
    EXPECT_EQ(Markers(), 0u) << "reviewed before any change";
    EXPECT_EQ(first.plan.Count(Action::Create), 5u);
    return true;
  };
  r = Run(std::move(approved));
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.applied, 5u);
  EXPECT_EQ(Markers(), 5u);
  EXPECT_EQ(r.plan.Count(Action::Create), 5u) << "the plan reviewed is the plan reported";
}

// Refresh reports drift by address and attribute names (never values), a
// deleted object as deleted, and the plan carries lifecycle.correct_drift
// (what the controller's drift task reads, cli/drift_task.h).
TEST_F(EngineTest, DriftIsReportedByAddressAndAttributeNames) {
  Write(R"(
marker "a" {
  path    = "m/a"
  content = "as configured"
  lifecycle {
    correct_drift = true
  }
}
marker "b" {
  path    = "m/b"
  content = "secret value"
}
marker "c" {
  path = "m/c"
}
)");
  EngineResult applied = Run(Options());
  ASSERT_TRUE(applied.ok);
  EXPECT_TRUE(applied.drift.empty());
  const fs::path data = dir_ / ".plinth" / "default" / "data" / "m";
  std::ofstream(data / "a") << "edited by hand";
  std::ofstream(data / "b") << "edited too";
  fs::remove(data / "c");

  EngineOptions eo = Options();
  eo.lock = false;
  SourceManager sources;
  Diagnostics diags;
  Engine engine(std::move(eo), sources, diags);
  EngineResult r = engine.Plan();
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.drift.size(), 3u);
  std::sort(r.drift.begin(), r.drift.end(),
            [](const DriftedResource& x, const DriftedResource& y) { return x.address < y.address; });
  EXPECT_EQ(r.drift[0].address, "marker.a");
  EXPECT_EQ(r.drift[0].attributes, std::vector<std::string>{"content"});
  EXPECT_FALSE(r.drift[0].deleted);
  EXPECT_EQ(r.drift[1].address, "marker.b");
  EXPECT_EQ(r.drift[1].attributes, std::vector<std::string>{"content"});
  EXPECT_EQ(r.drift[2].address, "marker.c");
  EXPECT_TRUE(r.drift[2].deleted);
  EXPECT_TRUE(r.drift[2].attributes.empty());
  for (const PlannedResource& pr : r.plan.resources) {
    EXPECT_EQ(pr.correct_drift, pr.address == "marker.a") << pr.address;
    EXPECT_EQ(pr.action, pr.address == "marker.c" ? Action::Create : Action::Update) << pr.address;
  }
}

}  // namespace
}  // namespace plinth::runtime

namespace plinth::runtime {
namespace {

// A rename: marker.a becomes marker.b with the same path, so both name the
// same file. The delete of a hangs (fault hang@1) while the test watches:
// nothing else may start, since the create of b waits for it. Were they run
// side by side, the create would run during the hang (a second call) and
// the released delete would then remove b's file.
TEST_F(EngineTest, ARenamedResourceIsDeletedBeforeItsNewAddressCreatesTheSameObject) {
  Write("marker \"a\" {\n  path    = \"m/x\"\n  content = \"1\"\n}\n");
  ASSERT_TRUE(Run(Options()).ok);
  Write("marker \"b\" {\n  path    = \"m/x\"\n  content = \"1\"\n}\nmarker \"c\" {\n  path = \"m/c\"\n}\n");

  EngineResult plan = PlanNow();
  ASSERT_TRUE(plan.ok);
  for (const PlannedResource& pr : plan.plan.resources) {
    if (pr.address == "marker.b") {
      EXPECT_EQ(pr.action, Action::Create);
      EXPECT_EQ(pr.waits_for_deletes, std::vector<std::string>{"marker.a"});
    } else {
      EXPECT_TRUE(pr.waits_for_deletes.empty()) << pr.address;
    }
  }
  Graph graph = BuildGraph(plan.plan);
  ASSERT_TRUE(graph.cycle.empty());
  std::vector<std::string> order;
  for (uint32_t i : graph.order) {
    if (graph.nodes[i].step != GraphNode::Step::Group) order.push_back(graph.nodes[i].address);
  }
  auto at = [&](const std::string& a) { return std::find(order.begin(), order.end(), a) - order.begin(); };
  EXPECT_LT(at("marker.a"), at("marker.b"));

  FaultProvider* fault = nullptr;
  EngineOptions eo = Options(&fault, FaultSpec{FaultSpec::Kind::Hang, 1});
  eo.parallelism = 8;  // 1 would hide the race
  // Only the rename: its delete must be the first call, and the only one
  // while it hangs.
  Write("marker \"b\" {\n  path    = \"m/x\"\n  content = \"1\"\n}\n");
  EngineResult applied;
  std::thread runner([&] { applied = Run(eo); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((fault == nullptr || !fault->hanging()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(fault != nullptr && fault->hanging());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(fault->calls(), 1u) << "the create of marker.b ran while the delete of marker.a was running";
  fault->Release();
  runner.join();
  EXPECT_TRUE(applied.ok) << (applied.errors.empty() ? "" : applied.errors[0]);
  EXPECT_EQ(applied.applied, 2u);
  EXPECT_TRUE(fs::exists(dir_ / ".plinth/default/data/m/x"))
      << "the delete of marker.a removed marker.b's file";
  EXPECT_EQ(Markers(), 1u);
  EXPECT_EQ(StateCount(), 1u);
  EXPECT_FALSE(PlanNow().plan.HasChanges());
}

// Renames back and forth at high parallelism, many at once: every object
// exists after each apply.
TEST_F(EngineTest, ManyRenamesAtOnceLeaveEveryObjectInPlace) {
  auto config = [](const std::string& name) {
    return "marker \"" + name + "\" {\n  count = 20\n  path  = \"m/${count.index}\"\n}\n";
  };
  Write(config("a"));
  ASSERT_TRUE(Run(Options()).ok);
  for (int round = 0; round < 6; ++round) {
    Write(config(round % 2 == 0 ? "b" : "a"));
    EngineOptions eo = Options();
    eo.parallelism = 16;
    EngineResult r = Run(eo);
    ASSERT_TRUE(r.ok) << "round " << round << ": " << (r.errors.empty() ? "" : r.errors[0]);
    EXPECT_EQ(Markers(), 20u) << "round " << round;
    EXPECT_FALSE(PlanNow().plan.HasChanges()) << "round " << round;
  }
}

// Two resources apply could not both make (one marker file) are a plan
// problem naming both blocks, so apply changes nothing; a rename (delete of
// X, create of X) is not a conflict. Through a wrapped provider, which must
// forward the whole-plan check.
TEST_F(EngineTest, ConflictsBetweenPlannedResourcesAreProblemsAtTheirBlocks) {
  Write("marker \"a\" {\n  path = \"m/x\"\n}\nmarker \"b\" {\n  path = \"m/y/../x\"\n}\n");
  std::string main = (dir_ / "main.plinth").string();
  std::string message =
      "marker.b and marker.a both write the file 'm/x'; give each its own path; declared at " + main +
      ":4:1 (marker.b) and " + main + ":1:1 (marker.a)";
  EngineResult planned = PlanNow();
  ASSERT_EQ(planned.plan.problems.size(), 1u);
  const PlanProblem& p = planned.plan.problems[0];
  EXPECT_EQ(p.address, "marker.b");
  EXPECT_TRUE(p.range.valid());
  EXPECT_EQ(p.message, message);
  // A fault at the first change: apply must not get that far.
  FaultProvider* fault = nullptr;
  EngineResult r = Run(Options(&fault, FaultSpec{}));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(r.errors, std::vector<std::string>{message});
  EXPECT_EQ(Markers(), 0u);

  Write("marker \"a\" {\n  path = \"m/x\"\n}\n");
  ASSERT_TRUE(Run(Options()).ok);
  Write("marker \"renamed\" {\n  path = \"m/x\"\n}\n");
  r = Run(Options());
  EXPECT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(Markers(), 1u);
}

// destroy refuses a plan that would delete a prevent_destroy resource still
// in the configuration, before any change, and says how to proceed.
TEST_F(EngineTest, DestroyRefusesAPreventDestroyResourceAndDeletesNothing) {
  Write(R"(
marker "precious" {
  path = "m/precious"
  lifecycle {
    prevent_destroy = true
  }
}
marker "scratch" {
  path = "m/scratch"
}
)");
  ASSERT_TRUE(Run(Options()).ok);
  EngineResult r = Run(Options(), /*destroy=*/true);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.applied, 0u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(
      r.errors[0],
      "marker.precious has lifecycle.prevent_destroy set but would be destroyed; nothing was changed; to "
      "destroy it, remove prevent_destroy from its lifecycle block (or the resource from the configuration) "
      "first");
  EXPECT_EQ(Markers(), 2u);
  EXPECT_EQ(StateCount(), 2u);

  // Removed from the configuration, it has no lifecycle left: destroy goes on.
  Write("marker \"scratch\" {\n  path = \"m/scratch\"\n}\n");
  r = Run(Options(), /*destroy=*/true);
  EXPECT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(Markers(), 0u);
  EXPECT_EQ(StateCount(), 0u);
}

}  // namespace
}  // namespace plinth::runtime

namespace plinth::runtime {
namespace {

// A stop request that comes while the last change runs leaves nothing
// undone: the running change finishes and the apply is complete.
TEST_F(EngineTest, AStopDuringTheLastChangeCompletesTheApply) {
  Write(kFive);
  FaultProvider* fault = nullptr;
  std::atomic<bool> stop{false};
  EngineOptions eo = Options(&fault, FaultSpec{FaultSpec::Kind::Hang, 5});
  eo.parallelism = 1;
  eo.stop = &stop;
  EngineResult r;
  std::thread runner([&] { r = Run(eo); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((fault == nullptr || !fault->hanging()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(fault != nullptr && fault->hanging());
  stop = true;
  fault->Release();
  runner.join();
  EXPECT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.applied, 5u);
  EXPECT_EQ(Markers(), 5u);
  EXPECT_FALSE(PlanNow().plan.HasChanges());
}

}  // namespace
}  // namespace plinth::runtime

namespace plinth::runtime {
namespace {

// --target, --exclude and --replace (docs/cli.md, "Targeting").

constexpr const char* kChainAndOther = R"(
marker "root" {
  path = "m/root"
}
marker "leaf" {
  count   = 3
  path    = "m/leaf-${count.index}"
  content = marker.root.path
}
marker "other" {
  path = "m/other"
}
)";

std::vector<std::string> Changing(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& r : p.resources) {
    if (r.action != Action::NoOp) out.push_back(r.address + " " + ActionName(r.action));
  }
  return out;
}

TEST_F(EngineTest, ATargetedApplyLeavesTheRestPendingForTheNextPlan) {
  Write(kChainAndOther);
  EngineOptions eo = Options();
  eo.targeting.targets = {"marker.leaf[1]"};
  EngineResult r = Run(std::move(eo));
  ASSERT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.applied, 2u);  // the target and the root it depends on
  EXPECT_EQ(Markers(), 2u);
  EXPECT_EQ(r.plan.left_out, 3u);
  EngineResult full = PlanNow();
  ASSERT_TRUE(full.ok);
  EXPECT_EQ(Changing(full.plan), (std::vector<std::string>{"marker.leaf[0] create", "marker.leaf[2] create",
                                                           "marker.other create"}));
  EXPECT_TRUE(full.plan.targeting.empty());
}

TEST_F(EngineTest, AnExcludedResourceAndItsDependentsAreNotApplied) {
  Write(kChainAndOther);
  EngineOptions eo = Options();
  eo.targeting.excludes = {"marker.root"};
  EngineResult r = Run(std::move(eo));
  ASSERT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.applied, 1u);  // marker.other only
  EXPECT_TRUE(fs::exists(dir_ / ".plinth" / "default" / "data" / "m" / "other"));
  EXPECT_EQ(Markers(), 1u);
}

TEST_F(EngineTest, AReplaceRequestReplacesOnceAndItsAddressIsChecked) {
  Write(kFive);
  ASSERT_TRUE(Run(Options()).ok);
  {
    SourceManager sources;
    Diagnostics diags;
    EngineOptions eo = Options();
    eo.targeting.replace = {"marker.m[2]"};
    Engine engine(std::move(eo), sources, diags);
    EngineResult p = engine.Plan();
    ASSERT_TRUE(p.ok) << (p.errors.empty() ? "" : p.errors[0]);
    EXPECT_EQ(Changing(p.plan), std::vector<std::string>{"marker.m[2] replace"});
    for (const auto& pr : p.plan.resources) {
      if (pr.address == "marker.m[2]") {
        EXPECT_EQ(pr.reasons, std::vector<std::string>{"replace requested by --replace"});
      }
    }
  }
  EngineOptions eo = Options();
  eo.targeting.replace = {"marker.m[2]"};
  EngineResult r = Run(std::move(eo));
  ASSERT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.applied, 2u);  // the destroy and the create, in one wave
  EXPECT_EQ(Markers(), 5u);
  EXPECT_TRUE(Changing(PlanNow().plan).empty());
  // A mistyped address changes nothing and says what was meant.
  SourceManager sources;
  Diagnostics diags;
  EngineOptions typo = Options();
  typo.targeting.replace = {"marker.n[2]"};
  Engine engine(std::move(typo), sources, diags);
  EngineResult bad = engine.Apply();
  EXPECT_FALSE(bad.ok);
  ASSERT_FALSE(bad.errors.empty());
  EXPECT_EQ(bad.errors[0],
            "--replace 'marker.n[2]' matches no resource in the configuration or the state; did you "
            "mean 'marker.m[2]'?");
  EXPECT_EQ(bad.applied, 0u);
}

TEST_F(EngineTest, ASavedTargetedPlanAppliesOnlyWithItsTargeting) {
  Write(kChainAndOther);
  auto targeted = [&] {
    EngineOptions eo = Options();
    eo.targeting.targets = {"marker.other"};
    return eo;
  };
  Engine::SavedPlan saved;
  {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(targeted(), sources, diags);
    EngineResult p = engine.Plan();
    ASSERT_TRUE(p.ok);
    saved.serial = p.serial;
    saved.config_digest = p.config_digest;
    for (const auto& pr : p.plan.resources) saved.actions[pr.address] = ActionName(pr.action);
  }
  {
    // The same plan without its targets would do more than was approved.
    SourceManager sources;
    Diagnostics diags;
    Engine engine(Options(), sources, diags);
    EngineResult r = engine.ApplySaved(saved, false);
    EXPECT_FALSE(r.ok);
    ASSERT_FALSE(r.errors.empty());
    EXPECT_NE(r.errors[0].find("refusing the saved plan: the world changed"), std::string::npos)
        << r.errors[0];
    EXPECT_EQ(Markers(), 0u);
  }
  SourceManager sources;
  Diagnostics diags;
  Engine engine(targeted(), sources, diags);
  EngineResult r = engine.ApplySaved(saved, false);
  ASSERT_TRUE(r.ok) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.applied, 1u);
  EXPECT_EQ(Markers(), 1u);
}

}  // namespace
}  // namespace plinth::runtime
