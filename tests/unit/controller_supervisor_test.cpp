// The replica supervisor with real processes on simulated time
// (docs/services.md): restarts, CrashLoopBackOff, adoption by a second
// Supervisor, probes, stops. Every process a test starts carries a marker in
// its environment, and the fixture kills every process with that marker
// when the test ends, whatever happened.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/controller/clock.h"
#include "runtime/controller/supervisor.h"
#include "runtime/process/process.h"
#include "tests/support/files.h"

namespace plinth::controller {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::WriteFile;

constexpr const char* kMarkVar = "PLINTH_SUPERVISOR_TEST";

bool Alive(pid_t pid, uint64_t start) {
  return pid > 0 && process::ProcessStartTime(pid) == start;
}

// Waits (real time, bounded) for `done`, ticking the supervisor between looks.
bool TickUntil(Supervisor& sup, const std::function<bool()>& done, std::chrono::seconds within = 10s) {
  auto until = std::chrono::steady_clock::now() + within;
  for (;;) {
    sup.Tick();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
}

bool HasEvent(const ReplicaSnapshot& s, const std::string& text) {
  return std::any_of(s.events.begin(), s.events.end(),
                     [&](const ReplicaEvent& e) { return e.text.find(text) != std::string::npos; });
}

std::string Events(const ReplicaSnapshot& s) {
  std::string out;
  for (const auto& e : s.events) out += e.text + "\n";
  return out;
}

class ControllerSupervisor : public ::testing::Test {
 protected:
  ControllerSupervisor() {
    mark_ = std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid());
  }
  ~ControllerSupervisor() override { KillMarked(); }

  // SIGKILLs every process whose environment holds this test's marker.
  void KillMarked() {
    const std::string needle = std::string(kMarkVar) + "=" + mark_;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string env = ReadFile(entry.path() / "environ");
      size_t at = 0;
      while (at < env.size()) {
        size_t end = env.find('\0', at);
        if (end == std::string::npos) end = env.size();
        if (env.compare(at, end - at, needle) == 0) {
          ::kill(static_cast<pid_t>(std::stol(name)), SIGKILL);
          break;
        }
        at = end + 1;
      }
    }
  }

  ReplicaSpec Spec(const std::string& id, std::vector<std::string> argv) {
    ReplicaSpec s;
    s.id = id;
    s.argv = std::move(argv);
    s.env["PATH"] = "/usr/bin:/bin";
    s.env[kMarkVar] = mark_;
    s.log_file = dir_.path() / "logs" / (id + ".log");
    return s;
  }

  std::unique_ptr<Supervisor> Open(Clock& clock, Supervisor::Options options = {}) {
    std::string error;
    auto sup = Supervisor::Open(db_, clock, std::move(options), &error);
    EXPECT_TRUE(sup) << error;
    return sup;
  }

  ReplicaSnapshot Snap(Supervisor& sup, const std::string& id) {
    auto s = sup.Snapshot(id);
    EXPECT_TRUE(s) << "no replica " << id;
    return s.value_or(ReplicaSnapshot{});
  }

  TempDir dir_{"plinth-supervisor"};
  fs::path db_ = dir_.path() / "controller" / "replicas.db";
  std::string mark_;
};

