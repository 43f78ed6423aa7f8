#include "runtime/metrics/window.h"

#include <algorithm>
#include <cmath>

#include "compiler/eval/regex.h"
#include "runtime/metrics/exposition.h"

namespace plinth::metrics {

namespace {

void SortLabels(Labels& labels) {
  std::sort(labels.begin(), labels.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
}

// Length-prefixed, so no byte inside a value can make two series collide.
std::string SeriesKey(const Labels& sorted) {
  std::string key;
  for (const auto& [k, v] : sorted) {
    key += std::to_string(k.size()) + ':' + k + std::to_string(v.size()) + ':' + v;
  }
  return key;
}

const std::string& LabelValue(const Labels& sorted, const std::string& name) {
  static const std::string empty;
  auto it = std::lower_bound(sorted.begin(), sorted.end(), name,
                             [](const auto& pair, const std::string& n) { return pair.first < n; });
  return it != sorted.end() && it->first == name ? it->second : empty;
}

void SortVector(InstantVector& v) {
  std::sort(v.begin(), v.end(),
            [](const SeriesValue& a, const SeriesValue& b) { return a.labels < b.labels; });
}

}  // namespace

// ------------------------------------------------------------------ Selector

std::optional<Selector> Selector::Make(std::string metric, std::vector<LabelMatcher> matchers,
                                       std::string* error) {
  if (!ValidMetricName(metric)) {
    *error = "invalid metric name \"" + metric + "\"; names match [a-zA-Z_:][a-zA-Z0-9_:]*";
    return std::nullopt;
  }
  Selector s;
  s.metric_ = std::move(metric);
  for (auto& m : matchers) {
    if (!ValidLabelName(m.name)) {
      *error = "invalid label name \"" + m.name + "\"; label names match [a-zA-Z_][a-zA-Z0-9_]*";
      return std::nullopt;
    }
    std::shared_ptr<const Regex> re;
    if (m.op == MatchOp::Regex || m.op == MatchOp::NotRegex) {
      std::string why;
      // PromQL anchors label regexes at both ends.
      auto compiled = Regex::Compile("^(?:" + m.value + ")$", why);
      if (!compiled) {
        *error = "label \"" + m.name + "\": " + why;
        return std::nullopt;
      }
      re = std::move(compiled);
    }
    s.regexes_.push_back(std::move(re));
    s.matchers_.push_back(std::move(m));
  }
  return s;
}

bool Selector::Matches(const Labels& labels) const {
  for (size_t i = 0; i < matchers_.size(); ++i) {
    const LabelMatcher& m = matchers_[i];
    const std::string& v = LabelValue(labels, m.name);
    bool hit;
    switch (m.op) {
      case MatchOp::Equal: hit = v == m.value; break;
      case MatchOp::NotEqual: hit = v != m.value; break;
      case MatchOp::Regex: hit = regexes_[i]->CountMatches(v) > 0; break;
      case MatchOp::NotRegex: hit = regexes_[i]->CountMatches(v) == 0; break;
      default: hit = false;
    }
    if (!hit) return false;
  }
  return true;
}

double Sum(const InstantVector& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (const auto& e : v) s += e.value;
  return s;
}

double Avg(const InstantVector& v) {
  return v.empty() ? NAN : Sum(v) / static_cast<double>(v.size());
}

// ------------------------------------------------------------------ Window

Window::Window(WindowOptions options) : options_(options) {
  if (options_.max_series == 0) options_.max_series = 1;
  if (options_.max_points_per_series < 2) options_.max_points_per_series = 2;
}

Window::~Window() = default;

bool Window::Append(std::string_view name, Labels labels, int64_t t_ms, double value) {
  SortLabels(labels);
  std::string key = SeriesKey(labels);
  std::lock_guard lock(mu_);
  auto& family = by_name_[std::string(name)];
  auto it = family.find(key);
  if (it == family.end()) {
    if (series_ >= options_.max_series && !by_touch_.empty()) {
      // Evict the series appended to least recently.
      Series* victim = by_touch_.begin()->second;
      by_touch_.erase(by_touch_.begin());
      auto fam = by_name_.find(victim->name);
      fam->second.erase(SeriesKey(victim->labels));
      if (fam->second.empty() && fam->first != name) by_name_.erase(fam);
      --series_;
      ++evicted_;
    }
    Series s;
    s.name = std::string(name);
    s.labels = std::move(labels);
    it = family.emplace(std::move(key), std::move(s)).first;
    ++series_;
  } else if (!it->second.points.empty() && it->second.points.back().t_ms >= t_ms) {
    ++out_of_order_;
    return false;
  }
  Series& s = it->second;
  if (s.touched) by_touch_.erase(s.touched);
  s.touched = ++seq_;
  by_touch_.emplace(s.touched, &s);
  s.points.push_back({t_ms, value});
  while (s.points.size() > options_.max_points_per_series) s.points.pop_front();
  return true;
}

void Window::Compact(int64_t now_ms) {
  std::lock_guard lock(mu_);
  int64_t oldest = now_ms - options_.retention_ms;
  for (auto fam = by_name_.begin(); fam != by_name_.end();) {
    for (auto it = fam->second.begin(); it != fam->second.end();) {
      auto& points = it->second.points;
      while (!points.empty() && points.front().t_ms < oldest) points.pop_front();
      if (points.empty()) {
        by_touch_.erase(it->second.touched);
        it = fam->second.erase(it);
        --series_;
      } else {
        ++it;
      }
    }
    fam = fam->second.empty() ? by_name_.erase(fam) : std::next(fam);
  }
}

template <typename F>
InstantVector Window::Over(const Selector& s, int64_t range_ms, int64_t now_ms, F f) const {
  InstantVector out;
  std::lock_guard lock(mu_);
  auto fam = by_name_.find(s.metric());
  if (fam == by_name_.end()) return out;
  int64_t start = now_ms - range_ms;
  for (const auto& [key, series] : fam->second) {
    if (!s.Matches(series.labels)) continue;
    // The points in (start, now].
    auto first = std::upper_bound(series.points.begin(), series.points.end(), start,
                                  [](int64_t t, const Point& p) { return t < p.t_ms; });
    auto last = std::upper_bound(series.points.begin(), series.points.end(), now_ms,
                                 [](int64_t t, const Point& p) { return t < p.t_ms; });
    std::vector<Point> in(first, last);
    std::optional<double> v = f(std::span<const Point>(in), start);
    if (v) out.push_back({series.labels, *v});
  }
  SortVector(out);
  return out;
}

InstantVector Window::Latest(const Selector& s, int64_t now_ms) const {
  int64_t stale_after = 2 * options_.scrape_interval_ms;
  return Over(s, stale_after, now_ms, [](std::span<const Point> p, int64_t) -> std::optional<double> {
    if (p.empty()) return std::nullopt;
    return p.back().value;
  });
}

InstantVector Window::Rate(const Selector& s, int64_t range_ms, int64_t now_ms) const {
  return Over(s, range_ms, now_ms, [&](std::span<const Point> p, int64_t start) {
    return ExtrapolatedDelta(p, start, now_ms, true, true);
  });
}

InstantVector Window::Increase(const Selector& s, int64_t range_ms, int64_t now_ms) const {
  return Over(s, range_ms, now_ms, [&](std::span<const Point> p, int64_t start) {
    return ExtrapolatedDelta(p, start, now_ms, true, false);
  });
}

InstantVector Window::AvgOverTime(const Selector& s, int64_t range_ms, int64_t now_ms) const {
  return Over(s, range_ms, now_ms, [](std::span<const Point> p, int64_t) -> std::optional<double> {
    if (p.empty()) return std::nullopt;
    double sum = 0;
    for (const Point& x : p) sum += x.value;
    return sum / static_cast<double>(p.size());
  });
}

InstantVector Window::MaxOverTime(const Selector& s, int64_t range_ms, int64_t now_ms) const {
  return Over(s, range_ms, now_ms, [](std::span<const Point> p, int64_t) -> std::optional<double> {
    if (p.empty()) return std::nullopt;
    // As Prometheus: NaN only when every value is NaN.
    double m = p[0].value;
    for (const Point& x : p)
      if (x.value > m || std::isnan(m)) m = x.value;
    return m;
  });
}

InstantVector Window::HistogramQuantile(double q, const Selector& buckets, int64_t range_ms,
                                        int64_t now_ms) const {
  InstantVector rates = Rate(buckets, range_ms, now_ms);
  std::map<Labels, std::vector<std::pair<double, double>>> groups;
  for (auto& sv : rates) {
    Labels rest;
    std::optional<double> le;
    for (auto& [k, v] : sv.labels) {
      if (k == "le") {
        char* end = nullptr;
        double bound = std::strtod(v.c_str(), &end);
        if (end && *end == '\0' && !v.empty()) le = bound;
      } else {
        rest.emplace_back(k, v);
      }
    }
    if (!le) continue;  // a bucket without a readable bound is ignored, as Prometheus does
    groups[std::move(rest)].emplace_back(*le, sv.value);
  }
  InstantVector out;
  for (auto& [labels, b] : groups) out.push_back({labels, BucketQuantile(q, std::move(b))});
  return out;
}

std::vector<Point> Window::Points(std::string_view name, Labels labels) const {
  SortLabels(labels);
  std::lock_guard lock(mu_);
  auto fam = by_name_.find(std::string(name));
  if (fam == by_name_.end()) return {};
  auto it = fam->second.find(SeriesKey(labels));
  if (it == fam->second.end()) return {};
  return {it->second.points.begin(), it->second.points.end()};
}

std::vector<std::string> Window::Names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, series] : by_name_)
    if (!series.empty()) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

