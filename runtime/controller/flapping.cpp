#include "runtime/controller/flapping.h"

#include <algorithm>
#include <cstdlib>

namespace plinth::controller {

int FlapTracker::Observe(const std::string& id, int restarts, int64_t now_ms, int64_t within_ms) {
  auto [it, fresh] = history_.try_emplace(id);
  History& h = it->second;
  if (fresh || restarts < h.last) {
    h.last = restarts;
    h.at.clear();
    return 0;
  }
  // At most as many as could matter: a burst far above any threshold adds no information.
  for (int i = h.last; i < restarts && h.at.size() < 1000; ++i) h.at.push_back(now_ms);
  h.last = restarts;
  while (!h.at.empty() && h.at.front() <= now_ms - within_ms) h.at.pop_front();
  return static_cast<int>(h.at.size());
}

void FlapTracker::Forget(const std::string& id) {
  history_.erase(id);
}

std::string ShortDuration(int64_t seconds) {
  if (seconds > 0 && seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds > 0 && seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

namespace {

// Region and index of a replica id "<service>.<region>.<i>" of `spec`; false
// when it is not of that form.
bool SplitReplicaId(const ServiceSpec& spec, const std::string& id, std::string* region, int* index) {
  const std::string prefix = ReplicaPrefix(spec.id);
  if (id.rfind(prefix, 0) != 0) return false;
  const std::string rest = id.substr(prefix.size());
  const size_t dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0) return false;
  char* end = nullptr;
  const long i = std::strtol(rest.c_str() + dot + 1, &end, 10);
  if (end == rest.c_str() + dot + 1 || *end != '\0' || i < 0) return false;
  *region = rest.substr(0, dot);
  *index = static_cast<int>(i);
  return true;
}

}  // namespace

FlapDecision DecideFlapping(const ServiceSpec& spec, const std::vector<MovedReplica>& recorded,
                            const std::vector<ReplicaSnapshot>& snapshots, FlapTracker& tracker, int64_t now_ms) {
  FlapDecision d;
  const bool moves = spec.flapping && spec.flapping->move;
  auto region_of = [&](const std::string& name) -> const ServiceRegion* {
    for (const ServiceRegion& r : spec.regions)
      if (r.name == name) return &r;
    return nullptr;
  };
  for (const MovedReplica& m : recorded) {
    const ServiceRegion* r = region_of(m.region);
    if (!moves || m.until_ms <= now_ms || !r || r->down || !r->moved.count(m.index))
      d.ended.push_back(m);
    else
      d.moved.push_back(m);
  }
  if (!moves) return d;
  const FlappingSpec& f = *spec.flapping;
  for (const ReplicaSnapshot& s : snapshots) {
    std::string region;
    int index = 0;
    if (!SplitReplicaId(spec, s.id, &region, &index)) continue;
    const ServiceRegion* r = region_of(region);
    // Only a replica of its own region, inside its count: not surge, not relocated.
    if (!r || r->down || index >= CountIn(spec, *r) || r->moved.count(index)) continue;
    const int n = tracker.Observe(s.id, s.restarts, now_ms, int64_t{f.within_s} * 1000);
    if (n < f.restarts) continue;
    const std::string to = MoveTarget(spec, region);
    if (to.empty()) continue;  // nowhere to go: it restarts where it is
    MovedReplica m{region, index, to, now_ms, now_ms + int64_t{f.hold_s} * 1000,
                   "restarted " + std::to_string(n) + " times in " + ShortDuration(f.within_s)};
    d.started.push_back(m);
    d.moved.push_back(std::move(m));
    tracker.Forget(s.id);
  }
  return d;
}

}  // namespace plinth::controller