TEST_F(ControllerSupervisor, ReplicaKilledWithSigkillIsRestartedAfterTheBackoff) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  std::string error;
  ASSERT_TRUE(sup->Add(Spec("web-0", {"sleep", "1000"}), &error)) << error;
  sup->Tick();
  ReplicaSnapshot s = Snap(*sup, "web-0");
  ASSERT_EQ(s.phase, ReplicaPhase::kRunning) << Events(s);
  const pid_t first = s.pid;
  ASSERT_TRUE(Alive(first, s.start_time));
  EXPECT_EQ(::getsid(first), first) << "a replica leads its own session";
  EXPECT_TRUE(s.ready) << "no readiness probe: ready while running";

  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "web-0").phase == ReplicaPhase::kBackoff; }));
  s = Snap(*sup, "web-0");
  EXPECT_EQ(s.pid, 0);
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.next_start_ms - clock.WallMs(), 10'000);
  EXPECT_NE(s.last_error.find("exited"), std::string::npos) << s.last_error;

  clock.Advance(9s);
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "web-0").phase, ReplicaPhase::kBackoff);
  clock.Advance(1s);
  sup->Tick();
  s = Snap(*sup, "web-0");
  ASSERT_EQ(s.phase, ReplicaPhase::kRunning) << Events(s);
  EXPECT_NE(s.pid, first);
  EXPECT_TRUE(Alive(s.pid, s.start_time));
  EXPECT_EQ(s.restarts, 1);
  EXPECT_TRUE(HasEvent(s, "restart 1")) << Events(s);

  nlohmann::json j = SnapshotJson(s);
  EXPECT_EQ(j["id"], "web-0");
  EXPECT_EQ(j["phase"], "running");
  EXPECT_EQ(j["pid"], s.pid);
  EXPECT_EQ(j["ready"], true);
  EXPECT_EQ(j["restarts"], 1);
  EXPECT_EQ(j["liveness"], "unknown");
  ASSERT_FALSE(j["events"].empty());
  EXPECT_EQ(j["events"].back()["text"], s.events.back().text);
}

TEST_F(ControllerSupervisor, CrashLoopBackoffDoublesToFiveMinutesAndResetsAfterTenHealthyMinutes) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  const fs::path flag = dir_.path() / "crash";
  WriteFile(flag, "");
  std::string error;
  ASSERT_TRUE(sup->Add(
      Spec("job", {"sh", "-c", "test -e '" + flag.string() + "' && exit 1; exec sleep 1000"}), &error))
      << error;
  const int64_t expected_s[] = {10, 20, 40, 80, 160, 300, 300};
  for (int64_t want : expected_s) {
    sup->Tick();  // starts it
    ASSERT_GT(Snap(*sup, "job").pid, 0) << Events(Snap(*sup, "job"));
    ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "job").phase == ReplicaPhase::kBackoff; }));
    int64_t delay = Snap(*sup, "job").next_start_ms - clock.WallMs();
    EXPECT_EQ(delay, want * 1000);
    clock.Advance(std::chrono::milliseconds(delay));
  }
  std::filesystem::remove(flag);
  sup->Tick();
  ReplicaSnapshot s = Snap(*sup, "job");
  ASSERT_EQ(s.phase, ReplicaPhase::kRunning);
  EXPECT_EQ(s.restarts, 7);
  EXPECT_EQ(s.backoff_ms, 300'000);
  clock.Advance(599s);
  sup->Tick();
  ASSERT_TRUE(Alive(Snap(*sup, "job").pid, Snap(*sup, "job").start_time));
  EXPECT_EQ(Snap(*sup, "job").backoff_ms, 300'000);
  clock.Advance(1s);
  sup->Tick();
  s = Snap(*sup, "job");
  EXPECT_EQ(s.backoff_ms, 10'000);
  EXPECT_TRUE(HasEvent(s, "back-off reset to 10 s")) << Events(s);

  ASSERT_EQ(::kill(s.pid, SIGKILL), 0);
  ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "job").phase == ReplicaPhase::kBackoff; }));
  EXPECT_EQ(Snap(*sup, "job").next_start_ms - clock.WallMs(), 10'000);
}

