#include "compiler/eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "compiler/eval/functions.h"

namespace plinth {

// --------------------------------------------------------------- references

namespace {

void Collect(const ast::Expr& e, std::vector<std::string>& bound, std::vector<Reference>& out) {
  using K = ast::ExprKind;
  switch (e.kind) {
    case K::Literal:
    case K::Error: return;
    case K::Name: {
      const auto& n = e.As<ast::Name>();
      if (std::find(bound.begin(), bound.end(), n.name) == bound.end()) out.push_back({n.name, "", e.range, e.range});
      return;
    }
    case K::GetAttr: {
      const auto& g = e.As<ast::GetAttr>();
      if (g.object->kind == K::Name) {
        const auto& n = g.object->As<ast::Name>();
        if (std::find(bound.begin(), bound.end(), n.name) == bound.end()) {
          out.push_back({n.name, g.name, Range::Cover(n.range, g.name_range), n.range});
        }
        return;
      }
      Collect(*g.object, bound, out);
      return;
    }
    case K::Template:
      for (const auto& p : e.As<ast::Template>().parts) {
        if (p.expr) Collect(*p.expr, bound, out);
      }
      return;
    case K::Index: {
      const auto& x = e.As<ast::Index>();
      Collect(*x.object, bound, out);
      Collect(*x.key, bound, out);
      return;
    }
    case K::Splat: {
      const auto& s = e.As<ast::Splat>();
      Collect(*s.source, bound, out);
      for (const auto& step : s.chain) {
        if (step.key) Collect(*step.key, bound, out);
      }
      return;
    }
    case K::Call:
      for (const auto& a : e.As<ast::Call>().args) Collect(*a, bound, out);
      return;
    case K::Unary: Collect(*e.As<ast::Unary>().operand, bound, out); return;
    case K::Binary:
      Collect(*e.As<ast::Binary>().lhs, bound, out);
      Collect(*e.As<ast::Binary>().rhs, bound, out);
      return;
    case K::Conditional: {
      const auto& c = e.As<ast::Conditional>();
      Collect(*c.cond, bound, out);
      Collect(*c.then, bound, out);
      Collect(*c.otherwise, bound, out);
      return;
    }
    case K::List:
      for (const auto& i : e.As<ast::List>().items) Collect(*i, bound, out);
      return;
    case K::Object:
      for (const auto& i : e.As<ast::Object>().items) Collect(*i.value, bound, out);
      return;
    case K::For: {
      const auto& f = e.As<ast::For>();
      Collect(*f.collection, bound, out);
      size_t mark = bound.size();
      if (!f.key_var.empty()) bound.push_back(f.key_var);
      bound.push_back(f.value_var);
      if (f.key) Collect(*f.key, bound, out);
      Collect(*f.value, bound, out);
      if (f.cond) Collect(*f.cond, bound, out);
      bound.resize(mark);
      return;
    }
  }
}

}  // namespace

void CollectReferences(const ast::Expr& expr, std::vector<Reference>& out) {
  std::vector<std::string> bound;
  Collect(expr, bound, out);
}

std::string ClosestName(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  size_t limit = std::max<size_t>(1, name.size() / 3);
  std::vector<size_t> prev, cur;
  for (const std::string& c : candidates) {
    if (c == name) continue;
    size_t n = name.size(), m = c.size();
    if ((n > m ? n - m : m - n) > limit) continue;
    prev.assign(m + 1, 0);
    cur.assign(m + 1, 0);
    for (size_t j = 0; j <= m; ++j) prev[j] = j;
    for (size_t i = 1; i <= n; ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= m; ++j) {
        size_t cost = std::tolower(static_cast<unsigned char>(name[i - 1])) ==
                              std::tolower(static_cast<unsigned char>(c[j - 1]))
                          ? 0
                          : 1;
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      }
      std::swap(prev, cur);
    }
    if (prev[m] <= limit && prev[m] < best_d) {
      best_d = prev[m];
      best = c;
    }
  }
  return best;
}

bool TemplateText(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::String: *out = v.as_string(); return true;
    case Value::Kind::Bool:
    case Value::Kind::Number:
    case Value::Kind::Duration:
    case Value::Kind::Size:
    case Value::Kind::Percent: *out = v.ToString(true); return true;
    default: return false;
  }
}

// --------------------------------------------------------------- evaluator

