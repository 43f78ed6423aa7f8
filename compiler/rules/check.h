// The rule checker: Plinth AST expressions -> typed rule IR (ir.h).
//
// Input: a schema of readable fields and one AST expression per rule.
// Output: a Program with one Rule per source, in order. A rule that fails to
// type-check has an invalid root (it evaluates to Verdict::Error) and every
// problem in it is reported to `diags`, located at the sub-expression, in the
// compiler's style and codes (P0202 unknown name, P0301 type mismatch, P0302
// unit mismatch, P0303 unknown function, P0304 arguments, P0305 unknown
// attribute, P0306 not supported in rules). Never throws; any AST is accepted.
//
// What is compilable is listed in docs/rules.md ("The rule language").
#pragma once

#include <memory>
#include <span>
#include <string>

#include "compiler/diag/diagnostic.h"
#include "compiler/rules/ir.h"
#include "compiler/syntax/ast.h"

namespace plinth::rules {

struct RuleSource {
  std::string name;
  const ast::Expr* expr = nullptr;  // must stay alive during CheckRules only
};

// `strings` receives every string literal of the rules; records evaluated
// later must intern their strings into the same pool.
Program CheckRules(RuleSchema schema, std::span<const RuleSource> rules, FieldMode mode,
                   std::shared_ptr<StringPool> strings, Diagnostics& diags);

// The function names rules accept.
const std::vector<std::string>& RuleFunctionNames();

}  // namespace plinth::rules
