// Load balancers of the local provider (docs/load-balancing.md): one HAProxy
// master-worker process per load balancer, in <workspace dir>/lb/<name>
// (runtime/controller/haproxy.h). The configuration side (checks, address,
// backends, health) is service.{h,cpp}.
//
// A create or update renders the configuration from the planned backends,
// has `haproxy -c` check it, and only then swaps it in and starts or reloads
// HAProxy (no connection is refused during a reload); a configuration HAProxy
// refuses fails the apply and leaves the running one serving. HAProxy checks
// each replica by the service's readiness probe (`health`), so only ready
// replicas take traffic even while no controller runs. HAProxy is a daemon:
// it outlives apply, and the next apply adopts it by pid and start time.
#include <cstdlib>
#include <optional>

#include "runtime/controller/haproxy.h"
#include "runtime/controller/lb_supervision.h"
#include "runtime/controller/services.h"
#include "runtime/process/process.h"
#include "runtime/providers/local/provider.h"
#include "runtime/providers/local/service.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

ProviderError LbFail(std::string message) {
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

std::optional<controller::LbSpec> LbSpecFromPlanned(const ValueMap& planned, std::string* error) {
  controller::LbSpec spec;
  spec.name = Text(planned, "id");
  spec.bind_host = Text(planned, "listen");
  const Value* port = Get(planned, "port");
  if (spec.name.empty() || spec.bind_host.empty() || !port || port->kind() != Value::Kind::Number)
    return *error = "name, listen and port must be known at apply", std::nullopt;
  spec.bind_port = static_cast<int>(port->as_number());
  const std::string mode = Text(planned, "mode");
  spec.mode = mode == "failover"  ? controller::LbMode::kFailover
              : mode == "latency" ? controller::LbMode::kLatency
                                  : controller::LbMode::kRoundRobin;
  if (const Value* p = Get(planned, "primary"); p && p->kind() == Value::Kind::Object)
    spec.primary_region = Text(p->as_object(), "name");
  // "http /ready, every 1s, rise 1, fall 3" or "tcp, every 2s, rise 1, fall 3".
  const std::string health = Text(planned, "health");
  std::string check = health.substr(0, health.find(','));
  if (check.rfind("http ", 0) == 0) {
    spec.health.kind = controller::LbHealth::Kind::kHttp;
    spec.health.path = check.substr(5);
    spec.protocol = controller::LbProtocol::kHttp;
  } else {
    spec.health.kind = controller::LbHealth::Kind::kTcp;
    spec.protocol = controller::LbProtocol::kTcp;
  }
  auto number_after = [&](const std::string& word) -> std::optional<int64_t> {
    auto at = health.find(", " + word + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::strtoll(health.c_str() + at + word.size() + 3, nullptr, 10);
  };
  if (auto at = health.find(", every "); at != std::string::npos) {
    char* end = nullptr;
    long long n = std::strtoll(health.c_str() + at + 8, &end, 10);
    bool ms = end && end[0] == 'm' && end[1] == 's';
    if (n > 0) spec.health.interval_ms = static_cast<int>(ms ? n : n * 1000);
  }
  if (auto rise = number_after("rise"); rise && *rise > 0) spec.health.rise = static_cast<int>(*rise);
  if (auto fall = number_after("fall"); fall && *fall > 0) spec.health.fall = static_cast<int>(*fall);
  if (const Value* svc = Get(planned, "service"); svc && svc->kind() == Value::Kind::Object) {
    spec.service = Text(svc->as_object(), "id");
    if (spec.service.empty()) spec.service = Text(svc->as_object(), "name");
  }
  const Value* backends = Get(planned, "backends");
  if (!backends || backends->kind() != Value::Kind::List)
    return *error = "the service's endpoints must be known at apply", std::nullopt;
  for (const Value& b : backends->as_list()) {
    if (b.kind() != Value::Kind::String) continue;
    auto e = service_config::ParseEndpoint(b.as_string());
    if (!e)
      return *error = "backend '" + b.as_string() + "' is not \"<region>/<i> <host>:<port>\"", std::nullopt;
    controller::LbBackend backend;
    backend.id = e->region + "/" + std::to_string(e->index);
    backend.region = e->region;
    backend.host = e->host;
    backend.port = e->port;
    if (!spec.service.empty()) backend.replica = controller::ReplicaId(spec.service, e->region, e->index);
    spec.backends.push_back(std::move(backend));
  }
  if (auto why = controller::ValidateSpec(spec)) return *error = *why, std::nullopt;
  return spec;
}

}  // namespace

Result<ResourceObject> LocalProvider::WriteLoadBalancer(const ValueMap& planned) {
  std::string error;
  auto spec = LbSpecFromPlanned(planned, &error);
  if (!spec) return LbFail("cannot apply the load balancer: " + error);
  auto haproxy = controller::FindHaproxy();
  if (!haproxy)
    return LbFail(
        "haproxy is not installed (looked on PATH and in /usr/sbin): install the Debian package "
        "haproxy, or set PLINTH_HAPROXY to its path");
  // The controller restarts a load balancer whose HAProxy died; the lock keeps it out meanwhile.
  controller::LbLock lock(WorkspaceDir() / "lb", spec->name);
  controller::HaproxyInstance instance(WorkspaceDir() / "lb" / spec->name, *haproxy);
  controller::LbRuntime runtime;
  if (spec->mode == controller::LbMode::kLatency) runtime.region_rtt_us = controller::MeasureRegionRtt(*spec);
  if (auto why = instance.Apply(*spec, runtime)) return LbFail("load balancer " + spec->name + ": " + *why);
  ValueMap attrs = planned;
  attrs["running"] = Value::Bool(instance.Running());
  return ResourceObject{spec->name, std::move(attrs)};
}

Result<std::optional<ResourceObject>> LocalProvider::ReadLoadBalancer(const std::string& id,
                                                                      const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  fs::path dir = WorkspaceDir() / "lb" / id;
  std::error_code ec;
  if (!fs::exists(dir / "haproxy.cfg", ec)) return Out();
  auto haproxy = controller::FindHaproxy();
  controller::HaproxyInstance instance(dir, haproxy ? *haproxy : fs::path("haproxy"));
  ValueMap attrs = prior;
  attrs["running"] = Value::Bool(instance.Running());
  return Out(ResourceObject{id, std::move(attrs)});
}

Result<Done> LocalProvider::DeleteLoadBalancer(const std::string& id) {
  fs::path dir = WorkspaceDir() / "lb" / id;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Done{};
  // Under the lock, and without spec.json first: a controller never starts it again.
  controller::LbLock lock(WorkspaceDir() / "lb", id);
  auto haproxy = controller::FindHaproxy();
  controller::HaproxyInstance instance(dir, haproxy ? *haproxy : fs::path("haproxy"));
  fs::remove(dir / "spec.json", ec);
  if (auto why = instance.Stop()) return LbFail("load balancer " + id + ": cannot stop HAProxy: " + *why);
  fs::remove_all(dir, ec);
  if (ec) return LbFail("load balancer " + id + ": cannot remove " + dir.string() + ": " + ec.message());
  fs::remove(WorkspaceDir() / "lb" / (id + ".lock"), ec);
  return Done{};
}

}  // namespace plinth::runtime
