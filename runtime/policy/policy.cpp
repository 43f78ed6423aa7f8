#include "runtime/policy/policy.h"

#include <algorithm>
#include <map>
#include <set>
#include <span>

#include "compiler/eval/evaluator.h"
#include "compiler/rules/rules.h"
#include "compiler/schema/schema.h"

namespace plinth::runtime {

namespace {

// A Plinth type for a value (var.X and local.X read by rules).
Type TypeOfValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Bool: return Type::Bool();
    case Value::Kind::Number: return Type::Number();
    case Value::Kind::String: return Type::String();
    case Value::Kind::Duration: return Type::Duration();
    case Value::Kind::Size: return Type::Size();
    case Value::Kind::Percent: return Type::Percent();
    case Value::Kind::List: {
      const ValueList& items = v.as_list();
      return Type::List(items.empty() ? Type::String() : TypeOfValue(items.front()));
    }
    case Value::Kind::Object: {
      std::map<std::string, Type> attrs;
      for (const auto& [k, item] : v.as_object()) attrs.emplace(k, TypeOfValue(item));
      return Type::Object(std::move(attrs));
    }
    case Value::Kind::Unknown: return v.unknown_type();
    case Value::Kind::Null: return Type::Any();
  }
  return Type::Any();
}

// The type rules see for a block schema: attributes as declared, except a
// map of scalars (labels, tags), which reads as a list of {name, value}
// objects (rules have fixed fields, maps do not); a labelled nested block
// (grant "trainer" { ... }) as a list of objects with its label as `name`; a
// single block as an object; a repeatable one as a list.
bool IsScalarMap(const Type& t) {
  return t.is(TypeKind::Map) && !t.element().is(TypeKind::Map) && !t.element().is(TypeKind::List) &&
         !t.element().is(TypeKind::Object) && !t.element().is(TypeKind::Any);
}

Type TypeOfBlock(const BlockSchema& body) {
  std::map<std::string, Type> attrs;
  for (const AttributeSchema& a : body.attributes) {
    attrs.emplace(a.name,
                  IsScalarMap(a.type)
                      ? Type::List(Type::Object({{"name", Type::String()}, {"value", a.type.element()}}))
                      : a.type);
  }
  for (const NestedBlockSchema& nb : body.blocks) {
    Type inner = TypeOfBlock(*nb.body);
    if (nb.labeled) {
      std::map<std::string, Type> with_name = inner.attributes();
      with_name.emplace("name", Type::String());
      attrs.emplace(nb.name, Type::List(Type::Object(std::move(with_name))));
    } else if (nb.max_items == 1) {
      attrs.emplace(nb.name, inner);
    } else {
      attrs.emplace(nb.name, Type::List(inner));
    }
  }
  return Type::Object(std::move(attrs));
}

// Planned values reshaped like TypeOfBlock: maps of scalars and labelled
// blocks become lists.
Value ShapeForRules(const BlockSchema& body, const ValueMap& values) {
  ValueMap out = values;
  for (const AttributeSchema& a : body.attributes) {
    auto it = out.find(a.name);
    if (it == out.end() || !IsScalarMap(a.type) || it->second.kind() != Value::Kind::Object) continue;
    ValueList items;
    for (const auto& [key, v] : it->second.as_object())
      items.push_back(Value::Object({{"name", Value::String(key)}, {"value", v}}));
    it->second = Value::List(std::move(items));
  }
  for (const NestedBlockSchema& nb : body.blocks) {
    auto it = out.find(nb.name);
    if (it == out.end() || !nb.labeled || it->second.kind() != Value::Kind::Object) continue;
    ValueList items;
    for (const auto& [label, item] : it->second.as_object()) {
      if (item.kind() != Value::Kind::Object) continue;
      ValueMap m = item.as_object();
      m["name"] = Value::String(label);
      items.push_back(Value::Object(std::move(m)));
    }
    it->second = Value::List(std::move(items));
  }
  return Value::Object(std::move(out));
}

