#include "compiler/check/console.h"

#include <utility>

#include "compiler/syntax/parse.h"

namespace plinth {

Console::Console(std::shared_ptr<RootScope> scope, SourceManager& sources)
    : scope_(std::move(scope)), sources_(sources) {}

std::optional<Value> Console::EvaluateLine(std::string_view text, Diagnostics& diags) {
  const size_t errors_before = diags.error_count();
  const SourceFile& file = sources_.Add("<console>", std::string(text));
  ast::ExprPtr expr = ParseExpression(file, diags);
  if (diags.error_count() > errors_before || !expr) return std::nullopt;
  Value value = scope_->Evaluate(*expr, diags);
  if (diags.error_count() > errors_before) return std::nullopt;
  return value;
}

std::string Console::Display(const Value& value) {
  if (value.sensitive()) return "(sensitive value)";
  return value.ToString();
}

}  // namespace plinth
