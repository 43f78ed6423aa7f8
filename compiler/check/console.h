// Expressions evaluated against a checked configuration (`plinth console`).
//
// Input: a CheckedConfig made with CheckOptions::keep_root_scope, then one
// line of text at a time. Output: the line's value, or every parse, reference
// and evaluation error in it, located in a source file named "<console>"
// (so messages read `<console>:1:COL`).
//
// A line is evaluated exactly as a local value of the root module would be:
// var., local., module., resource references, path. and every builtin
// function; each., count. and self. do not exist there. Resources read as
// the check saw them: the resource hook's answer when the check had one (the
// CLI answers with the recorded state), else the configured values, with
// what only apply can know unknown.
//
// Nothing here touches the outside world beyond what the evaluator does
// (file functions read files).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "compiler/check/checker.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/source/source.h"
#include "compiler/syntax/ast.h"
#include "compiler/types/types.h"

namespace plinth {

// The root module instance after a check; implemented by the checker, which
// keeps its analysis alive for it. Not thread-safe: one expression at a time.
class RootScope {
 public:
  virtual ~RootScope() = default;
  // Checks `expr`'s references as those of a root local value (an undeclared
  // name is an error, with "did you mean"), then evaluates it. Every error
  // goes to `diags`; the result is then an unknown of type any.
  virtual Value Evaluate(const ast::Expr& expr, Diagnostics& diags) = 0;
};

class Console {
 public:
  // `scope` is CheckedConfig::root_scope; `sources` must be the
  // SourceManager of that check (lines are added to it as files named
  // "<console>", so diagnostics render with their line).
  Console(std::shared_ptr<RootScope> scope, SourceManager& sources);

  // Parses `text` as one expression and evaluates it. Returns its value, or
  // nothing when the line has an error (every one is in `diags`).
  std::optional<Value> EvaluateLine(std::string_view text, Diagnostics& diags);

  // How the console prints a value: Plinth text (Value::ToString); a
  // sensitive value as `(sensitive value)`, unknowns as `(known after apply)`.
  static std::string Display(const Value& value);

 private:
  std::shared_ptr<RootScope> scope_;
  SourceManager& sources_;
};

}  // namespace plinth
