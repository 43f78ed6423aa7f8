// Services as the runtime keeps them (docs/services.md): the desired state
// that `plinth apply` hands over and the controller realises, and the one
// reconcile step both use to turn a service into supervised replicas.
//
// Input: ServiceSpecs (from the local provider's planned values) and their
// secret values. Output: rows in `<dir>/services.db` (SQLite, mode 0600; the
// secrets sealed with the workspace key, never in plain text) and
// ReplicaSpecs added to a Supervisor.
//
// Replicas: replica i (0-based) of a service in region R has the id
// "<service>.<R>.<i>", listens on R.host at port + i, gets PORT, PLINTH_HOST,
// PLINTH_REGION, PLINTH_REPLICA, PLINTH_SERVICE, PLINTH_BUCKET_<NAME>, then
// the service's env and its secrets, in its environment, writes its output to
// `<dir>/logs/<replica id>.log` and runs in the service's working directory.
// A region marked down gets no replicas (its replicas are removed).
//
// Who writes what: apply (the local provider) writes the services' specs;
// the holder of the workspace's controller lease (the leading controller, or
// apply while no controller leads) drives the replicas with ReconcileService
// / RemoveServiceReplicas, marks a converged generation stable and rolls a
// failed rollout back to it (docs/controller.md, "Apply and the controller").
//
// Thread safety: a ServiceStore may be used from several threads (one
// connection, serialised); the functions are stateless.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/compute/spec.h"
#include "runtime/controller/autoscale.h"
#include "runtime/controller/maintenance.h"
#include "runtime/controller/probe.h"
#include "runtime/controller/supervisor.h"
#include "runtime/controller/traffic_gate.h"

struct sqlite3;

