// The process layer (runtime/process/process.h) with real children: /bin/sh,
// /bin/cat, /bin/sleep and a few coreutils. Deadlines are 100-500 ms so the
// suite stays fast; checks that a process is gone poll briefly, since a
// killed grandchild is reaped by init (or a subreaper) a little later.
#include "runtime/process/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"

namespace plinth::process {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::WriteFile;
using Clock = std::chrono::steady_clock;

Spec Sh(const std::string& script) {
  Spec s;
  s.program = "/bin/sh";
  s.args = {"-c", script};
  s.env = {{"PATH", "/usr/bin:/bin"}};
  return s;
}

// True when `pid` is gone or a zombie (killed, waiting for its new parent to
// reap it) within `within`.
bool GoneWithin(pid_t pid, std::chrono::milliseconds within) {
  auto until = Clock::now() + within;
  for (;;) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    size_t close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() &&
        (stat[close + 2] == 'Z' || stat[close + 2] == 'X')) {
      return true;
    }
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
}

pid_t ReadPid(const fs::path& file) {
  std::string text;
  auto until = Clock::now() + 2s;
  while ((text = ReadFile(file)).empty() && Clock::now() < until) std::this_thread::sleep_for(10ms);
  return static_cast<pid_t>(std::atol(text.c_str()));
}

std::chrono::milliseconds Since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

// ------------------------------------------------------------------ Run: status

TEST(ProcessRun, ReportsExitStatusAndLastStderrLine) {
  Outcome o = process::Run(Sh("echo first >&2; echo 'Fatal: it broke' >&2; exit 3"));
  ASSERT_TRUE(o.started) << o.start_error;
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.signal, 0);
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(o.Describe("sh"), "sh exited with status 3: Fatal: it broke");

  Outcome ok = process::Run(Sh("exit 0"));
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.Describe("sh"), "sh exited with status 0");
}

TEST(ProcessRun, ReportsTheTerminatingSignal) {
  Outcome o = process::Run(Sh("kill -USR1 $$"));
  ASSERT_TRUE(o.started);
  EXPECT_EQ(o.signal, SIGUSR1);
  EXPECT_EQ(o.exit_code, -1);
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(o.Describe("sh"), "sh was killed by SIGUSR1");
}

TEST(ProcessRun, StartFailureSaysWhyInOneLine) {
  Spec s;
  s.program = "/nonexistent/prog";
  Outcome o = process::Run(s);
  EXPECT_FALSE(o.started);
  EXPECT_EQ(o.start_error, "cannot start /nonexistent/prog: No such file or directory");
  EXPECT_EQ(o.Describe("prog"), o.start_error);

  TempDir dir("plinth-process");
  fs::path plain = dir.path() / "not-executable";
  WriteFile(plain, "#!/bin/sh\n");
  s.program = plain;
  o = process::Run(s);
  EXPECT_FALSE(o.started);
  EXPECT_EQ(o.start_error, "cannot start " + plain.string() + ": Permission denied");

  Spec in_missing_dir = Sh("true");
  in_missing_dir.cwd = dir.path() / "nope";
  o = process::Run(in_missing_dir);
  EXPECT_FALSE(o.started);
  EXPECT_EQ(o.start_error, "cannot start /bin/sh in " + (dir.path() / "nope").string() + ": No such file or directory");
}

// ------------------------------------------------------------------ Run: output

TEST(ProcessRun, CapturesStdoutAndStderrSeparately) {
  Outcome o = process::Run(Sh("printf 'out 1\\nout 2'; printf 'err\\n' >&2"));
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, "out 1\nout 2");
  EXPECT_EQ(o.err, "err\n");
  EXPECT_FALSE(o.out_truncated);
  EXPECT_FALSE(o.err_truncated);
}

TEST(ProcessRun, StdoutIsKeptUpToItsLimitAndTheRestIsDrained) {
  TempDir dir("plinth-process");
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "line " + std::to_string(i) + "\n";  // ~200 KB, more than a pipe holds
  WriteFile(dir.path() / "big", big);
  Spec s;
  s.program = "/bin/cat";
  s.args = {(dir.path() / "big").string()};
  s.max_stdout = 1000;
  Outcome o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("cat");  // not blocked on a full pipe
  EXPECT_EQ(o.out, big.substr(0, 1000));
  EXPECT_TRUE(o.out_truncated);
}

