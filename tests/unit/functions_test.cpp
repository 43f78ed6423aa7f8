// Tests for the builtin functions (compiler/eval/functions*.cpp) and for the
// consistency of docs/functions.md with the registry.

#include "compiler/eval/functions.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "compiler/eval/regex.h"

namespace plinth {
namespace {

using Kind = Value::Kind;

Value S(std::string s) {
  return Value::String(std::move(s));
}
Value N(double n) {
  return Value::Number(n);
}
Value B(bool b) {
  return Value::Bool(b);
}
Value L(ValueList l) {
  return Value::List(std::move(l));
}
Value O(ValueMap m) {
  return Value::Object(std::move(m));
}
Value Ms(double ms) {
  return Value::Duration(ms);
}
Value Bytes(double b) {
  return Value::Size(b);
}
Value Pct(double p) {
  return Value::Percent(p);
}

FunctionResult CallWith(const CallContext& ctx, std::string_view name, std::vector<Value> args) {
  const FunctionDef* fn = FindFunction(name);
  if (!fn) {
    ADD_FAILURE() << "no function " << name;
    return FunctionResult::Fail(-1, "missing");
  }
  return CallFunction(*fn, ctx, args);
}

FunctionResult Call(std::string_view name, std::vector<Value> args) {
  return CallWith(CallContext{}, name, std::move(args));
}

// The value of a call that must succeed, shown in Plinth syntax (revealed).
std::string Show(std::string_view name, std::vector<Value> args) {
  FunctionResult r = Call(name, std::move(args));
  if (r.error) return "error(" + std::to_string(r.error->argument) + "): " + r.error->message;
  return r.value.ToString(/*reveal=*/true);
}

Value Get(std::string_view name, std::vector<Value> args) {
  FunctionResult r = Call(name, std::move(args));
  EXPECT_FALSE(r.error) << name << ": " << (r.error ? r.error->message : "");
  return r.value;
}

// Expects an error blaming `argument` whose message contains `part`.
void ExpectError(std::string_view name, std::vector<Value> args, int argument, std::string_view part,
                 std::optional<bool> bad_argument = std::nullopt) {
  FunctionResult r = Call(name, std::move(args));
  ASSERT_TRUE(r.error) << name << " unexpectedly gave " << r.value.ToString(true);
  EXPECT_EQ(r.error->argument, argument) << name << ": " << r.error->message;
  EXPECT_NE(r.error->message.find(part), std::string::npos) << name << ": " << r.error->message;
  if (bad_argument) {
    EXPECT_EQ(r.error->bad_argument, *bad_argument) << r.error->message;
  }
  // Style: lowercase start, no trailing period.
  ASSERT_FALSE(r.error->message.empty());
  EXPECT_FALSE(std::isupper(static_cast<unsigned char>(r.error->message[0]))) << r.error->message;
  EXPECT_NE(r.error->message.back(), '.') << r.error->message;
}

// ------------------------------------------------------------------ registry

TEST(FunctionRegistry, NamesAreUniqueSortedAndFindable) {
  std::set<std::string_view> names;
  std::string_view prev;
  for (const FunctionDef& fn : AllFunctions()) {
    EXPECT_TRUE(names.insert(fn.name).second) << fn.name;
    EXPECT_LT(prev, fn.name);
    prev = fn.name;
    EXPECT_EQ(FindFunction(fn.name), &fn);
  }
  EXPECT_EQ(FindFunction("no_such_function"), nullptr);
  EXPECT_GE(AllFunctions().size(), 95u);
}

TEST(FunctionRegistry, DefinitionsAreWellFormed) {
  const std::set<std::string_view> categories = {"string", "collection", "numeric", "encoding", "hashing",
                                                 "cidr",   "file",       "time",    "type"};
  for (const FunctionDef& fn : AllFunctions()) {
    SCOPED_TRACE(std::string(fn.name));
    EXPECT_TRUE(categories.count(fn.category));
    EXPECT_TRUE(fn.signature.starts_with(std::string(fn.name) + "(")) << fn.signature;
    EXPECT_FALSE(fn.summary.empty());
    EXPECT_TRUE(std::islower(static_cast<unsigned char>(fn.summary[0])) || fn.summary[0] == '-' ||
                fn.summary[0] == '\'');
    EXPECT_NE(fn.summary.back(), '.');
    EXPECT_LE(fn.min_args, fn.max_args);
    if (fn.max_args == SIZE_MAX) {
      EXPECT_FALSE(fn.params.empty());
      EXPECT_NE(fn.signature.find("..."), std::string_view::npos);
    } else {
      EXPECT_EQ(fn.params.size(), fn.max_args);
    }
    EXPECT_TRUE(fn.impl);
    EXPECT_TRUE(fn.result_type);
  }
}

// ------------------------------------------------------------------ CallFunction

TEST(CallFunction, ChecksArity) {
  ExpectError("upper", {}, -1, "'upper' takes 1 argument, got 0", true);
  ExpectError("upper", {S("a"), S("b")}, 1, "takes 1 argument, got 2", true);
  ExpectError("lookup", {O({})}, -1, "takes 2 to 3 arguments", true);
  ExpectError("format", {}, -1, "at least 1", true);
}

TEST(CallFunction, ChecksArgumentTypes) {
  ExpectError("upper", {N(1)}, 0, "must be string, got int", true);
  ExpectError("join", {S(","), S("a")}, 1, "must be list(string), got string", true);
  ExpectError("element", {L({S("a")}), N(1.5)}, 1, "must be int, got number", true);
  ExpectError("timeadd", {S("2024-01-01T00:00:00Z"), N(5)}, 1, "must be duration, got int", true);
  // Variadic arguments use the last parameter type.
  ExpectError("cidrsubnets", {S("10.0.0.0/8"), N(8), S("x")}, 2, "must be int, got string", true);
  // Int is accepted where number is expected; objects where maps are.
  EXPECT_EQ(Show("pow", {N(2), N(3)}), "8");
  EXPECT_EQ(Show("keys", {O({{"b", N(1)}, {"a", S("x")}})}), "[\"a\", \"b\"]");
}

TEST(CallFunction, NullOnlyForAnyParameters) {
  ExpectError("upper", {Value::Null()}, 0, "must be string, not null", true);
  EXPECT_EQ(Show("coalesce", {Value::Null(), S("x")}), "\"x\"");
  EXPECT_EQ(Show("tostring", {Value::Null()}), "null");
}

TEST(CallFunction, UnknownArgumentsGiveTypedUnknown) {
  Value r = Get("upper", {Value::Unknown(Type::String())});
  ASSERT_TRUE(r.is_unknown());
  EXPECT_EQ(r.unknown_type(), Type::String());
  // Unknown nested in a list.
  r = Get("join", {S(","), L({S("a"), Value::Unknown(Type::String())})});
  ASSERT_TRUE(r.is_unknown());
  EXPECT_EQ(r.unknown_type(), Type::String());
  // The result type follows the argument types.
  r = Get("element", {Value::Unknown(Type::List(Type::Size())), N(0)});
  EXPECT_EQ(r.unknown_type(), Type::Size());
  r = Get("max", {Ms(1000), Value::Unknown(Type::Duration())});
  EXPECT_EQ(r.unknown_type(), Type::Duration());
  r = Get("values", {Value::Unknown(Type::Map(Type::Bool()))});
  EXPECT_EQ(r.unknown_type(), Type::List(Type::Bool()));
  r = Get("merge", {O({{"a", N(1)}}), Value::Unknown(Type::Object({{"b", Type::String()}}))});
  EXPECT_EQ(r.unknown_type(), Type::Object({{"a", Type::Int()}, {"b", Type::String()}}));
  r = Get("flatten", {Value::Unknown(Type::List(Type::List(Type::String())))});
  EXPECT_EQ(r.unknown_type(), Type::List(Type::String()));
  r = Get("cidrsubnets", {Value::Unknown(Type::String()), N(4)});
  EXPECT_EQ(r.unknown_type(), Type::List(Type::String()));
  // Type errors are still found when another argument is unknown.
  ExpectError("join", {N(1), Value::Unknown(Type::List(Type::String()))}, 0, "must be string");
  // Value errors are not: the implementation is not called.
  EXPECT_TRUE(Get("regex", {S("("), Value::Unknown(Type::String())}).is_unknown());
}

TEST(CallFunction, ImpureFunctionsAreUnknownAtPlan) {
  Value t = Get("timestamp", {});
  ASSERT_TRUE(t.is_unknown());
  EXPECT_EQ(t.unknown_type(), Type::String());
  EXPECT_TRUE(Get("uuid", {}).is_unknown());
  // The implementations still work when called directly (at apply).
  const FunctionDef* fn = FindFunction("timestamp");
  FunctionResult r = fn->impl(CallContext{}, {});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.value.as_string().size(), 20u);
  EXPECT_EQ(r.value.as_string().back(), 'Z');
  fn = FindFunction("uuid");
  std::string a = fn->impl(CallContext{}, {}).value.as_string();
  std::string b = fn->impl(CallContext{}, {}).value.as_string();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(a, b);
}

TEST(CallFunction, SensitivityPropagates) {
  Value secret = S("hunter2").WithSensitive();
  Value r = Get("upper", {secret});
  EXPECT_TRUE(r.sensitive());
  EXPECT_EQ(r.as_string(), "HUNTER2");
  EXPECT_EQ(r.ToString(), "(sensitive)");
  // Sensitive inside a collection argument.
  r = Get("join", {S(","), L({S("a"), secret})});
  EXPECT_TRUE(r.sensitive());
  EXPECT_EQ(r.as_string(), "a,hunter2");
  r = Get("length", {L({secret})});
  EXPECT_TRUE(r.sensitive());
  // Unknown results keep the mark too.
  r = Get("upper", {Value::Unknown(Type::String()).WithSensitive()});
  EXPECT_TRUE(r.is_unknown());
  EXPECT_TRUE(r.sensitive());
  // Non-sensitive calls stay non-sensitive.
  EXPECT_FALSE(Get("upper", {S("a")}).sensitive());
  // Error messages never reveal sensitive values.
  FunctionResult e = Call("tonumber", {S("hunter2").WithSensitive()});
  ASSERT_TRUE(e.error);
  EXPECT_EQ(e.error->message.find("hunter2"), std::string::npos) << e.error->message;
  e = Call("lookup", {O({}), S("hunter2").WithSensitive()});
  ASSERT_TRUE(e.error);
  EXPECT_EQ(e.error->message.find("hunter2"), std::string::npos) << e.error->message;
}

// ------------------------------------------------------------------ strings

TEST(StringFunctions, Case) {
  EXPECT_EQ(Show("upper", {S("hello, Wörld ß")}), "\"HELLO, WÖRLD ß\"");
  EXPECT_EQ(Show("lower", {S("HELLO ÀÉ ΣΑ Привет")}), "\"hello àé σα привет\"");
  EXPECT_EQ(Show("title", {S("hello world-wide web_site 3rd")}), "\"Hello World-Wide Web_site 3rd\"");
  EXPECT_EQ(Show("title", {S("élan vital")}), "\"Élan Vital\"");
}

TEST(StringFunctions, Trimming) {
  EXPECT_EQ(Show("trim", {S("?!hello?!"), S("!?")}), "\"hello\"");
  EXPECT_EQ(Show("trim", {S("«a»"), S("«»")}), "\"a\"");
  EXPECT_EQ(Show("trim", {S("aaa"), S("a")}), "\"\"");
  EXPECT_EQ(Show("trimprefix", {S("helloworld"), S("hello")}), "\"world\"");
  EXPECT_EQ(Show("trimprefix", {S("hellohello"), S("hello")}), "\"hello\"");
  EXPECT_EQ(Show("trimprefix", {S("world"), S("hello")}), "\"world\"");
  EXPECT_EQ(Show("trimsuffix", {S("file.txt"), S(".txt")}), "\"file\"");
  EXPECT_EQ(Show("trimsuffix", {S("file.txt"), S(".md")}), "\"file.txt\"");
  EXPECT_EQ(Show("trimspace", {S(" \t\n a b \r\n\u00a0")}), "\"a b\"");
  EXPECT_EQ(Show("chomp", {S("a\n\r\n\n")}), "\"a\"");
  EXPECT_EQ(Show("chomp", {S("a\nb")}), "\"a\\nb\"");
}

TEST(StringFunctions, ReplaceSplitJoin) {
  EXPECT_EQ(Show("replace", {S("a-b-c"), S("-"), S("+")}), "\"a+b+c\"");
  EXPECT_EQ(Show("replace", {S("aaa"), S("aa"), S("b")}), "\"ba\"");
  EXPECT_EQ(Show("replace", {S("a1b22c"), S("/[0-9]+/"), S("#")}), "\"a#b#c\"");
  EXPECT_EQ(Show("replace", {S("john smith"), S("/(\\w+) (\\w+)/"), S("$2 $1")}), "\"smith john\"");
  ExpectError("replace", {S("a"), S("/(/"), S("")}, 1, "invalid regular expression", false);
  ExpectError("replace", {S("a"), S(""), S("x")}, 1, "empty", false);
  EXPECT_EQ(Show("split", {S(","), S("a,b,,c")}), "[\"a\", \"b\", \"\", \"c\"]");
  EXPECT_EQ(Show("split", {S(","), S("")}), "[\"\"]");
  EXPECT_EQ(Show("split", {S(""), S("hé")}), "[\"h\", \"é\"]");
  EXPECT_EQ(Show("split", {S("::"), S("a::b")}), "[\"a\", \"b\"]");
  EXPECT_EQ(Show("join", {S(", "), L({S("a"), S("b"), S("c")})}), "\"a, b, c\"");
  EXPECT_EQ(Show("join", {S(","), L({})}), "\"\"");
  ExpectError("join", {S(","), L({S("a"), N(1)})}, 1, "element 1 of the list is int", true);
}

TEST(StringFunctions, Format) {
  EXPECT_EQ(Show("format", {S("%s has %d items at %.2f%%"), S("cart"), N(3), N(1.5)}),
            "\"cart has 3 items at 1.50%\"");
  EXPECT_EQ(Show("format", {S("%v|%v|%v"), L({N(1), S("a")}), B(true), S("x")}), "\"[1, \\\"a\\\"]|true|x\"");
  EXPECT_EQ(Show("format", {S("%q"), S("a\"b")}), "\"\\\"a\\\\\\\"b\\\"\"");
  EXPECT_EQ(Show("format", {S("%s and %s"), Ms(30000), Bytes(10.0 * 1024 * 1024 * 1024)}),
            "\"30s and 10GiB\"");
  EXPECT_EQ(Show("format", {S("[%5s][%-5s][%03d]"), S("ab"), S("cd"), N(7)}), "\"[   ab][cd   ][007]\"");
  EXPECT_EQ(Show("format", {S("%s"), S("secret").WithSensitive()}), "\"secret\"");
  EXPECT_TRUE(Get("format", {S("%s"), S("secret").WithSensitive()}).sensitive());
  ExpectError("format", {S("%s %s"), S("a")}, 0, "more verbs than there are values", false);
  ExpectError("format", {S("%s"), S("a"), S("b")}, 2, "1 verbs but 2 values", false);
  ExpectError("format", {S("%x"), N(1)}, 0, "unknown format verb '%x'", false);
  ExpectError("format", {S("%d"), N(1.5)}, 1, "whole number", false);
  ExpectError("format", {S("%d"), S("1")}, 1, "needs a number, got string", true);
  ExpectError("format", {S("%d"), Ms(1000)}, 1, "'seconds'", true);
  ExpectError("format", {S("%s"), L({})}, 1, "got list(any)", true);
  ExpectError("format", {S("abc %")}, 0, "ends in the middle", false);
}

TEST(StringFunctions, SubstrAndLength) {
  EXPECT_EQ(Show("substr", {S("hello world"), N(1), N(4)}), "\"ello\"");
  EXPECT_EQ(Show("substr", {S("héllo"), N(1), N(2)}), "\"él\"");
  EXPECT_EQ(Show("substr", {S("hello"), N(-3), N(-1)}), "\"llo\"");
  EXPECT_EQ(Show("substr", {S("hello"), N(2), N(100)}), "\"llo\"");
  EXPECT_EQ(Show("substr", {S("hello"), N(5), N(1)}), "\"\"");
  ExpectError("substr", {S("hello"), N(6), N(1)}, 1, "outside the string", false);
  ExpectError("substr", {S("hello"), N(-6), N(1)}, 1, "outside the string", false);
  ExpectError("substr", {S("hello"), N(0), N(-2)}, 2, "length must be -1", false);
  EXPECT_EQ(Show("strlen", {S("héllo 👋")}), "7");
  EXPECT_EQ(Show("strlen", {S("")}), "0");
  EXPECT_EQ(Show("strrev", {S("héllo👋")}), "\"👋olléh\"");
}

TEST(StringFunctions, Predicates) {
  EXPECT_EQ(Show("startswith", {S("hello"), S("he")}), "true");
  EXPECT_EQ(Show("startswith", {S("hello"), S("lo")}), "false");
  EXPECT_EQ(Show("endswith", {S("hello"), S("lo")}), "true");
  EXPECT_EQ(Show("endswith", {S("lo"), S("hello")}), "false");
  EXPECT_EQ(Show("strcontains", {S("hello"), S("ell")}), "true");
  EXPECT_EQ(Show("strcontains", {S("hello"), S("xyz")}), "false");
}

TEST(StringFunctions, Regex) {
  EXPECT_EQ(Show("regex", {S("[a-z]+"), S("53abc99def")}), "\"abc\"");
  EXPECT_EQ(Show("regex", {S("(\\d+)-(\\d+)"), S("x 10-20 y")}), "[\"10\", \"20\"]");
  EXPECT_EQ(Show("regex", {S("(a)|(b)"), S("b")}), "[null, \"b\"]");
  ExpectError("regex", {S("[0-9]+"), S("abc")}, 1, "does not match", false);
  ExpectError("regex", {S("(unclosed"), S("abc")}, 0, "invalid regular expression", false);
  EXPECT_EQ(Show("regexall", {S("[0-9]+"), S("a1b22c333")}), "[\"1\", \"22\", \"333\"]");
  EXPECT_EQ(Show("regexall", {S("(\\w)=(\\d)"), S("a=1 b=2")}), "[[\"a\", \"1\"], [\"b\", \"2\"]]");
  EXPECT_EQ(Show("regexall", {S("x"), S("abc")}), "[]");
  // Empty matches follow Go: one code point on after an empty match, and no
  // empty match right where the previous match ended.
  EXPECT_EQ(Show("regexall", {S("a*"), S("baab")}), "[\"\", \"aa\", \"\"]");
  EXPECT_EQ(Show("regexall", {S("a*"), S("baaac")}), "[\"\", \"aaa\", \"\"]");
  EXPECT_EQ(Show("regexall", {S(""), S("h\xC3\xA9")}), "[\"\", \"\", \"\"]");  // per code point, not byte
  // Subjects are bounded.
  ExpectError("regex", {S("a"), S(std::string(kMaxRegexSubject + 1, 'a'))}, 1, "at most", false);
}

// RE2 is Go's regexp syntax, the one Terraform's functions use.
TEST(StringFunctions, RegexGoSyntax) {
  EXPECT_EQ(Show("regex", {S("\\d{3}"), S("ab12345")}), "\"123\"");
  EXPECT_EQ(Show("regex", {S("\\D+"), S("12ab34")}), "\"ab\"");
  EXPECT_EQ(Show("regex", {S("(?i)hello"), S("Say HeLLo")}), "\"HeLLo\"");
  EXPECT_EQ(Show("regex", {S("(?i:a)B"), S("ab AB Ab")}), "\"AB\"");
  EXPECT_EQ(Show("regex", {S("(?m)^b$"), S("a\nb\nc")}), "\"b\"");
  ExpectError("regex", {S("^b$"), S("a\nb\nc")}, 1, "does not match", false);  // ^ $ are the text's ends
  EXPECT_EQ(Show("regex", {S("(?s)a.b"), S("a\nb")}), "\"a\\nb\"");
  ExpectError("regex", {S("a.b"), S("a\nb")}, 1, "does not match", false);  // . excludes \n without (?s)
  EXPECT_EQ(Show("regex", {S("\\pL+"), S("12 h\xC3\xA9llo")}), "\"h\xC3\xA9llo\"");
  EXPECT_EQ(Show("regex", {S("[[:upper:]]+"), S("abCDe")}), "\"CD\"");
  EXPECT_EQ(Show("regex", {S("\\Qa.b\\E"), S("axb a.b")}), "\"a.b\"");
  EXPECT_EQ(Show("regex", {S("\\bcat\\b"), S("concat cat")}), "\"cat\"");
  EXPECT_EQ(Show("regex", {S("<.+?>"), S("<a><b>")}), "\"<a>\"");     // lazy
  EXPECT_EQ(Show("regex", {S("(?U)<.+>"), S("<a><b>")}), "\"<a>\"");   // (?U) swaps greediness
  EXPECT_EQ(Show("regex", {S("a|ab"), S("ab")}), "\"a\"");             // leftmost-first, not longest
  EXPECT_EQ(Show("regex", {S("x{2,3}"), S("xxxxx")}), "\"xxx\"");
  EXPECT_EQ(Show("regex", {S("(?:ab)+"), S("xababx")}), "\"abab\"");   // non-capturing: a string

  // Named groups give an object (Terraform's shape); a group that did not
  // take part is null.
  EXPECT_EQ(Show("regex", {S("(?P<key>\\w+)=(?P<value>\\w*)"), S("x: port=80")}), "{ key = \"port\", value = \"80\" }");
  EXPECT_EQ(Show("regex", {S("(?P<a>a)|(?P<b>b)"), S("b")}), "{ a = null, b = \"b\" }");
  EXPECT_EQ(Show("regexall", {S("(?P<k>[a-z])(?P<v>\\d)"), S("a1 b2")}),
            "[{ k = \"a\", v = \"1\" }, { k = \"b\", v = \"2\" }]");
  ExpectError("regex", {S("(?P<a>x)(y)"), S("xy")}, 0, "mixes named and unnamed capture groups", false);
  ExpectError("regexall", {S("(x)(?P<a>y)"), S("xy")}, 0, "mixes named and unnamed capture groups", false);
}

TEST(StringFunctions, RegexErrorsComeFromRe2) {
  ExpectError("regex", {S("(unclosed"), S("a")}, 0, "invalid regular expression: missing ): (unclosed", false);
  ExpectError("regex", {S("a)"), S("a")}, 0, "unexpected ): a)", false);
  ExpectError("regex", {S("[z-a]"), S("a")}, 0, "invalid character class range: z-a", false);
  ExpectError("regex", {S("x**"), S("x")}, 0, "bad repetition operator: **", false);
  ExpectError("regexall", {S("\\8"), S("a")}, 0, "invalid escape sequence: \\8", false);
  ExpectError("replace", {S("abc"), S("/[b/"), S("x")}, 1, "missing ]: [b", false);
  // What other syntaxes have and RE2 lacks, with a hint.
  ExpectError("regex", {S("a(?=b)"), S("ab")}, 0, "lookahead is not supported", false);
  ExpectError("regex", {S("a(?!b)"), S("ab")}, 0, "lookahead is not supported", false);
  ExpectError("regex", {S("(?<=a)b"), S("ab")}, 0, "lookbehind is not supported", false);
  ExpectError("regex", {S("(a)\\1"), S("aa")}, 0, "backreferences are not supported", false);
  ExpectError("regex", {S("(?<key>a)"), S("a")}, 0, "write a named group as (?P<name>...)", false);
  // Size: pattern text, repetition counts, and the compiled program.
  ExpectError("regex", {S(std::string(kMaxRegexPattern + 1, 'a')), S("a")}, 0, "longer than", false);
  ExpectError("regex", {S("a{1001}"), S("a")}, 0, "invalid repetition size: {1001}", false);
  ExpectError("regex", {S("((a{100}){100}){100}"), S("a")}, 0, "at most 1000", false);
  ExpectError("regex", {S("\\pL{1000}"), S("a")}, 0, "compiles to more than 8 MiB", false);
  // A sensitive pattern is not quoted.
  FunctionResult r = Call("regex", {S("(secret").WithSensitive(), S("a")});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->argument, 0);
  EXPECT_EQ(r.error->message.find("secret"), std::string::npos) << r.error->message;
}

