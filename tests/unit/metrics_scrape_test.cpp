// Scraping real HTTP servers on 127.0.0.1 (runtime/metrics/scrape.h): a
// healthy target, one that is down, one that hangs, one that sends 100 MB,
// one that serves garbage; and per-process CPU and memory from /proc
// (runtime/metrics/proc.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <mutex>

#include "runtime/controller/clock.h"
#include "runtime/controller/http_server.h"
#include "runtime/metrics/proc.h"
#include "runtime/metrics/scrape.h"
#include "runtime/process/process.h"

namespace plinth::metrics {
namespace {

using controller::HttpRequest;
using controller::HttpResponse;
using controller::HttpServer;
using controller::HttpServerOptions;
using std::chrono::milliseconds;

// Holds a handler until opened (or 30 s pass); opened on destruction, so a
// failing test never leaves a server thread blocked.
class Gate {
 public:
  ~Gate() { Open(); }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

std::string Url(const HttpServer& s, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(s.port()) + path;
}

Selector Sel(std::string metric, std::vector<LabelMatcher> m = {}) {
  std::string error;
  auto s = Selector::Make(std::move(metric), std::move(m), &error);
  EXPECT_TRUE(s) << error;
  return *s;
}

TEST(MetricsScrape, TargetsUpDownHangingHugeAndGarbage) {
  // 100 MB of valid samples, built once; declared before the server, so
  // it (and `hits`) outlive every handler.
  std::string huge;
  huge.reserve(100u << 20);
  while (huge.size() < (100u << 20)) huge += "filler_metric{i=\"0123456789\"} 1\n";
  int hits = 0;
  std::mutex hits_mu;
  HttpServer server(HttpServerOptions{});
  Gate gate;  // after the server: opened before the server's Stop joins the handler
  server.Get("/metrics", [&](const HttpRequest&) {
    std::lock_guard lock(hits_mu);
    ++hits;
    Exposition m;
    m.Counter("app_requests_total", "Requests.");
    m.Sample(100 * hits, {{"code", "200"}});
    m.Sample(hits, {{"code", "500"}, {"service", "spoofed"}});
    m.GaugeValue("app_queue_depth", "Queue.", 7);
    return HttpResponse{200, "text/plain; version=0.0.4", m.Text()};
  });
  server.Get("/hang", [&](const HttpRequest&) {
    gate.Wait();
    return HttpResponse{200, "text/plain", "late 1\n"};
  });
  server.Get("/huge", [&](const HttpRequest&) { return HttpResponse{200, "text/plain", huge}; });
  server.Get("/garbage", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "ok 1\nbad{ 2\n"};
  });
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;

  // A port with nothing listening: one a server had and gave back.
  int closed_port;
  {
    HttpServer gone(HttpServerOptions{});
    ASSERT_TRUE(gone.Start(&error)) << error;
    closed_port = gone.port();
  }

  controller::ManualClock clock;
  WindowOptions wo;
  wo.scrape_interval_ms = 15'000;
  Window window(wo);
  ScrapeOptions so;
  so.fetch.timeout = milliseconds(3000);  // generous: only the hanging target reaches it
  so.fetch.max_body_bytes = 1 << 20;
  Scraper scraper(window, clock, so);
  scraper.SetTargets({
      {"api/0", Url(server, "/metrics"), {{"service", "api"}, {"replica", "0"}}},
      {"down", "http://127.0.0.1:" + std::to_string(closed_port) + "/metrics", {{"service", "down"}}},
      {"hang", Url(server, "/hang"), {{"service", "hang"}}},
      {"huge", Url(server, "/huge"), {{"service", "huge"}}},
      {"garbage", Url(server, "/garbage"), {{"service", "garbage"}}},
      {"missing", Url(server, "/nothing"), {{"service", "missing"}}},
  });
  EXPECT_EQ(scraper.Scrape(), 1u);
  gate.Open();  // let the hanging handler finish (its client has long gone)
  int64_t t1 = clock.WallMs();

  auto up = [&](const std::string& service) {
    auto v = window.Latest(Sel("up", {{"service", MatchOp::Equal, service}}), clock.WallMs());
    EXPECT_EQ(v.size(), 1u) << service;
    return v.empty() ? NAN : v[0].value;
  };
  EXPECT_EQ(up("api"), 1);
  for (const char* s : {"down", "hang", "huge", "garbage", "missing"}) EXPECT_EQ(up(s), 0) << s;

  auto statuses = scraper.Statuses();
  ASSERT_EQ(statuses.size(), 6u);
  EXPECT_TRUE(statuses[0].up);
  EXPECT_EQ(statuses[0].samples, 3u);
  EXPECT_EQ(statuses[0].last_scrape_ms, t1);
  EXPECT_NE(statuses[1].error.find("down: GET http://127.0.0.1:"), std::string::npos) << statuses[1].error;
  EXPECT_NE(statuses[2].error.find("hang: GET "), std::string::npos) << statuses[2].error;
  EXPECT_NE(statuses[2].error.find("imed out"), std::string::npos) << statuses[2].error;
  EXPECT_NE(statuses[3].error.find("body larger than 1048576 bytes"), std::string::npos) << statuses[3].error;
  EXPECT_NE(statuses[4].error.find("garbage: line 2: "), std::string::npos) << statuses[4].error;
  EXPECT_NE(statuses[5].error.find("HTTP status 404, expected 200"), std::string::npos) << statuses[5].error;
  // Nothing from a failed target reached the window.
  EXPECT_TRUE(window.Latest(Sel("ok"), t1).empty()) << "the garbage target's valid first line was kept";
  EXPECT_TRUE(window.Latest(Sel("filler_metric"), t1).empty());
  EXPECT_EQ(Sum(window.Latest(Sel("scrape_samples_scraped", {{"service", MatchOp::Equal, "api"}}), t1)), 3);