TEST(ProcessRun, StderrKeepsItsTail) {
  TempDir dir("plinth-process");
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "warning " + std::to_string(i) + "\n";
  WriteFile(dir.path() / "big", big);
  Spec s = Sh("cat \"$0\" >&2; echo 'Fatal: the end' >&2; exit 1");
  s.args.push_back((dir.path() / "big").string());
  s.max_stderr = 100;
  Outcome o = process::Run(s);
  ASSERT_TRUE(o.started);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err.size(), 100u);
  EXPECT_TRUE(o.err_truncated);
  EXPECT_EQ(o.err.substr(o.err.size() - 15), "Fatal: the end\n");
  EXPECT_EQ(o.Describe("sh"), "sh exited with status 1: Fatal: the end");
}

TEST(ProcessRun, StreamsStdoutLineByLine) {
  std::vector<std::string> lines;
  Spec s = Sh("printf 'a\\nbb\\n\\n'; printf 'cc'; printf 'c\\n0123456789abcdef\\nlast'");
  s.max_stdout = 10;
  s.on_stdout_line = [&](std::string_view line) { lines.emplace_back(line); };
  Outcome o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "bb", "", "ccc", "0123456789", "last"}));
  EXPECT_TRUE(o.out.empty());
  EXPECT_TRUE(o.out_truncated);  // the 16-byte line was cut to 10
}

TEST(ProcessRun, StdinIsDevNullUnlessGiven) {
  Spec s;
  s.program = "/bin/cat";
  Outcome o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("cat");
  EXPECT_EQ(o.out, "");

  s.stdin_data = "hello\nworld";
  o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("cat");
  EXPECT_EQ(o.out, "hello\nworld");
}

TEST(ProcessRun, ChildThatIgnoresItsStdinIsNotAnError) {
  Spec s = Sh("exit 0");
  s.stdin_data = std::string(1 << 20, 'x');  // more than a pipe holds: the write fails with EPIPE, not SIGPIPE
  Outcome o = process::Run(s);
  EXPECT_TRUE(o.ok()) << o.Describe("sh");
}

// ------------------------------------------------------------------ Run: what the child gets

TEST(ProcessRun, EnvironmentIsExactlyTheSpec) {
  setenv("PLINTH_PROCESS_TEST_LEAK", "leaked", 1);
  Spec s;
  s.program = "/usr/bin/env";
  s.env = {{"A", "1"}, {"B", "two words"}, {"SECRET", "s3cr3t=x"}};
  Outcome o = process::Run(s);
  unsetenv("PLINTH_PROCESS_TEST_LEAK");
  ASSERT_TRUE(o.ok()) << o.Describe("env");
  EXPECT_EQ(o.out, "A=1\nB=two words\nSECRET=s3cr3t=x\n");

  s.env.clear();
  o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("env");
  EXPECT_EQ(o.out, "");
}

TEST(ProcessRun, RunsInTheGivenWorkingDirectory) {
  TempDir dir("plinth-process");
  Spec s = Sh("pwd -P");
  s.cwd = dir.path();
  Outcome o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, fs::canonical(dir.path()).string() + "\n");
}

TEST(ProcessRun, ArgvIsPassedVerbatimWithoutAShell) {
  std::vector<std::string> tricky = {"a b", "\"quoted\"", "'single'", "$(echo no)", "; exit 9", "*", "", "back\\slash"};
  Spec s = Sh("for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done");
  s.args.push_back("sh");  // $0
  for (const auto& a : tricky) s.args.push_back(a);
  Outcome o = process::Run(s);
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  std::string want;
  for (const auto& a : tricky) want += "[" + a + "]\n";
  EXPECT_EQ(o.out, want);

  // And a program given as a path is run as is: no PATH search, no shell.
  Spec echo;
  echo.program = "/bin/echo";
  echo.args = {"$HOME", "|", "cat"};
  o = process::Run(echo);
  EXPECT_EQ(o.out, "$HOME | cat\n");
}

