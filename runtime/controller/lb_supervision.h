// The controller's watch over the workspace's load balancers
// (docs/load-balancing.md, "Under the controller"). Each pass, for every
// HAProxy instance directory <workspace>/lb/<name> that records a spec
// (spec.json, written by apply): when its HAProxy is not running (killed,
// crashed, the machine restarted), start it again from that spec; report
// each instance and its servers in status and metrics. Readiness gating of
// servers during rollouts is the services' TrafficGate, not this.
//
// Apply (create/update/delete of a load_balancer) and this pass serialise
// on LbLock, so a destroyed load balancer is never started again behind the
// destroy's back.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/controller/controller.h"
#include "runtime/metrics/exposition.h"

namespace plinth::controller {

// HAProxy: $PLINTH_HAPROXY, else on PATH, else where Debian installs it
// (/usr/sbin is not on every PATH). nullopt when none is found.
std::optional<std::filesystem::path> FindHaproxy();

// An exclusive flock(2) on <lb_root>/<name>.lock, held while it lives
// (blocking). The lock file stays; it is empty.
class LbLock {
 public:
  LbLock(const std::filesystem::path& lb_root, const std::string& name);
  ~LbLock();
  LbLock(const LbLock&) = delete;
  LbLock& operator=(const LbLock&) = delete;

 private:
  int fd_ = -1;
};

class LoadBalancerSupervision {
 public:
  // `workspace_dir`: .plinth/<ws>.
  explicit LoadBalancerSupervision(std::filesystem::path workspace_dir);

  // One pass: restart what is not running; refresh status.
  TaskResult Pass(int64_t term);

  // [{name, service, running, pid, restarts, last_error, servers: [{id,
  // replica, status, backup, sessions}]}] as of the last pass.
  nlohmann::json Status() const;

  // plinth_lb_up{lb}, plinth_lb_restarts_total{lb},
  // plinth_lb_server_up{lb,server}.
  void Metrics(metrics::Exposition& m) const;

  // The task for the Controller ("load-balancers", status key
  // "load_balancers").
  PeriodicTask Task(std::chrono::milliseconds every);

 private:
  std::filesystem::path workspace_dir_;
  std::map<std::string, int64_t> restarts_;  // by name, since this controller started
  mutable std::mutex mu_;
  nlohmann::json status_ = nlohmann::json::array();
};

}  // namespace plinth::controller
