// Rolling patches of a Slurm partition (runtime/slurm/patch.h) against a fake
// scontrol that keeps each node's state in a file: a drained idle node is
// patched and resumed, a busy one waits for its job, at most max_unavailable
// at a time; a failure halts the level, leaves the node drained with the
// reason and rolls back the node that reached it; a closed window drains
// nothing; plans round-trip through their files. (The real cluster:
// tests/fixtures/run-slurm-tests.sh, section 3c.)
#include "runtime/slurm/patch.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "tests/support/files.h"

namespace plinth::slurm {
namespace {

namespace fs = std::filesystem;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;

// Partition "gpu" = gpu[1-3]; node N's state is in state.N (IDLE by default,
// MIXED while busy.N exists),
// its reason in reason.N; `update` drains (IDLE+DRAIN, or MIXED+DRAIN while
// busy.N exists) and resumes (refused while refuse.N exists).
const char* kScontrol = R"SH(#!/bin/sh
d=$(dirname "$0")
echo "$@" >>"$d/scontrol.calls"
case "$1 $2" in
"show partition") echo "PartitionName=gpu Nodes=gpu[1-3] State=UP TotalNodes=3" ;;
"show node")
  if [ -e "$d/busy.$4" ]; then idle=MIXED; else idle=IDLE; fi
  st=$(cat "$d/state.$4" 2>/dev/null || echo $idle)
  echo "NodeName=$4 CPUTot=2 Gres=gpu:H100:1 RealMemory=1000 State=$st Partitions=gpu Reason=$(cat "$d/reason.$4" 2>/dev/null)" ;;
"update NodeName="*)
  n=${2#NodeName=}
  case "$3" in
  State=DRAIN) if [ -e "$d/busy.$n" ]; then echo MIXED+DRAIN >"$d/state.$n"; else echo IDLE+DRAIN >"$d/state.$n"; fi
               echo "${4#Reason=}" >"$d/reason.$n" ;;
  State=RESUME) if [ -e "$d/refuse.$n" ]; then echo "slurm_update error: refused" >&2; exit 1; fi
                echo IDLE >"$d/state.$n"; rm -f "$d/reason.$n" ;;
  esac ;;
esac
)SH";

class SlurmPatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.path() / "scontrol") << kScontrol;
    chmod((tmp_.path() / "scontrol").c_str(), 0755);
    client_opts_.path_list = tmp_.path().string() + ":/usr/bin:/bin";
    std::string error;
    patcher_ = SlurmPatcher::Open(tmp_.path() / "compute", &error);
    ASSERT_TRUE(patcher_) << error;
  }
  SlurmPatchPlan Plan(const std::string& level, const std::string& script) {
    SlurmPatchPlan p;
    p.pool = "slurm_pool.gpu";
    p.partition = "gpu";
    p.patch.level = level;
    p.patch.command = {"/bin/sh", "-c",
                       "echo \"$PLINTH_NODE $PLINTH_PATCH_LEVEL\" >> " + Log().string() + "; " + script};
    p.patch.rollback_command = {"/bin/sh", "-c",
                                "echo \"$PLINTH_NODE back to $PLINTH_PATCH_LEVEL from $PLINTH_PREVIOUS_PATCH_LEVEL "
                                "($PLINTH_PATCH_ROLLBACK)\" >> " +
                                    Log().string()};
    p.patch.timeout_ms = 5000;
    p.client = client_opts_;
    return p;
  }
  fs::path Log() const { return tmp_.path() / "patch.log"; }
  std::string State(const std::string& node) {
    std::string s = ReadFile(tmp_.path() / ("state." + node));
    return s.empty() ? "IDLE" : s.substr(0, s.find('\n'));
  }
  // Steps until `done` (each step after the commands started have ended), at most 30 times.
  SlurmPatcher::StepResult Run(const SlurmPatchPlan& plan, const std::function<bool()>& done,
                               std::vector<SlurmPatcher::Action>* actions = nullptr) {
    Client client(plan.client);
    SlurmPatcher::StepResult last;
    for (int i = 0; i < 30 && !done(); ++i) {
      last = patcher_->Step(plan, client, Now());
      EXPECT_TRUE(last.error.empty()) << last.error;
      if (actions) actions->insert(actions->end(), last.actions.begin(), last.actions.end());
      patcher_->WaitIdle(5000);
    }
    return last;
  }
  static int64_t Now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int AtLevel(const std::string& level) {
    int n = 0;
    for (const auto& p : patcher_->Progress("gpu")) n += p.level == level && p.phase.empty();
    return n;
  }
  TempDir tmp_;
  ClientOptions client_opts_;
  std::unique_ptr<SlurmPatcher> patcher_;
};

TEST(SlurmPatchStates, DrainedMeansTheDrainFlagWithNoJobLeft) {
  EXPECT_TRUE(Drained("IDLE+DRAIN"));
  EXPECT_TRUE(Drained("IDLE+CLOUD+DRAIN+POWERED_DOWN"));
  EXPECT_TRUE(Drained("DOWN+DRAIN"));
  EXPECT_FALSE(Drained("MIXED+DRAIN"));
  EXPECT_FALSE(Drained("ALLOCATED+DRAIN"));
  EXPECT_FALSE(Drained("IDLE+DRAIN+COMPLETING"));
  EXPECT_FALSE(Drained("IDLE"));
  EXPECT_FALSE(Drained("IDLE+CLOUD+POWERED_DOWN"));
}