TEST(ProcessRun, ChildStartsWithDefaultSignalsEmptyMaskOwnGroupAndNoStrayDescriptors) {
  // The parent thread ignores SIGPIPE, blocks SIGUSR1 and has a descriptor
  // without close-on-exec; none of it reaches the child.
  struct sigaction ignore {}, old_pipe {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 0);
  ASSERT_EQ(::dup2(stray, 77), 77);

  Spec status;
  status.program = "/bin/cat";
  status.args = {"/proc/self/status", "/proc/self/stat"};
  Outcome o = process::Run(status);
  Spec fds;
  fds.program = "/bin/ls";
  fds.args = {"/proc/self/fd"};
  Outcome f = process::Run(fds);

  ::close(77);
  ::close(stray);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);

  ASSERT_TRUE(o.ok()) << o.Describe("cat");
  EXPECT_NE(o.out.find("SigBlk:\t0000000000000000\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("SigIgn:\t0000000000000000\n"), std::string::npos) << o.out;
  // /proc/self/stat: "pid (comm) state ppid pgrp ...": the child leads its group.
  std::string stat = o.out.substr(o.out.rfind("\n", o.out.size() - 2) + 1);
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string state, ppid, pgrp;
  fields >> state >> ppid >> pgrp;
  EXPECT_EQ(pgrp, stat.substr(0, stat.find(' '))) << stat;

  ASSERT_TRUE(f.ok()) << f.Describe("ls");
  EXPECT_EQ(f.out, "0\n1\n2\n3\n");  // 3 is ls's own directory handle
}

// ------------------------------------------------------------------ Run: deadlines and cancellation

TEST(ProcessRun, DeadlineSendsSigterm) {
  Spec s;
  s.program = "/bin/sleep";
  s.args = {"10"};
  s.deadline = 200ms;
  auto start = Clock::now();
  Outcome o = process::Run(s);
  EXPECT_LT(Since(start), 2s);
  EXPECT_TRUE(o.timed_out);
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(o.Describe("sleep"), "sleep was killed by SIGTERM after its 200 ms deadline");
}

TEST(ProcessRun, DeadlineSendsSigkillAfterTheGraceToAChildThatTrapsTerm) {
  Spec s = Sh("trap '' TERM; echo trapped; /bin/sleep 10");
  s.deadline = 200ms;
  s.kill_grace = 300ms;
  auto start = Clock::now();
  Outcome o = process::Run(s);
  auto took = Since(start);
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(o.timed_out);
  EXPECT_EQ(o.signal, SIGKILL);
  EXPECT_EQ(o.out, "trapped\n");
  EXPECT_EQ(o.Describe("sh"), "sh was killed by SIGKILL after its 200 ms deadline");
}

TEST(ProcessRun, NoGrandchildSurvivesADeadline) {
  TempDir dir("plinth-process");
  fs::path pidfile = dir.path() / "pid";
  // The grandchild ignores SIGTERM, so only the group SIGKILL after the
  // child's exit can end it.
  Spec s = Sh("(trap '' TERM; exec /bin/sleep 1000) & echo $! > \"$0\"; wait");
  s.args.push_back(pidfile.string());
  s.deadline = 300ms;
  s.kill_grace = 200ms;
  auto start = Clock::now();
  Outcome o = process::Run(s);
  EXPECT_LT(Since(start), 3s);
  EXPECT_TRUE(o.timed_out);
  pid_t grandchild = ReadPid(pidfile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(GoneWithin(grandchild, 1s)) << "grandchild " << grandchild << " survived";
}

TEST(ProcessRun, DaemonisedGrandchildDoesNotOutliveTheChildNorHoldRun) {
  TempDir dir("plinth-process");
  fs::path pidfile = dir.path() / "pid";
  // Double fork: the sleeper is orphaned at once, and holds stdout and stderr.
  Spec s = Sh("( /bin/sleep 1000 & echo $! > \"$0\" ); echo parent done");
  s.args.push_back(pidfile.string());
  auto start = Clock::now();
  Outcome o = process::Run(s);
  EXPECT_LT(Since(start), kDrainAfterExit);  // its group is killed, so the pipes close at once
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, "parent done\n");
  pid_t grandchild = ReadPid(pidfile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(GoneWithin(grandchild, 1s)) << "grandchild " << grandchild << " survived";
}

TEST(ProcessRun, GrandchildThatLeftTheGroupDoesNotHangRun) {
  if (!fs::exists("/usr/bin/setsid")) GTEST_SKIP() << "no /usr/bin/setsid";
  TempDir dir("plinth-process");
  fs::path pidfile = dir.path() / "pid";
  // The grandchild writes its pid only once it has its own session.
  Spec s = Sh("/usr/bin/setsid /bin/sh -c 'echo $$ > \"$0\"; exec /bin/sleep 5' \"$0\" & "
              "while [ ! -s \"$0\" ]; do /bin/sleep 0.01; done; echo done");
  s.args.push_back(pidfile.string());
  auto start = Clock::now();
  Outcome o = process::Run(s);
  auto took = Since(start);
  pid_t escaped = ReadPid(pidfile);
  ASSERT_GT(escaped, 0);
  EXPECT_FALSE(GoneWithin(escaped, 0ms));  // out of the layer's reach by design
  ::kill(escaped, SIGKILL);
  EXPECT_GE(took, kDrainAfterExit);
  EXPECT_LT(took, kDrainAfterExit + 1s);
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, "done\n");
}

TEST(ProcessRun, StopTokenCancelsLikeADeadline) {
  std::stop_source source;
  Spec s;
  s.program = "/bin/sleep";
  s.args = {"10"};
  s.stop = source.get_token();
  std::thread canceller([&] {
    std::this_thread::sleep_for(150ms);
    source.request_stop();
  });
  auto start = Clock::now();
  Outcome o = process::Run(s);
  canceller.join();
  EXPECT_LT(Since(start), 2s);
  EXPECT_TRUE(o.cancelled);
  EXPECT_FALSE(o.timed_out);
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_EQ(o.Describe("sleep"), "sleep was killed by SIGTERM after it was cancelled");

  // Cancelled before the start: nothing runs.
  o = process::Run(s);
  EXPECT_FALSE(o.started);
  EXPECT_TRUE(o.cancelled);
}

TEST(ProcessRun, CancelFlagCancels) {
  std::atomic<bool> cancel{false};
  Spec s;
  s.program = "/bin/sleep";
  s.args = {"10"};
  s.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(150ms);
    cancel = true;
  });
  auto start = Clock::now();
  Outcome o = process::Run(s);
  canceller.join();
  EXPECT_LT(Since(start), 2s);
  EXPECT_TRUE(o.cancelled);
  EXPECT_EQ(o.signal, SIGTERM);
}

