// The compute queue and node agents end to end (docs/compute.md): real agent
// processes (the built plinth), a fake GPU inventory, a private GPU lock
// directory and idle times of about a second. Every test removes its pool,
// which stops its agents.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

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
