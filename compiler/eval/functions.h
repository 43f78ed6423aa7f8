// Builtin functions of the Plinth language (documented in docs/functions.md).
//
// Each function has a static signature so calls are checked even when some
// arguments are unknown until apply: arity and argument types are checked
// first; if any argument is (or contains) an unknown, the result is an unknown
// of the function's result type and the implementation is not called.
// Implementations are pure except where `impure` is set (timestamp, uuid),
// whose result is unknown at plan time.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/types/types.h"

namespace plinth {

// Why a call failed. `argument` is the 0-based index of the argument to blame,
// or -1 for the call as a whole. The evaluator turns this into a diagnostic
// (P0304 for arguments, P0306 otherwise) located at that argument.
struct FunctionError {
  int argument = -1;
  std::string message;  // lowercase, no trailing period
  bool bad_argument = false;  // true: P0304 FunctionArguments, false: P0306 InvalidOperation
};

struct CallContext {
  // Directory of the file that contains the call; file functions resolve
  // relative paths against it.
  std::string base_dir;
  // Impure functions return their value (at apply) rather than an unknown (at plan).
  bool impure_known = false;
};

struct FunctionResult {
  Value value;
  std::optional<FunctionError> error;
  static FunctionResult Ok(Value v) { return {std::move(v), std::nullopt}; }
  static FunctionResult Fail(int argument, std::string message, bool bad_argument = true) {
    return {Value(), FunctionError{argument, std::move(message), bad_argument}};
  }
};

struct FunctionDef {
  std::string_view name;
  std::string_view category;   // "string", "collection", "numeric", "encoding", "hashing", "cidr", "file", "time", "type"
  std::string_view signature;  // as documented: "join(separator string, list list(string)) string"
  std::string_view summary;    // one line
  size_t min_args;
  size_t max_args;  // SIZE_MAX: variadic, extra arguments use the last param type
  std::vector<Type> params;
  // Result type from the argument types (used for unknown arguments).
  std::function<Type(std::span<const Type>)> result_type;
  // Called only with known arguments (none contains an unknown).
  std::function<FunctionResult(const CallContext&, std::span<const Value>)> impl;
  bool impure = false;
  // The implementation only moves elements around without looking inside
  // them (length, keys, concat...), so a list or map whose *elements* are
  // unknown still gives a known result: length([unknown, unknown]) is 2.
  bool accepts_unknown_elements = false;
};

const FunctionDef* FindFunction(std::string_view name);
const std::vector<FunctionDef>& AllFunctions();

// Checks arity and argument types, handles unknowns and sensitivity, then
// calls the implementation.
FunctionResult CallFunction(const FunctionDef& fn, const CallContext& ctx, std::span<const Value> args);

}  // namespace plinth