// Patterns that make backtracking engines (std::regex, PCRE) take
// exponential time run in linear time; these cases used to hang. Only the
// results are checked (unit tests assert no timings).
TEST(StringFunctions, RegexPathologicalPatternsFinish) {
  const std::string a28(28, 'a');
  const std::string a100k(100000, 'a');
  const std::string x50k(50000, 'x');
  ExpectError("regex", {S("(a*)*c"), S(a28)}, 1, "does not match", false);
  ExpectError("regex", {S("(a*)*c"), S(a100k)}, 1, "does not match", false);
  EXPECT_EQ(Show("regexall", {S("(a*)*c"), S(a100k)}), "[]");
  EXPECT_EQ(Get("regex", {S("(?:a*)*c"), S(a100k + "c")}).as_string().size(), a100k.size() + 1);
  ExpectError("regex", {S("(a|a)*b"), S(a100k)}, 1, "does not match", false);
  EXPECT_EQ(Get("replace", {S(a100k), S("/(a|a)*b/"), S("z")}).as_string(), a100k);
  ExpectError("regex", {S("(x+x+)+y"), S(x50k)}, 1, "does not match", false);
  Value m = Get("regex", {S("^(x+x+)+y$"), S(x50k + "y")});
  ASSERT_EQ(m.kind(), Kind::List);
  EXPECT_EQ(m.as_list().at(0).as_string(), x50k);
  Value all = Get("regexall", {S("(x+x+)+y"), S(std::string(30000, 'x') + "y!")});
  ASSERT_EQ(all.as_list().size(), 1u);
  EXPECT_EQ(all.as_list()[0].as_list().at(0).as_string(), std::string(30000, 'x'));
  EXPECT_EQ(Get("replace", {S(x50k), S("/(x+x+)+y/"), S("-")}).as_string(), x50k);
}