// The roots a policy's expressions evaluated by the ordinary evaluator read:
// `self` (a message, `group_by`), `group` and `group_key` (a group rule and
// its message), `var` and `local`. A null pointer leaves the root out.
class PolicyScope : public Scope {
 public:
  PolicyScope(const PolicyInstance& p, const Value* self, const Value* group = nullptr,
              const Value* key = nullptr)
      : p_(p), self_(self), group_(group), key_(key) {}
  bool Resolve(const ast::Name& root, std::span<const ast::GetAttr* const> steps, Value* out,
               size_t* consumed, Diagnostics& diags) override {
    *consumed = 0;
    const Value* v = root.name == "self"        ? self_
                     : root.name == "group"     ? group_
                     : root.name == "group_key" ? key_
                                                : nullptr;
    if (v) {
      *out = *v;
      return true;
    }
    if (root.name == "var" || root.name == "local") {
      *out = Value::Object(root.name == "var" ? p_.vars : p_.locals);
      return true;
    }
    return false;
  }
  std::vector<std::string> RootNames() const override {
    std::vector<std::string> names = {"var", "local"};
    if (self_) names.push_back("self");
    if (group_) names.push_back("group");
    if (key_) names.push_back("group_key");
    return names;
  }
  std::string BaseDir() const override { return p_.base_dir; }

 private:
  const PolicyInstance& p_;
  const Value* self_;
  const Value* group_;
  const Value* key_;
};

// A violation's message. `self` is null for a group policy, whose message
// is evaluated once per group (reading `group` and `group_key`): once per
// member it would cost the group's size per member, quadratic in all.
std::string Message(const PolicyInstance& p, const Value* self, const std::string& subject,
                    const Value* group = nullptr, const Value* key = nullptr) {
  const std::string fallback = p.name + " is not satisfied by " + subject;
  if (!p.message) return fallback;
  Diagnostics ignored;
  PolicyScope scope(p, self, group, key);
  Value v = Evaluate(*p.message, scope, ignored);
  if (ignored.has_errors() || v.kind() != Value::Kind::String || v.ContainsUnknown()) return fallback;
  if (v.ContainsSensitive()) return fallback + " (its message is withheld: it would show a sensitive value)";
  return v.as_string();
}

// A compiled policy: rule 0 is `require`, rule 1 (when present) `where`.
// A group policy (`group_by`) compiles only `where`, as rule 0; its
// `require` is evaluated once per group by the ordinary evaluator, and
// `set` is null when it has no `where`.
struct Compiled {
  std::unique_ptr<rules::RuleSet> set;
  const BlockSchema* body = nullptr;
  bool has_where = false;
  bool grouped = false;
};

// A group policy's `group_by`, `require` and `message` are checked by evaluating them
// over values of the right type known only after apply: unknown names and
// attributes, and type errors the evaluator can see, are reported located.
void CheckGroupExpressions(const PolicyInstance& p, const Type& self_type, Diagnostics& diags) {
  Value self = Value::Unknown(self_type);
  Value group = Value::Unknown(Type::List(self_type));
  Value key = Value::Unknown(Type::String());
  PolicyScope by_scope(p, &self);
  (void)Evaluate(*p.group_by, by_scope, diags);
  PolicyScope group_scope(p, nullptr, &group, &key);
  (void)Evaluate(*p.require, group_scope, diags);
  if (p.message) (void)Evaluate(*p.message, group_scope, diags);
}

std::optional<Compiled> Compile(const PolicyInstance& p, size_t records, size_t jit_threshold,
                                Diagnostics& diags) {
  const ResourceSchema* schema = p.schema;
  if (!schema) return std::nullopt;  // the checker reported it
  Type self = TypeOfBlock(schema->body);
  std::map<std::string, Type> attrs = self.attributes();
  for (const char* identity : {"id", "name", "address"}) attrs.emplace(identity, Type::String());
  rules::RuleSchema rs;
  std::vector<std::string> skipped;
  Type self_type = Type::Object(std::move(attrs));
  rs.AddFromType("self", self_type, &skipped);
  for (const auto& [name, v] : p.vars) rs.AddFromType("var." + name, TypeOfValue(v), &skipped);
  for (const auto& [name, v] : p.locals) rs.AddFromType("local." + name, TypeOfValue(v), &skipped);
  std::vector<rules::RuleSource> sources;
  if (!p.group_by) sources.push_back({p.name, p.require});
  if (p.where) sources.push_back({p.name + ".where", p.where});
  rules::RuleSetOptions options;
  options.backend = records >= jit_threshold ? rules::Backend::Jit : rules::Backend::Interpreter;
  size_t errors = diags.error_count();
  Compiled c;
  c.body = &schema->body;
  c.has_where = p.where != nullptr;
  c.grouped = p.group_by != nullptr;
  if (c.grouped) CheckGroupExpressions(p, self_type, diags);
  if (!sources.empty()) {
    c.set = rules::RuleSet::Compile(std::move(rs), sources, diags, options);
    if (!c.set) return std::nullopt;
  }
  if (diags.error_count() > errors) return std::nullopt;
  return c;
}

