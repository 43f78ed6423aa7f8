// The load balancers in front of a service, seen from its replicas
// (docs/services.md, "Rolling updates"). ReconcileService asks a TrafficGate
// before it replaces or removes a replica, and before it moves on to the
// next one:
//  * Drain: the load balancers send the replica no new request; it is
//    replaced once none holds a connection to it (or a drain limit passed);
//  * InRotation: a new replica counts as back only when every load balancer
//    in front of it reports it UP, not merely when Plinth's own readiness
//    probe passed (the two check independently);
//  * Admit: a replica with its current spec and ready is put back into
//    rotation wherever it was drained (a drain left by an interrupted
//    rollout is undone by the next pass).
// Not thread-safe: one reconcile loop owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/controller/clock.h"
#include "runtime/controller/haproxy.h"

namespace plinth::controller {

class TrafficGate {
 public:
  virtual ~TrafficGate() = default;
  // Reads what the load balancers report now; ReconcileService calls it
  // once per pass, before the questions below.
  virtual void Refresh() = 0;
  // Whether every load balancer that lists `replica_id` reports it UP and
  // not drained. True when none lists it or none runs.
  virtual bool InRotation(const std::string& replica_id) = 0;
  // Asks every load balancer that lists `replica_id` to drain it; true once
  // none holds a connection to it (as of the last Refresh) or the drain
  // limit has passed since the first call. True at once when none lists it.
  virtual bool Drain(const std::string& replica_id) = 0;
  // Puts `replica_id` back into rotation where it is not (admin state ready).
  virtual void Admit(const std::string& replica_id) = 0;
};

// The HAProxy instances of a workspace (<workspace>/lb/<name>, each with its
// spec.json) whose spec names `service_id`. HAProxy's admin socket answers
// the questions; an instance that is not running is left out (it gates
// nothing until apply or the controller restarts it).
class HaproxyGate : public TrafficGate {
 public:
  HaproxyGate(std::filesystem::path lb_root, std::string service_id, const Clock& clock,
              std::chrono::milliseconds drain_limit = std::chrono::seconds(30));
  ~HaproxyGate() override;

  void Refresh() override;
  bool InRotation(const std::string& replica_id) override;
  bool Drain(const std::string& replica_id) override;
  void Admit(const std::string& replica_id) override;

  // How many load balancers gate the service (after the last Refresh).
  size_t size() const { return lbs_.size(); }
  // Per replica, what the load balancers report (as of the last Refresh),
  // counters summed over them: sessions, responses; `up` when any reports it UP.
  std::map<std::string, LbServerState> Load() const;

 private:
  struct Lb {
    std::unique_ptr<HaproxyInstance> instance;
    std::map<std::string, LbServerState> by_replica;  // as of the last Refresh
    std::map<std::string, std::string> backend_of;    // replica id -> backend id
  };
  std::filesystem::path lb_root_;
  std::string service_id_;
  const Clock& clock_;
  std::chrono::milliseconds drain_limit_;
  std::vector<Lb> lbs_;
  std::map<std::string, Clock::TimePoint> draining_since_;
};

}  // namespace plinth::controller