// Finding every match restarts the search after each match, and a search may
// read to the end of the subject before it settles (x*y|x on "xxx..."), so a
// call is refused when its searches could exceed kRegexWorkLimit.
TEST(StringFunctions, RegexWorkIsBounded) {
  EXPECT_EQ(Get("regexall", {S("x*y|x"), S(std::string(2000, 'x'))}).as_list().size(), 2000u);
  ExpectError("regexall", {S("x*y|x"), S(std::string(100000, 'x'))}, 1, "matching would take too long", false);
  ExpectError("replace", {S(std::string(100000, 'x')), S("/x*y|x/"), S("-")}, 0, "matching would take too long",
              false);
  // One search over a long subject is linear and allowed; so are sparse matches.
  EXPECT_EQ(Show("regex", {S("y"), S(std::string(kMaxRegexSubject - 1, 'x') + "y")}), "\"y\"");
  EXPECT_EQ(Get("regexall", {S("y"), S(std::string(500000, 'x') + "y" + std::string(500000, 'x') + "y")})
                .as_list()
                .size(),
            2u);
}

TEST(StringFunctions, ReplaceRegexTemplates) {
  EXPECT_EQ(Show("replace", {S("john smith"), S("/(\\w+) (\\w+)/"), S("$2 $1")}), "\"smith john\"");
  EXPECT_EQ(Show("replace", {S("ab"), S("/(a)/"), S("${1}x")}), "\"axb\"");
  EXPECT_EQ(Show("replace", {S("ab"), S("/(a)/"), S("$1x")}), "\"b\"");  // the group named "1x": none, so ""
  EXPECT_EQ(Show("replace", {S("k=v"), S("/(?P<k>\\w+)=(?P<v>\\w+)/"), S("$v=${k}")}), "\"v=k\"");
  EXPECT_EQ(Show("replace", {S("abc"), S("/b/"), S("[$&]")}), "\"a[b]c\"");
  EXPECT_EQ(Show("replace", {S("abc"), S("/b/"), S("[$0]")}), "\"a[b]c\"");
  EXPECT_EQ(Show("replace", {S("a"), S("/a/"), S("$$1")}), "\"$1\"");
  EXPECT_EQ(Show("replace", {S("a"), S("/a/"), S("x$")}), "\"x$\"");       // no name: '$' kept
  EXPECT_EQ(Get("replace", {S("a"), S("/a/"), S("${1")}).as_string(), "${1");  // unclosed brace: kept
  EXPECT_EQ(Show("replace", {S("a"), S("/a/"), S("<$9>")}), "\"<>\"");     // no such group
  EXPECT_EQ(Show("replace", {S("ab"), S("/(x)?b/"), S("<$1>")}), "\"a<>\"");  // did not take part
  // Empty matches as in Go's ReplaceAllString.
  EXPECT_EQ(Show("replace", {S("abc"), S("/x*/"), S("-")}), "\"-a-b-c-\"");
  EXPECT_EQ(Show("replace", {S("baaac"), S("/a*/"), S("-")}), "\"-b-c-\"");
  EXPECT_EQ(Show("replace", {S("Hello World"), S("/(?i)o/"), S("0")}), "\"Hell0 W0rld\"");
  // Slashes make a regex only when there are two of them.
  EXPECT_EQ(Show("replace", {S("a/b"), S("/"), S("|")}), "\"a|b\"");
}

