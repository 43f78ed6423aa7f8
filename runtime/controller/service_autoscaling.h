// Autoscaling services (docs/automation.md, "Autoscaling services"): the
// leading controller measures each autoscaled service's signals per region
// every pass and lets an Autoscaler (autoscale.h) per region decide how many
// replicas it runs; the decision is recorded in the service store
// (ServiceStore::SetScale) and applied through WithScale by whoever drives
// the replicas, so apply never undoes it.
//
// Signals, each a per-replica average over a region's own replicas that
// run now (relocated and surge replicas are left out):
//  * requests_per_second: HTTP responses the load balancers in front of the
//    replica sent (HAProxy's hrsp_* counters; sessions in TCP mode) per
//    second since the previous pass;
//  * in_flight: connections the load balancers hold to it now (scur);
//  * cpu: CPU time (user + system) its process used per second since the
//    previous pass, in cores.
// A signal no load balancer (or no previous pass) can measure is "no data"
// (NaN), and the count stays.
//
// Thread safety: one owner (the controller's supervision task).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/controller/autoscale.h"
#include "runtime/controller/haproxy.h"
#include "runtime/controller/services.h"
#include "runtime/controller/supervisor.h"

namespace plinth::controller {

// The signal names a target may use.
const std::vector<std::string>& ServiceSignals();

// What a scale rule (docs/automation.md, "Scale rules") said at its last
// evaluation: up_when true, down_when true, or neither. `no_data`: neither
// condition could be decided (a query without data): no vote.
struct ScaleVote {
  std::string rule;  // scale_rule.latency
  bool up = false, down = false, no_data = false;
  int64_t at_ms = 0;  // wall time of the evaluation
  std::string region;  // the rule's region: only it counts the vote; empty: every region
  // A rule with `value` and `average` (ScaleValueRule): the value measured
  // (NaN: no data, with no_data) and what each replica should carry.
  double value = NAN;
  double average = 0;
};

// The scale rules' votes by service id: the controller's alert task writes
// them after each evaluation, the service supervision task reads them.
// Thread safe.
class ScaleVotes {
 public:
  void Set(std::map<std::string, std::vector<ScaleVote>> by_service) {
    std::lock_guard lock(mu_);
    by_service_ = std::move(by_service);
  }
  std::vector<ScaleVote> Get(const std::string& service) const {
    std::lock_guard lock(mu_);
    auto it = by_service_.find(service);
    return it == by_service_.end() ? std::vector<ScaleVote>{} : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::vector<ScaleVote>> by_service_;
};

// A vote older than this is no vote (the alert task stopped evaluating).
inline constexpr int64_t kScaleVoteTtlMs = 120'000;

// What a vote asks of a region running `current` replicas: up: at least one
// more and at least 25% more; down: at least one fewer and at least 20%
// fewer (never below 0; the autoscaler's min, stabilization window and rate
// policies still apply). NaN when it asks nothing.
double VotedCount(const ScaleVote& vote, int current);

struct ServiceScaleStep {
  std::map<std::string, int> counts;  // per region, after this pass's decisions
  nlohmann::json state;               // per region, Autoscaler::State
  bool changed = false;
  std::vector<std::string> changes;  // "eu: 2 -> 4: requests_per_second = ..."
  nlohmann::json status;             // per region: replicas, min, max, signals, reason
};

class ServiceAutoscaling {
 public:
  // Decides for `spec` (with its current scale applied: WithScale) at wall
  // time `now_ms`. `load`: per replica id, what the load balancers report
  // (HaproxyGate::Load). `saved`: the store's ScaleState()["autoscalers"],
  // used the first time a region is seen (a new controller continues the
  // history).
  // `votes`: the service's scale rules' last votes (ScaleVotes::Get); each
  // fresh one is a signal of its region (every region when it names none),
  // as a total of VotedCount.
  ServiceScaleStep Step(const ServiceSpec& spec, const Supervisor& supervisor,
                        const std::map<std::string, LbServerState>& load, const nlohmann::json& saved,
                        int64_t now_ms, const std::vector<ScaleVote>& votes = {});

 private:
  struct Sample {
    int64_t at_ms = 0;
    int64_t responses = 0;
    double cpu_s = -1;  // < 0: unknown
    int pid = 0;
  };
  std::map<std::string, Sample> last_;             // by replica id
  std::map<std::string, Autoscaler> autoscalers_;  // by "<service>/<region>"
};

}  // namespace plinth::controller
