#include "runtime/controller/service_supervision.h"

#include <cstdio>
#include <map>
#include <set>

#include "runtime/controller/region_faults.h"
#include "runtime/process/process.h"

namespace plinth::controller {
namespace fs = std::filesystem;
using nlohmann::json;

ServiceSupervision::ServiceSupervision(fs::path workspace_dir, fs::path workspace_key, Clock& clock)
    : workspace_dir_(std::move(workspace_dir)), workspace_key_(std::move(workspace_key)), clock_(clock) {}

ServiceSupervision::~ServiceSupervision() = default;

TaskResult ServiceSupervision::Pass(int64_t term) {
  TaskResult r;
  std::string error;
  if (!store_) {
    std::error_code ec;
    if (!fs::exists(workspace_dir_ / "services" / "services.db", ec)) {
      r.summary = "no services";
      std::lock_guard lock(mu_);
      status_ = json::array();
      return r;
    }
    store_ = ServiceStore::Open(workspace_dir_ / "services", workspace_key_, false, &error);
    if (!store_) return {false, "", error};
  }
  // A new term: someone else (apply, another controller) may have driven the
  // replicas meanwhile. A fresh Supervisor adopts what runs.
  if (!supervisor_ || term != term_) {
    supervisor_.reset();
    supervisor_ = Supervisor::Open(workspace_dir_ / "controller" / "replicas.db", clock_, {}, &error);
    if (!supervisor_) return {false, "", "cannot open the replica supervisor: " + error};
    term_ = term;
  }
  // Changes that waited for their maintenance window roll out once it is
  // open (docs/services.md, "Changes inside a maintenance window").
  std::map<std::string, json> staged_status;  // by service id, for Status
  std::string first_error;
  for (const ServiceSpec& spec : store_->List()) {
    std::optional<StagedSpec> staged = store_->Staged(spec.id);
    if (!staged) continue;
    const ServiceWindow window = staged->spec.window.value_or(ServiceWindow{});
    std::string e;
    std::optional<WindowDecision> d;
    if (staged->spec.window) d = DecideServiceWindow(window, clock_.WallMs() / 1000, &e);
    else d = WindowDecision{true, ""};  // no window any more: nothing to wait for
    if (!d) {
      if (first_error.empty()) first_error = spec.id + ": maintenance window " + window.name + ": " + e;
      continue;
    }
    if (!d->open) {
      staged_status[spec.id] = {{"version", staged->spec.version},
                                {"since_ms", staged->at_ms},
                                {"window", window.name},
                                {"next", d->next}};
      continue;
    }
    int64_t generation = 0;
    if (store_->Promote(spec.id, &generation, &e)) {
      const std::string what =
          staged->spec.version.empty() ? "the staged change" : "version \"" + staged->spec.version + "\"";
      const std::string reason = staged->spec.window ? "maintenance window " + window.name + " is open"
                                                     : "the service has no maintenance window any more";
      r.summary += (r.summary.empty() ? "" : "; ") + spec.id + ": " + reason + ", rolling out " + what;
      Act("rollout", staged->spec, what + " (generation " + std::to_string(generation) + ")",
          reason + "; recorded by apply at " + Rfc3339Ms(staged->at_ms), &first_error);
    } else if (!e.empty() && first_error.empty()) {
      first_error = spec.id + ": " + e;
    }
  }
  std::vector<ServiceSpec> services = store_->List();
  std::set<std::string> known;
  std::map<std::string, int64_t> generations;
  std::map<std::string, std::map<std::string, std::string>> secrets;  // wiped at the end of the pass
  // Regions failed by `plinth region fail` run nothing until they recover.
  const std::set<std::string> failed = FailedRegions(workspace_dir_);
  // The autoscaler's counts (docs/automation.md): what the controller decided before.
  // And the replicas moved away because they flapped.
  for (ServiceSpec& spec : services) spec = RunningSpec(spec, failed, *store_, clock_.WallMs());
  for (const ServiceSpec& spec : services) {
    known.insert(spec.id);
    generations[spec.id] = store_->Generation(spec.id);
    if (!store_->OpenSecrets(spec.id, &secrets[spec.id], &error)) {
      if (first_error.empty()) first_error = spec.id + ": " + error;
      continue;
    }
    auto& gate = gates_[spec.id];
    if (!gate) gate = std::make_unique<HaproxyGate>(workspace_dir_ / "lb", spec.id, clock_);
    // Replicas this Supervisor has not taken over yet (a new term) are adopted
    // with the spec they run, which may be the one before the last change.
    PreviousSpec previous;
    bool has_previous = false;
    for (const ReplicaSnapshot& s : ServiceReplicas(*supervisor_, spec.id)) {
      if (s.phase != ReplicaPhase::kUnmanaged) continue;
      std::string e;
      has_previous = store_->Previous(spec.id, &previous, &e);
      break;
    }
    const bool reconciled =
        ReconcileService(*supervisor_, spec, secrets[spec.id], store_->logs_dir(), /*one_at_a_time=*/true,
                         &error, gate.get(), has_previous ? &previous : nullptr);
    process::WipeEnvironment(previous.secrets);
    if (!reconciled && first_error.empty()) first_error = spec.id + ": " + error;
    // Flapping replicas move away for a while and come home (flapping.h);
    // the next pass runs them where the store now says.
    const std::vector<MovedReplica> recorded = store_->Moved(spec.id);
    if (!recorded.empty() || (spec.flapping && spec.flapping->move)) {
      FlapDecision flap =
          DecideFlapping(spec, recorded, ServiceReplicas(*supervisor_, spec.id), flaps_, clock_.WallMs());
      if (flap.Changed() && !store_->SetMoved(spec.id, flap.moved) && first_error.empty())
        first_error = spec.id + ": cannot record the replicas moved because they flapped";
      for (const MovedReplica& m : flap.started) {
        const std::string what = "replica " + ReplicaId(spec.id, m.region, m.index) + " to region " + m.to +
                                 " for " + ShortDuration((m.until_ms - m.since_ms) / 1000);
        r.summary += (r.summary.empty() ? "" : "; ") + spec.id + ": moved " + what + " (" + m.reason + ")";
        Act("move", spec, what, m.reason, &first_error);
      }
      for (const MovedReplica& m : flap.ended) {
        const std::string what = "replica " + ReplicaId(spec.id, m.region, m.index) + " back to region " + m.region;
        const std::string why = m.until_ms <= clock_.WallMs() ? "its hold of " +
                                                                    ShortDuration((m.until_ms - m.since_ms) / 1000) +
                                                                    " in region " + m.to + " ended"
                                                              : "the move no longer applies";
        r.summary += (r.summary.empty() ? "" : "; ") + spec.id + ": " + what + " (" + why + ")";
        Act("return", spec, what, why, &first_error);
      }
    }
    // Autoscaling: this pass's signals decide the counts the next pass runs.
    if (spec.autoscale) {
      ServiceScaleStep step = autoscaling_.Step(
          spec, *supervisor_, gate->Load(), store_->ScaleState(spec.id).value("autoscalers", json::object()),
          clock_.WallMs(), votes_ ? votes_->Get(spec.id) : std::vector<ScaleVote>{});
      if (!store_->SetScale(spec.id, step.counts, step.state) && first_error.empty())
        first_error = spec.id + ": cannot record the autoscaler's decision";
      for (const std::string& c : step.changes) {
        r.summary += (r.summary.empty() ? "" : "; ") + spec.id + " scaled " + c;
        // "eu: 2 -> 4: requests_per_second = ..." -> what and why.
        const size_t why = c.find(": ", c.find(": ") + 2);
        Act("scale", spec, c.substr(0, why), why == std::string::npos ? "" : c.substr(why + 2), &first_error);
      }
      autoscale_status_[spec.id] = step.status;
    } else {
      autoscale_status_.erase(spec.id);
    }
  }
  for (auto it = gates_.begin(); it != gates_.end();)
    it = known.count(it->first) ? std::next(it) : gates_.erase(it);
  // Replicas of services that are no longer recorded stop.
  for (const ReplicaSnapshot& s : supervisor_->Snapshots()) {
    std::string service = s.id.substr(0, s.id.find('.'));
    if (!known.count(service)) {
      std::string e;
      supervisor_->Remove(s.id, &e);
    }
  }
  supervisor_->Tick();

  json status = json::array();
  int total = 0, ready_total = 0;
  for (const ServiceSpec& spec : services) {
    std::vector<ReplicaSpec> wanted = ReplicaSpecsFor(spec, secrets[spec.id], store_->logs_dir());
    int ready = 0;
    bool current = true;  // every wanted replica supervised with its current spec
    for (auto& w : wanted) {
      ready += supervisor_->Ready(w.id) ? 1 : 0;
      current = current && supervisor_->Unchanged(w);
      process::WipeEnvironment(w.env);
    }
    json replicas = json::array();
    std::string failing;
    for (const ReplicaSnapshot& s : ServiceReplicas(*supervisor_, spec.id)) {
      json one = SnapshotJson(s);
      if (std::string from = RelocatedFrom(spec, s.id); !from.empty()) one["relocated_from"] = from;
      replicas.push_back(std::move(one));
      if (failing.empty() && s.phase == ReplicaPhase::kBackoff && !s.last_error.empty())
        failing = "replica " + s.id + ": " + s.last_error;
    }
    total += static_cast<int>(wanted.size());
    ready_total += ready;
    // Converged: as many replicas as wanted, all ready, none being replaced.
    bool converged = current && ready == static_cast<int>(wanted.size()) &&
                     ServiceReplicas(*supervisor_, spec.id).size() == wanted.size();
    for (const ReplicaSnapshot& s : ServiceReplicas(*supervisor_, spec.id))
      converged = converged && s.phase == ReplicaPhase::kRunning;
    json failed_here = json::array();
    for (const ServiceRegion& region : spec.regions)
      if (failed.count(region.name)) failed_here.push_back(region.name);
    // A generation that converged is the one a failed rollout goes back to;
    // a rollout whose new replicas exit or never become ready is rolled back
    // (docs/services.md, "Rolling back").
    const int64_t generation = generations[spec.id];
    const int64_t stable = store_->StableGeneration(spec.id);
    if (converged && stable != generation) {
      store_->MarkStable(spec.id, generation);
    } else if (!converged && stable != 0 && stable != generation) {
      std::string why =
          RolloutFailure(*supervisor_, spec, secrets[spec.id], store_->logs_dir(), clock_.WallMs());
      Rollback rb;
      std::string e;
      if (!why.empty()) {
        if (store_->RollBack(spec.id, generation, why, clock_.WallMs(), &rb, &e)) {
          r.summary += (r.summary.empty() ? "" : "; ") + spec.id + ": rollout of generation " +
                       std::to_string(generation) + " failed, rolled back: " + why;
          Act("rollback", spec,
              (rb.version.empty() ? std::string("the new spec") : "version \"" + rb.version + "\"") +
                  " (generation " + std::to_string(generation) + ") back to generation " +
                  std::to_string(rb.to_generation),
              why, &first_error);
        }
        else if (first_error.empty())
          first_error = spec.id + ": cannot roll back a failed rollout (" + why + "): " + e;
      }
    }
    json moved = json::array();
    for (const MovedReplica& m : store_->Moved(spec.id))
      moved.push_back({{"replica", ReplicaId(spec.id, m.region, m.index)},
                       {"region", m.region},
                       {"to", m.to},
                       {"since_ms", m.since_ms},
                       {"until_ms", m.until_ms},
                       {"reason", m.reason}});
    json rollback = nullptr;
    if (auto rb = store_->LastRollback(spec.id))
      rollback = {{"from_generation", rb->from_generation},
                  {"to_generation", rb->to_generation},
                  {"version", rb->version},
                  {"reason", rb->reason},
                  {"at_ms", rb->at_ms}};
    status.push_back(
        {{"id", spec.id},
         {"failed_regions", failed_here},
         {"generation", generations[spec.id]},
         {"wanted", wanted.size()},
         {"ready", ready},
         {"converged", converged},
         {"failing", failing},
         {"rollback", rollback},
         {"autoscale", autoscale_status_.count(spec.id) ? autoscale_status_[spec.id] : json(nullptr)},
         {"staged", staged_status.count(spec.id) ? staged_status[spec.id] : json(nullptr)},
         {"moved", moved},
         {"replicas", replicas}});
  }
  for (auto& [id, values] : secrets) process::WipeEnvironment(values);
  {
    std::lock_guard lock(mu_);
    status_ = std::move(status);
  }
  r.summary = std::to_string(services.size()) + " services, " + std::to_string(ready_total) + " of " +
              std::to_string(total) + " replicas ready" + (r.summary.empty() ? "" : "; " + r.summary);
  if (!first_error.empty()) {
    r.ok = false;
    r.error = first_error;
  }
  return r;
}

void ServiceSupervision::Act(const std::string& kind, const ServiceSpec& spec, const std::string& detail,
                             const std::string& reason, std::string* first_error) {
  Action a{0, clock_.WallMs(), kind, spec.address.empty() ? "service." + spec.id : spec.address, detail, reason};
  std::fprintf(stderr, "controller: %s: %s %s (%s)\n", a.subject.c_str(), kind.c_str(), detail.c_str(),
               reason.c_str());
  std::string e;
  if (!actions_) actions_ = ActionLog::Open(workspace_dir_ / "controller" / "actions.db", true, &e);
  if ((!actions_ || !actions_->Record(a, &e)) && first_error->empty())
    *first_error = a.subject + ": cannot record the controller's action: " + e;
}

json ServiceSupervision::Status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void ServiceSupervision::Metrics(metrics::Exposition& m) const {
  std::lock_guard lock(mu_);
  m.Gauge("plinth_service_replicas", "replicas each service should run");
  for (const json& s : status_) m.Sample(s.value("wanted", 0), {{"service", s.value("id", "")}});
  m.Gauge("plinth_service_replicas_ready", "replicas of each service that pass their readiness probe");
  for (const json& s : status_) m.Sample(s.value("ready", 0), {{"service", s.value("id", "")}});
  m.Gauge("plinth_service_autoscale_replicas", "replicas the autoscaler decided, per service and region");
  for (const json& s : status_) {
    const json a = s.value("autoscale", json());
    if (!a.is_object()) continue;
    for (const auto& [region, v] : a.items())
      m.Sample(v.value("replicas", 0), {{"service", s.value("id", "")}, {"region", region}});
  }
  m.Gauge("plinth_service_autoscale_signal", "the autoscaler's signals: per-replica averages per region");
  for (const json& s : status_) {
    const json a = s.value("autoscale", json());
    if (!a.is_object()) continue;
    for (const auto& [region, v] : a.items()) {
      const json signals = v.value("signals", json::object());  // outlives the loop below
      for (const auto& [signal, value] : signals.items())
        if (value.is_number())
          m.Sample(value.get<double>(),
                   {{"service", s.value("id", "")}, {"region", region}, {"signal", signal}});
    }
  }
  m.Counter("plinth_service_replica_restarts_total", "restarts of each replica since it was first started");
  for (const json& s : status_) {
    for (const json& r : s.value("replicas", json::array()))
      m.Sample(r.value("restarts", 0), {{"service", s.value("id", "")}, {"replica", r.value("id", "")}});
  }
}

PeriodicTask ServiceSupervision::Task(std::chrono::milliseconds every) {
  PeriodicTask t;
  t.name = "services";
  t.every = every;
  t.run = [this](int64_t term) { return Pass(term); };
  t.status_key = "services";
  t.status = [this] { return Status(); };
  t.metrics = [this](metrics::Exposition& m) { Metrics(m); };
  return t;
}

std::optional<ServiceStatusView> FindServiceStatus(const json& doc, const std::string& id) {
  if (!doc.is_object() || !doc.contains("services") || !doc["services"].is_array()) return std::nullopt;
  for (const json& s : doc["services"]) {
    if (!s.is_object() || s.value("id", "") != id) continue;
    ServiceStatusView v;
    v.generation = s.value("generation", int64_t{0});
    v.wanted = s.value("wanted", 0);
    v.ready = s.value("ready", 0);
    v.converged = s.value("converged", false);
    v.failing = s.value("failing", "");
    if (s.contains("rollback") && s["rollback"].is_object()) {
      v.rolled_back_from = s["rollback"].value("from_generation", int64_t{0});
      v.rollback_reason = s["rollback"].value("reason", "");
    }
    for (const json& r : s.value("replicas", json::array()))
      if (r.is_object())
        v.replicas += r.value("id", "") + ":" + std::to_string(r.value("pid", int64_t{0})) +
                      (r.value("ready", false) ? "+" : "-") + " ";
    return v;
  }
  return std::nullopt;
}

}  // namespace plinth::controller
