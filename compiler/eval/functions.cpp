#include <set>
#include "compiler/eval/functions.h"

#include <algorithm>
#include <exception>
#include <new>
#include <unordered_map>

#include "compiler/eval/functions_internal.h"
#include "compiler/source/source.h"

namespace plinth {

namespace fn_internal {

std::function<Type(std::span<const Type>)> Returns(Type t) {
  return [t = std::move(t)](std::span<const Type>) { return t; };
}

std::string Describe(const Value& v) {
  std::string s = v.ToString();
  if (CountCodePoints(s) > 60) {
    std::vector<std::string_view> cps = CodePoints(s);
    std::string cut;
    for (size_t i = 0; i < 57; ++i) cut += cps[i];
    s = cut + "...";
  }
  return s;
}

std::string KindName(const Value& v) {
  if (v.is_null()) return "null";
  return v.type().ToString();
}

std::optional<int64_t> IntIn(const Value& v, int64_t lo, int64_t hi) {
  if (v.kind() != Value::Kind::Number || !v.is_integer()) return std::nullopt;
  double d = v.as_number();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) return std::nullopt;
  return static_cast<int64_t>(d);
}

std::vector<std::string_view> CodePoints(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    if (c >= 0xF0 && c < 0xF8) {
      len = 4;
    } else if (c >= 0xE0) {
      len = c < 0xF0 ? 3 : 1;
    } else if (c >= 0xC0) {
      len = 2;
    }
    if (i + len > s.size()) len = 1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        len = 1;
        break;
      }
    }
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

std::optional<UnitDimension> UnitOf(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Duration: return UnitDimension::Duration;
    case Value::Kind::Size: return UnitDimension::Size;
    case Value::Kind::Percent: return UnitDimension::Percent;
    default: return std::nullopt;
  }
}

bool IsNumberOrUnit(const Value& v) {
  return v.kind() == Value::Kind::Number || UnitOf(v).has_value();
}

std::string UnitKindName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Duration: return "duration";
    case Value::Kind::Size: return "size";
    case Value::Kind::Percent: return "percent";
    case Value::Kind::Number: return "number";
    default: return KindName(v);
  }
}

}  // namespace fn_internal

namespace {

std::vector<FunctionDef> BuildRegistry() {
  std::vector<FunctionDef> all;
  fn_internal::RegisterStringFunctions(all);
  fn_internal::RegisterCollectionFunctions(all);
  fn_internal::RegisterEncodingFunctions(all);
  fn_internal::RegisterCidrFileTimeFunctions(all);
  std::sort(all.begin(), all.end(),
            [](const FunctionDef& a, const FunctionDef& b) { return a.name < b.name; });
  static const std::set<std::string_view> structural = {"length", "keys", "values", "concat", "merge",
                                                        "slice", "reverse", "element", "lookup"};
  for (FunctionDef& fn : all) fn.accepts_unknown_elements = structural.count(fn.name) > 0;
  return all;
}

std::string Ordinal(size_t i) {
  static const char* const kNames[] = {"first", "second", "third", "fourth", "fifth", "sixth"};
  if (i < 6) return kNames[i];
  return "argument " + std::to_string(i + 1) + " as";
}

std::string ArityText(const FunctionDef& fn) {
  if (fn.max_args == SIZE_MAX) return "at least " + std::to_string(fn.min_args);
  if (fn.min_args == fn.max_args) return std::to_string(fn.min_args);
  return std::to_string(fn.min_args) + " to " + std::to_string(fn.max_args);
}

}  // namespace

const std::vector<FunctionDef>& AllFunctions() {
  static const std::vector<FunctionDef> registry = BuildRegistry();
  return registry;
}

const FunctionDef* FindFunction(std::string_view name) {
  static const std::unordered_map<std::string_view, const FunctionDef*> index = [] {
    std::unordered_map<std::string_view, const FunctionDef*> m;
    for (const FunctionDef& fn : AllFunctions()) m.emplace(fn.name, &fn);
    return m;
  }();
  auto it = index.find(name);
  return it == index.end() ? nullptr : it->second;
}

FunctionResult CallFunction(const FunctionDef& fn, const CallContext& ctx, std::span<const Value> args) {
  const std::string name(fn.name);
  if (args.size() < fn.min_args || args.size() > fn.max_args) {
    size_t want = args.size() < fn.min_args ? fn.min_args : fn.max_args;
    std::string plural = (fn.max_args == 1 || (fn.max_args == SIZE_MAX && fn.min_args == 1)) ? " argument" : " arguments";
    return FunctionResult::Fail(args.size() > fn.max_args ? static_cast<int>(want) : -1,
                                "'" + name + "' takes " + ArityText(fn) + plural + ", got " +
                                    std::to_string(args.size()));
  }

  std::vector<Type> types;
  types.reserve(args.size());
  bool unknown = false;
  bool sensitive = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const Type& param = fn.params.empty() ? Type::Any() : fn.params[std::min(i, fn.params.size() - 1)];
    const Value& arg = args[i];
    Type t = arg.type();
    if (arg.is_null() && !param.is(TypeKind::Any)) {
      return FunctionResult::Fail(static_cast<int>(i), "the " + Ordinal(i) + " argument of '" + name +
                                                           "' must be " + param.ToString() + ", not null");
    }
    if (!Assignable(t, param)) {
      return FunctionResult::Fail(static_cast<int>(i), "the " + Ordinal(i) + " argument of '" + name +
                                                           "' must be " + param.ToString() + ", got " +
                                                           t.ToString());
    }
    unknown = unknown || (fn.accepts_unknown_elements ? arg.is_unknown() : arg.ContainsUnknown());
    sensitive = sensitive || arg.ContainsSensitive();
    types.push_back(std::move(t));
  }

  auto finish = [&](Value v) { return FunctionResult::Ok(sensitive ? v.WithSensitive(true) : std::move(v)); };
  auto unknown_result = [&]() -> FunctionResult {
    Type rt = Type::Any();
    try {
      if (fn.result_type) rt = fn.result_type(types);
    } catch (const std::exception&) {
      rt = Type::Any();
    }
    return finish(Value::Unknown(std::move(rt)));
  };

  // Impure functions (timestamp, uuid) would give a different value on every
  // run, so their value is only fixed when the change is applied.
  if ((fn.impure && !ctx.impure_known) || unknown) return unknown_result();

  try {
    FunctionResult r = fn.impl(ctx, args);
    if (r.error) return r;
    return finish(std::move(r.value));
  } catch (const std::bad_alloc&) {
    return FunctionResult::Fail(-1, "'" + name + "' ran out of memory; use smaller arguments", false);
  } catch (const std::exception& e) {
    return FunctionResult::Fail(-1, "'" + name + "' failed: " + e.what(), false);
  }
}

}  // namespace plinth
