// The controller's service supervision (docs/controller.md, "Services"): a
// PeriodicTask that, each pass while the controller leads, makes the
// workspace's replicas match the service store (runtime/controller/services.h)
// and ticks one Supervisor over <workspace dir>/controller/replicas.db:
// probes run, exited or unhealthy replicas restart with back-off, changed
// services are replaced one replica at a time, replicas of removed services
// stop. Its status section ("services") is what `plinth status` and a waiting
// `plinth apply` read.
//
// Leadership and apply: the replica database has one driver at a time, the
// holder of the workspace's lease — the leading controller, or `plinth
// apply` while no controller leads (it takes the lease for the time it
// drives). The Supervisor is opened afresh whenever this controller's term
// changes, so what apply did meanwhile is adopted, never fought.
//
// Thread safety: Pass runs on the controller's loop thread; Status and
// Metrics may be called from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/controller/actions.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/controller.h"
#include "runtime/controller/flapping.h"
#include "runtime/controller/service_autoscaling.h"
#include "runtime/controller/services.h"
#include "runtime/controller/supervisor.h"
#include "runtime/controller/traffic_gate.h"
#include "runtime/metrics/exposition.h"

namespace plinth::controller {

class ServiceSupervision {
 public:
  // `workspace_dir`: .plinth/<ws>; `workspace_key`: the key file that opens
  // the services' secrets. `clock` must outlive this object.
  ServiceSupervision(std::filesystem::path workspace_dir, std::filesystem::path workspace_key, Clock& clock);
  ~ServiceSupervision();

  // One pass (a PeriodicTask's run): reopen the Supervisor on a new term,
  // reconcile every recorded service, remove the replicas of services no
  // longer recorded, Tick.
  TaskResult Pass(int64_t term);

  // [{id, generation, wanted, ready, converged, replicas: [SnapshotJson...]}]
  // as of the last pass, by service id. `converged`: every wanted replica
  // runs the service's current spec and is ready.
  nlohmann::json Status() const;

  // plinth_service_replicas{service}, plinth_service_replicas_ready{service},
  // plinth_service_replica_restarts_total{service,replica}.
  void Metrics(metrics::Exposition& m) const;

  // Where scale rules' votes come from (the alert task writes them); must
  // outlive this object. Unset: no scale rules.
  void SetScaleVotes(const ScaleVotes* votes) { votes_ = votes; }

  // The task to give the Controller: runs every `every`, status under
  // "services", metrics as above.
  PeriodicTask Task(std::chrono::milliseconds every);

 private:
  std::filesystem::path workspace_dir_, workspace_key_;
  Clock& clock_;
  std::unique_ptr<ServiceStore> store_;
  std::unique_ptr<Supervisor> supervisor_;
  int64_t term_ = -1;
  // One traffic gate per service (its drain timers span passes).
  std::map<std::string, std::unique_ptr<HaproxyGate>> gates_;
  ServiceAutoscaling autoscaling_;
  FlapTracker flaps_;  // restarts per replica, for flapping.remedy = "move"
  const ScaleVotes* votes_ = nullptr;
  std::map<std::string, nlohmann::json> autoscale_status_;  // by service id
  // What this controller did on its own (actions.h): opened on first use.
  std::unique_ptr<ActionLog> actions_;
  // Records an automatic action and logs it (one line on stderr, the
  // controller's log); a failure to record goes to *first_error.
  void Act(const std::string& kind, const ServiceSpec& spec, const std::string& detail,
           const std::string& reason, std::string* first_error);
  mutable std::mutex mu_;                                   // guards status_
  nlohmann::json status_ = nlohmann::json::array();
};

// What a controller's status document says about service `id`: nullopt when
// the document does not list it.
struct ServiceStatusView {
  int64_t generation = 0;
  int wanted = 0, ready = 0;
  bool converged = false;
  std::string failing;  // "replica api.eu.0: <last error>" of a replica in back-off, or empty
  // The last rollback: the generation that failed (0: none) and why.
  int64_t rolled_back_from = 0;
  std::string rollback_reason;
  // "<id>:<pid><+ ready|- not> ..." of each replica: changes whenever a
  // rollout makes progress (a replica started, replaced or became ready).
  std::string replicas;
};
std::optional<ServiceStatusView> FindServiceStatus(const nlohmann::json& status_doc, const std::string& id);

}  // namespace plinth::controller
