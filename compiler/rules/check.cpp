#include "compiler/rules/check.h"

#include <algorithm>

#include "compiler/eval/evaluator.h"
#include "compiler/eval/functions.h"
#include "compiler/rules/host.h"
#include "compiler/rules/metric_query.h"

namespace plinth::rules {

const std::vector<std::string>& RuleFunctionNames() {
  static const std::vector<std::string> names = {"alltrue", "anytrue",  "contains", "endswith",   "length", "max",
                                                 "min",     "regexall", "startswith", "strcontains", "sum"};
  return names;
}

namespace {

bool IsNumberLike(VType t) {
  return !t.is_null && (t.scalar == ScalarType::Number || t.scalar == ScalarType::Duration ||
                        t.scalar == ScalarType::Size || t.scalar == ScalarType::Percent);
}
std::string UnitWord(VType t) { return t.is_null ? "null" : ScalarTypeName(t.scalar); }

// A list argument of an aggregate: a loop over a list field, or the items of
// a list literal.
struct ListSrc {
  bool valid = false;
  uint32_t loop = kNoLoop;
  std::vector<NodeId> items;
  VType element = VType::Null();  // Null for an empty literal
  bool objects = false;           // the elements are objects: only length() applies
  std::string what;               // "a list of numbers", for messages
};

std::string ListWhat(VType element, bool objects) {
  if (objects) return "a list of objects";
  if (element.is_null) return "an empty list";
  switch (element.scalar) {
    case ScalarType::Bool: return "a list of bools";
    case ScalarType::Number: return "a list of numbers";
    case ScalarType::Duration: return "a list of durations";
    case ScalarType::Size: return "a list of sizes";
    case ScalarType::Percent: return "a list of percentages";
    case ScalarType::String: return "a list of strings";
  }
  return "a list";
}

// What a reference (a name with attribute steps) denotes.
struct Ref {
  enum Kind { kFailed, kValue, kList, kObject, kNamespace } kind = kFailed;
  NodeId node;      // kValue
  FieldId field;    // kList: the list field
  std::string path; // for messages
};

class Checker {
 public:
  Checker(Program& p, Diagnostics& d) : p_(p), diags_(d) {}

  NodeId CheckRule(const ast::Expr& e) {
    NodeId root = Scalar(e);
    if (!root.valid()) return root;
    VType t = p_.node(root).type;
    if (!t.Is(ScalarType::Bool)) {
      diags_.Error(DiagCode::TypeMismatch, e.range, "a rule must be a bool, not " + DescribeType(t))
              .help = t.Is(ScalarType::String) || t.is_null ? "compare it, for example x != \"none\""
                                                           : "compare it, for example x > 0";
      return {};
    }
    return root;
  }

 private:
  // ---------------------------------------------------------------- nodes
  NodeId Add(Node n) {
    p_.nodes.push_back(n);
    return NodeId{static_cast<uint32_t>(p_.nodes.size() - 1)};
  }
  NodeId Const(double v, VType t, Range r) {
    Node n;
    n.kind = NodeKind::Const;
    n.type = t;
    n.number = v;
    n.range = r;
    return Add(n);
  }
  NodeId NullConst(Range r) {
    Node n;
    n.kind = NodeKind::Const;
    n.type = VType::Null();
    n.const_state = kNull;
    n.range = r;
    return Add(n);
  }
  NodeId Op(NodeKind k, VType t, Range r, NodeId a, NodeId b = {}, NodeId c = {}) {
    Node n;
    n.kind = k;
    n.type = t;
    n.range = r;
    n.a = a;
    n.b = b;
    n.c = c;
    return Add(n);
  }
  NodeId WithArgs(NodeKind k, VType t, Range r, const std::vector<NodeId>& args, uint32_t loop = kNoLoop,
                  NodeId a = {}) {
    Node n;
    n.kind = k;
    n.type = t;
    n.range = r;
    n.a = a;
    n.payload = loop;
    n.first_arg = static_cast<uint32_t>(p_.args.size());
    n.arg_count = static_cast<uint32_t>(args.size());
    p_.args.insert(p_.args.end(), args.begin(), args.end());
    return Add(n);
  }
  // A percentage used as a fraction: p / 100.
  NodeId Fraction(NodeId percent) {
    Range r = p_.node(percent).range;
    return Op(NodeKind::Div, VType::Of(ScalarType::Number), r, percent, Const(100, VType::Of(ScalarType::Number), r));
  }

