#include "compiler/check/types_expr.h"

#include "compiler/eval/evaluator.h"

namespace plinth {

Type ParseTypeExpr(const ast::Expr& e, Diagnostics& diags) {
  static const std::vector<std::pair<std::string, Type>> simple = {
      {"any", Type::Any()},         {"bool", Type::Bool()},         {"int", Type::Int()},
      {"number", Type::Number()},   {"float", Type::Number()},      {"string", Type::String()},
      {"duration", Type::Duration()}, {"size", Type::Size()},       {"percent", Type::Percent()}};
  auto fail = [&](const std::string& what) {
    Diagnostic& d = diags.Error(DiagCode::InvalidType, e.range, what);
    d.help = "types are any, bool, int, number, string, duration, size, percent, list(T), map(T) and "
             "object({ name = T, ... })";
    return Type::Any();
  };
  if (e.kind == ast::ExprKind::Error) return Type::Any();
  if (e.kind == ast::ExprKind::Name) {
    const std::string& n = e.As<ast::Name>().name;
    for (const auto& [name, t] : simple) {
      if (name == n) return t;
    }
    if (n == "list" || n == "map" || n == "set") {
      diags.Error(DiagCode::InvalidType, e.range, "'" + n + "' needs an element type").help =
          "write: " + n + "(string), or " + n + "(any) for mixed elements";
      return Type::Any();
    }
    if (n == "object") {
      diags.Error(DiagCode::InvalidType, e.range, "'object' needs its attribute types").help =
          "write: object({ name = string, size = size })";
      return Type::Any();
    }
    std::vector<std::string> names;
    for (const auto& [name, t] : simple) names.push_back(name);
    names.insert(names.end(), {"list", "map", "object"});
    std::string near = ClosestName(n, names);
    Diagnostic& d = diags.Error(DiagCode::InvalidType, e.range, "unknown type '" + n + "'");
    d.help = near.empty() ? "types are any, bool, int, number, string, duration, size, percent, list(T), map(T) and "
                            "object({ name = T, ... })"
                          : "did you mean '" + near + "'?";
    return Type::Any();
  }
  if (e.kind == ast::ExprKind::Call) {
    const auto& c = e.As<ast::Call>();
    if ((c.name == "list" || c.name == "map" || c.name == "set") && c.args.size() == 1) {
      Type el = ParseTypeExpr(*c.args[0], diags);
      return c.name == "map" ? Type::Map(el) : Type::List(el);
    }
    if (c.name == "object" && c.args.size() == 1 && c.args[0]->kind == ast::ExprKind::Object) {
      std::map<std::string, Type> attrs;
      for (const auto& item : c.args[0]->As<ast::Object>().items) attrs[item.key] = ParseTypeExpr(*item.value, diags);
      return Type::Object(std::move(attrs));
    }
    return fail("'" + c.name + "(...)' is not a type");
  }
  if (e.kind == ast::ExprKind::Literal && e.As<ast::Literal>().value.kind() == Value::Kind::String) {
    Diagnostic& d = diags.Error(DiagCode::InvalidType, e.range, "a type is written without quotes");
    d.help = "write: type = " + e.As<ast::Literal>().value.as_string();
    return Type::Any();
  }
  return fail("this is not a type");
}

}  // namespace plinth
