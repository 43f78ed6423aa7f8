// Lossless Value <-> JSON encoding, used by the state store (docs/state.md,
// "Value encoding").
//
// Input: any Value (including units, unknowns and sensitive marks). Output: a
// JSON document that decodes back to a Value that is Equals() to the input,
// with the same kinds, unknown types and sensitive marks at every level.
//
// Encoding (the only forms a decoder accepts):
//   null, true/false, numbers, strings, arrays  -> the same JSON
//   object {k: v}   -> a JSON object; a key that starts with "$" is written with
//                      one more "$" ("$x" -> "$$x"), so a JSON object with a key
//                      that starts with a single "$" is always a tag
//   duration (ms)   -> {"$duration": 30000}
//   size (bytes)    -> {"$size": 10737418240}
//   percent         -> {"$percent": 80}
//   unknown(T)      -> {"$unknown": T} where T is a type: "any", "bool", "int",
//                      "number", "string", "duration", "size", "percent",
//                      {"list": T}, {"map": T} or {"object": {"name": T, ...}}
//   sensitive v     -> {"$sensitive": <encoding of v without its mark>}
// Numbers that are integral, not -0 and within +-2^53 are written as JSON
// integers, every other finite number as a JSON double (shortest round-trip
// form). NaN and infinities have no JSON form and are rejected with an error.
//
// Thread safety: pure functions, safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "compiler/types/types.h"

namespace plinth {

struct ValueJsonResult {
  nlohmann::json json;
  std::string error;  // empty on success: "NaN at .a[2] has no JSON form"
  bool ok() const { return error.empty(); }
};

struct ValueFromJsonResult {
  Value value;
  std::string error;  // empty on success
  bool ok() const { return error.empty(); }
};

ValueJsonResult ValueToJson(const Value& value);
ValueFromJsonResult ValueFromJson(const nlohmann::json& json);

// Types on their own (the payload of {"$unknown": T}).
nlohmann::json TypeToJson(const Type& type);
// False (and `error` set) when `json` is not a type encoding.
bool TypeFromJson(const nlohmann::json& json, Type* out, std::string* error);

}  // namespace plinth
