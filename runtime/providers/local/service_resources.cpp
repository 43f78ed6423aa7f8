// Services of the local provider (docs/services.md). The configuration side
// (checks, endpoints) is service.{h,cpp}; the runtime side (the store, the
// replicas of a service, the reconcile step) is runtime/controller/services.h;
// this file applies planned services and reads them back.
//
// A service's create or update records it in the workspace's service store
// (secrets sealed), then waits until its replicas run the recorded spec and
// are ready (ready_timeout). Who brings them there is the holder of the
// workspace's controller lease: this apply, which takes the lease while no
// controller leads and drives a Supervisor on <workspace dir>/controller/
// replicas.db (new replicas start, changed ones are replaced one at a time,
// those no longer wanted stop), or the leading controller, whose status this
// apply then reads. Replicas are daemons: they outlive apply, and whoever
// drives next adopts them by pid and start time. Under apply, a replica that
// exits fails the apply at once with its last error and its log file. A
// first Ctrl-C stops the wait (the replicas go on).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/controller/clock.h"
#include "runtime/controller/lease.h"
#include "runtime/controller/region_faults.h"
#include "runtime/controller/service_supervision.h"
#include "runtime/controller/services.h"
#include "runtime/controller/supervisor.h"
#include "runtime/process/process.h"
#include "runtime/providers/local/packages.h"
#include "runtime/providers/local/provider.h"
#include "runtime/providers/local/region_network.h"
#include "runtime/providers/local/service.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

ProviderError ServiceFail(std::string message) {
  return ProviderError{std::move(message), false};
}

