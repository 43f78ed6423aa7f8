// Rule evaluation: each case compiles one rule, evaluates it over records with
// the interpreter and with the JIT, and requires both to give the expected
// verdict. Semantics: docs/rules.md ("Evaluation").
#include <gtest/gtest.h>

#include <cmath>

#include "compiler/eval/regex.h"
#include "compiler/rules/condition.h"
#include "compiler/rules/rules.h"
#include "compiler/syntax/parse.h"

namespace plinth::rules {
namespace {

RuleSchema BucketSchema() {
  RuleSchema s;
  s.AddScalar("self.name", ScalarType::String);
  s.AddScalar("self.encryption", ScalarType::String);
  s.AddScalar("self.capacity", ScalarType::Size);
  s.AddScalar("self.replicas", ScalarType::Number);
  s.AddScalar("self.timeout", ScalarType::Duration);
  s.AddScalar("self.usage", ScalarType::Percent);
  s.AddScalar("self.public", ScalarType::Bool);
  s.AddScalar("self.versioning.enabled", ScalarType::Bool);
  s.AddList("self.tags", ScalarType::String);
  s.AddList("self.sizes", ScalarType::Size);
  s.AddObjectList("self.grants", {{"access", ScalarType::String},
                                  {"principal", ScalarType::String},
                                  {"weight", ScalarType::Number}});
  return s;
}

Value Grant(Value access, Value principal = Value::String("p"), Value weight = Value::Number(1)) {
  return Value::Object({{"access", access}, {"principal", principal}, {"weight", weight}});
}

// A typical bucket; tests override attributes.
ValueMap Bucket() {
  return {{"name", Value::String("logs-1")},
          {"encryption", Value::String("aes256")},
          {"capacity", Value::Size(5.0 * 1024 * 1024 * 1024)},
          {"replicas", Value::Number(3)},
          {"timeout", Value::Duration(90'000)},
          {"usage", Value::Percent(80)},
          {"public", Value::Bool(false)},
          {"versioning", Value::Object({{"enabled", Value::Bool(true)}})},
          {"tags", Value::List({Value::String("prod"), Value::String("eu")})},
          {"sizes", Value::List({Value::Size(1024), Value::Size(2048)})},
          {"grants", Value::List({Grant(Value::String("read")), Grant(Value::String("list"))})}};
}

struct Outcome {
  Verdict interpreted;
  Verdict compiled;
  std::string diagnostics;
};

// Evaluates `text` for one record built from `self` with both back ends.
Outcome RunBoth(const std::string& text, const ValueMap& self) {
  SourceManager sources;
  Diagnostics diags;
  const SourceFile& f = sources.Add("rule", text);
  ast::ExprPtr e = ParseExpression(f, diags);
  RuleSource src{"r", e.get()};
  auto set = RuleSet::Compile(BucketSchema(), {&src, 1}, diags);
  Outcome o{Verdict::Error, Verdict::Error, RenderText(diags.Sorted(sources), sources, {})};
  EXPECT_TRUE(set->jitted()) << set->jit_error();
  RecordBatch batch = set->NewBatch();
  std::string why;
  EXPECT_TRUE(batch.AddValues({{"self", Value::Object(self)}}, &why)) << why;
  std::vector<Verdict> out(1);
  set->EvaluateAll(batch, out, Backend::Interpreter);
  o.interpreted = out[0];
  set->EvaluateAll(batch, out, Backend::Jit);
  o.compiled = out[0];
  return o;
}

ValueMap With(ValueMap m, const std::string& key, Value v) {
  m[key] = std::move(v);
  return m;
}
ValueMap Without(ValueMap m, const std::string& key) {
  m.erase(key);
  return m;
}

#define EXPECT_VERDICT(text, record, expected)                                            \
  do {                                                                                    \
    Outcome o_ = RunBoth(text, record);                                                       \
    EXPECT_TRUE(o_.diagnostics.empty()) << text << "\n" << o_.diagnostics;                \
    EXPECT_EQ(VerdictName(o_.interpreted), std::string(VerdictName(expected))) << "interpreter: " << text; \
    EXPECT_EQ(VerdictName(o_.compiled), std::string(VerdictName(expected))) << "jit: " << text;            \
  } while (0)

const Value kUnknownString = Value::Unknown(Type::String());
const Value kUnknownBool = Value::Unknown(Type::Bool());
const Value kUnknownNumber = Value::Unknown(Type::Number());

TEST(RulesEval, Comparisons) {
  EXPECT_VERDICT("self.encryption != \"none\"", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.encryption != \"none\"", With(Bucket(), "encryption", Value::String("none")), Verdict::False);
  EXPECT_VERDICT("self.replicas >= 3", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.replicas > 3", Bucket(), Verdict::False);
  EXPECT_VERDICT("!self.public", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.versioning.enabled == true", Bucket(), Verdict::True);
}

TEST(RulesEval, UnknownIsNeverAPass) {
  ValueMap u = With(Bucket(), "encryption", kUnknownString);
  EXPECT_VERDICT("self.encryption != \"none\"", u, Verdict::Unknown);
  EXPECT_VERDICT("self.replicas > 1", With(Bucket(), "replicas", kUnknownNumber), Verdict::Unknown);
  EXPECT_VERDICT("startswith(self.encryption, \"aes\")", u, Verdict::Unknown);
  EXPECT_VERDICT("!self.public", With(Bucket(), "public", kUnknownBool), Verdict::Unknown);
  // A known operand can still decide (Kleene logic), in either position.
  ValueMap p = With(Bucket(), "public", kUnknownBool);
  EXPECT_VERDICT("false && self.public", p, Verdict::False);
  EXPECT_VERDICT("self.public && false", p, Verdict::False);
  EXPECT_VERDICT("true || self.public", p, Verdict::True);
  EXPECT_VERDICT("self.public || true", p, Verdict::True);
  EXPECT_VERDICT("true && self.public", p, Verdict::Unknown);
  EXPECT_VERDICT("false || self.public", p, Verdict::Unknown);
  EXPECT_VERDICT("self.public ? true : true", p, Verdict::Unknown);
  EXPECT_VERDICT("true ? true : self.public", p, Verdict::True);
}

TEST(RulesEval, NullIsAValueOnlyForEquality) {
  ValueMap n = Without(Bucket(), "replicas");
  EXPECT_VERDICT("self.replicas == null", n, Verdict::True);
  EXPECT_VERDICT("self.replicas != null", n, Verdict::False);
  EXPECT_VERDICT("self.replicas == 3", n, Verdict::False);
  EXPECT_VERDICT("self.replicas == null", With(Bucket(), "replicas", kUnknownNumber), Verdict::Unknown);
  // Anywhere else a null cannot be evaluated: an error, not a pass.
  EXPECT_VERDICT("self.replicas > 1", n, Verdict::Error);
  EXPECT_VERDICT("self.replicas + 1 > 1", n, Verdict::Error);
  EXPECT_VERDICT("!self.public", Without(Bucket(), "public"), Verdict::Error);
  // The usual guard works because || and && are decided by one side.
  EXPECT_VERDICT("self.replicas == null || self.replicas > 1", n, Verdict::True);
  EXPECT_VERDICT("self.replicas != null && self.replicas > 1", n, Verdict::False);
  // An error outweighs an unknown in strict operations and undecided logic.
  EXPECT_VERDICT("self.public || self.replicas > 1", With(n, "public", kUnknownBool), Verdict::Error);
}

TEST(RulesEval, InvalidOperationsAreErrors) {
  EXPECT_VERDICT("self.replicas / 0 > 1", Bucket(), Verdict::Error);
  EXPECT_VERDICT("self.replicas % 0 > 1", Bucket(), Verdict::Error);
  EXPECT_VERDICT("self.replicas / (self.replicas - 3) > 1", Bucket(), Verdict::Error);
  EXPECT_VERDICT("self.replicas / 0 > 1 || true", Bucket(), Verdict::True);
}

TEST(RulesEval, Units) {
  EXPECT_VERDICT("self.capacity <= 10GiB", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.capacity == 5GiB", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.capacity * 2 > 8GiB", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.capacity / 1GiB == 5", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.capacity + 1GiB == 6GiB", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.usage * self.capacity == 4GiB", Bucket(), Verdict::True);  // 80% of 5GiB
  EXPECT_VERDICT("self.capacity * 10% == 512MiB", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.usage > 0.5", Bucket(), Verdict::True);     // 80% is the fraction 0.8
  EXPECT_VERDICT("self.usage == 0.8", Bucket(), Verdict::True);
  EXPECT_VERDICT("0.9 > self.usage", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.usage > 75%", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.usage * 50% == 40%", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.usage / 40% == 2", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.timeout + 30s == 2m", Bucket(), Verdict::True);
  EXPECT_VERDICT("self.timeout % 1m == 30s", Bucket(), Verdict::True);
  EXPECT_VERDICT("-self.timeout < 0s", Bucket(), Verdict::True);
  EXPECT_VERDICT("min(self.timeout, 1m, 2m) == 1m", Bucket(), Verdict::True);
  EXPECT_VERDICT("max(self.capacity, 1GiB) == 5GiB", Bucket(), Verdict::True);
  EXPECT_VERDICT("max(self.replicas, 7, 2) == 7", Bucket(), Verdict::True);
}

TEST(RulesEval, Strings) {
  EXPECT_VERDICT("startswith(self.name, \"logs-\")", Bucket(), Verdict::True);
  EXPECT_VERDICT("endswith(self.name, \"-2\")", Bucket(), Verdict::False);
  EXPECT_VERDICT("strcontains(self.name, \"gs-\")", Bucket(), Verdict::True);
  EXPECT_VERDICT("length(self.name) == 6", Bucket(), Verdict::True);
  EXPECT_VERDICT("length(self.name) == 5", With(Bucket(), "name", Value::String("h\xC3\xA9llo")), Verdict::True);
  EXPECT_VERDICT("length(regexall(\"^[a-z]+-[0-9]+$\", self.name)) > 0", Bucket(), Verdict::True);
  EXPECT_VERDICT("length(regexall(\"[0-9]\", self.name)) == 0", With(Bucket(), "name", Value::String("a1b2")),
                 Verdict::False);
  EXPECT_VERDICT("length(regexall(\"[0-9]\", self.name)) == 2", With(Bucket(), "name", Value::String("a1b2")),
                 Verdict::True);
  EXPECT_VERDICT("self.name == \"logs-1\" ? self.encryption == \"aes256\" : false", Bucket(), Verdict::True);
  // A string seen for the first time in the record (not in any rule).
  EXPECT_VERDICT("self.name != \"other\"", With(Bucket(), "name", Value::String("fresh-name")), Verdict::True);
}

// Rules match with RE2 (Go syntax) through the same compiled patterns as the
// builtin regexall, in both back ends.
TEST(RulesEval, RegexIsRe2) {
  EXPECT_VERDICT("length(regexall(\"(?i)^LOGS-\\\\d+$\", self.name)) > 0", Bucket(), Verdict::True);
  EXPECT_VERDICT("length(regexall(\"(?P<word>[a-z]+)\", self.name)) == 1", Bucket(), Verdict::True);
  EXPECT_VERDICT("length(regexall(\"\\\\pL\", self.name)) == 5", With(Bucket(), "name", Value::String("h\xC3\xA9llo")),
                 Verdict::True);
  EXPECT_VERDICT("length(regexall(\"a*\", self.name)) == 3", With(Bucket(), "name", Value::String("baab")),
                 Verdict::True);  // Go's empty-match rules, as the builtin
  // Patterns that are exponential for backtracking engines, on long subjects.
  ValueMap as = With(Bucket(), "name", Value::String(std::string(100000, 'a')));
  EXPECT_VERDICT("length(regexall(\"(a*)*c\", self.name)) == 0", as, Verdict::True);
  EXPECT_VERDICT("length(regexall(\"(a|a)*b\", self.name)) == 0", as, Verdict::True);
  EXPECT_VERDICT("length(regexall(\"^(a|a)*$\", self.name)) == 1", as, Verdict::True);
  ValueMap xs = With(Bucket(), "name", Value::String(std::string(30000, 'x') + "y"));
  EXPECT_VERDICT("length(regexall(\"(x+x+)+y\", self.name)) == 1", xs, Verdict::True);
  // Past the work limit (or the subject limit) the count is an error, never a pass.
  ValueMap many = With(Bucket(), "name", Value::String(std::string(100000, 'x')));
  EXPECT_VERDICT("length(regexall(\"x*y|x\", self.name)) > 0", many, Verdict::Error);
  EXPECT_VERDICT("length(regexall(\"x*y|x\", self.name)) == 0", many, Verdict::Error);
  ValueMap huge = With(Bucket(), "name", Value::String(std::string(kMaxRegexSubject + 1, 'x')));
  EXPECT_VERDICT("length(regexall(\"y\", self.name)) == 0", huge, Verdict::Error);
}

TEST(RulesEval, Aggregates) {
  ValueMap b = Bucket();
  EXPECT_VERDICT("alltrue([for g in self.grants : g.access != \"write\"])", b, Verdict::True);
  EXPECT_VERDICT("anytrue([for g in self.grants : g.access == \"list\"])", b, Verdict::True);
  EXPECT_VERDICT("length([for g in self.grants : g if g.access == \"read\"]) == 1", b, Verdict::True);
  EXPECT_VERDICT("length(self.grants) == 2", b, Verdict::True);
  EXPECT_VERDICT("length(self.tags) == 2", b, Verdict::True);
  EXPECT_VERDICT("contains(self.tags, \"prod\")", b, Verdict::True);
  EXPECT_VERDICT("contains(self.tags, \"dev\")", b, Verdict::False);
  EXPECT_VERDICT("contains([\"eu\", \"us\"], self.name)", b, Verdict::False);
  EXPECT_VERDICT("contains([\"eu\", \"us\"], self.name)", With(b, "name", Value::String("us")), Verdict::True);
  EXPECT_VERDICT("contains(self.grants[*].access, \"read\")", b, Verdict::True);
  EXPECT_VERDICT("sum(self.sizes) == 3KiB", b, Verdict::True);
  EXPECT_VERDICT("sum([for g in self.grants : g.weight]) == 2", b, Verdict::True);
  EXPECT_VERDICT("sum([for g in self.grants : g.weight if g.access == \"none\"]) == 0", b, Verdict::Error);
  EXPECT_VERDICT("alltrue([for i, t in self.tags : i < 2])", b, Verdict::True);
  EXPECT_VERDICT("alltrue([for i, t in self.tags : i < 1])", b, Verdict::False);
  EXPECT_VERDICT("alltrue([self.replicas > 1, self.capacity > 1GiB])", b, Verdict::True);
  EXPECT_VERDICT("anytrue([])", b, Verdict::False);
  EXPECT_VERDICT("alltrue([])", b, Verdict::True);
  EXPECT_VERDICT("length([1, 2, 3]) == 3", b, Verdict::True);
  EXPECT_VERDICT("alltrue([for x in self.tags : contains(self.tags, x)])", b, Verdict::True);
  EXPECT_VERDICT("alltrue([for s in self.sizes : anytrue([for g in self.grants : g.weight * s >= 1KiB])])", b,
                 Verdict::True);
}

TEST(RulesEval, AggregatesWithUnknownsAndNulls) {
  ValueMap b = Bucket();
  const char* no_write = "alltrue([for g in self.grants : g.access != \"write\"])";
  // One element unknown: undecided, unless another element decides.
  EXPECT_VERDICT(no_write, With(b, "grants", Value::List({Grant(kUnknownString), Grant(Value::String("read"))})),
                 Verdict::Unknown);
  EXPECT_VERDICT(no_write, With(b, "grants", Value::List({Grant(kUnknownString), Grant(Value::String("write"))})),
                 Verdict::False);
  EXPECT_VERDICT(no_write, With(b, "grants", Value::Unknown(Type::List(Type::Any()))), Verdict::Unknown);
  // A for expression over a null list iterates nothing (as in Plinth)...
  EXPECT_VERDICT(no_write, Without(b, "grants"), Verdict::True);
  EXPECT_VERDICT("anytrue([for t in self.tags : t == \"x\"])", Without(b, "tags"), Verdict::False);
  // ...but a null list used directly cannot be measured.
  EXPECT_VERDICT("length(self.tags) == 0", Without(b, "tags"), Verdict::Error);
  EXPECT_VERDICT("contains(self.tags, \"prod\")", Without(b, "tags"), Verdict::Error);
  EXPECT_VERDICT("length(self.tags) == 2", With(b, "tags", Value::Unknown(Type::List(Type::String()))),
                 Verdict::Unknown);
  // Elements that are unknown do not change a length...
  EXPECT_VERDICT("length(self.tags) == 2", With(b, "tags", Value::List({kUnknownString, kUnknownString})),
                 Verdict::True);
  // ...but an unknown filter does.
  EXPECT_VERDICT("length([for t in self.tags : t if t == \"prod\"]) == 1",
                 With(b, "tags", Value::List({Value::String("prod"), kUnknownString})), Verdict::Unknown);
  EXPECT_VERDICT("contains(self.tags, \"prod\")", With(b, "tags", Value::List({kUnknownString, Value::String("prod")})),
                 Verdict::True);
  EXPECT_VERDICT("contains(self.tags, \"dev\")", With(b, "tags", Value::List({kUnknownString, Value::String("prod")})),
                 Verdict::Unknown);
  EXPECT_VERDICT("sum(self.sizes) > 0B", With(b, "sizes", Value::List({Value::Size(1), Value::Unknown(Type::Size())})),
                 Verdict::Unknown);
  EXPECT_VERDICT("sum(self.sizes) > 0B", With(b, "sizes", Value::List({Value::Size(1), Value::Null()})), Verdict::Error);
  EXPECT_VERDICT("sum(self.sizes) > 0B", With(b, "sizes", Value::List({})), Verdict::Error);
  EXPECT_VERDICT("contains(self.tags, null)", With(b, "tags", Value::List({Value::Null()})), Verdict::True);
}

TEST(RulesEval, RecordTypeMismatchIsReportedAndNeverPasses) {
  auto set = [] {
    Diagnostics diags;
    SourceManager sources;
    const SourceFile& f = sources.Add("rule", "self.replicas > 1");
    static ast::ExprPtr e;
    e = ParseExpression(f, diags);
    RuleSource src{"r", e.get()};
    return RuleSet::Compile(BucketSchema(), {&src, 1}, diags);
  }();
  RecordBatch batch = set->NewBatch();
  std::string why;
  EXPECT_FALSE(batch.AddValues({{"self", Value::Object({{"replicas", Value::String("3")}})}}, &why));
  EXPECT_EQ(why, "'self.replicas' should be a number, but the record has string");
  std::vector<Verdict> out(1);
  set->EvaluateAll(batch, out, Backend::Interpreter);
  EXPECT_EQ(out[0], Verdict::Unknown);
  set->EvaluateAll(batch, out, Backend::Jit);
  EXPECT_EQ(out[0], Verdict::Unknown);
}

// ------------------------------------------------------------------ JIT lifecycle

TEST(RulesJit, UnloadAndReload) {
  std::string error;
  std::shared_ptr<JitEngine> engine = JitEngine::Create(&error);
  ASSERT_TRUE(engine) << error;
  SourceManager sources;
  Diagnostics diags;
  ast::ExprPtr e1 = ParseExpression(sources.Add("a", "self.replicas > 2"), diags);
  ast::ExprPtr e2 = ParseExpression(sources.Add("b", "self.replicas > 5"), diags);
  ASSERT_FALSE(diags.has_errors());
  RuleSetOptions options;
  options.engine = engine;
  RuleSource s1{"gt2", e1.get()}, s2{"gt5", e2.get()};
  std::vector<Verdict> out(3);
  auto evaluate = [&](const RuleSet& set) {
    RecordBatch batch = set.NewBatch();
    for (double r : {1.0, 3.0, 9.0}) batch.Set(batch.AddRow(), *set.schema().Find("self.replicas"), Cell::Number(r));
    set.EvaluateAll(batch, out, Backend::Jit);
    std::string s;
    for (Verdict v : out) s += VerdictName(v) + std::string(" ");
    return s;
  };
  for (int round = 0; round < 3; ++round) {
    auto a = RuleSet::Compile(BucketSchema(), {&s1, 1}, diags, options);
    ASSERT_TRUE(a->jitted()) << a->jit_error();
    EXPECT_EQ(evaluate(*a), "false true true ");
    {
      auto b = RuleSet::Compile(BucketSchema(), {&s2, 1}, diags, options);
      ASSERT_TRUE(b->jitted()) << b->jit_error();
      EXPECT_EQ(evaluate(*b), "false false true ");
    }  // b's code is unloaded here; a must keep working.
    EXPECT_EQ(evaluate(*a), "false true true ");
  }
  EXPECT_FALSE(diags.has_errors());
}

TEST(RulesJit, InvalidRulesGetNoCodeAndEvaluateToError) {
  SourceManager sources;
  Diagnostics diags;
  ast::ExprPtr good = ParseExpression(sources.Add("a", "self.replicas > 2"), diags);
  ast::ExprPtr bad = ParseExpression(sources.Add("b", "self.replicas > \"x\""), diags);
  RuleSource src[] = {{"good", good.get()}, {"bad", bad.get()}};
  auto set = RuleSet::Compile(BucketSchema(), src, diags);
  EXPECT_EQ(diags.error_count(), 1u);
  ASSERT_TRUE(set->jitted());
  EXPECT_EQ(set->jit_stats().functions, 1u);
  RecordBatch batch = set->NewBatch();
  batch.Set(batch.AddRow(), *set->schema().Find("self.replicas"), Cell::Number(3));
  std::vector<Verdict> out(2);
  for (Backend b : {Backend::Interpreter, Backend::Jit}) {
    set->EvaluateAll(batch, out, b);
    EXPECT_EQ(out[0], Verdict::True);
    EXPECT_EQ(out[1], Verdict::Error);
  }
}

// ------------------------------------------------------------------ conditions

struct Conditions {
  SourceManager sources;
  Diagnostics diags;
  std::vector<ast::ExprPtr> exprs;
  std::unique_ptr<ConditionSet> set;

  Conditions(const std::vector<std::string>& texts) {
    std::vector<Series> series = {{"requests_per_second"}, {"replicas"}, {"error_ratio"},
                                  {"latency.p99", ScalarType::Duration}, {"memory", ScalarType::Size}};
    std::vector<ConditionSource> src;
    for (const std::string& t : texts) {
      exprs.push_back(ParseExpression(sources.Add("cond", t), diags));
      src.push_back({t, exprs.back().get()});
    }
    std::string error;
    set = ConditionSet::Compile(series, src, diags, &error);
    EXPECT_TRUE(set) << error;
  }
  // Verdicts from both back ends, which must agree.
  std::vector<Verdict> Eval(std::vector<double> snapshot) {
    std::vector<Verdict> a(set->size()), b(set->size());
    set->Evaluate(snapshot, a, Backend::Interpreter);
    set->Evaluate(snapshot, b, Backend::Jit);
    EXPECT_EQ(a, b);
    return a;
  }
};

TEST(RulesConditions, EvaluateSnapshots) {
  Conditions c({"requests_per_second / replicas > 100", "error_ratio > 5%", "latency.p99 > 250ms || memory > 1GiB"});
  ASSERT_FALSE(c.diags.has_errors()) << RenderText(c.diags.Sorted(c.sources), c.sources, {});
  ASSERT_TRUE(c.set->jitted()) << c.set->jit_error();
  EXPECT_EQ(*c.set->SeriesIndex("latency.p99"), 3u);
  using V = Verdict;
  EXPECT_EQ(c.Eval({1000, 5, 0.01, 100, 1e6}), (std::vector<V>{V::True, V::False, V::False}));
  EXPECT_EQ(c.Eval({1000, 20, 0.06, 300, 1e6}), (std::vector<V>{V::False, V::True, V::True}));
  // Missing series (NaN) are unknown, unless the other side decides.
  EXPECT_EQ(c.Eval({NAN, 20, NAN, NAN, 2e9}), (std::vector<V>{V::Unknown, V::Unknown, V::True}));
  EXPECT_EQ(c.Eval({100, 0, 0, 0, 0}), (std::vector<V>{V::Error, V::False, V::False}));  // division by zero
}

TEST(RulesConditions, TypeErrorsAreDiagnosed) {
  Conditions c({"latency.p99 > 5", "error_rate > 1"});
  std::string text = RenderText(c.diags.Sorted(c.sources), c.sources, {});
  EXPECT_NE(text.find("error[P0302]: cannot compare a duration with a number"), std::string::npos) << text;
  EXPECT_NE(text.find("error[P0202]: unknown name 'error_rate'"), std::string::npos) << text;
  EXPECT_NE(text.find("did you mean 'error_ratio'?"), std::string::npos) << text;
  EXPECT_EQ(c.Eval({0, 0, 0, 0, 0}), (std::vector<Verdict>{Verdict::Error, Verdict::Error}));
}

TEST(RulesConditions, InvalidSeriesListIsTheCallersError) {
  Diagnostics diags;
  std::string error;
  std::vector<Series> dup = {{"a"}, {"a"}};
  EXPECT_EQ(ConditionSet::Compile(dup, {}, diags, &error), nullptr);
  EXPECT_EQ(error, "field 'a' is declared twice");
  std::vector<Series> text = {{"name", ScalarType::String}};
  EXPECT_EQ(ConditionSet::Compile(text, {}, diags, &error), nullptr);
  EXPECT_EQ(error, "series 'name' must be numeric, not string");
}

TEST(RulesConditions, ManyConditionsSpanSeveralChunks) {
  std::vector<std::string> texts;
  for (int i = 0; i < 600; ++i) texts.push_back("requests_per_second > " + std::to_string(i));
  Conditions c(texts);
  ASSERT_TRUE(c.set->jitted());
  std::vector<Verdict> v = c.Eval({300.5, 1, 0, 0, 0});
  for (int i = 0; i < 600; ++i) ASSERT_EQ(v[static_cast<size_t>(i)], i <= 300 ? Verdict::True : Verdict::False) << i;
}

// ------------------------------------------------------------------ the for window

std::string States(const AlertTracker& t) {
  std::string s;
  for (size_t i = 0; i < t.size(); ++i) s += std::string(i ? " " : "") + AlertStateName(t.status(i).state);
  return s;
}

TEST(RulesAlerts, ForWindowStateMachine) {
  using V = Verdict;
  AlertTracker t({60'000, 0});  // `for = 1m`, and `for = 0`
  std::vector<AlertChange> changes;
  t.Update(std::vector<V>{V::False, V::False}, 0, &changes);
  EXPECT_EQ(States(t), "inactive inactive");
  EXPECT_TRUE(changes.empty());
  t.Update(std::vector<V>{V::True, V::True}, 10'000, &changes);
  EXPECT_EQ(States(t), "pending firing");  // a zero window fires at once
  EXPECT_EQ(t.status(0).active_since_ms, 10'000);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].to, AlertState::Firing);
  t.Update(std::vector<V>{V::True, V::True}, 69'999, &changes);
  EXPECT_EQ(States(t), "pending firing");
  t.Update(std::vector<V>{V::True, V::True}, 70'000, &changes);  // held for exactly the window
  EXPECT_EQ(States(t), "firing firing");
  EXPECT_EQ(t.status(0).firing_since_ms, 70'000);
  EXPECT_EQ(t.status(0).active_since_ms, 10'000);
  t.Update(std::vector<V>{V::False, V::True}, 80'000, &changes);
  EXPECT_EQ(States(t), "inactive firing");
  // A new streak starts from scratch.
  t.Update(std::vector<V>{V::True, V::False}, 90'000, &changes);
  EXPECT_EQ(States(t), "pending inactive");
  EXPECT_EQ(t.status(0).active_since_ms, 90'000);
  t.Update(std::vector<V>{V::False, V::False}, 149'000, &changes);
  t.Update(std::vector<V>{V::True, V::False}, 150'000, &changes);
  EXPECT_EQ(States(t), "pending inactive");
  EXPECT_EQ(t.status(0).active_since_ms, 150'000);
}

TEST(RulesAlerts, UnknownKeepsTheStateAndIsReported) {
  using V = Verdict;
  AlertTracker t({60'000});
  t.Update(std::vector<V>{V::True}, 0);
  t.Update(std::vector<V>{V::Unknown}, 30'000);
  EXPECT_EQ(States(t), "pending");
  EXPECT_EQ(t.status(0).last, V::Unknown);
  EXPECT_EQ(t.status(0).undecided_in_a_row, 1u);
  t.Update(std::vector<V>{V::Error}, 61'000);  // undecided: does not complete the window
  EXPECT_EQ(States(t), "pending");
  EXPECT_EQ(t.status(0).undecided_in_a_row, 2u);
  t.Update(std::vector<V>{V::True}, 62'000);  // the streak since 0 was never broken
  EXPECT_EQ(States(t), "firing");
  EXPECT_EQ(t.status(0).undecided_in_a_row, 0u);
  t.Update(std::vector<V>{V::Unknown}, 63'000);
  EXPECT_EQ(States(t), "firing");
  t.Update(std::vector<V>{V::False}, 64'000);
  EXPECT_EQ(States(t), "inactive");
  t.Update(std::vector<V>{V::Unknown}, 65'000);
  EXPECT_EQ(States(t), "inactive");
}

TEST(RulesAlerts, ClockGoingBackwardsNeverFiresEarly) {
  using V = Verdict;
  AlertTracker t({60'000});
  t.Update(std::vector<V>{V::True}, 100'000);
  t.Update(std::vector<V>{V::True}, 50'000);  // treated as 100'000
  EXPECT_EQ(States(t), "pending");
  t.Update(std::vector<V>{V::True}, 159'999);
  EXPECT_EQ(States(t), "pending");
  t.Update(std::vector<V>{V::True}, 160'000);
  EXPECT_EQ(States(t), "firing");
}

}  // namespace
}  // namespace plinth::rules