  // ---------------------------------------------------------------- scalars
  NodeId Scalar(const ast::Expr& e) {
    using K = ast::ExprKind;
    switch (e.kind) {
      case K::Literal: return Literal(e.As<ast::Literal>());
      case K::Error: return {};
      case K::Template:
        Unsupported(e.range, "string interpolation is not supported in rules",
                    "compare the parts separately, for example startswith(x, \"prefix\")");
        return {};
      case K::Name:
      case K::GetAttr: {
        Ref r = Resolve(e);
        switch (r.kind) {
          case Ref::kFailed: return {};
          case Ref::kValue: return r.node;
          case Ref::kList:
            diags_.Error(DiagCode::TypeMismatch, e.range, "'" + r.path + "' is a list, not a single value")
                .help = "use it in alltrue, anytrue, length, sum or contains, for example with [for x in " + r.path +
                        " : ...]";
            return {};
          case Ref::kObject:
            diags_.Error(DiagCode::TypeMismatch, e.range, "'" + r.path + "' is an object, not a single value")
                .help = "use one of its attributes";
            return {};
          case Ref::kNamespace: {
            Diagnostic& d = diags_.Error(DiagCode::TypeMismatch, e.range,
                                         "'" + r.path + "' is an object, not a single value");
            std::vector<std::string> kids = p_.schema.Children(r.path);
            if (!kids.empty()) d.help = "use one of its attributes, for example " + r.path + "." + kids.front();
            return {};
          }
        }
        return {};
      }
      case K::Index:
        Unsupported(e.range, "indexing is not supported in rules",
                    "use contains(list, value), or a for expression with alltrue/anytrue");
        return {};
      case K::Splat:
      case K::List:
      case K::For:
        diags_.Error(DiagCode::TypeMismatch, e.range, "a list is not a single value")
            .help = "lists can be used as the argument of alltrue, anytrue, length, sum or contains";
        return {};
      case K::Object:
        Unsupported(e.range, "objects are not supported in rules", "compare the attributes one by one");
        return {};
      case K::Call: return Call(e.As<ast::Call>());
      case K::Unary: return Unary(e.As<ast::Unary>());
      case K::Binary: return Binary(e.As<ast::Binary>());
      case K::Conditional: return Conditional(e.As<ast::Conditional>());
    }
    return {};
  }

  void Unsupported(Range r, std::string msg, std::string help) {
    diags_.Error(DiagCode::InvalidOperation, r, std::move(msg)).help = std::move(help);
  }

  NodeId Literal(const ast::Literal& l) {
    const Value& v = l.value;
    switch (v.kind()) {
      case Value::Kind::Null: return NullConst(l.range);
      case Value::Kind::Bool: return Const(v.as_bool() ? 1 : 0, VType::Of(ScalarType::Bool), l.range);
      case Value::Kind::Number: return Const(v.as_number(), VType::Of(ScalarType::Number), l.range);
      case Value::Kind::Duration: return Const(v.as_number(), VType::Of(ScalarType::Duration), l.range);
      case Value::Kind::Size: return Const(v.as_number(), VType::Of(ScalarType::Size), l.range);
      case Value::Kind::Percent: return Const(v.as_number(), VType::Of(ScalarType::Percent), l.range);
      case Value::Kind::String:
        return Const(p_.strings->Intern(v.as_string()), VType::Of(ScalarType::String), l.range);
      case Value::Kind::List:
      case Value::Kind::Object:
      case Value::Kind::Unknown: break;
    }
    Unsupported(l.range, "this literal is not supported in rules", "use numbers, units, bools, strings or null");
    return {};
  }

  // ---------------------------------------------------------------- references
  Ref Resolve(const ast::Expr& e) {
    std::vector<const ast::GetAttr*> steps;
    const ast::Expr* cur = &e;
    while (cur->kind == ast::ExprKind::GetAttr) {
      steps.push_back(&cur->As<ast::GetAttr>());
      cur = cur->As<ast::GetAttr>().object.get();
    }
    std::reverse(steps.begin(), steps.end());
    if (cur->kind == ast::ExprKind::Error) return {};
    if (cur->kind != ast::ExprKind::Name) {
      Unsupported(steps.front()->name_range,
                  "attribute access is only supported on fields and for expression variables",
                  "write the field path directly, for example self.name");
      return {};
    }
    const auto& root = cur->As<ast::Name>();
    for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
      if (it->name == root.name) return ResolveLoopVar(*it, root, steps);
    }
    std::string path = root.name;
    if (!p_.schema.Find(path) && !p_.schema.IsNamespace(path)) {
      std::vector<std::string> names = p_.schema.Roots();
      for (const Binding& b : scope_) names.push_back(b.name);
      Diagnostic& d = diags_.Error(DiagCode::UndefinedReference, root.range, "unknown name '" + root.name + "'");
      std::string near = ClosestName(root.name, names);
      if (!near.empty()) {
        d.help = "did you mean '" + near + "'?";
      } else if (FindFunction(root.name)) {
        d.help = "'" + root.name + "' is a function: call it as " + root.name + "(...)";
      } else if (!names.empty()) {
        std::string list;
        for (size_t i = 0; i < names.size() && i < 8; ++i) list += (i ? ", " : "") + names[i];
        d.help = "rules can read: " + list;
      }
      return {};
    }
    size_t i = 0;
    std::optional<FieldId> field = p_.schema.Find(path);
    while (!field && i < steps.size()) {
      std::string next = path + "." + steps[i]->name;
      if (!p_.schema.Find(next) && !p_.schema.IsNamespace(next)) {
        Diagnostic& d = diags_.Error(DiagCode::InvalidIndex, steps[i]->name_range,
                                     "'" + path + "' has no attribute '" + steps[i]->name + "'");
        std::vector<std::string> kids = p_.schema.Children(path);
        std::string near = ClosestName(steps[i]->name, kids);
        if (!near.empty()) {
          d.help = "did you mean '" + near + "'?";
        } else if (!kids.empty() && kids.size() <= 12) {
          std::string list;
          for (const auto& k : kids) list += (list.empty() ? "" : ", ") + k;
          d.help = "its attributes are: " + list;
        }
        return {};
      }
      path = std::move(next);
      ++i;
      field = p_.schema.Find(path);
    }
    Ref r;
    r.path = path;
    if (!field) {
      r.kind = Ref::kNamespace;
      return r;
    }
    const FieldSpec& spec = p_.schema.field(*field);
    if (i < steps.size()) {
      Diagnostic& d = diags_.Error(
          DiagCode::InvalidOperation, steps[i]->name_range,
          "cannot read attribute '" + steps[i]->name + "' of " +
              (spec.shape == FieldShape::Scalar ? DescribeType(VType::Of(spec.type)) : std::string("a list")));
      if (spec.shape == FieldShape::ObjectList) {
        d.help = "iterate the list: [for x in " + path + " : x." + steps[i]->name + "]";
      }
      return {};
    }
    if (spec.shape != FieldShape::Scalar) {
      r.kind = Ref::kList;
      r.field = *field;
      return r;
    }
    Node n;
    n.kind = NodeKind::Field;
    n.type = VType::Of(spec.type);
    n.payload = field->index;
    n.range = e.range;
    r.kind = Ref::kValue;
    r.node = Add(n);
    return r;
  }

