// The controller's leader lease (runtime/controller/lease.h) on simulated
// time: acquire, renew, expiry and takeover, terms as fencing tokens, and
// two holders racing for it.
#include "runtime/controller/lease.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

namespace plinth::controller {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-lease-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Lease> Open(const std::string& holder, int64_t pid) {
    std::string error;
    auto lease = Lease::Open(dir_ / "lease.db", "controller", holder, pid, clock_, &error);
    EXPECT_TRUE(lease) << error;
    return lease;
  }

  fs::path dir_;
  ManualClock clock_;
};

TEST_F(LeaseTest, FirstAcquireHoldsWithTermOne) {
  auto a = Open("a", 100);
  LeaseOutcome r = a->TryAcquire(seconds(10));
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_TRUE(r.held);
  EXPECT_EQ(r.record.holder_id, "a");
  EXPECT_EQ(r.record.holder_pid, 100);
  EXPECT_EQ(r.record.term, 1);
  EXPECT_EQ(r.record.expires_at_ms, clock_.WallMs() + 10'000);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "lease.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(LeaseTest, AnotherHolderIsRefusedWhileTheLeaseLives) {
  auto a = Open("a", 100);
  auto b = Open("b", 200);
  ASSERT_TRUE(a->TryAcquire(seconds(10)).held);
  clock_.Advance(seconds(9));
  LeaseOutcome r = b->TryAcquire(seconds(10));
  EXPECT_FALSE(r.held);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.record.holder_id, "a");
  EXPECT_EQ(r.record.term, 1);
  EXPECT_FALSE(b->Renew(seconds(10)).held);
}

TEST_F(LeaseTest, RenewExtendsAndKeepsTheTerm) {
  auto a = Open("a", 100);
  auto b = Open("b", 200);
  ASSERT_TRUE(a->TryAcquire(seconds(10)).held);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(8));
    LeaseOutcome r = a->Renew(seconds(10));
    ASSERT_TRUE(r.held);
    EXPECT_EQ(r.record.term, 1);
    EXPECT_EQ(r.record.expires_at_ms, clock_.WallMs() + 10'000);
    EXPECT_FALSE(b->TryAcquire(seconds(10)).held) << "renewed every 8 s, a 10 s lease never lapses";
  }
  // Acquiring one's own live lease is a renewal too.
  LeaseOutcome again = a->TryAcquire(seconds(10));
  EXPECT_TRUE(again.held);
  EXPECT_EQ(again.record.term, 1);
}

TEST_F(LeaseTest, ExpiredLeaseIsTakenOverWithAHigherTerm) {
  auto a = Open("a", 100);
  auto b = Open("b", 200);
  ASSERT_TRUE(a->TryAcquire(seconds(10)).held);
  clock_.Advance(seconds(10));  // expires_at == now: expired
  LeaseOutcome r = b->TryAcquire(seconds(10));
  ASSERT_TRUE(r.held);
  EXPECT_EQ(r.record.holder_id, "b");
  EXPECT_EQ(r.record.holder_pid, 200);
  EXPECT_EQ(r.record.term, 2);
  // The deposed holder can neither renew nor take it back while it lives.
  EXPECT_FALSE(a->Renew(seconds(10)).held);
  LeaseOutcome back = a->TryAcquire(seconds(10));
  EXPECT_FALSE(back.held);
  EXPECT_EQ(back.record.holder_id, "b");
  // ... and when it lapses again, a's return is another change of holder.
  clock_.Advance(seconds(11));
  back = a->TryAcquire(seconds(10));
  EXPECT_TRUE(back.held);
  EXPECT_EQ(back.record.term, 3);
}

TEST_F(LeaseTest, OwnExpiredLeaseNoOneTookKeepsItsTerm) {
  auto a = Open("a", 100);
  ASSERT_TRUE(a->TryAcquire(seconds(10)).held);
  clock_.Advance(seconds(30));
  LeaseOutcome r = a->Renew(seconds(10));
  EXPECT_TRUE(r.held);
  EXPECT_EQ(r.record.term, 1);
}

TEST_F(LeaseTest, ReleaseFreesTheLeaseAtOnceAndTheNextHolderGetsANewTerm) {
  auto a = Open("a", 100);
  auto b = Open("b", 200);
  ASSERT_TRUE(a->TryAcquire(seconds(10)).held);
  // Only the holder can release.
  b->Release();
  EXPECT_FALSE(b->TryAcquire(seconds(10)).held);
  a->Release();
  std::string error;
  auto row = a->Read(&error);
  ASSERT_TRUE(row) << error;
  EXPECT_EQ(row->holder_id, "");
  EXPECT_EQ(row->term, 1);
  LeaseOutcome r = b->TryAcquire(seconds(10));
  ASSERT_TRUE(r.held);
  EXPECT_EQ(r.record.term, 2);
  // The released holder coming back is a change of holder as well.
  b->Release();
  EXPECT_EQ(a->TryAcquire(seconds(10)).record.term, 3);
}

TEST_F(LeaseTest, TermsIncreaseOnEveryChangeOfHolder) {
  auto a = Open("a", 100);
  auto b = Open("b", 200);
  int64_t last = 0;
  for (int round = 0; round < 6; ++round) {
    Lease& taker = round % 2 ? *b : *a;
    LeaseOutcome r = taker.TryAcquire(seconds(5));
    ASSERT_TRUE(r.held) << round;
    EXPECT_EQ(r.record.term, last + 1);
    last = r.record.term;
    clock_.Advance(seconds(6));
  }
}

TEST_F(LeaseTest, RacingHoldersNeverBothAcquire) {
  constexpr int kHolders = 6;
  std::vector<std::unique_ptr<Lease>> leases;
  for (int i = 0; i < kHolders; ++i) leases.push_back(Open("h" + std::to_string(i), 1000 + i));
  std::string last_holder;
  int64_t last_term = 0;
  for (int round = 0; round < 5; ++round) {
    std::atomic<int> winners{0};
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kHolders; ++i) {
      threads.emplace_back([&, i] {
        LeaseOutcome r = leases[i]->TryAcquire(seconds(10));
        if (!r.error.empty()) ++errors;
        if (r.held) ++winners;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(winners.load(), 1) << "round " << round;
    std::string error;
    std::optional<LeaseRecord> row = leases[0]->Read(&error);
    ASSERT_TRUE(row) << error;
    // The previous holder winning again re-takes its own lapsed lease: same term.
    EXPECT_EQ(row->term, row->holder_id == last_holder ? last_term : last_term + 1);
    last_holder = row->holder_id;
    last_term = row->term;
    clock_.Advance(seconds(11));
  }
}

TEST_F(LeaseTest, UnopenableDatabaseIsReported) {
  std::string error;
  auto lease = Lease::Open(dir_ / "missing" / "lease.db", "controller", "a", 1, clock_, &error);
  EXPECT_FALSE(lease);
  EXPECT_NE(error.find("cannot open the lease database"), std::string::npos) << error;
}

}  // namespace
}  // namespace plinth::controller
