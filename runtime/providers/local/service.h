// The configuration side of services and load balancers on the `local`
// provider (docs/services.md): plan-time checks and planned values (ids,
// replica endpoints, a load balancer's address and backends).
//
// Input: a resource's configuration or planned ValueMap as the engine hands
// it to the provider. References arrive as the referenced resource's whole
// object: `regions = [region.eu]` carries each region's host, port range and
// down flag; `service = service.api` carries the service's planned values
// (its regions, port, replicas and endpoints among them).
//
// Where replicas listen: replica i (0-based) of a service in region R
// listens on R.host (a loopback address, default 127.0.0.1) at port + i, and
// port .. port + replicas - 1 must lie in R's port range. Endpoint lines are
// "<region>/<i> <host>:<port>", in the order of `regions`, then i.
//
// Invariants: the values of `secret_env` never appear in an id, a message or
// an endpoint; only their names do. Everything here is pure (no file,
// process or socket is touched) except the check that a command's program
// exists (a PATH lookup). Thread safety: every function may be called from
// any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/types/types.h"
#include "runtime/controller/services.h"

namespace plinth::runtime::service_config {

// "25%" -> 25; nullopt for anything else (digits, then '%', at most 100).
std::optional<int64_t> ParsePercent(const std::string& text);

// Plan-time problems of a service's configuration (lowercase, no trailing
// period, each says how to fix it). Values still unknown are not checked.
// Regions that are not region references, replicas < 1, a port outside
// 1024..65535 or whose replicas leave a region's port range, two regions on
// one host whose replica ports overlap, an empty command or one whose program
// is not on PATH (or, given with a '/', is not an executable file), env
// names, bucket grants (as for jobs; the principal defaults to
// "service.<name>"), probes (exactly one of http/tcp/exec, an http path
// starting with '/', a port the replicas listen on, positive period and
// timeout, thresholds >= 1, a liveness success_threshold of 1).
std::vector<std::string> ValidateService(const ValueMap& config);

// Plan-time problems of a load balancer: service not a service reference,
// port outside 1..65535, a listen address that is not a loopback IPv4
// address, a listen address and port taken by one of the service's replicas,
// mode failover without primary, a primary that is not one of the service's
// regions.
std::vector<std::string> ValidateLoadBalancer(const ValueMap& config);

// Keeps only the identity of a service's region references in planned values
// ({name, host, port_base, port_count}); call after defaults are filled.
void NormalizeServiceReferences(const ValueMap& config, ValueMap& planned);

// Fills a planned service's id ("<name>") and endpoints; unknown while the
// regions, port or replicas are.
void PlanService(ValueMap& planned);

// Keeps only the identity of a load balancer's references in planned values
// (service -> {name, id, endpoints}, primary -> {name}) and fills `health`
// from the service's readiness probe ("http <path>", else "tcp").
void NormalizeLoadBalancerReferences(const ValueMap& config, ValueMap& planned);

// Fills a planned load balancer's id ("<name>"), endpoint ("<listen>:<port>"),
// url ("http://<listen>:<port>") and backends (the service's endpoints, with
// " backup" appended to those that only take traffic when the primary region
// has no ready replica: mode failover, every region but the primary).
void PlanLoadBalancer(ValueMap& planned);

// A service's rollout numbers (docs/services.md, "Rolling updates"): each of
// max_unavailable (default 1) and max_surge (default 0) is a whole number of
// replicas or a percentage of `replicas` ("25%"): unavailable rounds down,
// surge rounds up, and when percentages come to 0 for both, max_unavailable
// is 1 (Kubernetes' rules). nullopt while unknown or invalid; `errors` says
// what is wrong with a value (ValidateService reports them).
struct RolloutNumbers {
  std::optional<int64_t> max_unavailable = 1, max_surge = 0;
  std::vector<std::string> errors;
};
RolloutNumbers ResolveRollout(const ValueMap& config);

// The `autoscale` block of a service's configuration or planned values as
// the runtime keeps it; nullopt without one (or while a number in it is
// unknown). Problems (min/max, targets, policies) are appended to *errs,
// each saying how to fix it; a spec is returned only when there are none.
std::optional<controller::ServiceAutoscale> AutoscaleOf(const ValueMap& config,
                                                        std::vector<std::string>* errs);

// The `flapping` block of a service's configuration or planned values as the
// runtime keeps it; nullopt without one or while a value in it is unknown.
// Problems are appended to *errs (a spec is returned only when there are none).
std::optional<controller::FlappingSpec> FlappingOf(const ValueMap& config, std::vector<std::string>* errs);

// Whether the service keeps relocation blocks (controller::HasRelocationBlocks):
// on_region_failure = "relocate" or flapping.remedy = "move"; nullopt while unknown.
std::optional<bool> RelocationBlocks(const ValueMap& config);

// A replica endpoint parsed from an endpoint line.
struct Endpoint {
  std::string region;
  int index = 0;
  std::string host;
  int port = 0;
};
// The plan's note about a rollout that failed and was rolled back: which
// version, when (UTC) and why.
std::string RollbackNote(const controller::Rollback& rb);

std::optional<Endpoint> ParseEndpoint(const std::string& line);

// Whether `host` is a dotted-quad IPv4 address in 127.0.0.0/8.
bool IsLoopbackIpv4(const std::string& host);

}  // namespace plinth::runtime::service_config