  struct Binding {
    std::string name;
    uint32_t loop;
    bool is_index;
  };

  Ref ResolveLoopVar(const Binding& b, const ast::Name& root, const std::vector<const ast::GetAttr*>& steps) {
    const FieldSpec& spec = p_.schema.field(p_.loop(b.loop).field);
    Ref r;
    r.path = root.name;
    Node n;
    n.payload = b.loop;
    n.range = root.range;
    size_t used = 0;
    if (b.is_index) {
      n.kind = NodeKind::LoopIndex;
      n.type = VType::Of(ScalarType::Number);
    } else if (spec.shape == FieldShape::List) {
      n.kind = NodeKind::Element;
      n.type = VType::Of(spec.type);
    } else {
      if (steps.empty()) {
        r.kind = Ref::kObject;
        return r;
      }
      int attr = spec.AttributeIndex(steps[0]->name);
      if (attr < 0) {
        Diagnostic& d = diags_.Error(DiagCode::InvalidIndex, steps[0]->name_range,
                                     "an element of '" + spec.path + "' has no attribute '" + steps[0]->name + "'");
        std::vector<std::string> names;
        for (const auto& a : spec.attributes) names.push_back(a.name);
        std::string near = ClosestName(steps[0]->name, names);
        if (!near.empty()) {
          d.help = "did you mean '" + near + "'?";
        } else if (!names.empty() && names.size() <= 12) {
          std::string list;
          for (const auto& k : names) list += (list.empty() ? "" : ", ") + k;
          d.help = "its attributes are: " + list;
        }
        return {};
      }
      n.kind = NodeKind::ElementAttr;
      n.payload2 = static_cast<uint32_t>(attr);
      n.type = VType::Of(spec.attributes[static_cast<size_t>(attr)].type);
      n.range = Range::Cover(root.range, steps[0]->range);
      used = 1;
    }
    if (steps.size() > used) {
      diags_.Error(DiagCode::InvalidOperation, steps[used]->name_range,
                   "cannot read attribute '" + steps[used]->name + "' of " + DescribeType(n.type));
      return {};
    }
    r.kind = Ref::kValue;
    r.node = Add(n);
    return r;
  }

  // ---------------------------------------------------------------- lists
  uint32_t NewLoop(FieldId field, bool null_is_empty) {
    Loop l;
    l.field = field;
    l.null_is_empty = null_is_empty;
    p_.loops.push_back(l);
    return static_cast<uint32_t>(p_.loops.size() - 1);
  }

  // A loop over a list field whose elements are the field's elements.
  ListSrc FieldLoop(FieldId field, bool null_is_empty, Range r) {
    const FieldSpec& spec = p_.schema.field(field);
    ListSrc s;
    s.valid = true;
    s.loop = NewLoop(field, null_is_empty);
    if (spec.shape == FieldShape::ObjectList) {
      s.objects = true;
    } else {
      Node n;
      n.kind = NodeKind::Element;
      n.type = VType::Of(spec.type);
      n.payload = s.loop;
      n.range = r;
      p_.loops[s.loop].value = Add(n);
      s.element = n.type;
    }
    s.what = ListWhat(s.element, s.objects);
    return s;
  }

  ListSrc List(const ast::Expr& e, const std::string& fn) {
    using K = ast::ExprKind;
    switch (e.kind) {
      case K::Error: return {};
      case K::List: {
        ListSrc s;
        s.valid = true;
        bool ok = true;
        for (const auto& item : e.As<ast::List>().items) {
          NodeId n = Scalar(*item);
          if (!n.valid()) {
            ok = false;
            continue;
          }
          VType t = p_.node(n).type;
          if (!t.is_null) {
            if (!s.element.is_null && s.element != t) {
              diags_.Error(DiagCode::TypeMismatch, item->range,
                           "this element is " + DescribeType(t) + ", but the elements before it are " +
                               DescribeType(s.element) + "s")
                  .help = "a list holds values of one type";
              ok = false;
            } else {
              s.element = t;
            }
          }
          s.items.push_back(n);
        }
        s.valid = ok;
        s.what = ListWhat(s.element, false);
        return s;
      }
      case K::For: return ForList(e.As<ast::For>());
      case K::Splat: return SplatList(e.As<ast::Splat>());
      case K::Name:
      case K::GetAttr: {
        Ref r = Resolve(e);
        if (r.kind == Ref::kFailed) return {};
        if (r.kind == Ref::kList) return FieldLoop(r.field, false, e.range);
        std::string what = r.kind == Ref::kValue ? DescribeType(p_.node(r.node).type) : std::string("an object");
        diags_.Error(DiagCode::FunctionArguments, e.range, "'" + fn + "' needs a list, not " + what);
        return {};
      }
      default: {
        NodeId n = Scalar(e);
        if (n.valid()) {
          diags_.Error(DiagCode::FunctionArguments, e.range,
                       "'" + fn + "' needs a list, not " + DescribeType(p_.node(n).type));
        }
        return {};
      }
    }
  }