size_t Window::series_count() const {
  std::lock_guard lock(mu_);
  return series_;
}
uint64_t Window::evicted() const {
  std::lock_guard lock(mu_);
  return evicted_;
}
uint64_t Window::out_of_order() const {
  std::lock_guard lock(mu_);
  return out_of_order_;
}

// ------------------------------------------------------------------ PromQL math

std::optional<double> ExtrapolatedDelta(std::span<const Point> points, int64_t start_ms, int64_t end_ms,
                                        bool is_counter, bool per_second) {
  if (points.size() < 2) return std::nullopt;
  double first = points.front().value, last = points.back().value;
  double result = last - first;
  if (is_counter) {
    double prev = first;
    for (const Point& p : points.subspan(1)) {
      if (p.value < prev) result += prev;
      prev = p.value;
    }
  }
  // Differences in integer ms first, then seconds: the same rounding as Prometheus.
  double duration_to_start = static_cast<double>(points.front().t_ms - start_ms) / 1000;
  double duration_to_end = static_cast<double>(end_ms - points.back().t_ms) / 1000;
  double sampled = static_cast<double>(points.back().t_ms - points.front().t_ms) / 1000;
  double average_spacing = sampled / static_cast<double>(points.size() - 1);
  if (is_counter && result > 0 && first >= 0) {
    double duration_to_zero = sampled * (first / result);
    if (duration_to_zero < duration_to_start) duration_to_start = duration_to_zero;
  }
  double threshold = average_spacing * 1.1;
  double extended = sampled;
  extended += duration_to_start < threshold ? duration_to_start : average_spacing / 2;
  extended += duration_to_end < threshold ? duration_to_end : average_spacing / 2;
  // One factor, then one multiplication: Prometheus' order of operations,
  // so that results agree to the last bit.
  double factor = extended / sampled;
  if (per_second) factor /= static_cast<double>(end_ms - start_ms) / 1000;
  result *= factor;
  return result;
}

