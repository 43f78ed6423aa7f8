// Probes against real local servers on 127.0.0.1 (docs/services.md), and
// the tracker's thresholds on simulated time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "runtime/controller/clock.h"
#include "runtime/controller/probe.h"
#include "tests/support/files.h"

namespace plinth::controller {
namespace {

using namespace std::chrono_literals;
using plinth::testing::TempDir;

// A listening socket on 127.0.0.1 and a free port (port 0 picked by the kernel).
int Listen(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// A port nothing listens on: bound, then closed.
int ClosedPort() {
  int port = 0;
  int fd = Listen(&port);
  ::close(fd);
  return port;
}

// A tiny HTTP server on its own thread answering every request with
// `status`; stopped and joined by the destructor.
class TinyHttp {
 public:
  explicit TinyHttp(int status) : status_(status) {
    fd_ = Listen(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyHttp() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++requests_;
      std::string body = "status " + std::to_string(status_) + "\n";
      std::string resp = "HTTP/1.1 " + std::to_string(status_) +
                         " X\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
      (void)!::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  int status_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

ProbeSpec Http(int port, std::string path = "/healthz") {
  ProbeSpec s;
  s.kind = ProbeKind::kHttp;
  s.port = port;
  s.path = std::move(path);
  return s;
}

ProbeSpec Exec(std::vector<std::string> argv, int timeout_s = 1) {
  ProbeSpec s;
  s.kind = ProbeKind::kExec;
  s.argv = std::move(argv);
  s.timeout_s = timeout_s;
  return s;
}

TEST(ControllerProbe, HttpSuccessIsAStatusFrom200To399) {
  TinyHttp ok(200), redirect(302);
  ProbeResult r = RunProbe(Http(ok.port()), {});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.message, "HTTP 200");
  EXPECT_EQ(ok.requests(), 1);
  EXPECT_TRUE(RunProbe(Http(redirect.port()), {}).ok);
}

TEST(ControllerProbe, Http500IsAFailureThatSaysSo) {
  TinyHttp failing(500);
  ProbeResult r = RunProbe(Http(failing.port()), {});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("HTTP 500 from GET /healthz on 127.0.0.1:"), std::string::npos) << r.message;
}

TEST(ControllerProbe, ClosedPortIsRefused) {
  int port = ClosedPort();
  ProbeResult h = RunProbe(Http(port), {});
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.message.find("connection refused on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << h.message;
  ProbeSpec tcp = Http(port);
  tcp.kind = ProbeKind::kTcp;
  ProbeResult t = RunProbe(tcp, {});
  EXPECT_FALSE(t.ok);
  EXPECT_NE(t.message.find("connection refused"), std::string::npos) << t.message;
}

TEST(ControllerProbe, ServerThatNeverAnswersTimesOut) {
  // Listening, never accepting: the connection completes in the backlog and
  // no status line ever comes.
  int port = 0;
  int fd = Listen(&port);
  ASSERT_GE(fd, 0);
  ProbeResult r = RunProbe(Http(port), {});
  ::close(fd);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("timed out after 1 s waiting for the response to GET /healthz"), std::string::npos)
      << r.message;
}

TEST(ControllerProbe, TcpConnects) {
  int port = 0;
  int fd = Listen(&port);
  ASSERT_GE(fd, 0);
  ProbeSpec s = Http(port);
  s.kind = ProbeKind::kTcp;
  ProbeResult r = RunProbe(s, {});
  ::close(fd);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(ControllerProbe, ExecExitStatusDecides) {
  ProbeTarget t;
  t.env["PATH"] = "/usr/bin:/bin";
  ProbeResult ok = RunProbe(Exec({"true"}), t);
  EXPECT_TRUE(ok.ok) << ok.message;
  ProbeResult fail = RunProbe(Exec({"sh", "-c", "echo not ready >&2; exit 1"}), t);
  EXPECT_FALSE(fail.ok);
  EXPECT_NE(fail.message.find("exited with status 1"), std::string::npos) << fail.message;
  EXPECT_NE(fail.message.find("not ready"), std::string::npos) << fail.message;
  ProbeResult missing = RunProbe(Exec({"no-such-probe-command"}), t);
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.message.find("'no-such-probe-command' was not found on PATH"), std::string::npos)
      << missing.message;
}

TEST(ControllerProbe, ExecThatHangsIsKilledAtItsTimeout) {
  TempDir dir;
  ProbeTarget t;
  t.env["PATH"] = "/usr/bin:/bin";
  t.cwd = dir.path();
  // The pid file lets the test check that the hung command is gone.
  ProbeResult r = RunProbe(Exec({"sh", "-c", "echo $$ > pid; exec sleep 30"}), t);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("deadline"), std::string::npos) << r.message;
  pid_t pid = std::stoi(plinth::testing::ReadFile(dir.path() / "pid"));
  EXPECT_NE(::kill(pid, 0), 0) << "the hung probe command survived its timeout";
}

TEST(ControllerProbe, ExecMessageNeverShowsTheEnvironment) {
  ProbeTarget t;
  t.env["PATH"] = "/usr/bin:/bin";
  t.env["API_TOKEN"] = "s3cr3t-token-value";
  ProbeResult r = RunProbe(Exec({"sh", "-c", "echo token is $API_TOKEN >&2; exit 2"}), t);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message.find("s3cr3t-token-value"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("token is ***"), std::string::npos) << r.message;
}

TEST(ControllerProbe, InvalidSpecsAreRejectedWithTheFix) {
  EXPECT_NE(ValidateProbe(Http(0), false).find("out of range"), std::string::npos);
  EXPECT_NE(ValidateProbe(Http(80, "healthz"), false).find("must start with '/'"), std::string::npos);
  EXPECT_NE(ValidateProbe(Http(80, "/a b"), false).find("spaces"), std::string::npos);
  EXPECT_NE(ValidateProbe(Exec({}), false).find("no command"), std::string::npos);
  ProbeSpec two = Http(80);
  two.success_threshold = 2;
  EXPECT_EQ(ValidateProbe(two, false), "");
  EXPECT_NE(ValidateProbe(two, true).find("success_threshold 1"), std::string::npos);
  ProbeTarget t;
  t.host = "localhost";  // names are not looked up
  ProbeResult r = RunProbe(Http(80), t);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("not an IP address"), std::string::npos) << r.message;
}

TEST(ControllerProbeTracker, InitialDelayAndPeriodDecideWhenItIsDue) {
  ManualClock clock;
  ProbeSpec s = Http(80);
  s.initial_delay_s = 5;
  s.period_s = 10;
  ProbeTracker t(s, clock.Now());
  EXPECT_FALSE(t.Due(clock.Now()));
  clock.Advance(4s);
  EXPECT_FALSE(t.Due(clock.Now()));
  clock.Advance(1s);
  ASSERT_TRUE(t.Due(clock.Now()));
  t.Record({true, "HTTP 200"}, clock.Now());
  clock.Advance(9s);
  EXPECT_FALSE(t.Due(clock.Now()));
  clock.Advance(1s);
  EXPECT_TRUE(t.Due(clock.Now()));
}

TEST(ControllerProbeTracker, ThresholdsCountConsecutiveResults) {
  ManualClock clock;
  ProbeSpec s = Http(80);
  s.success_threshold = 2;
  s.failure_threshold = 3;
  ProbeTracker t(s, clock.Now());
  EXPECT_EQ(t.state(), ProbeState::kUnknown);
  EXPECT_EQ(t.Record({true, "ok"}, clock.Now()), ProbeState::kUnknown);  // 1 of 2
  EXPECT_EQ(t.Record({true, "ok"}, clock.Now()), ProbeState::kOk);
  EXPECT_EQ(t.Record({false, "a"}, clock.Now()), ProbeState::kOk);
  EXPECT_EQ(t.Record({false, "b"}, clock.Now()), ProbeState::kOk);
  EXPECT_EQ(t.Record({true, "ok"}, clock.Now()), ProbeState::kOk);  // the failures start over
  EXPECT_EQ(t.Record({false, "a"}, clock.Now()), ProbeState::kOk);
  EXPECT_EQ(t.Record({false, "b"}, clock.Now()), ProbeState::kOk);
  EXPECT_EQ(t.Record({false, "c"}, clock.Now()), ProbeState::kFailed);
  EXPECT_EQ(t.consecutive_failures(), 3);
  EXPECT_EQ(t.last_message(), "c");
  EXPECT_EQ(t.Record({true, "ok"}, clock.Now()), ProbeState::kFailed);  // 1 of 2
  EXPECT_EQ(t.Record({true, "ok"}, clock.Now()), ProbeState::kOk);
}

}  // namespace
}  // namespace plinth::controller
