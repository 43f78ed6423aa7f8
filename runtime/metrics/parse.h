// A parser of the Prometheus text exposition format, version 0.0.4 — what
// Exposition (exposition.h) writes and what services, HAProxy and node
// agents serve on /metrics (docs/automation.md, "Metrics").
//
// Input: the body of one scrape. Output: its samples in input order and its
// families' TYPE and HELP, or the first error located by line ("line 12:
// expected '=' after label name \"code\""). Like Prometheus, one error fails
// the whole scrape: a half-read exposition is never used.
//
// Grammar (per line; spaces and tabs separate tokens):
//   # HELP name text            text escapes \\ and \n
//   # TYPE name counter|gauge|histogram|summary|untyped   (once per name,
//                                before that family's first sample)
//   # anything else             a comment, ignored
//   name[{label="value",...[,]}] value [timestamp_ms]
// Values are decimal floats or NaN, +Inf, -Inf (case-insensitive, as Go's
// ParseFloat); label values escape \\, \" and \n (any other escape is an
// error); label names repeat at most once per sample. A histogram's
// `_bucket` samples need an `le` label and a summary's quantile samples a
// `quantile` label, both parseable as floats.
//
// Hostile input: time and memory are linear in the input; a line longer
// than `max_line_bytes`, a sample with more than `max_labels` labels, or
// more than `max_samples` samples fail the parse with a located error;
// nothing recurses. Bytes outside names are taken as they are (no UTF-8
// check). Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/metrics/exposition.h"

namespace plinth::metrics {

enum class MetricType { Untyped, Counter, Gauge, Histogram, Summary };
const char* MetricTypeName(MetricType t);

struct ParsedSample {
  std::string name;  // as written: "http_request_duration_seconds_bucket"
  Labels labels;     // in the order written
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  // The family it belongs to (a histogram's `x` for `x_bucket`) and its type
  // (Untyped when no TYPE line names the family).
  std::string family;
  MetricType type = MetricType::Untyped;
};

struct ParsedFamily {
  MetricType type = MetricType::Untyped;
  std::string help;
};

struct ParseLimits {
  size_t max_line_bytes = 64 * 1024;
  size_t max_samples = 50'000;
  size_t max_labels = 64;
};

struct ParseResult {
  bool ok = false;
  std::string error;  // when !ok: "line N: ..."
  std::vector<ParsedSample> samples;
  std::map<std::string, ParsedFamily> families;  // from TYPE and HELP lines
};

ParseResult ParseExposition(std::string_view text, const ParseLimits& limits = {});

// A float as the text format writes it: decimal, NaN, [+-]Inf. Nullopt when
// `s` is anything else (including empty, trailing bytes, hex).
std::optional<double> ParseSampleValue(std::string_view s);

}  // namespace plinth::metrics