// ------------------------------------------------------------------ lookup and environment helpers

TEST(ProcessFind, LooksUpOnTheGivenPathOnly) {
  EXPECT_EQ(FindExecutable("sh", "/nonexistent:/bin"), fs::path("/bin/sh"));
  EXPECT_EQ(FindExecutable("sh", "/nonexistent"), std::nullopt);
  EXPECT_EQ(FindExecutable("sh", ""), std::nullopt);
  EXPECT_EQ(FindExecutable("passwd", "/etc"), std::nullopt);  // a file, not executable
  EXPECT_EQ(FindExecutable("/bin/sh", ""), fs::path("/bin/sh"));
  EXPECT_EQ(FindExecutable("/bin/nonexistent", "/bin"), std::nullopt);

  TempDir dir("plinth-process");
  fs::path tool = dir.path() / "tool";
  WriteFile(tool, "#!/bin/sh\n");
  chmod(tool.c_str(), 0755);
  EXPECT_EQ(FindExecutable("tool", "/bin:" + dir.path().string()), tool);
  // Relative and empty entries are not searched (no implicit ".").
  fs::path old = fs::current_path();
  fs::current_path(dir.path());
  EXPECT_EQ(FindExecutable("tool", ".:"), std::nullopt);
  fs::current_path(old);
}

TEST(ProcessEnvironment, CopyAndWipe) {
  setenv("PLINTH_PROCESS_TEST_VAR", "a=b", 1);
  auto env = CurrentEnvironment();
  unsetenv("PLINTH_PROCESS_TEST_VAR");
  EXPECT_EQ(env["PLINTH_PROCESS_TEST_VAR"], "a=b");
  WipeEnvironment(env);
  EXPECT_TRUE(env.empty());
}

TEST(ProcessEnvironment, StateCredentialsAreNotPassedOn) {
  std::map<std::string, std::string> env = {{"PLINTH_BACKEND", "postgres://u:pw@h/db"},
                                            {"PGPASSWORD", "pw"},
                                            {"PATH", "/usr/bin"},
                                            {"PLINTH_WORKSPACE", "prod"}};
  DropStateCredentials(env);
  EXPECT_EQ(env.count("PLINTH_BACKEND"), 0u);
  EXPECT_EQ(env.count("PGPASSWORD"), 0u);
  EXPECT_EQ(env.size(), 2u);
}

