// plinth-metrics-bench: the cost of metrics in (docs/automation.md,
// "Metrics"; figures in docs/benchmarks.md):
//   (a) parsing a 50,000-sample exposition (counters, gauges, histograms);
//   (b) one scrape of it over HTTP on 127.0.0.1 (fetch + parse + append);
//   (c) filling a Window with --series series × 40 scrapes (10 min at 15 s)
//       and the process's RSS growth (proc.h);
//   (d) queries over that window: Latest, rate and increase over 5 min
//       across every series, histogram_quantile over 1,000 histograms.
//
//   plinth-metrics-bench [--series N] [--repeat N]
// Inputs come from a fixed seed. Single-threaded except (b)'s server.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/controller/clock.h"
#include "runtime/controller/http_server.h"
#include "runtime/metrics/exposition.h"
#include "runtime/metrics/parse.h"
#include "runtime/metrics/proc.h"
#include "runtime/metrics/scrape.h"
#include "runtime/metrics/window.h"

using namespace plinth;
using namespace plinth::metrics;

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// 50,000 samples: 1,000 histograms of 10 buckets + sum + count (12,000),
// 19,000 counters, 19,000 gauges.
std::string MakeExposition(std::mt19937& rng) {
  Exposition e;
  e.Counter("http_requests_total", "Requests.");
  for (int i = 0; i < 19'000; ++i)
    e.Sample(rng() % 1'000'000, {{"path", "/api/v1/item" + std::to_string(i % 500)},
                                 {"code", std::to_string(200 + i % 5)},
                                 {"n", std::to_string(i)}});
  e.Gauge("queue_depth", "Queue.");
  for (int i = 0; i < 19'000; ++i) e.Sample((rng() % 100'000) / 7.0, {{"queue", "q" + std::to_string(i)}});
  std::string text = e.Text();
  text += "# HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n";
  const char* bounds[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
  for (int h = 0; h < 1000; ++h) {
    double c = 0;
    std::string l = "route=\"r" + std::to_string(h) + "\"";
    for (const char* b : bounds) {
      c += rng() % 1000;
      text += "latency_seconds_bucket{" + l + ",le=\"" + b + "\"} " + FormatValue(c) + "\n";
    }
    text += "latency_seconds_sum{" + l + "} " + FormatValue(c * 0.2) + "\n";
    text += "latency_seconds_count{" + l + "} " + FormatValue(c) + "\n";
  }
  return text;
}

Selector Sel(const std::string& metric) {
  std::string error;
  auto s = Selector::Make(metric, {}, &error);
  if (!s) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(1);
  }
  return *s;
}

}  // namespace

