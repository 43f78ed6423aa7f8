#include "runtime/providers/local/service.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>

#include "runtime/controller/service_autoscaling.h"
#include "runtime/process/process.h"
#include "runtime/providers/local/compute.h"
#include "runtime/providers/local/region_network.h"

namespace plinth::runtime::service_config {
namespace {

constexpr const char* kDefaultHost = "127.0.0.1";

const Value* Find(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool KnownString(const Value* v) {
  return v && v->kind() == Value::Kind::String;
}

std::optional<int64_t> KnownInt(const Value* v) {
  if (!v || v->kind() != Value::Kind::Number || !v->is_integer()) return std::nullopt;
  return static_cast<int64_t>(v->as_number());
}

std::string Str(const ValueMap& m, const std::string& key) {
  const Value* v = Find(m, key);
  return KnownString(v) ? v->as_string() : "";
}

// "region.eu" -> "region"; "module.a.service.x[0]" -> "service".
std::string TypeOfAddress(const std::string& address) {
  std::string a = address;
  if (auto bracket = a.find('['); bracket != std::string::npos) a = a.substr(0, bracket);
  auto last = a.rfind('.');
  if (last == std::string::npos || last == 0) return "";
  auto before = a.rfind('.', last - 1);
  size_t from = before == std::string::npos ? 0 : before + 1;
  return a.substr(from, last - from);
}

std::string Shown(const Value& v) {
  return v.sensitive() ? std::string("a sensitive value") : v.ToString();
}

// A region as a service's reference carries it.
struct RegionView {
  std::string name;
  std::string host = kDefaultHost;
  std::optional<int64_t> port_base, port_count;
  bool known = false;  // name, host and range known
};

std::optional<RegionView> ViewRegion(const Value& ref) {
  if (ref.kind() != Value::Kind::Object) return std::nullopt;
  const ValueMap& o = ref.as_object();
  RegionView r;
  r.name = Str(o, "name");
  const Value* host = Find(o, "host");
  if (KnownString(host)) r.host = host->as_string();
  r.port_base = KnownInt(Find(o, "port_base"));
  r.port_count = KnownInt(Find(o, "port_count"));
  r.known = !r.name.empty() && (!host || host->is_null() || KnownString(host)) && r.port_base && r.port_count;
  return r;
}

std::vector<RegionView> Regions(const ValueMap& m) {
  std::vector<RegionView> out;
  const Value* list = Find(m, "regions");
  if (!list || list->kind() != Value::Kind::List) return out;
  for (const Value& ref : list->as_list())
    if (auto r = ViewRegion(ref)) out.push_back(*r);
  return out;
}

std::string Range(int64_t first, int64_t count) {
  return count == 1 ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(first + count - 1);
}

std::optional<int64_t> Percent(const std::string& text) {
  return ParsePercent(text);
}

// The rollout block's numbers (defaults when it is absent or they are unset).
using Rollout = RolloutNumbers;
Rollout RolloutOf(const ValueMap& config) {
  return ResolveRollout(config);
}

// on_region_failure: "wait" (also unset), "relocate", nullopt while unknown;
// anything else is returned as written (ValidateService reports it).
std::optional<std::string> OnRegionFailure(const ValueMap& config) {
  const Value* v = Find(config, "on_region_failure");
  if (!v || v->is_null()) return std::string("wait");
  if (!KnownString(v)) return std::nullopt;
  return v->as_string();
}

}  // namespace

std::optional<controller::FlappingSpec> FlappingOf(const ValueMap& config, std::vector<std::string>* errs) {
  const Value* v = Find(config, "flapping");
  if (!v || v->kind() != Value::Kind::Object) return std::nullopt;
  const ValueMap& f = v->as_object();
  controller::FlappingSpec out;
  bool known = true;
  const size_t errors_before = errs->size();
  if (const Value* n = Find(f, "restarts"); n && !n->is_null()) {
    if (auto k = KnownInt(n)) {
      if (*k < 2 || *k > 1000)
        errs->push_back("flapping.restarts is " + std::to_string(*k) +
                        ": give 2 to 1000 (the restarts within `within` that make a replica flapping)");
      out.restarts = static_cast<int>(*k);
    } else {
      known = false;
    }
  }
  auto seconds = [&](const char* key, int* out_s, int64_t min_ms, const char* why) {
    const Value* d = Find(f, key);
    if (!d || d->is_null()) return;
    if (d->kind() != Value::Kind::Duration) {
      known = false;
      return;
    }
    const int64_t ms = static_cast<int64_t>(d->as_number());
    if (ms < min_ms || ms > 7LL * 24 * 3600 * 1000)
      errs->push_back(std::string("flapping.") + key + " is " + d->ToString() + ": " + why);
    *out_s = static_cast<int>(ms / 1000);
  };
  seconds("within", &out.within_s, 10000, "give 10s to 7d (the window restarts are counted over)");
  seconds("hold", &out.hold_s, 10000, "give 10s to 7d (how long a moved replica stays away)");
  if (const Value* r = Find(f, "remedy"); r && !r->is_null()) {
    if (!KnownString(r)) {
      known = false;
    } else if (r->as_string() == "move") {
      out.move = true;
    } else if (r->as_string() != "alert") {
      errs->push_back("flapping.remedy is \"" + r->as_string() +
                      "\": give \"alert\" (ReplicaFlapping fires; the replica restarts where it is) or "
                      "\"move\" (it also runs in another region for `hold`)");
    }
  }
  if (out.move) {
    if (const Value* list = Find(config, "regions");
        list && list->kind() == Value::Kind::List && list->as_list().size() < 2)
      errs->push_back(
          "flapping.remedy = \"move\" needs a second region to move a flapping replica to: add one to "
          "regions, or use remedy = \"alert\"");
  }
  if (!known || errs->size() != errors_before) return std::nullopt;
  return out;
}

std::optional<bool> RelocationBlocks(const ValueMap& config) {
  const std::optional<std::string> policy = OnRegionFailure(config);
  if (!policy) return std::nullopt;
  if (*policy == "relocate") return true;
  const Value* v = Find(config, "flapping");
  if (!v || v->kind() != Value::Kind::Object) return false;
  const Value* r = Find(v->as_object(), "remedy");
  if (!r || r->is_null()) return false;
  if (!KnownString(r)) return std::nullopt;
  return r->as_string() == "move";
}

namespace {

// How many replica indices a region lays out (controller::Slots): with
// autoscale, its max (at least replicas); else replicas. nullopt while unknown.
std::optional<int64_t> LayoutSlots(const ValueMap& config) {
  auto replicas = KnownInt(Find(config, "replicas"));
  if (!replicas) return std::nullopt;
  const Value* a = Find(config, "autoscale");
  if (!a || a->kind() != Value::Kind::Object) return replicas;
  auto max = KnownInt(Find(a->as_object(), "max"));
  if (!max) return std::nullopt;
  return std::max(*replicas, *max);
}

// How many ports from `port` each region offers the service: replicas, surge
// and, with relocation, a block of replicas per other region
// (controller::PortSlots). nullopt while a count is unknown.
std::optional<int64_t> PortSlotsOf(const ValueMap& config) {
  auto replicas = KnownInt(Find(config, "replicas"));
  auto surge = RolloutOf(config).max_surge;
  auto blocks = RelocationBlocks(config);
  const Value* list = Find(config, "regions");
  if (!replicas || !surge || !blocks || *replicas < 1 || *surge < 0) return std::nullopt;
  const int64_t slots = LayoutSlots(config).value_or(*replicas);
  int64_t others = 0;
  if (*blocks) {
    if (!list || list->kind() != Value::Kind::List) return std::nullopt;
    others = std::max<int64_t>(0, static_cast<int64_t>(list->as_list().size()) - 1);
  }
  return slots + *surge + others * slots;
}

void CheckProbe(const ValueMap& config, const char* kind, std::optional<int64_t> port,
                std::optional<int64_t> replicas, std::vector<std::string>& errs) {
  const Value* v = Find(config, kind);
  if (!v || v->kind() != Value::Kind::Object) return;
  const ValueMap& p = v->as_object();
  const std::string at = std::string(kind) + " probe";
  const Value* http = Find(p, "http");
  const Value* tcp = Find(p, "tcp");
  const Value* exec = Find(p, "exec");
  int set = (http && !http->is_null() ? 1 : 0) +
            (tcp && tcp->kind() == Value::Kind::Bool && tcp->as_bool() ? 1 : 0) +
            (exec && !exec->is_null() ? 1 : 0);
  bool any_unknown =
      (http && http->is_unknown()) || (tcp && tcp->is_unknown()) || (exec && exec->is_unknown());
  if (set == 0 && !any_unknown)
    errs.push_back(at + " checks nothing: set one of http = \"/path\", tcp = true or exec = [\"cmd\", ...]");
  if (set > 1) errs.push_back(at + " sets more than one of http, tcp and exec: keep one");
  if (KnownString(http) && (http->as_string().empty() || http->as_string()[0] != '/'))
    errs.push_back(at + ": http path \"" + http->as_string() +
                   "\" must start with '/', e.g. http = \"/healthz\"");
  if (exec && exec->kind() == Value::Kind::List && exec->as_list().empty())
    errs.push_back(at + ": exec is empty: give the program and its arguments");
  if (auto pp = KnownInt(Find(p, "port")); pp && port && replicas && *replicas >= 1) {
    if (*pp < *port || *pp >= *port + *replicas)
      errs.push_back(at + " port " + std::to_string(*pp) + " is not a port the replicas listen on (" +
                     Range(*port, *replicas) + "): leave port unset to probe each replica's own port");
  }
  for (const char* d : {"period", "timeout"}) {
    if (const Value* t = Find(p, d); t && t->kind() == Value::Kind::Duration && t->as_number() <= 0)
      errs.push_back(at + ": " + d + " must be greater than zero");
  }
  if (const Value* t = Find(p, "initial_delay");
      t && t->kind() == Value::Kind::Duration && t->as_number() < 0)
    errs.push_back(at + ": initial_delay must be 0s or more");
  for (const char* k : {"success_threshold", "failure_threshold"}) {
    if (auto n = KnownInt(Find(p, k)); n && *n < 1)
      errs.push_back(at + ": " + k + " is " + std::to_string(*n) + ": set it to 1 or more");
  }
  if (std::string(kind) != "readiness") {
    if (auto n = KnownInt(Find(p, "success_threshold")); n && *n != 1)
      errs.push_back(at +
                     ": success_threshold must be 1 (as in Kubernetes: only readiness counts successes)");
  }
}

}  // namespace

bool IsLoopbackIpv4(const std::string& host) {
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

std::optional<controller::ServiceAutoscale> AutoscaleOf(const ValueMap& config,
                                                        std::vector<std::string>* errs) {
  const Value* a = Find(config, "autoscale");
  if (!a || a->kind() != Value::Kind::Object) return std::nullopt;
  const ValueMap& o = a->as_object();
  if (a->ContainsUnknown()) return std::nullopt;
  const size_t before = errs->size();
  controller::ServiceAutoscale out;
  auto min = KnownInt(Find(o, "min"));
  auto max = KnownInt(Find(o, "max"));
  out.spec.min = static_cast<int>(min.value_or(1));
  out.spec.max = static_cast<int>(max.value_or(0));
  if (const Value* t = Find(o, "tolerance"); t && t->kind() == Value::Kind::Number)
    out.spec.tolerance = t->as_number();
  if (out.spec.min < 1)
    errs->push_back("autoscale.min is " + std::to_string(out.spec.min) +
                    ": a service keeps at least 1 replica per region; give 1 or more");
  if (out.spec.max > 1000)
    errs->push_back("autoscale.max is " + std::to_string(out.spec.max) +
                    ": give at most 1000 replicas per region");
  for (std::string& e : controller::ValidateAutoscale(out.spec)) errs->push_back("autoscale: " + e);
  if (auto replicas = KnownInt(Find(config, "replicas"));
      replicas && (*replicas < out.spec.min || *replicas > out.spec.max) && out.spec.max >= out.spec.min)
    errs->push_back("replicas is " + std::to_string(*replicas) + " but autoscale keeps " +
                    std::to_string(out.spec.min) + "-" + std::to_string(out.spec.max) +
                    ": replicas is the count each region starts with; keep it between autoscale.min and "
                    "autoscale.max");
  if (const Value* targets = Find(o, "target"); targets && targets->kind() == Value::Kind::Object) {
    for (const auto& [name, body] : targets->as_object()) {
      const auto& known = controller::ServiceSignals();
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        errs->push_back("autoscale target \"" + name +
                        "\" is not a signal: give requests_per_second, in_flight or cpu");
        continue;
      }
      const Value* avg = body.kind() == Value::Kind::Object ? Find(body.as_object(), "average") : nullptr;
      if (!avg || avg->kind() != Value::Kind::Number || !(avg->as_number() > 0)) {
        errs->push_back("autoscale target \"" + name + "\" needs average > 0: the value wanted per replica");
        continue;
      }
      out.targets.push_back({name, avg->as_number()});
    }
  }
  // No target: scale rules (docs/automation.md, "Scale rules") may be its
  // only signals; without them the count stays where it is.
  for (const char* dir : {"scale_up", "scale_down"}) {
    const Value* b = Find(o, dir);
    if (!b || b->kind() != Value::Kind::Object) continue;
    controller::ScalingRules& rules = std::string(dir) == "scale_up" ? out.spec.up : out.spec.down;
    const ValueMap& r = b->as_object();
    if (const Value* w = Find(r, "stabilization"); w && w->kind() == Value::Kind::Duration)
      rules.stabilization_ms = static_cast<int64_t>(w->as_number());
    if (const Value* sel = Find(r, "select"); KnownString(sel)) {
      const std::string v = sel->as_string();
      if (v == "max")
        rules.select = controller::ScalingRules::Select::kMax;
      else if (v == "min")
        rules.select = controller::ScalingRules::Select::kMin;
      else if (v == "disabled")
        rules.select = controller::ScalingRules::Select::kDisabled;
      else
        errs->push_back(std::string("autoscale.") + dir + ".select is \"" + v +
                        "\": give \"max\" (the policy that allows the most change), \"min\" or \"disabled\"");
    }
    const Value* policies = Find(r, "policy");
    if (policies && policies->kind() == Value::Kind::List && !policies->as_list().empty()) {
      rules.policies.clear();
      for (const Value& p : policies->as_list()) {
        if (p.kind() != Value::Kind::Object) continue;
        auto pods = KnownInt(Find(p.as_object(), "pods"));
        auto percent = KnownInt(Find(p.as_object(), "percent"));
        const Value* period = Find(p.as_object(), "period");
        if (pods.has_value() == percent.has_value()) {
          errs->push_back(std::string("autoscale.") + dir +
                          ": a policy sets exactly one of pods = N or percent = N");
          continue;
        }
        controller::ScalingPolicy policy;
        policy.kind =
            pods ? controller::ScalingPolicy::Kind::kPods : controller::ScalingPolicy::Kind::kPercent;
        policy.value = static_cast<int>(pods ? *pods : *percent);
        if (period && period->kind() == Value::Kind::Duration)
          policy.period_ms = static_cast<int64_t>(period->as_number());
        if (policy.value <= 0 || policy.period_ms <= 0) {
          errs->push_back(std::string("autoscale.") + dir + ": a policy's value and period must be positive");
          continue;
        }
        rules.policies.push_back(policy);
      }
    }
  }
  if (errs->size() != before) return std::nullopt;
  return out;
}

RolloutNumbers ResolveRollout(const ValueMap& config) {
  RolloutNumbers r;
  const Value* v = Find(config, "rollout");
  if (!v || v->kind() != Value::Kind::Object) return r;
  const std::optional<int64_t> replicas = KnownInt(Find(config, "replicas"));
  bool percent = false;
  for (auto [key, out] :
       {std::pair{"max_unavailable", &r.max_unavailable}, std::pair{"max_surge", &r.max_surge}}) {
    const Value* n = Find(v->as_object(), key);
    if (!n || n->is_null()) continue;
    *out = std::nullopt;
    if (n->kind() == Value::Kind::Number) {
      if (n->is_integer())
        *out = static_cast<int64_t>(n->as_number());
      else
        r.errors.push_back(std::string("rollout.") + key + " is " + n->ToString() +
                           ": give a whole number of replicas, or a percentage of them (\"25%\")");
      continue;
    }
    if (n->kind() == Value::Kind::String) {
      const std::optional<int64_t> pct = Percent(n->as_string());
      if (!pct) {
        r.errors.push_back(
            std::string("rollout.") + key + " is \"" + n->as_string() +
            "\": give a number of replicas (1) or a percentage of them from \"0%\" to \"100%\"");
        continue;
      }
      percent = true;
      if (!replicas) continue;  // unknown until the replicas are
      // As Kubernetes: unavailable rounds down, surge rounds up.
      const bool up = std::string(key) == "max_surge";
      *out = up ? (*pct * *replicas + 99) / 100 : *pct * *replicas / 100;
      continue;
    }
    if (!n->is_unknown())
      r.errors.push_back(std::string("rollout.") + key +
                         " must be a number of replicas (1) or a percentage of them (\"25%\")");
  }
  // Percentages that both come to 0 (few replicas): one may be unavailable, as Kubernetes.
  if (percent && r.max_unavailable == 0 && r.max_surge == 0) r.max_unavailable = 1;
  return r;
}

std::vector<std::string> ValidateService(const ValueMap& config) {
  std::vector<std::string> errs;
  const std::string name = Str(config, "name");
  std::string address = Str(config, "address");
  if (address.empty()) address = "service." + name;

  // Regions: references to regions, each at most once.
  std::map<std::string, int> seen;
  if (const Value* list = Find(config, "regions"); list && list->kind() == Value::Kind::List) {
    if (list->as_list().empty())
      errs.push_back(
          "regions is empty: place the service in at least one region, e.g. regions = [region.eu]");
    for (const Value& ref : list->as_list()) {
      if (ref.is_unknown()) continue;
      std::string addr = ref.kind() == Value::Kind::Object ? Str(ref.as_object(), "address") : "";
      if (addr.empty() || TypeOfAddress(addr) != "region") {
        errs.push_back("'regions' takes region references, not " + (addr.empty() ? Shown(ref) : addr) +
                       ": write regions = [region.NAME]");
        continue;
      }
      if (++seen[addr] == 2) errs.push_back("regions names " + addr + " twice: list each region once");
    }
  }
  auto replicas = KnownInt(Find(config, "replicas"));
  auto port = KnownInt(Find(config, "port"));
  if (replicas && *replicas < 1)
    errs.push_back("replicas is " + std::to_string(*replicas) +
                   ": a service runs at least 1 replica per region; remove the service to run none");
  if (port && (*port < 1024 || *port > 65535))
    errs.push_back("port " + std::to_string(*port) +
                   " is outside 1024-65535: give the first port of the replicas inside their regions' port "
                   "range");
  const Rollout rollout = RolloutOf(config);
  for (const std::string& e : rollout.errors) errs.push_back(e);
  (void)AutoscaleOf(config, &errs);
  (void)FlappingOf(config, &errs);
  if (rollout.max_unavailable && *rollout.max_unavailable < 0)
    errs.push_back("rollout.max_unavailable is " + std::to_string(*rollout.max_unavailable) +
                   ": give 0 or more replicas");
  if (rollout.max_surge && *rollout.max_surge < 0)
    errs.push_back("rollout.max_surge is " + std::to_string(*rollout.max_surge) +
                   ": give 0 or more replicas");
  if (rollout.max_unavailable && rollout.max_surge && *rollout.max_unavailable == 0 &&
      *rollout.max_surge == 0)
    errs.push_back(
        "rollout.max_unavailable and rollout.max_surge are both 0: a rollout could never replace a replica; "
        "allow one unavailable (max_unavailable = 1) or one extra (max_surge = 1)");
  const std::optional<std::string> policy = OnRegionFailure(config);
  if (policy && *policy != "wait" && *policy != "relocate")
    errs.push_back("on_region_failure is \"" + *policy +
                   "\": give \"wait\" (a down region's replicas wait for it) or \"relocate\" (they run in "
                   "another region meanwhile)");
  if (policy && *policy == "relocate") {
    if (const Value* list = Find(config, "regions");
        list && list->kind() == Value::Kind::List && list->as_list().size() < 2)
      errs.push_back(
          "on_region_failure = \"relocate\" needs a second region to relocate to: add one to regions, or "
          "remove on_region_failure");
  }
  // The ports of the replicas, of the rollout's extra ones and of the
  // replicas a region hosts for others that are down.
  std::optional<int64_t> slots = PortSlotsOf(config);
  if (port && slots && *replicas >= 1 && *port >= 1024 && *port <= 65535) {
    const bool relocating = RelocationBlocks(config).value_or(false);
    const bool surging = rollout.max_surge && *rollout.max_surge > 0;
    const std::string what = relocating ? (surging ? "replicas, their surge and the relocation blocks"
                                                   : "replicas and their relocation blocks")
                             : surging  ? "replicas and their surge"
                                        : "replicas";
    std::vector<RegionView> regions = Regions(config);
    for (const RegionView& r : regions) {
      if (!r.known) continue;
      // A host the region's own check refuses is reported there.
      if (!IsLoopbackIpv4(r.host) && !region_network::NamespaceHostError(r.host).empty()) continue;
      int64_t lo = *r.port_base, hi = *r.port_base + *r.port_count;  // [lo, hi)
      if (*port < lo || *port + *slots > hi)
        errs.push_back(what + " listen on ports " + Range(*port, *slots) + " but region " + r.name +
                       "'s port range is " + Range(lo, *r.port_count) +
                       ": choose port inside it, or widen the region's port_base/port_count");
    }
    // Two regions on one host: their replicas would share ports.
    for (size_t i = 0; i < regions.size(); ++i) {
      for (size_t j = i + 1; j < regions.size(); ++j) {
        if (!regions[i].known || !regions[j].known || regions[i].host != regions[j].host) continue;
        errs.push_back("replicas in regions " + regions[i].name + " and " + regions[j].name +
                       " would both listen on " + regions[i].host + ":" + Range(*port, *slots) +
                       ": give the regions different hosts (host = \"127.0.1.1\", any 127.x.y.z address)");
      }
    }
  }

  // The command: an argv whose program exists.
  if (const Value* c = Find(config, "command"); c && c->kind() == Value::Kind::List) {
    if (c->as_list().empty()) {
      errs.push_back(
          "command is empty: give the program and its arguments, e.g. command = [\"python3\", "
          "\"server.py\"]");
    } else if (KnownString(&c->as_list()[0]) && !c->as_list()[0].sensitive()) {
      const std::string program = c->as_list()[0].as_string();
      if (program.empty()) {
        errs.push_back("command's program (its first element) is empty");
      } else if (program.find('/') == std::string::npos) {
        const char* path = std::getenv("PATH");
        if (!process::FindExecutable(program, path ? path : "/usr/local/bin:/usr/bin:/bin"))
          errs.push_back("command's program '" + program +
                         "' is not on PATH: install it, or give its path (absolute, or relative to the "
                         "configuration's directory)");
      } else if (program[0] == '/' && ::access(program.c_str(), X_OK) != 0) {
        errs.push_back("command's program " + program + " is not an executable file: check the path");
      }
    }
  }
  for (std::string& e : compute_config::CheckEnvironment(config)) errs.push_back(std::move(e));
  // Another Unix user: it must exist, and Plinth must be able to switch to it.
  if (const Value* u = Find(config, "user"); KnownString(u)) {
    const std::string user = u->as_string();
    const std::optional<process::UnixUser> found = process::LookUpUser(user);
    if (user.empty()) {
      errs.push_back("user is empty: name a Unix user, or leave it unset to run as Plinth's own user");
    } else if (!found) {
      errs.push_back("user '" + user + "' does not exist on this machine: create it (useradd --system " +
                     user + "), or leave user unset");
    } else if (!process::MayRunAs(*found)) {
      errs.push_back(
          "user '" + user + "': Plinth runs as uid " + std::to_string(::geteuid()) +
          ", not root, so its replicas cannot run as another user: run plinth as root, or leave user "
          "unset");
    }
  }
  std::string principal;
  if (const Value* p = Find(config, "principal"); p && !p->is_null()) {
    if (KnownString(p)) {
      principal = p->as_string();
      if (principal.empty())
        errs.push_back(
            "principal is empty: leave it unset for \"service.<name>\" or name who the service "
            "acts as");
    }
  } else {
    principal = "service." + name;
  }
  for (std::string& e : compute_config::CheckBucketAccess(config, address, principal))
    errs.push_back(std::move(e));

  for (const char* kind : {"liveness", "readiness", "startup"})
    CheckProbe(config, kind, port, replicas, errs);
  return errs;
}

std::vector<std::string> ValidateLoadBalancer(const ValueMap& config) {
  std::vector<std::string> errs;
  const Value* svc = Find(config, "service");
  const ValueMap* service = nullptr;
  if (svc && !svc->is_unknown()) {
    std::string addr = svc->kind() == Value::Kind::Object ? Str(svc->as_object(), "address") : "";
    if (addr.empty() || TypeOfAddress(addr) != "service")
      errs.push_back("'service' takes a service reference, not " + (addr.empty() ? Shown(*svc) : addr) +
                     ": write service = service.NAME");
    else
      service = &svc->as_object();
  }
  auto port = KnownInt(Find(config, "port"));
  if (port && (*port < 1 || *port > 65535))
    errs.push_back("port " + std::to_string(*port) + " is outside 1-65535");
  std::string listen = kDefaultHost;
  if (const Value* l = Find(config, "listen"); KnownString(l)) {
    listen = l->as_string();
    if (!IsLoopbackIpv4(listen))
      errs.push_back("listen \"" + listen +
                     "\" is not a loopback address: the local provider's load balancers listen on 127.x.y.z "
                     "only (e.g. listen = \"127.0.0.1\")");
  }
  const std::string mode = Str(config, "mode");
  const Value* primary = Find(config, "primary");
  std::string primary_name;
  if (primary && !primary->is_null() && !primary->is_unknown()) {
    std::string addr = primary->kind() == Value::Kind::Object ? Str(primary->as_object(), "address") : "";
    if (addr.empty() || TypeOfAddress(addr) != "region")
      errs.push_back("'primary' takes a region reference, not " + (addr.empty() ? Shown(*primary) : addr) +
                     ": write primary = region.NAME");
    else
      primary_name = Str(primary->as_object(), "name");
  }
  if (mode == "failover" && (!primary || primary->is_null()))
    errs.push_back(
        "mode \"failover\" needs a primary region: add primary = region.NAME (one of the service's "
        "regions); the others take traffic only when it has no ready replica");
  if (mode != "failover" && !mode.empty() && primary && !primary->is_null() && !primary->is_unknown())
    errs.push_back("primary is only used with mode = \"failover\": remove it or set mode = \"failover\"");
  if (service) {
    std::vector<RegionView> regions = Regions(*service);
    if (!primary_name.empty() && !regions.empty()) {
      bool found = false;
      std::string names;
      for (const RegionView& r : regions) {
        found = found || r.name == primary_name;
        names += (names.empty() ? "" : ", ") + r.name;
      }
      if (!found)
        errs.push_back("primary region " + primary_name + " is not one of the service's regions (" + names +
                       "): choose one of them, or add it to the service's regions");
    }
    auto sport = KnownInt(Find(*service, "port"));
    auto replicas = KnownInt(Find(*service, "replicas"));
    if (port && sport && replicas) {
      for (const RegionView& r : regions) {
        if (r.known && r.host == listen && *port >= *sport &&
            *port < *sport + PortSlotsOf(*service).value_or(*replicas))
          errs.push_back("port " + std::to_string(*port) + " on " + listen + " is taken by a replica of " +
                         Str(*service, "address") + " in region " + r.name + ": choose another port");
      }
    }
  }
  return errs;
}

void NormalizeServiceReferences(const ValueMap& config, ValueMap& planned) {
  const Value* list = Find(config, "regions");
  if (!list || list->kind() != Value::Kind::List) return;
  ValueList out;
  for (const Value& ref : list->as_list()) {
    if (ref.kind() != Value::Kind::Object) {
      out.push_back(ref);
      continue;
    }
    const ValueMap& o = ref.as_object();
    ValueMap id;
    for (const char* k : {"name", "host", "port_base", "port_count", "down"}) {
      if (const Value* v = Find(o, k)) id[k] = *v;
    }
    // A namespaced region's replicas run in its namespace, named from its
    // path: both are kept (only then, so other services' state is unchanged).
    if (const Value* iso = Find(o, "isolation");
        iso && iso->kind() == Value::Kind::String && iso->as_string() == "namespace") {
      id["isolation"] = *iso;
      if (const Value* path = Find(o, "path")) id["path"] = *path;
    }
    out.push_back(Value::Object(std::move(id)));
  }
  planned["regions"] = Value::List(std::move(out));
}

void PlanService(ValueMap& planned) {
  const std::string name = Str(planned, "name");
  planned["id"] = name.empty() ? Value::Unknown(Type::String()) : Value::String(name);
  auto port = KnownInt(Find(planned, "port"));
  // With autoscale, every replica the region may run (up to max) has its endpoint.
  auto replicas = LayoutSlots(planned);
  const Value* list = Find(planned, "regions");
  const std::optional<bool> blocks = RelocationBlocks(planned);
  if (!port || !replicas || !list || list->kind() != Value::Kind::List || list->ContainsUnknown()) {
    planned["endpoints"] = Value::Unknown(Type::List(Type::String()));
    planned["surge_endpoints"] = Value::Unknown(Type::List(Type::String()));
    planned["relocation_endpoints"] = Value::Unknown(Type::List(Type::String()));
    return;
  }
  const std::optional<int64_t> surge = RolloutOf(planned).max_surge;
  ValueList endpoints, surge_endpoints;
  for (const RegionView& r : Regions(planned)) {
    auto line = [&](int64_t i) {
      return Value::String(r.name + "/" + std::to_string(i) + " " + r.host + ":" + std::to_string(*port + i));
    };
    for (int64_t i = 0; i < *replicas; ++i) endpoints.push_back(line(i));
    for (int64_t i = *replicas; surge && i < *replicas + *surge; ++i) surge_endpoints.push_back(line(i));
  }
  planned["endpoints"] = Value::List(std::move(endpoints));
  planned["surge_endpoints"] =
      surge ? Value::List(std::move(surge_endpoints)) : Value::Unknown(Type::List(Type::String()));
  if (blocks && !*blocks) {
    planned["relocation_endpoints"] = Value::List({});  // nothing relocates
    return;
  }
  if (!blocks || !surge) {
    planned["relocation_endpoints"] = Value::Unknown(Type::List(Type::String()));
    return;
  }
  // Region H's block for the k-th other region starts at slots + surge + k * slots.
  const std::vector<RegionView> regions = Regions(planned);
  ValueList relocation;
  for (const RegionView& h : regions) {
    int64_t k = 0;
    for (const RegionView& from : regions) {
      if (from.name == h.name) continue;
      for (int64_t i = 0; i < *replicas; ++i) {
        const int64_t index = *replicas + *surge + k * *replicas + i;
        relocation.push_back(Value::String(h.name + "/" + std::to_string(index) + " " + h.host + ":" +
                                           std::to_string(*port + index)));
      }
      ++k;
    }
  }
  planned["relocation_endpoints"] = Value::List(std::move(relocation));
}

void NormalizeLoadBalancerReferences(const ValueMap& config, ValueMap& planned) {
  const Value* svc = Find(config, "service");
  if (!svc || svc->kind() != Value::Kind::Object) return;
  const ValueMap& o = svc->as_object();
  ValueMap id;
  for (const char* k : {"name", "id", "endpoints", "surge_endpoints", "relocation_endpoints"}) {
    if (const Value* v = Find(o, k)) id[k] = *v;
  }
  // How HAProxy checks a replica: the service's readiness probe when it is
  // an HTTP one, else a TCP connect.
  // HAProxy checks as often as the probe runs and counts the same
  // thresholds, so it re-admits a replica about when the probe passes.
  Value health = Value::String("tcp, every 2s, rise 1, fall 3");
  if (const Value* r = Find(o, "readiness"); r && r->kind() == Value::Kind::Object) {
    const ValueMap& p = r->as_object();
    const Value* http = Find(p, "http");
    const Value* period = Find(p, "period");
    auto rise = KnownInt(Find(p, "success_threshold"));
    auto fall = KnownInt(Find(p, "failure_threshold"));
    if ((http && http->is_unknown()) || !period || period->kind() != Value::Kind::Duration || !rise ||
        !fall) {
      health = Value::Unknown(Type::String());
    } else {
      int64_t ms = std::max<int64_t>(100, static_cast<int64_t>(period->as_number()));
      std::string every = ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
      health =
          Value::String((KnownString(http) ? "http " + http->as_string() : std::string("tcp")) + ", every " +
                        every + ", rise " + std::to_string(*rise) + ", fall " + std::to_string(*fall));
    }
  } else if (r && r->is_unknown()) {
    health = Value::Unknown(Type::String());
  }
  planned["health"] = health;
  planned["service"] = Value::Object(std::move(id));
  if (const Value* p = Find(config, "primary"); p && p->kind() == Value::Kind::Object) {
    ValueMap pid;
    if (const Value* n = Find(p->as_object(), "name")) pid["name"] = *n;
    planned["primary"] = Value::Object(std::move(pid));
  }
}

void PlanLoadBalancer(ValueMap& planned) {
  const std::string name = Str(planned, "name");
  planned["id"] = name.empty() ? Value::Unknown(Type::String()) : Value::String(name);
  auto port = KnownInt(Find(planned, "port"));
  const Value* l = Find(planned, "listen");
  std::string listen = KnownString(l) ? l->as_string() : "";
  if (port && !listen.empty()) {
    planned["endpoint"] = Value::String(listen + ":" + std::to_string(*port));
    planned["url"] = Value::String("http://" + listen + ":" + std::to_string(*port));
  } else {
    planned["endpoint"] = Value::Unknown(Type::String());
    planned["url"] = Value::Unknown(Type::String());
  }
  const Value* svc = Find(planned, "service");
  const Value* endpoints =
      svc && svc->kind() == Value::Kind::Object ? Find(svc->as_object(), "endpoints") : nullptr;
  // A service planned before surge existed has none (null); unknown waits for it.
  const Value* surge =
      svc && svc->kind() == Value::Kind::Object ? Find(svc->as_object(), "surge_endpoints") : nullptr;
  const Value* relocation =
      svc && svc->kind() == Value::Kind::Object ? Find(svc->as_object(), "relocation_endpoints") : nullptr;
  if (!endpoints || endpoints->kind() != Value::Kind::List || endpoints->ContainsUnknown() ||
      (surge && surge->is_unknown()) || (relocation && relocation->is_unknown())) {
    planned["backends"] = Value::Unknown(Type::List(Type::String()));
    return;
  }
  std::string primary;
  if (const Value* p = Find(planned, "primary"); p && p->kind() == Value::Kind::Object)
    primary = Str(p->as_object(), "name");
  const bool failover = Str(planned, "mode") == "failover";
  ValueList backends;
  for (const Value& e : endpoints->as_list()) {
    if (!KnownString(&e)) continue;
    auto ep = ParseEndpoint(e.as_string());
    bool backup = failover && ep && ep->region != primary;
    backends.push_back(Value::String(e.as_string() + (backup ? " backup" : "")));
  }
  // The rollout's extra replicas: servers that are down except during a rollout.
  if (surge && surge->kind() == Value::Kind::List) {
    for (const Value& e : surge->as_list()) {
      if (!KnownString(&e)) continue;
      auto ep = ParseEndpoint(e.as_string());
      bool backup = failover && ep && ep->region != primary;
      backends.push_back(Value::String(e.as_string() + (backup ? " backup" : "") + " surge"));
    }
  }
  // Replicas a region runs for another that is down: servers that are down until then.
  if (relocation && relocation->kind() == Value::Kind::List) {
    for (const Value& e : relocation->as_list()) {
      if (!KnownString(&e)) continue;
      auto ep = ParseEndpoint(e.as_string());
      bool backup = failover && ep && ep->region != primary;
      backends.push_back(Value::String(e.as_string() + (backup ? " backup" : "") + " relocated"));
    }
  }
  planned["backends"] = Value::List(std::move(backends));
}

std::string RollbackNote(const controller::Rollback& rb) {
  char when[32] = "";
  const std::time_t t = static_cast<std::time_t>(rb.at_ms / 1000);
  std::tm tm{};
  if (rb.at_ms > 0 && ::gmtime_r(&t, &tm)) std::strftime(when, sizeof(when), " at %Y-%m-%dT%H:%M:%SZ", &tm);
  return "the rollout of " +
         (rb.version.empty() ? std::string("its last change") : "version \"" + rb.version + "\"") +
         " (generation " + std::to_string(rb.from_generation) + ") failed" + when +
         " and was rolled back to the last version that ran: " + rb.reason;
}

std::optional<Endpoint> ParseEndpoint(const std::string& line) {
  // "<region>/<i> <host>:<port>[ ...]"
  auto slash = line.find('/');
  auto space = line.find(' ', slash == std::string::npos ? 0 : slash);
  if (slash == std::string::npos || space == std::string::npos || slash == 0) return std::nullopt;
  std::string rest = line.substr(space + 1);
  if (auto more = rest.find(' '); more != std::string::npos) rest = rest.substr(0, more);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  Endpoint e;
  e.region = line.substr(0, slash);
  e.host = rest.substr(0, colon);
  char* end = nullptr;
  std::string idx = line.substr(slash + 1, space - slash - 1);
  long i = std::strtol(idx.c_str(), &end, 10);
  if (idx.empty() || *end != '\0' || i < 0) return std::nullopt;
  std::string ps = rest.substr(colon + 1);
  long p = std::strtol(ps.c_str(), &end, 10);
  if (ps.empty() || *end != '\0' || p < 1 || p > 65535) return std::nullopt;
  e.index = static_cast<int>(i);
  e.port = static_cast<int>(p);
  return e;
}

std::optional<int64_t> ParsePercent(const std::string& text) {
  if (text.size() < 2 || text.size() > 4 || text.back() != '%') return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    n = n * 10 + (text[i] - '0');
  }
  return n <= 100 ? std::optional<int64_t>(n) : std::nullopt;
}

}  // namespace plinth::runtime::service_config