// The root values one record of `self` reads.
std::map<std::string, Value> Roots(const PolicyInstance& p, Value self) {
  return {{"self", std::move(self)}, {"var", Value::Object(p.vars)}, {"local", Value::Object(p.locals)}};
}

enum class Outcome { Pass, Fail, Undecided, Skip, Error };

// Why a rule could not be evaluated, for the message: the values it reads
// that are null (`self.capacity`), and the guard that avoids the error. A
// null can only be compared with == and !=; any other use is an error
// (docs/policy.md, "What a rule can read").
std::string ErrorMessage(const PolicyInstance& p, const Value& self, const std::string& type_error) {
  std::vector<Reference> refs;
  if (p.where) CollectReferences(*p.where, refs);
  CollectReferences(*p.require, refs);
  std::vector<std::string> nulls;
  for (const Reference& r : refs) {
    if (r.name.empty()) continue;
    const ValueMap* m = r.root == "self" && self.kind() == Value::Kind::Object ? &self.as_object()
                        : r.root == "var"                                      ? &p.vars
                        : r.root == "local"                                    ? &p.locals
                                                                               : nullptr;
    if (!m) continue;
    auto it = m->find(r.name);
    bool is_null = it == m->end() || it->second.kind() == Value::Kind::Null;
    std::string shown = r.root + "." + r.name;
    if (is_null && std::find(nulls.begin(), nulls.end(), shown) == nulls.end()) nulls.push_back(shown);
  }
  std::string out = "the rule could not be evaluated";
  if (!type_error.empty()) out += ": " + type_error;
  if (nulls.empty()) return out;
  std::string list, guard;
  for (size_t i = 0; i < nulls.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == nulls.size() ? " and " : ", ") + nulls[i];
    guard += (i == 0 ? "" : " && ") + nulls[i] + " != null";
  }
  out += std::string(type_error.empty() ? ": " : "; ") + list + (nulls.size() == 1 ? " is" : " are") +
         " null, and a null can only be compared with == or !=; ";
  out += p.where ? "add `" + guard + " &&` to the policy's `where` to check only resources that set " +
                       (nulls.size() == 1 ? "it" : "them")
                 : "add `where = " + guard + "` to check only resources that set " +
                       (nulls.size() == 1 ? "it" : "them");
  return out;
}

// Combines the `where` and `require` verdicts of one record.
Outcome Decide(rules::Verdict where, rules::Verdict require) {
  using rules::Verdict;
  if (where == Verdict::False) return Outcome::Skip;
  if (where == Verdict::Error || require == Verdict::Error) return Outcome::Error;
  if (require == Verdict::False) return where == Verdict::Unknown ? Outcome::Undecided : Outcome::Fail;
  if (require == Verdict::Unknown || where == Verdict::Unknown) return Outcome::Undecided;
  return Outcome::Pass;
}

// One instance's outcome, with the message of a violation.
struct Checked {
  Outcome outcome = Outcome::Pass;
  std::string message;
};

// The first error of an evaluation, for a finding's message.
std::string FirstError(const Diagnostics& d) {
  for (const Diagnostic& item : d.items()) {
    if (item.severity == Severity::Error) return item.message;
  }
  return "";
}