// ------------------------------------------------------------------ Child

TEST(ProcessChild, WritesAndReadsLines) {
  Spec s;
  s.program = "/bin/cat";
  std::string error;
  auto child = Child::Start(s, &error);
  ASSERT_TRUE(child) << error;
  EXPECT_GT(child->pid(), 0);
  ASSERT_TRUE(child->WriteAll("{\"id\":1}\n{\"id\":2}\n", 1s));
  ReadResult r = child->ReadLine(1s, 100);
  ASSERT_EQ(r.kind, ReadResult::Kind::kLine);
  EXPECT_EQ(r.line, "{\"id\":1}");
  r = child->ReadLine(1s, 100);
  ASSERT_EQ(r.kind, ReadResult::Kind::kLine);
  EXPECT_EQ(r.line, "{\"id\":2}");
  EXPECT_TRUE(child->Running());

  // A line written in pieces arrives whole.
  ASSERT_TRUE(child->WriteAll("par", 1s));
  EXPECT_EQ(child->ReadLine(100ms, 100).kind, ReadResult::Kind::kTimeout);
  ASSERT_TRUE(child->WriteAll("tial\n", 1s));
  r = child->ReadLine(1s, 100);
  EXPECT_EQ(r.line, "partial");

  Outcome o = child->Stop(1s);  // cat exits when its stdin closes
  EXPECT_TRUE(o.ok()) << o.Describe("cat");
  EXPECT_FALSE(o.stopped);
  EXPECT_FALSE(child->Running());
  EXPECT_FALSE(child->WriteAll("late\n", 100ms));
  EXPECT_EQ(child->ReadLine(100ms, 100).kind, ReadResult::Kind::kEof);
  EXPECT_EQ(child->Stop(1s).exit_code, 0);  // the same outcome again
}

TEST(ProcessChild, ReadLineTimesOut) {
  Spec s;
  s.program = "/bin/sleep";
  s.args = {"10"};
  std::string error;
  auto child = Child::Start(s, &error);
  ASSERT_TRUE(child) << error;
  auto start = Clock::now();
  EXPECT_EQ(child->ReadLine(150ms, 100).kind, ReadResult::Kind::kTimeout);
  auto took = Since(start);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 1s);
}

TEST(ProcessChild, OverLongLineIsAnErrorAndIsSkipped) {
  std::string error;
  auto child = Child::Start(Sh("echo short; printf '%s\\n' 0123456789abcdefghij; echo after; "
                               "printf 0123456789abcdefghij; sleep 0.1; echo ' still too long'; echo end"),
                            &error);
  ASSERT_TRUE(child) << error;
  EXPECT_EQ(child->ReadLine(1s, 10).line, "short");
  EXPECT_EQ(child->ReadLine(1s, 10).kind, ReadResult::Kind::kTooLong);
  EXPECT_EQ(child->ReadLine(1s, 10).line, "after");
  EXPECT_EQ(child->ReadLine(1s, 10).kind, ReadResult::Kind::kTooLong);  // seen before its newline arrives
  ReadResult r = child->ReadLine(1s, 10);
  EXPECT_EQ(r.kind, ReadResult::Kind::kLine);
  EXPECT_EQ(r.line, "end");
  EXPECT_EQ(child->ReadLine(1s, 10).kind, ReadResult::Kind::kEof);
}

TEST(ProcessChild, EndOfFileAfterTheChildExits) {
  std::string error;
  auto child = Child::Start(Sh("echo last; printf unterminated; exit 4"), &error);
  ASSERT_TRUE(child) << error;
  EXPECT_EQ(child->ReadLine(1s, 100).line, "last");
  ReadResult r = child->ReadLine(1s, 100);
  EXPECT_EQ(r.kind, ReadResult::Kind::kLine);
  EXPECT_EQ(r.line, "unterminated");
  EXPECT_EQ(child->ReadLine(1s, 100).kind, ReadResult::Kind::kEof);
  auto until = Clock::now() + 1s;
  while (child->Running() && Clock::now() < until) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(child->Running());
  EXPECT_FALSE(child->WriteAll("x\n", 100ms));  // stdin is closed, and no SIGPIPE
  Outcome o = child->Stop(1s);
  EXPECT_EQ(o.exit_code, 4);
  EXPECT_EQ(o.Describe("provider"), "provider exited with status 4");
}

