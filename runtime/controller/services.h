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
// Who writes what: apply (the local provider) writes the store; the holder
// of the workspace's controller lease (the leading controller, or apply
// while no controller leads) drives the replicas with ReconcileService /
// RemoveServiceReplicas (docs/controller.md, "Apply and the controller").
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
#include <string>
#include <vector>

#include "runtime/compute/spec.h"
#include "runtime/controller/probe.h"
#include "runtime/controller/supervisor.h"

struct sqlite3;

namespace plinth::controller {

struct ServiceRegion {
  std::string name;
  std::string host = "127.0.0.1";
  bool down = false;
  std::string netns{};  // the region's network namespace; empty: the root namespace
};

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
};

nlohmann::json ServiceJson(const ServiceSpec& s);
ServiceSpec ServiceFromJson(const nlohmann::json& j);

// The replicas `spec` should run now (regions not down), in region order
// then index. `secrets` are added to each environment.
std::vector<ReplicaSpec> ReplicaSpecsFor(const ServiceSpec& spec,
                                         const std::map<std::string, std::string>& secrets,
                                         const std::filesystem::path& logs_dir);

// "<service>." : every replica id of the service starts with it.
std::string ReplicaPrefix(const std::string& service_id);

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

 private:
  ServiceStore() = default;
  sqlite3* db_ = nullptr;
  std::filesystem::path dir_;
  std::filesystem::path key_path_;
  std::mutex mu_;
};

// Makes `supervisor` run exactly the replicas of `spec`: adds the missing
// ones, updates changed ones (a changed command, environment or version
// replaces the process; changed probes are swapped in place), and removes
// this service's replicas that are no longer wanted (fewer replicas, a
// region dropped or down). When `one_at_a_time`, a replica whose process
// must be replaced is replaced only while every replica of the service has
// been ready for at least SettleTime(spec) (so a load balancer checking at
// the probe's period has taken the last one back first): a rolling
// replacement, one replica per call; call again on later ticks. False with
// *error when a replica spec is invalid.
bool ReconcileService(Supervisor& supervisor, const ServiceSpec& spec,
                      const std::map<std::string, std::string>& secrets,
                      const std::filesystem::path& logs_dir, bool one_at_a_time, std::string* error);

// The settle time of a rolling replacement: the readiness probe's period
// plus one second; 1 s without a readiness probe.
std::chrono::milliseconds SettleTime(const ServiceSpec& spec);

// Removes every replica of service `id` from `supervisor` (they are stopped
// by its next Ticks).
void RemoveServiceReplicas(Supervisor& supervisor, const std::string& id);

// The service's replicas' snapshots, by id.
std::vector<ReplicaSnapshot> ServiceReplicas(const Supervisor& supervisor, const std::string& id);

}  // namespace plinth::controller
