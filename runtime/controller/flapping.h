// Flapping replicas (docs/automation.md, "Flapping replicas"): counting a
// replica's restarts over a sliding window, and the controller's decision
// to move a flapping replica to another region for a while (a service with
// flapping.remedy = "move") and to bring it home when its hold ends.
//
// Input: the Supervisor's snapshots (their cumulative restart counters), the
// service's running spec (RunningSpec) and the moves the store records.
// Output: the moves to record (ServiceStore::SetMoved) and what changed, for
// the controller's log and `plinth history`.
//
// Invariants: only a replica in its own region (not a relocated or surge
// one) is counted and moved; a region with no other region up to take it
// keeps its replica (it goes on restarting with back-off); a move lasts
// `hold` and is then dropped, so the replica comes home.
//
// Thread safety: a FlapTracker is used by one thread (the controller's loop).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "runtime/controller/services.h"
#include "runtime/controller/supervisor.h"

namespace plinth::controller {

class FlapTracker {
 public:
  // Replica `id` has been restarted `restarts` times in all (the
  // Supervisor's counter) as seen at `now_ms`: each increase since the last
  // observation counts as restarts at `now_ms`. Returns how many fall within
  // the last `within_ms`. The first observation of an id counts nothing (its
  // earlier restarts have no time); a counter that went down (a new replica
  // record) starts over.
  int Observe(const std::string& id, int restarts, int64_t now_ms, int64_t within_ms);
  // Forgets `id`'s history (it moved, or is gone).
  void Forget(const std::string& id);

 private:
  struct History {
    int last = 0;
    std::deque<int64_t> at;
  };
  std::map<std::string, History> history_;
};

struct FlapDecision {
  std::vector<MovedReplica> moved;    // what the store should record now
  std::vector<MovedReplica> started;  // moves that begin in this pass
  std::vector<MovedReplica> ended;    // moves whose hold ended (or that no longer apply)
  bool Changed() const { return !started.empty() || !ended.empty(); }
};

// One pass for service `spec` (its RunningSpec, so moved replicas are
// marked): `recorded` are the store's moves, `snapshots` the service's
// replicas (ServiceReplicas). A home replica restarted flapping.restarts
// times within flapping.within moves to MoveTarget for flapping.hold; a move
// whose hold ended at `now_ms`, whose region is gone or down, or of a service
// whose remedy is no longer "move", ends.
FlapDecision DecideFlapping(const ServiceSpec& spec, const std::vector<MovedReplica>& recorded,
                            const std::vector<ReplicaSnapshot>& snapshots, FlapTracker& tracker, int64_t now_ms);

// "10m", "90s", "2h": a duration in seconds for messages.
std::string ShortDuration(int64_t seconds);

}  // namespace plinth::controller