TEST(StringFunctions, Indent) {
  EXPECT_EQ(Show("indent", {N(2), S("a\nb\n  c")}), "\"a\\n  b\\n    c\"");
  EXPECT_EQ(Show("indent", {N(0), S("a\nb")}), "\"a\\nb\"");
  ExpectError("indent", {N(-1), S("a")}, 0, "from 0 to 1024", false);
}

// ------------------------------------------------------------------ collections

TEST(CollectionFunctions, LengthConcatFlatten) {
  EXPECT_EQ(Show("length", {S("héllo")}), "5");
  EXPECT_EQ(Show("length", {L({N(1), N(2)})}), "2");
  EXPECT_EQ(Show("length", {O({{"a", N(1)}})}), "1");
  ExpectError("length", {N(5)}, 0, "needs a string, list or map, got int", true);
  ExpectError("length", {Value::Null()}, 0, "got null", true);
  EXPECT_EQ(Show("concat", {L({N(1)}), L({}), L({N(2), N(3)})}), "[1, 2, 3]");
  EXPECT_EQ(Show("flatten", {L({N(1), L({N(2), L({N(3)})}), L({})})}), "[1, 2, 3]");
}

TEST(CollectionFunctions, MapFunctions) {
  Value m = O({{"b", N(2)}, {"a", N(1)}});
  EXPECT_EQ(Show("keys", {m}), "[\"a\", \"b\"]");
  EXPECT_EQ(Show("values", {m}), "[1, 2]");
  EXPECT_EQ(Show("merge", {m, O({{"a", N(9)}, {"c", N(3)}})}), "{ a = 9, b = 2, c = 3 }");
  EXPECT_EQ(Show("lookup", {m, S("a")}), "1");
  EXPECT_EQ(Show("lookup", {m, S("z"), S("none")}), "\"none\"");
  EXPECT_EQ(Show("lookup", {m, S("z"), Value::Null()}), "null");
  ExpectError("lookup", {m, S("z")}, 1, "no key \"z\"", false);
  EXPECT_EQ(Show("zipmap", {L({S("a"), S("b")}), L({N(1), N(2)})}), "{ a = 1, b = 2 }");
  ExpectError("zipmap", {L({S("a")}), L({N(1), N(2)})}, 1, "1 keys but 2 values", false);
  EXPECT_EQ(Show("transpose", {O({{"a", L({S("1"), S("2")})}, {"b", L({S("2")})}})}),
            "{ \"1\" = [\"a\"], \"2\" = [\"a\", \"b\"] }");
}

TEST(CollectionFunctions, Indexing) {
  Value l = L({S("a"), S("b"), S("c")});
  EXPECT_EQ(Show("element", {l, N(1)}), "\"b\"");
  EXPECT_EQ(Show("element", {l, N(5)}), "\"c\"");
  ExpectError("element", {l, N(-1)}, 1, "0 or more", false);
  ExpectError("element", {L({}), N(0)}, 0, "empty list", false);
  EXPECT_EQ(Show("slice", {l, N(1), N(3)}), "[\"b\", \"c\"]");
  EXPECT_EQ(Show("slice", {l, N(1), N(1)}), "[]");
  ExpectError("slice", {l, N(2), N(1)}, 2, "end index must be from 2", false);
  ExpectError("slice", {l, N(4), N(4)}, 1, "start index must be from 0 to 3", false);
  EXPECT_EQ(Show("index", {l, S("c")}), "2");
  ExpectError("index", {l, S("z")}, 1, "does not contain \"z\"", false);
  EXPECT_EQ(Show("contains", {l, S("b")}), "true");
  EXPECT_EQ(Show("contains", {l, N(1)}), "false");
  EXPECT_EQ(Show("contains", {L({Ms(60000)}), Ms(60000)}), "true");
  EXPECT_EQ(Show("one", {L({})}), "null");
  EXPECT_EQ(Show("one", {L({N(4)})}), "4");
  ExpectError("one", {l}, 0, "has 3 elements", false);
}

TEST(CollectionFunctions, Ordering) {
  EXPECT_EQ(Show("distinct", {L({S("a"), S("b"), S("a"), S("c"), S("b")})}), "[\"a\", \"b\", \"c\"]");
  EXPECT_EQ(Show("sort", {L({S("b"), S("a"), S("C")})}), "[\"C\", \"a\", \"b\"]");
  EXPECT_EQ(Show("sort", {L({N(10), N(9), N(-1)})}), "[-1, 9, 10]");
  EXPECT_EQ(Show("sort", {L({Ms(120000), Ms(30000)})}), "[30s, 2m]");
  ExpectError("sort", {L({S("a"), N(1)})}, 0, "elements of one kind", true);
  ExpectError("sort", {L({L({})})}, 0, "element 0 is list(any)", true);
  EXPECT_EQ(Show("reverse", {L({N(1), N(2), N(3)})}), "[3, 2, 1]");
  EXPECT_EQ(Show("union", {L({S("a"), S("b")}), L({S("b"), S("c")})}), "[\"a\", \"b\", \"c\"]");
  EXPECT_EQ(Show("chunklist", {L({N(1), N(2), N(3)}), N(2)}), "[[1, 2], [3]]");
  EXPECT_EQ(Show("chunklist", {L({}), N(2)}), "[]");
  ExpectError("chunklist", {L({N(1)}), N(0)}, 1, "at least 1", false);
}