  // The collection of a for expression or splat: a list field.
  std::optional<FieldId> Collection(const ast::Expr& e, const char* what) {
    if (e.kind == ast::ExprKind::Name || e.kind == ast::ExprKind::GetAttr) {
      Ref r = Resolve(e);
      if (r.kind == Ref::kFailed) return std::nullopt;
      if (r.kind == Ref::kList) return r.field;
      std::string desc = r.kind == Ref::kValue ? DescribeType(p_.node(r.node).type) : std::string("an object");
      diags_.Error(DiagCode::TypeMismatch, e.range, std::string(what) + " iterates over a list, not " + desc);
      return std::nullopt;
    }
    if (e.kind == ast::ExprKind::Error) return std::nullopt;
    Unsupported(e.range, std::string("in rules, ") + what + " can only iterate over a list field",
                "iterate over a field, for example [for g in self.grants : g.access]");
    return std::nullopt;
  }

  ListSrc ForList(const ast::For& f) {
    if (f.is_object) {
      Unsupported(f.range, "object for expressions are not supported in rules",
                  "use a list for expression: [for x in list : ...]");
      return {};
    }
    std::optional<FieldId> field = Collection(*f.collection, "a for expression");
    if (!field) return {};
    const FieldSpec& spec = p_.schema.field(*field);
    ListSrc s;
    s.loop = NewLoop(*field, true);
    size_t mark = scope_.size();
    if (!f.key_var.empty()) scope_.push_back({f.key_var, s.loop, true});
    scope_.push_back({f.value_var, s.loop, false});
    // `[for g in list_of_objects : g if ...]` keeps whole objects: only
    // length() can use such a list.
    bool objects = spec.shape == FieldShape::ObjectList && f.value->kind == ast::ExprKind::Name &&
                   f.value->As<ast::Name>().name == f.value_var;
    NodeId value = objects ? NodeId{} : Scalar(*f.value);
    NodeId filter;
    bool ok = objects || value.valid();
    if (f.cond) {
      filter = Scalar(*f.cond);
      if (filter.valid() && !p_.node(filter).type.Is(ScalarType::Bool)) {
        diags_.Error(DiagCode::TypeMismatch, f.cond->range,
                     "the 'if' clause must be a bool, not " + DescribeType(p_.node(filter).type));
        filter = {};
      }
      ok = ok && filter.valid();
    }
    scope_.resize(mark);
    if (!ok) return {};
    p_.loops[s.loop].value = value;
    p_.loops[s.loop].filter = filter;
    s.valid = true;
    s.objects = objects;
    if (!objects) s.element = p_.node(value).type;
    s.what = ListWhat(s.element, objects);
    return s;
  }

  ListSrc SplatList(const ast::Splat& sp) {
    std::optional<FieldId> field = Collection(*sp.source, "a splat");
    if (!field) return {};
    const FieldSpec& spec = p_.schema.field(*field);
    if (sp.chain.empty()) return FieldLoop(*field, true, sp.range);
    if (spec.shape != FieldShape::ObjectList || sp.chain.size() != 1 || sp.chain[0].key) {
      Unsupported(sp.range, "in rules, a splat can only select one attribute of a list of objects",
                  "write list[*].attribute, or use a for expression");
      return {};
    }
    int attr = spec.AttributeIndex(sp.chain[0].name);
    if (attr < 0) {
      Diagnostic& d = diags_.Error(DiagCode::InvalidIndex, sp.chain[0].range,
                                   "an element of '" + spec.path + "' has no attribute '" + sp.chain[0].name + "'");
      std::vector<std::string> names;
      for (const auto& a : spec.attributes) names.push_back(a.name);
      std::string near = ClosestName(sp.chain[0].name, names);
      if (!near.empty()) d.help = "did you mean '" + near + "'?";
      return {};
    }
    ListSrc s;
    s.valid = true;
    s.loop = NewLoop(*field, true);
    Node n;
    n.kind = NodeKind::ElementAttr;
    n.payload = s.loop;
    n.payload2 = static_cast<uint32_t>(attr);
    n.type = VType::Of(spec.attributes[static_cast<size_t>(attr)].type);
    n.range = sp.range;
    p_.loops[s.loop].value = Add(n);
    s.element = n.type;
    s.what = ListWhat(s.element, false);
    return s;
  }

