// The compute queue through its API, without agents (docs/compute.md,
// "Queue"): placement and skipped shapes, GPU locks held elsewhere, job
// identity, cancellation, dependencies, claims and sealed secrets. Pools
// here never get a node (their shapes cannot be placed), except where a
// test claims for a node itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/compute/queue.h"
#include "tests/support/compute_fixture.h"
#include "tests/support/files.h"

namespace plinth::compute {
namespace {

namespace fs = std::filesystem;

class ComputeQueueTest : public plinth::testing::ComputeFixture {
 protected:
  ComputeQueueTest() : ComputeFixture("plinth-queue") {}
  // A pool whose only shape wants an A100 (the fake machine has H100s): never placed.
  PoolSpec Unplaceable(const std::string& name) {
    PoolSpec p;
    p.region = "east";
    p.name = name;
    p.id = "east/" + name;
    Shape s;
    s.accelerators = {"A100", 1};
    p.shapes.push_back(s);
    p.max_nodes = 2;
    return p;
  }
  JobSpec Job(const std::string& pool, const std::string& name) {
    JobSpec j;
    j.id = pool + "/" + name;
    j.name = name;
    j.pool = pool;
    j.argv = {"true"};
    return j;
  }
  std::string EventsText(const std::string& pool) {
    std::string t;
    for (const auto& e : queue_->Events(pool, 1000)) t += e.job + " " + e.text + "\n";
    return t;
  }
};

TEST_F(ComputeQueueTest, ShapesAreTriedInOrderAndEachSkipSaysWhy) {
  PoolSpec p = Unplaceable("train");
  Shape big;
  big.accelerators = {"H100", 8};
  p.shapes.push_back(big);
  std::string error;
  ASSERT_TRUE(queue_->PutPool(p, &error)) << error;
  auto job = Job(p.id, "a");
  job.gpus = 1;
  auto s = queue_->Submit(job, {}, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->status, JobStatus::kPending);
  std::string events = EventsText(p.id);
  EXPECT_NE(events.find("shape 1 (A100:1) skipped: this machine has no A100"), std::string::npos) << events;
  EXPECT_NE(events.find("shape 2 (H100:8) skipped: 8 H100 wanted"), std::string::npos) << events;
  EXPECT_NE(s->reason.find("no shape can be placed now"), std::string::npos) << s->reason;
  EXPECT_TRUE(queue_->ListNodes(p.id, true).empty());
}

TEST_F(ComputeQueueTest, GpusLockedByAnotherHolderAreNotHandedOut) {
  // Another workspace's agents hold every GPU.
  fs::create_directories(root_ / "locks");
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    int fd =
        ::open((root_ / "locks" / ("gpu-" + std::to_string(i) + ".lock")).c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    fds.push_back(fd);
  }
  PoolSpec p;
  p.region = "east";
  p.name = "gpu";
  p.id = "east/gpu";
  Shape s;
  s.accelerators = {"H100", 1};
  p.shapes.push_back(s);
  std::string error;
  ASSERT_TRUE(queue_->PutPool(p, &error)) << error;
  auto job = Job(p.id, "a");
  job.gpus = 1;
  ASSERT_TRUE(queue_->Submit(job, {}, &error)) << error;
  for (int fd : fds) ::close(fd);
  EXPECT_NE(EventsText(p.id).find("shape 1 (H100:1) skipped: its GPUs are held by other nodes"),
            std::string::npos)
      << EventsText(p.id);
  EXPECT_TRUE(queue_->ListNodes(p.id, true).empty());
}

TEST_F(ComputeQueueTest, SubmitKeepsAnExistingJobAndRerunsACancelledOne) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Unplaceable("p"), &error)) << error;
  auto job = Job("east/p", "a");
  ASSERT_TRUE(queue_->Submit(job, {}, &error)) << error;
  auto again = queue_->Submit(job, {}, &error);
  ASSERT_TRUE(again);
  EXPECT_EQ(queue_->ListJobs("east/p").size(), 1u);
  ASSERT_TRUE(queue_->Cancel(job.id, &error)) << error;
  EXPECT_EQ(queue_->GetJob(job.id)->status, JobStatus::kCancelled);
  auto rerun = queue_->Submit(job, {}, &error);
  ASSERT_TRUE(rerun) << error;
  EXPECT_EQ(rerun->status, JobStatus::kPending);
  EXPECT_NE(EventsText("east/p").find("submitted again after it cancelled"), std::string::npos);
  EXPECT_FALSE(queue_->Submit(Job("east/nope", "b"), {}, &error));
  EXPECT_NE(error.find("pool east/nope does not exist"), std::string::npos) << error;
}

TEST_F(ComputeQueueTest, RemovePoolRefusesActiveJobsUnlessForced) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Unplaceable("p"), &error)) << error;
  ASSERT_TRUE(queue_->Submit(Job("east/p", "a"), {}, &error)) << error;
  EXPECT_FALSE(queue_->RemovePool("east/p", false, &error));
  EXPECT_NE(error.find("still has 1 pending or running jobs"), std::string::npos) << error;
  ASSERT_TRUE(queue_->RemovePool("east/p", true, &error)) << error;
  EXPECT_FALSE(queue_->GetPool("east/p"));
  EXPECT_EQ(queue_->GetJob("east/p/a")->status, JobStatus::kCancelled);
}

