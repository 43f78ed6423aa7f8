// Collection, numeric and type-conversion functions.
//
// Maps and objects share one value representation (Value::Kind::Object with
// sorted keys), so every function that takes a map also takes an object.
// min, max and sum work on plain numbers and on values of one unit kind
// (durations, sizes or percentages); mixing kinds is an error.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "compiler/eval/functions_internal.h"
#include "compiler/source/source.h"

namespace plinth::fn_internal {
namespace {

using Kind = Value::Kind;

constexpr size_t kMaxRangeElements = 1'000'000;

// ------------------------------------------------------------ type helpers

// The element type of a list type, or Any.
Type ElementOf(const Type& t) {
  return t.is(TypeKind::List) || t.is(TypeKind::Map) ? t.element() : Type::Any();
}

// The common type of an object's attribute types or a map's element type.
Type MapElementOf(const Type& t) {
  if (t.is(TypeKind::Map)) return t.element();
  if (t.is(TypeKind::Object)) {
    std::optional<Type> e;
    for (const auto& [k, a] : t.attributes()) e = e ? Unify(*e, a) : a;
    return e.value_or(Type::Any());
  }
  return Type::Any();
}

Type SameListType(std::span<const Type> types) {
  return types.empty() ? Type::List(Type::Any()) : types[0];
}

// min/max/sum: the unit kind all arguments share, or a number.
Type NumericResult(std::span<const Type> types) {
  if (types.empty()) return Type::Any();
  Type r = types[0];
  for (const Type& t : types) {
    if (t.is(TypeKind::Any)) return Type::Any();
    if (t.IsNumeric() && r.IsNumeric()) {
      r = Unify(r, t);
    } else if (t != r) {
      return Type::Any();
    }
  }
  return r;
}

// The type of a list's elements, ignoring nulls; Any when they differ.
std::optional<Type> CommonElementType(const ValueList& items, size_t* bad) {
  std::optional<Type> common;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].is_null()) continue;
    Type t = items[i].type();
    if (!common) {
      common = t;
      continue;
    }
    Type u = Unify(*common, t);
    if (u.is(TypeKind::Any) && !common->is(TypeKind::Any) && !t.is(TypeKind::Any)) {
      if (bad) *bad = i;
      return std::nullopt;
    }
    common = u;
  }
  return common.value_or(Type::Any());
}

// ------------------------------------------------------------ numbers/units

// Checks that `v` is a number or a unit value of the same kind as `first`.
std::optional<FunctionResult> CheckSameNumericKind(std::string_view fn, int arg, const Value& first,
                                                   const Value& v, std::string_view what) {
  if (!IsNumberOrUnit(v)) {
    return TypeError(arg, std::string(what) + " of '" + std::string(fn) +
                              "' must be a number, duration, size or percent, got " + KindName(v));
  }
  if (v.kind() != first.kind()) {
    return TypeError(arg, "cannot mix " + UnitKindName(first) + " and " + UnitKindName(v) + " in '" +
                              std::string(fn) + "'; give values of one kind, for example all durations");
  }
  return std::nullopt;
}

Value SameKind(const Value& like, double n) {
  if (auto dim = UnitOf(like)) return MakeUnitValue(*dim, n);
  return Value::Number(n);
}

FunctionResult MinMax(std::span<const Value> args, bool want_max, std::string_view fn) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (auto err = CheckSameNumericKind(fn, static_cast<int>(i), args[0], args[i], "every argument"))
      return *err;
  }
  size_t best = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    double a = args[i].as_number();
    double b = args[best].as_number();
    if (want_max ? a > b : a < b) best = i;
  }
  return FunctionResult::Ok(
      SameKind(args[best], args[best].as_number()).WithSensitive(args[best].sensitive()));
}

// ------------------------------------------------------------ collections

FunctionResult Length(const CallContext&, std::span<const Value> args) {
  const Value& v = args[0];
  switch (v.kind()) {
    case Kind::String: return FunctionResult::Ok(Value::Number(CountCodePoints(v.as_string())));
    case Kind::List: return FunctionResult::Ok(Value::Number(static_cast<double>(v.as_list().size())));
    case Kind::Object: return FunctionResult::Ok(Value::Number(static_cast<double>(v.as_object().size())));
    default: return TypeError(0, "'length' needs a string, list or map, got " + KindName(v));
  }
}

