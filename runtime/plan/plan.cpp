#include "runtime/plan/plan.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_map>

#include "compiler/eval/evaluator.h"
#include "compiler/schema/schema.h"
#include "compiler/types/user_json.h"
#include "runtime/exec/parallel.h"

namespace plinth::runtime {

const char* ActionName(Action a) {
  switch (a) {
    case Action::NoOp: return "no-op";
    case Action::Create: return "create";
    case Action::Update: return "update";
    case Action::Replace: return "replace";
    case Action::Delete: return "delete";
    case Action::Forget: return "forget";
  }
  return "no-op";
}

std::string SavedAction(const PlannedResource& r) {
  std::string action = r.import_id.empty() ? ActionName(r.action)
                                           : "import " + QuoteString(r.import_id) +
                                                 (r.action == Action::NoOp ? "" : std::string(", ") + ActionName(r.action));
  return action + (r.moved_from.empty() ? "" : " from " + r.moved_from);
}

size_t Plan::Moved() const {
  return static_cast<size_t>(std::count_if(resources.begin(), resources.end(),
                                           [](const PlannedResource& r) { return !r.moved_from.empty(); }));
}

size_t Plan::Count(Action a) const {
  return static_cast<size_t>(
      std::count_if(resources.begin(), resources.end(), [a](const PlannedResource& r) { return r.action == a; }));
}

bool Plan::Denied() const {
  return std::any_of(policy_findings.begin(), policy_findings.end(), [](const PolicyFinding& f) {
    return f.deny && f.outcome == PolicyFinding::Outcome::Violated;
  });
}

size_t Plan::Imports() const {
  return static_cast<size_t>(
      std::count_if(resources.begin(), resources.end(), [](const PlannedResource& r) { return !r.import_id.empty(); }));
}

bool Plan::HasChanges() const {
  return std::any_of(resources.begin(), resources.end(),
                     [](const PlannedResource& r) {
                       return r.action != Action::NoOp || !r.moved_from.empty() || !r.import_id.empty();
                     });
}

namespace {

// Identity attributes the checker adds to every instance; the address is
// the key, so it never "changes".
bool IsIdentity(const std::string& name) { return name == "address"; }

bool IsComputed(const SchemaRegistry* schemas, const std::string& type, const std::string& name) {
  const ResourceSchema* s = schemas ? schemas->Find(type) : nullptr;
  if (!s) return name == "id";
  const AttributeSchema* a = s->body.FindAttribute(name);
  return a ? a->mode == AttrMode::Computed : name == "id";
}

// Equal and fully known; an unknown is always a (possible) change.
bool Same(const Value& a, const Value& b) {
  if (a.ContainsUnknown() || b.ContainsUnknown()) return false;
  return a.Equals(b);
}

const Value& NullValue() {
  static const Value null;
  return null;
}

// `ri` and `prior` are consumed: their attribute maps move into the plan
// (at 100k instances copying them was most of the diff's time and memory).
PlannedResource PlanOne(ResourceInstance&& ri, PriorResource* prior, const std::vector<std::string>* replace_because,
                        const SchemaRegistry* schemas, bool replace_requested) {
  PlannedResource pr;
  pr.address = std::move(ri.address);
  pr.type = std::move(ri.type);
  pr.planned = std::move(ri.attributes);
  pr.depends_on = std::move(ri.depends_on);
  pr.create_before_destroy = ri.create_before_destroy;
  pr.correct_drift = ri.correct_drift;
  pr.range = ri.range;
  pr.call_sites = std::move(ri.call_sites);
  if (!prior) {
    pr.action = Action::Create;
    for (const auto& [name, v] : pr.planned) {
      if (!IsIdentity(name) && !v.is_null()) pr.changes.push_back({name, Value(), v, false});
    }
    return pr;
  }
  const ValueMap& before_map = prior->attributes;
  const bool ignore_all =
      std::find(ri.ignore_changes.begin(), ri.ignore_changes.end(), "all") != ri.ignore_changes.end();
  auto ignored = [&](const std::string& name) {
    return ignore_all || std::find(ri.ignore_changes.begin(), ri.ignore_changes.end(), name) != ri.ignore_changes.end();
  };
  std::set<std::string> forcing;
  if (replace_because) forcing.insert(replace_because->begin(), replace_because->end());
  const bool replacing = !forcing.empty() || replace_requested;

  // Every attribute name on either side, in order (both maps are sorted;
  // map keys stay where they are while values are assigned below).
  std::vector<const std::string*> names;
  names.reserve(before_map.size() + 2);
  {
    auto p = before_map.cbegin();
    auto q = pr.planned.cbegin();
    while (p != before_map.cend() || q != pr.planned.cend()) {
      if (q == pr.planned.cend() || (p != before_map.cend() && p->first < q->first)) {
        names.push_back(&(p++)->first);
      } else if (p == before_map.cend() || q->first < p->first) {
        names.push_back(&(q++)->first);
      } else {
        names.push_back(&p->first);
        ++p;
        ++q;
      }
    }
  }
  for (const std::string* name_ptr : names) {
    const std::string& name = *name_ptr;
    if (IsIdentity(name)) continue;
    auto pit = before_map.find(name);
    const Value& before = pit == before_map.end() ? NullValue() : pit->second;
    auto nit = pr.planned.find(name);
    const Value& after = nit == pr.planned.end() ? NullValue() : nit->second;
    const bool force = replacing && forcing.count(name) > 0;
    if (!force && ignored(name)) {
      pr.planned[name] = before;  // keep what exists
      continue;
    }
    // A computed value that only apply would know again stays as it is
    // unless the resource is replaced.
    if (!replacing && after.is_unknown() && IsComputed(schemas, pr.type, name) && pit != before_map.end()) {
      pr.planned[name] = before;
      continue;
    }
    if (Same(before, after)) continue;
    pr.changes.push_back({name, before, after, force});
  }
  if (replacing) {
    pr.action = Action::Replace;
    if (replace_requested) pr.reasons.push_back("replace requested by --replace");
    for (const std::string& f : forcing) pr.reasons.push_back("'" + f + "' forces replacement");
  } else if (!pr.changes.empty()) {
    pr.action = Action::Update;
  }
  pr.prior = std::move(prior->attributes);
  return pr;
}

// The dependency strings that name `address`: its resource address without
// the instance key, and each enclosing module call (with and without key).
std::vector<std::string> NamesOf(const std::string& address) {
  std::vector<std::string> names;
  std::string a = address;
  if (!a.empty() && a.back() == ']') a = a.substr(0, a.rfind('['));
  names.push_back(a);
  // Module prefixes: module.x, module.x["k"], module.x["k"].module.y ...
  size_t pos = 0;
  while ((pos = address.find("module.", pos)) != std::string::npos) {
    size_t end = pos + 7;
    while (end < address.size() && address[end] != '.' && address[end] != '[') ++end;
    names.push_back(address.substr(0, end));
    if (end < address.size() && address[end] == '[') {
      bool quoted = false;
      size_t k = end + 1;
      for (; k < address.size(); ++k) {
        if (address[k] == '\\' && quoted) {
          ++k;
        } else if (address[k] == '"') {
          quoted = !quoted;
        } else if (address[k] == ']' && !quoted) {
          break;
        }
      }
      names.push_back(address.substr(0, k + 1));
      end = k + 1;
    }
    pos = end;
  }
  return names;
}

// The id a resource is recorded (prior) or planned with, when it is a
// known string; empty otherwise.
std::string KnownId(const ValueMap& attributes) {
  auto it = attributes.find("id");
  if (it == attributes.end() || it->second.kind() != Value::Kind::String || it->second.ContainsUnknown()) return "";
  return it->second.as_string();
}

// A rename (`marker "a"` becomes `marker "b"` with the same path) deletes and
// creates the same object: the creation must wait for the delete, or the two
// race. Identity is the type (which names the provider) plus the id: the
// delete's recorded id equals the creation's planned id. One hash map of the
// deletes' ids, so linear in the plan.
void OrderSameObjectChanges(Plan& plan) {
  std::unordered_map<std::string, std::vector<const PlannedResource*>> deleting;
  for (const PlannedResource& r : plan.resources) {
    if ((r.action != Action::Delete && r.action != Action::Replace) || !r.prior) continue;
    std::string id = KnownId(*r.prior);
    if (!id.empty()) deleting[r.type + '\0' + id].push_back(&r);
  }
  if (deleting.empty()) return;
  for (PlannedResource& r : plan.resources) {
    if (r.action != Action::Create && r.action != Action::Replace) continue;
    std::string id = KnownId(r.planned);
    if (id.empty()) continue;
    auto it = deleting.find(r.type + '\0' + id);
    if (it == deleting.end()) continue;
    for (const PlannedResource* d : it->second) {
      if (d->address != r.address) r.waits_for_deletes.push_back(d->address);
    }
  }
}

}  // namespace

Plan ComputePlan(std::vector<ResourceInstance> config, std::vector<PriorResource> prior,
                 const std::map<std::string, std::vector<std::string>>& replace_because,
                 const SchemaRegistry* schemas, bool destroy,
                 const std::unordered_set<std::string>* replace_requested) {
  Plan plan;
  // A destroy's reason per resource: still configured, it goes because the
  // destroy was asked for; removed from the configuration, it would go anyway.
  std::unordered_set<std::string> configured;
  if (destroy) {
    // Everything in the state is deleted; the configuration only protects.
    std::unordered_map<std::string_view, const PriorResource*> recorded;
    recorded.reserve(prior.size());
    for (const PriorResource& p : prior) recorded.emplace(p.address, &p);
    configured.reserve(config.size());
    for (const ResourceInstance& ri : config) configured.insert(ri.address);
    for (const ResourceInstance& ri : config) {
      if (!ri.prevent_destroy || !recorded.count(ri.address)) continue;
      plan.problems.push_back({ri.address,
                               ri.address + " has lifecycle.prevent_destroy set but would be destroyed; nothing was "
                                            "changed; to destroy it, remove prevent_destroy from its lifecycle block "
                                            "(or the resource from the configuration) first",
                               ri.range});
    }
    config.clear();
  }
  std::unordered_map<std::string_view, PriorResource*> by_address;
  by_address.reserve(prior.size());
  for (PriorResource& p : prior) by_address.emplace(p.address, &p);
  std::vector<uint8_t> in_config(prior.size(), 0);
  struct Input {
    PriorResource* prior = nullptr;
    const std::vector<std::string>* replace_because = nullptr;
    bool prevent_destroy = false;
    Range range;
  };
  std::vector<Input> inputs(config.size());
  for (size_t i = 0; i < config.size(); ++i) {
    const ResourceInstance& ri = config[i];
    Input& in = inputs[i];
    if (auto pit = by_address.find(ri.address); pit != by_address.end()) {
      in.prior = pit->second;
      in_config[static_cast<size_t>(in.prior - prior.data())] = 1;
    }
    if (auto rit = replace_because.find(ri.address); rit != replace_because.end()) in.replace_because = &rit->second;
    in.prevent_destroy = ri.prevent_destroy;
    in.range = ri.range;
  }
  // Instances are diffed independently: in parallel for large plans.
  std::vector<PlannedResource> planned(config.size());
  ParallelFor(config.size(), ThreadsFor(config.size(), 8192), [&](size_t i) {
    const bool requested = replace_requested && replace_requested->count(config[i].address) > 0;
    planned[i] = PlanOne(std::move(config[i]), inputs[i].prior, inputs[i].replace_because, schemas, requested);
  });
  plan.resources.reserve(planned.size() + prior.size() / 8);
  for (size_t i = 0; i < planned.size(); ++i) {
    PlannedResource& pr = planned[i];
    if (pr.action == Action::Replace && inputs[i].prevent_destroy) {
      plan.problems.push_back({pr.address,
                               pr.address + " has lifecycle.prevent_destroy set but would be replaced (" +
                                   pr.reasons.front() +
                                   "); to replace it, remove prevent_destroy from its lifecycle block first",
                               inputs[i].range});
    }
    plan.resources.push_back(std::move(pr));
  }
  for (size_t i = 0; i < prior.size(); ++i) {
    if (in_config[i]) continue;
    PriorResource& p = prior[i];
    PlannedResource pr;
    pr.address = std::move(p.address);
    pr.type = std::move(p.type);
    pr.action = Action::Delete;
    pr.depends_on = std::move(p.depends_on);
    pr.reasons.push_back(destroy && configured.count(pr.address) ? "destroy requested" : "not in the configuration");
    for (const auto& [name, v] : p.attributes) {
      if (!IsIdentity(name) && !v.is_null()) pr.changes.push_back({name, v, Value(), false});
    }
    pr.prior = std::move(p.attributes);
    plan.resources.push_back(std::move(pr));
  }
  std::sort(plan.resources.begin(), plan.resources.end(),
            [](const PlannedResource& a, const PlannedResource& b) { return a.address < b.address; });
  OrderSameObjectChanges(plan);
  return plan;
}

bool AddressSelects(std::string_view selector, const std::string& address) {
  if (selector == address) return true;
  for (const std::string& n : NamesOf(address)) {
    if (n == selector) return true;
  }
  return false;
}

std::vector<std::string> RestrictToTargets(Plan& plan, const Targeting& targeting, bool destroy) {
  std::vector<std::string> errors;
  if (!targeting.targets.empty() && !targeting.excludes.empty()) {
    errors.push_back("--target and --exclude cannot be combined; plan with one of them (--target ADDR keeps ADDR "
                     "and its dependencies, --exclude ADDR keeps everything else)");
    return errors;
  }
  const size_t n = plan.resources.size();
  // Every name that selects an instance (its address, its resource, its
  // module calls), and which instances each dependency string names: the
  // same strings, so one map serves both.
  std::unordered_map<std::string, std::vector<uint32_t>> named;
  named.reserve(n * 2);
  for (uint32_t i = 0; i < n; ++i) {
    const std::string& address = plan.resources[i].address;
    named[address].push_back(i);
    for (const std::string& name : NamesOf(address)) {
      if (name != address) named[name].push_back(i);
    }
  }
  auto unmatched = [&](const char* option, const std::string& address) {
    std::string message = std::string(option) + " '" + address +
                          "' matches no resource in the configuration or the state";
    std::vector<std::string> candidates;
    candidates.reserve(named.size());
    for (const auto& [name, members] : named) candidates.push_back(name);
    std::sort(candidates.begin(), candidates.end());
    if (std::string near = ClosestName(address, candidates); !near.empty()) {
      message += "; did you mean '" + near + "'?";
    } else {
      message += "; an address is type.name, type.name[0], type.name[\"key\"] or module.name (plinth state list "
                 "prints the recorded ones)";
    }
    errors.push_back(std::move(message));
  };
  std::vector<uint32_t> selected;
  auto select = [&](const char* option, const std::vector<std::string>& addresses) {
    for (const std::string& a : addresses) {
      auto it = named.find(a);
      if (it == named.end()) {
        unmatched(option, a);
        continue;
      }
      selected.insert(selected.end(), it->second.begin(), it->second.end());
    }
  };
  select("--target", targeting.targets);
  select("--exclude", targeting.excludes);
  // --replace names instances the configuration plans (ComputePlan did the
  // replacing); here only its spelling is checked.
  for (const std::string& a : targeting.replace) {
    if (!named.count(a)) unmatched("--replace", a);
  }
  if (!errors.empty()) return errors;
  plan.targeting = targeting;
  if (!targeting.Restricts()) return errors;

  // The closure over dependency edges, each dependency string expanded
  // once: `forward` follows depends_on (what an instance needs), otherwise
  // the reverse edges (what needs it). A creation that waits for the delete
  // of the same object (waits_for_deletes) needs that delete: kept without
  // it, the two would race.
  const bool keep_selected = !targeting.targets.empty();
  const bool forward = keep_selected != destroy;
  std::unordered_map<std::string, std::vector<uint32_t>> dependents;
  if (!forward) {
    for (uint32_t i = 0; i < n; ++i) {
      for (const std::string& dep : plan.resources[i].depends_on) dependents[dep].push_back(i);
      for (const std::string& del : plan.resources[i].waits_for_deletes) dependents[del].push_back(i);
    }
  }
  std::vector<uint8_t> in_closure(n, 0);
  std::unordered_set<std::string> expanded;
  std::vector<uint32_t> work;
  for (uint32_t i : selected) {
    if (!in_closure[i]) {
      in_closure[i] = 1;
      work.push_back(i);
    }
  }
  auto reach = [&](const std::unordered_map<std::string, std::vector<uint32_t>>& edges, const std::string& name) {
    if (!expanded.insert(name).second) return;
    auto it = edges.find(name);
    if (it == edges.end()) return;
    for (uint32_t j : it->second) {
      if (!in_closure[j]) {
        in_closure[j] = 1;
        work.push_back(j);
      }
    }
  };
  while (!work.empty()) {
    const uint32_t i = work.back();
    work.pop_back();
    const PlannedResource& r = plan.resources[i];
    if (forward) {
      for (const std::string& dep : r.depends_on) reach(named, dep);
      for (const std::string& del : r.waits_for_deletes) reach(named, del);
    } else {
      reach(dependents, r.address);
      for (const std::string& name : NamesOf(r.address)) reach(dependents, name);
    }
  }

  std::unordered_set<std::string> left_out;
  std::vector<PlannedResource> kept;
  kept.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (static_cast<bool>(in_closure[i]) == keep_selected) {
      kept.push_back(std::move(plan.resources[i]));
      continue;
    }
    ++plan.left_out;
    const PlannedResource& pr = plan.resources[i];
    if (pr.action != Action::NoOp || !pr.moved_from.empty() || !pr.import_id.empty()) ++plan.left_out_changes;
    left_out.insert(plan.resources[i].address);
  }
  plan.resources = std::move(kept);
  // A left-out resource's problems (a prevent_destroy replacement, a
  // provider's refusal) do not block the targeted changes.
  plan.problems.erase(std::remove_if(plan.problems.begin(), plan.problems.end(),
                                     [&](const PlanProblem& p) { return left_out.count(p.address) > 0; }),
                      plan.problems.end());
  return errors;
}