TEST(CollectionFunctions, Range) {
  EXPECT_EQ(Show("range", {N(3)}), "[0, 1, 2]");
  EXPECT_EQ(Show("range", {N(1), N(4)}), "[1, 2, 3]");
  EXPECT_EQ(Show("range", {N(4), N(1)}), "[4, 3, 2]");
  EXPECT_EQ(Show("range", {N(0), N(1), N(0.25)}), "[0, 0.25, 0.5, 0.75]");
  EXPECT_EQ(Show("range", {N(0), N(10), N(-1)}), "[]");
  EXPECT_EQ(Show("range", {N(0)}), "[]");
  ExpectError("range", {N(0), N(1), N(0)}, 2, "must not be 0", false);
  ExpectError("range", {N(2e6)}, -1, "more than the limit of 1000000", false);
  ExpectError("range", {N(0), N(1e300), N(1e-300)}, -1, "limit", false);
  ExpectError("range", {N(INFINITY)}, 0, "finite", false);
  EXPECT_EQ(Get("range", {N(1000000)}).as_list().size(), 1000000u);
}

TEST(CollectionFunctions, CoalesceCompact) {
  EXPECT_EQ(Show("coalesce", {Value::Null(), S(""), S("b"), S("c")}), "\"b\"");
  EXPECT_EQ(Show("coalesce", {N(0), N(1)}), "0");
  ExpectError("coalesce", {Value::Null(), S("")}, -1, "every argument", false);
  EXPECT_EQ(Show("coalescelist", {L({}), L({N(1)}), L({N(2)})}), "[1]");
  ExpectError("coalescelist", {L({}), L({})}, -1, "every list", false);
  EXPECT_EQ(Show("compact", {L({S("a"), S(""), Value::Null(), S("b")})}), "[\"a\", \"b\"]");
}

TEST(CollectionFunctions, SumAndBooleans) {
  EXPECT_EQ(Show("sum", {L({N(1), N(2.5)})}), "3.5");
  EXPECT_EQ(Show("sum", {L({Ms(30000), Ms(90000)})}), "2m");
  EXPECT_EQ(Show("sum", {L({Bytes(512.0 * 1024 * 1024), Bytes(512.0 * 1024 * 1024)})}), "1GiB");
  ExpectError("sum", {L({Ms(1000), Bytes(1)})}, 0, "cannot mix unit kinds", true);
  ExpectError("sum", {L({S("1")})}, 0, "needs numbers", true);
  ExpectError("sum", {L({})}, 0, "empty list", false);
  EXPECT_EQ(Show("alltrue", {L({B(true), B(true)})}), "true");
  EXPECT_EQ(Show("alltrue", {L({B(true), B(false)})}), "false");
  EXPECT_EQ(Show("alltrue", {L({})}), "true");
  EXPECT_EQ(Show("anytrue", {L({B(false), B(true)})}), "true");
  EXPECT_EQ(Show("anytrue", {L({})}), "false");
  ExpectError("anytrue", {L({B(false), Value::Null()})}, 0, "element 1 is null", true);
}

// ------------------------------------------------------------------ numeric

TEST(NumericFunctions, Basics) {
  EXPECT_EQ(Show("abs", {N(-2.5)}), "2.5");
  EXPECT_EQ(Show("ceil", {N(1.2)}), "2");
  EXPECT_EQ(Show("floor", {N(-1.2)}), "-2");
  EXPECT_EQ(Get("floor", {N(1.9)}).type(), Type::Int());
  EXPECT_EQ(Show("pow", {N(2), N(10)}), "1024");
  EXPECT_EQ(Show("pow", {N(10), N(400)}), "inf");
  EXPECT_EQ(Show("log", {N(8), N(2)}), "3");
  ExpectError("log", {N(0), N(2)}, 0, "x > 0", false);
  ExpectError("log", {N(8), N(1)}, 1, "not 1", false);
  EXPECT_EQ(Show("signum", {N(-7)}), "-1");
  EXPECT_EQ(Show("signum", {N(0)}), "0");
  EXPECT_EQ(Show("signum", {N(0.1)}), "1");
}

TEST(NumericFunctions, MinMaxWithUnits) {
  EXPECT_EQ(Show("max", {N(1), N(7), N(3)}), "7");
  EXPECT_EQ(Show("min", {N(1), N(-7), N(3)}), "-7");
  EXPECT_EQ(Show("max", {Ms(30000), Ms(120000)}), "2m");
  EXPECT_EQ(Show("min", {Ms(30000), Ms(120000)}), "30s");
  EXPECT_EQ(Get("max", {Ms(30000), Ms(120000)}).kind(), Kind::Duration);
  EXPECT_EQ(Show("max", {Bytes(1e9), Bytes(1024.0 * 1024 * 1024)}), "1GiB");
  EXPECT_EQ(Show("min", {Pct(80), Pct(75.5)}), "75.5%");
  ExpectError("max", {Ms(30000), Bytes(1)}, 1, "cannot mix duration and size", true);
  ExpectError("max", {N(1), Ms(1)}, 1, "cannot mix number and duration", true);
  ExpectError("min", {S("a")}, 0, "must be a number, duration, size or percent", true);
}

TEST(NumericFunctions, ParseInt) {
  EXPECT_EQ(Show("parseint", {S("ff"), N(16)}), "255");
  EXPECT_EQ(Show("parseint", {S("FF"), N(16)}), "255");
  EXPECT_EQ(Show("parseint", {S("-101"), N(2)}), "-5");
  EXPECT_EQ(Show("parseint", {S("Z"), N(62)}), "61");
  ExpectError("parseint", {S("12"), N(1)}, 1, "from 2 to 62", false);
  ExpectError("parseint", {S("129"), N(8)}, 0, "'9' is not a digit", false);
  ExpectError("parseint", {S(""), N(10)}, 0, "no digits", false);
  ExpectError("parseint", {S("99999999999999999999"), N(10)}, 0, "too large", false);
}

TEST(TypeFunctions, Conversions) {
  EXPECT_EQ(Show("tonumber", {S("42")}), "42");
  EXPECT_EQ(Show("tonumber", {S("-1.5e3")}), "-1500");
  EXPECT_EQ(Show("tonumber", {N(3)}), "3");
  EXPECT_EQ(Show("tonumber", {Value::Null()}), "null");
  ExpectError("tonumber", {S("12abc")}, 0, "cannot convert \"12abc\"", false);
  ExpectError("tonumber", {S("inf")}, 0, "cannot convert", false);
  ExpectError("tonumber", {Ms(1000)}, 0, "'seconds'", true);
  EXPECT_EQ(Show("tostring", {N(1.5)}), "\"1.5\"");
  EXPECT_EQ(Show("tostring", {B(true)}), "\"true\"");
  EXPECT_EQ(Show("tostring", {Ms(90000)}), "\"90s\"");
  EXPECT_EQ(Show("tostring", {Pct(80)}), "\"80%\"");
  ExpectError("tostring", {L({})}, 0, "'jsonencode'", true);
  EXPECT_EQ(Show("tobool", {S("true")}), "true");
  EXPECT_EQ(Show("tobool", {B(false)}), "false");
  ExpectError("tobool", {S("yes")}, 0, "only \"true\" and \"false\"", false);
  ExpectError("tobool", {N(1)}, 0, "cannot convert int to a bool", true);
  EXPECT_EQ(Show("tolist", {L({S("a"), Value::Null()})}), "[\"a\", null]");
  ExpectError("tolist", {L({S("a"), N(1)})}, 0, "element 1 has a different type", true);
  ExpectError("tolist", {S("a")}, 0, "cannot convert string to a list", true);
  EXPECT_EQ(Show("tomap", {O({{"a", N(1)}, {"b", N(2.5)}})}), "{ a = 1, b = 2.5 }");
  ExpectError("tomap", {O({{"a", N(1)}, {"b", S("x")}})}, 0, "attribute 'b'", true);
  EXPECT_EQ(Get("tomap", {Value::Unknown(Type::Object({{"a", Type::Int()}, {"b", Type::Number()}}))})
                .unknown_type(),
            Type::Map(Type::Number()));
}

// ------------------------------------------------------------------ encoding

TEST(EncodingFunctions, Base64) {
  EXPECT_EQ(Show("base64encode", {S("Hello, World")}), "\"SGVsbG8sIFdvcmxk\"");
  EXPECT_EQ(Show("base64encode", {S("a")}), "\"YQ==\"");
  EXPECT_EQ(Show("base64encode", {S("ab")}), "\"YWI=\"");
  EXPECT_EQ(Show("base64decode", {S("SGVsbG8sIFdvcmxk")}), "\"Hello, World\"");
  EXPECT_EQ(Show("base64decode", {S("YWI=")}), "\"ab\"");
  EXPECT_EQ(Show("base64decode", {S("")}), "\"\"");
  ExpectError("base64decode", {S("YWI")}, 0, "multiple of 4", false);
  ExpectError("base64decode", {S("YW*=")}, 0, "byte 2", false);
  ExpectError("base64decode", {S("Y===")}, 0, "byte 1", false);
  ExpectError("base64decode", {S("YQ==YQ==")}, 0, "byte 2", false);
  ExpectError("base64decode", {S("/w==")}, 0, "not UTF-8", false);
}