void FlattenInto(const ValueList& items, ValueList& out) {
  for (const Value& v : items) {
    if (v.kind() == Kind::List) {
      FlattenInto(v.as_list(), out);
    } else {
      out.push_back(v);
    }
  }
}

Type FlattenType(const Type& t) {
  Type e = ElementOf(t);
  while (e.is(TypeKind::List)) e = e.element();
  return Type::List(e);
}

Type MergeType(std::span<const Type> types) {
  bool all_objects = true;
  for (const Type& t : types) all_objects = all_objects && t.is(TypeKind::Object);
  if (all_objects) {
    std::map<std::string, Type> attrs;
    for (const Type& t : types) {
      for (const auto& [k, a] : t.attributes()) attrs[k] = a;
    }
    return Type::Object(std::move(attrs));
  }
  std::optional<Type> e;
  for (const Type& t : types) e = e ? Unify(*e, MapElementOf(t)) : MapElementOf(t);
  return Type::Map(e.value_or(Type::Any()));
}

FunctionResult Lookup(const CallContext&, std::span<const Value> args) {
  const ValueMap& m = args[0].as_object();
  auto it = m.find(args[1].as_string());
  if (it != m.end()) return FunctionResult::Ok(it->second);
  if (args.size() == 3) return FunctionResult::Ok(args[2]);
  return ValueError(1, "the map has no key " + Describe(args[1]) + "; add a default as the third argument");
}

FunctionResult Element(const CallContext&, std::span<const Value> args) {
  const ValueList& l = args[0].as_list();
  if (l.empty()) return ValueError(0, "cannot take an element of an empty list");
  std::optional<int64_t> i = IntIn(args[1], 0, INT64_MAX);
  if (!i) return ValueError(1, "the index must be 0 or more, got " + Describe(args[1]));
  return FunctionResult::Ok(l[static_cast<size_t>(*i) % l.size()]);
}

FunctionResult Slice(const CallContext&, std::span<const Value> args) {
  const ValueList& l = args[0].as_list();
  const int64_t n = static_cast<int64_t>(l.size());
  std::optional<int64_t> b = IntIn(args[1], 0, n);
  if (!b) {
    return ValueError(
        1, "the start index must be from 0 to " + std::to_string(n) + ", got " + Describe(args[1]));
  }
  std::optional<int64_t> e = IntIn(args[2], *b, n);
  if (!e) {
    return ValueError(2, "the end index must be from " + std::to_string(*b) + " (the start) to " +
                             std::to_string(n) + " (the length), got " + Describe(args[2]));
  }
  return FunctionResult::Ok(Value::List(ValueList(l.begin() + *b, l.begin() + *e)));
}

ValueList Distinct(const ValueList& l) {
  ValueList out;
  for (const Value& v : l) {
    bool seen = std::any_of(out.begin(), out.end(), [&](const Value& o) { return o.Equals(v); });
    if (!seen) out.push_back(v);
  }
  return out;
}

FunctionResult Sort(const CallContext&, std::span<const Value> args) {
  ValueList l = args[0].as_list();
  if (l.empty()) return FunctionResult::Ok(args[0]);
  const Value& first = l[0];
  if (first.kind() != Kind::String && !IsNumberOrUnit(first)) {
    return TypeError(
        0, "'sort' needs a list of strings, numbers or one unit kind, but element 0 is " + KindName(first));
  }
  for (size_t i = 1; i < l.size(); ++i) {
    if (l[i].kind() != first.kind()) {
      return TypeError(0, "element " + std::to_string(i) + " is " + KindName(l[i]) + " but element 0 is " +
                              KindName(first) + "; 'sort' needs elements of one kind");
    }
  }
  if (first.kind() == Kind::String) {
    std::stable_sort(l.begin(), l.end(),
                     [](const Value& a, const Value& b) { return a.as_string() < b.as_string(); });
  } else {
    for (size_t i = 0; i < l.size(); ++i) {
      if (std::isnan(l[i].as_number()))
        return ValueError(0, "element " + std::to_string(i) + " is not a number");
    }
    std::stable_sort(l.begin(), l.end(),
                     [](const Value& a, const Value& b) { return a.as_number() < b.as_number(); });
  }
  return FunctionResult::Ok(Value::List(std::move(l)));
}

