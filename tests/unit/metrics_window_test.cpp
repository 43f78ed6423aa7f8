// The window of series and its PromQL-like queries (runtime/metrics/window.h)
// against values computed by hand from Prometheus' definitions.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/metrics/window.h"

namespace plinth::metrics {
namespace {

constexpr int64_t T = 1'700'000'000'000;  // a wall time, ms
constexpr int64_t S = 1000;               // one second, ms

Selector Sel(std::string metric, std::vector<LabelMatcher> m = {}) {
  std::string error;
  auto s = Selector::Make(std::move(metric), std::move(m), &error);
  EXPECT_TRUE(s) << error;
  return *s;
}

double Only(const InstantVector& v) {
  EXPECT_EQ(v.size(), 1u);
  return v.empty() ? NAN : v[0].value;
}

TEST(MetricsWindow, RateAcrossACounterReset) {
  Window w;
  // 10, 20, then a restart (5), 15, 25: every 10 s.
  double values[] = {10, 20, 5, 15, 25};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.Append("req_total", {{"job", "api"}}, T + i * 10 * S, values[i]));
  // By hand (Prometheus' extrapolatedRate), range 60 s ending at T+45 s:
  //   delta = 25 - 10 + 20 (the value before the reset) = 35
  //   sampled interval 40 s, average spacing 10 s, threshold 11 s;
  //   to the start: 15 s, but the counter reaches 0 after 40 × 10/35 =
  //   11.43 s: still over 11 s, so extend by half the spacing (5 s);
  //   to the end: 5 s < 11 s, so extend by 5 s → 50 s.
  //   increase = 35 × 50 / 40 = 43.75; rate = 43.75 / 60.
  EXPECT_DOUBLE_EQ(Only(w.Increase(Sel("req_total"), 60 * S, T + 45 * S)), 43.75);
  EXPECT_DOUBLE_EQ(Only(w.Rate(Sel("req_total"), 60 * S, T + 45 * S)), 43.75 / 60);
}

TEST(MetricsWindow, RateExtrapolationStopsAtZero) {
  Window w;
  for (int i = 0; i < 3; ++i) w.Append("c_total", {}, T + i * 10 * S, 1 + 10 * i);  // 1, 11, 21
  // Range 30 s ending at T+20 s: delta 20 over 20 s sampled; to the start
  // 10 s, but zero is reached 20 × 1/20 = 1 s before the first point: extend
  // by 1 s; to the end 0 s. increase = 20 × 21/20 = 21, rate = 21/30.
  EXPECT_DOUBLE_EQ(Only(w.Increase(Sel("c_total"), 30 * S, T + 20 * S)), 21);
  EXPECT_DOUBLE_EQ(Only(w.Rate(Sel("c_total"), 30 * S, T + 20 * S)), 0.7);
  // The range is left-open: over (T+10 s, T+20 s] the point at T+10 s is
  // outside, so only one point remains.
  auto v = w.Increase(Sel("c_total"), 10 * S, T + 20 * S);
  EXPECT_TRUE(v.empty()) << "one point in (T+10 s, T+20 s] is not enough";
}

TEST(MetricsWindow, MissingIsAbsentNeverZero) {
  Window w;
  w.Append("g", {{"a", "1"}}, T, 5);
  EXPECT_TRUE(w.Latest(Sel("nope"), T).empty());
  EXPECT_TRUE(std::isnan(Sum(w.Latest(Sel("nope"), T))));
  EXPECT_TRUE(std::isnan(Avg(w.Latest(Sel("nope"), T))));
  EXPECT_TRUE(w.Rate(Sel("g"), 60 * S, T).empty());             // one point: no rate
  EXPECT_TRUE(w.AvgOverTime(Sel("g"), 60 * S, T - S).empty());  // before its first point
}

TEST(MetricsWindow, LatestGoesStaleAfterTwoScrapeIntervals) {
  WindowOptions o;
  o.scrape_interval_ms = 15 * S;
  Window w(o);
  w.Append("g", {}, T, 7);
  EXPECT_EQ(Only(w.Latest(Sel("g"), T)), 7);
  EXPECT_EQ(Only(w.Latest(Sel("g"), T + 29 * S)), 7);
  EXPECT_TRUE(w.Latest(Sel("g"), T + 30 * S).empty());
  w.Append("g", {}, T + 40 * S, 8);
  EXPECT_EQ(Only(w.Latest(Sel("g"), T + 40 * S)), 8);
  EXPECT_EQ(Only(w.Latest(Sel("g"), T + 10 * S)), 7) << "a query in the past sees the past";
}

TEST(MetricsWindow, OverTimeAndAcrossSeries) {
  Window w;
  for (int i = 0; i < 4; ++i) {
    w.Append("lat", {{"service", "api"}, {"replica", "0"}}, T + i * 15 * S, 10.0 * (i + 1));  // 10 20 30 40
    w.Append("lat", {{"replica", "1"}, {"service", "api"}}, T + i * 15 * S, 2.0);
    w.Append("lat", {{"service", "web"}, {"replica", "0"}}, T + i * 15 * S, 100.0);
  }
  auto api = Sel("lat", {{"service", MatchOp::Equal, "api"}});
  // Points in (T+45-60, T+45] = (T-15, T+45]: all four.
  auto avg = w.AvgOverTime(api, 60 * S, T + 45 * S);
  ASSERT_EQ(avg.size(), 2u);
  EXPECT_EQ(avg[0].labels, (Labels{{"replica", "0"}, {"service", "api"}}));
  EXPECT_EQ(avg[0].value, 25);
  EXPECT_EQ(avg[1].value, 2);
  // (T+15, T+45]: 30 and 40.
  EXPECT_EQ(w.MaxOverTime(api, 30 * S, T + 45 * S)[0].value, 40);
  EXPECT_EQ(w.AvgOverTime(api, 30 * S, T + 45 * S)[0].value, 35);
  EXPECT_EQ(Sum(w.Latest(api, T + 45 * S)), 42);
  EXPECT_EQ(Avg(w.Latest(api, T + 45 * S)), 21);
  EXPECT_EQ(Sum(w.Latest(Sel("lat", {{"service", MatchOp::NotEqual, "api"}}), T + 45 * S)), 100);
  EXPECT_EQ(Sum(w.Latest(Sel("lat"), T + 45 * S)), 142);
  EXPECT_EQ(Sum(w.Latest(Sel("lat", {{"service", MatchOp::Regex, "a.*"}}), T + 45 * S)), 42);
  EXPECT_EQ(Sum(w.Latest(Sel("lat", {{"service", MatchOp::NotRegex, "a.*"}}), T + 45 * S)), 100);
  // Regexes match the whole value: "ap" is not "api".
  EXPECT_TRUE(w.Latest(Sel("lat", {{"service", MatchOp::Regex, "ap"}}), T + 45 * S).empty());
  // A label the series lacks reads as "".
  EXPECT_EQ(Sum(w.Latest(Sel("lat", {{"zone", MatchOp::Equal, ""}}), T + 45 * S)), 142);
  EXPECT_TRUE(w.Latest(Sel("lat", {{"zone", MatchOp::Equal, "x"}}), T + 45 * S).empty());
  // Label order does not make another series.
  EXPECT_EQ(w.series_count(), 3u);
}

TEST(MetricsWindow, SelectorErrors) {
  std::string error;
  EXPECT_FALSE(Selector::Make("lat", {{"code", MatchOp::Regex, "(5.."}}, &error));
  EXPECT_EQ(error.rfind("label \"code\": ", 0), 0u) << error;
  EXPECT_FALSE(Selector::Make("1bad", {}, &error));
  EXPECT_EQ(error, "invalid metric name \"1bad\"; names match [a-zA-Z_:][a-zA-Z0-9_:]*");
  EXPECT_FALSE(Selector::Make("ok", {{"a-b", MatchOp::Equal, ""}}, &error));
  EXPECT_EQ(error, "invalid label name \"a-b\"; label names match [a-zA-Z_][a-zA-Z0-9_]*");
}

TEST(MetricsWindow, BucketQuantileByHand) {
  // Cumulative: 10 ≤ 0.1, 30 ≤ 0.5, 40 ≤ 1, 50 in all.
  std::vector<std::pair<double, double>> b = {{1, 40}, {0.1, 10}, {HUGE_VAL, 50}, {0.5, 30}};
  // q 0.5: rank 25, in (0.1, 0.5] holding 20, 15 of them: 0.1 + 0.4 × 15/20.
  EXPECT_DOUBLE_EQ(BucketQuantile(0.5, b), 0.4);
  // q 0.05: rank 2.5 in the first bucket, from 0: 0.1 × 2.5/10.
  EXPECT_DOUBLE_EQ(BucketQuantile(0.05, b), 0.025);
  // q 0.7: rank 35, in (0.5, 1] holding 10, 5 of them: 0.75.
  EXPECT_DOUBLE_EQ(BucketQuantile(0.7, b), 0.75);
  // q 0.9: rank 45 falls in +Inf: the highest finite bound.
  EXPECT_EQ(BucketQuantile(0.9, b), 1);
  EXPECT_EQ(BucketQuantile(-0.1, b), -HUGE_VAL);
  EXPECT_EQ(BucketQuantile(1.1, b), HUGE_VAL);
  EXPECT_TRUE(std::isnan(BucketQuantile(NAN, b)));
  EXPECT_TRUE(std::isnan(BucketQuantile(0.5, {{0.1, 1}, {1, 2}}))) << "no +Inf bucket";
  EXPECT_TRUE(std::isnan(BucketQuantile(0.5, {{0.1, 0}, {HUGE_VAL, 0}}))) << "no observations";
  // Non-monotonic counts are raised to the running maximum: 10, 10, 40, 50.
  EXPECT_DOUBLE_EQ(BucketQuantile(0.5, {{0.1, 10}, {0.5, 8}, {1, 40}, {HUGE_VAL, 50}}), 0.5 + 0.5 * 15 / 30);
}

TEST(MetricsWindow, HistogramQuantileOverRates) {
  Window w;
  // Two histograms (service a and b), scraped every 10 s; each bucket grows
  // linearly, so every bucket's rate is extrapolated by the same factor and
  // the quantile is that of the per-scrape increments.
  struct B {
    const char* le;
    double a, b;
  } buckets[] = {{"0.1", 10, 0}, {"0.5", 30, 50}, {"1", 40, 100}, {"+Inf", 50, 100}};
  for (int i = 1; i <= 6; ++i)
    for (const auto& bk : buckets) {
      w.Append("d_bucket", {{"service", "a"}, {"le", bk.le}}, T + i * 10 * S, bk.a * i);
      w.Append("d_bucket", {{"service", "b"}, {"le", bk.le}}, T + i * 10 * S, bk.b * i);
    }
  auto q = w.HistogramQuantile(0.5, Sel("d_bucket"), 60 * S, T + 60 * S);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].labels, (Labels{{"service", "a"}}));
  EXPECT_DOUBLE_EQ(q[0].value, 0.4);
  // b: rank 50 of 100 reaches exactly the 0.5 bucket's 50: its upper bound.
  EXPECT_DOUBLE_EQ(q[1].value, 0.5);
  auto only_a =
      w.HistogramQuantile(0.7, Sel("d_bucket", {{"service", MatchOp::Equal, "a"}}), 60 * S, T + 60 * S);
  EXPECT_DOUBLE_EQ(Only(only_a), 0.75);
  EXPECT_TRUE(w.HistogramQuantile(0.5, Sel("d_bucket"), 60 * S, T - S).empty());
}

