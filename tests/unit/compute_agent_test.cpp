// The compute queue and node agents end to end (docs/compute.md): real agent
// processes (the built plinth), a fake GPU inventory, a private GPU lock
// directory and idle times of about a second. Every test removes its pool,
// which stops its agents.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "runtime/compute/ledger.h"
#include "runtime/compute/pool_metrics.h"
#include "runtime/controller/actions.h"
#include "runtime/compute/queue.h"
#include "runtime/process/process.h"
#include "tests/support/compute_fixture.h"
#include "tests/support/files.h"

namespace plinth::compute {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ComputeAgentTest : public plinth::testing::ComputeFixture {
 protected:
  ComputeAgentTest() : ComputeFixture("plinth-compute") {}
  PoolSpec Pool(const std::string& name, int gpus, int max_nodes) {
    PoolSpec p;
    p.region = "east";
    p.name = name;
    p.id = "east/" + name;
    Shape s;
    s.cpus = 1;
    if (gpus > 0) s.accelerators = {"H100", gpus};
    p.shapes.push_back(s);
    p.max_nodes = max_nodes;
    p.idle_ms = 1000;
    return p;
  }
  JobSpec Job(const std::string& pool, const std::string& name, std::vector<std::string> argv) {
    JobSpec j;
    j.id = pool + "/" + name;
    j.name = name;
    j.pool = pool;
    j.argv = std::move(argv);
    return j;
  }
  JobState WaitEnd(const std::string& id) {
    std::stop_source never;
    auto s = queue_->Wait(id, never.get_token(), nullptr);
    EXPECT_TRUE(s);
    return s ? *s : JobState{};
  }
  std::string EventsText(const std::string& pool) {
    std::string t;
    for (const auto& e : queue_->Events(pool, 1000)) t += e.node + " " + e.job + " " + e.text + "\n";
    return t;
  }
};

TEST_F(ComputeAgentTest, GpuJobGetsHealthyGpuOnlyItsOwnAndNodeIdlesOut) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Pool("train", 1, 1), &error)) << error;
  fs::path out = root_ / "env.txt";
  auto job =
      Job("east/train", "gpu", {"sh", "-c", "echo \"$CUDA_VISIBLE_DEVICES $TOKEN\" > " + out.string()});
  job.gpus = 1;
  auto s = queue_->Submit(job, {{"TOKEN", "s3cr3t-value-xyz"}}, &error);
  ASSERT_TRUE(s) << error;
  JobState end = WaitEnd(job.id);
  ASSERT_EQ(end.status, JobStatus::kSucceeded) << end.reason << "\n" << EventsText("east/train");
  // GPU 0 fails its health gate (fake gemm fault): quarantined, the next node got GPU 1.
  EXPECT_EQ(plinth::testing::ReadFile(out), "1 s3cr3t-value-xyz\n") << EventsText("east/train");
  std::string events = EventsText("east/train");
  EXPECT_NE(events.find("health gate failed"), std::string::npos) << events;
  // The node is released after its idle second.
  for (int i = 0; i < 100 && !queue_->ListNodes("east/train", false).empty(); ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(queue_->ListNodes("east/train", false).empty()) << EventsText("east/train");
  EXPECT_NE(EventsText("east/train").find("decommissioned after 1s idle"), std::string::npos);
  // The secret is in no file under the compute directory.
  for (const auto& e : fs::recursive_directory_iterator(root_ / "ws" / "compute")) {
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(plinth::testing::ReadFile(e.path()).find("s3cr3t-value-xyz"), std::string::npos) << e.path();
  }
}

TEST_F(ComputeAgentTest, JobLargerThanEveryShapeStaysPendingWithReason) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Pool("small", 1, 2), &error)) << error;
  auto job = Job("east/small", "big", {"true"});
  job.gpus = 4;
  auto s = queue_->Submit(job, {}, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->status, JobStatus::kPending);
  EXPECT_NE(s->reason.find("asks for 4 GPUs per task but pool small's largest shape has 1"),
            std::string::npos)
      << s->reason;
  EXPECT_TRUE(queue_->ListNodes("east/small", true).empty());
  EXPECT_NE(EventsText("east/small").find("cannot be placed"), std::string::npos);
}

TEST_F(ComputeAgentTest, ProgramFailureIsRetriedThenFailsWithExitCode) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Pool("cpu", 0, 1), &error)) << error;
  fs::path runs = root_ / "runs";
  auto job = Job("east/cpu", "fails", {"sh", "-c", "echo $$ >> " + runs.string() + "; exit 3"});
  job.retries.program = 1;
  ASSERT_TRUE(queue_->Submit(job, {}, &error)) << error;
  JobState end = WaitEnd(job.id);
  EXPECT_EQ(end.status, JobStatus::kFailed);
  ASSERT_TRUE(end.exit_code);
  EXPECT_EQ(*end.exit_code, 3);
  EXPECT_EQ(end.attempts, 2);
  std::string text = plinth::testing::ReadFile(runs);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
}