FunctionResult Index(const CallContext&, std::span<const Value> args) {
  const ValueList& l = args[0].as_list();
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i].Equals(args[1])) return FunctionResult::Ok(Value::Number(static_cast<double>(i)));
  }
  return ValueError(
      1, "the list does not contain " + Describe(args[1]) + "; check with 'contains' before calling 'index'");
}

FunctionResult Range(const CallContext&, std::span<const Value> args) {
  double start = 0;
  double limit = 0;
  double step = 1;
  if (args.size() == 1) {
    limit = args[0].as_number();
  } else {
    start = args[0].as_number();
    limit = args[1].as_number();
    step = args.size() == 3 ? args[2].as_number() : (limit < start ? -1 : 1);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (!std::isfinite(args[i].as_number()))
      return ValueError(static_cast<int>(i), "the value must be finite");
  }
  if (step == 0) return ValueError(2, "the step must not be 0");
  double count = std::ceil((limit - start) / step);
  if (!(count > 0)) return FunctionResult::Ok(Value::List({}));
  if (count > static_cast<double>(kMaxRangeElements)) {
    return ValueError(-1, "'range' would produce " + FormatNumber(count) +
                              " elements, more than the limit of " + std::to_string(kMaxRangeElements) +
                              "; use a smaller range or a larger step");
  }
  ValueList out;
  out.reserve(static_cast<size_t>(count));
  for (size_t i = 0; i < static_cast<size_t>(count); ++i) out.push_back(Value::Number(start + step * i));
  return FunctionResult::Ok(Value::List(std::move(out)));
}

FunctionResult Zipmap(const CallContext&, std::span<const Value> args) {
  const ValueList& ks = args[0].as_list();
  const ValueList& vs = args[1].as_list();
  if (ks.size() != vs.size()) {
    return ValueError(1, "there are " + std::to_string(ks.size()) + " keys but " + std::to_string(vs.size()) +
                             " values; give both lists the same length");
  }
  ValueMap m;
  for (size_t i = 0; i < ks.size(); ++i) {
    if (ks[i].kind() != Kind::String) {
      return TypeError(0,
                       "key " + std::to_string(i) + " is " + KindName(ks[i]) + ", but map keys are strings");
    }
    m[ks[i].as_string()] = vs[i];
  }
  return FunctionResult::Ok(Value::Object(std::move(m)));
}

FunctionResult Coalesce(const CallContext&, std::span<const Value> args) {
  for (const Value& v : args) {
    if (v.is_null()) continue;
    if (v.kind() == Kind::String && v.as_string().empty()) continue;
    return FunctionResult::Ok(v);
  }
  return ValueError(-1, "every argument of 'coalesce' is null or an empty string; add a non-empty fallback");
}

FunctionResult Compact(const CallContext&, std::span<const Value> args) {
  ValueList out;
  const ValueList& l = args[0].as_list();
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i].is_null()) continue;
    if (l[i].kind() != Kind::String) {
      return TypeError(
          0, "element " + std::to_string(i) + " is " + KindName(l[i]) + ", but 'compact' needs strings");
    }
    if (!l[i].as_string().empty()) out.push_back(l[i]);
  }
  return FunctionResult::Ok(Value::List(std::move(out)));
}

FunctionResult Sum(const CallContext&, std::span<const Value> args) {
  const ValueList& l = args[0].as_list();
  if (l.empty()) return ValueError(0, "cannot sum an empty list; 'sum' needs at least one element");
  double total = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    if (!IsNumberOrUnit(l[i])) {
      return TypeError(0, "element " + std::to_string(i) + " is " + KindName(l[i]) +
                              ", but 'sum' needs numbers or values of one unit kind");
    }
    if (l[i].kind() != l[0].kind()) {
      return TypeError(0, "element " + std::to_string(i) + " is a " + UnitKindName(l[i]) +
                              " but element 0 is a " + UnitKindName(l[0]) + "; 'sum' cannot mix unit kinds");
    }
    total += l[i].as_number();
  }
  return FunctionResult::Ok(SameKind(l[0], total));
}

FunctionResult BoolFold(std::span<const Value> args, bool all, std::string_view fn) {
  const ValueList& l = args[0].as_list();
  bool result = all;
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i].kind() != Kind::Bool) {
      return TypeError(0, "element " + std::to_string(i) + " is " + KindName(l[i]) + ", but '" +
                              std::string(fn) + "' needs bools");
    }
    result = all ? (result && l[i].as_bool()) : (result || l[i].as_bool());
  }
  return FunctionResult::Ok(Value::Bool(result));
}

