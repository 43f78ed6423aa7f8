// The machine-wide CPU and memory ledger (runtime/compute/ledger.h): live
// entries are summed, stale ones (their agent gone, or never claimed within
// 30 s) are removed and not counted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/compute/ledger.h"
#include "runtime/compute/queue.h"

namespace plinth::compute {
namespace {

namespace fs = std::filesystem;

class ComputeLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-ledger-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ::setenv("PLINTH_GPU_LOCK_DIR", (dir_ / "locks").c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("PLINTH_GPU_LOCK_DIR");
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(ComputeLedgerTest, CountsHeldAndUnclaimedEntriesAndRemovesStaleOnes) {
  std::string error;
  LedgerLock lock;
  ASSERT_TRUE(lock.ok(&error)) << error;
  // A node being started (written by its provisioner, not yet claimed): counted.
  ASSERT_TRUE(ReserveLocked(dir_ / "ws1", "east-a-1", 2, 1ull << 30, &error)) << error;
  // A node whose agent holds its entry: counted.
  NodeReservation held;
  ASSERT_TRUE(held.Claim(dir_ / "ws2", "east-a-1", 3, 0, &error)) << error;
  // A node whose agent was killed (its pid is in the entry, nobody holds it): stale.
  fs::path dead = ReservationPath(dir_ / "ws3", "east-b-1");
  std::ofstream(dead) << R"({"dir":"x","node":"east-b-1","cpus":4,"memory":0,"pid":12345,"at":1})"
                      << "\n";
  // A provisioner's entry never claimed for more than 30 s: stale.
  fs::path old = ReservationPath(dir_ / "ws3", "east-b-2");
  std::ofstream(old) << R"({"dir":"x","node":"east-b-2","cpus":4,"memory":0,"pid":0,"at":1})"
                     << "\n";
  HeldResources h = ReadHeld();
  EXPECT_EQ(h.cpus, 5);
  EXPECT_EQ(h.memory_bytes, 1ull << 30);
  EXPECT_EQ(h.cpu_nodes.size(), 2u);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(old));
  // Released: its CPUs are free and its entry gone.
  held.Release();
  EXPECT_FALSE(fs::exists(ReservationPath(dir_ / "ws2", "east-a-1")));
  h = ReadHeld();
  EXPECT_EQ(h.cpus, 2);
  Unreserve(dir_ / "ws1", "east-a-1");
  EXPECT_EQ(ReadHeld().cpus, 0);
}

TEST_F(ComputeLedgerTest, AnAgentClaimsTheEntryItsProvisionerWrote) {
  std::string error;
  {
    LedgerLock lock;
    ASSERT_TRUE(lock.ok(&error)) << error;
    ASSERT_TRUE(ReserveLocked(dir_ / "ws", "east-a-1", 2, 0, &error)) << error;
  }
  NodeReservation r;
  ASSERT_TRUE(r.Claim(dir_ / "ws", "east-a-1", 2, 0, &error)) << error;
  std::ifstream in(ReservationPath(dir_ / "ws", "east-a-1"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"pid\":" + std::to_string(::getpid())), std::string::npos) << text;
  EXPECT_EQ(ReadHeld().cpus, 2);  // one entry, counted once
}

}  // namespace
}  // namespace plinth::compute
