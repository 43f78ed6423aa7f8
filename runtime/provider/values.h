// Reading attribute maps (ValueMap) in providers: the lookups every resource
// family needs, in one place.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "compiler/types/types.h"

namespace plinth::runtime::values {

// The value of `key`, or null when the map lacks it.
inline const Value* Find(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// A known string (not null, not unknown).
inline bool KnownString(const Value* v) {
  return v && v->kind() == Value::Kind::String;
}

// The string at `key`; "" when absent, null, unknown or not a string.
inline std::string Text(const ValueMap& m, const std::string& key) {
  const Value* v = Find(m, key);
  return KnownString(v) ? v->as_string() : "";
}

// True only for a known `true` at `key`.
inline bool Flag(const ValueMap& m, const std::string& key) {
  const Value* v = Find(m, key);
  return v && v->kind() == Value::Kind::Bool && v->as_bool();
}

}  // namespace plinth::runtime::values
