// The replica supervisor (docs/services.md): keeps a set of long-running
// processes ("replicas") up, with Kubernetes' probe and restart semantics,
// across restarts of the controller that drives it.
//
// Input: ReplicaSpecs (Add), the controller's Tick() calls and a Clock.
// Output: the processes themselves, a row per replica in a small SQLite
// database, and a snapshot per replica (phase, readiness, restarts, events).
//
// Invariants:
//  * Every replica is a daemon started through process::StartDaemon, in its
//    own session: it outlives the Supervisor and the controller process. The
//    destructor stops nothing.
//  * A replica is named by pid + ProcessStartTime; a reused pid is not the
//    replica, and every signal goes through process::SignalGroupMembers with
//    that start time, so nothing else is ever signalled.
//  * The database records {id, pid, start_time, restarts, last_start,
//    backoff, next_start, started, stopped, spec digest}, never argv or env
//    (env may hold secrets). A new Supervisor on the same database adopts a
//    recorded replica whose process is still alive when its spec is Added
//    again: it is not restarted.
//  * All time decisions read the Clock; Tick never sleeps (probes run on
//    their own threads, bounded by their timeouts; stops are escalated by
//    later Ticks).
//  * Level-triggered: each Tick compares what should run with what runs and
//    acts on the difference; any Tick may be repeated.
//
// Thread safety: all public methods may be called from any thread (one
// mutex); Tick is serialised with itself and does not hold the mutex while
// probes run, so Snapshot answers during a slow probe. Only one Supervisor
// should Tick on one database at a time (the controller holds the lease).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/controller/clock.h"
#include "runtime/controller/probe.h"

struct sqlite3;