namespace plinth::controller {

struct ServiceRegion {
  std::string name;
  std::string host = "127.0.0.1";
  bool down = false;
  std::string netns{};  // the region's network namespace; empty: the root namespace
  int replicas = -1;    // what the autoscaler decided for the region (WithScale); -1: the spec's replicas
  // Indices of this region's replicas that flapped and run in another region
  // for now (WithMoved); never recorded in the spec.
  std::set<int> moved{};
};

// `flapping { ... }` of a service (docs/automation.md, "Flapping
// replicas"): a replica restarted `restarts` times within `within_s` is
// flapping; ReplicaFlapping fires, and with `move` the controller runs it in
// another region (its relocation block there) for `hold_s`, then home.
struct FlappingSpec {
  int restarts = 3;
  int within_s = 600;
  bool move = false;  // remedy = "move"; false: "alert"
  int hold_s = 1800;
};

// A replica the controller moved away from its region because it flapped
// (ServiceStore::Moved): replica `index` of `region` runs in `to` until
// `until_ms` (wall clock), when it goes home.
struct MovedReplica {
  std::string region;
  int index = 0;
  std::string to;
  int64_t since_ms = 0, until_ms = 0;
  std::string reason;  // "restarted 3 times in 10m"
};

// `autoscale { ... }` of a service (docs/automation.md, "Autoscaling
// services"): per region, the controller keeps between spec.min and
// spec.max replicas by the targets' per-replica averages.
struct ServiceAutoscale {
  AutoscaleSpec spec;
  struct Target {
    std::string signal;  // "requests_per_second", "in_flight" or "cpu" (ServiceSignals)
    double average = 0;  // wanted per replica, > 0
  };
  std::vector<Target> targets;
};

// `window = maintenance_window.X` of a service (docs/services.md,
// "Changes inside a maintenance window"): a change that replaces replicas
// waits in the store (ServiceStore::Stage) until the window opens.
using ServiceWindow = NamedWindow;

// Whether `w` is open at `now_s` (PLINTH_IGNORE_WINDOWS=1: always); nullopt
// with *error when its zone cannot be loaded.
inline std::optional<WindowDecision> DecideServiceWindow(const ServiceWindow& w, int64_t now_s,
                                                         std::string* error) {
  return DecideNamedWindow(w, now_s, error);
}

struct ServiceSpec {
  std::string id;       // the service's name: [A-Za-z0-9_-]
  std::string address;  // "service.api", for messages
  std::vector<ServiceRegion> regions;
  int replicas = 1;  // per region
  int port = 0;      // replica i listens on port + i
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::vector<std::string> secret_names;  // sorted; their values are kept apart
  std::filesystem::path cwd;              // the configuration's directory
  std::vector<compute::BucketAccess> buckets;
  // Port 0 in a probe: the replica's own port.
  std::optional<ProbeSpec> liveness, readiness, startup;
  std::string version;  // opaque; a change replaces every replica
  // The rolling update, per region: at most max_unavailable replicas out of
  // service at once; max_surge extra replicas of the new spec (indices
  // replicas.., ports port + replicas..) while it lasts. Not both 0.
  int max_unavailable = 1;
  int max_surge = 0;
  // How long a replica of a new spec may take to become ready before the
  // rollout counts as failed (the service's ready_timeout).
  int ready_timeout_s = 60;
  std::string user;  // the Unix user the replicas run as; empty: Plinth's
  // on_region_failure = "relocate": a down region's replicas run in the
  // first region of `regions` that is up (RelocationSlot) until it recovers.
  bool relocate = false;
  std::optional<FlappingSpec> flapping;
  std::optional<ServiceAutoscale> autoscale;
  std::optional<ServiceWindow> window;
};

// Whether going from `a` to `b` replaces replicas' processes (a changed
// command, environment, secret names, version, port, user, working
// directory or bucket grants). Changed secret values are the caller's to compare.
// Counts, probes, rollout numbers, the autoscaler and the window do not.
bool ReplacesReplicas(const ServiceSpec& a, const ServiceSpec& b);

// How many replica indices each region lays out: the autoscaler's max with
// autoscale (at least replicas), else replicas. Surge and relocation
// indices come after them, so they never move when the count does.
int Slots(const ServiceSpec& spec);
// How many replicas `region` runs: its scaled count (WithScale), else replicas.
int CountIn(const ServiceSpec& spec, const ServiceRegion& region);
// `spec` with each region's scaled count (ServiceStore::Scale), kept within
// the autoscaler's [min, max]; unchanged without autoscale.
ServiceSpec WithScale(ServiceSpec spec, const std::map<std::string, int>& counts);

nlohmann::json ServiceJson(const ServiceSpec& s);
ServiceSpec ServiceFromJson(const nlohmann::json& j);

// Whether regions keep relocation blocks (ports after the surge) for the
// replicas of others: on_region_failure = "relocate" or flapping's remedy "move".
bool HasRelocationBlocks(const ServiceSpec& spec);

// `spec` with each moved replica (ServiceStore::Moved) whose region is up
// and whose hold has not ended at `now_ms` marked in its region's `moved`;
// unchanged unless flapping's remedy is "move".
ServiceSpec WithMoved(ServiceSpec spec, const std::vector<MovedReplica>& moved, int64_t now_ms);

// Where a replica of `from` moves while it flaps: the first region of
// `regions` other than it that is up; "" when there is none.
std::string MoveTarget(const ServiceSpec& spec, const std::string& from);

// The replicas `spec` should run now (regions not down, moved replicas left
// out), in region order then index, then the relocated ones (RelocatedSpecsFor).
// `secrets` are added to each environment.
std::vector<ReplicaSpec> ReplicaSpecsFor(const ServiceSpec& spec,
                                         const std::map<std::string, std::string>& secrets,
                                         const std::filesystem::path& logs_dir);

// The extra replicas a rollout runs (max_surge per region not down: indices
// replicas .. replicas + max_surge - 1), in region order then index.
std::vector<ReplicaSpec> SurgeSpecsFor(const ServiceSpec& spec,
                                       const std::map<std::string, std::string>& secrets,
                                       const std::filesystem::path& logs_dir);

// With spec.relocate, the replicas of each down region F run in the first
// region H of `regions` that is up (none when every region is down). Each
// region keeps a block of `replicas` relocation indices per other region,
// after the replicas and the surge: F's replica i runs in H as replica
// RelocationIndex(spec, H, F) + i, on H's host at port + that index, with
// PLINTH_REGION=H and PLINTH_RELOCATED_FROM=F in its environment. In region
// order of F, then i. A moved replica i of an up region F (WithMoved) runs
// the same way in MoveTarget(F), with PLINTH_MOVED=flapping too.
std::vector<ReplicaSpec> RelocatedSpecsFor(const ServiceSpec& spec,
                                           const std::map<std::string, std::string>& secrets,
                                           const std::filesystem::path& logs_dir);

// The first relocation index in region `host` for replicas of region
// `from`: replicas + max_surge + k * replicas, k the position of `from`
// among the regions other than `host` (in `regions` order). -1 when either
// is not one of the service's regions or they are the same.
int RelocationIndex(const ServiceSpec& spec, const std::string& host, const std::string& from);

// The region whose replicas replica `id` ("<service>.<H>.<i>") stands in
// for, when i is a relocation index of H; "" otherwise.
std::string RelocatedFrom(const ServiceSpec& spec, const std::string& id);

// How many ports from `port` each region must offer: replicas, surge and,
// with relocate, a block of replicas per other region.
int PortSlots(const ServiceSpec& spec);

// `spec` with every region named in `failed` (FailedRegions: `plinth region
// fail`) treated as down: its replicas stop and none starts there until the
// region recovers. Apply and the controller drive this, never the recorded
// spec (the store keeps what the configuration says).
ServiceSpec WithoutFailedRegions(ServiceSpec spec, const std::set<std::string>& failed);

// "<service>." : every replica id of the service starts with it.
std::string ReplicaPrefix(const std::string& service_id);

// "<service>.<region>.<index>": the id of one replica (and of its log file).
std::string ReplicaId(const std::string& service_id, const std::string& region, int index);

// What a service ran before its last change: the spec and secrets a Put
// replaced (ServiceStore::Previous).
struct PreviousSpec {
  ServiceSpec spec;
  std::map<std::string, std::string> secrets;
};

// A rollout that failed and was rolled back (ServiceStore::RollBack).
struct Rollback {
  int64_t from_generation = 0;  // the generation that failed
  int64_t to_generation = 0;    // the generation that put the last good spec back
  std::string version;          // the failed spec's version ("" when unset)
  std::string reason;           // one line, no secret value
  int64_t at_ms = 0;            // wall clock
};

// A change that waits for the service's maintenance window
// (ServiceStore::Stage): the spec it will put in place and when apply
// recorded it.
struct StagedSpec {
  ServiceSpec spec;
  int64_t at_ms = 0;  // wall clock
};

class ServiceStore {
 public:
  // Opens (creating when `create`) `<dir>/services.db`. `workspace_key`: the
  // key file that seals secrets (created when missing and `create`).
  static std::unique_ptr<ServiceStore> Open(const std::filesystem::path& dir,
                                            const std::filesystem::path& workspace_key, bool create,
                                            std::string* error);
  ~ServiceStore();
  ServiceStore(const ServiceStore&) = delete;
  ServiceStore& operator=(const ServiceStore&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path logs_dir() const { return dir_ / "logs"; }

  // Records `spec` with its secret values (sealed; the values are wiped from
  // `secrets` afterwards). Each Put raises the service's generation.
  bool Put(const ServiceSpec& spec, std::map<std::string, std::string> secrets, std::string* error);
  std::optional<ServiceSpec> Get(const std::string& id);
  std::vector<ServiceSpec> List();
  int64_t Generation(const std::string& id);  // 0: not recorded
  // The highest generation of any service (or removal): changes whenever
  // the store does, for a controller that polls it.
  int64_t Version();
  bool Remove(const std::string& id, std::string* error);
  bool OpenSecrets(const std::string& id, std::map<std::string, std::string>* out, std::string* error);
  // The spec and secrets the last Put that changed the spec replaced; false
  // when there is none (a new service) or (with *error) they cannot be
  // opened. The caller wipes out->secrets.
  bool Previous(const std::string& id, PreviousSpec* out, std::string* error);

  // Records that `generation` (the current one) converged: it is the spec a
  // failed rollout rolls back to. Ends the record of an earlier rollback.
  // False when `generation` is not current or was already marked.
  bool MarkStable(const std::string& id, int64_t generation);
  // Rolls a failed rollout back: when `from_generation` is still current
  // and an earlier spec converged, puts that spec (and its secrets) back as
  // a new generation and records why (LastRollback). The failed spec becomes
  // the previous one (its replicas are adopted, then replaced). False with
  // *error (nothing changed) otherwise.
  bool RollBack(const std::string& id, int64_t from_generation, const std::string& reason, int64_t now_ms,
                Rollback* out, std::string* error);
  // Records `spec` (with its secrets, sealed) as the service's staged
  // change: the current spec keeps running and the generation does not
  // move until Promote. A later Stage replaces it; a Put drops it. False
  // with *error when the service is not recorded.
  bool Stage(const ServiceSpec& spec, std::map<std::string, std::string> secrets, int64_t now_ms,
             std::string* error);
  std::optional<StagedSpec> Staged(const std::string& id);
  // Puts the staged change in place as a new generation (as Put would:
  // the current spec becomes the previous one). False when nothing is
  // staged (*error stays empty) or on a store error.
  bool Promote(const std::string& id, int64_t* generation, std::string* error);

  // The last rollback, until a later generation converges.
  std::optional<Rollback> LastRollback(const std::string& id);
  // The generation last marked stable; 0 when none.
  int64_t StableGeneration(const std::string& id);

  // What the autoscaler decided, per region (written by the controller
  // only; apply reads it so that it never undoes a decision), and each
  // region's autoscaler history (Autoscaler::State). Empty when none.
  std::map<std::string, int> Scale(const std::string& id);
  nlohmann::json ScaleState(const std::string& id);
  bool SetScale(const std::string& id, const std::map<std::string, int>& counts, const nlohmann::json& state);

  // The replicas the controller moved away because they flapped (written by
  // the controller only; apply reads them so that it never brings one home
  // early), ended holds included until the controller drops them.
  std::vector<MovedReplica> Moved(const std::string& id);
  bool SetMoved(const std::string& id, const std::vector<MovedReplica>& moved);

 private:
  ServiceStore() = default;
  bool UnsealSecrets(const std::string& id, const std::string& blob, std::map<std::string, std::string>* out,
                     std::string* error);
  bool SealSecrets(ServiceSpec* stored, std::map<std::string, std::string>* secrets,
                   std::optional<std::string>* sealed, std::string* error);
  sqlite3* db_ = nullptr;
  std::filesystem::path dir_;
  std::filesystem::path key_path_;
  std::mutex mu_;
};

// What runs now of `spec` (apply, the controller and its scrape targets
// agree on it): the regions in `failed` down (WithoutFailedRegions), each
// region's count as the autoscaler decided (WithScale) and the replicas
// moved away because they flapped (WithMoved), as `store` records them.
ServiceSpec RunningSpec(const ServiceSpec& spec, const std::set<std::string>& failed, ServiceStore& store,
                        int64_t now_ms);

// Makes `supervisor` run exactly the replicas of `spec`: adds the missing
// ones, updates changed ones (a changed command, environment or version
// replaces the process; changed probes are swapped in place), and removes
// this service's replicas that are no longer wanted (fewer replicas, a
// region dropped or down).
//
// When `one_at_a_time` (an update, not a create), a replica whose process
// must be replaced takes part in a rolling update (docs/services.md,
// "Rolling updates"): per region, it is taken out of service only while at
// least replicas - max_unavailable other replicas serve (ready for
// SettleTime(spec) and, with a `gate`, reported UP by every load balancer in
// front of it, or ready for kRotationWait); the gate drains it before it
// stops. While a rollout lasts, max_surge extra replicas of the new spec run
// per region (SurgeSpecsFor) and count as serving; they are drained and
// removed once every replica serves the new spec. A replica that is not
// ready is replaced at once. Call again on later ticks: each call does what
// the budget allows now. With a gate, a replica no longer wanted is drained
// before it is removed, and a current, ready replica left drained is
// admitted again. `previous` (the store's Previous): recorded replicas this
// Supervisor has not Added yet are adopted with the spec they run, the
// current or the previous one, so a new driver rolls a change out instead of
// restarting everything. False with *error when a replica spec is invalid.
bool ReconcileService(Supervisor& supervisor, const ServiceSpec& spec,
                      const std::map<std::string, std::string>& secrets,
                      const std::filesystem::path& logs_dir, bool one_at_a_time, std::string* error,
                      TrafficGate* gate = nullptr, const PreviousSpec* previous = nullptr);

// How long a rollout waits for a load balancer to report a ready replica UP
// before it goes on without it (a load balancer whose check disagrees with
// the readiness probe must not hold a rollout forever).
inline constexpr std::chrono::milliseconds kRotationWait{30000};

// Why a rollout of `spec` has failed, or "": a replica (or surge replica)
// running the current spec exited or cannot start (back-off with an error), or has not become
// ready within spec.ready_timeout_s of its start. One line naming the replica
// (never an environment value). Only the caller knows whether a rollout is
// under way (ServiceStore::StableGeneration differs from the current one).
std::string RolloutFailure(const Supervisor& supervisor, const ServiceSpec& spec,
                           const std::map<std::string, std::string>& secrets,
                           const std::filesystem::path& logs_dir, int64_t now_wall_ms);

// The settle time of a rolling replacement: the readiness probe's period
// plus one second; 1 s without a readiness probe.
std::chrono::milliseconds SettleTime(const ServiceSpec& spec);

// Removes every replica of service `id` from `supervisor` (they are stopped
// by its next Ticks).
void RemoveServiceReplicas(Supervisor& supervisor, const std::string& id);

// The service's replicas' snapshots, by id.
std::vector<ReplicaSnapshot> ServiceReplicas(const Supervisor& supervisor, const std::string& id);

}  // namespace plinth::controller