namespace {

std::string Describe(const Type& t) {
  switch (t.kind()) {
    case TypeKind::List: return "a list";
    case TypeKind::Map:
    case TypeKind::Object: return "an object";
    case TypeKind::Int:
    case TypeKind::Number: return "a number";
    case TypeKind::Duration: return "a duration";
    case TypeKind::Size: return "a size";
    case TypeKind::Percent: return "a percentage";
    case TypeKind::Bool: return "a bool";
    case TypeKind::String: return "a string";
    case TypeKind::Any: return "a value";
  }
  return "a value";
}

std::string DescribeValue(const Value& v) {
  if (v.is_null()) return "null";
  return Describe(v.type());
}

bool IsUnit(TypeKind k) { return k == TypeKind::Duration || k == TypeKind::Size || k == TypeKind::Percent; }

// An object whose values are all objects: what a for_each resource or module
// evaluates to. Splat iterates its instances.
bool IsInstanceMap(const Value& v) {
  for (const auto& [k, x] : v.as_object()) {
    if (x.kind() != Value::Kind::Object) return false;
  }
  return !v.as_object().empty();
}

class Evaluator {
 public:
  Evaluator(Scope& scope, Diagnostics& diags) : scope_(scope), diags_(diags) {}

  Value Eval(const ast::Expr& e) {
    using K = ast::ExprKind;
    switch (e.kind) {
      case K::Literal: return e.As<ast::Literal>().value;
      case K::Error: return Poison();
      case K::Template: return EvalTemplate(e.As<ast::Template>());
      case K::Name: return EvalReference(e, {});
      case K::GetAttr: return EvalGetAttr(e.As<ast::GetAttr>());
      case K::Index: return EvalIndex(e.As<ast::Index>());
      case K::Splat: return EvalSplat(e.As<ast::Splat>());
      case K::Call: return EvalCall(e.As<ast::Call>());
      case K::Unary: return EvalUnary(e.As<ast::Unary>());
      case K::Binary: return EvalBinary(e.As<ast::Binary>());
      case K::Conditional: return EvalConditional(e.As<ast::Conditional>());
      case K::List: {
        ValueList items;
        for (const auto& i : e.As<ast::List>().items) items.push_back(Eval(*i));
        return Value::List(std::move(items));
      }
      case K::Object: {
        ValueMap m;
        for (const auto& item : e.As<ast::Object>().items) {
          if (m.count(item.key)) {
            diags_.Error(DiagCode::DuplicateAttribute, item.key_range, "key '" + item.key + "' is set twice in this object")
                .help = "remove one of the two";
            continue;
          }
          m.emplace(item.key, Eval(*item.value));
        }
        return Value::Object(std::move(m));
      }
      case K::For: return EvalFor(e.As<ast::For>());
    }
    return Poison();
  }

 private:
  static Value Poison() { return Value::Unknown(Type::Any()); }

  Value EvalTemplate(const ast::Template& t) {
    std::string s;
    bool unknown = false, sensitive = false;
    for (const auto& p : t.parts) {
      if (!p.expr) {
        s += p.text;
        continue;
      }
      Value v = Eval(*p.expr);
      sensitive = sensitive || v.sensitive();
      if (v.is_unknown()) {
        const Type& ty = v.unknown_type();
        if (ty.is(TypeKind::List) || ty.is(TypeKind::Map) || ty.is(TypeKind::Object)) {
          diags_.Error(DiagCode::TypeMismatch, p.expr->range, "cannot interpolate " + Describe(ty) + " into a string")
              .help = t.parts.size() == 1 ? "write the expression without quotes and ${ }, or use join() or jsonencode()"
                                          : "use join() or jsonencode() to turn it into a string";
        }
        unknown = true;
        continue;
      }
      std::string text;
      if (!TemplateText(v, &text)) {
        diags_.Error(DiagCode::TypeMismatch, p.expr->range, "cannot interpolate " + DescribeValue(v) + " into a string")
            .help = v.is_null()            ? "use coalesce(value, \"default\") to provide a fallback"
                    : t.parts.size() == 1 ? "write the expression without quotes and ${ }, or use join() or jsonencode()"
                                          : "use join() or jsonencode() to turn it into a string";
        unknown = true;
        continue;
      }
      s += text;
    }
    Value out = unknown ? Value::Unknown(Type::String()) : Value::String(std::move(s));
    return out.WithSensitive(sensitive);
  }

