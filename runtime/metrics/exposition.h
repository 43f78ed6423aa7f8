// A small writer of the Prometheus text exposition format (version 0.0.4).
//
// Input: metric families added one at a time (name, help, type, samples with
// labels). Output: Text(), deterministic, in the order families were added:
// "# HELP" and "# TYPE" once per family, then its samples. Label values are
// escaped (backslash, double quote, newline); help text escapes backslash and
// newline. Counters must be named with the `_total` suffix (asserted), gauges
// must not be. Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names
// [a-zA-Z_][a-zA-Z0-9_]* (asserted: names are chosen by code, never by users).
// Not thread-safe; build one per scrape.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace plinth::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  // Starts a family; the samples that follow (Sample) belong to it. A family
  // name may be started once only (asserted).
  void Counter(const std::string& name, const std::string& help);
  void Gauge(const std::string& name, const std::string& help);
  // A sample of the current family, named like it.
  void Sample(double value, const Labels& labels = {});
  // Shorthands: a family with one unlabelled sample.
  void CounterValue(const std::string& name, const std::string& help, double value);
  void GaugeValue(const std::string& name, const std::string& help, double value);

  // Appends another exposition's families (each still started once in all).
  void Append(const Exposition& other);

  const std::string& Text() const { return text_; }

 private:
  void Family(const std::string& name, const std::string& help, const char* type);

  std::string text_;
  std::string current_;
  std::vector<std::string> names_;
};

// Label value escaping of the text format: \ → \\, " → \", newline → \n.
std::string EscapeLabelValue(const std::string& value);
// A sample value as Prometheus reads it: integers without a fraction,
// "NaN", "+Inf", "-Inf", otherwise the shortest round-trip decimal.
std::string FormatValue(double value);
// Whether `name` is a valid metric name.
bool ValidMetricName(const std::string& name);
// Whether `name` is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*.
bool ValidLabelName(const std::string& name);

}  // namespace plinth::metrics