int main(int argc, char** argv) {
  size_t series = 10'000;
  int repeat = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--series") && i + 1 < argc)
      series = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: plinth-metrics-bench [--series N] [--repeat N]\n");
      return 2;
    }
  }
  std::mt19937 rng(16);
  std::string text = MakeExposition(rng);

  // (a) parse
  std::vector<double> parse_ms;
  size_t samples = 0;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    ParseResult p = ParseExposition(text);
    parse_ms.push_back(Ms(t0));
    if (!p.ok) {
      std::fprintf(stderr, "parse failed: %s\n", p.error.c_str());
      return 1;
    }
    samples = p.samples.size();
  }
  double pm = Median(parse_ms);
  std::printf("(a) parse: %zu samples, %.1f MiB: %.1f ms (median of %d) = %.0f MB/s, %.2f M samples/s\n",
              samples, text.size() / 1048576.0, pm, repeat, text.size() / 1e6 / (pm / 1000),
              samples / 1e6 / (pm / 1000));

  // (b) scrape over HTTP
  {
    controller::HttpServer server(controller::HttpServerOptions{});
    server.Get("/metrics", [&](const controller::HttpRequest&) {
      return controller::HttpResponse{200, "text/plain; version=0.0.4", text};
    });
    std::string error;
    if (!server.Start(&error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    controller::ManualClock clock;
    Window window;
    Scraper scraper(window, clock);
    scraper.SetTargets({{"bench",
                         "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics",
                         {{"service", "bench"}}}});
    std::vector<double> scrape_ms;
    for (int r = 0; r < repeat; ++r) {
      clock.Advance(std::chrono::seconds(15));
      auto t0 = Clock::now();
      if (scraper.Scrape() != 1) {
        std::fprintf(stderr, "scrape failed: %s\n", scraper.Statuses()[0].error.c_str());
        return 1;
      }
      scrape_ms.push_back(Ms(t0));
    }
    std::printf("(b) scrape over HTTP (fetch + parse + append %zu series): %.1f ms (median of %d)\n",
                window.series_count(), Median(scrape_ms), repeat);
    server.Stop();
  }

  // (c) fill a window: `series` counters (10 per metric label set), 40 scrapes
  auto rss0 = ReadProcessUsage(::getpid(), 0);
  WindowOptions wo;
  wo.max_series = series + 1000 * 10;
  Window window(wo);
  constexpr int kScrapes = 40;
  const int64_t t_base = 1'700'000'000'000;
  std::vector<Labels> labels;
  for (size_t i = 0; i < series; ++i)
    labels.push_back(
        {{"service", "s" + std::to_string(i % 50)}, {"replica", std::to_string(i / 50)}, {"region", "eu"}});
  const char* bounds[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
  std::vector<double> counters(series, 0), buckets(1000 * 10, 0);
  auto t0 = Clock::now();
  size_t appends = 0;
  for (int s = 0; s < kScrapes; ++s) {
    int64_t t = t_base + s * 15'000;
    for (size_t i = 0; i < series; ++i) {
      counters[i] += rng() % 100;
      window.Append("requests_total", labels[i], t, counters[i]);
    }
    for (int h = 0; h < 1000; ++h) {
      double c = 0;
      for (int b = 0; b < 10; ++b) {
        c += rng() % 10;
        buckets[h * 10 + b] += c;
        window.Append("latency_seconds_bucket", {{"route", "r" + std::to_string(h)}, {"le", bounds[b]}}, t,
                      buckets[h * 10 + b]);
      }
    }
    appends += series + 10'000;
  }
  double fill_ms = Ms(t0);
  auto rss1 = ReadProcessUsage(::getpid(), 0);
  std::printf(
      "(c) window: %zu series x %d points: %zu appends in %.0f ms = %.2f M appends/s; RSS +%.0f MiB\n",
      window.series_count(), kScrapes, appends, fill_ms, appends / 1e6 / (fill_ms / 1000),
      rss0 && rss1 ? (rss1->rss_bytes - rss0->rss_bytes) / 1048576.0 : -1.0);

  // (d) queries at the last scrape
  int64_t now = t_base + (kScrapes - 1) * 15'000 + 5'000;
  auto time = [&](const char* what, auto f) {
    std::vector<double> ms;
    double v = 0;
    for (int r = 0; r < repeat; ++r) {
      auto q0 = Clock::now();
      v = f();
      ms.push_back(Ms(q0));
    }
    std::printf("(d) %-52s %8.2f ms  (= %.6g)\n", what, Median(ms), v);
  };
  Selector req = Sel("requests_total");
  time("sum(requests_total) [Latest]", [&] { return Sum(window.Latest(req, now)); });
  time("sum(rate(requests_total[5m]))", [&] { return Sum(window.Rate(req, 300'000, now)); });
  time("sum(increase(requests_total[5m]))", [&] { return Sum(window.Increase(req, 300'000, now)); });
  std::string error;
  auto one = Selector::Make("requests_total", {{"service", MatchOp::Equal, "s7"}}, &error);
  time("sum(rate(requests_total{service=\"s7\"}[5m]))", [&] { return Sum(window.Rate(*one, 300'000, now)); });
  auto re = Selector::Make("requests_total", {{"service", MatchOp::Regex, "s(1|2)[0-9]"}}, &error);
  time("sum(rate(requests_total{service=~\"s(1|2)[0-9]\"}[5m]))",
       [&] { return Sum(window.Rate(*re, 300'000, now)); });
  Selector lat = Sel("latency_seconds_bucket");
  time("histogram_quantile(0.5, rate(..._bucket[5m])) x1000",
       [&] { return Avg(window.HistogramQuantile(0.5, lat, 300'000, now)); });
  return 0;
}