  // Evaluates a traversal rooted at a Name: `steps` are the GetAttr nodes
  // from the root outwards.
  Value EvalReference(const ast::Expr& root_expr, std::vector<const ast::GetAttr*> steps) {
    const auto& root = root_expr.As<ast::Name>();
    for (auto it = locals_.rbegin(); it != locals_.rend(); ++it) {
      if (it->first == root.name) return ApplyAttrs(it->second, steps, 0);
    }
    Value v;
    size_t consumed = 0;
    if (!scope_.Resolve(root, steps, &v, &consumed, diags_)) {
      std::vector<std::string> names = scope_.RootNames();
      for (const auto& l : locals_) names.push_back(l.first);
      Diagnostic& d = diags_.Error(DiagCode::UndefinedReference, root.range, "unknown name '" + root.name + "'");
      std::string near = ClosestName(root.name, names);
      if (!near.empty()) {
        d.help = "did you mean '" + near + "'?";
      } else if (FindFunction(root.name)) {
        d.help = "'" + root.name + "' is a function: call it as " + root.name + "(...)";
      } else {
        d.help = "references start with var., local., module., a resource type, each., count. or self.";
      }
      return Poison();
    }
    return ApplyAttrs(v, steps, consumed);
  }

  Value ApplyAttrs(Value v, const std::vector<const ast::GetAttr*>& steps, size_t from) {
    for (size_t i = from; i < steps.size(); ++i) v = GetAttr(v, steps[i]->name, steps[i]->name_range);
    return v;
  }

  Value EvalGetAttr(const ast::GetAttr& g) {
    // Find the root of a pure attribute chain: a.b.c.
    std::vector<const ast::GetAttr*> steps{&g};
    const ast::Expr* cur = g.object.get();
    while (cur->kind == ast::ExprKind::GetAttr) {
      steps.push_back(&cur->As<ast::GetAttr>());
      cur = cur->As<ast::GetAttr>().object.get();
    }
    std::reverse(steps.begin(), steps.end());
    if (cur->kind == ast::ExprKind::Name) return EvalReference(*cur, steps);
    Value base = Eval(*cur);
    return ApplyAttrs(base, steps, 0);
  }

  Value GetAttr(const Value& v, const std::string& name, Range range) {
    if (v.is_unknown()) {
      const Type& t = v.unknown_type();
      if (t.is(TypeKind::Object)) {
        auto it = t.attributes().find(name);
        if (it == t.attributes().end()) {
          NoAttribute(name, range, t.attributes());
          return Poison();
        }
        return Value::Unknown(it->second).WithSensitive(v.sensitive());
      }
      if (t.is(TypeKind::Map)) return Value::Unknown(t.element()).WithSensitive(v.sensitive());
      if (t.is(TypeKind::Any)) return Value::Unknown(Type::Any()).WithSensitive(v.sensitive());
      diags_.Error(DiagCode::InvalidOperation, range, "cannot read attribute '" + name + "' of " + Describe(t));
      return Poison();
    }
    if (v.kind() == Value::Kind::Object) {
      const ValueMap& m = v.as_object();
      auto it = m.find(name);
      if (it == m.end()) {
        std::map<std::string, Type> names;
        for (const auto& [k, x] : m) names.emplace(k, Type::Any());
        NoAttribute(name, range, names);
        return Poison();
      }
      return v.sensitive() ? it->second.WithSensitive() : it->second;
    }
    Diagnostic& d = diags_.Error(DiagCode::InvalidOperation, range,
                                 "cannot read attribute '" + name + "' of " + DescribeValue(v));
    if (v.kind() == Value::Kind::List) {
      d.help = "this is a list (count or for_each?): pick an element with [index] or use [*]." + name;
    }
    return Poison();
  }

  void NoAttribute(const std::string& name, Range range, const std::map<std::string, Type>& attrs) {
    std::vector<std::string> names;
    for (const auto& [k, t] : attrs) names.push_back(k);
    Diagnostic& d = diags_.Error(DiagCode::InvalidIndex, range, "object has no attribute '" + name + "'");
    std::string near = ClosestName(name, names);
    if (!near.empty()) {
      d.help = "did you mean '" + near + "'?";
    } else if (!names.empty() && names.size() <= 12) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      d.help = "its attributes are: " + list;
    }
  }