// A group policy over `selves`: `where` per instance (rule verdicts in
// `where`, empty when it has none), `group_by` per instance, then `require`
// once per group. Linear in the instances: each is evaluated once and
// belongs to one group. An instance whose membership is undecided (its
// `where` or key known only after apply) could join any group, so every
// check of the policy is undecided then.
std::vector<Checked> CheckGroups(const PolicyInstance& p, const std::vector<Value>& selves,
                                 std::span<const rules::Verdict> where,
                                 const std::vector<std::string>& type_errors) {
  const size_t n = selves.size();
  std::vector<Checked> out(n);
  std::map<std::string, std::vector<size_t>> groups;
  std::set<std::string> sensitive_keys;  // never shown: `group_key` stays sensitive
  bool undecided_membership = false;
  for (size_t i = 0; i < n; ++i) {
    rules::Verdict w = where.empty() ? rules::Verdict::True : where[i];
    if (w == rules::Verdict::False) {
      out[i].outcome = Outcome::Skip;
      continue;
    }
    if (w == rules::Verdict::Error) {
      out[i] = {Outcome::Error, ErrorMessage(p, selves[i], type_errors[i])};
      continue;
    }
    Diagnostics d;
    PolicyScope scope(p, &selves[i]);
    Value key = Evaluate(*p.group_by, scope, d);
    std::string text;
    if (d.has_errors()) {
      out[i] = {Outcome::Error, "the rule could not be evaluated: group_by: " + FirstError(d)};
    } else if (key.is_null()) {
      out[i].outcome = Outcome::Skip;  // no group: not checked
    } else if (w == rules::Verdict::Unknown || key.ContainsUnknown()) {
      out[i].outcome = Outcome::Undecided;
      undecided_membership = true;
    } else if (!TemplateText(key, &text)) {
      out[i] = {Outcome::Error,
                "the rule could not be evaluated: group_by must give a string (or a number), not a list or "
                "an object"};
    } else {
      groups[text].push_back(i);
      if (key.ContainsSensitive()) sensitive_keys.insert(text);
    }
  }
  for (const auto& [text, members] : groups) {
    ValueList items;
    items.reserve(members.size());
    for (size_t m : members) items.push_back(selves[m]);
    const Value group = Value::List(std::move(items));
    const bool secret = sensitive_keys.count(text) > 0;
    const Value key = Value::String(text).WithSensitive(secret);
    const std::string shown = secret ? "(sensitive)" : QuoteString(text);
    Diagnostics d;
    PolicyScope scope(p, nullptr, &group, &key);
    Value v = Evaluate(*p.require, scope, d);
    Outcome o = Outcome::Pass;
    std::string message;  // of a violation or an error
    if (d.has_errors()) {
      o = Outcome::Error;
      message = "the rule could not be evaluated for group " + shown + ": " + FirstError(d);
    } else if (v.ContainsUnknown()) {
      o = Outcome::Undecided;
    } else if (v.kind() != Value::Kind::Bool) {
      o = Outcome::Error;
      message = "the rule could not be evaluated for group " + shown + ": require gives " +
                (v.is_null() ? std::string("null") : "a value that is not a bool");
    } else {
      o = v.as_bool() ? Outcome::Pass : Outcome::Fail;
    }
    if (undecided_membership && (o == Outcome::Pass || o == Outcome::Fail)) o = Outcome::Undecided;
    if (o == Outcome::Fail) message = Message(p, nullptr, "the group " + shown, &group, &key);
    for (size_t m : members) out[m] = {o, message};
  }
  if (undecided_membership) {
    for (Checked& c : out) {
      if (c.outcome == Outcome::Pass || c.outcome == Outcome::Fail) c = {Outcome::Undecided, ""};
    }
  }
  return out;
}

// Every check of policy `p` over `selves` (planned values shaped for rules;
// `addresses` name them in the messages of policies without `group_by`).
std::vector<Checked> CheckAll(const PolicyInstance& p, const Compiled& c, const std::vector<Value>& selves,
                              const std::vector<std::string>& addresses) {
  const size_t n = selves.size();
  std::vector<std::string> type_errors(n);
  // Rule-major verdicts: rule 0 for every record, then rule 1.
  std::vector<rules::Verdict> verdicts;
  if (c.set) {
    rules::RecordBatch batch = c.set->NewBatch();
    for (size_t i = 0; i < n; ++i) batch.AddValues(Roots(p, selves[i]), &type_errors[i]);
    verdicts.resize(c.set->size() * n);
    c.set->EvaluateAll(batch, verdicts);
  }
  if (c.grouped) {
    // The evaluator, unlike the rules, reads an absent attribute as an
    // error: every attribute of the type an instance leaves unset is null.
    std::vector<Value> complete = selves;
    for (Value& v : complete) {
      if (v.kind() != Value::Kind::Object) continue;
      ValueMap m = v.as_object();
      for (const AttributeSchema& a : c.body->attributes) m.try_emplace(a.name, Value::Null());
      for (const NestedBlockSchema& nb : c.body->blocks) m.try_emplace(nb.name, Value::Null());
      v = Value::Object(std::move(m));
    }
    std::span<const rules::Verdict> where =
        c.has_where ? std::span<const rules::Verdict>(verdicts.data(), n) : std::span<const rules::Verdict>();
    return CheckGroups(p, complete, where, type_errors);
  }
  std::vector<Checked> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].outcome = Decide(c.has_where ? verdicts[n + i] : rules::Verdict::True, verdicts[i]);
    if (out[i].outcome == Outcome::Fail) out[i].message = Message(p, &selves[i], addresses[i]);
    if (out[i].outcome == Outcome::Error) out[i].message = ErrorMessage(p, selves[i], type_errors[i]);
  }
  return out;
}

}  // namespace