  // ---------------------------------------------------------------- calls
  // A metric query (metric_query.h) reads the series the caller registered
  // under its name; where none is registered (a policy) it cannot be read.
  NodeId MetricCall(const ast::Call& c) {
    std::optional<MetricQuery> q = ParseMetricQuery(c, diags_);
    if (!q) return {};
    std::optional<FieldId> field = p_.schema.Find(q->series);
    if (!field || p_.schema.field(*field).shape != FieldShape::Scalar) {
      diags_.Error(DiagCode::InvalidOperation, c.range, "'" + c.name + "' reads scraped metrics, which only alert conditions see")
          .help = "use metric queries in an alert block's 'when'; policies check planned values";
      return {};
    }
    Node n;
    n.kind = NodeKind::Field;
    n.type = VType::Of(p_.schema.field(*field).type);
    n.payload = field->index;
    n.range = c.range;
    return Add(n);
  }

  bool Arity(const ast::Call& c, size_t n, const char* signature) {
    if (c.args.size() == n) return true;
    diags_.Error(DiagCode::FunctionArguments, c.range,
                 "'" + c.name + "' takes " + std::to_string(n) + (n == 1 ? " argument" : " arguments") + ", got " +
                     std::to_string(c.args.size()))
        .help = std::string("signature: ") + signature;
    return false;
  }

  NodeId Call(const ast::Call& c) {
    const std::string& fn = c.name;
    if (IsMetricFunction(fn)) return MetricCall(c);
    VType B = VType::Of(ScalarType::Bool);
    if (fn == "alltrue" || fn == "anytrue") {
      if (!Arity(c, 1, fn == "alltrue" ? "alltrue(list list(bool)) bool" : "anytrue(list list(bool)) bool")) return {};
      ListSrc s = List(*c.args[0], fn);
      if (!s.valid) return {};
      if (s.objects || !(s.element.is_null || s.element.Is(ScalarType::Bool))) {
        diags_.Error(DiagCode::FunctionArguments, c.args[0]->range, "'" + fn + "' needs a list of bools, not " + s.what)
            .help = "compare each element, for example [for x in list : x.enabled == true]";
        return {};
      }
      return Aggregate(fn == "alltrue" ? NodeKind::AllTrue : NodeKind::AnyTrue, B, c.range, s);
    }
    if (fn == "length") {
      if (!Arity(c, 1, "length(value any) int")) return {};
      const ast::Expr& arg = *c.args[0];
      if (arg.kind == ast::ExprKind::Call && arg.As<ast::Call>().name == "regexall") {
        return RegexCount(arg.As<ast::Call>(), c.range);
      }
      bool listy = arg.kind == ast::ExprKind::List || arg.kind == ast::ExprKind::For ||
                   arg.kind == ast::ExprKind::Splat;
      if (!listy && (arg.kind == ast::ExprKind::Name || arg.kind == ast::ExprKind::GetAttr)) {
        Ref r = Resolve(arg);
        if (r.kind == Ref::kFailed) return {};
        if (r.kind == Ref::kList) {
          ListSrc s = FieldLoop(r.field, false, arg.range);
          return Aggregate(NodeKind::Count, VType::Of(ScalarType::Number), c.range, s);
        }
        if (r.kind != Ref::kValue) {
          diags_.Error(DiagCode::FunctionArguments, arg.range, "'length' needs a string or a list, not an object");
          return {};
        }
        return StrLength(r.node, arg, c.range);
      }
      if (listy) {
        ListSrc s = List(arg, fn);
        if (!s.valid) return {};
        return Aggregate(NodeKind::Count, VType::Of(ScalarType::Number), c.range, s);
      }
      NodeId n = Scalar(arg);
      if (!n.valid()) return {};
      return StrLength(n, arg, c.range);
    }
    if (fn == "sum") {
      if (!Arity(c, 1, "sum(list list(any)) any")) return {};
      ListSrc s = List(*c.args[0], fn);
      if (!s.valid) return {};
      if (s.objects || !IsNumberLike(s.element)) {
        if (s.element.is_null && !s.objects && s.loop == kNoLoop) {
          diags_.Error(DiagCode::InvalidOperation, c.args[0]->range,
                       "cannot sum an empty list; 'sum' needs at least one element");
          return {};
        }
        diags_.Error(DiagCode::FunctionArguments, c.args[0]->range,
                     "'sum' needs a list of numbers or of values of one unit kind, not " + s.what);
        return {};
      }
      return Aggregate(NodeKind::Sum, s.element, c.range, s);
    }
    if (fn == "contains") {
      if (!Arity(c, 2, "contains(list list(any), value any) bool")) return {};
      ListSrc s = List(*c.args[0], fn);
      NodeId needle = Scalar(*c.args[1]);
      if (!s.valid || !needle.valid()) return {};
      if (s.objects) {
        diags_.Error(DiagCode::FunctionArguments, c.args[0]->range,
                     "'contains' cannot compare objects; select an attribute, for example list[*].name");
        return {};
      }
      VType nt = p_.node(needle).type;
      if (!s.element.is_null && !nt.is_null && s.element != nt) {
        diags_.Error(IsNumberLike(nt) && IsNumberLike(s.element) ? DiagCode::UnitMismatch : DiagCode::FunctionArguments,
                     c.args[1]->range,
                     "'contains' looks for " + DescribeType(nt) + " in " + s.what + ", so it is never found")
            .help = "compare values of the same type";
        return {};
      }
      return Aggregate(NodeKind::Contains, B, c.range, s, needle);
    }
    if (fn == "min" || fn == "max") {
      if (c.args.empty()) {
        diags_.Error(DiagCode::FunctionArguments, c.range, "'" + fn + "' needs at least one argument")
            .help = "signature: " + fn + "(values any...) any";
        return {};
      }
      std::vector<NodeId> args;
      bool ok = true;
      std::optional<VType> kind;
      for (size_t i = 0; i < c.args.size(); ++i) {
        const ast::Expr& a = *c.args[i];
        if (a.kind == ast::ExprKind::List || a.kind == ast::ExprKind::For || a.kind == ast::ExprKind::Splat) {
          diags_.Error(DiagCode::FunctionArguments, a.range,
                       "every argument of '" + fn + "' must be a number, duration, size or percent, got a list")
              .help = "'" + fn + "' compares its arguments: " + fn + "(a, b, c)";
          ok = false;
          continue;
        }
        NodeId n = Scalar(a);
        if (!n.valid()) {
          ok = false;
          continue;
        }
        VType t = p_.node(n).type;
        if (!IsNumberLike(t)) {
          diags_.Error(DiagCode::FunctionArguments, a.range,
                       "every argument of '" + fn + "' must be a number, duration, size or percent, got " +
                           DescribeType(t));
          ok = false;
          continue;
        }
        if (kind && *kind != t) {
          diags_.Error(DiagCode::FunctionArguments, a.range,
                       "cannot mix " + UnitWord(*kind) + " and " + UnitWord(t) + " in '" + fn +
                           "'; give values of one kind, for example all durations");
          ok = false;
          continue;
        }
        kind = t;
        args.push_back(n);
      }
      if (!ok) return {};
      return WithArgs(fn == "min" ? NodeKind::Min : NodeKind::Max, *kind, c.range, args);
    }
    if (fn == "startswith" || fn == "endswith" || fn == "strcontains") {
      std::string sig = fn + "(s string, " + (fn == "startswith" ? "prefix" : fn == "endswith" ? "suffix" : "substr") +
                        " string) bool";
      if (!Arity(c, 2, sig.c_str())) return {};
      NodeId a = StringArg(c, 0), b = StringArg(c, 1);
      if (!a.valid() || !b.valid()) return {};
      NodeKind k = fn == "startswith" ? NodeKind::StartsWith
                   : fn == "endswith" ? NodeKind::EndsWith
                                      : NodeKind::StrContains;
      return Op(k, B, c.range, a, b);
    }
    if (fn == "regexall" || fn == "regex") {
      Unsupported(c.range, "'" + fn + "' gives a list of matches, which rules cannot hold",
                  "test for a match with length(regexall(pattern, s)) > 0");
      return {};
    }
    if (FindFunction(fn)) {
      std::string list;
      for (const auto& n : RuleFunctionNames()) list += (list.empty() ? "" : ", ") + n;
      Unsupported(c.name_range, "function '" + fn + "' is not supported in rules", "rules can call: " + list);
      return {};
    }
    Diagnostic& d = diags_.Error(DiagCode::UnknownFunction, c.name_range, "unknown function '" + fn + "'");
    std::string near = ClosestName(fn, RuleFunctionNames());
    d.help = near.empty() ? "rules can call the functions listed in docs/rules.md" : "did you mean '" + near + "'?";
    return {};
  }