TEST_F(ControllerSupervisor, SecondSupervisorOnTheSameDatabaseAdoptsTheRunningReplica) {
  ManualClock clock;
  ReplicaSpec spec = Spec("web-0", {"sleep", "1000"});
  spec.env["DB_PASSWORD"] = "hunter2-very-secret";
  pid_t pid = 0;
  uint64_t start = 0;
  {
    auto first = Open(clock);
    ASSERT_TRUE(first);
    std::string error;
    ASSERT_TRUE(first->Add(spec, &error)) << error;
    first->Tick();
    ReplicaSnapshot s = Snap(*first, "web-0");
    pid = s.pid;
    start = s.start_time;
    ASSERT_TRUE(Alive(pid, start));
  }  // the controller goes; its replica stays
  ASSERT_TRUE(Alive(pid, start)) << "the replica did not outlive its supervisor";

  auto second = Open(clock);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->Unmanaged(), std::vector<std::string>{"web-0"});
  EXPECT_EQ(Snap(*second, "web-0").phase, ReplicaPhase::kUnmanaged);
  std::string error;
  ASSERT_TRUE(second->Add(spec, &error)) << error;
  second->Tick();
  second->Tick();
  ReplicaSnapshot s = Snap(*second, "web-0");
  EXPECT_EQ(s.phase, ReplicaPhase::kRunning);
  EXPECT_EQ(s.pid, pid);
  EXPECT_EQ(s.start_time, start);
  EXPECT_EQ(s.restarts, 0);
  EXPECT_TRUE(HasEvent(s, "adopted pid " + std::to_string(pid))) << Events(s);
  EXPECT_TRUE(second->Unmanaged().empty());

  // The secret is in neither the database nor the events.
  for (const char* suffix : {"", "-wal"}) {
    EXPECT_EQ(ReadFile(db_.string() + suffix).find("hunter2"), std::string::npos) << suffix;
  }
  EXPECT_EQ(Events(s).find("hunter2"), std::string::npos);
  EXPECT_EQ(fs::status(db_).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  // A third supervisor with another spec for the same id replaces the process.
  second.reset();
  auto third = Open(clock);
  ASSERT_TRUE(third);
  spec.argv = {"sleep", "2000"};
  ASSERT_TRUE(third->Add(spec, &error)) << error;
  ASSERT_TRUE(TickUntil(*third, [&] {
    ReplicaSnapshot t = Snap(*third, "web-0");
    return t.phase == ReplicaPhase::kRunning && t.pid != pid;
  }));
  EXPECT_FALSE(Alive(pid, start));
  EXPECT_TRUE(HasEvent(Snap(*third, "web-0"), "its spec changed")) << Events(Snap(*third, "web-0"));
}

TEST_F(ControllerSupervisor, CommandThatDoesNotExistIsReportedClearly) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  std::string error;
  ASSERT_TRUE(sup->Add(Spec("ghost", {"no-such-command-plinth"}), &error)) << error;
  ASSERT_TRUE(sup->Add(Spec("lost", {"/nonexistent/dir/server"}), &error)) << error;
  sup->Tick();
  ReplicaSnapshot g = Snap(*sup, "ghost");
  EXPECT_EQ(g.phase, ReplicaPhase::kBackoff);
  EXPECT_EQ(g.pid, 0);
  EXPECT_NE(g.last_error.find("cannot start replica ghost: command 'no-such-command-plinth' was not found on "
                              "PATH (/usr/bin:/bin)"),
            std::string::npos)
      << g.last_error;
  EXPECT_EQ(g.next_start_ms - clock.WallMs(), 10'000);
  ReplicaSnapshot l = Snap(*sup, "lost");
  EXPECT_NE(
      l.last_error.find("cannot start replica lost: cannot start /nonexistent/dir/server: No such file"),
      std::string::npos)
      << l.last_error;

  // Specs that cannot run are refused by Add.
  EXPECT_FALSE(sup->Add(Spec("bad id", {"true"}), &error));
  EXPECT_NE(error.find("replica id 'bad id' is invalid"), std::string::npos) << error;
  EXPECT_FALSE(sup->Add(Spec("empty", {}), &error));
  EXPECT_NE(error.find("has no command"), std::string::npos) << error;
  EXPECT_FALSE(sup->Add(Spec("ghost", {"true"}), &error));
  EXPECT_NE(error.find("already supervised"), std::string::npos) << error;
  ReplicaSpec bad_probe = Spec("probe", {"true"});
  bad_probe.liveness = ProbeSpec{};
  EXPECT_FALSE(sup->Add(bad_probe, &error));
  EXPECT_NE(error.find("liveness probe"), std::string::npos) << error;
}