Graph BuildGraph(const Plan& plan) {
  Graph g;
  std::unordered_map<std::string, uint32_t> apply_node, destroy_node;
  auto add = [&](const std::string& address, GraphNode::Step step) {
    g.nodes.push_back({address, step, {}});
    return static_cast<uint32_t>(g.nodes.size() - 1);
  };
  for (const PlannedResource& r : plan.resources) {
    switch (r.action) {
      case Action::NoOp:
        // An import that changes nothing else still records the object.
        if (!r.import_id.empty()) apply_node[r.address] = add(r.address, GraphNode::Step::Apply);
        break;
      case Action::Forget: break;  // the engine rewrites the state before the graph runs
      case Action::Create:
      case Action::Update: apply_node[r.address] = add(r.address, GraphNode::Step::Apply); break;
      case Action::Delete: destroy_node[r.address] = add(r.address, GraphNode::Step::Destroy); break;
      case Action::Replace: {
        uint32_t d = add(r.address, GraphNode::Step::Destroy);
        uint32_t a = add(r.address, GraphNode::Step::Apply);
        destroy_node[r.address] = d;
        apply_node[r.address] = a;
        if (r.create_before_destroy) {
          g.nodes[d].after.push_back(a);
        } else {
          g.nodes[a].after.push_back(d);
        }
        break;
      }
    }
  }
  // A creation of an object that a delete of another address removes first.
  for (const PlannedResource& r : plan.resources) {
    if (r.waits_for_deletes.empty()) continue;
    auto a = apply_node.find(r.address);
    if (a == apply_node.end()) continue;
    for (const std::string& other : r.waits_for_deletes) {
      if (auto d = destroy_node.find(other); d != destroy_node.end()) g.nodes[a->second].after.push_back(d->second);
    }
  }
  // Which changing instances each dependency string names.
  std::unordered_map<std::string, std::vector<const PlannedResource*>> named;
  for (const PlannedResource& r : plan.resources) {
    if (r.action == Action::NoOp && r.import_id.empty()) continue;
    for (const std::string& n : NamesOf(r.address)) named[n].push_back(&r);
  }
  // One group node per dependency string and direction, created on demand.
  std::unordered_map<std::string, uint32_t> apply_group, destroy_group;
  auto group_of_applies = [&](const std::string& dep) -> std::optional<uint32_t> {
    if (auto it = apply_group.find(dep); it != apply_group.end()) return it->second;
    auto nit = named.find(dep);
    std::vector<uint32_t> members;
    if (nit != named.end()) {
      for (const PlannedResource* m : nit->second) {
        if (auto a = apply_node.find(m->address); a != apply_node.end()) members.push_back(a->second);
      }
    }
    if (members.empty()) return std::nullopt;
    uint32_t gnode = add("(" + dep + ")", GraphNode::Step::Group);
    g.nodes[gnode].after = std::move(members);
    apply_group[dep] = gnode;
    return gnode;
  };
  for (const PlannedResource& r : plan.resources) {
    auto a = apply_node.find(r.address);
    if (a == apply_node.end()) continue;
    for (const std::string& dep : r.depends_on) {
      if (auto gn = group_of_applies(dep)) g.nodes[a->second].after.push_back(*gn);
    }
  }
  // Deletion runs in reverse: what depended on Y is destroyed before Y.
  std::unordered_map<std::string, std::vector<uint32_t>> destroyed_dependents;
  for (const PlannedResource& r : plan.resources) {
    auto d = destroy_node.find(r.address);
    if (d == destroy_node.end()) continue;
    for (const std::string& dep : r.depends_on) destroyed_dependents[dep].push_back(d->second);
  }
  for (const PlannedResource& r : plan.resources) {
    auto d = destroy_node.find(r.address);
    if (d == destroy_node.end()) continue;
    for (const std::string& n : NamesOf(r.address)) {
      auto it = destroyed_dependents.find(n);
      if (it == destroyed_dependents.end()) continue;
      auto git = destroy_group.find(n);
      if (git == destroy_group.end()) {
        uint32_t gnode = add("(dependents of " + n + ")", GraphNode::Step::Group);
        g.nodes[gnode].after = it->second;
        git = destroy_group.emplace(n, gnode).first;
      }
      if (git->second != d->second) g.nodes[d->second].after.push_back(git->second);
    }
  }
  // Kahn's algorithm; leftovers are on a cycle.
  const size_t n = g.nodes.size();
  std::vector<uint32_t> indegree(n, 0);
  std::vector<std::vector<uint32_t>> next(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::sort(g.nodes[i].after.begin(), g.nodes[i].after.end());
    g.nodes[i].after.erase(std::unique(g.nodes[i].after.begin(), g.nodes[i].after.end()), g.nodes[i].after.end());
    for (uint32_t dep : g.nodes[i].after) {
      next[dep].push_back(i);
      ++indegree[i];
    }
  }
  std::vector<uint32_t> ready;
  for (uint32_t i = 0; i < n; ++i) {
    if (indegree[i] == 0) ready.push_back(i);
  }
  while (!ready.empty()) {
    uint32_t i = ready.back();
    ready.pop_back();
    g.order.push_back(i);
    for (uint32_t j : next[i]) {
      if (--indegree[j] == 0) ready.push_back(j);
    }
  }
  if (g.order.size() < n) {
    // Walk `after` edges among the leftovers until a node repeats.
    uint32_t start = 0;
    while (indegree[start] == 0) ++start;
    std::vector<int> seen_at(n, -1);
    std::vector<uint32_t> path;
    uint32_t cur = start;
    while (seen_at[cur] < 0) {
      seen_at[cur] = static_cast<int>(path.size());
      path.push_back(cur);
      for (uint32_t dep : g.nodes[cur].after) {
        if (indegree[dep] > 0) {
          cur = dep;
          break;
        }
      }
    }
    for (size_t k = static_cast<size_t>(seen_at[cur]); k < path.size(); ++k) {
      const GraphNode& node = g.nodes[path[k]];
      if (node.step == GraphNode::Step::Group) continue;
      g.cycle.push_back((node.step == GraphNode::Step::Destroy ? "destroy " : "apply ") + node.address);
    }
  }
  return g;
}