namespace plinth::controller {

struct ReplicaSpec {
  std::string id;                          // [A-Za-z0-9._-], unique in the Supervisor
  std::vector<std::string> argv;           // argv[0]: a path, or a name looked up on env's PATH
  std::map<std::string, std::string> env;  // the whole environment; secrets allowed, never logged
  std::filesystem::path cwd;               // empty: the controller's working directory
  int port = 0;                            // the port it serves (0: none); informational here
  std::string host = "127.0.0.1";          // the address its probes connect to (an IP literal)
  // A network namespace (`ip netns` name) to run it in: started as
  // `ip netns exec NETNS argv...` (ip execs argv, so the pid and start time
  // are the replica's). Empty: the root namespace. Probes still run from
  // the root namespace against host:port.
  std::string netns{};
  // A Unix user to run it as (its primary group; no supplementary groups).
  // Changing users needs Plinth to run as root; otherwise the start fails
  // with that reason. Empty: Plinth's own user.
  std::string user{};
  std::filesystem::path log_file;  // required: stdout and stderr appended here (mode 0600)
  // Optional probes. startup gates the other two: until it succeeds neither
  // runs, and its failure restarts the replica. liveness failure restarts
  // it. readiness only decides Ready().
  std::optional<ProbeSpec> liveness, readiness, startup;
};

// "" when `spec` can be supervised, else what is wrong (one line).
std::string ValidateReplica(const ReplicaSpec& spec);

enum class ReplicaPhase {
  kStarting,     // running, its startup probe has not succeeded yet
  kRunning,      // running (startup done)
  kTerminating,  // SIGTERM sent to its group; SIGKILL at the grace deadline
  kBackoff,      // not running; the next start waits for the back-off
  kStopped,      // stopped on request (Stop); Start resumes it
  kUnmanaged,    // recorded in the database but not Added (yet): left as it is
};
std::string_view ReplicaPhaseName(ReplicaPhase p);

struct ReplicaEvent {
  int64_t at_ms = 0;  // wall clock (Clock::WallMs)
  std::string text;   // one line, no secrets
};

struct ReplicaSnapshot {
  std::string id;
  ReplicaPhase phase = ReplicaPhase::kBackoff;
  pid_t pid = 0;             // 0 when not running
  uint64_t start_time = 0;   // ProcessStartTime of pid
  bool ready = false;        // what a load balancer should route by
  int64_t ready_for_ms = 0;  // how long it has been ready as of the last Tick (0: not ready)
  ProbeState liveness = ProbeState::kUnknown, readiness = ProbeState::kUnknown,
             startup = ProbeState::kUnknown;
  int restarts = 0;                  // starts after the first one
  int64_t last_start_ms = 0;         // wall clock of the last start, 0 never
  int64_t backoff_ms = 0;            // the delay before the next restart after an exit
  int64_t next_start_ms = 0;         // wall clock of the pending restart, 0 none
  std::string last_error;            // the last reason it stopped or could not start
  std::vector<ReplicaEvent> events;  // oldest first, at most Options::max_events
};

// The snapshot as JSON for status (docs/services.md): {id, phase, pid,
// start_time, ready, liveness, readiness, startup, restarts, last_start_ms,
// backoff_ms, next_start_ms, last_error, events: [{at_ms, text}]}.
nlohmann::json SnapshotJson(const ReplicaSnapshot& s);

class Supervisor {
 public:
  struct Options {
    std::chrono::milliseconds initial_backoff{10'000};  // CrashLoopBackOff: 10 s,
    std::chrono::milliseconds max_backoff{300'000};     // doubling to 300 s,
    std::chrono::milliseconds backoff_reset{600'000};   // reset after 10 min healthy
    std::chrono::milliseconds stop_grace{10'000};       // SIGTERM ... SIGKILL
    size_t max_events = 32;                             // per replica
    // Called from Tick (outside the mutex) when a replica's readiness
    // changes, and when a ready replica is removed (ready = false).
    std::function<void(const std::string& id, bool ready)> on_ready_change;
  };

  // Opens (creating with mode 0600, its folder 0700) the database at `db`
  // and loads its records: each is kUnmanaged until Added. `clock` must
  // outlive the Supervisor. Null with *error when the database cannot be used.
  static std::unique_ptr<Supervisor> Open(const std::filesystem::path& db, Clock& clock, Options options,
                                          std::string* error);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Supervises `spec` from the next Tick. A recorded replica of the same id
  // whose process is alive is adopted (not restarted) when its recorded spec
  // digest matches; with another digest the old process is replaced. False
  // with *error for an invalid spec or an id already Added.
  bool Add(ReplicaSpec spec, std::string* error);

  // Replaces the spec of an Added replica: a changed argv, cwd, port, log
  // file or env restarts it; probes alone are swapped in place.
  bool Update(ReplicaSpec spec, std::string* error);

  // Adopts a replica recorded but not Added (kUnmanaged) whose process is
  // alive and was started from exactly `spec` (same digest), like Add would;
  // false and no change otherwise. Lets a new driver take over replicas that
  // run an older spec than the one it is about to roll out, instead of
  // restarting them all at once (ReconcileService's `previous`).
  bool Adopt(ReplicaSpec spec);

  // Stops the replica (SIGTERM to its group, SIGKILL after stop_grace, both
  // from Tick) and keeps it stopped, also for a later Supervisor, until Start.
  bool Stop(const std::string& id, std::string* error);
  bool Start(const std::string& id, std::string* error);

  // Stops the replica like Stop, then forgets it: its row is deleted once
  // its process is gone. Works on kUnmanaged records too.
  bool Remove(const std::string& id, std::string* error);

  // One reconcile pass: notices exits, runs due probes (in parallel, each
  // bounded by its timeout), restarts with back-off, escalates stops, starts
  // what should run, records the changes. Never throws.
  void Tick();

  // Whether the replica of spec.id is Added with exactly `spec`: the same
  // process (argv, env, cwd, port, log file: the digest) and the same
  // probes. A caller that reconciles often calls Update only when not, since
  // Update restarts the probes even when nothing changed.
  bool Unchanged(const ReplicaSpec& spec) const;

  bool Ready(const std::string& id) const;
  std::optional<ReplicaSnapshot> Snapshot(const std::string& id) const;
  std::vector<ReplicaSnapshot> Snapshots() const;  // by id
  // Ids recorded in the database that are not Added: the controller decides
  // whether to Add or Remove them.
  std::vector<std::string> Unmanaged() const;

 private:
  struct Replica;
  Supervisor(sqlite3* db, Clock& clock, Options options);
  bool Load(std::string* error);
  void Save(Replica& r);
  void Forget(const std::string& id);
  void Event(Replica& r, std::string text);
  void StartReplica(Replica& r);
  void BeginStop(Replica& r, const std::string& why);
  void Exited(Replica& r, const std::string& why, bool keep_error);
  void ResetProbes(Replica& r, Clock::TimePoint now);
  ReplicaSnapshot SnapshotOf(const Replica& r) const;
  bool ReadyOf(const Replica& r) const;

  sqlite3* db_;
  Clock& clock_;
  Options options_;
  mutable std::mutex mu_;
  std::mutex tick_mu_;
  std::map<std::string, std::unique_ptr<Replica>> replicas_;
  // Readiness changes made outside Tick (Remove), reported by the next Tick.
  std::vector<std::pair<std::string, bool>> pending_ready_;
};

}  // namespace plinth::controller
