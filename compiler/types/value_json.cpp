#include "compiler/types/value_json.h"

#include <cmath>

namespace plinth {
namespace {

using nlohmann::json;

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

std::string EscapeKey(const std::string& key) {
  return !key.empty() && key[0] == '$' ? "$" + key : key;
}

bool IsTagKey(const std::string& key) {
  return !key.empty() && key[0] == '$' && (key.size() == 1 || key[1] != '$');
}

bool NumberToJson(double n, const std::string& path, json* out, std::string* error) {
  if (!std::isfinite(n)) {
    *error = std::string(std::isnan(n) ? "NaN" : "infinity") + " at " + (path.empty() ? "." : path) +
             " has no JSON form";
    return false;
  }
  if (std::floor(n) == n && std::fabs(n) <= kMaxExactInteger && !(n == 0 && std::signbit(n))) {
    *out = static_cast<int64_t>(n);
  } else {
    *out = n;
  }
  return true;
}

// Recursion is bounded by the value's nesting, which the parser bounds.
bool Encode(const Value& v, const std::string& path, json* out, std::string* error) {
  json inner;
  switch (v.kind()) {
    case Value::Kind::Null: inner = nullptr; break;
    case Value::Kind::Bool: inner = v.as_bool(); break;
    case Value::Kind::Number:
      if (!NumberToJson(v.as_number(), path, &inner, error)) return false;
      break;
    case Value::Kind::String: inner = v.as_string(); break;
    case Value::Kind::Duration:
    case Value::Kind::Size:
    case Value::Kind::Percent: {
      json n;
      if (!NumberToJson(v.as_number(), path, &n, error)) return false;
      const char* tag = v.kind() == Value::Kind::Duration ? "$duration"
                        : v.kind() == Value::Kind::Size   ? "$size"
                                                          : "$percent";
      inner = json::object({{tag, std::move(n)}});
      break;
    }
    case Value::Kind::List: {
      inner = json::array();
      const ValueList& items = v.as_list();
      for (size_t i = 0; i < items.size(); ++i) {
        json item;
        if (!Encode(items[i], path + "[" + std::to_string(i) + "]", &item, error)) return false;
        inner.push_back(std::move(item));
      }
      break;
    }
    case Value::Kind::Object: {
      inner = json::object();
      for (const auto& [key, item] : v.as_object()) {
        json encoded;
        if (!Encode(item, path + "." + key, &encoded, error)) return false;
        inner[EscapeKey(key)] = std::move(encoded);
      }
      break;
    }
    case Value::Kind::Unknown: inner = json::object({{"$unknown", TypeToJson(v.unknown_type())}}); break;
  }
  *out = v.sensitive() ? json::object({{"$sensitive", std::move(inner)}}) : std::move(inner);
  return true;
}

bool JsonNumber(const json& j, const std::string& path, double* out, std::string* error) {
  if (!j.is_number()) {
    *error = "expected a number at " + (path.empty() ? "." : path);
    return false;
  }
  *out = j.get<double>();
  return true;
}

bool Decode(const json& j, const std::string& path, Value* out, std::string* error) {
  const std::string where = path.empty() ? "." : path;
  switch (j.type()) {
    case json::value_t::null: *out = Value::Null(); return true;
    case json::value_t::boolean: *out = Value::Bool(j.get<bool>()); return true;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: {
      double n = j.get<double>();
      if (!std::isfinite(n)) {
        *error = "non-finite number at " + where;
        return false;
      }
      *out = Value::Number(n);
      return true;
    }
    case json::value_t::string: *out = Value::String(j.get<std::string>()); return true;
    case json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (size_t i = 0; i < j.size(); ++i) {
        Value item;
        if (!Decode(j[i], path + "[" + std::to_string(i) + "]", &item, error)) return false;
        items.push_back(std::move(item));
      }
      *out = Value::List(std::move(items));
      return true;
    }
    case json::value_t::object: break;
    default: *error = "unsupported JSON at " + where; return false;
  }
  // A tag is an object with exactly one key that starts with a single "$".
  bool has_tag = false;
  for (const auto& [key, item] : j.items()) {
    if (IsTagKey(key)) has_tag = true;
  }
  if (has_tag) {
    if (j.size() != 1) {
      *error = "a tagged value must have exactly one key at " + where;
      return false;
    }
    const std::string& tag = j.begin().key();
    const json& payload = j.begin().value();
    if (tag == "$sensitive") {
      Value inner;
      if (!Decode(payload, path, &inner, error)) return false;
      *out = inner.WithSensitive(true);
      return true;
    }
    if (tag == "$unknown") {
      Type type;
      if (!TypeFromJson(payload, &type, error)) {
        *error += " at " + where;
        return false;
      }
      *out = Value::Unknown(std::move(type));
      return true;
    }
    double n = 0;
    if (tag == "$duration" || tag == "$size" || tag == "$percent") {
      if (!JsonNumber(payload, path, &n, error)) return false;
      if (!std::isfinite(n)) {
        *error = "non-finite number at " + where;
        return false;
      }
      *out = tag == "$duration" ? Value::Duration(n) : tag == "$size" ? Value::Size(n) : Value::Percent(n);
      return true;
    }
    *error = "unknown tag '" + tag + "' at " + where;
    return false;
  }
  ValueMap attrs;
  for (const auto& [key, item] : j.items()) {
    std::string name = !key.empty() && key[0] == '$' ? key.substr(1) : key;  // "$$x" -> "$x"
    Value v;
    if (!Decode(item, path + "." + name, &v, error)) return false;
    attrs.emplace(std::move(name), std::move(v));
  }
  *out = Value::Object(std::move(attrs));
  return true;
}

}  // namespace