void CheckPolicies(const std::vector<PolicyInstance>& policies, Diagnostics& diags) {
  std::set<std::pair<std::string, const ast::Expr*>> seen;  // a module instantiated twice is checked once
  for (const PolicyInstance& p : policies) {
    if (seen.insert({p.label, p.require}).second) (void)Compile(p, 0, kJitThreshold, diags);
  }
}

PolicyReport EvaluatePolicies(const std::vector<PolicyInstance>& policies, const Plan& plan,
                              Diagnostics& diags, size_t jit_threshold) {
  PolicyReport report;
  // Planned resources by type (deletions are not checked: they will not exist).
  std::map<std::string, std::vector<const PlannedResource*>> by_type;
  for (const PlannedResource& r : plan.resources) {
    if (r.action != Action::Delete) by_type[r.type].push_back(&r);
  }
  for (const PolicyInstance& p : policies) {
    const std::vector<const PlannedResource*>& targets = by_type[p.resource_type];
    std::optional<Compiled> c = Compile(p, targets.size(), jit_threshold, diags);
    if (!c) continue;
    ++report.policies;
    report.jit = report.jit || (c->set && c->set->jitted());
    std::vector<Value> selves;
    std::vector<std::string> addresses;
    selves.reserve(targets.size());
    addresses.reserve(targets.size());
    for (const PlannedResource* t : targets) {
      selves.push_back(ShapeForRules(*c->body, t->planned));
      addresses.push_back(t->address);
    }
    std::vector<Checked> checked = CheckAll(p, *c, selves, addresses);
    for (size_t i = 0; i < targets.size(); ++i) {
      if (checked[i].outcome == Outcome::Skip) continue;
      ++report.checks;
      if (checked[i].outcome == Outcome::Pass) continue;
      PolicyFinding f;
      f.policy = p.name;
      f.address = targets[i]->address;
      f.deny = p.deny;
      f.range = p.range;
      if (checked[i].outcome == Outcome::Undecided) {
        f.outcome = PolicyFinding::Outcome::Undecided;
        f.message = "cannot be decided until apply: it reads a value known only then";
      } else {
        f.outcome = PolicyFinding::Outcome::Violated;
        f.message = std::move(checked[i].message);
      }
      report.findings.push_back(std::move(f));
    }
  }
  return report;
}

std::vector<PolicyTestResult> RunPolicyTests(const CheckedConfig& config, Diagnostics& diags) {
  std::vector<PolicyTestResult> results;
  for (const PolicyTestCase& tc : config.policy_tests) {
    PolicyTestResult r;
    r.name = tc.name;
    r.expected = tc.expect;
    const PolicyInstance* found = nullptr;
    for (const PolicyInstance& p : config.policies) {
      if (p.label == tc.policy || p.name == tc.policy) found = &p;
    }
    std::optional<PolicyInstance> with_vars;  // the policy with the case's `vars` over its module's
    if (found && !tc.vars.empty()) {
      with_vars = *found;
      for (const auto& [name, v] : tc.vars) with_vars->vars[name] = v;
    }
    const PolicyInstance* policy = with_vars ? &*with_vars : found;
    if (!policy) {
      r.error = "no policy named '" + tc.policy + "'";
      results.push_back(std::move(r));
      continue;
    }
    std::optional<Compiled> c = Compile(*policy, 1, kJitThreshold, diags);
    if (!c) {
      r.error = "the policy does not compile (see the errors above)";
      results.push_back(std::move(r));
      continue;
    }
    ValueMap attrs = tc.resource.kind() == Value::Kind::Object ? tc.resource.as_object() : ValueMap{};
    for (const std::string& u : tc.unknown) {
      const AttributeSchema* a = c->body->FindAttribute(u);
      attrs[u] = Value::Unknown(a ? a->type : Type::Any());
    }
    std::vector<Value> selves = {ShapeForRules(*c->body, attrs)};
    std::vector<std::string> addresses = {"the test resource"};
    for (size_t i = 0; i < tc.peers.size(); ++i) {
      selves.push_back(ShapeForRules(*c->body, tc.peers[i].as_object()));
      addresses.push_back("peer " + std::to_string(i + 1));
    }
    Checked o = CheckAll(*policy, *c, selves, addresses)[0];
    switch (o.outcome) {
      case Outcome::Pass: r.got = "pass"; break;
      case Outcome::Fail:
        r.got = "fail";
        r.message = o.message;
        break;
      case Outcome::Undecided: r.got = "undecided"; break;
      case Outcome::Skip: r.got = "skip"; break;
      case Outcome::Error: r.error = o.message; break;
    }
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace plinth::runtime