TEST_F(ComputeAgentTest, TimeoutKillsAndFailsAndCancelKillsTheGroup) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Pool("cpu", 0, 1), &error)) << error;
  auto slow = Job("east/cpu", "slow", {"sleep", "30"});
  slow.timeout_ms = 500;
  ASSERT_TRUE(queue_->Submit(slow, {}, &error)) << error;
  JobState end = WaitEnd(slow.id);
  EXPECT_EQ(end.status, JobStatus::kFailed);
  EXPECT_NE(end.reason.find("deadline"), std::string::npos) << end.reason;

  fs::path pidfile = root_ / "child.pid";
  auto c = Job("east/cpu", "cancel", {"sh", "-c", "sleep 60 & echo $! > " + pidfile.string() + "; wait"});
  ASSERT_TRUE(queue_->Submit(c, {}, &error)) << error;
  for (int i = 0; i < 200 && !fs::exists(pidfile); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(pidfile)) << EventsText("east/cpu");
  std::this_thread::sleep_for(100ms);
  pid_t grandchild = std::stoi(plinth::testing::ReadFile(pidfile));
  ASSERT_TRUE(queue_->Cancel(c.id, &error)) << error;
  end = WaitEnd(c.id);
  EXPECT_EQ(end.status, JobStatus::kCancelled);
  EXPECT_FALSE(process::ProcessStartTime(grandchild)) << "the job's sleep survived the cancel";
}

TEST_F(ComputeAgentTest, KilledAgentIsAnInfrastructureFailureRetriedWithoutOrphans) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Pool("cpu", 0, 1), &error)) << error;
  fs::path runs = root_ / "runs", pidfile = root_ / "sleep.pid";
  // First run: leaves a sleeping grandchild and waits; later runs succeed.
  std::string script = "echo $$ >> " + runs.string() + "; if [ ! -e " + pidfile.string() +
                       " ]; then sleep 60 & echo $! > " + pidfile.string() + "; wait; fi";
  auto job = Job("east/cpu", "lost", {"sh", "-c", script});
  job.retries.infrastructure = 1;
  ASSERT_TRUE(queue_->Submit(job, {}, &error)) << error;
  for (int i = 0; i < 200 && !fs::exists(pidfile); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(pidfile));
  std::this_thread::sleep_for(100ms);
  pid_t sleeper = std::stoi(plinth::testing::ReadFile(pidfile));
  auto nodes = queue_->ListNodes("east/cpu", false);
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_EQ(::kill(nodes[0].pid, SIGKILL), 0);
  JobState end = WaitEnd(job.id);
  EXPECT_EQ(end.status, JobStatus::kSucceeded) << end.reason << "\n" << EventsText("east/cpu");
  EXPECT_EQ(end.infrastructure_failures, 1);
  EXPECT_EQ(end.attempts, 2);
  EXPECT_FALSE(process::ProcessStartTime(sleeper)) << "the lost run's grandchild survived";
  std::string text = plinth::testing::ReadFile(runs);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(EventsText("east/cpu").find("node lost"), std::string::npos);
}

TEST_F(ComputeAgentTest, StoppedAgentEndsItsJobsAsInfrastructureFailures) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Pool("cpu", 0, 1), &error)) << error;
  fs::path runs = root_ / "runs", started = root_ / "started";
  std::string script = "echo $$ >> " + runs.string() + "; if [ ! -e " + started.string() + " ]; then touch " +
                       started.string() + "; sleep 60; fi";
  auto job = Job("east/cpu", "stopped", {"sh", "-c", script});
  ASSERT_TRUE(queue_->Submit(job, {}, &error)) << error;
  for (int i = 0; i < 200 && !fs::exists(started); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(started));
  auto nodes = queue_->ListNodes("east/cpu", false);
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_EQ(::kill(nodes[0].pid, SIGTERM), 0);
  JobState end = WaitEnd(job.id);
  EXPECT_EQ(end.status, JobStatus::kSucceeded) << end.reason << "\n" << EventsText("east/cpu");
  EXPECT_EQ(end.infrastructure_failures, 1);
  EXPECT_EQ(end.program_failures, 0);
  std::string text = plinth::testing::ReadFile(runs);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  auto first = queue_->ListNodes("east/cpu", true).front();
  EXPECT_EQ(first.state, "released");
  EXPECT_EQ(first.reason, "stopped by a signal");
}

// ---- Patching nodes (docs/compute.md, "Patching nodes")

