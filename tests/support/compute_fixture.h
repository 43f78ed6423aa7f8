// The fixture the compute queue and agent tests share: a private workspace
// directory with a fake inventory of three H100s (GPU 0 fails the health
// gate's GEMM check), a private GPU lock directory, and a queue whose agents
// are the built plinth (PLINTH_BINARY). TearDown removes every pool (force),
// which stops their agents, and checks that none is left running.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "runtime/compute/queue.h"
#include "runtime/process/process.h"

namespace plinth::testing {

class ComputeFixture : public ::testing::Test {
 protected:
  explicit ComputeFixture(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    namespace fs = std::filesystem;
    root_ = fs::temp_directory_path() / (prefix_ + "-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "ws");
    std::ofstream(root_ / "gpus.json")
        << R"({"gpus":[{"index":0,"type":"H100","fault":"gemm"},{"index":1,"type":"H100"},)"
        << R"({"index":2,"type":"H100"}]})";
    ::setenv("PLINTH_FAKE_GPUS", (root_ / "gpus.json").c_str(), 1);
    ::setenv("PLINTH_GPU_LOCK_DIR", (root_ / "locks").c_str(), 1);
    compute::QueueOptions o;
    o.agent_program = PLINTH_BINARY;
    o.workspace_key = root_ / "ws" / "workspace.key";
    std::string error;
    queue_ = compute::Queue::Open(root_ / "ws" / "compute", o, true, &error);
    ASSERT_TRUE(queue_) << error;
  }

  void TearDown() override {
    if (queue_) {
      std::vector<compute::NodeState> nodes = queue_->ListNodes("", true);
      for (const auto& p : queue_->ListPools()) {
        std::string error;
        EXPECT_TRUE(queue_->RemovePool(p.id, true, &error)) << error;
      }
      for (const auto& n : nodes) {
        if (n.pid > 0) {
          EXPECT_FALSE(process::ProcessStartTime(n.pid)) << "agent " << n.name << " still runs";
        }
      }
    }
    queue_.reset();
    std::filesystem::remove_all(root_);
    ::unsetenv("PLINTH_FAKE_GPUS");  // later tests start from a clean environment
    ::unsetenv("PLINTH_GPU_LOCK_DIR");
  }

  std::string prefix_;
  std::filesystem::path root_;
  std::unique_ptr<compute::Queue> queue_;
};

}  // namespace plinth::testing
