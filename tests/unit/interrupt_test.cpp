// A terminal's Ctrl-C reaches the whole foreground process group. Plinth
// handles it (the first one lets running changes finish), so the children
// it runs — restic, out-of-process providers — must not see it: a child
// killed mid-change is what once left a half-created bucket behind. The
// process layer gives every child a group of its own (docs/process.md);
// these tests send SIGINT to the caller's group as a terminal does and check
// the children ran to the end.
//
// Each case runs in a death-test child (re-executed, "threadsafe" style)
// that first makes its own process group, so the SIGINT reaches nothing
// outside the test.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "runtime/process/process.h"

namespace plinth::process {
namespace {

std::atomic<int> interrupts{0};

void CountInterrupt(int) { interrupts.fetch_add(1); }

// Becomes the leader of a new process group with a SIGINT handler, as plinth
// is when a shell runs it as a job, and schedules the terminal's Ctrl-C:
// SIGINT to the whole group, `after` from now.
std::thread BecomeAJobAndPressCtrlCAfter(std::chrono::milliseconds after) {
  if (::setpgid(0, 0) != 0) {
    std::perror("setpgid");
    std::_Exit(2);
  }
  struct sigaction sa {};
  sa.sa_handler = CountInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  return std::thread([after] {
    std::this_thread::sleep_for(after);
    ::kill(0, SIGINT);  // 0: every process in the caller's group
  });
}

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "%s\n", why.c_str());
  std::_Exit(1);
}

// Run: the child (and its own child, sleep) finishes despite the Ctrl-C.
[[noreturn]] void RunThroughCtrlC() {
  std::thread ctrl_c = BecomeAJobAndPressCtrlCAfter(std::chrono::milliseconds(300));
  Spec spec;
  spec.program = "/bin/sh";
  spec.args = {"-c", "sleep 1; echo finished"};
  Outcome o = Run(std::move(spec));
  ctrl_c.join();
  if (interrupts.load() != 1) Fail("the caller saw " + std::to_string(interrupts.load()) + " interrupts, not 1");
  if (!o.ok() || o.out != "finished\n") Fail("the child was interrupted: " + o.Describe("sh") + "; out: " + o.out);
  std::_Exit(0);
}

// Child (a provider's shape): a request sent before the Ctrl-C is answered
// after it.
[[noreturn]] void ChildThroughCtrlC() {
  std::thread ctrl_c = BecomeAJobAndPressCtrlCAfter(std::chrono::milliseconds(300));
  Spec spec;
  spec.program = "/bin/sh";
  spec.args = {"-c", "read request; sleep 1; echo \"answer to $request\""};
  std::string error;
  std::unique_ptr<Child> child = Child::Start(std::move(spec), &error);
  if (!child) Fail(error);
  if (!child->WriteAll("ping\n", std::chrono::seconds(5))) Fail("cannot write to the child");
  ReadResult line = child->ReadLine(std::chrono::seconds(10), 1024);
  ctrl_c.join();
  if (interrupts.load() != 1) Fail("the caller saw " + std::to_string(interrupts.load()) + " interrupts, not 1");
  if (line.kind != ReadResult::Kind::kLine || line.line != "answer to ping") {
    Outcome o = child->Stop(std::chrono::milliseconds(100));
    Fail("the child was interrupted: " + o.Describe("sh"));
  }
  std::_Exit(0);
}

TEST(InterruptDeathTest, CtrlCToTheCallersGroupDoesNotReachARunChild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(RunThroughCtrlC(), ::testing::ExitedWithCode(0), "");
}

TEST(InterruptDeathTest, CtrlCToTheCallersGroupDoesNotReachAProviderChild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ChildThroughCtrlC(), ::testing::ExitedWithCode(0), "");
}

// The second Ctrl-C: Plinth kills every child it still runs before it
// leaves, a Run child and a provider child alike, grandchildren included.
TEST(Interrupt, SignalAllChildrenReachesEveryLiveChildAndItsGroup) {
  Outcome run;
  std::thread runner([&run] {
    Spec spec;
    spec.program = "/bin/sh";
    spec.args = {"-c", "sleep 30 & wait"};
    run = process::Run(std::move(spec));
  });
  Spec spec;
  spec.program = "/bin/sh";
  spec.args = {"-c", "read request; echo never"};
  std::string error;
  std::unique_ptr<Child> child = Child::Start(std::move(spec), &error);
  ASSERT_TRUE(child) << error;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the Run child has started
  const auto start = std::chrono::steady_clock::now();
  SignalAllChildren(SIGKILL);
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(run.signal, SIGKILL) << run.Describe("sh");
  ReadResult line = child->ReadLine(std::chrono::seconds(5), 1024);
  EXPECT_EQ(line.kind, ReadResult::Kind::kEof);
  Outcome o = child->Stop(std::chrono::milliseconds(100));
  EXPECT_EQ(o.signal, SIGKILL) << o.Describe("sh");
  // Reaped children are no longer tracked: nothing is signalled now.
  SignalAllChildren(SIGKILL);
}

}  // namespace
}  // namespace plinth::process
