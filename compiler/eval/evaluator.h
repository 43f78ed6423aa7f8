// Expression evaluation.
//
// Input: an AST expression and a Scope that resolves references. Output: a
// Value, possibly unknown (known only after apply), plus diagnostics for
// every type, unit and operation error found. Evaluation never throws; an
// expression with an error evaluates to an unknown of type `any`, which is
// accepted everywhere, so one mistake does not cascade into many.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"
#include "compiler/types/types.h"

namespace plinth {

// A reference found in an expression: `var.replicas` has root "var" and name
// "replicas"; `self` and loop variables have an empty name.
struct Reference {
  std::string root;
  std::string name;
  Range range;       // the whole `root.name`
  Range root_range;  // `root` only
};

// All references an expression makes, skipping names bound by enclosing for
// expressions. Used to build the dependency graph before evaluation.
void CollectReferences(const ast::Expr& expr, std::vector<Reference>& out);

class Scope {
 public:
  virtual ~Scope() = default;
  // Resolves `root` (a Name) followed by the attribute names in `steps`.
  // Sets *consumed to how many steps the scope used (0 for `self`, 1 for
  // `var.x`) and returns the value. Returns false when `root` is not a name
  // the scope knows; the evaluator then reports an undefined reference.
  // The scope reports its own errors (e.g. `var.missing`) and returns true
  // with an unknown value.
  virtual bool Resolve(const ast::Name& root, std::span<const ast::GetAttr* const> steps, Value* out,
                       size_t* consumed, Diagnostics& diags) = 0;
  // Candidate names for "did you mean" when a root is not found.
  virtual std::vector<std::string> RootNames() const = 0;
  // Directory for file functions.
  virtual std::string BaseDir() const = 0;
  // True while applying: impure functions (timestamp, uuid) return their
  // value instead of an unknown.
  virtual bool ImpureKnown() const { return false; }
  // Called before a file function (file, templatefile, ...) runs: the value
  // depends on the disk as well as on the configuration.
  virtual void ReadsFiles() {}
};

// Evaluates `expr` in `scope`. Thread-compatible: one evaluator per thread.
Value Evaluate(const ast::Expr& expr, Scope& scope, Diagnostics& diags);

// "did you mean" helper: the closest candidate within a small edit distance,
// or empty.
std::string ClosestName(std::string_view name, const std::vector<std::string>& candidates);

// Text of a value inside a template: strings as-is, numbers and units in
// canonical form. Returns false for null, lists and objects.
bool TemplateText(const Value& v, std::string* out);

}  // namespace plinth