TEST(EncodingFunctions, Json) {
  Value v = O({{"name", S("a\"b")},
               {"n", N(1)},
               {"f", N(0.1)},
               {"t", Ms(30000)},
               {"s", Bytes(10.0 * 1024 * 1024 * 1024)},
               {"p", Pct(80)},
               {"l", L({B(true), Value::Null()})}});
  EXPECT_EQ(Get("jsonencode", {v}).as_string(),
            R"({"f":0.1,"l":[true,null],"n":1,"name":"a\"b","p":"80%","s":"10GiB","t":"30s"})");
  EXPECT_EQ(Get("jsonencode", {S("é\n\x01")}).as_string(), "\"é\\n\\u0001\"");
  EXPECT_EQ(Get("jsonencode", {N(1e20)}).as_string(), "1e+20");
  ExpectError("jsonencode", {N(NAN)}, 0, "cannot represent nan in JSON", false);
  EXPECT_EQ(Show("jsondecode", {S(R"({"a": [1, 2.5, "x", true, null], "b": {}})")}),
            "{ a = [1, 2.5, \"x\", true, null], b = {} }");
  EXPECT_EQ(Show("jsondecode", {S("\"hi\"")}), "\"hi\"");
  EXPECT_EQ(Get("jsondecode", {S("1")}).kind(), Kind::Number);
  ExpectError("jsondecode", {S("{\"a\": }")}, 0, "not valid JSON", false);
  ExpectError("jsondecode", {S("")}, 0, "not valid JSON", false);
  ExpectError("jsondecode", {S("[1] x")}, 0, "not valid JSON", false);
  ExpectError("jsondecode", {S(std::string(100000, '['))}, 0, "nested more than 512", false);
  // Round trip.
  Value round = Get("jsondecode", {Get("jsonencode", {O({{"k", L({N(1), S("two")})}})})});
  EXPECT_EQ(round.ToString(), "{ k = [1, \"two\"] }");
}

TEST(EncodingFunctions, UrlAndCsv) {
  EXPECT_EQ(Show("urlencode", {S("a b&c=d/é~")}), "\"a+b%26c%3Dd%2F%C3%A9~\"");
  EXPECT_EQ(Show("csvdecode", {S("a,b\n1,2\n\"x,\"\"y\",3\n")}),
            "[{ a = \"1\", b = \"2\" }, { a = \"x,\\\"y\", b = \"3\" }]");
  EXPECT_EQ(Show("csvdecode", {S("a,b\r\n1,2\r\n")}), "[{ a = \"1\", b = \"2\" }]");
  EXPECT_EQ(Show("csvdecode", {S("")}), "[]");
  EXPECT_EQ(Show("csvdecode", {S("a\n\"multi\nline\"")}), "[{ a = \"multi\\nline\" }]");
  ExpectError("csvdecode", {S("a,b\n1\n")}, 0, "record 1 has 1 fields but the header has 2", false);
  ExpectError("csvdecode", {S("a\n\"open")}, 0, "not closed", false);
  ExpectError("csvdecode", {S("a\nx\"y")}, 0, "line 2", false);
}

TEST(HashingFunctions, Digests) {
  EXPECT_EQ(Show("md5", {S("hello world")}), "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
  EXPECT_EQ(Show("sha1", {S("hello world")}), "\"2aae6c35c94fcfb415dbe95f408b9ce91ee846ed\"");
  EXPECT_EQ(Show("sha256", {S("hello world")}),
            "\"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9\"");
  EXPECT_EQ(Show("sha512", {S("")}),
            "\"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec"
            "2f63b931bd"
            "47417a81a538327af927da3e\"");
  EXPECT_EQ(Show("base64sha256", {S("hello world")}), "\"uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=\"");
  EXPECT_EQ(Show("base64sha512", {S("")}),
            "\"z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==\"");
}

TEST(HashingFunctions, UuidV5) {
  // Reference values from Python's uuid.uuid5.
  EXPECT_EQ(Show("uuidv5", {S("dns"), S("www.example.com")}), "\"2ed6657d-e927-568b-95e1-2665a8aea6a2\"");
  EXPECT_EQ(Show("uuidv5", {S("url"), S("https://www.example.com/")}),
            "\"3d3ed9d2-aa3d-5fa6-90e8-ed662e90f559\"");
  EXPECT_EQ(Show("uuidv5", {S("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), S("www.example.com")}),
            "\"2ed6657d-e927-568b-95e1-2665a8aea6a2\"");
  ExpectError("uuidv5", {S("bogus"), S("x")}, 0, "the namespace must be", false);
}

// ------------------------------------------------------------------ cidr

TEST(CidrFunctions, Host) {
  EXPECT_EQ(Show("cidrhost", {S("10.12.112.0/20"), N(16)}), "\"10.12.112.16\"");
  EXPECT_EQ(Show("cidrhost", {S("10.12.112.0/20"), N(268)}), "\"10.12.113.12\"");
  EXPECT_EQ(Show("cidrhost", {S("10.12.112.0/20"), N(-1)}), "\"10.12.127.255\"");
  EXPECT_EQ(Show("cidrhost", {S("10.12.112.7/20"), N(0)}), "\"10.12.112.0\"");
  EXPECT_EQ(Show("cidrhost", {S("fd00:fd12:3456:7890:00a2::/72"), N(34)}), "\"fd00:fd12:3456:7890::22\"");
  EXPECT_EQ(Show("cidrhost", {S("::/0"), N(-1)}), "\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"");
  ExpectError("cidrhost", {S("10.0.0.0/24"), N(256)}, 1, "does not fit", false);
  ExpectError("cidrhost", {S("10.0.0.0/24"), N(-257)}, 1, "does not fit", false);
  ExpectError("cidrhost", {S("10.0.0.0/33"), N(1)}, 0, "at most 32 bits", false);
  ExpectError("cidrhost", {S("10.0.0/8"), N(1)}, 0, "not a valid IPv4 or IPv6 address", false);
  ExpectError("cidrhost", {S("10.0.0.0"), N(1)}, 0, "not a CIDR prefix", false);
  ExpectError("cidrhost", {S("10.0.0.0/x"), N(1)}, 0, "must be a number from 0 to 32", false);
}

TEST(CidrFunctions, NetmaskAndSubnets) {
  EXPECT_EQ(Show("cidrnetmask", {S("172.16.0.0/12")}), "\"255.240.0.0\"");
  EXPECT_EQ(Show("cidrnetmask", {S("0.0.0.0/0")}), "\"0.0.0.0\"");
  ExpectError("cidrnetmask", {S("fd00::/8")}, 0, "only supports IPv4", false);
  EXPECT_EQ(Show("cidrsubnet", {S("172.16.0.0/12"), N(4), N(2)}), "\"172.18.0.0/16\"");
  EXPECT_EQ(Show("cidrsubnet", {S("10.1.2.0/24"), N(4), N(15)}), "\"10.1.2.240/28\"");
  EXPECT_EQ(Show("cidrsubnet", {S("fd00:fd12:3456:7890::/56"), N(16), N(162)}),
            "\"fd00:fd12:3456:7800:a200::/72\"");
  EXPECT_EQ(Show("cidrsubnet", {S("10.0.0.0/8"), N(0), N(0)}), "\"10.0.0.0/8\"");
  ExpectError("cidrsubnet", {S("10.0.0.0/24"), N(9), N(0)}, 1, "would give a /33 prefix", false);
  ExpectError("cidrsubnet", {S("10.0.0.0/24"), N(4), N(16)}, 2, "from 0 to 15", false);
  EXPECT_EQ(Show("cidrsubnets", {S("10.1.0.0/16"), N(4), N(4), N(8), N(4)}),
            "[\"10.1.0.0/20\", \"10.1.16.0/20\", \"10.1.32.0/24\", \"10.1.48.0/20\"]");
  EXPECT_EQ(
      Show("cidrsubnets", {S("fd00:fd12:3456:7890::/56"), N(16), N(16), N(16), N(32)}),
      "[\"fd00:fd12:3456:7800::/72\", \"fd00:fd12:3456:7800:100::/72\", \"fd00:fd12:3456:7800:200::/72\", "
      "\"fd00:fd12:3456:7800:300::/88\"]");
  EXPECT_EQ(Show("cidrsubnets", {S("10.0.0.0/8")}), "[]");
  EXPECT_EQ(Show("cidrsubnets", {S("::/0"), N(1), N(1)}), "[\"::/1\", \"8000::/1\"]");
  ExpectError("cidrsubnets", {S("::/0"), N(1), N(1), N(1)}, 3, "not enough address space", false);
  ExpectError("cidrsubnets", {S("10.0.0.0/24"), N(1), N(2), N(2), N(2)}, 4, "after 3 earlier subnets", false);
  ExpectError("cidrsubnets", {S("10.0.0.0/24"), N(4), N(9)}, 2, "would give a /33", false);
}

// ------------------------------------------------------------------ files

class FileFunctions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("plinth_fn_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::create_directories(dir_ / "sub");
    Write("hello.txt", "hello\n");
    Write("bin.dat", std::string("\xff\x00\x01", 3));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& data) {
    std::ofstream(dir_ / name, std::ios::binary) << data;
  }
  FunctionResult In(std::string_view name, std::vector<Value> args) {
    return CallWith(CallContext{dir_.string()}, name, std::move(args));
  }
  std::filesystem::path dir_;
};

TEST_F(FileFunctions, ReadsRelativeToBaseDir) {
  FunctionResult r = In("file", {S("hello.txt")});
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(r.value.as_string(), "hello\n");
  r = In("file", {S((dir_ / "hello.txt").string())});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.value.as_string(), "hello\n");
  r = In("filebase64", {S("bin.dat")});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.value.as_string(), "/wAB");
  r = In("filesha256", {S("hello.txt")});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.value.as_string(), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  EXPECT_TRUE(In("fileexists", {S("hello.txt")}).value.as_bool());
  EXPECT_FALSE(In("fileexists", {S("nope.txt")}).value.as_bool());
}

TEST_F(FileFunctions, Errors) {
  FunctionResult r = In("file", {S("missing.txt")});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->argument, 0);
  EXPECT_NE(r.error->message.find("'missing.txt'"), std::string::npos) << r.error->message;
  EXPECT_NE(r.error->message.find("no such file"), std::string::npos);
  r = In("file", {S("bin.dat")});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message.find("not UTF-8"), std::string::npos) << r.error->message;
  EXPECT_NE(r.error->message.find("'filebase64'"), std::string::npos);
  r = In("file", {S("sub")});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message.find("directory"), std::string::npos);
  r = In("fileexists", {S("sub")});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message.find("is a directory"), std::string::npos);
  r = In("file", {S("")});
  ASSERT_TRUE(r.error);
  // Files over 16 MiB are refused without being read.
  {
    std::ofstream big(dir_ / "big.txt", std::ios::binary);
    big.seekp(16 * 1024 * 1024);
    big.put('x');
  }
  r = In("file", {S("big.txt")});
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message.find("16 MiB"), std::string::npos) << r.error->message;
  r = In("filesha256", {S("big.txt")});
  ASSERT_TRUE(r.error);
}