double BucketQuantile(double q, std::vector<std::pair<double, double>> buckets) {
  if (std::isnan(q)) return NAN;
  if (q < 0) return -HUGE_VAL;
  if (q > 1) return HUGE_VAL;
  std::sort(buckets.begin(), buckets.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (buckets.size() < 2 || !std::isinf(buckets.back().first) || buckets.back().first < 0) return NAN;
  // Merge equal bounds (sum their counts).
  std::vector<std::pair<double, double>> merged;
  for (const auto& b : buckets) {
    if (!merged.empty() && merged.back().first == b.first)
      merged.back().second += b.second;
    else
      merged.push_back(b);
  }
  // Cumulative counts never fall (a scrape racing an observation can make
  // them); Prometheus takes the running maximum.
  double max = merged[0].second;
  for (auto& b : merged) {
    if (b.second < max)
      b.second = max;
    else
      max = b.second;
  }
  if (merged.size() < 2) return NAN;
  double observations = merged.back().second;
  if (!(observations > 0)) return NAN;
  double rank = q * observations;
  size_t b = 0;
  while (b < merged.size() && merged[b].second < rank) ++b;
  if (b >= merged.size() - 1) return merged[merged.size() - 2].first;
  if (b == 0 && merged[0].first <= 0) return merged[0].first;
  double bucket_start = 0, bucket_end = merged[b].first, count = merged[b].second;
  if (b > 0) {
    bucket_start = merged[b - 1].first;
    count -= merged[b - 1].second;
    rank -= merged[b - 1].second;
  }
  return bucket_start + (bucket_end - bucket_start) * (rank / count);
}

}  // namespace plinth::metrics
