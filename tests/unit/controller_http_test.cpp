// The controller's HTTP server (runtime/controller/http_server.h) against
// real sockets on 127.0.0.1, and the controller's loop
// (runtime/controller/controller.h) on simulated time: leadership, takeover,
// tasks, health, metrics and status.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runtime/controller/controller.h"
#include "runtime/controller/http_server.h"
#include "runtime/metrics/exposition.h"

namespace plinth::controller {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A connected client socket, closed on destruction.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Everything until the server closes (bounded by `limit` of waiting).
  std::string ReadAll(milliseconds limit = milliseconds(20'000)) {
    std::string out;
    char buf[4096];
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(end - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string Request(int port, const std::string& raw) {
  Client c(port);
  EXPECT_TRUE(c.connected());
  c.Send(raw);
  return c.ReadAll();
}

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return -1;
  return std::stoi(response.substr(9, 3));
}

std::string BodyOf(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

const std::string kToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o = {}) {
    if (o.token.empty()) o.token = kToken;
    server_ = std::make_unique<HttpServer>(o);
    server_->Get("/hello", [](const HttpRequest& r) {
      HttpResponse out;
      out.body = "hello " + r.query;
      return out;
    });
    server_->Post("/do", [this](const HttpRequest& r) {
      ++posts_;
      HttpResponse out;
      out.body = "did " + r.body;
      return out;
    });
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_GT(server_->port(), 0);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  int port() const { return server_->port(); }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> posts_{0};
};

TEST_F(HttpServerTest, GetRouteAnswers) {
  Start();
  std::string r = Request(port(), "GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 200) << r;
  EXPECT_EQ(BodyOf(r), "hello x=1");
  EXPECT_NE(r.find("Content-Length: 9\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Start();
  EXPECT_EQ(StatusOf(Request(port(), "GET /nope HTTP/1.1\r\n\r\n")), 404);
  EXPECT_EQ(StatusOf(Request(port(), "GET /do HTTP/1.1\r\n\r\n")), 405);
  EXPECT_EQ(StatusOf(Request(port(), "DELETE /hello HTTP/1.1\r\n\r\n")), 405);
  EXPECT_EQ(StatusOf(Request(port(), "garbage\r\n\r\n")), 400);
}

TEST_F(HttpServerTest, PostNeedsTheBearerToken) {
  Start();
  std::string none = Request(port(), "POST /do HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_EQ(StatusOf(none), 401) << none;
  EXPECT_NE(none.find("WWW-Authenticate: Bearer"), std::string::npos);
  std::string wrong = Request(port(), "POST /do HTTP/1.1\r\nAuthorization: Bearer " + kToken.substr(1) +
                                          "0\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_EQ(StatusOf(wrong), 401) << wrong;
  std::string shorter =
      Request(port(), "POST /do HTTP/1.1\r\nAuthorization: Bearer " + kToken.substr(0, 10) + "\r\n\r\n");
  EXPECT_EQ(StatusOf(shorter), 401);
  std::string basic = Request(port(), "POST /do HTTP/1.1\r\nAuthorization: Basic " + kToken + "\r\n\r\n");
  EXPECT_EQ(StatusOf(basic), 401);
  EXPECT_EQ(posts_.load(), 0) << "no handler ran without the token";
  std::string ok = Request(
      port(), "POST /do HTTP/1.1\r\nauthorization: Bearer " + kToken + "\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(StatusOf(ok), 200) << ok;
  EXPECT_EQ(BodyOf(ok), "did abc");
  EXPECT_EQ(posts_.load(), 1);
}

TEST(HttpServerNoToken, EveryPostIsRefusedWhenNoTokenIsConfigured) {
  HttpServer server(HttpServerOptions{});
  server.Post("/do", [](const HttpRequest&) { return HttpResponse{}; });
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  EXPECT_EQ(StatusOf(Request(server.port(), "POST /do HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n")), 401);
  server.Stop();
}

// A PostSigned route (the git webhook) checks its own signature: no bearer
// token is asked for, and the other POST routes still need theirs.
TEST(HttpServerSigned, ASignedRouteTakesNoBearerTokenAndOthersStillDo) {
  HttpServerOptions o;
  o.token = kToken;
  HttpServer server(o);
  std::atomic<int> hooks{0};
  server.PostSigned("/hooks/git", [&](const HttpRequest& r) {
    ++hooks;
    HttpResponse out;
    out.status = r.headers.count("x-hub-signature-256") ? 202 : 401;
    return out;
  });
  server.Post("/do", [](const HttpRequest&) { return HttpResponse{}; });
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  EXPECT_EQ(StatusOf(Request(server.port(), "POST /hooks/git HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")), 401);
  EXPECT_EQ(StatusOf(Request(server.port(),
                             "POST /hooks/git HTTP/1.1\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 2\r\n\r\n{}")),
            202);
  EXPECT_EQ(hooks.load(), 2);
  EXPECT_EQ(StatusOf(Request(server.port(), "GET /hooks/git HTTP/1.1\r\n\r\n")), 405);
  EXPECT_EQ(StatusOf(Request(server.port(), "POST /do HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")), 401);
  server.Stop();
}

TEST_F(HttpServerTest, ChunkedBodiesAre411) {
  Start(HttpServerOptions{});
  std::string chunked = "POST /do HTTP/1.1\r\nAuthorization: Bearer " + kToken +
                        "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  std::string answer = Request(port(), chunked);
  EXPECT_EQ(StatusOf(answer), 411);
  EXPECT_NE(answer.find("send Content-Length"), std::string::npos) << answer;
  EXPECT_EQ(posts_.load(), 0);
}

TEST_F(HttpServerTest, OversizedRequestsAre413) {
  HttpServerOptions o;
  o.max_request_bytes = 1024;
  Start(o);
  std::string big_header = "GET /hello HTTP/1.1\r\nX-Pad: " + std::string(4096, 'a') + "\r\n\r\n";
  EXPECT_EQ(StatusOf(Request(port(), big_header)), 413);
  // A declared body over the limit is refused before it is read.
  std::string big_body =
      "POST /do HTTP/1.1\r\nAuthorization: Bearer " + kToken + "\r\nContent-Length: 100000\r\n\r\n";
  EXPECT_EQ(StatusOf(Request(port(), big_body)), 413);
  EXPECT_EQ(posts_.load(), 0);
  // The server still serves.
  EXPECT_EQ(StatusOf(Request(port(), "GET /hello HTTP/1.1\r\n\r\n")), 200);
}

TEST_F(HttpServerTest, SlowClientDoesNotBlockAnotherAndIsCutOff) {
  HttpServerOptions o;
  o.read_timeout = milliseconds(1500);
  Start(o);
  // Slowloris: a request line and one header, never finished.
  Client slow(port());
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.Send("GET /hello HTTP/1.1\r\nX-A: b\r\n"));
  Client slow2(port());
  ASSERT_TRUE(slow2.Send("G"));
  // Meanwhile others are served.
  for (int i = 0; i < 3; ++i) {
    std::string r = Request(port(), "GET /hello?i HTTP/1.1\r\n\r\n");
    EXPECT_EQ(StatusOf(r), 200) << r;
  }
  // Trickling more bytes does not extend the deadline: the whole request must
  // arrive within read_timeout of the connection.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(milliseconds(200));
    slow.Send("X-B: c\r\n");
  }
  std::string cut = slow.ReadAll();
  EXPECT_EQ(StatusOf(cut), 408) << cut;
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitAre503) {
  HttpServerOptions o;
  o.max_connections = 2;
  o.read_timeout = milliseconds(20'000);
  Start(o);
  Client a(port()), b(port());
  a.Send("GET /hel");
  b.Send("GET /hel");
  // Let the accept loop take both before the third arrives.
  std::string third;
  for (int i = 0; i < 50 && StatusOf(third) != 503; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    third = Request(port(), "GET /hello HTTP/1.1\r\n\r\n");
  }
  EXPECT_EQ(StatusOf(third), 503) << third;
  // Finishing one frees a slot.
  a.Send("lo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(a.ReadAll()), 200);
  std::string after;
  for (int i = 0; i < 50 && StatusOf(after) != 200; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    after = Request(port(), "GET /hello HTTP/1.1\r\n\r\n");
  }
  EXPECT_EQ(StatusOf(after), 200) << after;
}

TEST_F(HttpServerTest, StopReturnsWhileAClientIsConnected) {
  HttpServerOptions o;
  o.read_timeout = milliseconds(600'000);
  Start(o);
  Client idle(port());
  idle.Send("GET /");
  std::this_thread::sleep_for(milliseconds(50));
  server_->Stop();  // must not wait for the idle client's 10 minutes
  EXPECT_EQ(idle.ReadAll(milliseconds(5000)), "");
}

TEST(HttpServerListen, ABusyPortIsReported) {
  HttpServer first(HttpServerOptions{});
  std::string error;
  ASSERT_TRUE(first.Start(&error)) << error;
  HttpServerOptions o;
  o.port = first.port();
  HttpServer second(o);
  EXPECT_FALSE(second.Start(&error));
  EXPECT_NE(error.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << error;
  HttpServerOptions bad;
  bad.host = "localhost";
  HttpServer third(bad);
  EXPECT_FALSE(third.Start(&error));
  EXPECT_NE(error.find("not an IPv4 address"), std::string::npos) << error;
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

// ------------------------------------------------------------ exposition

TEST(Exposition, FamiliesLabelsAndValues) {
  metrics::Exposition m;
  m.CounterValue("x_requests_total", "requests\nserved \\ so far", 3);
  m.Gauge("x_temperature", "temperature");
  m.Sample(21.5, {{"room", "a\"b\\c\nd"}});
  m.Sample(-1, {{"room", "e"}, {"floor", "1"}});
  EXPECT_EQ(m.Text(),
            "# HELP x_requests_total requests\\nserved \\\\ so far\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total 3\n"
            "# HELP x_temperature temperature\n"
            "# TYPE x_temperature gauge\n"
            "x_temperature{room=\"a\\\"b\\\\c\\nd\"} 21.5\n"
            "x_temperature{room=\"e\",floor=\"1\"} -1\n");
  EXPECT_EQ(metrics::FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(metrics::FormatValue(0.1), "0.1");
  EXPECT_EQ(metrics::FormatValue(1733400000.123), "1733400000.123");
  EXPECT_TRUE(metrics::ValidMetricName("plinth_controller_up"));
  EXPECT_FALSE(metrics::ValidMetricName("9lives"));
  EXPECT_FALSE(metrics::ValidMetricName("a-b"));
}

// ------------------------------------------------------------ controller

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-controller-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Controller> Make(const std::string& holder, int* runs, bool fail = false) {
    ControllerOptions o;
    o.dir = dir_ / "controller";
    o.interval = seconds(2);
    o.lease_ttl = seconds(10);
    o.holder_id = holder;
    PeriodicTask t;
    t.name = "sweep";
    t.every = seconds(60);
    t.run = [runs, fail, this](int64_t term) {
      ++*runs;
      last_term_ = term;
      TaskResult r;
      r.ok = !fail;
      r.summary = "swept";
      if (fail) r.error = "disk on fire";
      return r;
    };
    std::vector<PeriodicTask> tasks;
    tasks.push_back(t);
    auto c = std::make_unique<Controller>(o, clock_, std::move(tasks));
    std::string error;
    EXPECT_TRUE(c->Open(&error)) << error;
    return c;
  }

  nlohmann::json StatusFile() {
    std::ifstream in(dir_ / "controller" / "status.json");
    std::stringstream s;
    s << in.rdbuf();
    return nlohmann::json::parse(s.str());
  }

  fs::path dir_;
  ManualClock clock_;
  int64_t last_term_ = 0;
};

TEST_F(ControllerTest, OneLeadsTheOtherStandsByAndTakesOverAfterTheLeaseLapses) {
  int runs_a = 0, runs_b = 0;
  auto a = Make("a", &runs_a);
  auto b = Make("b", &runs_b);
  a->Tick();
  b->Tick();
  EXPECT_TRUE(a->leading());
  EXPECT_FALSE(b->leading());
  EXPECT_EQ(runs_a, 1) << "a new leader runs its tasks at once";
  EXPECT_EQ(runs_b, 0) << "a standby runs nothing";
  EXPECT_EQ(last_term_, 1);
  nlohmann::json st = StatusFile();
  EXPECT_EQ(st["format_version"], 1);
  EXPECT_EQ(st["leader"], true);
  EXPECT_EQ(st["holder"], "a");
  EXPECT_EQ(st["term"], 1);
  EXPECT_EQ(st["leader_since_ms"], int64_t{1'700'000'000'000});
  EXPECT_EQ(st["sweeps"][0]["name"], "sweep");
  EXPECT_EQ(st["sweeps"][0]["runs"], 1);
  // a keeps renewing every interval; b never gets it.
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(seconds(2));
    a->Tick();
    b->Tick();
    ASSERT_TRUE(a->leading());
    ASSERT_FALSE(b->leading());
  }
  EXPECT_EQ(runs_a, 1) << "not due again before 60 s";
  // a dies (stops ticking). b leads within lease_ttl + interval.
  int waited_ms = 0;
  while (!b->leading() && waited_ms <= 12'000) {
    clock_.Advance(seconds(2));
    waited_ms += 2000;
    b->Tick();
  }
  EXPECT_TRUE(b->leading());
  EXPECT_LE(waited_ms, 12'000);
  EXPECT_EQ(b->term(), 2);
  EXPECT_EQ(runs_b, 1);
  EXPECT_EQ(last_term_, 2) << "tasks get the fencing token";
  EXPECT_EQ(StatusFile()["holder"], "b");
  EXPECT_EQ(StatusFile()["leader_since_ms"], clock_.WallMs());
  // a comes back: it is a standby now.
  a->Tick();
  EXPECT_FALSE(a->leading());
  EXPECT_EQ(a->term(), 2);
}

TEST_F(ControllerTest, ShutdownReleasesSoTheStandbyLeadsAtOnce) {
  int runs_a = 0, runs_b = 0;
  auto a = Make("a", &runs_a);
  auto b = Make("b", &runs_b);
  a->Tick();
  a->Shutdown();
  EXPECT_FALSE(a->leading());
  EXPECT_EQ(StatusFile()["stopped"], true) << "status says the controller stopped, not that it leads";
  b->Tick();
  EXPECT_TRUE(b->leading());
  EXPECT_EQ(b->term(), 2);
  EXPECT_EQ(StatusFile()["stopped"], false);
  EXPECT_EQ(StatusFile()["holder"], "b");
  // A standby's shutdown leaves the leader's status alone.
  a->Shutdown();
  EXPECT_EQ(StatusFile()["holder"], "b");
  EXPECT_TRUE(b->leading());
}

TEST_F(ControllerTest, TasksRunWhenDueOrRequested) {
  int runs = 0;
  auto a = Make("a", &runs);
  a->Tick();
  EXPECT_EQ(runs, 1);
  clock_.Advance(seconds(58));
  a->Tick();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(a->RequestRun("sweep"));
  EXPECT_FALSE(a->RequestRun("nope"));
  a->Tick();
  EXPECT_EQ(runs, 2);
  clock_.Advance(seconds(59));
  a->Tick();
  EXPECT_EQ(runs, 2);
  clock_.Advance(seconds(1));
  a->Tick();
  EXPECT_EQ(runs, 3);
}

TEST_F(ControllerTest, FailuresAreCountedAndReported) {
  int runs = 0;
  auto a = Make("a", &runs, /*fail=*/true);
  a->Tick();
  nlohmann::json st = nlohmann::json::parse(a->StatusJson());
  EXPECT_EQ(st["last_error"], "sweep: disk on fire");
  EXPECT_EQ(st["sweeps"][0]["failures"], 1);
  EXPECT_EQ(st["sweeps"][0]["last_success"], "");
  std::string m = a->MetricsText();
  EXPECT_NE(m.find("plinth_controller_sweep_failures_total{task=\"sweep\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("plinth_controller_last_sweep_timestamp_seconds{task=\"sweep\"} 0\n"), std::string::npos)
      << m;
}

TEST_F(ControllerTest, HealthzTurns503WhenTheLoopStalls) {
  int runs = 0;
  auto a = Make("a", &runs);
  a->Tick();
  EXPECT_TRUE(a->Healthy());
  clock_.Advance(seconds(6));
  EXPECT_TRUE(a->Healthy()) << "3 intervals is the limit";
  clock_.Advance(seconds(1));
  EXPECT_FALSE(a->Healthy());
  EXPECT_NE(a->MetricsText().find("plinth_controller_up 0\n"), std::string::npos);
  a->Tick();
  EXPECT_TRUE(a->Healthy());
}

TEST_F(ControllerTest, EndpointsOverHttp) {
  int runs = 0;
  auto a = Make("a", &runs);
  a->Tick();
  HttpServerOptions o;
  o.token = a->token();
  HttpServer server(o);
  a->Attach(server);
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  std::string h = Request(server.port(), "GET /healthz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(h), 200);
  EXPECT_EQ(BodyOf(h), "ok\n");
  std::string m = Request(server.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(m), 200);
  for (const char* needle :
       {"# TYPE plinth_controller_up gauge\nplinth_controller_up 1\n", "plinth_controller_leader 1\n",
        "plinth_controller_term 1\n", "# TYPE plinth_controller_loop_iterations_total counter\n",
        "plinth_controller_loop_iterations_total 1\n", "plinth_controller_loop_duration_seconds ",
        "plinth_controller_last_sweep_timestamp_seconds{task=\"sweep\"} 1700000000\n"}) {
    EXPECT_NE(BodyOf(m).find(needle), std::string::npos) << needle << "\n" << BodyOf(m);
  }
  std::string s = Request(server.port(), "GET /status HTTP/1.1\r\n\r\n");
  EXPECT_EQ(nlohmann::json::parse(BodyOf(s))["holder"], "a");
  EXPECT_EQ(StatusOf(Request(server.port(), "POST /run?task=sweep HTTP/1.1\r\n\r\n")), 401);
  std::string run = Request(
      server.port(), "POST /run?task=sweep HTTP/1.1\r\nAuthorization: Bearer " + a->token() + "\r\n\r\n");
  EXPECT_EQ(StatusOf(run), 202) << run;
  std::string unknown = Request(
      server.port(), "POST /run?task=nope HTTP/1.1\r\nAuthorization: Bearer " + a->token() + "\r\n\r\n");
  EXPECT_EQ(StatusOf(unknown), 404) << unknown;
  a->Tick();
  EXPECT_EQ(runs, 2);
  clock_.Advance(seconds(7));
  EXPECT_EQ(StatusOf(Request(server.port(), "GET /healthz HTTP/1.1\r\n\r\n")), 503);
  server.Stop();
}

TEST_F(ControllerTest, TokenIsPrivateAndSharedByTheWorkspacesControllers) {
  int runs = 0;
  auto a = Make("a", &runs);
  auto b = Make("b", &runs);
  EXPECT_EQ(a->token(), b->token());
  EXPECT_EQ(a->token().size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "controller" / "token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ / "controller").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A token file others can read is refused.
  ::chmod((dir_ / "controller" / "token").c_str(), 0644);
  ControllerOptions o;
  o.dir = dir_ / "controller";
  Controller c(o, clock_, {});
  std::string error;
  EXPECT_FALSE(c.Open(&error));
  EXPECT_NE(error.find("readable by others"), std::string::npos) << error;
}

}  // namespace
}  // namespace plinth::controller