TEST(PathFunctions, Lexical) {
  EXPECT_EQ(Show("basename", {S("foo/bar/baz.txt")}), "\"baz.txt\"");
  EXPECT_EQ(Show("basename", {S("foo/bar/")}), "\"bar\"");
  EXPECT_EQ(Show("basename", {S("/")}), "\"/\"");
  EXPECT_EQ(Show("basename", {S("")}), "\".\"");
  EXPECT_EQ(Show("dirname", {S("foo/bar/baz.txt")}), "\"foo/bar\"");
  EXPECT_EQ(Show("dirname", {S("baz.txt")}), "\".\"");
  EXPECT_EQ(Show("dirname", {S("/foo")}), "\"/\"");
  EXPECT_EQ(Show("pathjoin", {S("a"), S("b/"), S("../c"), S("d.txt")}), "\"a/c/d.txt\"");
  EXPECT_EQ(Show("pathjoin", {S("/"), S("etc")}), "\"/etc\"");
  EXPECT_EQ(Show("pathjoin", {S("")}), "\"\"");
  FunctionResult r = CallWith(CallContext{"/srv/app"}, "abspath", {S("../conf/./x.yaml")});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.value.as_string(), "/srv/conf/x.yaml");
  r = CallWith(CallContext{"/srv/app"}, "abspath", {S("/etc//hosts")});
  EXPECT_EQ(r.value.as_string(), "/etc/hosts");
}

// ------------------------------------------------------------------ time

TEST(TimeFunctions, FormatDate) {
  EXPECT_EQ(Show("formatdate", {S("YYYY-MM-DD hh:mm:ss ZZZ"), S("2024-02-29T23:05:09Z")}),
            "\"2024-02-29 23:05:09 UTC\"");
  EXPECT_EQ(Show("formatdate", {S("EEEE, DD MMM YY h:mm AA Z"), S("2018-01-02T15:04:05+05:30")}),
            "\"Tuesday, 02 Jan 18 15:04 PM +05:30\"");
  EXPECT_EQ(Show("formatdate", {S("'at' H aa ZZZZ D/M"), S("2000-07-04T00:30:00-08:00")}),
            "\"at 12 am -0800 4/7\"");
  EXPECT_EQ(Show("formatdate", {S("MMMM EEE ''"), S("1970-01-01T00:00:00Z")}), "\"January Thu '\"");
  ExpectError("formatdate", {S("YYYY-QQ"), S("2024-01-01T00:00:00Z")}, 0, "'QQ'", false);
  ExpectError("formatdate", {S("'open"), S("2024-01-01T00:00:00Z")}, 0, "unclosed quote", false);
  ExpectError("formatdate", {S("YYYY"), S("2024-02-30T00:00:00Z")}, 1, "not a valid timestamp", false);
  ExpectError("formatdate", {S("YYYY"), S("2024-01-01 00:00:00")}, 1, "RFC 3339", false);
  ExpectError("formatdate", {S("YYYY"), S("2024-01-01T00:00:00")}, 1, "not a valid timestamp", false);
}

TEST(TimeFunctions, AddAndCompare) {
  EXPECT_EQ(Show("timeadd", {S("2024-01-31T23:30:00Z"), Ms(45 * 60000)}), "\"2024-02-01T00:15:00Z\"");
  EXPECT_EQ(Show("timeadd", {S("2024-03-01T00:00:00+02:00"), Ms(-86400000)}),
            "\"2024-02-29T00:00:00+02:00\"");
  EXPECT_EQ(Show("timeadd", {S("2024-01-01T00:00:00.250Z"), Ms(1500)}), "\"2024-01-01T00:00:01.75Z\"");
  EXPECT_EQ(Show("timeadd", {S("1969-12-31T23:59:59Z"), Ms(1000)}), "\"1970-01-01T00:00:00Z\"");
  ExpectError("timeadd", {S("9999-12-31T23:59:59Z"), Ms(1000)}, 1, "years 0000 to 9999", false);
  ExpectError("timeadd", {S("yesterday"), Ms(1000)}, 0, "not a valid timestamp", false);
  EXPECT_EQ(Show("timecmp", {S("2024-01-01T00:00:00Z"), S("2024-01-01T01:00:00+01:00")}), "0");
  EXPECT_EQ(Show("timecmp", {S("2024-01-01T00:00:00Z"), S("2024-01-01T00:00:01Z")}), "-1");
  EXPECT_EQ(Show("timecmp", {S("2025-01-01T00:00:00Z"), S("2024-12-31T23:59:59Z")}), "1");
  ExpectError("timecmp", {S("2024-01-01T00:00:00Z"), S("x")}, 1, "not a valid timestamp", false);
}

TEST(TimeFunctions, Units) {
  EXPECT_EQ(Show("parseduration", {S("1h30m")}), "90m");
  EXPECT_EQ(Show("parseduration", {S("1.5h")}), "90m");
  EXPECT_EQ(Show("parseduration", {S("500ms")}), "500ms");
  EXPECT_EQ(Show("parseduration", {S("-2d")}), "-2d");
  EXPECT_EQ(Show("parseduration", {S("1w1d")}), "8d");
  EXPECT_EQ(Get("parseduration", {S("30s")}).kind(), Kind::Duration);
  ExpectError("parseduration", {S("10")}, 0, "without a known duration unit", false);
  ExpectError("parseduration", {S("10x")}, 0, "without a known duration unit", false);
  ExpectError("parseduration", {S("")}, 0, "is empty", false);
  ExpectError("parseduration", {S("h")}, 0, "not a valid duration", false);
  EXPECT_EQ(Show("parsesize", {S("10GiB")}), "10GiB");
  EXPECT_EQ(Show("parsesize", {S("1.5 KiB")}), "1536B");
  EXPECT_EQ(Show("parsesize", {S("2GB")}), "2GB");
  EXPECT_EQ(Get("parsesize", {S("1B")}).kind(), Kind::Size);
  ExpectError("parsesize", {S("10gib")}, 0, "case-sensitive", false);
  ExpectError("parsesize", {S("GiB")}, 0, "not a valid size", false);
  EXPECT_EQ(Show("seconds", {Ms(90000)}), "90");
  EXPECT_EQ(Show("seconds", {Ms(1500)}), "1.5");
  EXPECT_EQ(Show("milliseconds", {Ms(2000)}), "2000");
  EXPECT_EQ(Show("bytes", {Bytes(1024)}), "1024");
  EXPECT_EQ(Show("gibibytes", {Bytes(512.0 * 1024 * 1024)}), "0.5");
  EXPECT_EQ(Get("seconds", {Ms(1000)}).kind(), Kind::Number);
  ExpectError("seconds", {Bytes(1)}, 0, "must be duration, got size", true);
  ExpectError("bytes", {Ms(1)}, 0, "must be size, got duration", true);
}

