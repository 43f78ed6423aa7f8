#include "compiler/types/user_json.h"

#include <cmath>

namespace plinth {

namespace {
nlohmann::json Number(double n) {
  if (std::floor(n) == n && std::fabs(n) < 9.0e15) return static_cast<int64_t>(n);
  return n;
}
}  // namespace

nlohmann::json ValueToUserJson(const Value& v) {
  if (v.sensitive()) return {{"sensitive", true}};
  switch (v.kind()) {
    case Value::Kind::Null: return nullptr;
    case Value::Kind::Bool: return v.as_bool();
    case Value::Kind::Number: return Number(v.as_number());
    case Value::Kind::String: return v.as_string();
    case Value::Kind::Duration:
    case Value::Kind::Size:
    case Value::Kind::Percent: return {{"unit", v.ToString(true)}, {"value", Number(v.as_number())}};
    case Value::Kind::Unknown: return {{"unknown", true}, {"type", v.unknown_type().ToString()}};
    case Value::Kind::List: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& x : v.as_list()) a.push_back(ValueToUserJson(x));
      return a;
    }
    case Value::Kind::Object: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, x] : v.as_object()) o[k] = ValueToUserJson(x);
      return o;
    }
  }
  return nullptr;
}

}  // namespace plinth