TEST_F(SlurmPatchTest, PlansRoundTripThroughTheirFiles) {
  SlurmPatchPlan p = Plan("v1", "true");
  p.patch.max_unavailable_percent = 50;
  std::string error;
  ASSERT_TRUE(WritePatchPlan(tmp_.path() / "compute", p, &error)) << error;
  auto plans = ReadPatchPlans(tmp_.path() / "compute", &error);
  ASSERT_EQ(plans.size(), 1u) << error;
  EXPECT_EQ(plans[0].pool, "slurm_pool.gpu");
  EXPECT_EQ(plans[0].partition, "gpu");
  EXPECT_EQ(plans[0].patch.level, "v1");
  EXPECT_EQ(plans[0].patch.command, p.patch.command);
  EXPECT_EQ(plans[0].patch.rollback_command, p.patch.rollback_command);
  EXPECT_EQ(plans[0].patch.max_unavailable_percent, 50);
  EXPECT_EQ(plans[0].client.path_list, client_opts_.path_list);
  struct stat st {};
  ASSERT_EQ(stat((PatchDir(tmp_.path() / "compute") / "gpu.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RemovePatchPlan(tmp_.path() / "compute", "gpu");
  EXPECT_TRUE(ReadPatchPlans(tmp_.path() / "compute", &error).empty());
}

TEST_F(SlurmPatchTest, NodesAreDrainedPatchedAndResumedOneAtATimeBusyOnesAfterTheirJobs) {
  std::ofstream(tmp_.path() / "busy.gpu1") << "";  // gpu1 runs a job
  SlurmPatchPlan plan = Plan("v1", "true");
  Client client(plan.client);
  // First pass: one idle node drained (not busy gpu1), nothing else.
  SlurmPatcher::StepResult r = patcher_->Step(plan, client, Now());
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(State("gpu1"), "IDLE");  // no state file: MIXED while busy
  EXPECT_EQ(State("gpu2"), "IDLE+DRAIN");
  EXPECT_EQ(State("gpu3"), "IDLE");
  EXPECT_EQ(ReadFile(tmp_.path() / "reason.gpu2"), "plinth: patch to level v1\n");
  std::vector<SlurmPatcher::Action> actions;
  Run(plan, [&] { return AtLevel("v1") == 2; }, &actions);
  EXPECT_EQ(AtLevel("v1"), 2);
  // gpu1 is drained last and waits for its job (MIXED+DRAIN) before its command runs.
  Run(plan, [&] { return State("gpu1") == "MIXED+DRAIN"; });
  ASSERT_EQ(State("gpu1"), "MIXED+DRAIN");
  for (int i = 0; i < 3; ++i) patcher_->Step(plan, client, Now()), patcher_->WaitIdle(5000);
  EXPECT_EQ(ReadFile(Log()).find("gpu1"), std::string::npos) << ReadFile(Log());
  std::remove((tmp_.path() / "busy.gpu1").c_str());
  std::ofstream(tmp_.path() / "state.gpu1") << "IDLE+DRAIN\n";  // its job ended
  Run(plan, [&] { return AtLevel("v1") == 3; }, &actions);
  ASSERT_EQ(AtLevel("v1"), 3);
  for (const char* n : {"gpu1", "gpu2", "gpu3"}) EXPECT_EQ(State(n), "IDLE") << n;
  EXPECT_EQ(ReadFile(Log()), "gpu2 v1\ngpu3 v1\ngpu1 v1\n");
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[0].kind, "patch");
  EXPECT_EQ(actions[0].detail, "node gpu2 to level v1");
  EXPECT_EQ(actions[0].reason, "the pool's patch level changed");
  // Never two at once: each drain came after the previous node's resume.
  const std::string calls = ReadFile(tmp_.path() / "scontrol.calls");
  size_t at = 0;
  int drained = 0;
  while ((at = calls.find("update NodeName=", at)) != std::string::npos) {
    const size_t eol = calls.find('\n', at);
    const std::string line = calls.substr(at, eol - at);
    drained += line.find("State=DRAIN") != std::string::npos ? 1 : -1;
    EXPECT_LE(drained, 1) << calls;
    at = eol;
  }
}

TEST_F(SlurmPatchTest, AFailureHaltsTheLevelAndTheNodeAtItIsRolledBack) {
  Run(Plan("v1", "true"), [&] { return AtLevel("v1") == 3; });
  ASSERT_EQ(AtLevel("v1"), 3);
  std::remove(Log().c_str());
  // v2: the first node succeeds, the second fails: halted (threshold 1), the first rolled back to v1.
  const std::string count = (tmp_.path() / "count").string();
  SlurmPatchPlan v2 = Plan("v2", "n=$(cat " + count + " 2>/dev/null || echo 0); echo $((n + 1)) > " + count +
                                     "; test $n -lt 1");
  std::vector<SlurmPatcher::Action> actions;
  Run(v2, [&] { return ReadFile(Log()).find(" back to ") != std::string::npos && AtLevel("v1") == 2; }, &actions);
  const std::string log = ReadFile(Log());
  EXPECT_EQ(log, "gpu1 v2\ngpu2 v2\ngpu1 back to v1 from v2 (1)\n");
  EXPECT_EQ(State("gpu1"), "IDLE");  // no state file: MIXED while busy
  EXPECT_EQ(State("gpu2"), "IDLE+DRAIN");
  EXPECT_NE(ReadFile(tmp_.path() / "reason.gpu2").find("plinth: patch level v2 failed: the patch command exited"),
            std::string::npos)
      << ReadFile(tmp_.path() / "reason.gpu2");
  EXPECT_EQ(State("gpu3"), "IDLE");  // never drained for a halted level
  EXPECT_EQ(patcher_->Failures("gpu", "v2"), 1);
  std::string kinds;
  for (const auto& a : actions) kinds += a.kind + ": " + a.detail + " (" + a.reason + ")\n";
  EXPECT_NE(kinds.find("patch: node gpu1 to level v2 from v1"), std::string::npos) << kinds;
  EXPECT_NE(kinds.find("halt patch: level v2 (1 node(s) failed it (failure_threshold 1))"), std::string::npos)
      << kinds;
  EXPECT_NE(kinds.find("roll back patch: node gpu1 from level v2 to level v1 (patch level v2 halted: 1 node(s) "
                       "failed it)"),
            std::string::npos)
      << kinds;
  // A next level reaches every node again, the failed one (drained by Plinth) included.
  Run(Plan("v3", "true"), [&] { return AtLevel("v3") == 3; });
  EXPECT_EQ(AtLevel("v3"), 3);
  EXPECT_EQ(State("gpu2"), "IDLE");
}

// A resume Slurm refuses after a successful command is tried again on the
// next pass; the command does not run again, and the level is recorded once.
TEST_F(SlurmPatchTest, ARefusedResumeIsTriedAgainWithoutRunningTheCommandAgain) {
  std::ofstream(tmp_.path() / "refuse.gpu1") << "";
  SlurmPatchPlan plan = Plan("v1", "true");
  plan.patch.max_unavailable = 3;
  Client client(plan.client);
  patcher_->Step(plan, client, Now());  // all three drained
  patcher_->Step(plan, client, Now());  // their commands start
  patcher_->WaitIdle(5000);
  SlurmPatcher::StepResult r = patcher_->Step(plan, client, Now());  // commands done; gpu1's resume refused
  EXPECT_NE(r.error.find("cannot resume node gpu1 after its patch"), std::string::npos) << r.error;
  EXPECT_EQ(r.actions.size(), 3u);
  EXPECT_EQ(State("gpu1"), "IDLE+DRAIN");
  for (const auto& p : patcher_->Progress("gpu"))
    if (p.node == "gpu1") EXPECT_EQ(p.phase, "resuming");
  std::remove((tmp_.path() / "refuse.gpu1").c_str());
  r = patcher_->Step(plan, client, Now());
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_TRUE(r.actions.empty());
  EXPECT_EQ(State("gpu1"), "IDLE");
  EXPECT_EQ(AtLevel("v1"), 3);
  const std::string log = ReadFile(Log());  // each command once (they ran at the same time)
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 3) << log;
  for (const char* line : {"gpu1 v1\n", "gpu2 v1\n", "gpu3 v1\n"}) EXPECT_NE(log.find(line), std::string::npos) << log;
}

TEST_F(SlurmPatchTest, AClosedWindowDrainsNothingAndSomeoneElsesDrainIsLeftAlone) {
  std::ofstream(tmp_.path() / "state.gpu3") << "IDLE+DRAIN\n";
  std::ofstream(tmp_.path() / "reason.gpu3") << "admin: bad fan\n";
  SlurmPatchPlan plan = Plan("v1", "true");
  const int64_t now_min = Now() / 60000;
  plan.patch.window = controller::NamedWindow{"later", {}, "UTC"};
  plan.patch.window->window.start_minute = static_cast<int>((now_min + 180) % 1440);
  plan.patch.window->window.duration_s = 3600;
  Client client(plan.client);
  SlurmPatcher::StepResult r = patcher_->Step(plan, client, Now());
  EXPECT_NE(r.summary.find("maintenance window later closed"), std::string::npos) << r.summary;
  EXPECT_EQ(State("gpu1"), "IDLE");
  EXPECT_EQ(State("gpu2"), "IDLE");
  plan.patch.window.reset();
  Run(plan, [&] { return AtLevel("v1") == 2; });
  EXPECT_EQ(AtLevel("v1"), 2);
  for (int i = 0; i < 3; ++i) patcher_->Step(plan, client, Now()), patcher_->WaitIdle(5000);
  EXPECT_EQ(ReadFile(tmp_.path() / "reason.gpu3"), "admin: bad fan\n");
  EXPECT_EQ(ReadFile(Log()).find("gpu3"), std::string::npos);
}

}  // namespace
}  // namespace plinth::slurm