// ------------------------------------------------------------------ robustness

// Every function, called with a spread of odd arguments, returns a value or
// an error and never throws or crashes.
TEST(FunctionRobustness, OddArgumentsNeverCrash) {
  const std::vector<Value> samples = {Value::Null(),
                                      B(true),
                                      N(0),
                                      N(-1),
                                      N(1e308),
                                      N(-1e308),
                                      N(NAN),
                                      N(INFINITY),
                                      N(0.5),
                                      S(""),
                                      S("a"),
                                      S("\xff\xfe"),
                                      S(std::string(1000, 'x')),
                                      S("/(/"),
                                      S("%"),
                                      S("10.0.0.0/8"),
                                      Ms(-1),
                                      Bytes(1e300),
                                      Pct(1),
                                      L({}),
                                      L({Value::Null()}),
                                      L({N(1), S("a")}),
                                      O({}),
                                      O({{"a", L({S("x")})}})};
  for (const FunctionDef& fn : AllFunctions()) {
    size_t max = std::min<size_t>(fn.max_args, 3);
    for (size_t n = fn.min_args; n <= max; ++n) {
      for (const Value& a : samples) {
        std::vector<Value> args(n, a);
        EXPECT_NO_THROW(CallFunction(fn, CallContext{"/nonexistent"}, args)) << fn.name;
        if (n >= 2) {
          for (const Value& b : samples) {
            args[n - 1] = b;
            EXPECT_NO_THROW(CallFunction(fn, CallContext{"/nonexistent"}, args)) << fn.name;
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------ docs

#ifdef PLINTH_SOURCE_DIR

// A parser for the literal subset of Plinth used in doc examples: strings,
// numbers with optional units, bools, null, lists and objects.
class LiteralParser {
 public:
  explicit LiteralParser(std::string_view s) : s_(s) {}

  std::optional<Value> ParseValue() {
    Skip();
    if (pos_ >= s_.size()) return std::nullopt;
    char c = s_[pos_];
    if (c == '"') return ParseString();
    if (c == '[') {
      ++pos_;
      ValueList l;
      Skip();
      if (Eat(']')) return Value::List(std::move(l));
      while (true) {
        auto v = ParseValue();
        if (!v) return std::nullopt;
        l.push_back(*v);
        Skip();
        if (Eat(']')) return Value::List(std::move(l));
        if (!Eat(',')) return std::nullopt;
      }
    }
    if (c == '{') {
      ++pos_;
      ValueMap m;
      Skip();
      if (Eat('}')) return Value::Object(std::move(m));
      while (true) {
        Skip();
        std::string key;
        if (pos_ < s_.size() && s_[pos_] == '"') {
          auto k = ParseString();
          if (!k) return std::nullopt;
          key = k->as_string();
        } else {
          while (pos_ < s_.size() &&
                 (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) {
            key += s_[pos_++];
          }
        }
        Skip();
        if (key.empty() || !Eat('=')) return std::nullopt;
        auto v = ParseValue();
        if (!v) return std::nullopt;
        m[key] = *v;
        Skip();
        if (Eat('}')) return Value::Object(std::move(m));
        if (!Eat(',')) return std::nullopt;
      }
    }
    if (s_.substr(pos_).starts_with("true")) return pos_ += 4, Value::Bool(true);
    if (s_.substr(pos_).starts_with("false")) return pos_ += 5, Value::Bool(false);
    if (s_.substr(pos_).starts_with("null")) return pos_ += 4, Value::Null();
    if (s_.substr(pos_).starts_with("inf")) return pos_ += 3, Value::Number(INFINITY);
    size_t start = pos_;
    if (c == '-') ++pos_;
    while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.'))
      ++pos_;
    if (pos_ == start) return std::nullopt;
    double n = std::stod(std::string(s_.substr(start, pos_ - start)));
    size_t ustart = pos_;
    while (pos_ < s_.size() && (std::isalpha(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '%'))
      ++pos_;
    if (pos_ == ustart) return Value::Number(n);
    const UnitInfo* u = FindUnit(s_.substr(ustart, pos_ - ustart));
    if (!u) return std::nullopt;
    return MakeUnitValue(u->dimension, n * u->factor);
  }

  // name(arg, arg, ...)
  bool ParseCall(std::string& name, std::vector<Value>& args) {
    Skip();
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) {
      name += s_[pos_++];
    }
    if (name.empty() || !Eat('(')) return false;
    Skip();
    if (Eat(')')) return true;
    while (true) {
      auto v = ParseValue();
      if (!v) return false;
      args.push_back(*v);
      Skip();
      if (Eat(')')) return true;
      if (!Eat(',')) return false;
    }
  }

  bool AtEnd() {
    Skip();
    return pos_ == s_.size();
  }

 private:
  void Skip() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  std::optional<Value> ParseString() {
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\' && pos_ < s_.size()) {
        char e = s_[pos_++];
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      } else if (c == '$' && pos_ + 1 < s_.size() && s_[pos_] == '$' && s_[pos_ + 1] == '{') {
        out += '$';
        ++pos_;
      } else {
        out += c;
      }
    }
    if (!Eat('"')) return std::nullopt;
    return Value::String(out);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::string ReadDocs() {
  std::ifstream in(std::string(PLINTH_SOURCE_DIR) + "/docs/functions.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FunctionDocs, EveryFunctionHasAHeadingAndViceVersa) {
  std::string docs = ReadDocs();
  ASSERT_FALSE(docs.empty()) << "cannot read docs/functions.md";
  std::set<std::string> headings;
  std::istringstream lines(docs);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with("### ")) headings.insert(line.substr(4));
  }
  for (const FunctionDef& fn : AllFunctions()) {
    EXPECT_TRUE(headings.count(std::string(fn.name))) << "docs/functions.md lacks '### " << fn.name << "'";
    // The documented signature matches the registry.
    EXPECT_NE(docs.find("`" + std::string(fn.signature) + "`"), std::string::npos)
        << "docs/functions.md lacks the signature `" << fn.signature << "`";
  }
  for (const std::string& h : headings) {
    EXPECT_NE(FindFunction(h), nullptr)
        << "docs/functions.md documents '" << h << "', which is not registered";
  }
}

// Example lines in ```plinth blocks of the form `call  # => result` or
// `call  # error: text` are evaluated and checked.
TEST(FunctionDocs, ExamplesAreCorrect) {
  std::string docs = ReadDocs();
  ASSERT_FALSE(docs.empty());
  std::istringstream lines(docs);
  std::string line;
  bool in_block = false;
  int checked = 0;
  std::set<std::string> with_examples;
  while (std::getline(lines, line)) {
    if (line.starts_with("```")) {
      in_block = line == "```plinth";
      continue;
    }
    if (!in_block) continue;
    size_t ok = line.find("  # => ");
    size_t err = line.find("  # error: ");
    if (ok == std::string::npos && err == std::string::npos) continue;
    std::string call = line.substr(0, std::min(ok, err));
    SCOPED_TRACE(line);
    LiteralParser p(call);
    std::string name;
    std::vector<Value> args;
    if (!p.ParseCall(name, args) || !p.AtEnd()) {
      ADD_FAILURE() << "cannot parse the example call";
      continue;
    }
    const FunctionDef* fn = FindFunction(name);
    if (!fn) {
      ADD_FAILURE() << "no function " << name;
      continue;
    }
    FunctionResult r = CallFunction(*fn, CallContext{std::string(PLINTH_SOURCE_DIR) + "/docs"}, args);
    if (ok != std::string::npos) {
      LiteralParser q(std::string_view(line).substr(ok + 7));
      std::optional<Value> want = q.ParseValue();
      if (r.error) {
        ADD_FAILURE() << r.error->message;
      } else if (!want || !q.AtEnd()) {
        ADD_FAILURE() << "cannot parse the expected result";
      } else {
        EXPECT_EQ(r.value.ToString(true), want->ToString(true));
      }
    } else if (!r.error) {
      ADD_FAILURE() << "expected an error, got " << r.value.ToString(true);
    } else {
      std::string part = line.substr(err + 11);
      EXPECT_NE(r.error->message.find(part), std::string::npos) << r.error->message;
    }
    with_examples.insert(name);
    ++checked;
  }
  EXPECT_GT(checked, 100);
  for (const FunctionDef& fn : AllFunctions()) {
    if (fn.impure || fn.category == "file") continue;  // their results depend on the machine
    EXPECT_TRUE(with_examples.count(std::string(fn.name))) << "no checked example for '" << fn.name << "'";
  }
}

#endif  // PLINTH_SOURCE_DIR

}  // namespace
}  // namespace plinth