  Value EvalIndex(const ast::Index& x) {
    Value coll = Eval(*x.object);
    Value key = Eval(*x.key);
    return IndexValue(coll, key, x.key->range);
  }

  Value IndexValue(const Value& coll, const Value& key, Range key_range) {
    bool sensitive = coll.sensitive() || key.sensitive();
    if (coll.is_unknown()) {
      const Type& t = coll.unknown_type();
      if (t.is(TypeKind::List) || t.is(TypeKind::Map)) return Value::Unknown(t.element()).WithSensitive(sensitive);
      if (t.is(TypeKind::Any) || t.is(TypeKind::Object)) return Value::Unknown(Type::Any()).WithSensitive(sensitive);
      diags_.Error(DiagCode::InvalidOperation, key_range, "cannot index " + Describe(t));
      return Poison();
    }
    if (key.is_unknown()) {
      if (coll.kind() == Value::Kind::List) return Value::Unknown(coll.type().element()).WithSensitive(sensitive);
      return Value::Unknown(Type::Any()).WithSensitive(sensitive);
    }
    if (coll.kind() == Value::Kind::List) {
      if (key.kind() != Value::Kind::Number || !key.is_integer()) {
        diags_.Error(DiagCode::TypeMismatch, key_range, "a list index must be a whole number, not " + DescribeValue(key));
        return Poison();
      }
      double i = key.as_number();
      const ValueList& l = coll.as_list();
      if (i < 0 || i >= static_cast<double>(l.size())) {
        diags_.Error(DiagCode::InvalidIndex, key_range,
                     "index " + FormatNumber(i) + " is out of range for a list of " + std::to_string(l.size()) +
                         (l.size() == 1 ? " element" : " elements"))
            .help = l.empty() ? "the list is empty" : "valid indices are 0 to " + std::to_string(l.size() - 1);
        return Poison();
      }
      Value v = l[static_cast<size_t>(i)];
      return sensitive ? v.WithSensitive() : v;
    }
    if (coll.kind() == Value::Kind::Object) {
      std::string k;
      if (key.kind() != Value::Kind::String) {
        diags_.Error(DiagCode::TypeMismatch, key_range, "an object key must be a string, not " + DescribeValue(key));
        return Poison();
      }
      k = key.as_string();
      const ValueMap& m = coll.as_object();
      auto it = m.find(k);
      if (it == m.end()) {
        std::vector<std::string> names;
        for (const auto& [n, v] : m) names.push_back(n);
        Diagnostic& d = diags_.Error(DiagCode::InvalidIndex, key_range, "key " + QuoteString(k) + " does not exist");
        std::string near = ClosestName(k, names);
        if (!near.empty()) d.help = "did you mean " + QuoteString(near) + "?";
        else d.help = "use lookup(map, key, default) when a key may be missing";
        return Poison();
      }
      return sensitive ? it->second.WithSensitive() : it->second;
    }
    diags_.Error(DiagCode::InvalidOperation, key_range, "cannot index " + DescribeValue(coll));
    return Poison();
  }

  Value EvalSplat(const ast::Splat& s) {
    Value source = Eval(*s.source);
    if (source.is_unknown()) return Value::Unknown(Type::List(Type::Any())).WithSensitive(source.sensitive());
    ValueList items;
    if (source.is_null()) return Value::List({});
    if (source.kind() == Value::Kind::List) {
      items = source.as_list();
    } else if (source.kind() == Value::Kind::Object && IsInstanceMap(source)) {
      // A for_each resource or module: its instances, in key order.
      for (const auto& [k, v] : source.as_object()) items.push_back(v);
    } else {
      items.push_back(source);
    }
    ValueList out;
    out.reserve(items.size());
    for (Value v : items) {
      for (const auto& step : s.chain) {
        if (step.key) {
          v = IndexValue(v, Eval(*step.key), step.range);
        } else {
          v = GetAttr(v, step.name, step.range);
        }
      }
      out.push_back(std::move(v));
    }
    return Value::List(std::move(out)).WithSensitive(source.sensitive());
  }