TEST(ProcessChild, EndOfFileDespiteAGrandchildHoldingStdout) {
  std::string error;
  auto child = Child::Start(Sh("/bin/sleep 1000 & echo $!; exit 0"), &error);
  ASSERT_TRUE(child) << error;
  ReadResult r = child->ReadLine(1s, 100);
  ASSERT_EQ(r.kind, ReadResult::Kind::kLine);
  pid_t grandchild = static_cast<pid_t>(std::atol(r.line.c_str()));
  ASSERT_GT(grandchild, 0);
  auto start = Clock::now();
  EXPECT_EQ(child->ReadLine(5s, 100).kind, ReadResult::Kind::kEof);
  EXPECT_LT(Since(start), kDrainAfterExit + 500ms);
  EXPECT_TRUE(GoneWithin(grandchild, 1s)) << "grandchild " << grandchild << " survived";
}

TEST(ProcessChild, DestructorKillsTheWholeGroup) {
  std::string error;
  auto child = Child::Start(Sh("/bin/sleep 1000 & echo $!; wait"), &error);
  ASSERT_TRUE(child) << error;
  ReadResult r = child->ReadLine(1s, 100);
  ASSERT_EQ(r.kind, ReadResult::Kind::kLine);
  pid_t grandchild = static_cast<pid_t>(std::atol(r.line.c_str()));
  pid_t pid = child->pid();
  ASSERT_GT(grandchild, 0);
  auto start = Clock::now();
  child.reset();
  EXPECT_LT(Since(start), 1s);
  EXPECT_TRUE(GoneWithin(grandchild, 1s)) << "grandchild " << grandchild << " survived";
  EXPECT_NE(::kill(pid, 0), 0) << "the child was left unreaped";  // reaped: no zombie left
}

TEST(ProcessChild, StopEscalatesToSigtermThenSigkill) {
  std::string error;
  Spec s;
  s.program = "/bin/sleep";
  s.args = {"10"};
  auto sleeper = Child::Start(s, &error);
  ASSERT_TRUE(sleeper) << error;
  Outcome o = sleeper->Stop(100ms);  // sleep does not read stdin: SIGTERM ends it
  EXPECT_TRUE(o.stopped);
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_EQ(o.Describe("sleep"), "sleep was killed by SIGTERM when it was stopped");

  Spec stubborn = Sh("trap '' TERM; echo ready; while :; do /bin/sleep 0.05; done");
  stubborn.kill_grace = 200ms;
  auto child = Child::Start(stubborn, &error);
  ASSERT_TRUE(child) << error;
  ASSERT_EQ(child->ReadLine(1s, 100).line, "ready");
  auto start = Clock::now();
  o = child->Stop(100ms);
  auto took = Since(start);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(o.signal, SIGKILL);
  EXPECT_TRUE(o.stopped);
}

TEST(ProcessChild, StderrIsCollectedInTheBackgroundAndBounded) {
  TempDir dir("plinth-process");
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "noise " + std::to_string(i) + "\n";
  WriteFile(dir.path() / "big", big);
  Spec s = Sh("cat \"$0\" >&2; echo 'Error: last words' >&2; echo done; cat");
  s.args.push_back((dir.path() / "big").string());
  s.max_stderr = 64;
  std::string error;
  auto child = Child::Start(s, &error);
  ASSERT_TRUE(child) << error;
  // The child writes ~200 KB to stderr before its first line: it would block
  // forever if nobody read stderr.
  ReadResult r = child->ReadLine(2s, 100);
  ASSERT_EQ(r.kind, ReadResult::Kind::kLine);
  EXPECT_EQ(r.line, "done");
  std::string tail;
  auto until = Clock::now() + 1s;
  while ((tail = child->StderrTail()).find("last words") == std::string::npos && Clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_LE(tail.size(), 64u);
  EXPECT_EQ(tail.substr(tail.size() - 18), "Error: last words\n");
  Outcome o = child->Stop(1s);
  EXPECT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_TRUE(o.err_truncated);
  EXPECT_EQ(o.err.substr(o.err.size() - 18), "Error: last words\n");
}

TEST(ProcessChild, WriteAllTimesOutOnAChildThatDoesNotRead) {
  Spec s;
  s.program = "/bin/sleep";
  s.args = {"10"};
  std::string error;
  auto child = Child::Start(s, &error);
  ASSERT_TRUE(child) << error;
  auto start = Clock::now();
  EXPECT_FALSE(child->WriteAll(std::string(1 << 20, 'x'), 200ms));
  auto took = Since(start);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1s);
  EXPECT_FALSE(child->WriteAll("x", 100ms));  // stdin was closed after the partial write
}

