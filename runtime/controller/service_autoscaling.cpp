#include "runtime/controller/service_autoscaling.h"

#include "runtime/metrics/proc.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace plinth::controller {

namespace {
using json = nlohmann::json;
}  // namespace

const std::vector<std::string>& ServiceSignals() {
  static const std::vector<std::string> kSignals = {"requests_per_second", "in_flight", "cpu"};
  return kSignals;
}

double VotedCount(const ScaleVote& vote, int current) {
  if (vote.no_data) return NAN;
  if (vote.up) return std::max(current + 1.0, std::ceil(current * 1.25));
  if (vote.down) return std::max(0.0, std::min(current - 1.0, std::floor(current * 0.8)));
  return NAN;
}

ServiceScaleStep ServiceAutoscaling::Step(const ServiceSpec& spec, const Supervisor& supervisor,
                                          const std::map<std::string, LbServerState>& load, const json& saved,
                                          int64_t now_ms, const std::vector<ScaleVote>& votes) {
  ServiceScaleStep out;
  out.state = json::object();
  out.status = json::object();
  if (!spec.autoscale) return out;
  for (const ServiceRegion& region : spec.regions) {
    const int current = CountIn(spec, region);
    out.counts[region.name] = current;
    const std::string key = spec.id + "/" + region.name;
    auto it = autoscalers_.find(key);
    if (it == autoscalers_.end()) {
      it = autoscalers_.emplace(key, Autoscaler(spec.autoscale->spec)).first;
      if (saved.is_object() && saved.contains(region.name)) it->second.Restore(saved[region.name]);
    } else {
      it->second.set_spec(spec.autoscale->spec);
    }
    // A region that is down runs nothing here: no decision, its history kept.
    if (region.down) {
      out.state[region.name] = it->second.State();
      continue;
    }
    // The region's own replicas that run now, measured against the last pass.
    double rps_sum = 0, flight_sum = 0, cpu_sum = 0;
    int rps_n = 0, flight_n = 0, cpu_n = 0;
    for (int i = 0; i < current; ++i) {
      const std::string id = ReplicaId(spec.id, region.name, i);
      auto snap = supervisor.Snapshot(id);
      if (!snap || snap->pid <= 0 || snap->phase != ReplicaPhase::kRunning) {
        last_.erase(id);
        continue;
      }
      Sample now;
      now.at_ms = now_ms;
      now.pid = snap->pid;
      if (auto usage = metrics::ReadProcessUsage(snap->pid, snap->start_time)) now.cpu_s = usage->cpu_seconds;
      auto lb = load.find(id);
      if (lb != load.end()) {
        now.responses = lb->second.responses > 0 ? lb->second.responses : lb->second.total_sessions;
        flight_sum += static_cast<double>(lb->second.current_sessions);
        ++flight_n;
      }
      auto prev = last_.find(id);
      if (prev != last_.end() && prev->second.pid == now.pid && now_ms > prev->second.at_ms) {
        const double dt = (now_ms - prev->second.at_ms) / 1000.0;
        if (lb != load.end() && now.responses >= prev->second.responses) {
          rps_sum += (now.responses - prev->second.responses) / dt;
          ++rps_n;
        }
        if (now.cpu_s >= 0 && prev->second.cpu_s >= 0 && now.cpu_s >= prev->second.cpu_s) {
          cpu_sum += (now.cpu_s - prev->second.cpu_s) / dt;
          ++cpu_n;
        }
      }
      last_[id] = now;
    }
    std::map<std::string, double> values = {
        {"requests_per_second", rps_n ? rps_sum / rps_n : NAN},
        {"in_flight", flight_n ? flight_sum / flight_n : NAN},
        {"cpu", cpu_n ? cpu_sum / cpu_n : NAN},
    };
    std::vector<ScaleSignal> signals;
    json shown = json::object();
    for (const auto& t : spec.autoscale->targets) {
      auto v = values.find(t.signal);
      const double value = v == values.end() ? NAN : v->second;
      signals.push_back({t.signal, value, t.average, true});
      shown[t.signal] = std::isnan(value) ? json(nullptr) : json(std::round(value * 1000) / 1000);
    }
    // Scale rules: a fresh vote is one more signal, as the total it asks for.
    for (const ScaleVote& v : votes) {
      if (!v.region.empty() && v.region != region.name) continue;
      const bool fresh = now_ms - v.at_ms <= kScaleVoteTtlMs;
      if (v.average > 0) {  // a value: replicas = ceil(value / average), with the tolerance
        const bool known = fresh && !v.no_data && std::isfinite(v.value);
        shown[v.rule] = known ? json(std::round(v.value * 1000) / 1000) : json(nullptr);
        if (known) signals.push_back({v.rule, v.value, v.average, false});
        continue;
      }
      const double count = fresh ? VotedCount(v, current) : NAN;
      shown[v.rule] = !fresh || v.no_data ? json(nullptr) : json(v.up ? "up" : v.down ? "down" : "hold");
      if (std::isnan(count)) continue;
      signals.push_back({v.rule + (v.up ? " (up_when true)" : " (down_when true)"), count, 1.0, false});
    }
    const ScaleDecision d = it->second.Decide(current, signals, now_ms);
    out.counts[region.name] = d.desired;
    out.state[region.name] = it->second.State();
    out.status[region.name] = {{"replicas", d.desired},
                               {"min", spec.autoscale->spec.min},
                               {"max", spec.autoscale->spec.max},
                               {"signals", shown},
                               {"reason", d.reason}};
    if (d.changed) {
      out.changed = true;
      out.changes.push_back(region.name + ": " + std::to_string(current) + " -> " +
                            std::to_string(d.desired) + ": " + d.reason);
    }
  }
  // Replicas no longer measured (scaled down, removed) are forgotten.
  for (auto s = last_.begin(); s != last_.end();)
    s = s->second.at_ms == now_ms || s->first.rfind(ReplicaPrefix(spec.id), 0) != 0 ? std::next(s)
                                                                                    : last_.erase(s);
  return out;
}

}  // namespace plinth::controller
