#include "runtime/controller/traffic_gate.h"

#include <system_error>

namespace plinth::controller {

namespace fs = std::filesystem;

HaproxyGate::HaproxyGate(fs::path lb_root, std::string service_id, const Clock& clock,
                         std::chrono::milliseconds drain_limit)
    : lb_root_(std::move(lb_root)),
      service_id_(std::move(service_id)),
      clock_(clock),
      drain_limit_(drain_limit) {}

HaproxyGate::~HaproxyGate() = default;

void HaproxyGate::Refresh() {
  lbs_.clear();
  std::error_code ec;
  for (fs::directory_iterator it(lb_root_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!fs::exists(it->path() / "spec.json")) continue;
    // The executable is not needed: the gate only talks to the admin socket.
    auto instance = std::make_unique<HaproxyInstance>(it->path(), "haproxy");
    const auto& spec = instance->spec();
    if (!spec || spec->service != service_id_ || !instance->Running()) continue;
    Lb lb;
    for (const LbBackend& b : spec->backends)
      if (!b.replica.empty()) lb.backend_of[b.replica] = b.id;
    std::vector<LbServerState> states;
    // A socket that does not answer gates nothing this pass.
    if (instance->ServerStates(&states)) continue;
    for (LbServerState& s : states) {
      for (const auto& [replica, backend] : lb.backend_of)
        if (backend == s.backend_id) lb.by_replica[replica] = s;
    }
    lb.instance = std::move(instance);
    lbs_.push_back(std::move(lb));
  }
}

bool HaproxyGate::InRotation(const std::string& replica_id) {
  for (const Lb& lb : lbs_) {
    auto it = lb.by_replica.find(replica_id);
    if (it == lb.by_replica.end()) continue;
    const LbServerState& s = it->second;
    if (!s.up || s.admin != ServerAdmin::kReady || s.status.rfind("UP", 0) != 0) return false;
  }
  return true;
}

bool HaproxyGate::Drain(const std::string& replica_id) {
  auto [since, fresh] = draining_since_.emplace(replica_id, clock_.Now());
  bool drained = true;
  for (Lb& lb : lbs_) {
    auto b = lb.backend_of.find(replica_id);
    auto s = lb.by_replica.find(replica_id);
    if (b == lb.backend_of.end() || s == lb.by_replica.end()) continue;
    const bool drained_now = s->second.admin == ServerAdmin::kDrain;
    // HAProxy reports a drained server that is down by its check as DOWN:
    // it takes no traffic either way, but it is drained only once set so.
    if (!drained_now) lb.instance->SetServerState(b->second, ServerAdmin::kDrain);
    // What this pass read predates the first drain: wait for the next Refresh.
    if (fresh || (!drained_now && s->second.up) || s->second.current_sessions > 0) drained = false;
  }
  if (drained || clock_.Now() - since->second >= drain_limit_) {
    draining_since_.erase(replica_id);
    return true;
  }
  return false;
}

void HaproxyGate::Admit(const std::string& replica_id) {
  draining_since_.erase(replica_id);
  for (Lb& lb : lbs_) {
    auto b = lb.backend_of.find(replica_id);
    auto s = lb.by_replica.find(replica_id);
    if (b == lb.backend_of.end() || s == lb.by_replica.end()) continue;
    // A server that is down by its check but not drained needs nothing:
    // HAProxy takes it back when the check passes. One drained, or down
    // while drained (HAProxy then reports DOWN), is set ready.
    if (s->second.admin == ServerAdmin::kReady && s->second.up) continue;
    lb.instance->SetServerState(b->second, ServerAdmin::kReady);
  }
}

std::map<std::string, LbServerState> HaproxyGate::Load() const {
  std::map<std::string, LbServerState> out;
  for (const Lb& lb : lbs_) {
    for (const auto& [replica, state] : lb.by_replica) {
      auto [it, fresh] = out.emplace(replica, state);
      if (fresh) continue;
      it->second.current_sessions += state.current_sessions;
      it->second.total_sessions += state.total_sessions;
      it->second.responses += state.responses;
      it->second.up = it->second.up || state.up;
    }
  }
  return out;
}

}  // namespace plinth::controller