const Value* Get(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

std::string Text(const ValueMap& m, const std::string& key) {
  const Value* v = Get(m, key);
  return v && v->kind() == Value::Kind::String ? v->as_string() : "";
}

std::optional<int64_t> Int(const ValueMap& m, const std::string& key) {
  const Value* v = Get(m, key);
  if (!v || v->kind() != Value::Kind::Number || !v->is_integer()) return std::nullopt;
  return static_cast<int64_t>(v->as_number());
}

int Seconds(const ValueMap& m, const std::string& key, int fallback) {
  const Value* v = Get(m, key);
  if (!v || v->kind() != Value::Kind::Duration) return fallback;
  return static_cast<int>((v->as_number() + 999) / 1000);
}

std::optional<controller::ProbeSpec> ProbeFrom(const ValueMap& planned, const std::string& block) {
  const Value* v = Get(planned, block);
  if (!v || v->kind() != Value::Kind::Object) return std::nullopt;
  const ValueMap& p = v->as_object();
  controller::ProbeSpec s;
  if (!Text(p, "http").empty()) {
    s.kind = controller::ProbeKind::kHttp;
    s.path = Text(p, "http");
  } else if (const Value* e = Get(p, "exec"); e && e->kind() == Value::Kind::List) {
    s.kind = controller::ProbeKind::kExec;
    for (const Value& a : e->as_list())
      if (a.kind() == Value::Kind::String) s.argv.push_back(a.as_string());
  } else {
    s.kind = controller::ProbeKind::kTcp;
  }
  s.port = static_cast<int>(Int(p, "port").value_or(0));
  s.period_s = std::max(1, Seconds(p, "period", 10));
  s.timeout_s = std::max(1, Seconds(p, "timeout", 1));
  s.initial_delay_s = std::max(0, Seconds(p, "initial_delay", 0));
  s.success_threshold = static_cast<int>(Int(p, "success_threshold").value_or(1));
  s.failure_threshold = static_cast<int>(Int(p, "failure_threshold").value_or(3));
  return s;
}

// The runtime's spec of a planned service, and its secret values (those that
// are digests, the state's form, are left out: the store keeps the values).
std::optional<controller::ServiceSpec> SpecFromPlanned(const ValueMap& planned, const fs::path& config_dir,
                                                       std::map<std::string, std::string>* secrets,
                                                       bool* secrets_are_digests, std::string* error) {
  controller::ServiceSpec s;
  s.id = Text(planned, "id");
  s.address = Text(planned, "address");
  if (s.id.empty()) return *error = "the service has no id", std::nullopt;
  if (const Value* regions = Get(planned, "regions"); regions && regions->kind() == Value::Kind::List) {
    for (const Value& r : regions->as_list()) {
      if (r.kind() != Value::Kind::Object) continue;
      controller::ServiceRegion region;
      region.name = Text(r.as_object(), "name");
      if (std::string host = Text(r.as_object(), "host"); !host.empty()) region.host = host;
      const Value* down = Get(r.as_object(), "down");
      region.down = down && down->kind() == Value::Kind::Bool && down->as_bool();
      if (Text(r.as_object(), "isolation") == "namespace") {
        const std::string path = Text(r.as_object(), "path");
        if (path.empty())
          return *error = "the path of region '" + region.name + "' must be known at apply", std::nullopt;
        region.netns = region_network::NamespaceName(path, region.name);
      }
      s.regions.push_back(region);
    }
  }
  auto replicas = Int(planned, "replicas");
  auto port = Int(planned, "port");
  if (!replicas || !port || s.regions.empty())
    return *error = "regions, replicas and port must be known at apply", std::nullopt;
  s.replicas = static_cast<int>(*replicas);
  s.port = static_cast<int>(*port);
  if (const Value* c = Get(planned, "command"); c && c->kind() == Value::Kind::List) {
    for (const Value& a : c->as_list())
      if (a.kind() == Value::Kind::String) s.argv.push_back(a.as_string());
  }
  if (const Value* env = Get(planned, "env"); env && env->kind() == Value::Kind::Object) {
    for (const auto& [k, v] : env->as_object())
      if (v.kind() == Value::Kind::String) s.env[k] = v.as_string();
  }
  *secrets_are_digests = false;
  if (const Value* sec = Get(planned, "secret_env"); sec && sec->kind() == Value::Kind::Object) {
    for (const auto& [k, v] : sec->as_object()) {
      if (v.kind() != Value::Kind::String) continue;
      if (v.as_string().rfind("hmac:", 0) == 0)
        *secrets_are_digests = true;
      else
        (*secrets)[k] = v.as_string();
      s.secret_names.push_back(k);
    }
  }
  for (const char* attr : {"reads", "writes"}) {
    const Value* list = Get(planned, attr);
    if (!list || list->kind() != Value::Kind::List) continue;
    for (const Value& b : list->as_list()) {
      if (b.kind() != Value::Kind::Object) continue;
      compute::BucketAccess access{Text(b.as_object(), "name"), Text(b.as_object(), "path"),
                                   std::string(attr) == "writes"};
      auto same = std::find_if(s.buckets.begin(), s.buckets.end(),
                               [&](const compute::BucketAccess& x) { return x.name == access.name; });
      if (same == s.buckets.end())
        s.buckets.push_back(access);
      else
        same->write = same->write || access.write;
    }
  }
  s.cwd = config_dir.empty() ? fs::current_path() : config_dir;
  s.liveness = ProbeFrom(planned, "liveness");
  s.readiness = ProbeFrom(planned, "readiness");
  s.startup = ProbeFrom(planned, "startup");
  s.version = Text(planned, "version");
  const service_config::RolloutNumbers rollout = service_config::ResolveRollout(planned);
  s.max_unavailable = static_cast<int>(rollout.max_unavailable.value_or(1));
  s.max_surge = static_cast<int>(rollout.max_surge.value_or(0));
  s.ready_timeout_s = Seconds(planned, "ready_timeout", 60);
  s.user = Text(planned, "user");
  s.relocate = Text(planned, "on_region_failure") == "relocate";
  std::vector<std::string> ignored;
  s.autoscale = service_config::AutoscaleOf(planned, &ignored);
  s.flapping = service_config::FlappingOf(planned, &ignored);
  if (const Value* w = Get(planned, "window"); w && w->kind() == Value::Kind::Object) {
    auto resolved = packages::WindowOf(w->as_object(), error);
    if (!resolved) return std::nullopt;
    s.window = controller::ServiceWindow{resolved->name, resolved->window, resolved->zone.name()};
  }
  return s;
}

// Why the service's replicas are not all ready yet (or have failed): one
// line naming the replica, its last error or probe state, and its log.
// "version \"v2\"", or "the new spec" without a version.
std::string RolloutName(const std::string& version) {
  return version.empty() ? "the new spec" : "version \"" + version + "\"";
}

std::string NotReadyReason(const std::vector<controller::ReplicaSnapshot>& snaps, const fs::path& logs_dir) {
  for (const auto& s : snaps) {
    if (s.ready) continue;
    std::string why = !s.last_error.empty() ? s.last_error
                      : s.phase == controller::ReplicaPhase::kStarting
                          ? "its startup probe has not passed"
                          : "its readiness probe is " + std::string(controller::ProbeStateName(s.readiness));
    if (!s.events.empty() && s.last_error.empty()) why += " (" + s.events.back().text + ")";
    return "replica " + s.id + " is " + std::string(controller::ReplicaPhaseName(s.phase)) + ": " + why +
           " (log: " + (logs_dir / (s.id + ".log")).string() + ")";
  }
  return "";
}

// Who drives a workspace's replicas (docs/controller.md, "Apply and the
// controller"): the holder of the workspace's controller lease. Apply takes
// the lease while no controller leads, and holds it (renewing) for as long
// as it drives; while a controller leads, apply only records the service and
// reads the controller's status. A controller that dies lets its lease
// expire, and a waiting apply then takes over.
class ReplicaDriver {
 public:
  explicit ReplicaDriver(fs::path workspace_dir) : dir_(workspace_dir / "controller") {}
  ~ReplicaDriver() {
    supervisor_.reset();
    if (lease_ && ours_) lease_->Release();
  }

  bool Open(std::string* error) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return *error = "cannot create " + dir_.string() + ": " + ec.message(), false;
    ::chmod(dir_.c_str(), 0700);
    lease_ = controller::Lease::Open(dir_ / "lease.db", "controller", "apply/" + controller::NewHolderId(),
                                     ::getpid(), clock_, error);
    return lease_ != nullptr;
  }

  // Takes or renews the lease (every 2 s); opens the Supervisor once it is
  // ours. False with *error when the lease database fails, or when the lease
  // was lost while this apply drove (a controller took over: it goes on).
  bool Drive(std::string* error) {
    auto now = std::chrono::steady_clock::now();
    if (now < next_lease_) return true;
    next_lease_ = now + 2s;
    controller::LeaseOutcome got = ours_ ? lease_->Renew(kTtl) : lease_->TryAcquire(kTtl);
    if (!got.error.empty()) return *error = "the controller lease: " + got.error, false;
    if (ours_ && !got.held) {
      supervisor_.reset();
      ours_ = false;
      return *error = "a controller took over the workspace's replicas (" + got.record.holder_id +
                      "): see plinth status",
             false;
    }
    holder_ = got.record.holder_id;
    if (got.held && !ours_) {
      ours_ = true;
      supervisor_ = controller::Supervisor::Open(dir_ / "replicas.db", clock_, {}, error);
      if (!supervisor_) return *error = "cannot open the replica supervisor: " + *error, false;
    }
    return true;
  }

  // Null while a controller drives.
  controller::Supervisor* supervisor() { return supervisor_.get(); }
  const std::string& holder() const { return holder_; }

  // The leading controller's status document: null unless it was written by
  // the current lease holder and not marked stopped (a stale file, or none
  // while another apply holds the lease, says nothing about the replicas).
  nlohmann::json ControllerStatus() const {
    std::ifstream in(dir_ / "status.json");
    if (!in) return nullptr;
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false);
    if (!doc.is_object() || doc.value("self", std::string()) != holder_ || doc.value("stopped", false))
      return nullptr;
    return doc;
  }

  // Replicas of `id` whose process runs (pid and start time), from the
  // supervisor's records. Opening it changes nothing: records load as
  // unmanaged, nothing is started.
  int RunningReplicas(const std::string& id) {
    std::error_code ec;
    if (!fs::exists(dir_ / "replicas.db", ec)) return 0;
    std::unique_ptr<controller::Supervisor> own;
    controller::Supervisor* sup = supervisor_.get();
    if (!sup) {
      std::string error;
      own = controller::Supervisor::Open(dir_ / "replicas.db", clock_, {}, &error);
      if (!own) return 0;
      sup = own.get();
    }
    int running = 0;
    for (const auto& s : controller::ServiceReplicas(*sup, id))
      running += s.pid > 0 && process::ProcessStartTime(s.pid) == s.start_time ? 1 : 0;
    return running;
  }

 private:
  static constexpr std::chrono::milliseconds kTtl{10000};
  fs::path dir_;
  controller::SystemClock clock_;
  std::unique_ptr<controller::Lease> lease_;
  bool ours_ = false;
  std::chrono::steady_clock::time_point next_lease_{};
  std::string holder_;
  std::unique_ptr<controller::Supervisor> supervisor_;
};

}  // namespace