  Value EvalCall(const ast::Call& c) {
    const FunctionDef* fn = FindFunction(c.name);
    std::vector<Value> args;
    args.reserve(c.args.size());
    for (const auto& a : c.args) args.push_back(Eval(*a));
    if (!fn) {
      std::vector<std::string> names;
      for (const FunctionDef& f : AllFunctions()) names.emplace_back(f.name);
      Diagnostic& d = diags_.Error(DiagCode::UnknownFunction, c.name_range, "unknown function '" + c.name + "'");
      std::string near = ClosestName(c.name, names);
      if (near.empty() && c.name.size() >= 4) {
        // "uppercase" -> "upper", "lowercase" -> "lower": a function that starts the name.
        for (const std::string& n : names) {
          if (n.size() >= 3 && c.name.size() > n.size() && c.name.compare(0, n.size(), n) == 0) near = n;
        }
      }
      d.help = near.empty() ? "the builtin functions are listed in docs/functions.md" : "did you mean '" + near + "'?";
      return Poison();
    }
    if (fn->category == "file") scope_.ReadsFiles();
    CallContext ctx{scope_.BaseDir(), scope_.ImpureKnown()};
    FunctionResult r = CallFunction(*fn, ctx, args);
    if (r.error) {
      const FunctionError& err = *r.error;
      Range where = err.argument >= 0 && static_cast<size_t>(err.argument) < c.args.size()
                        ? c.args[static_cast<size_t>(err.argument)]->range
                        : c.range;
      Diagnostic& d = diags_.Error(err.bad_argument ? DiagCode::FunctionArguments : DiagCode::InvalidOperation, where,
                                   err.message);
      d.help = "signature: " + std::string(fn->signature);
      return Poison();
    }
    return r.value;
  }

  Value EvalUnary(const ast::Unary& u) {
    Value v = Eval(*u.operand);
    Type t = v.is_unknown() ? v.unknown_type() : v.type();
    if (u.op == ast::Op::Not) {
      if (!t.is(TypeKind::Bool) && !t.is(TypeKind::Any)) {
        diags_.Error(DiagCode::TypeMismatch, u.operand->range, "'!' needs a bool, not " + DescribeValue(v));
        return Poison();
      }
      if (v.is_unknown()) return Value::Unknown(Type::Bool()).WithSensitive(v.sensitive());
      return Value::Bool(!v.as_bool()).WithSensitive(v.sensitive());
    }
    if (!t.IsNumeric() && !IsUnit(t.kind()) && !t.is(TypeKind::Any)) {
      diags_.Error(DiagCode::TypeMismatch, u.operand->range, "'-' needs a number, not " + DescribeValue(v));
      return Poison();
    }
    if (v.is_unknown()) return v;
    Value out = v;
    switch (v.kind()) {
      case Value::Kind::Number: out = Value::Number(-v.as_number()); break;
      case Value::Kind::Duration: out = Value::Duration(-v.as_number()); break;
      case Value::Kind::Size: out = Value::Size(-v.as_number()); break;
      case Value::Kind::Percent: out = Value::Percent(-v.as_number()); break;
      default: break;
    }
    return out.WithSensitive(v.sensitive());
  }