class ComputePatchTest : public ComputeAgentTest {
 protected:
  // A pool of `nodes` CPU nodes (min = max) whose patch appends "<node> <level> start|end <ns>" to
  // log_ around `extra` (a shell snippet) and a short sleep.
  PoolSpec Patched(const std::string& name, int nodes, const std::string& level, const std::string& extra = "") {
    PoolSpec p = Pool(name, 0, nodes);
    p.min_nodes = nodes;
    p.idle_ms = 60000;
    p.health = HealthGate::kNone;
    p.patch.level = level;
    p.patch.command = {"/bin/sh", "-c",
                       "echo \"$PLINTH_NODE $PLINTH_PATCH_LEVEL start $(date +%s%N)\" >> " + log_.string() +
                           "; " + extra + " sleep 0.3; echo \"$PLINTH_NODE $PLINTH_PATCH_LEVEL end $(date +%s%N)\" >> " +
                           log_.string()};
    p.patch.timeout_ms = 5000;
    return p;
  }
  // Waits (up to 30 s) until every live node of the pool is ready at `level` and there are `count`.
  bool WaitLevel(const std::string& pool, const std::string& level, size_t count) {
    for (int i = 0; i < 300; ++i) {
      auto nodes = queue_->ListNodes(pool, false);
      bool all = nodes.size() == count;
      for (const auto& n : nodes) all = all && n.state == "ready" && n.patch_level == level;
      if (all) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  bool WaitEvent(const std::string& pool, const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (EventsText(pool).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  fs::path log_ = fs::temp_directory_path() / ("plinth-patch-" + std::to_string(::getpid()) + ".log");
  ~ComputePatchTest() override { fs::remove(log_); }
};

TEST_F(ComputePatchTest, RunningNodesArePatchedOneAtATimeAfterTheirJobsFinish) {
  std::string error;
  fs::remove(log_);
  // New nodes are patched before they take work.
  ASSERT_TRUE(queue_->PutPool(Patched("cpu", 2, "v1"), &error)) << error;
  ASSERT_TRUE(WaitLevel("east/cpu", "v1", 2)) << EventsText("east/cpu");
  // A job holds one node while the level changes.
  auto job = Job("east/cpu", "long", {"sh", "-c", "sleep 2"});
  ASSERT_TRUE(queue_->Submit(job, {}, &error)) << error;
  for (int i = 0; i < 100 && queue_->GetJob(job.id)->status != JobStatus::kRunning; ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(queue_->GetJob(job.id)->status, JobStatus::kRunning);
  const std::string busy = queue_->GetJob(job.id)->node;
  ASSERT_TRUE(queue_->PutPool(Patched("cpu", 2, "v2"), &error)) << error;
  ASSERT_TRUE(WaitLevel("east/cpu", "v2", 2)) << EventsText("east/cpu");
  // The job was drained, not killed: one attempt, succeeded.
  JobState end = WaitEnd(job.id);
  EXPECT_EQ(end.status, JobStatus::kSucceeded) << end.reason;
  EXPECT_EQ(end.attempts, 1);
  // The same two nodes, each patched once to v2, never two at once, the busy one after its job.
  auto nodes = queue_->ListNodes("east/cpu", true);
  EXPECT_EQ(nodes.size(), 2u) << EventsText("east/cpu");
  struct Span {
    std::string node;
    long long start = 0, end = 0;
  };
  std::vector<Span> v2;
  std::istringstream in(plinth::testing::ReadFile(log_));
  std::string node, level, what;
  long long ns = 0;
  while (in >> node >> level >> what >> ns) {
    if (level != "v2") continue;
    if (what == "start") v2.push_back({node, ns, 0});
    if (what == "end")
      for (auto& s : v2)
        if (s.node == node && s.end == 0) s.end = ns;
  }
  ASSERT_EQ(v2.size(), 2u) << plinth::testing::ReadFile(log_);
  std::sort(v2.begin(), v2.end(), [](const Span& a, const Span& b) { return a.start < b.start; });
  EXPECT_LE(v2[0].end, v2[1].start) << plinth::testing::ReadFile(log_);
  EXPECT_EQ(v2[1].node, busy) << "the node with a running job is drained last\n" << EventsText("east/cpu");
  EXPECT_GE(v2[1].start / 1000000, end.finished_at_ms) << plinth::testing::ReadFile(log_);
  std::string events = EventsText("east/cpu");
  EXPECT_NE(events.find(busy + "  cordoned for patch level v2; draining 1 running job(s)"), std::string::npos)
      << events;
  EXPECT_NE(events.find("patched to level v2 in "), std::string::npos) << events;
}

TEST_F(ComputePatchTest, ClosedWindowDefersAndAHungPatchIsKilledAndHaltsTheLevel) {
  std::string error;
  fs::remove(log_);
  ASSERT_TRUE(queue_->PutPool(Patched("cpu", 2, "v1"), &error)) << error;
  ASSERT_TRUE(WaitLevel("east/cpu", "v1", 2)) << EventsText("east/cpu");
  // A window that opens three hours from now: nothing is cordoned.
  PoolSpec later = Patched("cpu", 2, "v2");
  const int64_t now_min = std::chrono::duration_cast<std::chrono::minutes>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  later.patch.window = controller::NamedWindow{"later", {}, "UTC"};
  later.patch.window->window.start_minute = static_cast<int>((now_min + 180) % 1440);
  later.patch.window->window.duration_s = 3600;
  ASSERT_TRUE(queue_->PutPool(later, &error)) << error;
  std::this_thread::sleep_for(2500ms);
  for (const auto& n : queue_->ListNodes("east/cpu", false)) EXPECT_EQ(n.patch_level, "v1") << n.name;
  EXPECT_EQ(EventsText("east/cpu").find("cordoned"), std::string::npos) << EventsText("east/cpu");
  // A patch that hangs is killed at its timeout: the node fails, the level halts (threshold 1),
  // the other node keeps its level and a replacement joins unpatched.
  PoolSpec hangs = Patched("cpu", 2, "v3", "sleep 60;");
  hangs.patch.timeout_ms = 1000;
  ASSERT_TRUE(queue_->PutPool(hangs, &error)) << error;
  ASSERT_TRUE(WaitEvent("east/cpu", "patch level v3 halted: 1 node(s) failed it")) << EventsText("east/cpu");
  std::string events = EventsText("east/cpu");
  EXPECT_NE(events.find("patch level v3 failed: the patch command was killed by SIGTERM after its 1 s deadline"),
            std::string::npos)
      << events;
  EXPECT_TRUE(queue_->PatchHalted(hangs));
  std::this_thread::sleep_for(1500ms);
  int at_v1 = 0, failed = 0;
  for (const auto& n : queue_->ListNodes("east/cpu", true)) {
    if (n.state == "failed") ++failed;
    if (n.state == "ready" && n.patch_level == "v1") ++at_v1;
    EXPECT_NE(n.patch_level, "v3") << n.name;
  }
  EXPECT_EQ(failed, 1) << EventsText("east/cpu");
  EXPECT_EQ(at_v1, 1) << EventsText("east/cpu");
  EXPECT_EQ(EventsText("east/cpu").find("cordoned for patch level v3", events.find("halted")), std::string::npos)
      << "no node is cordoned after the halt\n"
      << EventsText("east/cpu");
  // What the controller's compute task exposes for the built-in pool alerts.
  metrics::Exposition m;
  WritePoolMetrics(*queue_,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count(),
                   m);
  for (const char* line : {"plinth_compute_patch_halted{pool=\"east/cpu\"} 1\n",
                           "plinth_compute_node_failures_total{pool=\"east/cpu\"} 1\n",
                           "plinth_compute_nodes_at_patch_level{pool=\"east/cpu\"} 0\n",
                           "plinth_compute_nodes{pool=\"east/cpu\",state=\"failed\"} 1\n"})
    EXPECT_NE(m.Text().find(line), std::string::npos) << line << m.Text();
}

TEST_F(ComputePatchTest, APatchThatBreaksItsGpuFailsTheHealthGateAfterIt) {
  std::string error;
  fs::remove(log_);
  PoolSpec p = Pool("gpu", 1, 1);
  p.min_nodes = 1;
  p.idle_ms = 60000;
  p.patch.level = "v1";
  p.patch.command = {"/bin/true"};
  ASSERT_TRUE(queue_->PutPool(p, &error)) << error;
  // GPU 0 fails the gate (the fixture's gemm fault): the node on GPU 1 is the one at v1.
  ASSERT_TRUE(WaitLevel("east/gpu", "v1", 1)) << EventsText("east/gpu");
  ASSERT_EQ(queue_->ListNodes("east/gpu", false).front().gpus, std::vector<int>{1});
  // v2's command injects a fault into the node's own GPU: the command succeeds, the probe after it fails.
  p.patch.level = "v2";
  p.patch.command = {"python3", "-c",
                     "import json, os, sys; f = sys.argv[1]; d = json.load(open(f)); "
                     "[g.update(fault='gemm') for g in d['gpus'] if str(g['index']) == os.environ['PLINTH_NODE_GPUS']]; "
                     "json.dump(d, open(f, 'w'))",
                     (root_ / "gpus.json").string()};
  auto py = process::FindExecutable("python3", "/usr/local/bin:/usr/bin:/bin");
  ASSERT_TRUE(py);
  p.patch.command[0] = py->string();
  ASSERT_TRUE(queue_->PutPool(p, &error)) << error;
  ASSERT_TRUE(WaitEvent("east/gpu", "patch level v2 halted")) << EventsText("east/gpu");
  std::string events = EventsText("east/gpu");
  EXPECT_NE(events.find("patch level v2 failed: health gate failed: GPU 1"), std::string::npos) << events;
  EXPECT_NE(events.find("(GPU quarantined for 1h)"), std::string::npos) << events;
  // The replacement takes GPU 2 (1 is quarantined) and, the level being halted, joins without it.
  ASSERT_TRUE(WaitLevel("east/gpu", "", 1)) << EventsText("east/gpu");
  EXPECT_EQ(queue_->ListNodes("east/gpu", false).front().gpus, std::vector<int>{2});
  // plinth history has both automatic actions, with their reasons.
  auto log = controller::ActionLog::Open(root_ / "ws" / "controller" / "actions.db", false, &error);
  ASSERT_TRUE(log) << error;
  std::string history;
  for (const auto& a : log->List("pool.gpu")) history += a.kind + ": " + a.detail + " (" + a.reason + ")\n";
  EXPECT_NE(history.find("replace node: node east-gpu-2 failed patch level v2; a replacement is provisioned "
                         "(health gate failed: GPU 1 failed the quick probe"),
            std::string::npos)
      << history;
  EXPECT_NE(history.find("halt patch: level v2 (1 node(s) failed it (failure_threshold 1))"), std::string::npos)
      << history;
}

// A level that halts with a rollback_command: the nodes that reached it go
// back to the level they had, one at a time, and history says why.
TEST_F(ComputePatchTest, AHaltedLevelIsRolledBackOnTheNodesThatReachedIt) {
  std::string error;
  fs::remove(log_);
  ASSERT_TRUE(queue_->PutPool(Patched("cpu", 2, "v1"), &error)) << error;
  ASSERT_TRUE(WaitLevel("east/cpu", "v1", 2)) << EventsText("east/cpu");
  // v2's first node succeeds, the second fails (threshold 1): v2 halts with one node on it.
  const fs::path count = log_.string() + ".count";
  fs::remove(count);
  PoolSpec v2 = Patched("cpu", 2, "v2",
                        "n=$(cat " + count.string() + " 2>/dev/null || echo 0); echo $((n + 1)) > " +
                            count.string() + "; [ \"$n\" -ge 1 ] && exit 3;");
  v2.patch.rollback_command = {"/bin/sh", "-c",
                               "echo \"$PLINTH_NODE rollback to $PLINTH_PATCH_LEVEL from "
                               "$PLINTH_PREVIOUS_PATCH_LEVEL ($PLINTH_PATCH_ROLLBACK)\" >> " +
                                   log_.string()};
  ASSERT_TRUE(queue_->PutPool(v2, &error)) << error;
  ASSERT_TRUE(WaitEvent("east/cpu", "patch level v2 halted")) << EventsText("east/cpu");
  ASSERT_TRUE(WaitEvent("east/cpu", "rolled back from patch level v2 to level v1")) << EventsText("east/cpu");
  std::this_thread::sleep_for(1500ms);
  const std::string events = EventsText("east/cpu");
  std::string patched;  // the node that reached v2
  for (const auto& n : queue_->ListNodes("east/cpu", true)) {
    EXPECT_NE(n.patch_level, "v2") << n.name << "\n" << events;
    if (n.state == "ready" && n.previous_patch_level == "v2") patched = n.name;
  }
  ASSERT_FALSE(patched.empty()) << events;
  const std::string log = plinth::testing::ReadFile(log_);
  EXPECT_NE(log.find(patched + " rollback to v1 from v2 (1)"), std::string::npos) << log;
  EXPECT_EQ(log.find(" rollback to ", log.find(patched + " rollback to ") + patched.size() + 1), std::string::npos)
      << "only the node at v2 is rolled back\n" << log;
  EXPECT_NE(events.find("cordoned to roll back patch level v2"), std::string::npos) << events;
  auto actions = controller::ActionLog::Open(root_ / "ws" / "controller" / "actions.db", false, &error);
  ASSERT_TRUE(actions) << error;
  std::string history;
  for (const auto& a : actions->List("pool.cpu")) history += a.kind + ": " + a.detail + " (" + a.reason + ")\n";
  EXPECT_NE(history.find("roll back patch: node " + patched + " from level v2 to level v1 (patch level v2 "
                         "halted: 1 node(s) failed it)"),
            std::string::npos)
      << history;
  fs::remove(count);
}

TEST_F(ComputePatchTest, AnIdleNodeWhoseGpuGoesBadFailsItsPeriodicHealthCheck) {
  std::string error;
  PoolSpec p = Pool("gpu", 1, 1);
  p.min_nodes = 1;
  p.idle_ms = 60000;
  p.health_recheck_ms = 500;
  ASSERT_TRUE(queue_->PutPool(p, &error)) << error;
  ASSERT_TRUE(WaitLevel("east/gpu", "", 1)) << EventsText("east/gpu");
  ASSERT_EQ(queue_->ListNodes("east/gpu", false).front().gpus, std::vector<int>{1});
  const std::string first = queue_->ListNodes("east/gpu", false).front().name;
  std::this_thread::sleep_for(1500ms);  // it passes its checks while GPU 1 is healthy
  EXPECT_EQ(queue_->ListNodes("east/gpu", false).front().name, first) << EventsText("east/gpu");
  std::ofstream(root_ / "gpus.json")
      << R"({"gpus":[{"index":0,"type":"H100","fault":"gemm"},{"index":1,"type":"H100","fault":"bandwidth"},)"
      << R"({"index":2,"type":"H100"}]})";
  ASSERT_TRUE(WaitEvent("east/gpu", first + "  node failed: periodic health gate failed: GPU 1"))
      << EventsText("east/gpu");
  // The replacement (min_nodes) takes GPU 2: GPU 1 is quarantined.
  ASSERT_TRUE(WaitLevel("east/gpu", "", 1)) << EventsText("east/gpu");
  EXPECT_EQ(queue_->ListNodes("east/gpu", false).front().gpus, std::vector<int>{2});
  auto log = controller::ActionLog::Open(root_ / "ws" / "controller" / "actions.db", false, &error);
  ASSERT_TRUE(log) << error;
  auto actions = log->List("pool.gpu");
  ASSERT_FALSE(actions.empty());
  EXPECT_EQ(actions.back().kind, "replace node");
  EXPECT_NE(actions.back().detail.find("node " + first + " failed its periodic health check"), std::string::npos);
}

// ---- CPU and memory reservations across nodes (docs/compute.md, "CPU and memory reservations")

class ComputeReservationTest : public ComputeAgentTest {
 protected:
  void SetUp() override {
    ComputeAgentTest::SetUp();
    // A machine of 2 CPUs and no GPU, whatever this one has.
    std::ofstream(root_ / "machine.json") << R"({"cpus": 2, "memory": "4GiB", "gpus": []})";
    ::setenv("PLINTH_FAKE_GPUS", (root_ / "machine.json").c_str(), 1);
  }
  void TearDown() override {
    for (auto& q : others_) {
      for (const auto& p : q->ListPools()) {
        std::string error;
        EXPECT_TRUE(q->RemovePool(p.id, true, &error)) << error;
      }
    }
    others_.clear();
    ComputeAgentTest::TearDown();
  }
  // A pool of one node of 2 CPUs.
  PoolSpec TwoCpuPool(const std::string& name) {
    PoolSpec p = Pool(name, 0, 1);
    p.shapes[0].cpus = 2;
    p.health = HealthGate::kNone;
    return p;
  }
  // A second workspace on this machine (same lock directory); its pools are removed by TearDown.
  Queue* OtherWorkspace() {
    QueueOptions o;
    o.agent_program = PLINTH_BINARY;
    o.workspace_key = root_ / "ws2" / "workspace.key";
    std::string error;
    auto q = Queue::Open(root_ / "ws2" / "compute", o, true, &error);
    EXPECT_TRUE(q) << error;
    others_.push_back(std::move(q));
    return others_.back().get();
  }
  // A job that runs until `release` exists.
  JobSpec Holder(const std::string& pool, const std::string& name, const fs::path& started,
                 const fs::path& release) {
    return Job(
        pool, name,
        {"sh", "-c",
         "touch " + started.string() + "; while [ ! -e " + release.string() + " ]; do sleep 0.05; done"});
  }
  // Queue::Wait, given up after 60 s (a guard against a hang, not a timing check).
  static std::optional<JobState> WaitBounded(Queue& q, const std::string& id) {
    std::stop_source give_up;
    std::jthread guard([&give_up](std::stop_token done) {
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      if (!cv.wait_for(lock, done, 60s, [] { return false; }) && !done.stop_requested())
        give_up.request_stop();
    });
    auto s = q.Wait(id, give_up.get_token(), nullptr);
    EXPECT_FALSE(give_up.stop_requested()) << "job " << id << " did not end within 60 s";
    return s;
  }
  static void WaitFor(const fs::path& p) {
    for (int i = 0; i < 600 && !fs::exists(p); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(fs::exists(p)) << p;
  }
  std::vector<std::unique_ptr<Queue>> others_;
};

TEST_F(ComputeReservationTest, TwoPoolsNeverOverCommitTheMachinesCpus) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(TwoCpuPool("a"), &error)) << error;
  ASSERT_TRUE(queue_->PutPool(TwoCpuPool("b"), &error)) << error;
  fs::path started = root_ / "started", release = root_ / "release";
  auto hold = Holder("east/a", "hold", started, release);
  ASSERT_TRUE(queue_->Submit(hold, {}, &error)) << error;
  WaitFor(started);
  // Pool b's node would need the 2 CPUs east-a-1 holds: no node, and the job says why.
  auto waiting = queue_->Submit(Job("east/b", "next", {"true"}), {}, &error);
  ASSERT_TRUE(waiting) << error;
  EXPECT_TRUE(queue_->ListNodes("east/b", true).empty());
  EXPECT_EQ(waiting->status, JobStatus::kPending);
  EXPECT_EQ(waiting->reason,
            "waiting for room on this machine: shape 1 (cpu): 2 of this machine's 2 CPUs are held by other "
            "nodes (east-a-1)");
  EXPECT_NE(EventsText("east/b").find("shape 1 (cpu) skipped: 2 of this machine's 2 CPUs are held by other "
                                      "nodes (east-a-1)"),
            std::string::npos)
      << EventsText("east/b");
  // When east-a-1 ends (idle after its job), the waiting job gets a node.
  std::ofstream(release).flush();
  auto ended = WaitBounded(*queue_, waiting->spec.id);
  ASSERT_TRUE(ended);
  const JobState& end = *ended;
  ASSERT_EQ(end.status, JobStatus::kSucceeded) << end.reason << "\n" << EventsText("east/b");
  auto a_nodes = queue_->ListNodes("east/a", true);
  ASSERT_EQ(a_nodes.size(), 1u);
  EXPECT_EQ(a_nodes[0].state, "released");
  auto b_nodes = queue_->ListNodes("east/b", true);
  ASSERT_EQ(b_nodes.size(), 1u);
  EXPECT_EQ(end.node, b_nodes[0].name);
  EXPECT_GE(b_nodes[0].started_at_ms, a_nodes[0].ended_at_ms) << "the two nodes lived at once";
}

TEST_F(ComputeReservationTest, MemoryIsReservedLikeCpus) {
  std::string error;
  // Two 1-CPU nodes fit the 2 CPUs, but not two of 3 GiB in the machine's 4 GiB.
  PoolSpec a = Pool("a", 0, 1), b = Pool("b", 0, 1);
  a.shapes[0].memory_bytes = b.shapes[0].memory_bytes = 3ull << 30;
  ASSERT_TRUE(queue_->PutPool(a, &error)) << error;
  ASSERT_TRUE(queue_->PutPool(b, &error)) << error;
  fs::path started = root_ / "started", release = root_ / "release";
  ASSERT_TRUE(queue_->Submit(Holder("east/a", "hold", started, release), {}, &error)) << error;
  WaitFor(started);
  auto waiting = queue_->Submit(Job("east/b", "next", {"true"}), {}, &error);
  ASSERT_TRUE(waiting) << error;
  EXPECT_TRUE(queue_->ListNodes("east/b", true).empty());
  EXPECT_EQ(
      waiting->reason,
      "waiting for room on this machine: shape 1 (cpu): 3.0 GiB of this machine's 4.0 GiB of memory are "
      "held by other nodes (east-a-1)");
  std::ofstream(release).flush();
  auto end = WaitBounded(*queue_, waiting->spec.id);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, JobStatus::kSucceeded) << end->reason;
}

TEST_F(ComputeReservationTest, TwoWorkspacesShareTheMachineThroughTheLockDirectory) {
  std::string error;
  Queue* other = OtherWorkspace();
  ASSERT_TRUE(other);
  ASSERT_TRUE(queue_->PutPool(TwoCpuPool("a"), &error)) << error;
  ASSERT_TRUE(other->PutPool(TwoCpuPool("a"), &error)) << error;  // the same pool id in another workspace
  fs::path started = root_ / "started", release = root_ / "release";
  ASSERT_TRUE(queue_->Submit(Holder("east/a", "hold", started, release), {}, &error)) << error;
  WaitFor(started);
  auto waiting = other->Submit(Job("east/a", "next", {"true"}), {}, &error);
  ASSERT_TRUE(waiting) << error;
  EXPECT_TRUE(other->ListNodes("east/a", true).empty());
  EXPECT_NE(waiting->reason.find("2 of this machine's 2 CPUs are held by other nodes (east-a-1)"),
            std::string::npos)
      << waiting->reason;
  // The first workspace's node ends; the other workspace's Reconcile (run by Wait) places its job.
  std::ofstream(release).flush();
  auto end = WaitBounded(*other, waiting->spec.id);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, JobStatus::kSucceeded) << end->reason;
  auto first = queue_->ListNodes("east/a", true);
  auto second = other->ListNodes("east/a", true);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(first[0].state, "released");
  EXPECT_GE(second[0].started_at_ms, first[0].ended_at_ms) << "the two nodes lived at once";
}

TEST_F(ComputeReservationTest, AKilledAgentsEntryIsNotCounted) {
  std::string error;
  Queue* other = OtherWorkspace();
  ASSERT_TRUE(other);
  ASSERT_TRUE(queue_->PutPool(TwoCpuPool("a"), &error)) << error;
  ASSERT_TRUE(other->PutPool(TwoCpuPool("a"), &error)) << error;
  fs::path started = root_ / "started", release = root_ / "release";
  auto hold = Holder("east/a", "hold", started, release);
  hold.retries.infrastructure = 0;  // not rerun after its node is lost
  ASSERT_TRUE(queue_->Submit(hold, {}, &error)) << error;
  WaitFor(started);
  auto nodes = queue_->ListNodes("east/a", false);
  ASSERT_EQ(nodes.size(), 1u);
  fs::path entry = ReservationPath(queue_->compute_dir(), nodes[0].name);
  ASSERT_TRUE(fs::exists(entry)) << entry;
  // The agent dies without releasing its entry; this workspace has not reconciled yet (its row is live).
  ASSERT_EQ(::kill(nodes[0].pid, SIGKILL), 0);
  // Its lock goes when its last thread has exited (the pid may look gone a moment before).
  auto held = [&] {
    int fd = ::open(entry.c_str(), O_RDONLY | O_CLOEXEC);
    bool h = fd >= 0 && ::flock(fd, LOCK_SH | LOCK_NB) != 0;
    if (fd >= 0) ::close(fd);
    return h;
  };
  for (int i = 0; i < 1000 && held(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(held());
  ASSERT_TRUE(fs::exists(entry));
  auto placed = other->Submit(Job("east/a", "next", {"true"}), {}, &error);
  ASSERT_TRUE(placed) << error;
  EXPECT_FALSE(fs::exists(entry)) << "the stale entry was not removed";
  ASSERT_EQ(other->ListNodes("east/a", true).size(), 1u) << placed->reason;
  auto end = WaitBounded(*other, placed->spec.id);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, JobStatus::kSucceeded) << end->reason;
  std::ofstream(release).flush();
}

// The CLI on a pool made through the API: submit --wait with a secret from
// plinth's environment, ls, logs, status --metrics.
TEST(ComputeCli, SubmitWaitLsLogsAndStatus) {
  fs::path dir = fs::temp_directory_path() / ("plinth-compute-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / ".plinth" / "default");
  ::setenv("PLINTH_GPU_LOCK_DIR", (dir / "locks").c_str(), 1);
  ::unsetenv("PLINTH_WORKSPACE");
  ::unsetenv("PLINTH_FAKE_GPUS");  // a CPU pool: the machine's own inventory
  QueueOptions o;
  o.agent_program = PLINTH_BINARY;
  o.workspace_key = dir / ".plinth" / "default" / "workspace.key";
  std::string error;
  auto queue = Queue::Open(dir / ".plinth" / "default" / "compute", o, true, &error);
  ASSERT_TRUE(queue) << error;
  PoolSpec p;
  p.region = "east";
  p.name = "cli";
  p.id = "east/cli";
  p.shapes.push_back(Shape{});
  p.idle_ms = 1000;
  ASSERT_TRUE(queue->PutPool(p, &error)) << error;
  auto plinth = [&](std::vector<std::string> args) {
    process::Spec spec;
    spec.program = PLINTH_BINARY;
    spec.args = std::move(args);
    spec.env = process::CurrentEnvironment();
    spec.env["CLI_TOKEN"] = "cli-secret-789";
    spec.deadline = std::chrono::seconds(60);
    return process::Run(std::move(spec));
  };
  process::Outcome sub =
      plinth({"job", "submit", "--dir=" + dir.string(), "--pool=east/cli", "--name=hello", "--secret-env",
              "CLI_TOKEN", "--wait", "--", "sh", "-c", "echo hello $CLI_TOKEN; echo to-stderr >&2"});
  EXPECT_TRUE(sub.ok()) << sub.Describe("plinth") << sub.err;
  std::string id = sub.out.substr(0, sub.out.find('\n'));
  EXPECT_EQ(id.rfind("east/cli/hello-", 0), 0u) << sub.out;
  EXPECT_NE(sub.err.find("succeeded"), std::string::npos) << sub.err;
  process::Outcome ls = plinth({"job", "ls", "--dir=" + dir.string(), "--all", "--json"});
  EXPECT_TRUE(ls.ok()) << ls.err;
  EXPECT_NE(ls.out.find("\"status\": \"succeeded\""), std::string::npos) << ls.out;
  process::Outcome logs = plinth({"job", "logs", id, "--dir=" + dir.string()});
  EXPECT_TRUE(logs.ok()) << logs.err;
  EXPECT_NE(logs.out.find("hello cli-secret-789\nto-stderr\n"), std::string::npos) << logs.out;
  process::Outcome status = plinth({"compute", "status", "--metrics", "--dir=" + dir.string()});
  EXPECT_TRUE(status.ok()) << status.err;
  EXPECT_NE(status.out.find("plinth_compute_jobs{pool=\"east/cli\",status=\"succeeded\"} 1"),
            std::string::npos)
      << status.out;
  process::Outcome text = plinth({"compute", "status", "--dir=" + dir.string()});
  EXPECT_TRUE(text.ok()) << text.err;
  EXPECT_NE(text.out.find("pool east/cli  (nodes 0..1, 0.00 GPU-hours used)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("queue: succeeded 1"), std::string::npos) << text.out;
  process::Outcome js = plinth({"compute", "status", "--json", "--dir=" + dir.string()});
  EXPECT_TRUE(js.ok()) << js.err;
  EXPECT_NE(js.out.find("\"id\": \"east/cli\""), std::string::npos) << js.out;
  process::Outcome bad = plinth({"job", "submit", "--dir=" + dir.string(), "--pool=east/none", "--", "true"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("pool east/none does not exist"), std::string::npos) << bad.err;
  // The secret is in the job's output only: not in the database, its WAL or a node log.
  for (const auto& e : fs::recursive_directory_iterator(dir / ".plinth" / "default" / "compute")) {
    if (!e.is_regular_file() || e.path().filename() == "log") continue;
    EXPECT_EQ(plinth::testing::ReadFile(e.path()).find("cli-secret-789"), std::string::npos) << e.path();
  }
  EXPECT_TRUE(queue->RemovePool("east/cli", true, &error)) << error;
  queue.reset();
  fs::remove_all(dir);
  ::unsetenv("PLINTH_GPU_LOCK_DIR");
}

}  // namespace
}  // namespace plinth::compute