TEST(ProcessChild, StartFailureIsNullWithAMessage) {
  Spec s;
  s.program = "/nonexistent/provider";
  std::string error;
  EXPECT_EQ(Child::Start(s, &error), nullptr);
  EXPECT_EQ(error, "cannot start /nonexistent/provider: No such file or directory");
}

// ------------------------------------------------------------------ jobs and daemons

TEST(ProcessRun, OutputFileGetsStdoutAndStderrAppendedWithMode600) {
  TempDir dir;
  fs::path log = dir.path() / "log";
  WriteFile(log, "before\n");
  ::chmod(log.c_str(), 0600);
  Spec s = Sh("echo out; echo err >&2");
  s.output_file = log;
  Outcome o = process::Run(std::move(s));
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "");
  EXPECT_EQ(ReadFile(log), "before\nout\nerr\n");
  fs::path fresh = dir.path() / "fresh";
  Spec t = Sh("echo x");
  t.output_file = fresh;
  ASSERT_TRUE(process::Run(std::move(t)).ok());
  struct stat st;
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(ProcessRun, OutputFileThatIsASymlinkIsRefused) {
  TempDir dir;
  WriteFile(dir.path() / "target", "");
  fs::create_symlink(dir.path() / "target", dir.path() / "link");
  Spec s = Sh("echo x");
  s.output_file = dir.path() / "link";
  Outcome o = process::Run(std::move(s));
  EXPECT_FALSE(o.started);
  EXPECT_NE(o.start_error.find("cannot open the output file"), std::string::npos) << o.start_error;
  EXPECT_EQ(ReadFile(dir.path() / "target"), "");
}

TEST(ProcessRun, OnStartGetsThePidWhichIsTheGroup) {
  TempDir dir;
  pid_t seen = 0;
  // Field 5 of /proc/PID/stat is the process group (the shell's name "sh" has no space).
  Spec s = Sh("cut -d' ' -f5 /proc/$$/stat > " + (dir.path() / "pgid").string());
  s.on_start = [&](pid_t pid) { seen = pid; };
  Outcome o = process::Run(std::move(s));
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_GT(seen, 0);
  EXPECT_EQ(std::atol(ReadFile(dir.path() / "pgid").c_str()), seen);
}

TEST(ProcessRun, DieWithParentKillsTheChildWhenItsStartingThreadEnds) {
  TempDir dir;
  fs::path pidfile = dir.path() / "pid";
  // A thread whose Run is abandoned: the child must die with the thread. The
  // thread here is a helper process (fork) standing for an agent that is
  // SIGKILLed: the child's PR_SET_PDEATHSIG fires.
  pid_t agent = ::fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    Spec s = Sh("echo $$ > " + pidfile.string() + "; exec sleep 30");
    s.die_with_parent = true;
    process::Run(std::move(s));
    ::_exit(0);
  }
  pid_t child = ReadPid(pidfile);
  ASSERT_GT(child, 0);
  ::kill(agent, SIGKILL);
  ::waitpid(agent, nullptr, 0);
  EXPECT_TRUE(GoneWithin(child, 5s)) << "the child outlived its parent";
}

TEST(ProcessRun, AddressSpaceLimitIsTheChildsRlimit) {
  Spec s = Sh("ulimit -v");
  s.address_space_limit = uint64_t{512} << 20;
  Outcome o = process::Run(std::move(s));
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, "524288\n");  // KiB
}