  // The result type of `a op b`, or an error message.
  static bool ArithmeticType(ast::Op op, const Type& a, const Type& b, Type* out, std::string* error,
                             std::string* help) {
    TypeKind x = a.kind(), y = b.kind();
    auto name = [](TypeKind k) {
      switch (k) {
        case TypeKind::Duration: return std::string("duration");
        case TypeKind::Size: return std::string("size");
        case TypeKind::Percent: return std::string("percentage");
        case TypeKind::Int:
        case TypeKind::Number: return std::string("number");
        default: return std::string("value");
      }
    };
    bool xn = a.IsNumeric(), yn = b.IsNumeric();
    bool xu = IsUnit(x), yu = IsUnit(y);
    if (x == TypeKind::Any || y == TypeKind::Any) {
      *out = x == TypeKind::Any ? (y == TypeKind::Any || yn ? Type::Any() : b) : a;
      if ((op == ast::Op::Div) && xu && yu) *out = Type::Number();
      return true;
    }
    if (!(xn || xu) || !(yn || yu)) {
      *error = "'" + std::string(ast::OpText(op)) + "' needs numbers, not " + Describe(xn || xu ? b : a);
      if ((x == TypeKind::String || y == TypeKind::String) && op == ast::Op::Add) {
        *help = "join strings with interpolation: \"${a}${b}\"";
      }
      return false;
    }
    auto both_int = [&] { return x == TypeKind::Int && y == TypeKind::Int; };
    switch (op) {
      case ast::Op::Add:
      case ast::Op::Sub:
        if (xn && yn) {
          *out = both_int() ? Type::Int() : Type::Number();
          return true;
        }
        if (x == y) {
          *out = a;
          return true;
        }
        *error = "cannot " + std::string(op == ast::Op::Add ? "add" : "subtract") + " a " + name(y) +
                 (op == ast::Op::Add ? " to" : " from") + " a " + name(x);
        *help = (xn || yn) ? "give the number a unit, for example 30s or 10GiB"
                           : "both sides need the same unit kind (durations with durations, sizes with sizes)";
        return false;
      case ast::Op::Mul:
        if (xn && yn) {
          *out = both_int() ? Type::Int() : Type::Number();
          return true;
        }
        if (xu && yn) {
          *out = a;
          return true;
        }
        if (xn && yu) {
          *out = b;
          return true;
        }
        if (x == TypeKind::Percent && yu) {
          *out = b;
          return true;
        }
        if (y == TypeKind::Percent && xu) {
          *out = a;
          return true;
        }
        *error = "cannot multiply a " + name(x) + " by a " + name(y);
        *help = "multiply a unit value by a plain number or a percentage";
        return false;
      case ast::Op::Div:
        if (xn && yn) {
          *out = Type::Number();
          return true;
        }
        if (xu && yn) {
          *out = a;
          return true;
        }
        if (xu && x == y) {
          *out = Type::Number();
          return true;
        }
        *error = "cannot divide a " + name(x) + " by a " + name(y);
        *help = xn ? "a plain number cannot be divided by a unit value" : "divide by a plain number, or by the same unit kind";
        return false;
      case ast::Op::Mod:
        if (xn && yn) {
          *out = both_int() ? Type::Int() : Type::Number();
          return true;
        }
        if (xu && x == y) {
          *out = a;
          return true;
        }
        *error = "cannot take a " + name(x) + " modulo a " + name(y);
        *help = "both sides of '%' need the same unit kind, or both be plain numbers";
        return false;
      default: break;
    }
    return false;
  }

  static Value MakeLike(const Type& t, double v) {
    switch (t.kind()) {
      case TypeKind::Duration: return Value::Duration(v);
      case TypeKind::Size: return Value::Size(v);
      case TypeKind::Percent: return Value::Percent(v);
      default: return Value::Number(v);
    }
  }