TEST_F(ControllerSupervisor, AReplicaRunsAsItsUserAndAnUnknownUserIsReported) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  std::string error;
  ReplicaSpec ghost = Spec("ghost-user", {"sleep", "1000"});
  ghost.user = "no-such-user-plinth";
  ASSERT_TRUE(sup->Add(ghost, &error)) << error;
  sup->Tick();
  EXPECT_NE(Snap(*sup, "ghost-user").last_error.find("user 'no-such-user-plinth' does not exist on this machine"),
            std::string::npos)
      << Snap(*sup, "ghost-user").last_error;

  struct passwd* nobody = ::getpwnam("nobody");
  if (::geteuid() != 0 || !nobody) GTEST_SKIP() << "switching users needs root and a 'nobody' user";
  const uid_t uid = nobody->pw_uid;
  ReplicaSpec spec = Spec("as-nobody", {"sleep", "1000"});
  spec.user = "nobody";
  ASSERT_TRUE(sup->Add(spec, &error)) << error;
  sup->Tick();
  ReplicaSnapshot s = Snap(*sup, "as-nobody");
  ASSERT_GT(s.pid, 0) << s.last_error;
  std::string status = ReadFile("/proc/" + std::to_string(s.pid) + "/status");
  auto at = status.find("\nUid:\t");
  ASSERT_NE(at, std::string::npos) << status;
  EXPECT_EQ(std::stoul(status.substr(at + 6)), uid) << status.substr(at, 40);
  // The user is part of what the process is: another one replaces it.
  ReplicaSpec same = spec;
  EXPECT_TRUE(sup->Unchanged(same));
  same.user = "";
  EXPECT_FALSE(sup->Unchanged(same));
}

TEST_F(ControllerSupervisor, LivenessFailureRestartsTheReplica) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  const fs::path sick = dir_.path() / "sick";
  ReplicaSpec spec = Spec("api", {"sleep", "1000"});
  ProbeSpec live;
  live.kind = ProbeKind::kExec;
  live.argv = {"sh", "-c", "test ! -e '" + sick.string() + "'"};
  live.period_s = 1;
  live.failure_threshold = 2;
  spec.liveness = live;
  std::string error;
  ASSERT_TRUE(sup->Add(spec, &error)) << error;
  sup->Tick();
  const ReplicaSnapshot first = Snap(*sup, "api");
  ASSERT_EQ(first.phase, ReplicaPhase::kRunning);
  clock.Advance(1s);
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "api").liveness, ProbeState::kOk) << Events(Snap(*sup, "api"));
  WriteFile(sick, "");
  clock.Advance(1s);
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "api").phase, ReplicaPhase::kRunning) << "one failure of two";
  clock.Advance(1s);
  sup->Tick();
  ReplicaSnapshot s = Snap(*sup, "api");
  EXPECT_NE(s.last_error.find("liveness probe failed 2 times"), std::string::npos) << s.last_error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "api").phase == ReplicaPhase::kBackoff; }));
  EXPECT_FALSE(Alive(first.pid, first.start_time));
  s = Snap(*sup, "api");
  EXPECT_NE(s.last_error.find("liveness probe failed"), std::string::npos) << s.last_error;
  EXPECT_EQ(s.next_start_ms - clock.WallMs(), 10'000);
  std::filesystem::remove(sick);
  clock.Advance(10s);
  sup->Tick();
  s = Snap(*sup, "api");
  EXPECT_EQ(s.phase, ReplicaPhase::kRunning);
  EXPECT_EQ(s.restarts, 1);
}

