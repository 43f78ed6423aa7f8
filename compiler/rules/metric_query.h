// Metric queries in conditions (docs/automation.md, "Alert rules"): the
// calls an `alert` condition uses to read what the controller scraped.
//
//   metric("http_requests_total", {service = "model", code = "=~5.."})
//   rate(metric("http_requests_total", {service = "model"}), 1m)
//   increase(...), avg_over_time(...), max_over_time(...)   same shape as rate
//   histogram_quantile(0.95, metric("request_seconds_bucket"), 5m)
//
// Each call is one number: the sum over the matching series (the maximum
// over the groups for histogram_quantile), or "no data" (NaN) when nothing
// matches: never 0. A label value is matched for equality; a value starting
// with "=~", "!~", "!=" or "=" picks the operator, as PromQL's selectors.
//
// The rule compiler (check.cpp) reads each call as a numeric series named
// MetricQuery::series; the controller fills that series from its metrics
// window before every evaluation. Parsing is syntactic: the arguments must be
// literals (the metric name and labels as strings, the range as a duration,
// the quantile as a number), so a rule names its series before it runs.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"

namespace plinth::rules {

struct MetricMatcher {
  enum class Op : uint8_t { Equal, NotEqual, Regex, NotRegex };
  std::string name;
  Op op = Op::Equal;
  std::string value;
};

struct MetricQuery {
  enum class Fn : uint8_t { Latest, Rate, Increase, AvgOverTime, MaxOverTime, HistogramQuantile };
  Fn fn = Fn::Latest;
  std::string metric;
  std::vector<MetricMatcher> matchers;  // in the order written
  int64_t range_ms = 0;                 // all but Latest
  double quantile = 0;                  // HistogramQuantile
  std::string key;     // canonical text, equal for equal queries: rate(x{a="b"}[60000ms])
  std::string series;  // the series name conditions read: "__metric_" + 16 hex digits of key
  Range range;         // the call
};

// metric, rate, increase, avg_over_time, max_over_time, histogram_quantile.
bool IsMetricFunction(std::string_view name);

// Parses one call of a metric function; nullopt with a located diagnostic
// when an argument is not what the function takes.
std::optional<MetricQuery> ParseMetricQuery(const ast::Call& call, Diagnostics& diags);

// Every metric query in `expr` that parses, each key once, in the order
// met. Calls that do not parse are skipped (ParseMetricQuery reports them
// when the rule is checked).
void CollectMetricQueries(const ast::Expr& expr, std::vector<MetricQuery>& out);

// The condition as a PromQL expression for a Prometheus alerting rule:
// comparisons, && (and), || (or), arithmetic, parentheses, numbers and the
// metric calls (sum(...), sum(rate(x{...}[1m])), max(histogram_quantile(q,
// rate(x_bucket{...}[5m])))). Nullopt with *error and *where set on anything
// PromQL cannot say the same way (strings, units, conditionals, `!`).
std::optional<std::string> ToPromQL(const ast::Expr& expr, std::string* error, Range* where);

// A PromQL duration for milliseconds: 90000 -> "90s", 300000 -> "5m".
std::string PromDuration(int64_t ms);

}  // namespace plinth::rules