TEST_F(ComputeQueueTest, ClaimIsFifoOncePerJobAndFollowsDependencies) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Unplaceable("p"), &error)) << error;
  auto a = Job("east/p", "a"), b = Job("east/p", "b"), c = Job("east/p", "c");
  b.after = {a.id};
  ASSERT_TRUE(queue_->Submit(a, {}, &error));
  ASSERT_TRUE(queue_->Submit(b, {}, &error));
  ASSERT_TRUE(queue_->Submit(c, {}, &error));
  NodeState node;
  node.name = "east-p-test";
  node.pool = "east/p";
  node.cpus = 4;
  auto first = queue_->Claim(node, 4, 0, {});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->job.spec.id, a.id);
  auto second = queue_->Claim(node, 4, 0, {});  // b waits for a: c is next
  ASSERT_TRUE(second);
  EXPECT_EQ(second->job.spec.id, c.id);
  EXPECT_FALSE(queue_->Claim(node, 4, 0, {}));  // nothing is claimed twice
  queue_->FinishAttempt(a.id, 1, "exit", 2, std::nullopt, "true exited with status 2");
  EXPECT_EQ(queue_->GetJob(a.id)->status, JobStatus::kFailed);
  EXPECT_FALSE(queue_->Claim(node, 4, 0, {}));
  auto bs = queue_->GetJob(b.id);
  EXPECT_EQ(bs->status, JobStatus::kCancelled);
  EXPECT_EQ(bs->reason, "dependency east/p/a failed");
}

TEST_F(ComputeQueueTest, SecretsAreSealedAndDroppedWhenTheJobEnds) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Unplaceable("p"), &error)) << error;
  auto job = Job("east/p", "a");
  ASSERT_TRUE(queue_->Submit(job, {{"HF_TOKEN", "hf-secret-value-123"}}, &error)) << error;
  EXPECT_EQ(queue_->GetJob(job.id)->spec.secret_names, std::vector<std::string>{"HF_TOKEN"});
  for (const char* f : {"compute.db", "compute.db-wal"}) {
    EXPECT_EQ(plinth::testing::ReadFile(root_ / "ws" / "compute" / f).find("hf-secret-value-123"),
              std::string::npos)
        << f;
  }
  std::map<std::string, std::string> secrets;
  ASSERT_TRUE(queue_->OpenSecrets(job.id, &secrets, &error)) << error;
  EXPECT_EQ(secrets["HF_TOKEN"], "hf-secret-value-123");
  ASSERT_TRUE(queue_->Cancel(job.id, &error));
  secrets.clear();
  ASSERT_TRUE(queue_->OpenSecrets(job.id, &secrets, &error)) << error;
  EXPECT_TRUE(secrets.empty());
}

TEST_F(ComputeQueueTest, RemoveJobCancelsItAndDeletesItsRowAndFiles) {
  std::string error;
  ASSERT_TRUE(queue_->PutPool(Unplaceable("p"), &error)) << error;
  auto job = Job("east/p", "a");
  auto s = queue_->Submit(job, {}, &error);
  ASSERT_TRUE(s) << error;
  fs::path dir = fs::path(s->log_path).parent_path();
  fs::create_directories(dir);
  std::ofstream(s->log_path) << "output\n";
  ASSERT_TRUE(queue_->RemoveJob(job.id, &error)) << error;
  EXPECT_FALSE(queue_->GetJob(job.id));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(queue_->RemoveJob(job.id, &error));  // already gone: done
  EXPECT_FALSE(queue_->Cancel(job.id, &error));
  EXPECT_NE(error.find("no job east/p/a in the queue"), std::string::npos) << error;
}

TEST_F(ComputeQueueTest, AgentsThatDieAtOnceAreNotRestartedInALoop) {
  // An "agent" that exits at once: every node it gets is lost.
  QueueOptions o;
  o.agent_program = "/bin/false";
  o.workspace_key = root_ / "ws" / "workspace.key";
  std::string error;
  auto q = Queue::Open(root_ / "ws" / "compute", o, false, &error);
  ASSERT_TRUE(q) << error;
  PoolSpec p;
  p.region = "east";
  p.name = "crash";
  p.id = "east/crash";
  p.shapes.push_back(Shape{});
  ASSERT_TRUE(q->PutPool(p, &error)) << error;
  ASSERT_TRUE(q->Submit(Job(p.id, "a"), {}, &error)) << error;
  for (int i = 0; i < 100 && q->ListNodes(p.id, true).size() < 3; ++i) {
    q->Reconcile();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int i = 0; i < 20; ++i) {
    q->Reconcile();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto nodes = q->ListNodes(p.id, true);
  EXPECT_EQ(nodes.size(), 3u);
  for (const auto& n : nodes) EXPECT_EQ(n.state, "lost") << n.name;
  auto job = q->GetJob(p.id + "/a");
  EXPECT_EQ(job->status, JobStatus::kPending);
  EXPECT_NE(job->reason.find("not provisioning: 3 nodes of this pool failed or were lost in the last minute"),
            std::string::npos)
      << job->reason;
}

}  // namespace
}  // namespace plinth::compute
