#include "runtime/controller/alerts.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

namespace plinth::controller {

const char* AlertPhaseName(AlertPhase p) {
  switch (p) {
    case AlertPhase::Pending: return "pending";
    case AlertPhase::Firing: return "firing";
    case AlertPhase::Resolved: return "resolved";
  }
  return "?";
}

std::string Fingerprint(const Labels& labels) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0;
    h *= 1099511628211ull;  // the NUL separator
  };
  for (const auto& [k, v] : labels) {  // std::map: sorted by name
    mix(k);
    mix(v);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

AlertSet::AlertSet(AlertRule rule) : rule_(std::move(rule)) {}

Labels AlertSet::InstanceLabels(const Labels& series) const {
  Labels out = series;
  for (const auto& [k, v] : rule_.labels) out[k] = v;
  out["alertname"] = rule_.name;
  if (!rule_.severity.empty()) out["severity"] = rule_.severity;
  return out;
}

void AlertSet::Evaluate(const std::vector<Labels>& active, int64_t now_ms) {
  now_ms = std::max(now_ms, last_now_);
  last_now_ = now_ms;
  std::set<std::string> seen;
  for (const Labels& series : active) {
    Labels labels = InstanceLabels(series);
    std::string fp = Fingerprint(labels);
    if (!seen.insert(fp).second) continue;
    auto it = instances_.find(fp);
    if (it != instances_.end() && it->second.alert.phase == AlertPhase::Resolved) {
      instances_.erase(it);  // a new streak
      it = instances_.end();
    }
    if (it == instances_.end()) {
      Instance in;
      in.alert.name = rule_.name;
      in.alert.labels = std::move(labels);
      in.alert.annotations = rule_.annotations;
      in.alert.severity = rule_.severity;
      in.alert.fingerprint = fp;
      in.alert.active_at_ms = now_ms;
      in.alert.phase = AlertPhase::Pending;
      it = instances_.emplace(fp, std::move(in)).first;
    }
    Instance& in = it->second;
    in.inactive_since_ms = 0;
    if (in.alert.phase == AlertPhase::Pending && now_ms - in.alert.active_at_ms >= rule_.for_ms) {
      in.alert.phase = AlertPhase::Firing;
      in.alert.starts_at_ms = now_ms;
    }
  }
  for (auto it = instances_.begin(); it != instances_.end();) {
    Instance& in = it->second;
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    switch (in.alert.phase) {
      case AlertPhase::Pending: it = instances_.erase(it); continue;
      case AlertPhase::Firing:
        if (in.inactive_since_ms == 0) in.inactive_since_ms = now_ms;
        if (now_ms - in.inactive_since_ms >= rule_.keep_firing_for_ms) {
          in.alert.phase = AlertPhase::Resolved;
          in.alert.ends_at_ms = now_ms;
        }
        break;
      case AlertPhase::Resolved:
        if (now_ms - in.alert.ends_at_ms >= rule_.resolved_retention_ms) {
          it = instances_.erase(it);
          continue;
        }
        break;
    }
    ++it;
  }
}

nlohmann::json AlertSet::State() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [fp, in] : instances_)
    out.push_back({{"labels", in.alert.labels},
                   {"phase", AlertPhaseName(in.alert.phase)},
                   {"active_at_ms", in.alert.active_at_ms},
                   {"starts_at_ms", in.alert.starts_at_ms},
                   {"ends_at_ms", in.alert.ends_at_ms},
                   {"inactive_since_ms", in.inactive_since_ms}});
  return out;
}

void AlertSet::Restore(const nlohmann::json& state) {
  instances_.clear();
  if (!state.is_array()) return;
  for (const nlohmann::json& j : state) {
    if (!j.is_object() || !j.contains("labels") || !j["labels"].is_object()) continue;
    Instance in;
    try {
      in.alert.labels = j["labels"].get<Labels>();
    } catch (const nlohmann::json::exception&) {
      continue;
    }
    const std::string phase = j.value("phase", "");
    if (phase == "pending") in.alert.phase = AlertPhase::Pending;
    else if (phase == "firing") in.alert.phase = AlertPhase::Firing;
    else if (phase == "resolved") in.alert.phase = AlertPhase::Resolved;
    else continue;
    in.alert.name = rule_.name;
    in.alert.annotations = rule_.annotations;
    in.alert.severity = rule_.severity;
    in.alert.fingerprint = Fingerprint(in.alert.labels);
    in.alert.active_at_ms = j.value("active_at_ms", int64_t{0});
    in.alert.starts_at_ms = j.value("starts_at_ms", int64_t{0});
    in.alert.ends_at_ms = j.value("ends_at_ms", int64_t{0});
    in.inactive_since_ms = j.value("inactive_since_ms", int64_t{0});
    last_now_ = std::max({last_now_, in.alert.active_at_ms, in.alert.starts_at_ms, in.alert.ends_at_ms});
    instances_[in.alert.fingerprint] = std::move(in);
  }
}

std::vector<Alert> AlertSet::Alerts() const {
  std::vector<Alert> out;
  out.reserve(instances_.size());
  for (const auto& [fp, in] : instances_) out.push_back(in.alert);
  return out;
}

std::vector<Alert> AlertSet::Notifiable() const {
  std::vector<Alert> out;
  for (const auto& [fp, in] : instances_)
    if (in.alert.phase != AlertPhase::Pending) out.push_back(in.alert);
  return out;
}

}  // namespace plinth::controller