Result<controller::ServiceStore*> LocalProvider::Services(bool create) {
  std::lock_guard lock(services_mu_);
  if (services_) return services_.get();
  fs::path dir = WorkspaceDir() / "services";
  std::error_code ec;
  if (!create && !fs::exists(dir / "services.db", ec)) return static_cast<controller::ServiceStore*>(nullptr);
  std::string error;
  services_ = controller::ServiceStore::Open(dir, workspace_key_, create, &error);
  if (!services_) return ServiceFail("cannot open the service store: " + error);
  return services_.get();
}

Result<ResourceObject> LocalProvider::WriteService(const ValueMap& planned, bool creating) {
  std::string error;
  std::map<std::string, std::string> secrets;
  bool digests = false;
  auto spec = SpecFromPlanned(planned, config_dir_, &secrets, &digests, &error);
  if (!spec) return ServiceFail("cannot apply the service: " + error);
  auto store = Services(true);
  if (!store.ok()) return store.error();
  controller::ServiceStore& st = *store.value();
  // Unchanged secrets arrive as the state's digests: the store has the values.
  if (digests) {
    std::map<std::string, std::string> recorded;
    if (!st.OpenSecrets(spec->id, &recorded, &error)) return ServiceFail(error);
    for (auto& [k, v] : recorded)
      if (!secrets.count(k)) secrets[k] = std::move(v);
  }
  // A change that replaces replicas waits for a closed maintenance window
  // (docs/services.md, "Changes inside a maintenance window"): recorded as
  // staged, the replicas go on running what they run.
  if (!creating && spec->window) {
    std::optional<controller::ServiceSpec> current = st.Get(spec->id);
    std::map<std::string, std::string> recorded;
    if (current && !st.OpenSecrets(spec->id, &recorded, &error)) {
      process::WipeEnvironment(secrets);
      return ServiceFail(error);
    }
    const bool replaces = current && (controller::ReplacesReplicas(*current, *spec) || recorded != secrets);
    process::WipeEnvironment(recorded);
    if (replaces) {
      controller::SystemClock clock;
      auto decision = controller::DecideServiceWindow(*spec->window, clock.WallMs() / 1000, &error);
      if (!decision) {
        process::WipeEnvironment(secrets);
        return ServiceFail("maintenance window " + spec->window->name + ": " + error);
      }
      if (!decision->open) {
        if (!st.Stage(*spec, std::move(secrets), clock.WallMs(), &error)) return ServiceFail(error);
        ValueMap attrs = planned;
        attrs["rollout_pending"] = Value::Bool(true);
        ReplicaDriver reader(WorkspaceDir());
        attrs["replicas_running"] = Value::Number(reader.RunningReplicas(spec->id));
        return ResourceObject{spec->id, std::move(attrs)};
      }
    }
  }
  std::map<std::string, std::string> for_store = secrets;
  if (!st.Put(*spec, std::move(for_store), &error)) return ServiceFail(error);
  int64_t generation = st.Generation(spec->id);
  // What the replicas ran before this change: a driver adopts them with it and rolls the change out.
  controller::PreviousSpec previous;
  std::string previous_error;
  bool has_previous = st.Previous(spec->id, &previous, &previous_error);
  // What runs now: regions failed by `plinth region fail` run nothing until they recover.
  const std::set<std::string> failed_regions = controller::FailedRegions(WorkspaceDir());
  // And as many replicas per region as the controller's autoscaler decided, with the replicas it moved
  // away because they flapped where it moved them (apply never undoes either).
  controller::SystemClock clock;
  controller::ServiceSpec running_spec = controller::RunningSpec(*spec, failed_regions, st, clock.WallMs());

  ReplicaDriver driver(WorkspaceDir());
  if (!driver.Open(&error)) {
    process::WipeEnvironment(secrets);
    process::WipeEnvironment(previous.secrets);
    return ServiceFail(error);
  }
  const int timeout_s = Seconds(planned, "ready_timeout", 60);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string failure;
  // A rollout that fails (a replica of the new spec exits, or is not ready in
  // time) is rolled back to the last spec that ran, and the apply fails once
  // that serves again (docs/services.md, "Rolling back").
  std::optional<controller::Rollback> rolled_back;
  auto roll_back = [&](const std::string& why) {
    if (creating || rolled_back) return false;
    const int64_t stable = st.StableGeneration(spec->id);
    if (stable == 0 || stable == generation) return false;
    controller::Rollback rb;
    std::string e;
    if (!st.RollBack(spec->id, generation, why, clock.WallMs(), &rb, &e)) return false;
    std::optional<controller::ServiceSpec> good = st.Get(spec->id);
    std::map<std::string, std::string> good_secrets;
    if (!good || !st.OpenSecrets(spec->id, &good_secrets, &e)) return false;
    process::WipeEnvironment(previous.secrets);
    previous = controller::PreviousSpec{running_spec, secrets};
    has_previous = true;
    process::WipeEnvironment(secrets);
    secrets = std::move(good_secrets);
    running_spec = controller::RunningSpec(*good, failed_regions, st, clock.WallMs());
    generation = rb.to_generation;
    rolled_back = rb;
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    return true;
  };
  std::string progress;  // the controller's view of the replicas, while it drives them
  // The load balancers in front of the service drain a replica before it is replaced.
  controller::HaproxyGate gate(WorkspaceDir() / "lb", spec->id, clock);
  for (;;) {
    if (!driver.Drive(&error)) {
      failure = error;
      break;
    }
    if (driver.supervisor()) {
      // This apply drives the replicas (no controller leads).
      controller::Supervisor& sup = *driver.supervisor();
      if (!controller::ReconcileService(sup, running_spec, secrets, st.logs_dir(),
                                        /*one_at_a_time=*/!creating, &error, &gate,
                                        has_previous ? &previous : nullptr)) {
        failure = error;
        break;
      }
      sup.Tick();
      auto snaps = controller::ServiceReplicas(sup, spec->id);
      bool done = true;
      for (const auto& s : snaps) done = done && s.ready;
      // Every wanted replica supervised with its current spec, and ready; no
      // other (a surge replica, one no longer wanted) left.
      auto wanted = controller::ReplicaSpecsFor(running_spec, secrets, st.logs_dir());
      done = done && snaps.size() == wanted.size();
      for (auto& r : wanted) {
        done = done && sup.Unchanged(r) && sup.Ready(r.id);
        process::WipeEnvironment(r.env);
      }
      if (done) {
        st.MarkStable(spec->id, generation);
        break;
      }
      // A replica of the new spec that exited (back-off after an exit or a
      // failed start) or is not ready in time fails the rollout at once; an
      // old one that crashes meanwhile is only replaced.
      // A rollout of many replicas takes as long as it takes (each replica
      // has its own ready_timeout, which RolloutFailure checks): this
      // backstop fires only after ready_timeout without progress.
      std::string now_replicas;
      for (const auto& x : snaps)
        now_replicas += x.id + ":" + std::to_string(x.pid) + (x.ready ? "+ " : "- ");
      if (now_replicas != progress) {
        progress = now_replicas;
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
      }
      std::string why = controller::RolloutFailure(sup, running_spec, secrets, st.logs_dir(), clock.WallMs());
      if (why.empty() && std::chrono::steady_clock::now() >= deadline)
        why = "no progress for " + std::to_string(timeout_s) + "s: " + NotReadyReason(snaps, st.logs_dir());
      if (!why.empty()) {
        if (roll_back(why)) continue;
        failure = rolled_back ? RolloutName(rolled_back->version) + " failed (" + rolled_back->reason +
                                    ") and was rolled back, but the rollback did not serve either: " + why
                              : why;
        break;
      }
    } else {
      // The leading controller drives them (and rolls a failed rollout
      // back): its status says when this generation is in place.
      auto view = controller::FindServiceStatus(driver.ControllerStatus(), spec->id);
      if (view && view->rolled_back_from == generation) {
        rolled_back =
            controller::Rollback{generation, view->generation, spec->version, view->rollback_reason, 0};
        if (view->converged) break;
      } else if (view && view->generation >= generation && view->converged) {
        break;
      }
      // No early failure here: the controller restarts and retries, and rolls
      // a rollout back after ready_timeout (then the old version needs its
      // own time): its state is reported when the wait ends. A rollout of
      // many replicas takes as long as it takes: the wait ends only after
      // 2 x ready_timeout + 10 s without progress (no replica started,
      // replaced or became ready).
      if (view && view->replicas != progress) {
        progress = view->replicas;
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
      }
      if (std::chrono::steady_clock::now() >= deadline + std::chrono::seconds(timeout_s + 10)) {
        failure = "no progress for " + std::to_string(2 * timeout_s + 10) + "s under the controller (" +
                  driver.holder() + "): " +
                  (view ? std::to_string(view->ready) + " of " + std::to_string(view->wanted) +
                              " replicas ready" + (view->failing.empty() ? "" : "; " + view->failing)
                        : std::string("it has not picked the service up yet")) +
                  " (logs: " + st.logs_dir().string() + "; see plinth status)";
        break;
      }
    }
    if (stop_ && stop_->load()) break;  // the replicas go on; the next apply or the controller takes over
    std::this_thread::sleep_for(100ms);
  }
  if (rolled_back && failure.empty())
    failure = "the rollout of " + RolloutName(rolled_back->version) +
              " failed and was rolled back to the last version that ran, which serves again: " +
              rolled_back->reason + "; fix the service and apply again (plinth plan shows the change again)";
  process::WipeEnvironment(secrets);
  process::WipeEnvironment(previous.secrets);
  if (!failure.empty()) return ServiceFail(failure);
  ValueMap attrs = planned;
  attrs["replicas_running"] = Value::Number(driver.RunningReplicas(spec->id));
  if (attrs.count("rollout_pending")) attrs["rollout_pending"] = Value::Bool(false);
  return ResourceObject{spec->id, std::move(attrs)};
}