  NodeId StringArg(const ast::Call& c, size_t i) {
    NodeId n = Scalar(*c.args[i]);
    if (!n.valid()) return n;
    VType t = p_.node(n).type;
    if (!t.Is(ScalarType::String)) {
      diags_.Error(DiagCode::FunctionArguments, c.args[i]->range,
                   "argument " + std::to_string(i + 1) + " of '" + c.name + "' must be a string, not " +
                       DescribeType(t));
      return {};
    }
    return n;
  }

  NodeId StrLength(NodeId n, const ast::Expr& arg, Range call) {
    VType t = p_.node(n).type;
    if (!t.Is(ScalarType::String)) {
      diags_.Error(DiagCode::FunctionArguments, arg.range, "'length' needs a string or a list, not " + DescribeType(t));
      return {};
    }
    return Op(NodeKind::StrLength, VType::Of(ScalarType::Number), call, n);
  }

  NodeId RegexCount(const ast::Call& re, Range call) {
    if (!Arity(re, 2, "regexall(pattern string, s string) list(any)")) return {};
    const ast::Expr& pat = *re.args[0];
    NodeId subject = StringArg(re, 1);
    if (pat.kind != ast::ExprKind::Literal || pat.As<ast::Literal>().value.kind() != Value::Kind::String) {
      if (pat.kind != ast::ExprKind::Error) {
        diags_.Error(DiagCode::FunctionArguments, pat.range, "in rules, the pattern of 'regexall' must be a string literal")
            .help = "patterns are compiled once, when the rules are compiled";
      }
      return {};
    }
    if (!subject.valid()) return {};
    const std::string& text = pat.As<ast::Literal>().value.as_string();
    std::string error;
    std::unique_ptr<const Regex> compiled = Regex::Compile(text, error);
    if (!compiled) {
      diags_.Error(DiagCode::FunctionArguments, pat.range, error).help =
          "patterns use RE2 syntax, as in Go and Terraform; see docs/functions.md, \"Regular expressions\"";
      return {};
    }
    if (compiled->MixesNamedAndUnnamedGroups()) {  // regexall rejects it; so do rules
      diags_.Error(DiagCode::FunctionArguments, pat.range,
                   "the regular expression mixes named and unnamed capture groups; name every group, or make the "
                   "unnamed ones non-capturing with (?:...)");
      return {};
    }
    regexes_.Add(std::move(compiled));
    p_.patterns.push_back(text);
    NodeId n = Op(NodeKind::RegexCount, VType::Of(ScalarType::Number), call, subject);
    p_.nodes[n.index].payload = static_cast<uint32_t>(p_.patterns.size() - 1);
    return n;
  }