FunctionResult ToList(const CallContext&, std::span<const Value> args) {
  const Value& v = args[0];
  if (v.is_null()) return FunctionResult::Ok(v);
  if (v.kind() != Kind::List) return TypeError(0, "cannot convert " + KindName(v) + " to a list");
  size_t bad = 0;
  if (!CommonElementType(v.as_list(), &bad)) {
    return TypeError(0, "element " + std::to_string(bad) + " has a different type (" +
                            KindName(v.as_list()[bad]) +
                            ") from the elements before it; a list needs elements of one type");
  }
  return FunctionResult::Ok(v);
}

FunctionResult ToMap(const CallContext&, std::span<const Value> args) {
  const Value& v = args[0];
  if (v.is_null()) return FunctionResult::Ok(v);
  if (v.kind() != Kind::Object) return TypeError(0, "cannot convert " + KindName(v) + " to a map");
  ValueList values;
  std::vector<std::string> keys;
  for (const auto& [k, e] : v.as_object()) {
    values.push_back(e);
    keys.push_back(k);
  }
  size_t bad = 0;
  if (!CommonElementType(values, &bad)) {
    return TypeError(0, "attribute '" + keys[bad] + "' has a different type (" + KindName(values[bad]) +
                            ") from the ones before it; a map needs values of one type");
  }
  return FunctionResult::Ok(v);
}

FunctionResult ToNumber(const CallContext&, std::span<const Value> args) {
  const Value& v = args[0];
  if (v.is_null() || v.kind() == Kind::Number) return FunctionResult::Ok(v);
  if (v.kind() == Kind::String) {
    const std::string& s = v.as_string();
    bool plain = !s.empty() && s.find_first_not_of("0123456789+-.eE") == std::string::npos;
    if (plain) {
      errno = 0;
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size() && errno != ERANGE) return FunctionResult::Ok(Value::Number(d));
    }
    return ValueError(
        0, "cannot convert " + Describe(v) + " to a number; write digits like \"42\" or \"-1.5e3\"");
  }
  if (UnitOf(v)) {
    return TypeError(0, "cannot convert a " + UnitKindName(v) +
                            " to a number; use 'seconds', 'milliseconds', 'bytes' or 'gibibytes'");
  }
  return TypeError(0, "cannot convert " + KindName(v) + " to a number");
}

FunctionResult ToStringFn(const CallContext&, std::span<const Value> args) {
  const Value& v = args[0];
  switch (v.kind()) {
    case Kind::Null:
    case Kind::String: return FunctionResult::Ok(v);
    case Kind::List:
    case Kind::Object:
      return TypeError(0, "cannot convert " + KindName(v) + " to a string; use 'jsonencode' or 'join'");
    default: return FunctionResult::Ok(Value::String(v.ToString(/*reveal=*/true)));
  }
}

FunctionResult ToBool(const CallContext&, std::span<const Value> args) {
  const Value& v = args[0];
  if (v.is_null() || v.kind() == Kind::Bool) return FunctionResult::Ok(v);
  if (v.kind() == Kind::String) {
    if (v.as_string() == "true") return FunctionResult::Ok(Value::Bool(true));
    if (v.as_string() == "false") return FunctionResult::Ok(Value::Bool(false));
    return ValueError(0, "cannot convert " + Describe(v) + " to a bool; only \"true\" and \"false\" convert");
  }
  return TypeError(0, "cannot convert " + KindName(v) + " to a bool");
}

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 36;
  return -1;
}

FunctionResult ParseInt(const CallContext&, std::span<const Value> args) {
  std::optional<int64_t> base = IntIn(args[1], 2, 62);
  if (!base) return ValueError(1, "the base must be from 2 to 62, got " + Describe(args[1]));
  std::string_view s = args[0].as_string();
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty())
    return ValueError(0, "cannot parse " + Describe(args[0]) + " as an integer: it has no digits");
  double n = 0;
  for (char c : s) {
    int d = DigitValue(c);
    if (*base <= 36 && d >= 36) d -= 26;  // upper and lower case mean the same below base 37
    if (d < 0 || d >= *base) {
      return ValueError(0, "cannot parse " + Describe(args[0]) + " as a base " + std::to_string(*base) +
                               " integer: '" + std::string(1, c) + "' is not a digit in that base");
    }
    n = n * static_cast<double>(*base) + d;
    if (n > 9007199254740992.0) {
      return ValueError(0, Describe(args[0]) + " is too large to represent exactly (the limit is 2^53)");
    }
  }
  return FunctionResult::Ok(Value::Number(negative ? -n : n));
}