TEST(MetricsWindow, SeriesCapEvictsTheLeastRecentlyAppended) {
  WindowOptions o;
  o.max_series = 3;
  Window w(o);
  w.Append("m", {{"s", "a"}}, T, 1);
  w.Append("m", {{"s", "b"}}, T, 1);
  w.Append("other", {}, T, 1);
  w.Append("m", {{"s", "a"}}, T + S, 2);  // a is fresh again; b is now the oldest
  w.Append("m", {{"s", "d"}}, T + S, 1);
  EXPECT_EQ(w.series_count(), 3u);
  EXPECT_EQ(w.evicted(), 1u);
  EXPECT_TRUE(w.Points("m", {{"s", "b"}}).empty());
  EXPECT_EQ(w.Points("m", {{"s", "a"}}).size(), 2u);
  w.Append("new", {}, T + 2 * S, 1);  // evicts "other"
  EXPECT_EQ(w.evicted(), 2u);
  EXPECT_TRUE(w.Latest(Sel("other"), T + 2 * S).empty());
  EXPECT_EQ(w.series_count(), 3u);
}

TEST(MetricsWindow, RetentionPointCapAndOrder) {
  WindowOptions o;
  o.retention_ms = 60 * S;
  o.max_points_per_series = 4;
  Window w(o);
  for (int i = 0; i < 10; ++i) w.Append("g", {}, T + i * S, i);
  auto points = w.Points("g", {});
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points.front().value, 6);
  EXPECT_FALSE(w.Append("g", {}, T + 9 * S, 99)) << "not after the newest point";
  EXPECT_EQ(w.out_of_order(), 1u);
  w.Compact(T + 68 * S);  // keeps points at or after T+8 s
  EXPECT_EQ(w.Points("g", {}).size(), 2u);
  w.Compact(T + 200 * S);
  EXPECT_EQ(w.series_count(), 0u);
  EXPECT_TRUE(w.Latest(Sel("g"), T + 200 * S).empty());
}

}  // namespace
}  // namespace plinth::metrics
