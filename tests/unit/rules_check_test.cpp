// The rule checker: each case type-checks one rule against a bucket schema
// and compares the rendered diagnostics (location, code, message, help) with
// the expected text exactly.
#include <gtest/gtest.h>

#include "compiler/rules/check.h"
#include "compiler/syntax/parse.h"

namespace plinth::rules {
namespace {

RuleSchema Schema() {
  RuleSchema s;
  s.AddScalar("self.name", ScalarType::String);
  s.AddScalar("self.encryption", ScalarType::String);
  s.AddScalar("self.capacity", ScalarType::Size);
  s.AddScalar("self.replicas", ScalarType::Number);
  s.AddScalar("self.timeout", ScalarType::Duration);
  s.AddScalar("self.public", ScalarType::Bool);
  s.AddList("self.tags", ScalarType::String);
  s.AddObjectList("self.grants", {{"access", ScalarType::String}, {"principal", ScalarType::String}});
  return s;
}

// "line:col: [code] message (help)" for each diagnostic, in order.
std::string Check(const std::string& text, Program* out = nullptr) {
  SourceManager sources;
  Diagnostics diags;
  const SourceFile& f = sources.Add("rule", text);
  ast::ExprPtr e = ParseExpression(f, diags);
  EXPECT_FALSE(diags.has_errors()) << "the test rule does not parse: " << text;
  RuleSource src{"r", e.get()};
  Program p = CheckRules(Schema(), {&src, 1}, FieldMode::Columnar, nullptr, diags);
  std::string s;
  for (const Diagnostic& d : diags.Sorted(sources)) {
    LineCol lc = f.Position(d.range.begin);
    s += std::to_string(lc.line) + ":" + std::to_string(lc.column) + ": [" + std::string(Info(d.code).code) + "] " +
         d.message;
    if (!d.help.empty()) s += " (" + d.help + ")";
    s += "\n";
  }
  EXPECT_EQ(s.empty(), p.rules[0].root.valid()) << "a rule is valid exactly when it has no diagnostics: " << text;
  if (out) *out = std::move(p);
  return s;
}

TEST(RulesCheck, ValidRulesHaveNoDiagnostics) {
  for (const char* ok : {
           "self.encryption != \"none\"",
           "self.capacity <= 10GiB && self.timeout < 5m",
           "alltrue([for g in self.grants : g.access != \"write\" if g.principal != \"ci\"])",
           "length([for g in self.grants : g if g.access == \"write\"]) <= 1",
           "contains(self.grants[*].access, \"read\") || length(self.tags) == 0",
           "self.name == null ? true : startswith(self.name, \"prod-\")",
           "length(regexall(\"^[a-z0-9-]+$\", self.name)) > 0",
           "sum([for i, t in self.tags : i]) >= 0 && max(self.replicas, 1) > 0",
       }) {
    EXPECT_EQ(Check(ok), "") << ok;
  }
}

TEST(RulesCheck, UnknownNamesAndAttributes) {
  EXPECT_EQ(Check("sel.name == \"x\""), "1:1: [P0202] unknown name 'sel' (did you mean 'self'?)\n");
  EXPECT_EQ(Check("resource.name == \"x\""), "1:1: [P0202] unknown name 'resource' (rules can read: self)\n");
  EXPECT_EQ(Check("self.encrypton != \"none\""),
            "1:6: [P0305] 'self' has no attribute 'encrypton' (did you mean 'encryption'?)\n");
  EXPECT_EQ(Check("alltrue([for g in self.grants : g.acess != \"write\"])"),
            "1:35: [P0305] an element of 'self.grants' has no attribute 'acess' (did you mean 'access'?)\n");
  EXPECT_EQ(Check("self.name.first == \"x\""), "1:11: [P0306] cannot read attribute 'first' of a string\n");
  EXPECT_EQ(Check("length == 1"),
            "1:1: [P0202] unknown name 'length' ('length' is a function: call it as length(...))\n");
}

TEST(RulesCheck, TypeAndUnitMismatches) {
  EXPECT_EQ(Check("self.capacity > 30s"),
            "1:15: [P0302] cannot compare a size with a duration (both sides need the same unit kind (durations with "
            "durations, sizes with sizes))\n");
  EXPECT_EQ(Check("self.capacity + 1 > 2GiB"),
            "1:1: [P0302] cannot add a number to a size (give the number a unit, for example 30s or 10GiB)\n");
  EXPECT_EQ(Check("self.name > 3"), "1:1: [P0301] '>' compares numbers, not a string\n");
  EXPECT_EQ(Check("self.name == 3"),
            "1:11: [P0301] cannot compare a string with a number; the comparison would always be false (compare "
            "values of the same type)\n");
  EXPECT_EQ(Check("self.public && self.replicas"), "1:16: [P0301] '&&' needs bools, not a number\n");
  EXPECT_EQ(Check("self.replicas"), "1:1: [P0301] a rule must be a bool, not a number (compare it, for example x > 0)\n");
  EXPECT_EQ(Check("self.public ? 1 : \"a\""),
            "1:19: [P0301] the branches of the conditional differ: a number and a string (both branches need the same "
            "type)\n");
  EXPECT_EQ(Check("self.tags == \"x\""),
            "1:1: [P0301] 'self.tags' is a list, not a single value (use it in alltrue, anytrue, length, sum or "
            "contains, for example with [for x in self.tags : ...])\n");
  EXPECT_EQ(Check("self == null"), "1:1: [P0301] 'self' is an object, not a single value (use one of its attributes, "
                                   "for example self.name)\n");
}

TEST(RulesCheck, Functions) {
  EXPECT_EQ(Check("frobnicate(1)"), "1:1: [P0303] unknown function 'frobnicate' (rules can call the functions listed in "
                                    "docs/rules.md)\n");
  EXPECT_EQ(Check("startwith(self.name, \"a\")"), "1:1: [P0303] unknown function 'startwith' (did you mean 'startswith'?)\n");
  EXPECT_EQ(Check("upper(self.name) == \"X\""),
            "1:1: [P0306] function 'upper' is not supported in rules (rules can call: alltrue, anytrue, contains, "
            "endswith, length, max, min, regexall, startswith, strcontains, sum)\n");
  EXPECT_EQ(Check("startswith(self.name)"),
            "1:1: [P0304] 'startswith' takes 2 arguments, got 1 (signature: startswith(s string, prefix string) bool)\n");
  EXPECT_EQ(Check("alltrue(self.tags)"),
            "1:9: [P0304] 'alltrue' needs a list of bools, not a list of strings (compare each element, for example "
            "[for x in list : x.enabled == true])\n");
  EXPECT_EQ(Check("sum(self.tags) > 1"),
            "1:5: [P0304] 'sum' needs a list of numbers or of values of one unit kind, not a list of strings\n");
  EXPECT_EQ(Check("max(self.capacity, 30s) > 1GiB"),
            "1:20: [P0304] cannot mix size and duration in 'max'; give values of one kind, for example all durations\n");
  EXPECT_EQ(Check("min([for g in self.grants : 1]) > 0"),
            "1:5: [P0304] every argument of 'min' must be a number, duration, size or percent, got a list ('min' "
            "compares its arguments: min(a, b, c))\n");
  EXPECT_EQ(Check("contains(self.tags, 1)"),
            "1:21: [P0304] 'contains' looks for a number in a list of strings, so it is never found (compare values "
            "of the same type)\n");
  EXPECT_EQ(Check("length(self.replicas) > 0"), "1:8: [P0304] 'length' needs a string or a list, not a number\n");
  EXPECT_EQ(Check("length(regexall(self.name, \"x\")) > 0"),
            "1:17: [P0304] in rules, the pattern of 'regexall' must be a string literal (patterns are compiled once, "
            "when the rules are compiled)\n");
  EXPECT_EQ(Check("length(regexall(\"(\", self.name)) > 0"),
            "1:17: [P0304] invalid regular expression: missing ): ( (patterns use RE2 syntax, as in Go and "
            "Terraform; see docs/functions.md, \"Regular expressions\")\n");
  EXPECT_EQ(Check("length(regexall(\"a(?=b)\", self.name)) > 0"),
            "1:17: [P0304] invalid regular expression: invalid perl operator: (?=; lookahead is not supported (RE2 "
            "syntax, as in Go) (patterns use RE2 syntax, as in Go and Terraform; see docs/functions.md, \"Regular "
            "expressions\")\n");
  EXPECT_EQ(Check("length(regexall(\"(?P<a>x)(y)\", self.name)) > 0"),
            "1:17: [P0304] the regular expression mixes named and unnamed capture groups; name every group, or make "
            "the unnamed ones non-capturing with (?:...)\n");
  EXPECT_EQ(Check("regex(\"a\", self.name) == \"a\""),
            "1:1: [P0306] 'regex' gives a list of matches, which rules cannot hold (test for a match with "
            "length(regexall(pattern, s)) > 0)\n");
  EXPECT_EQ(Check("sum([]) > 0"), "1:5: [P0306] cannot sum an empty list; 'sum' needs at least one element\n");
}

TEST(RulesCheck, UnsupportedConstructsAreLocated) {
  EXPECT_EQ(Check("self.tags[0] == \"x\""),
            "1:1: [P0306] indexing is not supported in rules (use contains(list, value), or a for expression with "
            "alltrue/anytrue)\n");
  EXPECT_EQ(Check("\"${self.name}\" == \"x\""),
            "1:1: [P0306] string interpolation is not supported in rules (compare the parts separately, for example "
            "startswith(x, \"prefix\"))\n");
  EXPECT_EQ(Check("alltrue([for x in [1, 2] : x > 0])"),
            "1:19: [P0306] in rules, a for expression can only iterate over a list field (iterate over a field, for "
            "example [for g in self.grants : g.access])\n");
  EXPECT_EQ(Check("alltrue([for g in self.grants : g])"),
            "1:9: [P0304] 'alltrue' needs a list of bools, not a list of objects (compare each element, for example "
            "[for x in list : x.enabled == true])\n");
  EXPECT_EQ(Check("length({for t in self.tags : t => 1}) > 0"),
            "1:8: [P0306] object for expressions are not supported in rules (use a list for expression: [for x in list "
            ": ...])\n");
  EXPECT_EQ(Check("{ a = 1 } == null"),
            "1:1: [P0306] objects are not supported in rules (compare the attributes one by one)\n");
}

TEST(RulesCheck, EveryErrorIsReportedAtItsLocation) {
  // Two independent mistakes on two lines: both reported, at their places.
  EXPECT_EQ(Check("sel.name == \"x\" ||\n  self.capacity > 30s"),
            "1:1: [P0202] unknown name 'sel' (did you mean 'self'?)\n"
            "2:17: [P0302] cannot compare a size with a duration (both sides need the same unit kind (durations with "
            "durations, sizes with sizes))\n");
}

TEST(RulesCheck, ManyRulesOneProgram) {
  SourceManager sources;
  Diagnostics diags;
  std::vector<ast::ExprPtr> exprs;
  std::vector<RuleSource> src;
  for (const char* t : {"self.replicas > 1", "self.replicas > \"x\"", "contains(self.tags, \"a\")"}) {
    exprs.push_back(ParseExpression(sources.Add("r", t), diags));
    src.push_back({t, exprs.back().get()});
  }
  Program p = CheckRules(Schema(), src, FieldMode::Columnar, nullptr, diags);
  ASSERT_EQ(p.rules.size(), 3u);
  EXPECT_TRUE(p.rules[0].root.valid());
  EXPECT_FALSE(p.rules[1].root.valid());
  EXPECT_TRUE(p.rules[2].root.valid());
  EXPECT_EQ(diags.error_count(), 1u);
  // Literal strings are interned once, so equality is an id compare.
  EXPECT_EQ(p.strings->Intern("a"), p.strings->Intern("a"));
  EXPECT_EQ(DumpRule(p, 2),
            "rule contains(self.tags, \"a\")\n"
            "  Contains:bool loop0 over self.tags\n"
            "    Const:string \"a\"\n"
            "    Element:string loop0\n");
}

TEST(RulesCheck, NeverCrashesOnOddInput) {
  // Every expression form the parser produces, in places rules do not expect
  // them: each must give diagnostics, not a crash or a valid rule.
  for (const char* bad : {"self", "[1, 2]", "self.tags[*]", "self.grants[*].access", "-true", "!1",
                          "self.grants[*].access[0] == \"a\"", "(self.tags)[0] == \"a\"", "1 < 2 < 3",
                          "self.name == self.capacity", "self.public ? null : null", "null == null ? 1 : 2",
                          "[for x in self.tags : x] == [\"a\"]", "length(1, 2) > 0", "contains(self.grants, 1)",
                          "anytrue(self.grants[*].principal)", "self.capacity % 0.5 > 1B", "1 / 30s > 1"}) {
    std::string d = Check(bad);
    EXPECT_NE(d, "") << bad;
  }
}

TEST(RulesSchema, PathsAndNamespaces) {
  RuleSchema s;
  std::string error;
  EXPECT_TRUE(s.AddScalar("self.a.b", ScalarType::Number, &error).valid());
  EXPECT_FALSE(s.AddScalar("self.a", ScalarType::Number, &error).valid());
  EXPECT_EQ(error, "'self.a' is already a namespace of other fields");
  EXPECT_FALSE(s.AddScalar("self.a.b.c", ScalarType::Number, &error).valid());
  EXPECT_EQ(error, "'self.a.b' is a field, so it cannot have sub-fields");
  EXPECT_FALSE(s.AddScalar("self..x", ScalarType::Number, &error).valid());
  EXPECT_EQ(error, "'self..x' is not a valid field path");
  std::vector<std::string> skipped;
  s.AddFromType("res", Type::Object({{"size", Type::Size()},
                                     {"labels", Type::Map(Type::String())},
                                     {"ports", Type::List(Type::Int())},
                                     {"rules", Type::List(Type::Object({{"port", Type::Int()},
                                                                        {"cidrs", Type::List(Type::String())}}))}}),
                &skipped);
  EXPECT_EQ(skipped, (std::vector<std::string>{"res.labels", "res.rules[*].cidrs"}));
  ASSERT_TRUE(s.Find("res.size"));
  EXPECT_EQ(s.field(*s.Find("res.ports")).shape, FieldShape::List);
  EXPECT_EQ(s.field(*s.Find("res.rules")).attributes.size(), 1u);
  EXPECT_TRUE(s.IsNamespace("res"));
}

}  // namespace
}  // namespace plinth::rules