nlohmann::json TypeToJson(const Type& type) {
  switch (type.kind()) {
    case TypeKind::List: return json::object({{"list", TypeToJson(type.element())}});
    case TypeKind::Map: return json::object({{"map", TypeToJson(type.element())}});
    case TypeKind::Object: {
      json attrs = json::object();
      for (const auto& [name, t] : type.attributes()) attrs[name] = TypeToJson(t);
      return json::object({{"object", std::move(attrs)}});
    }
    default: return type.ToString();
  }
}

bool TypeFromJson(const nlohmann::json& j, Type* out, std::string* error) {
  if (j.is_string()) {
    static const std::pair<const char*, Type (*)()> kPrimitives[] = {
        {"any", &Type::Any},           {"bool", &Type::Bool},         {"int", &Type::Int},
        {"number", &Type::Number},     {"string", &Type::String},     {"duration", &Type::Duration},
        {"size", &Type::Size},         {"percent", &Type::Percent}};
    const std::string& s = j.get_ref<const std::string&>();
    for (const auto& [name, make] : kPrimitives) {
      if (s == name) {
        *out = make();
        return true;
      }
    }
    *error = "unknown type name '" + s + "'";
    return false;
  }
  if (j.is_object() && j.size() == 1) {
    const std::string& key = j.begin().key();
    const json& payload = j.begin().value();
    if (key == "list" || key == "map") {
      Type element;
      if (!TypeFromJson(payload, &element, error)) return false;
      *out = key == "list" ? Type::List(std::move(element)) : Type::Map(std::move(element));
      return true;
    }
    if (key == "object" && payload.is_object()) {
      std::map<std::string, Type> attrs;
      for (const auto& [name, t] : payload.items()) {
        Type attr;
        if (!TypeFromJson(t, &attr, error)) return false;
        attrs.emplace(name, std::move(attr));
      }
      *out = Type::Object(std::move(attrs));
      return true;
    }
  }
  *error = "malformed type " + j.dump();
  return false;
}

ValueJsonResult ValueToJson(const Value& value) {
  ValueJsonResult r;
  if (!Encode(value, "", &r.json, &r.error)) r.json = nullptr;
  return r;
}

ValueFromJsonResult ValueFromJson(const nlohmann::json& json) {
  ValueFromJsonResult r;
  if (!Decode(json, "", &r.value, &r.error)) r.value = Value::Null();
  return r;
}

}  // namespace plinth
