// Type expressions in variable blocks: `string`, `list(number)`,
// `map(duration)`, `object({ name = string, size = size })`, `any`.
#pragma once

#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"
#include "compiler/types/types.h"

namespace plinth {

// Reports P0310 and returns `any` for anything that is not a type.
Type ParseTypeExpr(const ast::Expr& expr, Diagnostics& diags);

}  // namespace plinth
