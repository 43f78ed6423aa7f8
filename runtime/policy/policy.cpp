#include "runtime/policy/policy.h"

#include <algorithm>
#include <map>
#include <set>

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
    attrs.emplace(a.name, IsScalarMap(a.type) ? Type::List(Type::Object({{"name", Type::String()},
                                                                          {"value", a.type.element()}}))
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

// `self`, `var` and `local` for a policy's message.
class MessageScope : public Scope {
 public:
  MessageScope(const PolicyInstance& p, const Value& self) : p_(p), self_(self) {}
  bool Resolve(const ast::Name& root, std::span<const ast::GetAttr* const> steps, Value* out, size_t* consumed,
               Diagnostics& diags) override {
    *consumed = 0;
    if (root.name == "self") {
      *out = self_;
      return true;
    }
    if (root.name == "var" || root.name == "local") {
      *out = Value::Object(root.name == "var" ? p_.vars : p_.locals);
      return true;
    }
    return false;
  }
  std::vector<std::string> RootNames() const override { return {"self", "var", "local"}; }
  std::string BaseDir() const override { return p_.base_dir; }

 private:
  const PolicyInstance& p_;
  const Value& self_;
};

std::string Message(const PolicyInstance& p, const Value& self, const std::string& address) {
  const std::string fallback = p.name + " is not satisfied by " + address;
  if (!p.message) return fallback;
  Diagnostics ignored;
  MessageScope scope(p, self);
  Value v = Evaluate(*p.message, scope, ignored);
  if (ignored.has_errors() || v.kind() != Value::Kind::String || v.ContainsUnknown()) return fallback;
  if (v.ContainsSensitive()) return fallback + " (its message is withheld: it would show a sensitive value)";
  return v.as_string();
}

// A compiled policy: rule 0 is `require`, rule 1 (when present) `where`.
struct Compiled {
  std::unique_ptr<rules::RuleSet> set;
  const BlockSchema* body = nullptr;
  bool has_where = false;
};

std::optional<Compiled> Compile(const PolicyInstance& p, size_t records, size_t jit_threshold, Diagnostics& diags) {
  const ResourceSchema* schema = p.schema;
  if (!schema) return std::nullopt;  // the checker reported it
  Type self = TypeOfBlock(schema->body);
  std::map<std::string, Type> attrs = self.attributes();
  for (const char* identity : {"id", "name", "address"}) attrs.emplace(identity, Type::String());
  rules::RuleSchema rs;
  std::vector<std::string> skipped;
  rs.AddFromType("self", Type::Object(std::move(attrs)), &skipped);
  for (const auto& [name, v] : p.vars) rs.AddFromType("var." + name, TypeOfValue(v), &skipped);
  for (const auto& [name, v] : p.locals) rs.AddFromType("local." + name, TypeOfValue(v), &skipped);
  std::vector<rules::RuleSource> sources = {{p.name, p.require}};
  if (p.where) sources.push_back({p.name + ".where", p.where});
  rules::RuleSetOptions options;
  options.backend = records >= jit_threshold ? rules::Backend::Jit : rules::Backend::Interpreter;
  size_t errors = diags.error_count();
  Compiled c;
  c.set = rules::RuleSet::Compile(std::move(rs), sources, diags, options);
  c.body = &schema->body;
  c.has_where = p.where != nullptr;
  if (!c.set || diags.error_count() > errors) return std::nullopt;
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
                        : r.root == "var"                                     ? &p.vars
                        : r.root == "local"                                   ? &p.locals
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
                 : "add `where = " + guard + "` to check only resources that set " + (nulls.size() == 1 ? "it" : "them");
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

std::vector<Outcome> Run(const Compiled& c, const rules::RecordBatch& batch) {
  // Rule-major verdicts: rule 0 (require) for every record, then rule 1 (where).
  const size_t n = batch.rows();
  std::vector<rules::Verdict> verdicts(c.set->size() * n);
  c.set->EvaluateAll(batch, verdicts);
  std::vector<Outcome> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = Decide(c.has_where ? verdicts[n + i] : rules::Verdict::True, verdicts[i]);
  return out;
}

}  // namespace

void CheckPolicies(const std::vector<PolicyInstance>& policies, Diagnostics& diags) {
  std::set<std::pair<std::string, const ast::Expr*>> seen;  // a module instantiated twice is checked once
  for (const PolicyInstance& p : policies) {
    if (seen.insert({p.label, p.require}).second) (void)Compile(p, 0, kJitThreshold, diags);
  }
}

PolicyReport EvaluatePolicies(const std::vector<PolicyInstance>& policies, const Plan& plan, Diagnostics& diags,
                              size_t jit_threshold) {
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
    report.jit = report.jit || c->set->jitted();
    rules::RecordBatch batch = c->set->NewBatch();
    std::vector<Value> selves;
    selves.reserve(targets.size());
    std::vector<std::string> type_errors(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      selves.push_back(ShapeForRules(*c->body, targets[i]->planned));
      batch.AddValues(Roots(p, selves.back()), &type_errors[i]);
    }
    std::vector<Outcome> outcomes = Run(*c, batch);
    for (size_t i = 0; i < targets.size(); ++i) {
      if (outcomes[i] == Outcome::Skip) continue;
      ++report.checks;
      if (outcomes[i] == Outcome::Pass) continue;
      PolicyFinding f;
      f.policy = p.name;
      f.address = targets[i]->address;
      f.deny = p.deny;
      f.range = p.range;
      if (outcomes[i] == Outcome::Undecided) {
        f.outcome = PolicyFinding::Outcome::Undecided;
        f.message = "cannot be decided until apply: it reads a value known only then";
      } else {
        f.outcome = PolicyFinding::Outcome::Violated;
        f.message = outcomes[i] == Outcome::Error ? ErrorMessage(p, selves[i], type_errors[i])
                                                  : Message(p, selves[i], f.address);
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
    const PolicyInstance* policy = nullptr;
    for (const PolicyInstance& p : config.policies) {
      if (p.label == tc.policy || p.name == tc.policy) policy = &p;
    }
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
    Value self = ShapeForRules(*c->body, attrs);
    rules::RecordBatch batch = c->set->NewBatch();
    std::string type_error;
    batch.AddValues(Roots(*policy, self), &type_error);
    Outcome o = Run(*c, batch)[0];
    switch (o) {
      case Outcome::Pass: r.got = "pass"; break;
      case Outcome::Fail:
        r.got = "fail";
        r.message = Message(*policy, self, "the test resource");
        break;
      case Outcome::Undecided: r.got = "undecided"; break;
      case Outcome::Skip: r.got = "skip"; break;
      case Outcome::Error:
        r.error = ErrorMessage(*policy, self, type_error);
        break;
    }
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace plinth::runtime