  NodeId Aggregate(NodeKind k, VType t, Range r, const ListSrc& s, NodeId needle = {}) {
    if (s.loop != kNoLoop) return WithArgs(k, t, r, {}, s.loop, needle);
    return WithArgs(k, t, r, s.items, kNoLoop, needle);
  }

  // ---------------------------------------------------------------- operators
  NodeId Unary(const ast::Unary& u) {
    NodeId a = Scalar(*u.operand);
    if (!a.valid()) return a;
    VType t = p_.node(a).type;
    if (u.op == ast::Op::Not) {
      if (!t.Is(ScalarType::Bool)) {
        diags_.Error(DiagCode::TypeMismatch, u.operand->range, "'!' needs a bool, not " + DescribeType(t));
        return {};
      }
      return Op(NodeKind::Not, t, u.range, a);
    }
    if (!IsNumberLike(t)) {
      diags_.Error(DiagCode::TypeMismatch, u.operand->range, "'-' needs a number, not " + DescribeType(t));
      return {};
    }
    return Op(NodeKind::Neg, t, u.range, a);
  }

  NodeId Binary(const ast::Binary& b) {
    NodeId l = Scalar(*b.lhs);
    NodeId r = Scalar(*b.rhs);
    if (!l.valid() || !r.valid()) return {};
    VType lt = p_.node(l).type, rt = p_.node(r).type;
    std::string op = ast::OpText(b.op);
    VType B = VType::Of(ScalarType::Bool);
    switch (b.op) {
      case ast::Op::And:
      case ast::Op::Or:
        for (auto [t, side] : {std::pair{lt, b.lhs.get()}, std::pair{rt, b.rhs.get()}}) {
          if (!t.Is(ScalarType::Bool)) {
            diags_.Error(DiagCode::TypeMismatch, side->range, "'" + op + "' needs bools, not " + DescribeType(t));
            return {};
          }
        }
        return Op(b.op == ast::Op::And ? NodeKind::And : NodeKind::Or, B, b.range, l, r);
      case ast::Op::Eq:
      case ast::Op::Ne: {
        if (!lt.is_null && !rt.is_null && lt != rt) {
          if (lt.Is(ScalarType::Percent) && rt.Is(ScalarType::Number)) {
            l = Fraction(l);
          } else if (rt.Is(ScalarType::Percent) && lt.Is(ScalarType::Number)) {
            r = Fraction(r);
          } else if (IsNumberLike(lt) && IsNumberLike(rt)) {
            diags_.Error(DiagCode::UnitMismatch, b.op_range,
                         "cannot compare " + DescribeType(lt) + " with " + DescribeType(rt))
                .help = "both sides need the same unit kind (durations with durations, sizes with sizes)";
            return {};
          } else {
            diags_.Error(DiagCode::TypeMismatch, b.op_range,
                         "cannot compare " + DescribeType(lt) + " with " + DescribeType(rt) +
                             "; the comparison would always be " + (b.op == ast::Op::Eq ? "false" : "true"))
                .help = "compare values of the same type";
            return {};
          }
        }
        return Op(b.op == ast::Op::Eq ? NodeKind::Eq : NodeKind::Ne, B, b.range, l, r);
      }
      case ast::Op::Lt:
      case ast::Op::Le:
      case ast::Op::Gt:
      case ast::Op::Ge: {
        for (auto [t, side] : {std::pair{lt, b.lhs.get()}, std::pair{rt, b.rhs.get()}}) {
          if (!IsNumberLike(t)) {
            diags_.Error(DiagCode::TypeMismatch, side->range, "'" + op + "' compares numbers, not " + DescribeType(t));
            return {};
          }
        }
        if (lt != rt) {
          if (lt.Is(ScalarType::Percent) && rt.Is(ScalarType::Number)) {
            l = Fraction(l);
          } else if (rt.Is(ScalarType::Percent) && lt.Is(ScalarType::Number)) {
            r = Fraction(r);
          } else {
            diags_.Error(DiagCode::UnitMismatch, b.op_range,
                         "cannot compare " + DescribeType(lt) + " with " + DescribeType(rt))
                .help = "both sides need the same unit kind (durations with durations, sizes with sizes)";
            return {};
          }
        }
        NodeKind k = b.op == ast::Op::Lt ? NodeKind::Lt
                     : b.op == ast::Op::Le ? NodeKind::Le
                     : b.op == ast::Op::Gt ? NodeKind::Gt
                                           : NodeKind::Ge;
        return Op(k, B, b.range, l, r);
      }
      default: break;
    }
    return Arithmetic(b, l, r, lt, rt);
  }

