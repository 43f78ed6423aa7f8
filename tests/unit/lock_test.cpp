// Tests for the workspace lock (runtime/state/lock.h), with real second
// processes: a live holder refuses, a dead holder's lock is taken over.

#include "runtime/state/lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace plinth::state {
namespace {

namespace fs = std::filesystem;

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "plinth-lock-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = StateStore::OpenWorkspace(dir_.string(), "default");  // create before any fork
    ASSERT_TRUE(s.ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<StateStore> Open() {
    auto s = StateStore::OpenWorkspace(dir_.string(), "default");
    EXPECT_TRUE(s.ok());
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  // A child that takes the lock, reports its id, then waits for a byte: 'r'
  // releases and exits, anything else exits without releasing.
  pid_t SpawnHolder(int* to_child, int* from_child) {
    int down[2], up[2];
    EXPECT_EQ(::pipe(down), 0);
    EXPECT_EQ(::pipe(up), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(down[1]);
      ::close(up[0]);
      auto s = StateStore::OpenWorkspace(dir_.string(), "default");
      if (!s.ok()) ::_exit(10);
      auto lock = WorkspaceLock::Acquire(*s.value(), WorkspaceLock::ThisProcess("apply"));
      if (!lock.ok()) ::_exit(11);
      char id[32];
      std::memcpy(id, lock->id.data(), sizeof id);
      if (::write(up[1], id, sizeof id) != sizeof id) ::_exit(12);
      char command = 0;
      if (::read(down[0], &command, 1) != 1) ::_exit(13);
      if (command == 'r' && !WorkspaceLock::Release(*s.value(), lock->id).ok()) ::_exit(14);
      ::_exit(0);
    }
    ::close(down[0]);
    ::close(up[1]);
    *to_child = down[1];
    *from_child = up[0];
    return pid;
  }

  fs::path dir_;
};

TEST_F(LockTest, AcquireReleaseAndAcquireAgain) {
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_FALSE(WorkspaceLock::Current(*s).value().has_value());
  auto lock = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("plan"));
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_EQ(lock->id.size(), 32u);
  EXPECT_FALSE(lock->taken_over.has_value());
  auto current = WorkspaceLock::Current(*s).value();
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->id, lock->id);
  EXPECT_EQ(current->holder.pid, ::getpid());
  EXPECT_EQ(current->holder.command, "plan");
  // Not reentrant: the same live process is refused too.
  auto again = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kLockHeld);
  ASSERT_TRUE(WorkspaceLock::Release(*s, lock->id).ok());
  EXPECT_EQ(WorkspaceLock::Release(*s, lock->id).error().code, ErrorCode::kNotFound);
  auto next = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->id, lock->id);
  EXPECT_FALSE(next->taken_over.has_value());
}

TEST_F(LockTest, SecondProcessGetsLockHeldNamingTheHolder) {
  int to_child, from_child;
  pid_t child = SpawnHolder(&to_child, &from_child);
  ASSERT_GT(child, 0);
  char id[32];
  ASSERT_EQ(::read(from_child, id, sizeof id), static_cast<ssize_t>(sizeof id));
  auto s = Open();
  ASSERT_TRUE(s);
  auto refused = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  ASSERT_TRUE(refused.error().holder.has_value());
  EXPECT_EQ(refused.error().holder->holder.pid, child);
  EXPECT_EQ(refused.error().holder->holder.command, "apply");
  EXPECT_EQ(refused.error().holder->id, std::string(id, sizeof id));
  EXPECT_NE(refused.error().message.find("pid " + std::to_string(child)), std::string::npos);
  EXPECT_NE(refused.error().message.find("force-unlock"), std::string::npos);

  ASSERT_EQ(::write(to_child, "r", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ::close(to_child);
  ::close(from_child);
  auto lock = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_FALSE(lock->taken_over.has_value());
}

TEST_F(LockTest, StaleLockOfADeadHolderIsTakenOverAndReported) {
  int to_child, from_child;
  pid_t child = SpawnHolder(&to_child, &from_child);
  ASSERT_GT(child, 0);
  char id[32];
  ASSERT_EQ(::read(from_child, id, sizeof id), static_cast<ssize_t>(sizeof id));
  ASSERT_EQ(::write(to_child, "k", 1), 1);  // exit without releasing
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ::close(to_child);
  ::close(from_child);

  auto s = Open();
  ASSERT_TRUE(s);
  auto lock = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  ASSERT_TRUE(lock->taken_over.has_value());
  EXPECT_EQ(lock->taken_over->holder.pid, child);
  EXPECT_EQ(lock->taken_over->id, std::string(id, sizeof id));
  EXPECT_EQ(WorkspaceLock::Current(*s).value()->holder.pid, ::getpid());
}

TEST_F(LockTest, HolderOnAnotherHostIsNeverPresumedDead) {
  auto s = Open();
  ASSERT_TRUE(s);
  LockHolder remote{1, "some-other-host.example", "apply", 1700000000000};
  auto lock = WorkspaceLock::Acquire(*s, remote);
  ASSERT_TRUE(lock.ok());
  auto refused = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("plan"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  EXPECT_EQ(refused.error().holder->holder.host, "some-other-host.example");
}

TEST_F(LockTest, ForceUnlockNeedsTheRightId) {
  auto s = Open();
  ASSERT_TRUE(s);
  LockHolder remote{4242, "elsewhere", "apply", 1};
  auto lock = WorkspaceLock::Acquire(*s, remote);
  ASSERT_TRUE(lock.ok());
  Status wrong = WorkspaceLock::ForceUnlock(*s, "0123456789abcdef0123456789abcdef");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(WorkspaceLock::Current(*s).value().has_value());
  ASSERT_TRUE(WorkspaceLock::ForceUnlock(*s, lock->id).ok());
  EXPECT_FALSE(WorkspaceLock::Current(*s).value().has_value());
  // The old holder's release now fails instead of freeing someone else's lock.
  auto mine = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(mine.ok());
  EXPECT_FALSE(mine->taken_over.has_value());
  EXPECT_EQ(WorkspaceLock::Release(*s, lock->id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(WorkspaceLock::Current(*s).value()->id, mine->id);
}

}  // namespace
}  // namespace plinth::state
