#include "runtime/controller/autoscale.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>

namespace plinth::controller {

namespace {

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

}  // namespace

std::vector<std::string> ValidateAutoscale(const AutoscaleSpec& spec) {
  std::vector<std::string> out;
  if (spec.min < 0) out.push_back("min " + std::to_string(spec.min) + " is negative: give 0 or more");
  if (spec.max < 1) out.push_back("max " + std::to_string(spec.max) + " is below 1: give at least 1");
  if (spec.max < spec.min)
    out.push_back("max " + std::to_string(spec.max) + " is below min " + std::to_string(spec.min) +
                  ": raise max or lower min");
  if (!(spec.tolerance >= 0 && spec.tolerance < 1))
    out.push_back("tolerance " + Number(spec.tolerance) + " is outside 0..1: Kubernetes' default is 0.1");
  for (const auto* rules : {&spec.up, &spec.down}) {
    const char* dir = rules == &spec.up ? "scale_up" : "scale_down";
    if (rules->stabilization_ms < 0)
      out.push_back(std::string(dir) + ": the stabilization window is negative: give 0s or more");
    if (rules->select != ScalingRules::Select::kDisabled && rules->policies.empty())
      out.push_back(std::string(dir) + " has no policy: add one (e.g. 100% per 15s), or disable it");
    for (const ScalingPolicy& p : rules->policies) {
      if (p.value <= 0)
        out.push_back(std::string(dir) + ": a policy's value " + std::to_string(p.value) +
                      " is not positive: give 1 or more");
      if (p.period_ms <= 0) out.push_back(std::string(dir) + ": a policy's period must be positive");
    }
  }
  return out;
}

void Autoscaler::Forget(int64_t now_ms) {
  const int64_t keep = std::max(spec_.up.stabilization_ms, spec_.down.stabilization_ms);
  while (!recommendations_.empty() && recommendations_.front().at_ms < now_ms - keep)
    recommendations_.pop_front();
  int64_t period = 0;
  for (const auto* rules : {&spec_.up, &spec_.down})
    for (const ScalingPolicy& p : rules->policies) period = std::max(period, p.period_ms);
  while (!events_.empty() && events_.front().at_ms <= now_ms - period) events_.pop_front();
}

int Autoscaler::UpLimit(int current, int64_t now_ms, std::string* why) const {
  const ScalingRules& r = spec_.up;
  if (r.select == ScalingRules::Select::kDisabled) return *why = "scaling up is disabled", current;
  int result = r.select == ScalingRules::Select::kMin ? INT_MAX : INT_MIN;
  for (const ScalingPolicy& p : r.policies) {
    int added = 0;
    for (const ScaleEvent& e : events_)
      if (e.change > 0 && e.at_ms > now_ms - p.period_ms) added += e.change;
    const int start = current - added;
    const int proposed = p.kind == ScalingPolicy::Kind::kPods
                             ? start + p.value
                             : static_cast<int>(std::ceil(start * (1.0 + p.value / 100.0)));
    result = r.select == ScalingRules::Select::kMin ? std::min(result, proposed) : std::max(result, proposed);
  }
  *why = "the scale-up policies allow " + std::to_string(result) + " now";
  return result;
}

int Autoscaler::DownLimit(int current, int64_t now_ms, std::string* why) const {
  const ScalingRules& r = spec_.down;
  if (r.select == ScalingRules::Select::kDisabled) return *why = "scaling down is disabled", current;
  // kMax: the policy that allows the most change, i.e. the lowest count.
  int result = r.select == ScalingRules::Select::kMin ? INT_MIN : INT_MAX;
  for (const ScalingPolicy& p : r.policies) {
    int removed = 0;
    for (const ScaleEvent& e : events_)
      if (e.change < 0 && e.at_ms > now_ms - p.period_ms) removed -= e.change;
    const int start = current + removed;
    const int proposed = p.kind == ScalingPolicy::Kind::kPods
                             ? start - p.value
                             : static_cast<int>(std::floor(start * (1.0 - p.value / 100.0)));
    result = r.select == ScalingRules::Select::kMin ? std::max(result, proposed) : std::min(result, proposed);
  }
  *why = "the scale-down policies allow " + std::to_string(result) + " now";
  return result;
}

ScaleDecision Autoscaler::Decide(int current, std::span<const ScaleSignal> signals, int64_t now_ms) {
  Forget(now_ms);
  ScaleDecision d;
  d.desired = current;
  // Outside the bounds (a changed spec, a first run): back inside at once.
  if (current > spec_.max || current < spec_.min) {
    d.desired = d.recommendation = std::clamp(current, spec_.min, spec_.max);
    d.reason = current > spec_.max ? "above max " + std::to_string(spec_.max)
                                   : "below min " + std::to_string(spec_.min);
  } else {
    // The recommendation: the largest of the signals' desired counts.
    int recommendation = -1;
    std::string by;
    for (const ScaleSignal& s : signals) {
      if (std::isnan(s.value) || !(s.target > 0)) continue;
      int desired;
      double ratio;
      if (s.per_replica) {
        if (current == 0) continue;  // no replica, no per-replica value
        ratio = s.value / s.target;
        desired = std::fabs(ratio - 1.0) <= spec_.tolerance ? current
                                                            : static_cast<int>(std::ceil(ratio * current));
      } else {
        ratio = current == 0 ? (s.value > 0 ? INFINITY : 1.0) : s.value / (s.target * current);
        desired = current > 0 && std::fabs(ratio - 1.0) <= spec_.tolerance
                      ? current
                      : static_cast<int>(std::ceil(s.value / s.target));
      }
      if (desired > recommendation) {
        recommendation = desired;
        by = s.name + " = " + Number(s.value) + (s.per_replica ? " per replica" : "") + " (target " +
             Number(s.target) + ")";
      }
    }
    if (recommendation < 0) {
      d.recommendation = current;
      d.reason = signals.empty() ? "no signal" : "no data: keeping " + std::to_string(current);
      return d;
    }
    d.recommendation = recommendation;
    // Stabilization: down only to the highest recent recommendation, up only
    // to the lowest.
    int up = recommendation, down = recommendation;
    for (const Recommendation& r : recommendations_) {
      if (r.at_ms > now_ms - spec_.up.stabilization_ms) up = std::min(up, r.replicas);
      if (r.at_ms > now_ms - spec_.down.stabilization_ms) down = std::max(down, r.replicas);
    }
    recommendations_.push_back({now_ms, recommendation});
    int stabilized = current;
    if (stabilized < up) stabilized = up;
    if (stabilized > down) stabilized = down;
    std::string limited;
    if (stabilized != recommendation)
      limited = stabilized > recommendation ? "; scale-down stabilized at " + std::to_string(stabilized) +
                                                  " (highest recommendation in the last " +
                                                  std::to_string(spec_.down.stabilization_ms / 1000) + "s)"
                                            : "; scale-up stabilized at " + std::to_string(stabilized);
    // Rate policies and bounds.
    int desired = stabilized;
    if (desired > current) {
      std::string why;
      int limit = std::max(UpLimit(current, now_ms, &why), current);
      if (spec_.max < limit) {
        limit = spec_.max;
        why = "max " + std::to_string(spec_.max);
      }
      if (desired > limit) {
        desired = limit;
        limited += "; limited by " + why;
      }
    } else if (desired < current) {
      std::string why;
      int limit = std::min(DownLimit(current, now_ms, &why), current);
      if (spec_.min > limit) {
        limit = spec_.min;
        why = "min " + std::to_string(spec_.min);
      }
      if (desired < limit) {
        desired = limit;
        limited += "; limited by " + why;
      }
    }
    d.desired = desired;
    d.reason = by + ": recommends " + std::to_string(recommendation) + limited;
  }
  d.changed = d.desired != current;
  if (d.changed) events_.push_back({now_ms, d.desired - current});
  return d;
}

nlohmann::json Autoscaler::State() const {
  nlohmann::json recs = nlohmann::json::array(), events = nlohmann::json::array();
  for (const Recommendation& r : recommendations_) recs.push_back({r.at_ms, r.replicas});
  for (const ScaleEvent& e : events_) events.push_back({e.at_ms, e.change});
  return {{"recommendations", recs}, {"events", events}};
}

void Autoscaler::Restore(const nlohmann::json& state) {
  recommendations_.clear();
  events_.clear();
  if (!state.is_object()) return;
  auto pairs = [&](const char* key, auto&& add) {
    auto it = state.find(key);
    if (it == state.end() || !it->is_array()) return;
    for (const auto& p : *it)
      if (p.is_array() && p.size() == 2 && p[0].is_number_integer() && p[1].is_number_integer())
        add(p[0].get<int64_t>(), p[1].get<int>());
  };
  pairs("recommendations", [&](int64_t at, int n) { recommendations_.push_back({at, n}); });
  pairs("events", [&](int64_t at, int n) { events_.push_back({at, n}); });
  auto by_time = [](const auto& a, const auto& b) { return a.at_ms < b.at_ms; };
  std::sort(recommendations_.begin(), recommendations_.end(), by_time);
  std::sort(events_.begin(), events_.end(), by_time);
}

}  // namespace plinth::controller