  NodeId Arithmetic(const ast::Binary& b, NodeId l, NodeId r, VType lt, VType rt) {
    std::string op = ast::OpText(b.op);
    bool ln = IsNumberLike(lt), rn = IsNumberLike(rt);
    if (!ln || !rn) {
      Diagnostic& d = diags_.Error(DiagCode::TypeMismatch, (ln ? b.rhs : b.lhs)->range,
                                   "'" + op + "' needs numbers, not " + DescribeType(ln ? rt : lt));
      if ((lt.Is(ScalarType::String) || rt.Is(ScalarType::String)) && b.op == ast::Op::Add) {
        d.help = "rules cannot build strings; compare them instead";
      }
      return {};
    }
    ScalarType x = lt.scalar, y = rt.scalar;
    bool xp = x == ScalarType::Number, yp = y == ScalarType::Number;  // plain numbers
    bool xu = !xp, yu = !yp;
    std::string error, help;
    std::optional<ScalarType> result;
    NodeKind k = NodeKind::Add;
    switch (b.op) {
      case ast::Op::Add:
      case ast::Op::Sub:
        k = b.op == ast::Op::Add ? NodeKind::Add : NodeKind::Sub;
        if (x == y) result = x;
        else {
          error = "cannot " + std::string(b.op == ast::Op::Add ? "add" : "subtract") + " a " + UnitWord(rt) +
                  (b.op == ast::Op::Add ? " to" : " from") + " a " + UnitWord(lt);
          help = (xp || yp) ? "give the number a unit, for example 30s or 10GiB"
                            : "both sides need the same unit kind (durations with durations, sizes with sizes)";
        }
        break;
      case ast::Op::Mul:
        k = NodeKind::Mul;
        if (xp && yp) result = ScalarType::Number;
        else if (xu && yp) result = x;
        else if (xp && yu) result = y;
        else if (x == ScalarType::Percent) {  // percent * unit: a fraction of the unit
          result = y;
          l = Fraction(l);
        } else if (y == ScalarType::Percent) {
          result = x;
          r = Fraction(r);
        } else {
          error = "cannot multiply a " + UnitWord(lt) + " by a " + UnitWord(rt);
          help = "multiply a unit value by a plain number or a percentage";
        }
        break;
      case ast::Op::Div:
        k = NodeKind::Div;
        if (xp && yp) result = ScalarType::Number;
        else if (xu && yp) result = x;
        else if (xu && x == y) result = ScalarType::Number;
        else {
          error = "cannot divide a " + UnitWord(lt) + " by a " + UnitWord(rt);
          help = xp ? "a plain number cannot be divided by a unit value" : "divide by a plain number, or by the same unit kind";
        }
        break;
      case ast::Op::Mod:
        k = NodeKind::Mod;
        if (x == y) result = x;
        else {
          error = "cannot take a " + UnitWord(lt) + " modulo a " + UnitWord(rt);
          help = "both sides of '%' need the same unit kind, or both be plain numbers";
        }
        break;
      default: break;
    }
    if (!result) {
      diags_.Error(DiagCode::UnitMismatch, b.range, error).help = help;
      return {};
    }
    return Op(k, VType::Of(*result), b.range, l, r);
  }

  NodeId Conditional(const ast::Conditional& c) {
    NodeId cond = Scalar(*c.cond);
    NodeId a = Scalar(*c.then);
    NodeId b = Scalar(*c.otherwise);
    if (!cond.valid() || !a.valid() || !b.valid()) return {};
    VType ct = p_.node(cond).type;
    if (!ct.Is(ScalarType::Bool)) {
      diags_.Error(DiagCode::TypeMismatch, c.cond->range, "a condition must be a bool, not " + DescribeType(ct))
          .help = "compare explicitly, for example x != \"\"";
      return {};
    }
    VType at = p_.node(a).type, bt = p_.node(b).type;
    VType t = at.is_null ? bt : at;
    if (!at.is_null && !bt.is_null && at != bt) {
      bool units = IsNumberLike(at) && IsNumberLike(bt);
      diags_.Error(units ? DiagCode::UnitMismatch : DiagCode::TypeMismatch, c.otherwise->range,
                   "the branches of the conditional differ: " + DescribeType(at) + " and " + DescribeType(bt))
          .help = "both branches need the same type";
      return {};
    }
    return Op(NodeKind::Cond, t, c.range, cond, a, b);
  }

  Program& p_;
  Diagnostics& diags_;
  std::vector<Binding> scope_;

 public:
  CompiledRegexes regexes_;
};

}  // namespace

Program CheckRules(RuleSchema schema, std::span<const RuleSource> rules, FieldMode mode,
                   std::shared_ptr<StringPool> strings, Diagnostics& diags) {
  Program p;
  p.schema = std::move(schema);
  p.mode = mode;
  p.strings = strings ? std::move(strings) : std::make_shared<StringPool>();
  Checker checker(p, diags);
  for (const RuleSource& src : rules) {
    Rule r;
    r.name = src.name;
    if (src.expr) {
      r.range = src.expr->range;
      r.root = checker.CheckRule(*src.expr);
    }
    p.rules.push_back(std::move(r));
  }
  p.regexes = std::make_shared<const CompiledRegexes>(std::move(checker.regexes_));
  return p;
}

}  // namespace plinth::rules
