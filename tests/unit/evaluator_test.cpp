// Unit tests for expression evaluation: each case parses an expression,
// evaluates it in a small scope and checks the value or the diagnostic code.
#include <gtest/gtest.h>

#include "compiler/eval/evaluator.h"
#include "compiler/syntax/parse.h"

namespace plinth {
namespace {

// var.NAME resolves from a map; everything else is unknown to the scope.
class MapScope : public Scope {
 public:
  std::map<std::string, Value> vars;
  bool Resolve(const ast::Name& root, std::span<const ast::GetAttr* const> steps, Value* out, size_t* consumed,
               Diagnostics&) override {
    if (root.name != "var" || steps.empty()) return false;
    *consumed = 1;
    auto it = vars.find(steps[0]->name);
    *out = it == vars.end() ? Value::Unknown(Type::Any()) : it->second;
    return true;
  }
  std::vector<std::string> RootNames() const override { return {"var"}; }
  std::string BaseDir() const override { return "."; }
};

struct Result {
  Value value;
  std::vector<DiagCode> codes;
};

Result Eval(const std::string& text, MapScope* scope = nullptr) {
  SourceManager sources;
  Diagnostics diags;
  const SourceFile& f = sources.Add("expr", text);
  ast::ExprPtr e = ParseExpression(f, diags);
  MapScope empty;
  Result r;
  r.value = Evaluate(*e, scope ? *scope : empty, diags);
  for (const Diagnostic& d : diags.items()) r.codes.push_back(d.code);
  return r;
}

std::string Show(const std::string& text) {
  Result r = Eval(text);
  EXPECT_TRUE(r.codes.empty()) << text;
  return r.value.ToString(true);
}

DiagCode FirstError(const std::string& text) {
  Result r = Eval(text);
  EXPECT_FALSE(r.codes.empty()) << text << " should fail";
  return r.codes.empty() ? DiagCode::SyntaxError : r.codes[0];
}

TEST(Evaluator, Arithmetic) {
  EXPECT_EQ(Show("1 + 2 * 3"), "7");
  EXPECT_EQ(Show("(1 + 2) * 3"), "9");
  EXPECT_EQ(Show("7 / 2"), "3.5");
  EXPECT_EQ(Show("7 % 3"), "1");
  EXPECT_EQ(Show("-2 - -3"), "1");
  EXPECT_EQ(Show("1e3 + 1"), "1001");
  EXPECT_EQ(FirstError("1 / 0"), DiagCode::InvalidOperation);
}

TEST(Evaluator, UnitArithmetic) {
  EXPECT_EQ(Show("30s + 5m"), "330s");
  EXPECT_EQ(Show("1h - 30m"), "30m");
  EXPECT_EQ(Show("2 * 512MiB"), "1GiB");
  EXPECT_EQ(Show("10GiB / 4"), "2560MiB");
  EXPECT_EQ(Show("1d / 1h"), "24");
  EXPECT_EQ(Show("80% * 10GiB"), "8GiB");
  EXPECT_EQ(Show("50% * 2"), "100%");
  EXPECT_EQ(Show("2 * 50%"), "100%");
  EXPECT_EQ(Show("50% * 50%"), "25%");
  EXPECT_EQ(Show("1.5h"), "90m");
  EXPECT_EQ(Show("1000ms"), "1s");
  EXPECT_EQ(Show("1TB"), "1TB");
  EXPECT_EQ(FirstError("30s + 5GiB"), DiagCode::UnitMismatch);
  EXPECT_EQ(FirstError("30s + 5"), DiagCode::UnitMismatch);
  EXPECT_EQ(FirstError("5GiB * 2GiB"), DiagCode::UnitMismatch);
  EXPECT_EQ(FirstError("30s < 1GiB"), DiagCode::UnitMismatch);
  EXPECT_EQ(FirstError("10gib"), DiagCode::UnknownUnit);
}

TEST(Evaluator, Comparisons) {
  EXPECT_EQ(Show("30s < 1m"), "true");
  EXPECT_EQ(Show("1GiB > 1GB"), "true");
  EXPECT_EQ(Show("0.07 > 5%"), "true");
  EXPECT_EQ(Show("0.03 > 5%"), "false");
  EXPECT_EQ(Show("5% == 0.05"), "true");
  EXPECT_EQ(Show("1 == 1.0"), "true");
  EXPECT_EQ(Show("\"a\" != \"b\""), "true");
  EXPECT_EQ(Show("[1, 2] == [1, 2]"), "true");
  EXPECT_EQ(FirstError("\"a\" < 1"), DiagCode::TypeMismatch);
}

TEST(Evaluator, Logic) {
  EXPECT_EQ(Show("true && !false"), "true");
  EXPECT_EQ(Show("false || 1 > 0"), "true");
  EXPECT_EQ(Show("1 > 0 ? \"yes\" : \"no\""), "\"yes\"");
  // && short-circuits, so the right side's error is never evaluated.
  EXPECT_EQ(Show("false && [][0]"), "false");
  EXPECT_EQ(FirstError("1 && true"), DiagCode::TypeMismatch);
  EXPECT_EQ(FirstError("\"x\" ? 1 : 2"), DiagCode::TypeMismatch);
}

TEST(Evaluator, Collections) {
  EXPECT_EQ(Show("[1, 2, 3][1]"), "2");
  EXPECT_EQ(Show("{ a = 1, b = 2 }[\"b\"]"), "2");
  EXPECT_EQ(Show("{ a = { b = 3 } }.a.b"), "3");
  EXPECT_EQ(Show("[for x in [1, 2, 3] : x * 2]"), "[2, 4, 6]");
  EXPECT_EQ(Show("[for i, x in [\"a\", \"b\"] : \"${i}${x}\"]"), "[\"0a\", \"1b\"]");
  EXPECT_EQ(Show("{for k, v in { a = 1, b = 2 } : k => v * 10 if v > 1}"), "{ b = 20 }");
  EXPECT_EQ(Show("[{ n = 1 }, { n = 2 }][*].n"), "[1, 2]");
  EXPECT_EQ(FirstError("[1][3]"), DiagCode::InvalidIndex);
  EXPECT_EQ(FirstError("{ a = 1 }[\"b\"]"), DiagCode::InvalidIndex);
  EXPECT_EQ(FirstError("{ a = 1 }.b"), DiagCode::InvalidIndex);
  EXPECT_EQ(FirstError("{for x in [\"a\", \"a\"] : x => 1}"), DiagCode::InvalidOperation);
}

TEST(Evaluator, Templates) {
  EXPECT_EQ(Show("\"a-${1 + 1}-${30s}\""), "\"a-2-30s\"");
  EXPECT_EQ(Eval("\"$${literal}\"").value.as_string(), "${literal}");
  EXPECT_EQ(Show("\"tab\\tnl\\n\\u00e9\""), "\"tab\\tnl\\n\xc3\xa9\"");
  // A quoted template is always a string, even with one interpolation.
  EXPECT_EQ(Show("\"${1 + 1}\""), "\"2\"");
  EXPECT_EQ(FirstError("\"${[1, 2]}\""), DiagCode::TypeMismatch);
  EXPECT_EQ(FirstError("\"x${[1, 2]}\""), DiagCode::TypeMismatch);
  EXPECT_EQ(FirstError("\"${}\""), DiagCode::InvalidTemplate);
  EXPECT_EQ(FirstError("\"\\q\""), DiagCode::InvalidEscape);
}

TEST(Evaluator, UnknownsPropagateWithTypes) {
  MapScope scope;
  scope.vars["size"] = Value::Unknown(Type::Size());
  scope.vars["flag"] = Value::Unknown(Type::Bool());
  Result r = Eval("var.size * 2 + 1GiB", &scope);
  EXPECT_TRUE(r.codes.empty());
  ASSERT_TRUE(r.value.is_unknown());
  EXPECT_EQ(r.value.unknown_type(), Type::Size());
  // A unit error is found even though the value is unknown.
  r = Eval("var.size + 30s", &scope);
  ASSERT_EQ(r.codes.size(), 1u);
  EXPECT_EQ(r.codes[0], DiagCode::UnitMismatch);
  r = Eval("var.flag ? 1 : 2", &scope);
  EXPECT_TRUE(r.value.is_unknown());
  r = Eval("\"x-${var.size}\"", &scope);
  EXPECT_TRUE(r.value.is_unknown());
  EXPECT_EQ(r.value.unknown_type(), Type::String());
}

TEST(Evaluator, SensitivityPropagates) {
  MapScope scope;
  scope.vars["token"] = Value::String("s3cr3t").WithSensitive();
  Result r = Eval("\"Bearer ${var.token}\"", &scope);
  EXPECT_TRUE(r.value.sensitive());
  EXPECT_EQ(r.value.ToString(), "(sensitive)");
  r = Eval("upper(var.token)", &scope);
  EXPECT_TRUE(r.value.sensitive());
  r = Eval("[var.token][0]", &scope);
  EXPECT_TRUE(r.value.sensitive());
}

TEST(Evaluator, ErrorsDoNotCascade) {
  // One unknown function: exactly one diagnostic, not one per operator.
  Result r = Eval("nosuch(1) + 2 * 3 > 4 ? 5 : 6");
  ASSERT_EQ(r.codes.size(), 1u);
  EXPECT_EQ(r.codes[0], DiagCode::UnknownFunction);
}

TEST(Evaluator, CollectReferencesSkipsForVariables) {
  SourceManager sources;
  Diagnostics diags;
  const SourceFile& f = sources.Add("expr", "[for b in bucket.all : b.path if var.on] ++ local.x");
  // `++` is not an operator: the parse fails, and no references are invented.
  ast::ExprPtr bad = ParseExpression(f, diags);
  EXPECT_TRUE(diags.has_errors());
  const SourceFile& g = sources.Add("expr2", "[for b in bucket.all : b.path if var.on]");
  Diagnostics d2;
  ast::ExprPtr e = ParseExpression(g, d2);
  std::vector<Reference> refs;
  CollectReferences(*e, refs);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].root + "." + refs[0].name, "bucket.all");
  EXPECT_EQ(refs[1].root + "." + refs[1].name, "var.on");
}

