#include "runtime/metrics/exposition.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace plinth::metrics {

namespace {

[[maybe_unused]] bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

bool ValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return buf;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

void Exposition::Family(const std::string& name, const std::string& help, const char* type) {
  assert(ValidMetricName(name));
  assert(std::find(names_.begin(), names_.end(), name) == names_.end() && "a metric family is started once");
  names_.push_back(name);
  current_ = name;
  text_ += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  text_ += "# TYPE " + name + " " + type + "\n";
}

void Exposition::Counter(const std::string& name, const std::string& help) {
  assert(EndsWith(name, "_total") && "counter names end in _total");
  Family(name, help, "counter");
}

void Exposition::Gauge(const std::string& name, const std::string& help) {
  assert(!EndsWith(name, "_total") && "gauges are not named _total");
  Family(name, help, "gauge");
}

void Exposition::Sample(double value, const Labels& labels) {
  assert(!current_.empty() && "a sample needs a family");
  text_ += current_;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      assert(ValidLabelName(labels[i].first));
      if (i) text_ += ',';
      text_ += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += FormatValue(value);
  text_ += '\n';
}

void Exposition::Append(const Exposition& other) {
  for ([[maybe_unused]] const std::string& name : other.names_)
    assert(std::find(names_.begin(), names_.end(), name) == names_.end() && "a metric family is started once");
  names_.insert(names_.end(), other.names_.begin(), other.names_.end());
  text_ += other.text_;
  current_.clear();
}

void Exposition::CounterValue(const std::string& name, const std::string& help, double value) {
  Counter(name, help);
  Sample(value);
}

void Exposition::GaugeValue(const std::string& name, const std::string& help, double value) {
  Gauge(name, help);
  Sample(value);
}

bool ValidLabelName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace plinth::metrics
