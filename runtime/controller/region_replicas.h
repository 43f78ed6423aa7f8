// The replicas of one region as the supervisor's database records them, for
// `plinth region fail|recover` without network namespaces (the fallback:
// the region's replicas are frozen with SIGSTOP and continued with SIGCONT;
// docs/services.md, "Regions that fail").
//
// Input: <workspace>/controller/replicas.db (runtime/controller/supervisor.h),
// opened read-only; nothing is written to it. Output: the live replicas of a
// region, and signals to them.
//
// Invariants: a replica is its recorded pid together with its recorded start
// time (process::ProcessStartTime); a process that merely reuses the pid is
// never signalled, and every signal goes through process::SignalGroupMembers
// (the replica is its own session and group).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace plinth::controller {

struct RecordedReplica {
  std::string id;  // "<service>.<region>.<i>"
  pid_t pid = 0;
  uint64_t start_time = 0;
};

// The region of a replica id "<service>.<region>.<i>" (services.h,
// ReplicaPrefix and ReplicaSpecsFor), "" when `id` is not of that form. A
// service id has no '.', so the region is what lies between the first and
// the last '.'.
std::string RegionOfReplicaId(const std::string& id);

// The replicas of `region` recorded in `db` whose process is alive with the
// recorded start time. No database: none (true). False with *error when the
// database cannot be read.
bool LiveReplicasOf(const std::filesystem::path& db, const std::string& region,
                    std::vector<RecordedReplica>* out, std::string* error);

// Sends `sig` to each replica's group (pid + start time verified); how many
// replicas were signalled.
int SignalReplicas(const std::vector<RecordedReplica>& replicas, int sig);

}  // namespace plinth::controller