Result<std::optional<ResourceObject>> LocalProvider::ReadService(const std::string& id,
                                                                 const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  auto store = Services(false);
  if (!store.ok()) return store.error();
  if (!store.value() || !store.value()->Get(id)) return Out();
  ReplicaDriver reader(WorkspaceDir());
  ValueMap attrs = prior;
  attrs["replicas_running"] = Value::Number(reader.RunningReplicas(id));
  // A staged change that the controller (or an apply in its window) has
  // put in place, or one still waiting.
  const bool staged = store.value()->Staged(id).has_value();
  if (staged || attrs.count("rollout_pending")) attrs["rollout_pending"] = Value::Bool(staged);
  return Out(ResourceObject{id, std::move(attrs)});
}

Result<Done> LocalProvider::DeleteService(const std::string& id) {
  auto store = Services(false);
  if (!store.ok()) return store.error();
  std::string error;
  if (store.value() && !store.value()->Remove(id, &error)) return ServiceFail(error);
  std::error_code ec;
  if (!fs::exists(WorkspaceDir() / "controller" / "replicas.db", ec)) return Done{};
  ReplicaDriver driver(WorkspaceDir());
  if (!driver.Open(&error)) return ServiceFail(error);
  // Each replica gets SIGTERM, then SIGKILL after the grace (10 s).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    if (!driver.Drive(&error)) return ServiceFail(error);
    if (driver.supervisor()) {
      controller::RemoveServiceReplicas(*driver.supervisor(), id);
      driver.supervisor()->Tick();
      if (controller::ServiceReplicas(*driver.supervisor(), id).empty()) return Done{};
    } else if (nlohmann::json doc = driver.ControllerStatus();
               doc.is_object() && !controller::FindServiceStatus(doc, id)) {
      return Done{};  // the leading controller stopped them and no longer lists the service
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return ServiceFail("service " + id + ": its replicas did not stop within 30s; see plinth status");
    std::this_thread::sleep_for(100ms);
  }
}

}  // namespace plinth::runtime