using Impl = std::function<FunctionResult(const CallContext&, std::span<const Value>)>;

Impl NumberMap(double (*f)(double)) {
  return [f](const CallContext&, std::span<const Value> args) {
    return FunctionResult::Ok(Value::Number(f(args[0].as_number())));
  };
}

}  // namespace

void RegisterCollectionFunctions(std::vector<FunctionDef>& out) {
  const Type A = Type::Any();
  const Type LA = Type::List(A);
  const Type MA = Type::Map(A);
  const Type I = Type::Int();
  const Type N = Type::Number();
  const Type S = Type::String();
  const Type B = Type::Bool();
  const Type LS = Type::List(S);
  auto element_of_first = [](std::span<const Type> t) { return t.empty() ? Type::Any() : ElementOf(t[0]); };

  // ---- collection
  out.push_back({"length",
                 "collection",
                 "length(value any) int",
                 "the number of elements of a list or map, or of characters of a string",
                 1,
                 1,
                 {A},
                 Returns(I),
                 Length});
  out.push_back({"concat",
                 "collection",
                 "concat(lists list(any)...) list(any)",
                 "joins lists into one list",
                 1,
                 SIZE_MAX,
                 {LA},
                 [](std::span<const Type> t) {
                   Type e = ElementOf(t[0]);
                   for (const Type& x : t) e = Unify(e, ElementOf(x));
                   return Type::List(e);
                 },
                 [](const CallContext&, std::span<const Value> args) {
                   ValueList l;
                   for (const Value& a : args) l.insert(l.end(), a.as_list().begin(), a.as_list().end());
                   return FunctionResult::Ok(Value::List(std::move(l)));
                 }});
  out.push_back({"flatten",
                 "collection",
                 "flatten(list list(any)) list(any)",
                 "replaces nested lists by their elements, recursively",
                 1,
                 1,
                 {LA},
                 [](std::span<const Type> t) { return FlattenType(t[0]); },
                 [](const CallContext&, std::span<const Value> args) {
                   ValueList l;
                   FlattenInto(args[0].as_list(), l);
                   return FunctionResult::Ok(Value::List(std::move(l)));
                 }});
  out.push_back({"keys",
                 "collection",
                 "keys(map map(any)) list(string)",
                 "the keys of a map, sorted",
                 1,
                 1,
                 {MA},
                 Returns(LS),
                 [](const CallContext&, std::span<const Value> args) {
                   ValueList l;
                   for (const auto& [k, v] : args[0].as_object()) l.push_back(Value::String(k));
                   return FunctionResult::Ok(Value::List(std::move(l)));
                 }});
  out.push_back({"values",
                 "collection",
                 "values(map map(any)) list(any)",
                 "the values of a map, in the order of their sorted keys",
                 1,
                 1,
                 {MA},
                 [](std::span<const Type> t) { return Type::List(MapElementOf(t[0])); },
                 [](const CallContext&, std::span<const Value> args) {
                   ValueList l;
                   for (const auto& [k, v] : args[0].as_object()) l.push_back(v);
                   return FunctionResult::Ok(Value::List(std::move(l)));
                 }});
  out.push_back({"merge",
                 "collection",
                 "merge(maps map(any)...) map(any)",
                 "combines maps; later maps win for keys that appear more than once",
                 1,
                 SIZE_MAX,
                 {MA},
                 MergeType,
                 [](const CallContext&, std::span<const Value> args) {
                   ValueMap m;
                   for (const Value& a : args) {
                     for (const auto& [k, v] : a.as_object()) m[k] = v;
                   }
                   return FunctionResult::Ok(Value::Object(std::move(m)));
                 }});
  out.push_back({"lookup",
                 "collection",
                 "lookup(map map(any), key string, default any) any",
                 "the value of a key in a map, or the default when the key is missing",
                 2,
                 3,
                 {MA, S, A},
                 [](std::span<const Type> t) {
                   Type e = MapElementOf(t[0]);
                   return t.size() == 3 ? Unify(e, t[2]) : e;
                 },
                 Lookup});
  out.push_back({"element",
                 "collection",
                 "element(list list(any), index int) any",
                 "the element at an index; indexes past the end wrap around",
                 2,
                 2,
                 {LA, I},
                 element_of_first,
                 Element});
  out.push_back({"slice",
                 "collection",
                 "slice(list list(any), start int, end int) list(any)",
                 "the elements from `start` up to but not including `end`",
                 3,
                 3,
                 {LA, I, I},
                 SameListType,
                 Slice});
  out.push_back({"distinct",
                 "collection",
                 "distinct(list list(any)) list(any)",
                 "removes duplicate elements, keeping the first of each",
                 1,
                 1,
                 {LA},
                 SameListType,
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(Value::List(Distinct(args[0].as_list())));
                 }});
  out.push_back({"sort",
                 "collection",
                 "sort(list list(any)) list(any)",
                 "sorts strings lexically, or numbers or values of one unit kind by size",
                 1,
                 1,
                 {LA},
                 SameListType,
                 Sort});
  out.push_back({"reverse",
                 "collection",
                 "reverse(list list(any)) list(any)",
                 "the elements in reverse order",
                 1,
                 1,
                 {LA},
                 SameListType,
                 [](const CallContext&, std::span<const Value> args) {
                   ValueList l(args[0].as_list().rbegin(), args[0].as_list().rend());
                   return FunctionResult::Ok(Value::List(std::move(l)));
                 }});
  out.push_back({"contains",
                 "collection",
                 "contains(list list(any), value any) bool",
                 "whether a list contains a value",
                 2,
                 2,
                 {LA, A},
                 Returns(B),
                 [](const CallContext&, std::span<const Value> args) {
                   const ValueList& l = args[0].as_list();
                   bool found =
                       std::any_of(l.begin(), l.end(), [&](const Value& v) { return v.Equals(args[1]); });
                   return FunctionResult::Ok(Value::Bool(found));
                 }});
  out.push_back({"index",
                 "collection",
                 "index(list list(any), value any) int",
                 "the index of the first element equal to a value",
                 2,
                 2,
                 {LA, A},
                 Returns(I),
                 Index});
  out.push_back({"range",
                 "collection",
                 "range(start number, limit number, step number) list(number)",
                 "numbers from `start` (default 0) up to but not including `limit`",
                 1,
                 3,
                 {N, N, N},
                 Returns(Type::List(N)),
                 Range});
  out.push_back({"zipmap",
                 "collection",
                 "zipmap(keys list(string), values list(any)) map(any)",
                 "builds a map from a list of keys and a list of values",
                 2,
                 2,
                 {LS, LA},
                 [](std::span<const Type> t) { return Type::Map(ElementOf(t[1])); },
                 Zipmap});
  out.push_back({"coalesce",
                 "collection",
                 "coalesce(values any...) any",
                 "the first argument that is neither null nor an empty string",
                 1,
                 SIZE_MAX,
                 {A},
                 [](std::span<const Type> t) {
                   Type r = t[0];
                   for (const Type& x : t) r = Unify(r, x);
                   return r;
                 },
                 Coalesce});
  out.push_back({"coalescelist",
                 "collection",
                 "coalescelist(lists list(any)...) list(any)",
                 "the first list that is not empty",
                 1,
                 SIZE_MAX,
                 {LA},
                 [](std::span<const Type> t) {
                   Type r = t[0];
                   for (const Type& x : t) r = Unify(r, x);
                   return r;
                 },
                 [](const CallContext&, std::span<const Value> args) {
                   for (const Value& a : args) {
                     if (!a.as_list().empty()) return FunctionResult::Ok(a);
                   }
                   return ValueError(-1,
                                     "every list given to 'coalescelist' is empty; add a non-empty fallback");
                 }});
  out.push_back({"compact",
                 "collection",
                 "compact(list list(string)) list(string)",
                 "removes empty strings and nulls from a list",
                 1,
                 1,
                 {LS},
                 Returns(LS),
                 Compact});
  out.push_back({"sum",
                 "collection",
                 "sum(list list(any)) any",
                 "the sum of a list of numbers, or of values of one unit kind",
                 1,
                 1,
                 {LA},
                 [](std::span<const Type> t) {
                   Type e = ElementOf(t[0]);
                   return e.is(TypeKind::Int) ? Type::Number() : e;
                 },
                 Sum});
  out.push_back(
      {"alltrue",
       "collection",
       "alltrue(list list(bool)) bool",
       "whether every element is true (true for an empty list)",
       1,
       1,
       {Type::List(B)},
       Returns(B),
       [](const CallContext&, std::span<const Value> args) { return BoolFold(args, true, "alltrue"); }});
  out.push_back(
      {"anytrue",
       "collection",
       "anytrue(list list(bool)) bool",
       "whether any element is true (false for an empty list)",
       1,
       1,
       {Type::List(B)},
       Returns(B),
       [](const CallContext&, std::span<const Value> args) { return BoolFold(args, false, "anytrue"); }});
  out.push_back({"one",
                 "collection",
                 "one(list list(any)) any",
                 "the only element of a list, or null for an empty list",
                 1,
                 1,
                 {LA},
                 element_of_first,
                 [](const CallContext&, std::span<const Value> args) {
                   const ValueList& l = args[0].as_list();
                   if (l.empty()) return FunctionResult::Ok(Value::Null());
                   if (l.size() == 1) return FunctionResult::Ok(l[0]);
                   return ValueError(0, "the list has " + std::to_string(l.size()) +
                                            " elements, but 'one' accepts at most one");
                 }});
  out.push_back({"union",
                 "collection",
                 "union(lists list(any)...) list(any)",
                 "the distinct elements of all lists, in order of first appearance",
                 1,
                 SIZE_MAX,
                 {LA},
                 [](std::span<const Type> t) {
                   Type e = ElementOf(t[0]);
                   for (const Type& x : t) e = Unify(e, ElementOf(x));
                   return Type::List(e);
                 },
                 [](const CallContext&, std::span<const Value> args) {
                   ValueList all;
                   for (const Value& a : args) all.insert(all.end(), a.as_list().begin(), a.as_list().end());
                   return FunctionResult::Ok(Value::List(Distinct(all)));
                 }});
  out.push_back(
      {"chunklist",
       "collection",
       "chunklist(list list(any), size int) list(list(any))",
       "splits a list into lists of at most `size` elements",
       2,
       2,
       {LA, I},
       [](std::span<const Type> t) { return Type::List(t[0]); },
       [](const CallContext&, std::span<const Value> args) {
         std::optional<int64_t> size = IntIn(args[1], 1, INT64_MAX);
         if (!size) return ValueError(1, "the chunk size must be at least 1, got " + Describe(args[1]));
         const ValueList& l = args[0].as_list();
         ValueList chunks;
         for (size_t i = 0; i < l.size(); i += static_cast<size_t>(std::min<int64_t>(*size, l.size()))) {
           size_t end = std::min(l.size(), i + static_cast<size_t>(std::min<int64_t>(*size, l.size())));
           chunks.push_back(Value::List(ValueList(l.begin() + i, l.begin() + end)));
         }
         return FunctionResult::Ok(Value::List(std::move(chunks)));
       }});
  out.push_back(
      {"transpose",
       "collection",
       "transpose(map map(list(string))) map(list(string))",
       "swaps keys and values of a map of string lists",
       1,
       1,
       {Type::Map(LS)},
       Returns(Type::Map(LS)),
       [](const CallContext&, std::span<const Value> args) {
         std::map<std::string, ValueList> m;
         for (const auto& [k, l] : args[0].as_object()) {
           if (l.kind() != Kind::List) {
             return TypeError(0, "the value of '" + k + "' is " + KindName(l) + ", not a list of strings");
           }
           for (const Value& v : l.as_list()) {
             if (v.kind() != Kind::String) {
               return TypeError(0, "the list of '" + k + "' contains " + KindName(v) + ", not a string");
             }
             m[v.as_string()].push_back(Value::String(k));
           }
         }
         ValueMap r;
         for (auto& [k, l] : m) r[k] = Value::List(std::move(l));
         return FunctionResult::Ok(Value::Object(std::move(r)));
       }});

  // ---- numeric
  out.push_back(
      {"abs",
       "numeric",
       "abs(x number) number",
       "the absolute value of a number",
       1,
       1,
       {N},
       [](std::span<const Type> t) { return t[0].is(TypeKind::Int) ? Type::Int() : Type::Number(); },
       NumberMap([](double x) { return std::fabs(x); })});
  out.push_back({"ceil",
                 "numeric",
                 "ceil(x number) int",
                 "the smallest whole number not less than x",
                 1,
                 1,
                 {N},
                 Returns(I),
                 NumberMap([](double x) { return std::ceil(x); })});
  out.push_back({"floor",
                 "numeric",
                 "floor(x number) int",
                 "the largest whole number not greater than x",
                 1,
                 1,
                 {N},
                 Returns(I),
                 NumberMap([](double x) { return std::floor(x); })});
  out.push_back({"min",
                 "numeric",
                 "min(values any...) any",
                 "the smallest of numbers, or of durations, sizes or percentages of one kind",
                 1,
                 SIZE_MAX,
                 {A},
                 NumericResult,
                 [](const CallContext&, std::span<const Value> args) { return MinMax(args, false, "min"); }});
  out.push_back({"max",
                 "numeric",
                 "max(values any...) any",
                 "the largest of numbers, or of durations, sizes or percentages of one kind",
                 1,
                 SIZE_MAX,
                 {A},
                 NumericResult,
                 [](const CallContext&, std::span<const Value> args) { return MinMax(args, true, "max"); }});
  out.push_back({"pow",
                 "numeric",
                 "pow(base number, exponent number) number",
                 "base raised to the power of exponent",
                 2,
                 2,
                 {N, N},
                 Returns(N),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(
                       Value::Number(std::pow(args[0].as_number(), args[1].as_number())));
                 }});
  out.push_back(
      {"log",
       "numeric",
       "log(x number, base number) number",
       "the logarithm of x in the given base",
       2,
       2,
       {N, N},
       Returns(N),
       [](const CallContext&, std::span<const Value> args) {
         double x = args[0].as_number();
         double base = args[1].as_number();
         if (!(x > 0))
           return ValueError(0, "the logarithm is only defined for x > 0, got " + Describe(args[0]));
         if (!(base > 0) || base == 1) {
           return ValueError(1, "the base must be greater than 0 and not 1, got " + Describe(args[1]));
         }
         return FunctionResult::Ok(Value::Number(std::log(x) / std::log(base)));
       }});
  out.push_back({"signum",
                 "numeric",
                 "signum(x number) int",
                 "-1, 0 or 1: the sign of a number",
                 1,
                 1,
                 {N},
                 Returns(I),
                 NumberMap([](double x) { return x > 0   ? 1.0
                                                 : x < 0 ? -1.0
                                                         : 0.0; })});
  out.push_back({"parseint",
                 "numeric",
                 "parseint(s string, base int) int",
                 "parses a string of digits in a base from 2 to 62",
                 2,
                 2,
                 {S, I},
                 Returns(I),
                 ParseInt});

  // ---- type conversion
  out.push_back({"tonumber",
                 "type",
                 "tonumber(value any) number",
                 "converts a number or a numeric string to a number (null stays null)",
                 1,
                 1,
                 {A},
                 Returns(N),
                 ToNumber});
  out.push_back({"tostring",
                 "type",
                 "tostring(value any) string",
                 "converts a string, number, bool or unit value to a string (null stays null)",
                 1,
                 1,
                 {A},
                 Returns(S),
                 ToStringFn});
  out.push_back({"tobool",
                 "type",
                 "tobool(value any) bool",
                 "converts a bool or the strings \"true\"/\"false\" to a bool (null stays null)",
                 1,
                 1,
                 {A},
                 Returns(B),
                 ToBool});
  out.push_back(
      {"tolist",
       "type",
       "tolist(value any) list(any)",
       "checks that a value is a list whose elements share one type",
       1,
       1,
       {A},
       [](std::span<const Type> t) { return t[0].is(TypeKind::List) ? t[0] : Type::List(Type::Any()); },
       ToList});
  out.push_back({"tomap",
                 "type",
                 "tomap(value any) map(any)",
                 "checks that a value is a map or object whose values share one type",
                 1,
                 1,
                 {A},
                 [](std::span<const Type> t) { return Type::Map(MapElementOf(t[0])); },
                 ToMap});
}

}  // namespace plinth::fn_internal