TEST_F(ControllerSupervisor, StartupProbeGatesReadinessAndStopIsKeptByTheNextSupervisor) {
  auto python = process::FindExecutable("python3", "/usr/bin:/bin");
  if (!python) GTEST_SKIP() << "python3 is not installed";
  // A free port: bound and released (the server binds it a moment later).
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  ManualClock clock;
  std::mutex mu;
  std::vector<std::pair<std::string, bool>> changes;
  Supervisor::Options options;
  options.on_ready_change = [&](const std::string& id, bool ready) {
    std::lock_guard lock(mu);
    changes.emplace_back(id, ready);
  };
  auto sup = Open(clock, options);
  ASSERT_TRUE(sup);
  ReplicaSpec spec = Spec("www", {"python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1",
                                  "--directory", dir_.path().string()});
  spec.port = port;
  ProbeSpec startup;
  startup.kind = ProbeKind::kTcp;
  startup.port = port;
  startup.period_s = 1;
  startup.failure_threshold = 60;
  ProbeSpec ready;
  ready.kind = ProbeKind::kHttp;
  ready.port = port;
  ready.path = "/";
  ready.period_s = 1;
  spec.startup = startup;
  spec.readiness = ready;
  std::string error;
  ASSERT_TRUE(sup->Add(spec, &error)) << error;
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "www").phase, ReplicaPhase::kStarting);
  EXPECT_FALSE(sup->Ready("www"));
  auto until = std::chrono::steady_clock::now() + 20s;
  while (!sup->Ready("www") && std::chrono::steady_clock::now() < until) {
    clock.Advance(1s);
    sup->Tick();
    std::this_thread::sleep_for(50ms);
  }
  ReplicaSnapshot s = Snap(*sup, "www");
  ASSERT_TRUE(s.ready) << Events(s) << ReadFile(spec.log_file);
  EXPECT_EQ(s.startup, ProbeState::kOk);
  EXPECT_EQ(s.readiness, ProbeState::kOk);
  EXPECT_TRUE(HasEvent(s, "startup probe succeeded")) << Events(s);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], std::make_pair(std::string("www"), true));
  }

  ASSERT_TRUE(sup->Stop("www", &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "www").phase == ReplicaPhase::kStopped; }));
  EXPECT_FALSE(Alive(s.pid, s.start_time));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[1], std::make_pair(std::string("www"), false));
  }
  sup.reset();
  auto next = Open(clock);
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->Add(spec, &error)) << error;
  next->Tick();
  EXPECT_EQ(Snap(*next, "www").phase, ReplicaPhase::kStopped);
  EXPECT_EQ(Snap(*next, "www").pid, 0);
  ASSERT_TRUE(next->Start("www", &error)) << error;
  next->Tick();
  EXPECT_GT(Snap(*next, "www").pid, 0);
  ASSERT_TRUE(next->Remove("www", &error)) << error;
  ASSERT_TRUE(TickUntil(*next, [&] { return !next->Snapshot("www"); }));
}

TEST_F(ControllerSupervisor, StopEscalatesToSigkillAfterTheGrace) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  std::string error;
  // SIG_IGN survives exec: this sleep ignores SIGTERM.
  ASSERT_TRUE(sup->Add(Spec("stubborn", {"sh", "-c", "trap '' TERM; exec sleep 1000"}), &error)) << error;
  sup->Tick();
  ReplicaSnapshot s = Snap(*sup, "stubborn");
  ASSERT_TRUE(Alive(s.pid, s.start_time));
  // Stop only once the shell has set its trap and become sleep.
  const fs::path comm = "/proc/" + std::to_string(s.pid) + "/comm";
  auto until = std::chrono::steady_clock::now() + 10s;
  while (ReadFile(comm) != "sleep\n" && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(ReadFile(comm), "sleep\n");
  s = Snap(*sup, "stubborn");
  ASSERT_TRUE(sup->Stop("stubborn", &error)) << error;
  sup->Tick();
  std::this_thread::sleep_for(100ms);
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "stubborn").phase, ReplicaPhase::kTerminating);
  EXPECT_TRUE(Alive(s.pid, s.start_time)) << "SIGTERM is ignored; only the grace's end kills it";
  clock.Advance(10s);
  ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "stubborn").phase == ReplicaPhase::kStopped; }));
  EXPECT_FALSE(Alive(s.pid, s.start_time));
  EXPECT_TRUE(HasEvent(Snap(*sup, "stubborn"), "did not stop within 10 s: killed"))
      << Events(Snap(*sup, "stubborn"));
}