// Whether this process holds CAP_SYS_ADMIN (CapEff bit 21), which a UTS
// namespace needs.
bool HasCapSysAdmin() {
  std::istringstream status(ReadFile("/proc/self/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> 21 & 1) != 0;
  }
  return false;
}

std::string Hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

TEST(ProcessRun, HostnameGivesTheChildAndItsChildrenAUtsNamespaceOfTheirOwn) {
  if (!HasCapSysAdmin()) GTEST_SKIP() << "a UTS namespace needs CAP_SYS_ADMIN (run as root)";
  const std::string host = Hostname();
  const std::string host_ns = fs::read_symlink("/proc/self/ns/uts").string();
  Spec s =
      Sh("cat /proc/sys/kernel/hostname; sh -c 'cat /proc/sys/kernel/hostname'; readlink /proc/self/ns/uts");
  s.hostname = "plinth-uts-test";
  Outcome o = process::Run(std::move(s));
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  std::istringstream out(o.out);
  std::string own, grandchild, ns;
  std::getline(out, own);
  std::getline(out, grandchild);
  std::getline(out, ns);
  EXPECT_EQ(own, "plinth-uts-test");
  EXPECT_EQ(grandchild, "plinth-uts-test");
  EXPECT_NE(ns, host_ns);
  // The caller's hostname is untouched.
  EXPECT_EQ(Hostname(), host);
  EXPECT_NE(host, "plinth-uts-test");
}

TEST(ProcessRun, WithoutHostnameTheChildSharesTheCallersUtsNamespace) {
  Outcome o = process::Run(Sh("readlink /proc/self/ns/uts"));
  ASSERT_TRUE(o.ok()) << o.Describe("sh");
  EXPECT_EQ(o.out, fs::read_symlink("/proc/self/ns/uts").string() + "\n");
}

TEST(ProcessRun, HostnameLongerThan64BytesStopsTheStart) {
  Spec s = Sh("true");
  s.hostname = std::string(65, 'n');
  Outcome o = process::Run(std::move(s));
  EXPECT_FALSE(o.started);
  EXPECT_NE(o.start_error.find("1 to 64 bytes"), std::string::npos) << o.start_error;
}

TEST(ProcessRun, CgroupThatCannotBeOpenedStopsTheStart) {
  TempDir dir;
  Spec s = Sh("true");
  s.cgroup = dir.path() / "no-such-cgroup";
  Outcome o = process::Run(std::move(s));
  EXPECT_FALSE(o.started);
  EXPECT_NE(o.start_error.find("cgroup.procs"), std::string::npos) << o.start_error;
}

TEST(ProcessDaemon, RunsInItsOwnSessionAfterTheStarterReturnsAndLogs) {
  TempDir dir;
  fs::path log = dir.path() / "daemon.log";
  Spec s = Sh("echo started; echo secret=$SECRET_X; exec sleep 30");
  s.env["SECRET_X"] = "v";
  s.output_file = log;
  std::string error;
  pid_t pid = StartDaemon(std::move(s), &error);
  ASSERT_GT(pid, 0) << error;
  auto start = ProcessStartTime(pid);
  ASSERT_TRUE(start);
  EXPECT_EQ(::getsid(pid), pid);
  EXPECT_EQ(::getpgid(pid), pid);
  EXPECT_NE(::getppid(), pid);
  auto until = Clock::now() + 5s;
  while (ReadFile(log).find("secret=v") == std::string::npos && Clock::now() < until)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(ReadFile(log), "started\nsecret=v\n");
  // Not our child: waitpid finds nothing to wait for.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(SignalGroupMembers(pid, pid, *start, SIGKILL), 1);
  EXPECT_TRUE(GoneWithin(pid, 5s));
}

TEST(ProcessUser, LooksUpAccountsAndWhoMayRunAsThem) {
  auto root = LookUpUser("root");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  EXPECT_FALSE(LookUpUser("no-such-user-plinth").has_value());
  EXPECT_FALSE(LookUpUser("").has_value());
  EXPECT_TRUE(MayRunAs(UnixUser{::geteuid(), ::getegid()}));
  EXPECT_EQ(MayRunAs(UnixUser{::geteuid() + 1, 0}), ::geteuid() == 0);
}

TEST(ProcessDaemon, StartFailureSaysWhy) {
  TempDir dir;
  Spec s;
  s.program = dir.path() / "missing";
  s.output_file = dir.path() / "log";
  std::string error;
  EXPECT_EQ(StartDaemon(std::move(s), &error), 0);
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

TEST(ProcessStart, StartTimeNamesOneProcessAndSignalGroupMembersSkipsOthers) {
  auto self = ProcessStartTime(::getpid());
  ASSERT_TRUE(self);
  EXPECT_GT(*self, 0u);
  EXPECT_FALSE(ProcessStartTime(0));
  // A later minimum start time than our own: nothing of our group is touched.
  EXPECT_EQ(SignalGroupMembers(::getpgrp(), 0, *self + 1000000000ull, 0), 0);
}

}  // namespace
}  // namespace plinth::process