  Value EvalBinary(const ast::Binary& b) {
    Value l = Eval(*b.lhs);
    // && and || skip the right side when the left decides.
    if ((b.op == ast::Op::And || b.op == ast::Op::Or) && l.kind() == Value::Kind::Bool) {
      if (b.op == ast::Op::And && !l.as_bool()) return l;
      if (b.op == ast::Op::Or && l.as_bool()) return l;
    }
    Value r = Eval(*b.rhs);
    bool sensitive = l.sensitive() || r.sensitive();
    Type lt = l.is_unknown() ? l.unknown_type() : l.type();
    Type rt = r.is_unknown() ? r.unknown_type() : r.type();
    bool unknown = l.is_unknown() || r.is_unknown();
    switch (b.op) {
      case ast::Op::And:
      case ast::Op::Or: {
        for (const auto* side : {&l, &r}) {
          const Type& t = side == &l ? lt : rt;
          if (!t.is(TypeKind::Bool) && !t.is(TypeKind::Any)) {
            diags_.Error(DiagCode::TypeMismatch, (side == &l ? b.lhs : b.rhs)->range,
                         "'" + std::string(ast::OpText(b.op)) + "' needs bools, not " + DescribeValue(*side));
            return Poison();
          }
        }
        if (unknown) return Value::Unknown(Type::Bool()).WithSensitive(sensitive);
        return r.WithSensitive(sensitive);
      }
      case ast::Op::Eq:
      case ast::Op::Ne: {
        if (l.ContainsUnknown() || r.ContainsUnknown()) return Value::Unknown(Type::Bool()).WithSensitive(sensitive);
        bool eq = l.Equals(r);
        // A percentage equals the fraction it stands for: 5% == 0.05.
        if (l.kind() == Value::Kind::Percent && r.kind() == Value::Kind::Number) eq = l.as_number() / 100 == r.as_number();
        if (r.kind() == Value::Kind::Percent && l.kind() == Value::Kind::Number) eq = r.as_number() / 100 == l.as_number();
        return Value::Bool(b.op == ast::Op::Eq ? eq : !eq).WithSensitive(sensitive);
      }
      case ast::Op::Lt:
      case ast::Op::Le:
      case ast::Op::Gt:
      case ast::Op::Ge: {
        bool ok_kinds = (lt.IsNumeric() || IsUnit(lt.kind()) || lt.is(TypeKind::Any)) &&
                        (rt.IsNumeric() || IsUnit(rt.kind()) || rt.is(TypeKind::Any));
        bool same_dim = lt.is(TypeKind::Any) || rt.is(TypeKind::Any) || (lt.IsNumeric() && rt.IsNumeric()) ||
                        lt.kind() == rt.kind() || (lt.is(TypeKind::Percent) && rt.IsNumeric()) ||
                        (rt.is(TypeKind::Percent) && lt.IsNumeric());
        if (!ok_kinds) {
          const Value& bad = (lt.IsNumeric() || IsUnit(lt.kind()) || lt.is(TypeKind::Any)) ? r : l;
          diags_.Error(DiagCode::TypeMismatch, (&bad == &l ? b.lhs : b.rhs)->range,
                       "'" + std::string(ast::OpText(b.op)) + "' compares numbers, not " + DescribeValue(bad));
          return Poison();
        }
        if (!same_dim) {
          diags_.Error(DiagCode::UnitMismatch, b.op_range,
                       "cannot compare " + Describe(lt) + " with " + Describe(rt))
              .help = "both sides need the same unit kind (durations with durations, sizes with sizes)";
          return Poison();
        }
        if (unknown) return Value::Unknown(Type::Bool()).WithSensitive(sensitive);
        // A percentage compared with a plain number is a fraction: 5% == 0.05.
        double x = l.as_number(), y = r.as_number();
        if (lt.is(TypeKind::Percent) && rt.IsNumeric()) x /= 100;
        if (rt.is(TypeKind::Percent) && lt.IsNumeric()) y /= 100;
        bool res = b.op == ast::Op::Lt ? x < y : b.op == ast::Op::Le ? x <= y : b.op == ast::Op::Gt ? x > y : x >= y;
        return Value::Bool(res).WithSensitive(sensitive);
      }
      default: break;
    }
    Type result;
    std::string error, help;
    if (!ArithmeticType(b.op, lt, rt, &result, &error, &help)) {
      bool unit_problem = (IsUnit(lt.kind()) || IsUnit(rt.kind())) && (lt.IsNumeric() || IsUnit(lt.kind())) &&
                          (rt.IsNumeric() || IsUnit(rt.kind()));
      Diagnostic& d = diags_.Error(unit_problem ? DiagCode::UnitMismatch : DiagCode::TypeMismatch,
                                   unit_problem ? b.range : (lt.IsNumeric() || IsUnit(lt.kind()) ? b.rhs : b.lhs)->range,
                                   error);
      d.help = help;
      return Poison();
    }
    if (unknown) return Value::Unknown(result).WithSensitive(sensitive);
    double x = l.as_number(), y = r.as_number();
    double v = 0;
    switch (b.op) {
      case ast::Op::Add: v = x + y; break;
      case ast::Op::Sub: v = x - y; break;
      case ast::Op::Mul:
        // A percentage scales a duration or size: 80% * 10GiB = 8GiB; with a
        // plain number it stays a percentage: 50% * 2 = 100%.
        if (lt.is(TypeKind::Percent) && (rt.is(TypeKind::Duration) || rt.is(TypeKind::Size))) x /= 100;
        else if (rt.is(TypeKind::Percent) && (lt.is(TypeKind::Duration) || lt.is(TypeKind::Size))) y /= 100;
        else if (lt.is(TypeKind::Percent) && rt.is(TypeKind::Percent)) y /= 100;
        v = x * y;
        break;
      case ast::Op::Div:
      case ast::Op::Mod:
        if (y == 0) {
          diags_.Error(DiagCode::InvalidOperation, b.rhs->range,
                       b.op == ast::Op::Div ? "division by zero" : "modulo by zero");
          return Poison();
        }
        v = b.op == ast::Op::Div ? x / y : std::fmod(x, y);
        break;
      default: break;
    }
    if (result.is(TypeKind::Int) && !(std::floor(v) == v)) result = Type::Number();
    return MakeLike(result, v).WithSensitive(sensitive);
  }

