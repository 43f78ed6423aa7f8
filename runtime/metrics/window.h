// A bounded in-memory window of numeric series: what the controller scrapes
// (scrape.h) and what rules read (docs/automation.md, "Metrics").
//
// A series is a metric name plus its labels (kept sorted by name; two label
// sets that differ only in order are one series). Each series holds its
// points (timestamp ms, value) in time order, at most `max_points_per_series`
// and none older than `retention_ms` before the newest Compact. At most
// `max_series` series exist: appending a new one beyond that evicts the
// series appended to least recently (counted in evicted()).
//
// Queries follow PromQL (Prometheus 3) and return an instant vector: one
// value per matching series, sorted by labels. A series with nothing to say
// is absent from the vector — missing data is never 0 — and the aggregates
// (Sum, Avg) of an empty vector are NaN:
//   Latest          the newest point at or before `now`, unless it is older
//                   than 2 scrape intervals (then the series is stale: absent)
//   Rate/Increase   rate()/increase() over the points in (now - range, now]:
//                   counter resets handled and the result extrapolated to
//                   the range's edges exactly as Prometheus' extrapolatedRate
//                   (ExtrapolatedDelta below); fewer than 2 points: absent
//   AvgOverTime, MaxOverTime   over the points in (now - range, now]
//   HistogramQuantile          histogram_quantile(q, rate(x_bucket[range]))
//                   grouped by every label but `le`, with Prometheus' linear
//                   interpolation inside the bucket (BucketQuantile below)
// The range of a query may exceed the retention; it then sees what is kept.
//
// Thread safety: every member may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/metrics/exposition.h"

namespace plinth {
class Regex;
}

namespace plinth::metrics {

struct Point {
  int64_t t_ms = 0;
  double value = 0;
};

enum class MatchOp { Equal, NotEqual, Regex, NotRegex };

struct LabelMatcher {
  std::string name;
  MatchOp op = MatchOp::Equal;
  std::string value;  // a literal, or an RE2 pattern for Regex/NotRegex
};

// A metric name and label matchers, as PromQL's `name{k="v", k!="v",
// k=~"re", k!~"re"}`: a label a series lacks reads as "", regexes are RE2
// (compiler/eval/regex.h) and must match the whole value.
class Selector {
 public:
  // Nullopt with *error ("label \"code\": missing ): (5..") when a pattern
  // does not compile or a name is invalid.
  static std::optional<Selector> Make(std::string metric, std::vector<LabelMatcher> matchers,
                                      std::string* error);
  const std::string& metric() const { return metric_; }
  // `labels` sorted by name.
  bool Matches(const Labels& labels) const;

 private:
  std::string metric_;
  std::vector<LabelMatcher> matchers_;
  std::vector<std::shared_ptr<const Regex>> regexes_;  // parallel to matchers_; null for Equal/NotEqual
};

struct SeriesValue {
  Labels labels;  // sorted by name
  double value = 0;
};
using InstantVector = std::vector<SeriesValue>;

// Aggregates across series: NaN when the vector is empty.
double Sum(const InstantVector& v);
double Avg(const InstantVector& v);

struct WindowOptions {
  int64_t retention_ms = 10 * 60'000;
  int64_t scrape_interval_ms = 15'000;  // Latest: stale after 2 of these
  size_t max_series = 100'000;
  size_t max_points_per_series = 4096;
};

class Window {
 public:
  explicit Window(WindowOptions options = {});
  ~Window();

  // Appends one point. False (and counted in out_of_order()) when `t_ms` is
  // not after the series' newest point: points arrive in time order.
  bool Append(std::string_view name, Labels labels, int64_t t_ms, double value);
  // Drops points older than now - retention and the series left empty.
  void Compact(int64_t now_ms);

  InstantVector Latest(const Selector& s, int64_t now_ms) const;
  InstantVector Rate(const Selector& s, int64_t range_ms, int64_t now_ms) const;
  InstantVector Increase(const Selector& s, int64_t range_ms, int64_t now_ms) const;
  InstantVector AvgOverTime(const Selector& s, int64_t range_ms, int64_t now_ms) const;
  InstantVector MaxOverTime(const Selector& s, int64_t range_ms, int64_t now_ms) const;
  // `buckets` selects the `_bucket` series of one histogram (`x_bucket`).
  InstantVector HistogramQuantile(double q, const Selector& buckets, int64_t range_ms, int64_t now_ms) const;

  // A series' points, oldest first (tests and diagnostics); `labels` in any order.
  std::vector<Point> Points(std::string_view name, Labels labels) const;

  const WindowOptions& options() const { return options_; }
  // The metric names that have at least one series, sorted.
  std::vector<std::string> Names() const;
  size_t series_count() const;
  uint64_t evicted() const;
  uint64_t out_of_order() const;

 private:
  struct Series {
    std::string name;
    Labels labels;
    std::deque<Point> points;
    uint64_t touched = 0;  // the sequence number of its last append
  };
  template <typename F>
  InstantVector Over(const Selector& s, int64_t range_ms, int64_t now_ms, F f) const;

  WindowOptions options_;
  mutable std::mutex mu_;
  // metric name → series key → series (node-based: pointers stay valid).
  std::unordered_map<std::string, std::unordered_map<std::string, Series>> by_name_;
  std::map<uint64_t, Series*> by_touch_;  // least recently appended first
  uint64_t seq_ = 0;
  size_t series_ = 0;
  uint64_t evicted_ = 0, out_of_order_ = 0;
};

// Prometheus' extrapolatedRate (promql/functions.go) over `points`, the
// points of one series inside (start_ms, end_ms]:
//   delta = last - first, plus, for counters, the value before every drop
//   (a counter reset restarts from 0);
//   the sampled interval [first, last] is extended to each edge of the range
//   when the gap to it is under 1.1 × the average spacing of the points,
//   otherwise by half that spacing; for counters the extension towards the
//   start stops where the counter would reach 0;
//   delta is scaled by extended / sampled interval, and divided by the range
//   in seconds when `per_second` (rate) — else it is increase (counters) or
//   delta (gauges). Nullopt with fewer than 2 points.
std::optional<double> ExtrapolatedDelta(std::span<const Point> points, int64_t start_ms, int64_t end_ms,
                                        bool is_counter, bool per_second);

// Prometheus' bucketQuantile for classic histograms: `buckets` are (upper
// bound `le`, cumulative count) in any order. NaN when q is NaN, there are
// fewer than 2 buckets, no +Inf bucket, or no observations; -Inf for q < 0,
// +Inf for q > 1. Equal bounds are merged and counts made monotonic, then
// the rank q × total is found and linearly interpolated inside its bucket
// (from 0 for the first bucket when its bound is positive); a rank in the
// +Inf bucket returns the highest finite bound.
double BucketQuantile(double q, std::vector<std::pair<double, double>> buckets);

}  // namespace plinth::metrics
