// Shared helpers for the builtin function implementations (functions_*.cpp).
// Not part of the public API: include compiler/eval/functions.h instead.
//
// Error kinds: problems the signature check could find (arity, static types)
// and elements of the wrong kind inside `any`-typed collections are reported
// with TypeError (P0304); problems with the argument's value (a malformed CIDR,
// a missing file, an index out of range) with ValueError (P0306).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/eval/functions.h"

namespace plinth::fn_internal {

void RegisterStringFunctions(std::vector<FunctionDef>& out);
void RegisterCollectionFunctions(std::vector<FunctionDef>& out);
void RegisterEncodingFunctions(std::vector<FunctionDef>& out);
void RegisterCidrFileTimeFunctions(std::vector<FunctionDef>& out);

inline FunctionResult TypeError(int argument, std::string message) {
  return FunctionResult::Fail(argument, std::move(message), /*bad_argument=*/true);
}
inline FunctionResult ValueError(int argument, std::string message) {
  return FunctionResult::Fail(argument, std::move(message), /*bad_argument=*/false);
}

// A result_type that ignores the argument types.
std::function<Type(std::span<const Type>)> Returns(Type t);

// Plinth syntax of `v` for messages, shortened to about 60 characters.
// Sensitive values show as (sensitive).
std::string Describe(const Value& v);
// "string", "list(number)", "null" ... for messages.
std::string KindName(const Value& v);

// Integral value of `v` when it is a whole number in [lo, hi].
std::optional<int64_t> IntIn(const Value& v, int64_t lo, int64_t hi);

// The code points of a UTF-8 string as byte slices (an invalid byte is one slice).
std::vector<std::string_view> CodePoints(std::string_view s);

// For values that carry a unit: the dimension; nullopt for everything else.
std::optional<UnitDimension> UnitOf(const Value& v);
bool IsNumberOrUnit(const Value& v);
std::string UnitKindName(const Value& v);  // "number", "duration", "size", "percent"

// From functions_encoding.cpp, for the file functions.
std::string Base64EncodeBytes(std::string_view bytes);
std::string Sha256Hex(std::string_view bytes);

}  // namespace plinth::fn_internal