  // The target's labels are added; a clashing exposed label becomes exported_*.
  auto errors = window.Latest(Sel("app_requests_total", {{"code", MatchOp::Equal, "500"}}), t1);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].labels, (Labels{{"code", "500"},
                                      {"exported_service", "spoofed"},
                                      {"instance", "api/0"},
                                      {"replica", "0"},
                                      {"service", "api"}}));

  // Two more scrapes, 15 s apart: the counter grows by 100 per scrape.
  clock.Advance(std::chrono::seconds(15));
  scraper.SetTargets({{"api/0", Url(server, "/metrics"), {{"service", "api"}, {"replica", "0"}}}});
  EXPECT_EQ(scraper.Scrape(), 1u);
  clock.Advance(std::chrono::seconds(15));
  EXPECT_EQ(scraper.Scrape(), 1u);
  auto ok = Sel("app_requests_total", {{"service", MatchOp::Equal, "api"}, {"code", MatchOp::Equal, "200"}});
  EXPECT_EQ(window
                .Points("app_requests_total",
                        {{"service", "api"}, {"replica", "0"}, {"code", "200"}, {"instance", "api/0"}})
                .size(),
            3u);
  // 100, 200, 300 at 0, 15, 30 s; increase over (t-30 s, t] sees 200, 300:
  // delta 100 over 15 s; the start is 15 s away, under 1.1 × the spacing,
  // and zero is 30 s away: extended by 15 s; by 0 towards the end.
  // 100 × 30/15.
  EXPECT_DOUBLE_EQ(Sum(window.Increase(ok, 30'000, clock.WallMs())), 200);
  EXPECT_EQ(Sum(window.Latest(Sel("app_queue_depth"), clock.WallMs())), 7);
  // The down target's `up` went stale: no scrape for 30 s.
  EXPECT_TRUE(window.Latest(Sel("up", {{"service", MatchOp::Equal, "down"}}), clock.WallMs()).empty());
  server.Stop();
}

TEST(MetricsScrape, FetchRefusesOtherSchemes) {
  FetchResult r = FetchMetrics("file:///etc/passwd", {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "GET file:///etc/passwd: only http:// URLs can be scraped");
}

TEST(MetricsProc, ThisProcess) {
  pid_t self = ::getpid();
  auto start = process::ProcessStartTime(self);
  ASSERT_TRUE(start);
  std::string error;
  // Burn a little CPU so the counter has something to show.
  volatile double x = 0;
  for (int i = 0; i < 20'000'000; ++i) x = x + std::sqrt(static_cast<double>(i));
  auto usage = ReadProcessUsage(self, *start, &error);
  ASSERT_TRUE(usage) << error;
  EXPECT_GT(usage->cpu_seconds, 0);
  EXPECT_GT(usage->rss_bytes, 1 << 20);  // a gtest binary holds more than 1 MiB
  auto later = ReadProcessUsage(self, 0, &error);
  ASSERT_TRUE(later) << error;
  EXPECT_GE(later->cpu_seconds, usage->cpu_seconds);
  // Another start time: a reused pid is not this process.
  EXPECT_FALSE(ReadProcessUsage(self, *start + 1, &error));
  EXPECT_EQ(error, "process " + std::to_string(self) +
                       " is another process than the one recorded (start time differs)");
  EXPECT_FALSE(ReadProcessUsage(-1, 0, &error));
}

TEST(MetricsProc, AppendsReplicaSeries) {
  pid_t self = ::getpid();
  auto start = process::ProcessStartTime(self);
  ASSERT_TRUE(start);
  Window window;
  std::string error;
  const int64_t t = 1'700'000'000'000;
  ASSERT_TRUE(AppendReplicaUsage(window, {{"service", "api"}, {"replica", "0"}}, self, *start, t, &error))
      << error;
  EXPECT_GT(Sum(window.Latest(Sel("plinth_replica_memory_bytes", {{"service", MatchOp::Equal, "api"}}), t)),
            0);
  EXPECT_EQ(window.Latest(Sel("plinth_replica_cpu_seconds_total"), t).size(), 1u);
  // A replica whose recorded process is gone appends nothing: its series go stale, never 0.
  EXPECT_FALSE(
      AppendReplicaUsage(window, {{"service", "api"}, {"replica", "1"}}, self, *start + 1, t, &error));
  EXPECT_TRUE(
      window.Latest(Sel("plinth_replica_memory_bytes", {{"replica", MatchOp::Equal, "1"}}), t).empty());
}

TEST(MetricsProc, ParsesStatAndStatus) {
  std::string error;
  // A command name with spaces and ')' in it.
  std::string stat =
      "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 987654 10000000 300\n";
  auto f = ParseProcStat(stat, &error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->state, 'S');
  EXPECT_EQ(f->utime, 250u);
  EXPECT_EQ(f->stime, 75u);
  EXPECT_EQ(f->start_time, 987654u);
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2 3\n", &error));
  EXPECT_EQ(error, "malformed /proc stat line: 6 fields, expected at least 22");
  EXPECT_FALSE(ParseProcStat("garbage", &error));
  EXPECT_EQ(ParseVmRssBytes("Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t    2048 kB\n"), 2048u * 1024);
  EXPECT_FALSE(ParseVmRssBytes("Name:\tkthreadd\n"));
  EXPECT_FALSE(ParseVmRssBytes("VmRSS: lots\n"));
}

}  // namespace
}  // namespace plinth::metrics
