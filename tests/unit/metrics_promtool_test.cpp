// The window's PromQL functions (runtime/metrics/window.h) against
// Prometheus itself: the same series go into a Window and into a `promtool
// test rules` file whose expected values are the Window's answers, printed
// exactly (%.17g); promtool compares them with its own evaluation. Skipped
// when promtool is not installed (scripts/deps.sh installs prometheus).
//
// Evaluation times are chosen so that no range starts on a point: Debian's
// Prometheus 2 takes ranges closed at the start, Prometheus 3 (and the
// Window) open; everywhere else they agree. promtool loads input series
// only up to the last whole evaluation_interval before an eval_time, so the
// interval is the series' own (10 s).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "runtime/metrics/window.h"
#include "runtime/process/process.h"
#include "tests/support/files.h"

namespace plinth::metrics {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string LabelText(const Labels& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i)
    out += (i ? "," : "") + labels[i].first + "=\"" + labels[i].second + "\"";
  return out + "}";
}

Selector Sel(std::string metric, std::vector<LabelMatcher> m = {}) {
  std::string error;
  auto s = Selector::Make(std::move(metric), std::move(m), &error);
  EXPECT_TRUE(s) << error;
  return *s;
}

TEST(MetricsPromtool, RateIncreaseMaxAndHistogramQuantileAgreeWithPrometheus) {
  auto promtool = process::FindExecutable("promtool", "/usr/bin:/bin:/usr/local/bin");
  if (!promtool) GTEST_SKIP() << "promtool is not installed";
  testing::TempDir dir("plinth-promtool");
  ASSERT_FALSE(dir.path().empty());

  constexpr int kPoints = 60;
  constexpr int64_t kStep = 10'000;  // ms: the input series' interval
  std::mt19937 rng(16);
  Window window;
  std::string series_yaml;
  auto add = [&](const std::string& name, const Labels& labels, const std::vector<double>& values) {
    std::string text;
    for (size_t i = 0; i < values.size(); ++i) {
      window.Append(name, labels, static_cast<int64_t>(i) * kStep, values[i]);
      text += (i ? " " : "") + Num(values[i]);
    }
    series_yaml += "      - series: '" + name + LabelText(labels) + "'\n        values: '" + text + "'\n";
  };

  // Counters with resets, and a gauge.
  for (int s = 0; s < 4; ++s) {
    std::vector<double> v;
    double c = rng() % 50;
    for (int i = 0; i < kPoints; ++i) {
      if (rng() % 12 == 0)
        c = rng() % 5;  // a restart
      else
        c += rng() % 100;
      v.push_back(c);
    }
    add("req_total", {{"replica", std::to_string(s)}, {"service", s < 2 ? "api" : "web"}}, v);
    std::vector<double> g;
    for (int i = 0; i < kPoints; ++i) g.push_back(static_cast<double>(rng() % 1000) - 200);
    add("queue_depth", {{"replica", std::to_string(s)}}, g);
  }
  // Two classic histograms: cumulative bucket counters.
  const char* bounds[] = {"0.005", "0.05", "0.25", "1", "+Inf"};
  for (const char* svc : {"api", "web"}) {
    std::vector<std::vector<double>> buckets(5);
    std::vector<double> cum(5, 0);
    for (int i = 0; i < kPoints; ++i) {
      double below = 0;
      for (int b = 0; b < 5; ++b) {
        below += rng() % 20;
        cum[b] += below;  // each bucket gains at least what the one below it gains
        buckets[b].push_back(cum[b]);
      }
    }
    for (int b = 0; b < 5; ++b) add("lat_bucket", {{"le", bounds[b]}, {"service", svc}}, buckets[b]);
  }

  std::string tests_yaml;
  auto expect = [&](const std::string& expr, int64_t at_ms, const InstantVector& v) {
    ASSERT_FALSE(v.empty()) << expr;
    tests_yaml += "      - expr: '" + expr + "'\n        eval_time: " + std::to_string(at_ms) +
                  "ms\n        exp_samples:\n";
    for (const auto& sv : v)
      tests_yaml +=
          "          - labels: '" + LabelText(sv.labels) + "'\n            value: " + Num(sv.value) + "\n";
  };
  int checks = 0;
  for (int64_t at : {95'000, 305'000, 587'000}) {
    for (int64_t range_s : {30, 60, 120, 300}) {
      std::string r = "[" + std::to_string(range_s) + "s]";
      int64_t range = range_s * 1000;
      expect("rate(req_total" + r + ")", at, window.Rate(Sel("req_total"), range, at));
      expect("increase(req_total{service=\"api\"}" + r + ")", at,
             window.Increase(Sel("req_total", {{"service", MatchOp::Equal, "api"}}), range, at));
      expect("max_over_time(queue_depth" + r + ")", at, window.MaxOverTime(Sel("queue_depth"), range, at));
      // The mean to 6 decimals: Prometheus 2 computes it incrementally, Prometheus 3
      // and the Window as sum / count, which can differ in the last bit.
      // (Means of at most 31 integers never end in exactly .5 at 1e6.)
      InstantVector avg = window.AvgOverTime(Sel("queue_depth"), range, at);
      for (auto& sv : avg) sv.value = std::floor(sv.value * 1e6 + 0.5);
      expect("round(avg_over_time(queue_depth" + r + ") * 1000000)", at, avg);
      for (double q : {0.5, 0.9, 0.99})
        expect("histogram_quantile(" + Num(q) + ", rate(lat_bucket" + r + "))", at,
               window.HistogramQuantile(q, Sel("lat_bucket"), range, at));
      checks += 7;
    }
  }
  {
    std::ofstream rules(dir.path() / "rules.yml");
    rules << "groups: []\n";
  }
  {
    std::ofstream test(dir.path() / "test.yml");
    test
        << "rule_files: [rules.yml]\nevaluation_interval: 10s\ntests:\n  - interval: 10s\n    input_series:\n"
        << series_yaml << "    promql_expr_test:\n"
        << tests_yaml;
  }
  process::Spec spec;
  spec.program = *promtool;
  spec.args = {"test", "rules", (dir.path() / "test.yml").string()};
  spec.cwd = dir.path();
  spec.deadline = std::chrono::milliseconds(120'000);
  auto out = process::Run(std::move(spec));
  EXPECT_TRUE(out.ok()) << "promtool disagrees (" << checks << " queries):\n"
                        << out.out.substr(0, 20'000) << out.err.substr(0, 4000);
}

}  // namespace
}  // namespace plinth::metrics