std::string EscapeControls(std::string_view text) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      const auto c1 = static_cast<unsigned char>(text[++i]);  // U+0080..U+009F
      out += "\\u00";
      out += digits[c1 >> 4];
      out += digits[c1 & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

namespace {

struct Painter {
  bool on;
  std::string Wrap(const char* code, const std::string& s) const { return on ? "\x1b[" + std::string(code) + "m" + s + "\x1b[0m" : s; }
};

std::string Show(const Value& v) {
  if (v.sensitive()) return "(sensitive)";
  if (v.kind() == Value::Kind::Object) {
    const ValueMap& m = v.as_object();
    auto it = m.find("address");
    if (it != m.end() && it->second.kind() == Value::Kind::String && m.count("id")) return it->second.as_string();
  }
  return v.ToString(false);
}

}  // namespace

namespace {

// "Policies: 3 evaluated on 12 resources: 1 denied, 1 warning, 2 undecided."
// and one line per finding.
std::string RenderPolicies(const Plan& plan, const Painter& p) {
  if (plan.policies == 0) return "";
  size_t denied = 0, warned = 0, undecided = 0;
  std::string lines;
  for (const PolicyFinding& f : plan.policy_findings) {
    std::string tag;
    if (f.outcome == PolicyFinding::Outcome::Undecided) {
      ++undecided;
      tag = p.Wrap("36", "? undecided");
    } else if (f.deny) {
      ++denied;
      tag = p.Wrap("31", "x denied   ");
    } else {
      ++warned;
      tag = p.Wrap("33", "! warning  ");
    }
    lines += "  " + tag + " " + f.policy + " on " + f.address + ": " + EscapeControls(f.message) + "\n";
  }
  std::string out = "\nPolicies: " + std::to_string(plan.policies) + " evaluated, " +
                    std::to_string(plan.policy_checks) + " checks: ";
  if (plan.policy_findings.empty()) return out + "all passed.\n";
  out += std::to_string(denied) + " denied, " + std::to_string(warned) + " warning" + (warned == 1 ? "" : "s") +
         ", " + std::to_string(undecided) + " undecided until apply.\n";
  return out + lines;
}

// Terraform's warning, in Plinth's words: a targeted plan is not the whole
// picture.
std::string RenderTargeting(const Plan& plan, const Painter& p) {
  const Targeting& t = plan.targeting;
  if (!t.Restricts()) return "";
  std::string list;
  for (const std::string& a : t.targets) list += " --target=" + EscapeControls(a);
  for (const std::string& a : t.excludes) list += " --exclude=" + EscapeControls(a);
  std::string out = "\n" + p.Wrap("33", "Note:") + " targeting is in effect (" + list.substr(1) + "): ";
  out += !t.targets.empty() ? "only the targeted resources and what they depend on were planned"
                            : "the excluded resources and what depends on them were left out";
  out += "; " + std::to_string(plan.left_out) + " other resource" + (plan.left_out == 1 ? " was" : "s were") +
         " left as " + (plan.left_out == 1 ? "it is" : "they are") + " (" + std::to_string(plan.left_out_changes) +
         " with changes pending).\n";
  out += "The plan may be incomplete. Targeting is for exceptional cases (recovering from a mistake, working around "
         "an error); run a full plinth plan afterwards.\n";
  return out;
}

}  // namespace

std::string ChangeCounts(const Plan& plan) {
  return std::to_string(plan.Count(Action::Create)) + " to create, " + std::to_string(plan.Count(Action::Update)) +
         " to update, " + std::to_string(plan.Count(Action::Replace)) + " to replace, " +
         std::to_string(plan.Count(Action::Delete)) + " to delete";
}

std::string RenderPlanText(const Plan& plan, bool color) {
  Painter p{color};
  std::string out;
  if (!plan.HasChanges()) {
    // Targeted, the rest of the configuration may still differ.
    out += plan.targeting.Restricts() ? "No changes in the targeted resources.\n"
                                      : "No changes. The infrastructure matches the configuration.\n";
    return out + RenderTargeting(plan, p) + RenderPolicies(plan, p);
  }
  out += "Plinth will perform these actions:\n";
  for (const PlannedResource& r : plan.resources) {
    // An import: its own line, then the change it also makes, if any.
    const bool importing = !r.import_id.empty();
    if (importing) out += "\n  # " + r.address + " will be imported (id " + EscapeControls(QuoteString(r.import_id)) + ")\n";
    if (r.action == Action::NoOp) {
      if (!r.moved_from.empty()) out += "\n  # " + r.address + " has moved from " + r.moved_from + "\n";
      continue;
    }
    std::string symbol, verb, code;
    switch (r.action) {
      case Action::Create: symbol = "+"; verb = "will be created"; code = "32"; break;
      case Action::Update: symbol = "~"; verb = "will be updated in place"; code = "33"; break;
      case Action::Replace:
        symbol = r.create_before_destroy ? "+/-" : "-/+";
        verb = "must be replaced";
        code = "35";
        break;
      case Action::Delete: symbol = "-"; verb = "will be deleted"; code = "31"; break;
      case Action::Forget: symbol = "."; verb = "will be removed from the state, not destroyed"; code = "36"; break;
      case Action::NoOp: break;
    }
    out += (importing ? "  # " : "\n  # ") + r.address + " " + verb;
    if (!r.reasons.empty()) {
      std::string why;
      for (const std::string& reason : r.reasons) why += (why.empty() ? "" : "; ") + EscapeControls(reason);
      out += " (" + why + ")";
    }
    out += "\n" + p.Wrap(code.c_str(), symbol) + " " + r.address + "\n";
    for (const PlannedResource::Cause& c : r.caused_by) {
      out += "      " + p.Wrap("36", "# caused by") + " " + c.commit.substr(0, 12) + " (" + EscapeControls(c.author) +
             "): " + EscapeControls(c.summary) + (c.how.empty() ? "" : " [" + EscapeControls(c.how) + "]") + "\n";
    }
    if (!r.moved_from.empty()) out += "      (moved from " + r.moved_from + ")\n";
    if (!r.waits_for_deletes.empty()) {
      auto id = r.planned.find("id");
      const std::string object = id == r.planned.end() ? "" : " (same object " + Show(id->second) + ")";
      for (const std::string& other : r.waits_for_deletes)
        out += "      waits for the delete of " + other + object + "\n";
    }
    if (r.deletes) {
      // What the delete takes with it, or what refuses it: right under the
      // resource, before its attributes.
      const bool refused = !r.deletes->refusal.empty();
      for (const std::string& line : r.deletes->data)
        out += "      " + p.Wrap("31", "!") + (refused ? " holds " : " deletes ") + EscapeControls(line) + "\n";
      if (refused) out += "      " + p.Wrap("31", "x") + " delete refused: " + EscapeControls(r.deletes->refusal) + "\n";
    }
    size_t width = 0;
    for (const AttributeChange& c : r.changes) width = std::max(width, c.name.size());
    for (const AttributeChange& c : r.changes) {
      std::string name = c.name + std::string(width - c.name.size(), ' ');
      std::string line;
      if (r.action == Action::Create) {
        line = p.Wrap("32", "+") + " " + name + " = " + Show(c.after);
      } else if (r.action == Action::Delete || r.action == Action::Forget) {
        line = p.Wrap("31", "-") + " " + name + " = " + Show(c.before);
      } else {
        line = p.Wrap("33", "~") + " " + name + " = " + Show(c.before) + " -> " + Show(c.after);
        if (c.forces_replacement) line += p.Wrap("31", " # forces replacement");
      }
      out += "      " + line + "\n";
    }
  }
  out += "\nPlan: " + (plan.Imports() ? std::to_string(plan.Imports()) + " to import, " : std::string()) +
         std::to_string(plan.Count(Action::Create)) + " to create, " +
         std::to_string(plan.Count(Action::Update)) + " to update, " + std::to_string(plan.Count(Action::Replace)) +
         " to replace, " + std::to_string(plan.Count(Action::Delete)) + " to delete" +
         (plan.Count(Action::Forget) ? ", " + std::to_string(plan.Count(Action::Forget)) + " to forget" : "") +
         (plan.Moved() ? ", " + std::to_string(plan.Moved()) + " moved" : "") + ".\n";
  return out + RenderTargeting(plan, p) + RenderPolicies(plan, p);
}

std::string RenderPlanJson(const Plan& plan) {
  nlohmann::json changes = nlohmann::json::array();
  for (const PlannedResource& r : plan.resources) {
    nlohmann::json before = nullptr, after = nullptr;
    if (r.prior) {
      before = nlohmann::json::object();
      for (const auto& [k, v] : *r.prior) before[k] = ValueToUserJson(v);
    }
    if (r.action != Action::Delete && r.action != Action::Forget) {
      after = nlohmann::json::object();
      for (const auto& [k, v] : r.planned) after[k] = ValueToUserJson(v);
    }
    nlohmann::json attrs = nlohmann::json::array();
    for (const AttributeChange& c : r.changes) {
      attrs.push_back({{"name", c.name},
                       {"before", ValueToUserJson(c.before)},
                       {"after", ValueToUserJson(c.after)},
                       {"forces_replacement", c.forces_replacement}});
    }
    nlohmann::json change = {{"address", r.address},
                             {"type", r.type},
                             {"action", ActionName(r.action)},
                             {"reasons", r.reasons},
                             {"create_before_destroy", r.create_before_destroy},
                             {"depends_on", r.depends_on},
                             {"waits_for_deletes", r.waits_for_deletes},
                             {"importing", r.import_id.empty() ? nlohmann::json(nullptr)
                                                               : nlohmann::json{{"id", r.import_id}}},
                             {"changed_attributes", attrs},
                             {"before", before},
                             {"after", after},
                             {"previous_address", r.moved_from.empty() ? nlohmann::json(nullptr)
                                                                       : nlohmann::json(r.moved_from)}};
    if (!r.caused_by.empty()) {
      nlohmann::json causes = nlohmann::json::array();
      for (const PlannedResource::Cause& c : r.caused_by)
        causes.push_back({{"commit", c.commit}, {"author", c.author}, {"time_s", c.time_s}, {"summary", c.summary},
                          {"how", c.how}});
      change["caused_by"] = std::move(causes);
    }
    if (r.action == Action::Delete || r.action == Action::Replace) {
      nlohmann::json deletes = nullptr;
      if (r.deletes) {
        deletes = {{"data", r.deletes->data},
                   {"amounts", r.deletes->amounts},
                   {"refused", r.deletes->refusal.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.deletes->refusal)}};
      }
      change["deletes"] = deletes;
    }
    changes.push_back(std::move(change));
  }
  nlohmann::json problems = nlohmann::json::array();
  for (const PlanProblem& p : plan.problems) problems.push_back({{"address", p.address}, {"message", p.message}});
  nlohmann::json findings = nlohmann::json::array();
  for (const PolicyFinding& f : plan.policy_findings) {
    findings.push_back({{"policy", f.policy},
                        {"address", f.address},
                        {"outcome", f.outcome == PolicyFinding::Outcome::Violated ? "violated" : "undecided"},
                        {"severity", f.deny ? "deny" : "warn"},
                        {"message", f.message}});
  }
  nlohmann::json doc = {{"format_version", 1},
                        {"has_changes", plan.HasChanges()},
                        {"summary",
                         {{"create", plan.Count(Action::Create)},
                          {"update", plan.Count(Action::Update)},
                          {"replace", plan.Count(Action::Replace)},
                          {"delete", plan.Count(Action::Delete)},
                          {"forget", plan.Count(Action::Forget)},
                          {"moved", plan.Moved()},
                          {"import", plan.Imports()},
                          {"no_op", plan.Count(Action::NoOp)}}},
                        {"resource_changes", changes},
                        {"problems", problems},
                        {"policy",
                         {{"evaluated", plan.policies},
                          {"checks", plan.policy_checks},
                          {"denied", plan.Denied()},
                          {"findings", findings}}}};
  if (!plan.targeting.empty()) {
    doc["targeting"] = {{"targets", plan.targeting.targets},
                        {"excludes", plan.targeting.excludes},
                        {"replace", plan.targeting.replace},
                        {"left_out", plan.left_out},
                        {"left_out_changes", plan.left_out_changes}};
  }
  return doc.dump(2) + "\n";
}

}  // namespace plinth::runtime