TEST_F(ControllerSupervisor, UpdateRestartsOnlyForAChangedProcess) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  ReplicaSpec spec = Spec("svc", {"sleep", "1000"});
  std::string error;
  ASSERT_TRUE(sup->Add(spec, &error)) << error;
  sup->Tick();
  const ReplicaSnapshot first = Snap(*sup, "svc");
  ASSERT_EQ(first.phase, ReplicaPhase::kRunning);

  // New probes only: the same process goes on.
  ProbeSpec live;
  live.kind = ProbeKind::kExec;
  live.argv = {"true"};
  spec.liveness = live;
  ASSERT_TRUE(sup->Update(spec, &error)) << error;
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "svc").pid, first.pid);
  EXPECT_EQ(Snap(*sup, "svc").liveness, ProbeState::kOk) << Events(Snap(*sup, "svc"));

  // A new environment value: replaced at once, without a back-off.
  spec.env["MODE"] = "blue";
  ASSERT_TRUE(sup->Update(spec, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] {
    ReplicaSnapshot s = Snap(*sup, "svc");
    return s.phase == ReplicaPhase::kRunning && s.pid != first.pid && s.pid != 0;
  }));
  EXPECT_FALSE(Alive(first.pid, first.start_time));
  EXPECT_EQ(Snap(*sup, "svc").restarts, 1);
  EXPECT_FALSE(sup->Update(Spec("other", {"true"}), &error));
  EXPECT_NE(error.find("not supervised"), std::string::npos) << error;
}

TEST_F(ControllerSupervisor, FailedStartupProbeRestartsAndLivenessWaitsForIt) {
  ManualClock clock;
  auto sup = Open(clock);
  ASSERT_TRUE(sup);
  const fs::path touched = dir_.path() / "liveness-ran";
  ReplicaSpec spec = Spec("slow", {"sleep", "1000"});
  ProbeSpec startup;
  startup.kind = ProbeKind::kExec;
  startup.argv = {"false"};
  startup.period_s = 1;
  startup.failure_threshold = 2;
  ProbeSpec live;
  live.kind = ProbeKind::kExec;
  live.argv = {"touch", touched.string()};
  live.period_s = 1;
  spec.startup = startup;
  spec.liveness = live;
  std::string error;
  ASSERT_TRUE(sup->Add(spec, &error)) << error;
  sup->Tick();
  const ReplicaSnapshot first = Snap(*sup, "slow");
  ASSERT_EQ(first.phase, ReplicaPhase::kStarting);
  EXPECT_FALSE(first.ready);
  clock.Advance(1s);
  sup->Tick();
  EXPECT_EQ(Snap(*sup, "slow").phase, ReplicaPhase::kStarting) << "one failure of two";
  clock.Advance(1s);
  sup->Tick();
  ReplicaSnapshot s = Snap(*sup, "slow");
  EXPECT_EQ(s.startup, ProbeState::kFailed);
  EXPECT_NE(s.last_error.find("startup probe failed: exec probe false exited with status 1"),
            std::string::npos)
      << s.last_error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "slow").phase == ReplicaPhase::kBackoff; }));
  EXPECT_FALSE(Alive(first.pid, first.start_time));
  EXPECT_FALSE(fs::exists(touched)) << "the liveness probe ran before the startup probe succeeded";
}

TEST_F(ControllerSupervisor, PendingBackoffAndRestartsSurviveTheSupervisor) {
  ManualClock clock;
  ReplicaSpec spec = Spec("worker", {"sleep", "1000"});
  std::string error;
  {
    auto sup = Open(clock);
    ASSERT_TRUE(sup);
    ASSERT_TRUE(sup->Add(spec, &error)) << error;
    sup->Tick();
    ReplicaSnapshot s = Snap(*sup, "worker");
    ASSERT_EQ(::kill(s.pid, SIGKILL), 0);
    ASSERT_TRUE(TickUntil(*sup, [&] { return Snap(*sup, "worker").phase == ReplicaPhase::kBackoff; }));
    clock.Advance(4s);  // 6 s of the 10 s back-off are left
  }
  auto next = Open(clock);
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->Add(spec, &error)) << error;
  next->Tick();
  ReplicaSnapshot s = Snap(*next, "worker");
  EXPECT_EQ(s.phase, ReplicaPhase::kBackoff);
  EXPECT_EQ(s.next_start_ms - clock.WallMs(), 6'000);
  EXPECT_EQ(s.backoff_ms, 20'000);
  clock.Advance(6s);
  next->Tick();
  s = Snap(*next, "worker");
  EXPECT_EQ(s.phase, ReplicaPhase::kRunning);
  EXPECT_EQ(s.restarts, 1);
}

}  // namespace
}  // namespace plinth::controller