TEST(Evaluator, ClosestName) {
  EXPECT_EQ(ClosestName("replica", {"replicas", "region"}), "replicas");
  EXPECT_EQ(ClosestName("zzz", {"replicas", "region"}), "");
}

}  // namespace
}  // namespace plinth

namespace plinth {
namespace {

// Printed values are Plinth: Value::ToString's text parses and evaluates
// back to an equal value (inspect, output and plan print values this way).
TEST(Evaluator, PrintedValuesParseBackToTheSameValue) {
  const Value values[] = {
      Value::Object({{"a-b", Value::Number(1)},
                     {"true", Value::Bool(true)},
                     {"for", Value::String("x")},
                     {"", Value::Null()},
                     {"with space", Value::String("quote \" and ${not a template} and \n")},
                     {"9lives", Value::Number(9)},
                     {"ok_name", Value::List({Value::Number(0.1 + 0.2), Value::Number(1e21), Value::Number(-2.5e-9)})}}),
      Value::Object({{"nested", Value::Object({{"in", Value::String("y")}, {"if", Value::Number(3)}})}}),
      MakeUnitValue(UnitDimension::Size, 1e21),           // 1000000PB
      MakeUnitValue(UnitDimension::Size, 1e15 + 1),       // not a whole multiple of any larger unit
      MakeUnitValue(UnitDimension::Size, 1.5),
      MakeUnitValue(UnitDimension::Duration, 0.000001),  // 0.000001ms
      MakeUnitValue(UnitDimension::Percent, 1e20),
      MakeUnitValue(UnitDimension::Size, 50e9),  // 50GB
      MakeUnitValue(UnitDimension::Size, 5.0 * 1024 * 1024 * 1024),  // 5GiB
  };
  for (const Value& v : values) {
    std::string text = v.ToString(true);
    Result back = Eval(text);
    EXPECT_TRUE(back.codes.empty()) << text;
    EXPECT_TRUE(back.value.Equals(v)) << text << " reads back as " << back.value.ToString(true);
  }
  EXPECT_EQ(Value::Object({{"a-b", Value::Number(1)}, {"true", Value::Bool(true)}, {"x", Value::Number(2)}}).ToString(),
            "{ \"a-b\" = 1, \"true\" = true, x = 2 }");
  // A unit literal has no exponent: huge and tiny unit values print in full.
  for (double n : {1e300, 3.0e22 + 4194304, 1e-7}) {
    for (UnitDimension dim : {UnitDimension::Size, UnitDimension::Duration, UnitDimension::Percent}) {
      std::string text = MakeUnitValue(dim, n).ToString();
      EXPECT_EQ(text.find('e'), std::string::npos) << text;
      EXPECT_TRUE(Eval(text).codes.empty()) << text;
    }
  }
}

}  // namespace
}  // namespace plinth