  Value EvalConditional(const ast::Conditional& c) {
    Value cond = Eval(*c.cond);
    Type ct = cond.is_unknown() ? cond.unknown_type() : cond.type();
    if (!ct.is(TypeKind::Bool) && !ct.is(TypeKind::Any)) {
      diags_.Error(DiagCode::TypeMismatch, c.cond->range, "a condition must be a bool, not " + DescribeValue(cond))
          .help = "compare explicitly, for example x != \"\"";
      return Poison();
    }
    if (cond.is_unknown()) {
      Value a = Eval(*c.then), b = Eval(*c.otherwise);
      Type t = Unify(a.is_unknown() ? a.unknown_type() : a.type(), b.is_unknown() ? b.unknown_type() : b.type());
      return Value::Unknown(t).WithSensitive(cond.sensitive() || a.sensitive() || b.sensitive());
    }
    Value v = cond.as_bool() ? Eval(*c.then) : Eval(*c.otherwise);
    return cond.sensitive() ? v.WithSensitive() : v;
  }

  Value EvalFor(const ast::For& f) {
    Value coll = Eval(*f.collection);
    if (coll.is_unknown()) {
      return Value::Unknown(f.is_object ? Type::Map(Type::Any()) : Type::List(Type::Any())).WithSensitive(coll.sensitive());
    }
    std::vector<std::pair<Value, Value>> entries;
    if (coll.kind() == Value::Kind::List) {
      const ValueList& l = coll.as_list();
      for (size_t i = 0; i < l.size(); ++i) entries.emplace_back(Value::Number(static_cast<double>(i)), l[i]);
    } else if (coll.kind() == Value::Kind::Object) {
      for (const auto& [k, v] : coll.as_object()) entries.emplace_back(Value::String(k), v);
    } else if (!coll.is_null()) {
      diags_.Error(DiagCode::TypeMismatch, f.collection->range, "a for expression iterates over a list or an object, not " +
                                                                   DescribeValue(coll));
      return Poison();
    }
    ValueList list;
    ValueMap map;
    bool unknown = false;
    for (auto& [k, v] : entries) {
      size_t mark = locals_.size();
      if (!f.key_var.empty()) locals_.emplace_back(f.key_var, k);
      locals_.emplace_back(f.value_var, v);
      bool keep = true;
      if (f.cond) {
        Value c = Eval(*f.cond);
        if (c.is_unknown()) {
          unknown = true;
        } else if (c.kind() != Value::Kind::Bool) {
          diags_.Error(DiagCode::TypeMismatch, f.cond->range, "the 'if' clause must be a bool, not " + DescribeValue(c));
          locals_.resize(mark);
          return Poison();
        } else {
          keep = c.as_bool();
        }
      }
      if (keep) {
        if (f.is_object) {
          Value key = Eval(*f.key);
          Value value = Eval(*f.value);
          std::string ks;
          if (key.is_unknown()) {
            unknown = true;
          } else if (!TemplateText(key, &ks)) {
            diags_.Error(DiagCode::TypeMismatch, f.key->range, "object keys must be strings, not " + DescribeValue(key));
            locals_.resize(mark);
            return Poison();
          } else if (map.count(ks)) {
            diags_.Error(DiagCode::InvalidOperation, f.key->range, "the key " + QuoteString(ks) + " is produced twice")
                .help = "make the key expression unique, for example by including the index";
            locals_.resize(mark);
            return Poison();
          } else {
            map.emplace(ks, value);
          }
        } else {
          list.push_back(Eval(*f.value));
        }
      }
      locals_.resize(mark);
    }
    if (unknown) return Value::Unknown(f.is_object ? Type::Map(Type::Any()) : Type::List(Type::Any()));
    Value out = f.is_object ? Value::Object(std::move(map)) : Value::List(std::move(list));
    return out.WithSensitive(coll.sensitive());
  }

  Scope& scope_;
  Diagnostics& diags_;
  std::vector<std::pair<std::string, Value>> locals_;  // for-expression variables, innermost last
};

}  // namespace

Value Evaluate(const ast::Expr& expr, Scope& scope, Diagnostics& diags) {
  Evaluator ev(scope, diags);
  return ev.Eval(expr);
}

}  // namespace plinth
