// Tests for the workspace lock (runtime/state/lock.h), with real second
// processes: a live holder refuses, a dead holder's lock is taken over.

#include "runtime/state/lock.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace plinth::state {
namespace {

namespace fs = std::filesystem;

// Without a machine id no holder can be proven to be on this machine, so
// nothing is ever taken over (lock.h); the take-over tests need one.
bool HasMachineId() { return !WorkspaceLock::ThisProcess("x").machine_id.empty(); }

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

  // Runs SQL on the state file directly, as an older Plinth or another
  // machine sharing the file would have written it.
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / ".plinth" / "default" / "state.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string message = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  // A pid that certainly does not exist any more: a child that was reaped.
  static pid_t DeadPid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
  }

  // Takes the lock for this process, then rewrites its row with `set`;
  // returns the lock id.
  std::string LockRowWith(StateStore& s, const std::string& set) {
    auto lock = WorkspaceLock::Acquire(s, WorkspaceLock::ThisProcess("apply"));
    EXPECT_TRUE(lock.ok());
    Sql("UPDATE lock SET " + set);
    return lock.ok() ? lock->id : "";
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
  if (!HasMachineId()) GTEST_SKIP() << "this machine has no machine id (/etc/machine-id)";
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
  LockHolder remote;
  remote.pid = 1;
  remote.host = "some-other-host.example";
  remote.command = "apply";
  remote.since_ms = 1700000000000;
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
  LockHolder remote;
  remote.pid = 4242;
  remote.host = "elsewhere";
  remote.command = "apply";
  remote.since_ms = 1;
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

// The case: two machines share a state file (a network file system)
// and have the same host name. The other machine's boot id differs from
// this one's, which used to read as "rebooted since", and its live apply's
// lock was taken over.
TEST_F(LockTest, SameHostNameOnAnotherMachineIsRefusedNotTakenOver) {
  auto s = Open();
  ASSERT_TRUE(s);
  std::string id = LockRowWith(*s, "pid = " + std::to_string(DeadPid()) +
                                       ", machine_id = '0123456789abcdef0123456789abcdef', boot_id = "
                                       "'00000000-1111-2222-3333-444444444444'");
  auto refused = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  ASSERT_TRUE(refused.error().holder.has_value());
  EXPECT_EQ(refused.error().holder->holder.host, WorkspaceLock::ThisProcess("x").host);
  const std::string& m = refused.error().message;
  EXPECT_NE(m.find("another machine"), std::string::npos) << m;
  EXPECT_NE(m.find("plinth force-unlock " + id), std::string::npos) << m;
  EXPECT_NE(m.find("(apply, since "), std::string::npos) << m;
  EXPECT_EQ(WorkspaceLock::Describe(refused.error()), m);
  EXPECT_EQ(WorkspaceLock::Current(*s).value()->id, id);
}

TEST_F(LockTest, SameMachineRebootedSinceIsTakenOver) {
  if (!HasMachineId()) GTEST_SKIP() << "this machine has no machine id (/etc/machine-id)";
  auto s = Open();
  ASSERT_TRUE(s);
  std::string id = LockRowWith(*s, "boot_id = '00000000-1111-2222-3333-444444444444'");
  auto lock = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  ASSERT_TRUE(lock->taken_over.has_value());
  EXPECT_EQ(lock->taken_over->id, id);
}

TEST_F(LockTest, SameMachineDeadPidIsTakenOver) {
  if (!HasMachineId()) GTEST_SKIP() << "this machine has no machine id (/etc/machine-id)";
  auto s = Open();
  ASSERT_TRUE(s);
  pid_t dead = DeadPid();
  std::string id = LockRowWith(*s, "pid = " + std::to_string(dead) + ", start_time = ''");
  auto lock = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  ASSERT_TRUE(lock->taken_over.has_value());
  EXPECT_EQ(lock->taken_over->holder.pid, dead);
}

TEST_F(LockTest, HolderInAnotherPidNamespaceIsRefused) {
  auto s = Open();
  ASSERT_TRUE(s);
  std::string id =
      LockRowWith(*s, "pid = " + std::to_string(DeadPid()) + ", pid_namespace = 'pid:[4026500000]'");
  auto refused = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  EXPECT_NE(refused.error().message.find("PID namespace"), std::string::npos) << refused.error().message;
}

// A lock row written before machine ids were recorded (or migrated from
// schema version 1) cannot be checked: refused, with a way out.
TEST_F(LockTest, LockRowWithoutAMachineIdIsRefused) {
  auto s = Open();
  ASSERT_TRUE(s);
  std::string id =
      LockRowWith(*s, "pid = " + std::to_string(DeadPid()) + ", machine_id = '', pid_namespace = ''");
  auto refused = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  EXPECT_NE(refused.error().message.find("no machine id"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("plinth force-unlock " + id), std::string::npos);
  ASSERT_TRUE(WorkspaceLock::ForceUnlock(*s, id).ok());
  EXPECT_TRUE(WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply")).ok());
}

TEST_F(LockTest, ThisProcessRecordsMachineNamespaceAndBoot) {
  LockHolder me = WorkspaceLock::ThisProcess("plan");
  EXPECT_EQ(me.pid, ::getpid());
  EXPECT_EQ(me.pid_namespace.rfind("pid:[", 0), 0u) << me.pid_namespace;
  EXPECT_FALSE(me.boot_id.empty());
  if (!fs::exists("/etc/machine-id") && !fs::exists("/var/lib/dbus/machine-id")) {
    GTEST_SKIP() << "this machine has no machine id";
  }
  EXPECT_TRUE(HasMachineId());
  // Recorded as a keyed hash, never the machine id itself (machine-id(5)).
  for (const char* path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    std::ifstream in(path);
    std::string raw;
    std::getline(in, raw);
    if (!raw.empty()) {
      EXPECT_EQ(me.machine_id.find(raw.substr(0, 8)), std::string::npos) << path;
    }
  }
  EXPECT_EQ(me.machine_id.size(), 32u);
}

}  // namespace
}  // namespace plinth::state

namespace plinth::state {
namespace {

// --lock-timeout: a refused acquire is tried again until the holder lets go,
// and the caller hears once whom it waits for; a zero timeout is one try.
TEST(LockWaitTest, WaitsForTheHolderThenTakesTheLock) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "plinth-lockwait-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  auto a = StateStore::OpenWorkspace(dir, "default");
  auto b = StateStore::OpenWorkspace(dir, "default");
  ASSERT_TRUE(a.ok() && b.ok());
  LockHolder elsewhere = WorkspaceLock::ThisProcess("apply");
  elsewhere.host = "other-host";
  elsewhere.machine_id = "0123456789abcdef0123456789abcdef";
  auto held = WorkspaceLock::Acquire(*a.value(), elsewhere);
  ASSERT_TRUE(held.ok());
  int told = 0;
  std::string heard;
  auto none = WorkspaceLock::AcquireWithin(*b.value(), WorkspaceLock::ThisProcess("apply"),
                                           std::chrono::milliseconds(0), [&](const Error&) { ++told; });
  EXPECT_EQ(none.error().code, ErrorCode::kLockHeld);
  EXPECT_EQ(told, 0);
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    (void)WorkspaceLock::Release(*a.value(), held->id);
  });
  auto got = WorkspaceLock::AcquireWithin(*b.value(), WorkspaceLock::ThisProcess("apply"), std::chrono::seconds(10),
                                          [&](const Error& e) {
                                            ++told;
                                            heard = e.message;
                                          });
  release.join();
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(told, 1);
  EXPECT_NE(heard.find("other-host"), std::string::npos) << heard;
  // Still held at the deadline: the refusal, after about the timeout.
  auto start = std::chrono::steady_clock::now();
  auto late = WorkspaceLock::AcquireWithin(*a.value(), WorkspaceLock::ThisProcess("plan"),
                                           std::chrono::milliseconds(1500));
  EXPECT_FALSE(late.ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace plinth::state
